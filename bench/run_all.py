"""Run every benchmark and print one table: figure, baseline, ratio, target, verdict.

python bench/run_all.py [--quick]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, smaller files")
    quick = parser.parse_args().quick
    started = time.monotonic()
    rows = [
        *cell_overhead.measure(cells=100 if quick else 300, starts=3 if quick else 5),
        *cell_cpu.measure(cells=100 if quick else 300),
        *first_output.measure(runs=10 if quick else 20),
        *client_rate.measure(requests=100 if quick else 300),
        *transfer.measure(megabytes=64 if quick else 256),
        *contexts.measure(contexts=16, seconds=5 if quick else 10),
        *load.measure(kernels=8, cells=50 if quick else 200),
        *workspace.measure(megabytes=50, rounds=2 if quick else 3),
    ]
    memory = psutil.virtual_memory().total / 2**30
    print(
        f"\n{time.strftime('%Y-%m-%d')} on {os.cpu_count()} cores, {memory:.0f} GiB, "
        f"Python {platform.python_version()}; took {time.monotonic() - started:.0f} s\n"
    )
    print_table(rows)


if __name__ == "__main__":
    main()
