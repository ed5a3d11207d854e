"""The notebook's folder into a new sandbox: a 50 MB folder copied the cloud-style way (one
archive up, unpacked in the sandbox) against `cp -r` of the same folder into new files.

python bench/workspace.py [--megabytes N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from common import Row, embedded_server, print_table

from sandbox_kernel.client import CodeInterpreterSandbox
from sandbox_kernel.kernel.workspace import copy_folder


def make_folder(folder: Path, megabytes: int) -> None:
    """A notebook's folder: a few large data files, many small modules and notes."""
    (folder / "src").mkdir(parents=True)
    for index in range(200):
        (folder / "src" / f"module_{index}.py").write_text(f"VALUE = {index}\n" * 40)
    remaining = megabytes * 2**20 - sum(p.stat().st_size for p in (folder / "src").iterdir())
    for index in range(4):
        (folder / f"data-{index}.bin").write_bytes(os.urandom(remaining // 4))


def measure(megabytes: int = 50, rounds: int = 3) -> list[Row]:
    ours, cp = [], []
    with tempfile.TemporaryDirectory(dir=Path.home()) as scratch:
        folder = Path(scratch) / "project"
        make_folder(folder, megabytes)
        with embedded_server("--max-upload-mb", str(megabytes + 10)) as server:
            for round_number in range(rounds):
                started = time.perf_counter()
                shutil.copytree(folder, Path(scratch) / f"copy-{round_number}")
                cp.append(time.perf_counter() - started)
                sandbox = CodeInterpreterSandbox.create(endpoint=server.url, token=server.token)
                try:
                    started = time.perf_counter()
                    packed = asyncio.run(copy_folder(sandbox, folder, (megabytes + 1) * 2**20))
                    ours.append(time.perf_counter() - started)
                    if len(packed.files) != 204:
                        raise SystemExit(f"copied {len(packed.files)} files, not 204")
                finally:
                    sandbox.delete()
    ours_seconds, cp_seconds = statistics.median(ours), statistics.median(cp)
    label = f"{megabytes} MB notebook folder into a new sandbox"
    return [
        Row(f"{label}: seconds", ours_seconds, cp_seconds),
        Row(f"{label}: speed ratio vs cp -r", cp_seconds / ours_seconds, absolute=True),
    ]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=50)
    print_table(measure(parser.parse_args().megabytes))
