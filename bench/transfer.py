"""Upload and download of a large file through our client, next to `cp` on the same disk.

Checks the round trip is byte-identical and samples the server's resident memory the whole
time: it must stay flat whatever the file size (uploads and downloads stream).

    python bench/transfer.py [--megabytes 256]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
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


def measure(megabytes: int = 256) -> list[Row]:
    with tempfile.TemporaryDirectory(dir=Path.home()) as scratch:
        source, back = Path(scratch) / "source.bin", Path(scratch) / "back.bin"
        expected = make_file(source, megabytes)
        started = time.perf_counter()
        subprocess.run(["cp", source, Path(scratch) / "copy1.bin"], check=True)
        subprocess.run(["cp", Path(scratch) / "copy1.bin", Path(scratch) / "copy2.bin"], check=True)
        cp_seconds = time.perf_counter() - started
        with embedded_server("--max-upload-mb", str(megabytes + 1)) as server:
            sandbox = CodeInterpreterSandbox.create(endpoint=server.url, token=server.token)
            idle_rss = server.rss_bytes()
            sampler = PeakMemory(server.rss_bytes)
            sampler.start()
            started = time.perf_counter()
            sandbox.file_system.upload(str(source), "/home/user/big.bin")
            sandbox.file_system.download("/home/user/big.bin", str(back))
            ours_seconds = time.perf_counter() - started
            sampler.running = False
            sampler.join()
            sandbox.delete()
        identical = sha256(back) == expected
        shutil.rmtree(scratch, ignore_errors=True)
    if not identical:
        raise SystemExit("the downloaded file differs from the uploaded one")
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
    print_table(measure(parser.parse_args().megabytes))
