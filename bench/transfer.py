"""Upload and download of a large file through our client, next to `cp` on the same disk.

Rounds of each alternate and their medians are compared. Every round trip must come back
byte-identical; the server's resident memory is sampled the whole time and must stay flat
whatever the file size (uploads and downloads stream).

    python bench/transfer.py [--megabytes 256] [--rounds 5]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from common import Row, embedded_server, print_table

from sandbox_kernel import CodeInterpreterSandbox, SandboxNotFoundError

CHUNK = 1024 * 1024
PHASES: list[tuple[float, float]] = []
"""Seconds of each round trip's upload and download."""


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


@dataclass
class Timing:
    """Seconds until the copies are written (to the page cache), and until they are on disk."""

    written: float
    durable: float


def timed(copy: Callable[[], None]) -> Timing:
    """Time `copy`, then the `sync` that puts what it wrote on disk."""
    os.sync()
    started = time.perf_counter()
    copy()
    written = time.perf_counter() - started
    os.sync()
    return Timing(written, time.perf_counter() - started)


def copy_twice(source: Path, scratch: Path) -> Timing:
    """`cp` of `source`, then of its copy, into new files: the disk's own speed."""
    for old in ("copy1.bin", "copy2.bin"):
        (scratch / old).unlink(missing_ok=True)

    def copy() -> None:
        subprocess.run(["cp", source, scratch / "copy1.bin"], check=True)
        subprocess.run(["cp", scratch / "copy1.bin", scratch / "copy2.bin"], check=True)

    return timed(copy)


def round_trip(sandbox: CodeInterpreterSandbox, source: Path, back: Path) -> Timing:
    """Upload `source` into the sandbox and download it again to `back`, as new files."""
    back.unlink(missing_ok=True)
    with contextlib.suppress(SandboxNotFoundError):
        sandbox.file_system.remove("/home/user/big.bin")

    def copy() -> None:
        started = time.perf_counter()
        sandbox.file_system.upload(str(source), "/home/user/big.bin")
        uploaded = time.perf_counter()
        sandbox.file_system.download("/home/user/big.bin", str(back))
        PHASES.append((uploaded - started, time.perf_counter() - uploaded))

    return timed(copy)


def measure(megabytes: int = 256, rounds: int = 5) -> list[Row]:
    """Interleaved rounds of `cp` x2 and our round trip, each into new files after a
    `sync`, so that neither pays for the other's dirty pages or deletions. Compared twice,
    by medians: until the bytes are written (cp then runs at memory speed), and until they
    are on disk."""
    cp_times: list[Timing] = []
    our_times: list[Timing] = []
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
                cp_times.append(copy_twice(source, scratch))
                our_times.append(round_trip(sandbox, source, back))
                if sha256(back) != expected:
                    raise SystemExit("the downloaded file differs from the uploaded one")
            sampler.running = False
            sampler.join()
            sandbox.delete()
    rows = []
    for stage in ("written", "durable"):
        cp_seconds = statistics.median(getattr(timing, stage) for timing in cp_times)
        ours_seconds = statistics.median(getattr(timing, stage) for timing in our_times)
        label = f"{megabytes} MB up+down vs cp x2, {stage}"
        rows.append(Row(f"{label}: speed ratio", cp_seconds / ours_seconds, None, ">= 0.5", True))
        rows.append(Row(f"{label}: seconds", ours_seconds, cp_seconds))
    rows.append(
        Row(
            "server peak RSS during transfer (MB)",
            sampler.peak / 2**20,
            idle_rss / 2**20,
            "<= 100",
            absolute=True,
        )
    )
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    print_table(measure(options.megabytes, options.rounds))
