"""`make bench` runs and prints every figure the performance issue asks for.

The figures themselves are not judged here (benchmarks are not timed tests): this checks
that `bench/run_all.py` completes against the real server and kernels and that each row is
there with a number, from its smoke run (every figure once, tiny sizes).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench"
FIGURES = (
    "trivial cell p50 (ms), sandbox vs python3",
    "trivial cell p99 (ms), sandbox vs python3",
    "start to first result, warm server (ms)",
    "start to first result, cold server (ms)",
    "CPU ms per trivial cell: sandbox kernel",
    "time to first streamed output, median (ms)",
    "client requests/s (file_system.stat)",
    "MB up+down vs cp x2, written: speed ratio",
    "MB up+down vs cp x2, durable: speed ratio",
    "server peak RSS during transfer (MB)",
    "memory per context (MB,",
    "contexts busy at once",
    "load: cells/s, 2 kernels x",
    "load: cells/s, 4 kernels x",
    "load: server health max, 4 kernels (ms)",
)
"""The smoke run's labels; the full run says 8 and 32 kernels where these say 2 and 4."""


def test_run_all_prints_every_figure():
    finished = subprocess.run(
        [sys.executable, "run_all.py", "--smoke"],
        cwd=BENCH,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert finished.returncode == 0, finished.stderr[-2000:]
    rows = finished.stdout.splitlines()
    for figure in FIGURES:
        (row,) = [row for row in rows if figure in row]
        assert re.search(r"\)?\s+\d+\.\d\d", row.split(figure, 1)[1]), row
