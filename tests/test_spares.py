"""Spare sandboxes: made ahead with a Python context running, handed out on create."""

from __future__ import annotations

import json
import time
from datetime import datetime

import httpx
import pytest
from conftest import RunningServer, start_server

from sandbox_kernel.client import CodeInterpreterSandbox, SandboxError


def headers(server: RunningServer) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.token}"}


def health(server: RunningServer) -> dict:
    return httpx.get(f"{server.url}/health", headers=headers(server), timeout=30).json()


def wait_for_spares(server: RunningServer, count: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while health(server)["spareSandboxes"] != count:
        if time.monotonic() > deadline:
            raise AssertionError(f"no {count} spare sandboxes after {timeout:g} s")
        time.sleep(0.1)


def spare_directories(server: RunningServer) -> set[str]:
    found = set()
    for record in server.root.glob("*/sandbox.json"):
        if json.loads(record.read_text()).get("spare"):
            found.add(record.parent.name)
    return found


def spare_created_at(server: RunningServer) -> str:
    """The `createdAt` of the server's one spare's record."""
    (spare_id,) = spare_directories(server)
    return json.loads((server.root / spare_id / "sandbox.json").read_text())["createdAt"]


def kernel_started_at(sandbox: CodeInterpreterSandbox) -> float:
    (kernel,) = [
        entry for entry in sandbox.process.list() if "context_kernel.py" in entry["cmdline"]
    ]
    return datetime.fromisoformat(kernel["createTime"]).timestamp()


@pytest.fixture
def spare_server(tmp_path):
    running = start_server(tmp_path, "--spares", "1")
    yield running
    running.stop()


def test_a_new_sandbox_gets_a_python_context_that_was_already_running(spare_server):
    wait_for_spares(spare_server, 1)
    made_at = spare_created_at(spare_server)
    sandbox = CodeInterpreterSandbox.create(
        "analysis", endpoint=spare_server.url, token=spare_server.token, idle_timeout=1234
    )
    try:
        warm = kernel_started_at(sandbox)  # running before any context was asked for
        context = sandbox.context.create()
        assert kernel_started_at(sandbox) == warm
        assert context.execute("6 * 7")["results"][0]["text"] == "42"
        info = sandbox.info
        # The spare takes on what the caller asked for, and its own creation time.
        assert info["templateName"] == "analysis"
        assert info["sandboxIdleTimeoutSeconds"] == 1234
        assert datetime.fromisoformat(info["createdAt"]) > datetime.fromisoformat(made_at)
        assert [entry["id"] for entry in sandbox.context.list()] == [context.context_id]
    finally:
        sandbox.delete()


def test_spares_are_invisible_until_claimed_and_the_pool_refills(spare_server):
    wait_for_spares(spare_server, 1)
    assert health(spare_server)["sandboxes"] == 0
    (spare_id,) = spare_directories(spare_server)
    sandbox = CodeInterpreterSandbox.create(endpoint=spare_server.url, token=spare_server.token)
    try:
        assert sandbox.sandbox_id == spare_id
        assert spare_id not in spare_directories(spare_server)
        wait_for_spares(spare_server, 1)
        assert health(spare_server)["sandboxes"] == 1
        assert len(spare_directories(spare_server)) == 1
    finally:
        sandbox.delete()


def test_the_warm_context_moves_to_the_directory_asked_for_and_leaves_no_trace(spare_server):
    wait_for_spares(spare_server, 1)
    sandbox = CodeInterpreterSandbox.create(endpoint=spare_server.url, token=spare_server.token)
    try:
        sandbox.file_system.mkdir("/home/user/work")
        warm = kernel_started_at(sandbox)
        context = sandbox.context.create(cwd="/home/user/work")
        assert [entry["cwd"] for entry in sandbox.context.list()] == ["/home/user/work"]
        reply = context.execute("import os; os.getcwd()")
        assert reply["results"][0]["text"] == "'/home/user/work'"
        assert kernel_started_at(sandbox) == warm
        # The move bound no name, took no execution count and left no history.
        reply = context.execute("[len(In), 'os' in dir(), __import__('sys')._getframe(0).f_lineno]")
        assert reply["results"][0]["text"] == "[3, True, 1]"
        # A restarted interpreter starts in the spare's directory: it is moved again.
        httpx.post(
            f"{spare_server.url}/sandboxes/{sandbox.sandbox_id}/contexts/{context.context_id}"
            "/restart",
            headers=headers(spare_server),
            timeout=60,
        ).raise_for_status()
        reply = context.execute("import os; os.getcwd(), len(In)")
        assert reply["results"][0]["text"] == "('/home/user/work', 2)"
    finally:
        sandbox.delete()


def test_a_context_in_a_missing_directory_is_refused_and_the_warm_one_kept(spare_server):
    wait_for_spares(spare_server, 1)
    sandbox = CodeInterpreterSandbox.create(endpoint=spare_server.url, token=spare_server.token)
    try:
        with pytest.raises(SandboxError, match="not a directory"):
            sandbox.context.create(cwd="/home/user/missing")
        warm = kernel_started_at(sandbox)
        sandbox.context.create()
        assert kernel_started_at(sandbox) == warm
    finally:
        sandbox.delete()


def test_a_context_that_cannot_be_the_warm_one_starts_fresh(spare_server):
    wait_for_spares(spare_server, 1)
    sandbox = CodeInterpreterSandbox.create(endpoint=spare_server.url, token=spare_server.token)
    try:
        warm = kernel_started_at(sandbox)
        # A context with a history file of its own needs an interpreter started for it.
        context = sandbox.context.create(history_file=":memory:")
        assert context.execute("6 * 7")["results"][0]["text"] == "42"
        kernels = [
            entry for entry in sandbox.process.list() if "context_kernel.py" in entry["cmdline"]
        ]
        started = {datetime.fromisoformat(entry["createTime"]).timestamp() for entry in kernels}
        assert started != {warm}, "the context runs in the warm interpreter"
    finally:
        sandbox.delete()


def test_a_sandbox_asked_for_by_id_is_made_new(spare_server):
    wait_for_spares(spare_server, 1)
    body = {"templateName": "default", "sandboxId": "mine-1"}
    created = httpx.post(
        f"{spare_server.url}/sandboxes", json=body, headers=headers(spare_server), timeout=30
    )
    assert created.json()["sandboxId"] == "mine-1"
    assert len(spare_directories(spare_server)) == 1


def test_unclaimed_spares_are_deleted_when_the_server_stops_or_after_a_crash(tmp_path):
    crashed = start_server(tmp_path, "--spares", "1")
    wait_for_spares(crashed, 1)
    (left_over,) = spare_directories(crashed)
    crashed.process.kill()
    crashed.process.wait()
    assert (tmp_path / left_over).is_dir()

    restarted = start_server(tmp_path, "--spares", "1")
    try:
        assert not (tmp_path / left_over).exists()
        wait_for_spares(restarted, 1)
        (made,) = spare_directories(restarted)
    finally:
        restarted.stop()
    assert not (tmp_path / made).exists()


def test_no_spares_are_made_when_turned_off(tmp_path):
    server = start_server(tmp_path, "--spares", "0")
    try:
        # A server making a spare hands out that one, even before it is ready: this one is new.
        sandbox = CodeInterpreterSandbox.create(endpoint=server.url, token=server.token)
        with pytest.raises(ValueError):
            kernel_started_at(sandbox)  # no interpreter runs before a context is asked for
        assert health(server)["spareSandboxes"] == 0
        assert {path.parent.name for path in tmp_path.glob("*/sandbox.json")} == {
            sandbox.sandbox_id
        }
    finally:
        server.stop()
