"""Trivial-cell latency and start-to-first-result: the sandbox kernel next to plain python3.

Both kernels are measured in the same run, interleaved, against a warm embedded server that
this script starts on a free loopback port. Prints p50/p99 and the ratios to the targets.

    python bench/cell_overhead.py [--cells 300] [--starts 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from jupyter_client import KernelManager

TARGETS = {"p50": 1.6, "p99": 2.0, "start": 1.5}


def start_embedded_server(root: Path) -> tuple[subprocess.Popen, str, str]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sandbox_kernel.cli",
            "serve",
            "--port",
            "0",
            "--root",
            str(root),
            "--log-level",
            "WARNING",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    ready = json.loads(process.stdout.readline())
    return process, ready["url"], ready["token"]


def run_cell(client, code: str) -> float:
    """Seconds from sending `code` to its reply and the kernel's idle status."""
    started = time.perf_counter()
    reply = client.execute_interactive(code, timeout=60, output_hook=lambda message: None)
    elapsed = time.perf_counter() - started
    if reply["content"]["status"] != "ok":
        raise RuntimeError(f"cell failed: {reply['content']}")
    return elapsed


def start_kernel(name: str, env: dict[str, str]):
    manager = KernelManager(kernel_name=name)
    manager.start_kernel(env=env)
    client = manager.client()
    client.start_channels()
    client.wait_for_ready(timeout=60)
    return manager, client


def start_to_first_result(name: str, env: dict[str, str]) -> float:
    started = time.perf_counter()
    manager, client = start_kernel(name, env)
    run_cell(client, "1")
    elapsed = time.perf_counter() - started
    client.stop_channels()
    manager.shutdown_kernel(now=False)
    return elapsed


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=300, help="trivial cells per kernel")
    parser.add_argument("--starts", type=int, default=5, help="kernel starts per kernel")
    options = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        server, url, token = start_embedded_server(Path(scratch))
        env = {**os.environ, "SANDBOX_KERNEL_ENDPOINT": url, "SANDBOX_KERNEL_TOKEN": token}
        try:
            kernels = {name: start_kernel(name, env) for name in ("sandbox", "python3")}
            for _, client in kernels.values():
                for _ in range(20):
                    run_cell(client, "1")
            latency: dict[str, list[float]] = {name: [] for name in kernels}
            for _ in range(options.cells):
                for name, (_, client) in kernels.items():
                    latency[name].append(run_cell(client, "1"))
            for manager, client in kernels.values():
                client.stop_channels()
                manager.shutdown_kernel(now=False)
            starts: dict[str, list[float]] = {name: [] for name in kernels}
            for _ in range(options.starts):
                for name in kernels:
                    starts[name].append(start_to_first_result(name, env))
        finally:
            server.terminate()
            server.wait(timeout=30)

    rows = [
        ("trivial cell p50 (ms)", *(percentile(latency[n], 0.5) * 1000 for n in kernels), "p50"),
        ("trivial cell p99 (ms)", *(percentile(latency[n], 0.99) * 1000 for n in kernels), "p99"),
        (
            "start to first result, warm server (ms)",
            *(statistics.median(starts[n]) * 1000 for n in kernels),
            "start",
        ),
    ]
    print(f"{'metric':42} {'sandbox':>10} {'python3':>10} {'ratio':>7} {'target':>7}")
    for label, ours, baseline, target in rows:
        ratio = ours / baseline
        verdict = "ok" if ratio <= TARGETS[target] else "MISSED"
        print(
            f"{label:42} {ours:10.2f} {baseline:10.2f} {ratio:7.2f} "
            f"{'<= ' + str(TARGETS[target]):>7} {verdict}"
        )


if __name__ == "__main__":
    main()
