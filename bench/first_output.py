"""Time to first output: from a `print` in the sandbox to its stream message at the frontend.

A cell prints `time.time()` and then sleeps, so the output can only arrive early if it is
streamed; the frontend (a jupyter_client on the same machine, so the clocks agree) notes when
the stream message arrives. The plain python3 kernel runs the same cell in the same run, as the
floor. Both use a warm embedded server that this script starts on a free loopback port.

    python bench/first_output.py [--runs 20]
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

from jupyter_client import BlockingKernelClient, KernelManager

TARGET_MS = 50.0
CELL = "import time\nprint(repr(time.time()), flush=True)\ntime.sleep(0.3)"


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


def start_kernel(name: str, env: dict[str, str]) -> tuple[KernelManager, BlockingKernelClient]:
    manager = KernelManager(kernel_name=name)
    manager.start_kernel(env=env)
    client = manager.client()
    client.start_channels()
    client.wait_for_ready(timeout=60)
    return manager, client


def first_output_delay(client: BlockingKernelClient) -> float:
    """Seconds from the remote print to the arrival of its stream message here."""
    msg_id = client.execute(CELL)
    delay = None
    while True:
        message = client.get_iopub_msg(timeout=60)
        arrived = time.time()
        if message["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = message["msg_type"], message["content"]
        if kind == "stream" and delay is None:
            delay = arrived - float(content["text"])
        elif kind == "error":
            raise RuntimeError(f"cell failed: {content['ename']}: {content['evalue']}")
        elif kind == "status" and content["execution_state"] == "idle":
            break
    client.get_shell_msg(timeout=60)
    if delay is None:
        raise RuntimeError("the cell printed nothing")
    return delay


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="measured cells per kernel")
    options = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        server, url, token = start_embedded_server(Path(scratch))
        env = {**os.environ, "SANDBOX_KERNEL_ENDPOINT": url, "SANDBOX_KERNEL_TOKEN": token}
        try:
            kernels = {name: start_kernel(name, env) for name in ("sandbox", "python3")}
            for _, client in kernels.values():
                for _ in range(3):
                    first_output_delay(client)
            delays: dict[str, list[float]] = {name: [] for name in kernels}
            for _ in range(options.runs):
                for name, (_, client) in kernels.items():
                    delays[name].append(first_output_delay(client))
            for manager, client in kernels.values():
                client.stop_channels()
                manager.shutdown_kernel(now=False)
        finally:
            server.terminate()
            server.wait(timeout=30)

    print(f"time from print() to its stream message, {options.runs} cells each (ms)")
    print(f"{'kernel':10} {'median':>8} {'p90':>8} {'max':>8}")
    for name, samples in delays.items():
        print(
            f"{name:10} {statistics.median(samples) * 1000:8.1f} "
            f"{percentile(samples, 0.9) * 1000:8.1f} {max(samples) * 1000:8.1f}"
        )
    median_ms = statistics.median(delays["sandbox"]) * 1000
    verdict = "ok" if median_ms < TARGET_MS else "MISSED"
    print(f"sandbox median {median_ms:.1f} ms, target < {TARGET_MS:g} ms: {verdict}")


if __name__ == "__main__":
    main()
