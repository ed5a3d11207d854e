"""Trivial-cell latency and start-to-first-result: the sandbox kernel next to plain python3.

Both kernels are measured in the same run, interleaved, against a warm embedded server that
this script starts on a free loopback port. Prints p50/p99 and the ratios to the targets.

    python bench/cell_overhead.py [--cells 300] [--starts 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

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
    ms = 1000
    return [
        Row(
            "trivial cell p50 (ms), sandbox vs python3",
            percentile(latency["sandbox"], 0.5) * ms,
            percentile(latency["python3"], 0.5) * ms,
            "<= 1.6",
        ),
        Row(
            "trivial cell p99 (ms), sandbox vs python3",
            percentile(latency["sandbox"], 0.99) * ms,
            percentile(latency["python3"], 0.99) * ms,
            "<= 2.0",
        ),
        Row(
            "start to first result, warm server (ms)",
            statistics.median(start_times["sandbox"]) * ms,
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
