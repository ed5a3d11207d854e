"""How time and memory grow: with the number of contexts, with file size, with output size.

One embedded server per series; memory is the resident size of the server and everything it
started (the contexts' kernels), measured before and after. Prints one row per step with
its per-unit cost, for the README's scaling table.

    python bench/scaling.py [--contexts 1,4,16,64] [--files-mb 1,16,256,1024]
                            [--outputs-kb 1,1024,10240,102400]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import threading
import time

import psutil
from common import Row, embedded_server, print_table

from sandbox_kernel import CodeInterpreterSandbox
from sandbox_kernel.client import ContextOperations

MB = 2**20


def tree_rss(pid: int) -> int:
    """Resident bytes of the process `pid` and all its descendants."""
    root = psutil.Process(pid)
    total = 0
    for process in [root, *root.children(recursive=True)]:
        try:
            total += process.memory_info().rss
        except psutil.Error:
            continue
    return total


class PeakRss:
    """Samples the server's own resident size every 10 ms while in use."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            self._done.wait(0.01)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()


async def context_series(counts: list[int]) -> list[Row]:
    rows = []
    for count in counts:
        with embedded_server("--spares", "0") as server:
            sandbox = await CodeInterpreterSandbox.create_async(
                endpoint=server.url, token=server.token
            )
            before = tree_rss(server.pid)
            started = time.perf_counter()
            opened = await asyncio.gather(
                *(ContextOperations(sandbox).create_async() for _ in range(count))
            )
            seconds = time.perf_counter() - started
            cell_started = time.perf_counter()
            await asyncio.gather(*(context.execute_async("1 + 1") for context in opened))
            cell_seconds = time.perf_counter() - cell_started
            grown = (tree_rss(server.pid) - before) / MB
            await sandbox.delete_async()
        rows += [
            Row(f"scale: {count} contexts, s to start all (s/context)", seconds, count),
            Row(f"scale: {count} contexts, MB resident (MB/context)", grown, count),
            Row(f"scale: {count} contexts, s for one cell on each at once", cell_seconds),
        ]
    return rows


def file_series(sizes_mb: list[int]) -> list[Row]:
    rows = []
    with (
        embedded_server("--max-upload-mb", "2048") as server,
        tempfile.TemporaryDirectory() as scratch,
    ):
        sandbox = CodeInterpreterSandbox.create(endpoint=server.url, token=server.token)
        for size in sizes_mb:
            source = os.path.join(scratch, "source.bin")
            with open(source, "wb") as handle:
                for _ in range(size):
                    handle.write(os.urandom(MB))
            back = os.path.join(scratch, "back.bin")
            with PeakRss(server.pid) as peak:
                started = time.perf_counter()
                sandbox.file_system.upload(source, "/home/user/big.bin")
                sandbox.file_system.download("/home/user/big.bin", back)
                seconds = time.perf_counter() - started
            if os.path.getsize(back) != size * MB:
                raise SystemExit(f"the {size} MB round trip lost bytes")
            sandbox.file_system.remove("/home/user/big.bin")
            os.unlink(back)
            rows += [
                Row(f"scale: {size} MB up+down, s (s/GB)", seconds, size / 1024),
                Row(f"scale: {size} MB up+down, server peak RSS (MB)", peak.peak / MB),
            ]
        sandbox.delete()
    return rows


def output_series(sizes_kb: list[int]) -> list[Row]:
    rows = []
    with embedded_server() as server:
        sandbox = CodeInterpreterSandbox.create(endpoint=server.url, token=server.token)
        context = sandbox.context.create()
        for size in sizes_kb:
            code = f"import sys\nsys.stdout.write('x' * {size * 1024})\nsys.stdout.flush()"
            with PeakRss(server.pid) as peak:
                started = time.perf_counter()
                reply = context.execute(code, timeout=600)
                seconds = time.perf_counter() - started
            text = sum(len(entry.get("text", "")) for entry in reply["results"])
            if text != size * 1024:
                raise SystemExit(f"a {size} KB output arrived as {text} bytes")
            rows += [
                Row(f"scale: {size} KB cell output, s (s/MB)", seconds, size / 1024),
                Row(f"scale: {size} KB cell output, server peak RSS (MB)", peak.peak / MB),
            ]
        sandbox.delete()
    return rows


def measure(contexts: list[int], files_mb: list[int], outputs_kb: list[int]) -> list[Row]:
    return [
        *asyncio.run(context_series(contexts)),
        *file_series(files_mb),
        *output_series(outputs_kb),
    ]


def numbers(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contexts", type=numbers, default=[1, 4, 16, 64])
    parser.add_argument("--files-mb", type=numbers, default=[1, 16, 256, 1024])
    parser.add_argument("--outputs-kb", type=numbers, default=[1, 1024, 10240, 102400])
    options = parser.parse_args()
    print_table(measure(options.contexts, options.files_mb, options.outputs_kb))
