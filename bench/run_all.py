"""Run every benchmark and print one table: figure, baseline, ratio, target, verdict.

python bench/run_all.py [--quick | --smoke]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import cell_cpu
import cell_overhead
import client_rate
import contexts
import first_output
import load
import psutil
import transfer
import workspace
from common import print_table

SIZES = {
    # name: cells, starts, runs, requests, megabytes, seconds, load (kernels, cells) twice
    "full": (300, 5, 20, 300, 256, 10.0, (8, 200), (32, 100)),
    "quick": (100, 3, 10, 100, 64, 5.0, (8, 50), (32, 30)),
    "smoke": (5, 1, 2, 10, 4, 1.0, (2, 2), (4, 1)),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, smaller files")
    parser.add_argument(
        "--smoke", action="store_true", help="every figure once, from tiny runs (not figures)"
    )
    options = parser.parse_args()
    size = "smoke" if options.smoke else "quick" if options.quick else "full"
    cells, starts, runs, requests, megabytes, seconds, load_small, load_large = SIZES[size]
    started = time.monotonic()
    rows = [
        *cell_overhead.measure(cells=cells, starts=starts),
        *cell_cpu.measure(cells=cells),
        *first_output.measure(runs=runs),
        *client_rate.measure(requests=requests),
        *transfer.measure(megabytes=megabytes, rounds=1 if size == "smoke" else 5),
        *contexts.measure(contexts=4 if size == "smoke" else 16, seconds=seconds),
        *load.measure(*load_small),
        *load.measure(*load_large),
        *workspace.measure(megabytes=min(megabytes, 50), rounds=1 if size == "smoke" else 3),
    ]
    memory = psutil.virtual_memory().total / 2**30
    print(
        f"\n{time.strftime('%Y-%m-%d')} on {os.cpu_count()} cores, {memory:.0f} GiB, "
        f"Python {platform.python_version()}; took {time.monotonic() - started:.0f} s\n"
    )
    print_table(rows)


if __name__ == "__main__":
    main()
