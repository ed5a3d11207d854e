"""Eight kernels run two hundred cells each against one server: nothing lost, nothing late."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from load import run_load


def test_eight_busy_kernels_lose_and_reorder_no_output_and_the_server_stays_responsive(server):
    result = run_load(server.url, server.token, kernels=8, cells=200)
    assert result.problems == []  # also: every health request was answered (load.PROBE_TIMEOUT)
    assert result.cells == 8 * 200
    assert result.probe_seconds, "the health probe never ran"
