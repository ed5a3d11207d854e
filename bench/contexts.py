"""Sixteen contexts on one server: memory per context and cells per second with all busy.

python bench/contexts.py [--contexts 16] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import time

import psutil
from common import Row, embedded_server, print_table

from sandbox_kernel import CodeInterpreterSandbox
from sandbox_kernel.client import ContextOperations


async def busy(context, deadline: float) -> int:
    """Run trivial cells until the deadline; how many completed."""
    done = 0
    while time.monotonic() < deadline:
        reply = await context.execute_async("1 + 1")
        assert reply["results"][-1]["status"] == "ok", reply
        done += 1
    return done


async def run(contexts: int, seconds: float) -> list[Row]:
    with embedded_server() as server:
        sandbox = await CodeInterpreterSandbox.create_async(endpoint=server.url, token=server.token)
        before = sum(p.memory_info().rss for p in psutil.Process(server.pid).children(True))
        started = time.perf_counter()
        opened = await asyncio.gather(
            *(ContextOperations(sandbox).create_async() for _ in range(contexts))
        )
        start_seconds = time.perf_counter() - started
        after = sum(p.memory_info().rss for p in psutil.Process(server.pid).children(True))
        deadline = time.monotonic() + seconds
        counts = await asyncio.gather(*(busy(context, deadline) for context in opened))
        await sandbox.delete_async()
    return [
        Row(f"memory per context (MB, {contexts} contexts)", (after - before) / contexts / 2**20),
        Row(f"cells/s, {contexts} contexts busy at once", sum(counts) / seconds),
        Row(f"seconds to start {contexts} contexts at once", start_seconds),
    ]


def measure(contexts: int = 16, seconds: float = 10.0) -> list[Row]:
    return asyncio.run(run(contexts, seconds))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contexts", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    options = parser.parse_args()
    print_table(measure(options.contexts, options.seconds))
