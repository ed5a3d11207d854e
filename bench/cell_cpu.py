"""Where a trivial cell's CPU goes: each process's CPU time per cell, sandbox vs python3.

A sandbox cell crosses three processes besides the frontend: the sandbox kernel, the
server, and the context's kernel in the sandbox. Their CPU time per cell (from psutil, over
many cells of `1`) says which of them a latency change has to work on; the python3
kernel's own figure is the baseline. Uses a warm embedded server on a free loopback port.

    python bench/cell_cpu.py [--cells 300]
"""

from __future__ import annotations

import argparse

import psutil
from common import Row, embedded_server, kernel_environment, print_table, start_kernel

CODE = "1"


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def context_kernel(server: psutil.Process) -> psutil.Process:
    """The one context kernel the server runs (Python running context_kernel.py, not the
    bubblewrap processes whose command lines name it too)."""
    found = [
        child
        for child in server.children(recursive=True)
        if child.name().startswith("python")
        and any(part.endswith("context_kernel.py") for part in child.cmdline())
    ]
    if len(found) != 1:
        raise SystemExit(f"expected one context kernel under the server, found {len(found)}")
    return found[0]


def cpu_per_cell(client, processes: dict[str, psutil.Process], cells: int) -> dict[str, float]:
    """Milliseconds of CPU each process spends per cell."""
    for _ in range(20):
        client.execute_interactive(CODE, timeout=60, output_hook=lambda message: None)
    before = {name: cpu_seconds(process) for name, process in processes.items()}
    for _ in range(cells):
        client.execute_interactive(CODE, timeout=60, output_hook=lambda message: None)
    return {
        name: (cpu_seconds(process) - before[name]) * 1000 / cells
        for name, process in processes.items()
    }


def measure(cells: int = 300) -> list[Row]:
    with embedded_server("--spares", "0") as server:
        env = kernel_environment(server)
        server_process = psutil.Process(server.pid)
        figures: dict[str, dict[str, float]] = {}
        for name in ("python3", "sandbox"):
            manager, client = start_kernel(name, env)
            # The sandbox kernel opens its context while it starts: a first cell waits for it.
            client.execute_interactive(CODE, timeout=60, output_hook=lambda message: None)
            processes = {"kernel": psutil.Process(manager.provisioner.process.pid)}
            if name == "sandbox":
                processes["server"] = server_process
                processes["context"] = context_kernel(server_process)
            figures[name] = cpu_per_cell(client, processes, cells)
            client.stop_channels()
            manager.shutdown_kernel(now=False)
    sandbox, python3 = figures["sandbox"], figures["python3"]
    return [
        Row("CPU ms per trivial cell, all processes", sum(sandbox.values()), python3["kernel"]),
        Row("CPU ms per trivial cell: sandbox kernel", sandbox["kernel"], python3["kernel"]),
        Row("CPU ms per trivial cell: server", sandbox["server"]),
        Row("CPU ms per trivial cell: context kernel", sandbox["context"]),
    ]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=300, help="measured cells per kernel")
    print_table(measure(parser.parse_args().cells))
