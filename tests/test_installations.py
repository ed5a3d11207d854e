"""Two servers on one root, as two installations sharing the data directory run them.

Each keeps its own sandboxes and spares: cells on one keep working while the other starts,
restarts, stops or crashes, and a starting server cleans up only after servers that are gone.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import httpx
import pytest
from conftest import RunningServer, start_server
from test_spares import wait_for_spares

from sandbox_kernel import CodeInterpreterSandbox

pytestmark = pytest.mark.timeout(240)


class Cells(threading.Thread):
    """Runs a cell after another on a new sandbox of `server` until stopped."""

    def __init__(self, server: RunningServer) -> None:
        super().__init__(daemon=True)
        self.sandbox = CodeInterpreterSandbox.create(endpoint=server.url, token=server.token)
        self.context = self.sandbox.context.create()
        self.failures: list[str] = []
        self.done = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                results = self.context.execute(f"{self.done} * 2")["results"]
                if results[0].get("text") != str(self.done * 2):
                    self.failures.append(repr(results))
            except Exception as error:
                self.failures.append(repr(error))
            self.done += 1

    def __enter__(self) -> Cells:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopping.set()
        self.join(timeout=60)
        assert self.done > 3, "too few cells ran meanwhile"
        assert self.failures == []
        self.sandbox.delete()
        self.sandbox.close()


def spares_by_owner(root: Path) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for record in root.glob("*/sandbox.json"):
        data = json.loads(record.read_text())
        if data.get("spare"):
            found.setdefault(data.get("owner"), set()).add(record.parent.name)
    return found


def test_cells_on_each_server_work_while_the_other_starts_restarts_and_stops(tmp_path):
    first = start_server(tmp_path, "--spares", "1")
    second = None
    try:
        wait_for_spares(first, 1)
        with Cells(first) as cells_on_first:
            second = start_server(tmp_path, "--spares", "1")
            wait_for_spares(second, 1)
            second.stop()
            second = start_server(tmp_path, "--spares", "1")
            wait_for_spares(second, 1)
            assert cells_on_first.done > 0
        # The first server's spare survived the second's starts: its next sandbox is that one.
        wait_for_spares(first, 1)
        claimed = CodeInterpreterSandbox.create(endpoint=first.url, token=first.token)
        assert claimed.context.execute("6 * 7")["results"][0]["text"] == "42"
        claimed.delete()
        with Cells(second) as cells_on_second:
            first.stop()
            first = start_server(tmp_path, "--spares", "1")
            wait_for_spares(first, 1)
            assert cells_on_second.done > 0
            first.stop()
            first = None
        assert len(spares_by_owner(tmp_path)) == 1  # the stopped server left no spare behind
    finally:
        for server in (first, second):
            if server is not None:
                server.stop()


def test_a_sandbox_of_a_live_server_is_neither_served_nor_deleted_by_another(tmp_path):
    first = start_server(tmp_path, "--spares", "0")
    second = start_server(tmp_path, "--spares", "0")
    try:
        with httpx.Client(headers={"X-API-Key": first.token}, timeout=30) as api:
            body = {"templateName": "default", "sandboxId": "taken"}
            assert api.post(f"{first.url}/sandboxes", json=body).status_code == 200
            # Another server neither lists it, nor takes its id, nor takes it over on restart.
            assert api.get(f"{second.url}/sandboxes/taken").status_code == 404
            assert api.post(f"{second.url}/sandboxes", json=body).status_code == 409
            second.stop()
            second = start_server(tmp_path, "--spares", "0")
            assert api.get(f"{second.url}/sandboxes/taken").status_code == 404
            assert api.get(f"{first.url}/sandboxes/taken").json()["status"] == "READY"
            # Once its server is gone, the next server to start takes it over.
            first.process.kill()
            first.process.wait()
            third = start_server(tmp_path, "--spares", "0")
            try:
                taken = api.get(f"{third.url}/sandboxes/taken")
                assert taken.json()["sandboxId"] == "taken"
            finally:
                third.stop()
    finally:
        first.stop()
        second.stop()


def test_a_crashed_servers_spare_is_cleaned_up_by_the_next_start_not_a_live_ones(tmp_path):
    live = start_server(tmp_path, "--spares", "1")
    crashed = start_server(tmp_path, "--spares", "1")
    try:
        wait_for_spares(live, 1)
        wait_for_spares(crashed, 1)
        before = spares_by_owner(tmp_path)
        assert len(before) == 2
        crashed.process.kill()
        crashed.process.wait()
        restarted = start_server(tmp_path, "--spares", "0")
        try:
            after = spares_by_owner(tmp_path)
            (survivor,) = after.values()
            assert survivor in before.values()
            wait_for_spares(live, 1)
            sandbox = CodeInterpreterSandbox.create(endpoint=live.url, token=live.token)
            try:
                assert sandbox.sandbox_id in survivor
                assert sandbox.context.execute("1 + 1")["results"][0]["text"] == "2"
            finally:
                sandbox.delete()
        finally:
            restarted.stop()
    finally:
        live.stop()
