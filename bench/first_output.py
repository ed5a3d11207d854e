"""Time to first output: from a `print` in the sandbox to its stream message at the frontend.

A cell prints `time.time()` and then sleeps, so the output can only arrive early if it is
streamed; the frontend (a jupyter_client on the same machine, so the clocks agree) notes when
the stream message arrives. The plain python3 kernel runs the same cell in the same run, as the
floor. Both use a warm embedded server that this script starts on a free loopback port.

    python bench/first_output.py [--runs 20]
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
from jupyter_client import BlockingKernelClient

TARGET_MS = 50.0
CELL = "import time\nprint(repr(time.time()), flush=True)\ntime.sleep(0.3)"


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


def measure(runs: int = 20) -> list[Row]:
    with embedded_server() as server:
        env = kernel_environment(server)
        kernels = {name: start_kernel(name, env) for name in ("sandbox", "python3")}
        for _, client in kernels.values():
            for _ in range(3):
                first_output_delay(client)
        delays: dict[str, list[float]] = {name: [] for name in kernels}
        for _ in range(runs):
            for name, (_, client) in kernels.items():
                delays[name].append(first_output_delay(client))
        for manager, client in kernels.values():
            client.stop_channels()
            manager.shutdown_kernel(now=False)
    ms = 1000
    return [
        Row(
            "time to first streamed output, median (ms)",
            statistics.median(delays["sandbox"]) * ms,
            statistics.median(delays["python3"]) * ms,
            f"<= {TARGET_MS:g}",
            absolute=True,
        ),
        Row(
            "time to first streamed output, p90 (ms)",
            percentile(delays["sandbox"], 0.9) * ms,
            percentile(delays["python3"], 0.9) * ms,
        ),
    ]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="measured cells per kernel")
    print_table(measure(parser.parse_args().runs))
