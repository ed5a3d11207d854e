"""Load: several sandbox kernels run many cells with output against one server at once.

Every cell prints known lines; each kernel checks that all of them arrive, in order, and
that execution counts advance one by one. Meanwhile a probe, in a process of its own so
that the drivers' threads never delay it, asks the server's health every 50 ms: a server
that stalls under the load shows up as a slow answer.

Each kernel is asked to shut down over its own client's control channel and then killed if
it lingers; the kernel manager's shutdown is never used, as it first sends an interrupt
request from the manager's own socket, a send that can block for good once the kernel's
control channel is gone. A driver that fails or hangs still ends the run.

    python bench/load.py [--kernels 8] [--cells 200]
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import queue
import statistics
import threading
import time
from dataclasses import dataclass, field

import httpx
from common import Row, embedded_server, print_table
from jupyter_client import BlockingKernelClient, KernelManager

HEALTH_MAX_MS = 50.0
SHUTDOWN_SECONDS = 10.0
DRIVER_SECONDS = 1800.0
PROBE_TIMEOUT = 10.0
"""Seconds a health request may take before the probe counts it as unanswered."""
CELL = "for line in range({first}, {first} + 3):\n    print('line', line)"


@dataclass
class LoadResult:
    cells: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)
    probe_seconds: list[float] = field(default_factory=list)

    @property
    def cells_per_second(self) -> float:
        return self.cells / self.seconds if self.seconds else 0.0


def drive_kernel(env: dict[str, str], cells: int, result: LoadResult, lock: threading.Lock) -> None:
    """Start one sandbox kernel, run `cells` cells and check every line of their output."""
    manager = KernelManager(kernel_name="sandbox")
    # Many kernels of one user at once would contend for IPython's history database (python3
    # kernels too): it then prints a warning into a cell. The load is about our pipeline.
    manager.start_kernel(env=env, extra_arguments=["--HistoryManager.hist_file=:memory:"])
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=120)
        client.execute_interactive("pass", timeout=120)
        first_count = None
        for index in range(cells):
            texts: list[str] = []
            reply = client.execute_interactive(
                CELL.format(first=index * 3),
                timeout=120,
                output_hook=lambda message, into=texts: (
                    into.append(message["content"]["text"])
                    if message["msg_type"] == "stream"
                    else None
                ),
            )["content"]
            expected = "".join(f"line {n}\n" for n in range(index * 3, index * 3 + 3))
            count = reply.get("execution_count")
            first_count = count if first_count is None else first_count
            problem = None
            if reply["status"] != "ok":
                problem = f"cell {index} failed: {reply.get('ename')}: {reply.get('evalue')}"
            elif "".join(texts) != expected:
                problem = f"cell {index}: expected {expected!r}, got {''.join(texts)!r}"
            elif count != first_count + index:
                problem = f"cell {index}: execution count {count}, expected {first_count + index}"
            with lock:
                result.cells += 1
                if problem:
                    result.problems.append(problem)
    finally:
        stop_kernel(manager, client)


def stop_kernel(manager: KernelManager, client: BlockingKernelClient) -> None:
    """Shut the kernel down through its client, kill it if it lingers, free its files."""
    try:
        client.shutdown()
        deadline = time.monotonic() + SHUTDOWN_SECONDS
        while manager.is_alive() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        client.stop_channels()
        if manager.is_alive():
            manager.kill_kernel()
        manager.cleanup_resources()


def probe_health(url: str, token: str, done, samples) -> None:
    """Ask `url`'s health every 50 ms until `done` is set; put each answer's seconds, or
    the error of a request that failed (a refusal, or no answer within PROBE_TIMEOUT)."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(headers=headers, timeout=PROBE_TIMEOUT) as client:
        while not done.is_set():
            started = time.perf_counter()
            try:
                client.get(f"{url}/health").raise_for_status()
            except httpx.HTTPError as error:
                samples.put(f"health request failed: {error!r}")
            else:
                samples.put(time.perf_counter() - started)
            done.wait(0.05)


def drained(prober: multiprocessing.Process, samples) -> list[float | str]:
    """Every sample the probe put, read while it ends (a queue's writer ends only once read)."""
    found: list[float | str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (prober.is_alive() or not samples.empty()):
        with contextlib.suppress(queue.Empty):
            found.append(samples.get(timeout=0.5))
    if prober.is_alive():
        prober.kill()
    prober.join()
    return found


def run_load(url: str, token: str, kernels: int, cells: int) -> LoadResult:
    """Drive `kernels` kernels of `cells` cells each against the server at `url`."""
    env = {**os.environ, "SANDBOX_KERNEL_ENDPOINT": url, "SANDBOX_KERNEL_TOKEN": token}
    result, lock = LoadResult(), threading.Lock()
    processes = multiprocessing.get_context("spawn")
    done, samples = processes.Event(), processes.Queue()
    prober = processes.Process(target=probe_health, args=(url, token, done, samples))
    workers = [
        threading.Thread(target=drive_kernel, args=(env, cells, result, lock), daemon=True)
        for _ in range(kernels)
    ]
    prober.start()
    started = time.perf_counter()
    try:
        for worker in workers:
            worker.start()
        deadline = time.monotonic() + DRIVER_SECONDS
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        result.seconds = time.perf_counter() - started
        stuck = sum(worker.is_alive() for worker in workers)
        if stuck:
            result.problems.append(f"{stuck} kernel drivers did not finish")
    finally:
        done.set()
        for sample in drained(prober, samples):
            if isinstance(sample, str):
                result.problems.append(sample)
            else:
                result.probe_seconds.append(sample)
    return result


def measure(kernels: int = 8, cells: int = 200) -> list[Row]:
    with embedded_server() as server:
        result = run_load(server.url, server.token, kernels, cells)
    if result.problems:
        raise SystemExit(
            "output lost or reordered, or health unanswered:\n" + "\n".join(result.problems[:10])
        )
    probes = sorted(result.probe_seconds)
    return [
        Row(f"load: cells/s, {kernels} kernels x {cells} cells", result.cells_per_second),
        Row(f"load: server health p50, {kernels} kernels (ms)", statistics.median(probes) * 1000),
        Row(
            f"load: server health max, {kernels} kernels (ms)",
            probes[-1] * 1000,
            target=f"<= {HEALTH_MAX_MS:g}",
            absolute=True,
        ),
    ]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kernels", type=int, default=8)
    parser.add_argument("--cells", type=int, default=200)
    options = parser.parse_args()
    print_table(measure(options.kernels, options.cells))
