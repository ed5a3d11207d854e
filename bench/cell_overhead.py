"""Trivial-cell latency and start-to-first-result: the sandbox kernel next to plain python3.

Both kernels are measured in the same run, interleaved, against a warm embedded server that
this script starts on a free loopback port. Prints p50/p99 and the ratios to the targets.
Start-up is also measured cold: with no server running, the kernel starts the embedded one
itself (in a private runtime and data directory), as on a fresh machine.

    python bench/cell_overhead.py [--cells 300] [--starts 5]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
from collections.abc import Iterator

from common import (
    Row,
    embedded_server,
    kernel_environment,
    percentile,
    print_table,
    start_kernel,
)


def run_cell(client, code: str) -> float:
    """Seconds from sending `code` to its reply and the kernel's idle status."""
    started = time.perf_counter()
    reply = client.execute_interactive(code, timeout=60, output_hook=lambda message: None)
    elapsed = time.perf_counter() - started
    if reply["content"]["status"] != "ok":
        raise RuntimeError(f"cell failed: {reply['content']}")
    return elapsed


def start_to_first_result(name: str, env: dict[str, str]) -> float:
    started = time.perf_counter()
    manager, client = start_kernel(name, env)
    run_cell(client, "1")
    elapsed = time.perf_counter() - started
    client.stop_channels()
    manager.shutdown_kernel(now=False)
    return elapsed


@contextlib.contextmanager
def no_server_yet() -> Iterator[dict[str, str]]:
    """An environment in which a sandbox kernel finds no server and starts its own."""
    from sandbox_kernel import local

    saved = dict(os.environ)
    with tempfile.TemporaryDirectory() as scratch:
        os.environ.update(
            SANDBOX_KERNEL_RUNTIME_DIR=os.path.join(scratch, "runtime"),
            XDG_DATA_HOME=os.path.join(scratch, "data"),
        )
        for name in ("SANDBOX_KERNEL_ENDPOINT", "SANDBOX_KERNEL_TOKEN"):
            os.environ.pop(name, None)
        try:
            yield dict(os.environ)
        finally:
            local.stop_server()
            os.environ.clear()
            os.environ.update(saved)


def cold_start_to_first_result(starts: int) -> float:
    """Median seconds to a first result when the kernel must start the server too."""
    times = []
    for _ in range(starts):
        with no_server_yet() as env:
            times.append(start_to_first_result("sandbox", env))
    return statistics.median(times)


def measure(cells: int = 300, starts: int = 5) -> list[Row]:
    with embedded_server() as server:
        env = kernel_environment(server)
        kernels = {name: start_kernel(name, env) for name in ("sandbox", "python3")}
        for _, client in kernels.values():
            for _ in range(20):
                run_cell(client, "1")
        latency: dict[str, list[float]] = {name: [] for name in kernels}
        for _ in range(cells):
            for name, (_, client) in kernels.items():
                latency[name].append(run_cell(client, "1"))
        for manager, client in kernels.values():
            client.stop_channels()
            manager.shutdown_kernel(now=False)
        start_times: dict[str, list[float]] = {name: [] for name in kernels}
        for _ in range(starts):
            for name in kernels:
                start_times[name].append(start_to_first_result(name, env))
    cold = cold_start_to_first_result(max(1, starts // 2))
    ms = 1000
    return [
        Row(
            "trivial cell p50 (ms), sandbox vs python3",
            percentile(latency["sandbox"], 0.5) * ms,
            percentile(latency["python3"], 0.5) * ms,
            "<= 1.3",
        ),
        Row(
            "trivial cell p99 (ms), sandbox vs python3",
            percentile(latency["sandbox"], 0.99) * ms,
            percentile(latency["python3"], 0.99) * ms,
            "<= 1.5",
        ),
        Row(
            "start to first result, warm server (ms)",
            statistics.median(start_times["sandbox"]) * ms,
            statistics.median(start_times["python3"]) * ms,
            "<= 1.2",
        ),
        Row(
            "start to first result, cold server (ms)",
            cold * ms,
            statistics.median(start_times["python3"]) * ms,
            "<= 1.5",
        ),
    ]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=300, help="trivial cells per kernel")
    parser.add_argument("--starts", type=int, default=5, help="kernel starts per kernel")
    options = parser.parse_args()
    print_table(measure(options.cells, options.starts))
