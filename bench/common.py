"""Shared pieces of the benchmarks: a warm embedded server and one table format."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
from jupyter_client import BlockingKernelClient, KernelManager


@dataclass
class EmbeddedServer:
    url: str
    token: str
    root: Path
    process: subprocess.Popen

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss_bytes(self) -> int:
        return psutil.Process(self.pid).memory_info().rss


@contextlib.contextmanager
def embedded_server(*extra: str) -> Iterator[EmbeddedServer]:
    """A `sandbox-kernel serve` on a free loopback port with a temporary root."""
    with tempfile.TemporaryDirectory() as scratch:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sandbox_kernel.cli",
                "serve",
                "--port",
                "0",
                "--root",
                scratch,
                "--log-level",
                "WARNING",
                *extra,
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            ready = json.loads(process.stdout.readline())
            yield EmbeddedServer(ready["url"], ready["token"], Path(scratch), process)
        finally:
            process.terminate()
            process.wait(timeout=30)


@dataclass
class Row:
    """One figure next to its baseline; `target` bounds ours/baseline (`<=`) or (`>=`)."""

    name: str
    ours: float
    baseline: float | None = None
    target: str = ""
    absolute: bool = False
    """The target bounds `ours` itself (e.g. a memory ceiling), not the ratio."""

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        return self.ours / self.baseline

    @property
    def verdict(self) -> str:
        value = self.ours if self.absolute else self.ratio
        if not self.target or value is None:
            return ""
        operator, bound = self.target.split()
        met = value <= float(bound) if operator == "<=" else value >= float(bound)
        return "ok" if met else "MISSED"


def print_table(rows: list[Row]) -> None:
    print(f"{'benchmark':52} {'ours':>11} {'baseline':>11} {'ratio':>7} {'target':>8}")
    for row in rows:
        baseline = "" if row.baseline is None else f"{row.baseline:11.2f}"
        ratio = "" if row.ratio is None else f"{row.ratio:7.2f}"
        print(
            f"{row.name:52} {row.ours:11.2f} {baseline:>11} {ratio:>7} {row.target:>8} "
            f"{row.verdict}"
        )


def kernel_environment(server: EmbeddedServer) -> dict[str, str]:
    """This process's environment, pointing sandbox kernels at `server`."""
    return {
        **os.environ,
        "SANDBOX_KERNEL_ENDPOINT": server.url,
        "SANDBOX_KERNEL_TOKEN": server.token,
    }


def start_kernel(name: str, env: dict[str, str]) -> tuple[KernelManager, BlockingKernelClient]:
    """A started kernel and a connected, ready client."""
    manager = KernelManager(kernel_name=name)
    manager.start_kernel(env=env)
    client = manager.client()
    client.start_channels()
    client.wait_for_ready(timeout=60)
    return manager, client


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]
