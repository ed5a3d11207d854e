"""Upload and download of a large file through our client, next to `cp` on the same disk.

Rounds of each alternate and their medians are compared. Every round trip must come back
byte-identical; the server's resident memory is sampled the whole time and must stay flat
whatever the file size (uploads and downloads stream).

    python bench/transfer.py [--megabytes 256] [--rounds 3]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from common import Row, embedded_server, print_table

from sandbox_kernel import CodeInterpreterSandbox

CHUNK = 1024 * 1024


def make_file(path: Path, megabytes: int) -> str:
    digest = hashlib.sha256()
    with open(path, "wb") as handle:
        for _ in range(megabytes):
            block = os.urandom(CHUNK)
            digest.update(block)
            handle.write(block)
    return digest.hexdigest()


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


class PeakMemory(threading.Thread):
    """Samples a process's RSS every 20 ms until stopped."""

    def __init__(self, read_rss) -> None:
        super().__init__(daemon=True)
        self.read_rss = read_rss
        self.peak = 0
        self.running = True

    def run(self) -> None:
        while self.running:
            self.peak = max(self.peak, self.read_rss())
            time.sleep(0.02)


def copy_twice(source: Path, scratch: Path) -> float:
    """Seconds `cp` takes to copy `source` and then its copy: the disk's own speed."""
    started = time.perf_counter()
    subprocess.run(["cp", source, scratch / "copy1.bin"], check=True)
    subprocess.run(["cp", scratch / "copy1.bin", scratch / "copy2.bin"], check=True)
    return time.perf_counter() - started


def round_trip(sandbox: CodeInterpreterSandbox, source: Path, back: Path) -> float:
    """Seconds to upload `source` into the sandbox and download it again to `back`."""
    started = time.perf_counter()
    sandbox.file_system.upload(str(source), "/home/user/big.bin")
    sandbox.file_system.download("/home/user/big.bin", str(back))
    return time.perf_counter() - started


def measure(megabytes: int = 256, rounds: int = 3) -> list[Row]:
    """Interleaved rounds of `cp` x2 and our round trip, each after a `sync` so that neither
    pays for the other's dirty pages; the medians are compared."""
    cp_times: list[float] = []
    our_times: list[float] = []
    with tempfile.TemporaryDirectory(dir=Path.home()) as directory:
        scratch = Path(directory)
        source, back = scratch / "source.bin", scratch / "back.bin"
        expected = make_file(source, megabytes)
        with embedded_server("--max-upload-mb", str(megabytes + 1)) as server:
            sandbox = CodeInterpreterSandbox.create(endpoint=server.url, token=server.token)
            idle_rss = server.rss_bytes()
            sampler = PeakMemory(server.rss_bytes)
            sampler.start()
            for _ in range(rounds):
                os.sync()
                cp_times.append(copy_twice(source, scratch))
                os.sync()
                our_times.append(round_trip(sandbox, source, back))
                if sha256(back) != expected:
                    raise SystemExit("the downloaded file differs from the uploaded one")
            sampler.running = False
            sampler.join()
            sandbox.delete()
    cp_seconds, ours_seconds = statistics.median(cp_times), statistics.median(our_times)
    return [
        Row(
            f"{megabytes} MB upload+download speed vs cp x2",
            cp_seconds / ours_seconds,
            None,
            ">= 0.3",
            absolute=True,
        ),
        Row(f"{megabytes} MB upload+download seconds, cp x2 as baseline", ours_seconds, cp_seconds),
        Row(
            "server peak RSS during transfer (MB)",
            sampler.peak / 2**20,
            idle_rss / 2**20,
            "<= 150",
            absolute=True,
        ),
    ]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    print_table(measure(options.megabytes, options.rounds))
