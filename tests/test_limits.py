"""Per-sandbox limits: memory, processes, idle time and upload size."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator

import httpx
import pytest
from conftest import RunningServer, start_server

from sandbox_kernel import CodeInterpreterSandbox, SandboxError
from sandbox_kernel.server.cgroups import own_cgroup

pytestmark = pytest.mark.timeout(120)

MEMORY_MB = 1536
MAX_PROCESSES = 64
IDLE_WAIT_SECONDS = 3.5  # a 1 s idle timeout, checked every second


@pytest.fixture(scope="module")
def limited(tmp_path_factory) -> Iterator[RunningServer]:
    running = start_server(
        tmp_path_factory.mktemp("limited"),
        "--memory-mb",
        str(MEMORY_MB),
        "--max-processes",
        str(MAX_PROCESSES),
    )
    yield running
    running.stop()


@pytest.fixture
def limited_sandbox(limited) -> Iterator[CodeInterpreterSandbox]:
    sandbox = CodeInterpreterSandbox.create(endpoint=limited.url, token=limited.token)
    yield sandbox
    try:
        sandbox.delete()
    finally:
        sandbox.close()


def outputs(reply: dict) -> tuple[str, list[dict]]:
    results = reply["results"]
    stdout = "".join(entry["text"] for entry in results if entry["type"] == "stdout")
    return stdout, [entry for entry in results if entry["type"] == "error"]


def memory_cgroup_enforced() -> bool:
    """Root can make a memory cgroup per sandbox here; elsewhere RLIMIT_AS stands in."""
    directory = own_cgroup("memory")
    return directory is not None and os.access(directory, os.W_OK)


@pytest.mark.skipif(not memory_cgroup_enforced(), reason="no writable memory cgroup")
def test_a_sandbox_past_its_memory_cap_loses_its_interpreter_not_the_server(
    limited_sandbox, limited
):
    context = limited_sandbox.context.create()
    reply = context.execute(f"too_big = bytearray({2 * MEMORY_MB} * 2**20)", timeout=60)
    _, errors = outputs(reply)
    assert [error["name"] for error in errors] == ["ContextDied"]
    headers = {"X-API-Key": limited.token}
    assert httpx.get(f"{limited.url}/health", headers=headers, timeout=10).status_code == 200
    fresh = limited_sandbox.context.create()
    stdout, errors = outputs(fresh.execute("fits = bytearray(200 * 2**20)\nprint(len(fits))"))
    assert (stdout, errors) == (f"{200 * 2**20}\n", []), "the sandbox goes on"
    command = f"python3 -c 'bytearray({2 * MEMORY_MB} * 2**20)'"
    result = limited_sandbox.process.cmd(command, "/home/user")["result"]
    assert result["exitCode"] == -9 or result["exitCode"] == 137, result


def process_limit_enforced() -> bool:
    """As root, only a writable pids cgroup limits processes (root ignores RLIMIT_NPROC)."""
    if os.geteuid() != 0:
        return True
    directory = own_cgroup("pids")
    return directory is not None and os.access(directory, os.W_OK)


@pytest.mark.skipif(not process_limit_enforced(), reason="no writable pids cgroup as root")
def test_processes_past_the_limit_are_refused_and_the_sandbox_recovers(limited_sandbox, limited):
    context = limited_sandbox.context.create()
    spawn = (
        "import subprocess\n"
        "children = []\n"
        "try:\n"
        f"    for _ in range({2 * MAX_PROCESSES}):\n"
        "        children.append(subprocess.Popen(['sleep', '60']))\n"
        "except OSError as error:\n"
        "    print('refused', error.errno)\n"
        "print(len(children) < {MAX_PROCESSES})\n"
        "for child in children:\n"
        "    child.kill()\n"
        "    child.wait()\n"
    ).replace("{MAX_PROCESSES}", str(MAX_PROCESSES))
    stdout, errors = outputs(context.execute(spawn))
    assert (stdout, errors) == ("refused 11\nTrue\n", [])

    fork_bomb = f"i=0; while [ $i -lt {2 * MAX_PROCESSES} ]; do sleep 60 & i=$((i+1)); done"
    result = limited_sandbox.process.cmd(fork_bomb, "/home/user", timeout=30)["result"]
    assert "fork" in result["stderr"].lower()
    sleeping = [entry for entry in limited_sandbox.process.list() if entry["name"] == "sleep"]
    assert 0 < len(sleeping) < MAX_PROCESSES
    for entry in sleeping:
        limited_sandbox.process.kill(str(entry["pid"]))
    stdout, errors = outputs(context.execute("print('still here')"))
    assert (stdout, errors) == ("still here\n", [])


def status_of(server: RunningServer, sandbox: CodeInterpreterSandbox) -> str:
    headers = {"Authorization": f"Bearer {server.token}"}
    reply = httpx.get(f"{server.url}/sandboxes/{sandbox.sandbox_id}", headers=headers)
    return reply.json()["status"]


def status_after_idling(server: RunningServer, sandbox: CodeInterpreterSandbox) -> str:
    """Its status once left alone long enough to be reaped (asking earlier is activity)."""
    time.sleep(IDLE_WAIT_SECONDS)
    return status_of(server, sandbox)


def test_an_idle_sandbox_is_stopped_and_its_contexts_freed(server):
    sandbox = CodeInterpreterSandbox.create(endpoint=server.url, token=server.token, idle_timeout=1)
    try:
        context = sandbox.context.create()
        kernel_pid = next(
            entry["pid"]
            for entry in sandbox.process.list()
            if "context_kernel.py" in entry["cmdline"]
        )
        assert context.execute("1")["results"][-1]["status"] == "ok"
        assert status_after_idling(server, sandbox) == "TERMINATED"
        assert sandbox.context.list() == []
        assert kernel_pid not in {entry["pid"] for entry in sandbox.process.list()}
    finally:
        sandbox.delete()
        sandbox.close()


def test_a_running_cell_keeps_its_sandbox_alive(server):
    sandbox = CodeInterpreterSandbox.create(endpoint=server.url, token=server.token, idle_timeout=1)
    try:
        context = sandbox.context.create()
        reply = context.execute("import time; time.sleep(3); print('done')", timeout=30)
        assert outputs(reply) == ("done\n", [])
        assert status_of(server, sandbox) == "READY"
        assert status_after_idling(server, sandbox) == "TERMINATED"
    finally:
        sandbox.delete()
        sandbox.close()


def test_an_upload_of_101_mb_is_refused_and_leaves_no_file(sandbox, server, tmp_path):
    local = tmp_path / "big.bin"
    with open(local, "wb") as handle:
        handle.truncate(101 * 2**20)
    with pytest.raises(SandboxError) as refused:
        sandbox.file_system.upload(str(local), "/home/user/big.bin")
    assert (refused.value.status, refused.value.code) == (413, "PAYLOAD_TOO_LARGE")
    with pytest.raises(SandboxError) as missing:
        sandbox.file_system.stat("/home/user/big.bin")
    assert missing.value.status == 404
    staging = server.root / sandbox.sandbox_id / "staging"
    assert not staging.exists() or list(staging.iterdir()) == []


def test_caps_on_contexts_and_sandboxes_answer_429_and_lose_nothing(tmp_path):
    capped = start_server(tmp_path, "--max-contexts", "2", "--max-sandboxes", "1", "--spares", "0")
    try:
        with CodeInterpreterSandbox.create(endpoint=capped.url, token=capped.token) as sandbox:
            first = sandbox.context.create()
            sandbox.context.create()
            with pytest.raises(SandboxError) as refused:
                sandbox.context.create()
            assert (refused.value.status, refused.value.code) == (429, "LIMIT_EXCEEDED")
            assert "--max-contexts" in refused.value.message
            assert first.execute("print(1)")["results"][0]["text"] == "1\n"
            with pytest.raises(SandboxError) as refused:
                CodeInterpreterSandbox.create(endpoint=capped.url, token=capped.token)
            assert refused.value.status == 429 and "--max-sandboxes" in refused.value.message
            sandbox.delete()
        with CodeInterpreterSandbox.create(endpoint=capped.url, token=capped.token) as again:
            again.delete()
    finally:
        capped.stop()


async def test_creations_at_once_stay_under_the_sandbox_cap(tmp_path):
    """Creations in flight count against --max-sandboxes: a burst of them cannot each find
    room while the others are still being made."""
    capped = start_server(tmp_path, "--max-sandboxes", "2", "--spares", "0")
    headers = {"Authorization": f"Bearer {capped.token}"}
    try:
        async with httpx.AsyncClient(base_url=capped.url, headers=headers, timeout=60) as client:
            replies = await asyncio.gather(
                *(client.post("/sandboxes", json={"templateName": "default"}) for _ in range(8))
            )
            statuses = sorted(reply.status_code for reply in replies)
            assert statuses == [200] * 2 + [429] * 6, statuses
            created = [reply.json()["sandboxId"] for reply in replies if reply.status_code == 200]
            for sandbox_id in created:
                await client.delete(f"/sandboxes/{sandbox_id}")
    finally:
        capped.stop()


async def test_contexts_created_at_once_stay_under_the_context_cap(tmp_path):
    capped = start_server(tmp_path, "--max-contexts", "2", "--spares", "0")
    headers = {"Authorization": f"Bearer {capped.token}"}
    try:
        async with httpx.AsyncClient(base_url=capped.url, headers=headers, timeout=120) as client:
            created = await client.post("/sandboxes", json={"templateName": "default"})
            contexts = f"/sandboxes/{created.json()['sandboxId']}/contexts"
            replies = await asyncio.gather(
                *(client.post(contexts, json={"language": "python"}) for _ in range(5))
            )
            statuses = sorted(reply.status_code for reply in replies)
            assert statuses == [200] * 2 + [429] * 3, statuses
    finally:
        capped.stop()


def test_health_reports_the_sandbox_disk_use(limited_sandbox):
    before = limited_sandbox.check_health()["diskUsageBytes"]
    limited_sandbox.process.cmd("head -c 3000000 /dev/zero > big.bin", "/home/user")
    deadline = time.monotonic() + 15  # the figure is measured at most every 5 s
    while limited_sandbox.check_health()["diskUsageBytes"] - before < 3_000_000:
        assert time.monotonic() < deadline, "the new file never showed in diskUsageBytes"
        time.sleep(0.5)
