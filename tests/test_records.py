"""Sandbox records survive crashes: written whole, and a broken one is skipped, not fatal."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from sandbox_kernel.server.records import read_record, write_record

pytestmark = pytest.mark.timeout(120)

GOOD = {
    "sandboxId": "good",
    "templateName": "default",
    "templateType": "CodeInterpreter",
    "status": "TERMINATED",
    "sandboxIdleTimeoutSeconds": 600,
    "createdAt": "2026-01-01T00:00:00+00:00",
    "lastUpdatedAt": "2026-01-01T00:00:00+00:00",
    "endedAt": None,
    "metadata": {},
}
BROKEN = {
    "half-written": json.dumps(GOOD | {"sandboxId": "half-written"})[:40],
    "a-list": "[1, 2]",
    "wrong-id": json.dumps(GOOD | {"sandboxId": "someone-else"}),
    "odd-status": json.dumps(GOOD | {"sandboxId": "odd-status", "status": 5}),
    "empty": "",
}


SERVE = [sys.executable, "-m", "sandbox_kernel.cli", "serve", "--port", "0"]


def put(root: Path, name: str, text: str) -> None:
    (root / name).mkdir(parents=True)
    (root / name / "sandbox.json").write_text(text)


def test_a_broken_record_is_skipped_with_a_log_line_and_the_rest_load(tmp_path):
    root = tmp_path / "root"
    put(root, "good", json.dumps(GOOD))
    for name, text in BROKEN.items():
        put(root, name, text)
    log = tmp_path / "server.log"
    with open(log, "wb") as stderr:
        process = subprocess.Popen(
            [*SERVE, "--root", str(root), "--token", "t", "--spares", "0", "--log-level", "INFO"],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    try:
        line = process.stdout.readline()
        assert line, f"the server did not start: {log.read_text()}"
        url = json.loads(line)["url"]
        with httpx.Client(base_url=url, headers={"X-API-Key": "t"}, timeout=30) as api:
            assert api.get("/sandboxes/good").json()["data"]["status"] == "TERMINATED"
            for name in BROKEN:
                assert api.get(f"/sandboxes/{name}").status_code == 404, name
                again = api.post("/sandboxes", json={"templateName": "x", "sandboxId": name})
                assert again.status_code == 409, again.text
            assert api.get("/health").json()["sandboxes"] == 1
    finally:
        process.terminate()
        process.wait(timeout=30)
    logged = log.read_text()
    for name in BROKEN:
        assert f"sandbox record {root / name / 'sandbox.json'}" in logged, name


def test_a_record_is_replaced_whole_by_concurrent_writers(tmp_path):
    writers = [
        threading.Thread(
            target=lambda number=number: [
                write_record(tmp_path, {**GOOD, "sandboxId": tmp_path.name, "n": number}, None)
                for _ in range(50)
            ]
        )
        for number in range(8)
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    record, owner = read_record(tmp_path / "sandbox.json")
    assert record["n"] in range(8) and owner is None
    assert sorted(path.name for path in tmp_path.iterdir()) == ["sandbox.json"]


def test_the_owner_is_kept_in_the_file_but_not_in_the_record(tmp_path):
    write_record(tmp_path, {**GOOD, "sandboxId": tmp_path.name}, "a" * 32)
    assert json.loads((tmp_path / "sandbox.json").read_text())["owner"] == "a" * 32
    record, owner = read_record(tmp_path / "sandbox.json")
    assert owner == "a" * 32 and "owner" not in record
