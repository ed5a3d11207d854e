"""The unmodified agentrun-sdk, pointed at the embedded server, runs every data-plane operation."""

from __future__ import annotations

import base64
import contextlib
import os
import time
from collections.abc import Iterator

import pytest
from agentrun.sandbox import CodeInterpreterSandbox, Sandbox, SandboxClient, TemplateType
from agentrun.utils.config import Config
from agentrun.utils.exception import ClientError, ResourceNotExistError


@pytest.fixture(scope="module")
def sdk_environment(server) -> Iterator[None]:
    """What a user of the SDK sets to reach our server instead of the cloud."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AGENTRUN_DATA_ENDPOINT", server.url)
        patch.setenv("DISABLE_BREAKING_CHANGES_WARNING", "1")
        yield


@pytest.fixture(scope="module")
def sdk_config(server, sdk_environment) -> Config:
    return Config(headers={"X-API-Key": server.token})


@pytest.fixture(scope="module")
def sdk_sandbox(sdk_config) -> Iterator[CodeInterpreterSandbox]:
    created = SandboxClient(config=sdk_config).create_sandbox(
        template_name="sdk-template", config=sdk_config
    )
    sandbox = Sandbox.connect(
        created.sandbox_id, template_type=TemplateType.CODE_INTERPRETER, config=sdk_config
    )
    yield sandbox
    with contextlib.suppress(ResourceNotExistError):
        sandbox.delete()


def test_sdk_creates_and_connects_to_a_ready_code_interpreter(sdk_config):
    created = SandboxClient(config=sdk_config).create_sandbox(
        template_name="sdk-template", config=sdk_config
    )
    try:
        assert created.sandbox_id
        assert created.status == "READY"
        assert created.template_name == "sdk-template"
        assert created.sandbox_idle_timeout_seconds == 600
        assert created.created_at

        connected = Sandbox.connect(
            created.sandbox_id, template_type=TemplateType.CODE_INTERPRETER, config=sdk_config
        )
        assert isinstance(connected, CodeInterpreterSandbox)
        assert connected.sandbox_id == created.sandbox_id
        assert connected.check_health()["status"] == "ok"
    finally:
        SandboxClient(config=sdk_config).delete_sandbox(created.sandbox_id, config=sdk_config)


def test_sdk_writes_and_reads_text_and_binary_files(sdk_sandbox):
    text = "héllo, wörld ✓\nsecond line\n"
    written = sdk_sandbox.file.write("/home/user/notes/hello.txt", text)
    assert written["path"] == "/home/user/notes/hello.txt"
    assert written["size"] == len(text.encode())
    assert sdk_sandbox.file.read("/home/user/notes/hello.txt") == {
        "path": "/home/user/notes/hello.txt",
        "content": text,
        "encoding": "utf-8",
    }

    binary = bytes(range(256))
    encoded = base64.b64encode(binary).decode()
    sdk_sandbox.file.write("/home/user/blob.bin", encoded, encoding="base64")
    read = sdk_sandbox.file.read("/home/user/blob.bin")
    assert read["encoding"] == "base64"
    assert base64.b64decode(read["content"]) == binary


def test_sdk_lists_stats_makes_moves_and_removes_paths(sdk_sandbox):
    fs = sdk_sandbox.file_system
    fs.mkdir("/home/user/tree/a/b")
    sdk_sandbox.file.write("/home/user/tree/a/one.txt", "1")

    listing = fs.list("/home/user/tree/a")
    assert listing["path"] == "/home/user/tree/a"
    assert {(entry["name"], entry["type"]) for entry in listing["entries"]} == {
        ("b", "dir"),
        ("one.txt", "file"),
    }
    deep = fs.list("/home/user/tree", depth=3)
    assert "/home/user/tree/a/one.txt" in {entry["path"] for entry in deep["entries"]}

    info = fs.stat("/home/user/tree/a/one.txt")
    assert (info["type"], info["size"], info["mode"]) == ("file", 1, "0644")

    fs.move("/home/user/tree/a/one.txt", "/home/user/tree/a/b/two.txt")
    assert fs.stat("/home/user/tree/a/b/two.txt")["size"] == 1
    with pytest.raises(ClientError) as missing:
        fs.stat("/home/user/tree/a/one.txt")
    assert missing.value.status_code == 404

    fs.remove("/home/user/tree")
    with pytest.raises(ClientError) as removed:
        fs.list("/home/user/tree")
    assert removed.value.status_code == 404


def test_sdk_upload_and_download_are_byte_identical(sdk_sandbox, tmp_path):
    payload = os.urandom(300_000) + b"\x00\xff\r\n" + "é".encode()
    local = tmp_path / "payload.bin"
    local.write_bytes(payload)

    uploaded = sdk_sandbox.file_system.upload(str(local), "/home/user/up/payload.bin")
    assert uploaded == {"path": "/home/user/up/payload.bin", "size": len(payload)}

    saved = tmp_path / "downloaded.bin"
    downloaded = sdk_sandbox.file_system.download("/home/user/up/payload.bin", str(saved))
    assert downloaded["size"] == len(payload)
    assert saved.read_bytes() == payload


def test_sdk_runs_lists_inspects_and_kills_processes(sdk_sandbox):
    finished = sdk_sandbox.process.cmd("echo out; echo err >&2; exit 3", "/home/user")
    assert finished["status"] == "completed"
    assert finished["result"]["exitCode"] == 3
    assert finished["result"]["stdout"] == "out\n"
    assert finished["result"]["stderr"] == "err\n"

    started = sdk_sandbox.process.cmd("sleep 60 >/dev/null 2>&1 & echo $!", "/home/user")
    pid = int(started["result"]["stdout"])
    assert pid in {process["pid"] for process in sdk_sandbox.process.list()}
    assert "sleep" in sdk_sandbox.process.get(str(pid))["cmdline"]

    started_at = time.monotonic()
    assert sdk_sandbox.process.kill(str(pid))["killed"] is True
    assert time.monotonic() - started_at < 1.5, "a process that obeys SIGTERM is not waited on"
    with pytest.raises(ClientError) as gone:
        sdk_sandbox.process.get(str(pid))
    assert gone.value.status_code == 404


def test_sdk_kill_ends_a_process_that_ignores_sigterm(sdk_sandbox):
    command = "sh -c \"trap '' TERM; exec sleep 60\" >/dev/null 2>&1 & echo $!"
    pid = int(sdk_sandbox.process.cmd(command, "/home/user")["result"]["stdout"])
    time.sleep(0.2)
    assert sdk_sandbox.process.kill(str(pid))["killed"] is True
    assert pid not in {process["pid"] for process in sdk_sandbox.process.list()}


def test_sdk_context_keeps_state_and_reports_stdout_results_and_errors(sdk_sandbox):
    context = sdk_sandbox.context.create()
    context_id = context.context_id
    assert context_id in {item["id"] for item in sdk_sandbox.context.list()}
    assert sdk_sandbox.context.get(context_id).context_id == context_id

    assert context.execute("x = 41")["results"][-1]["status"] == "ok"
    reply = context.execute("print('x is', x)\nx + 1")
    assert reply["contextId"] == context_id
    stdout, result, end = reply["results"]
    assert stdout == {"type": "stdout", "text": "x is 41\n"}
    assert (result["type"], result["isMainResult"], result["text"]) == ("result", True, "42")
    assert (end["type"], end["status"]) == ("endOfExecution", "ok")

    failed = context.execute("1 / 0")["results"]
    assert failed[0]["type"] == "error"
    assert (failed[0]["name"], failed[0]["value"]) == ("ZeroDivisionError", "division by zero")
    assert failed[-1]["status"] == "error"

    assert sdk_sandbox.context.delete() == {"id": context_id, "deleted": True}
    assert context_id not in {item["id"] for item in sdk_sandbox.context.list()}
    with pytest.raises(ClientError) as gone:
        sdk_sandbox.context.get(context_id)
    assert gone.value.status_code == 404


def test_sdk_execute_without_a_context_uses_the_default_python_context(sdk_sandbox):
    first = sdk_sandbox.context.execute("y = 'kept'", context_id=None)
    second = sdk_sandbox.context.execute("print(y)", context_id=None)
    assert first["contextId"] == second["contextId"]
    assert second["results"][0] == {"type": "stdout", "text": "kept\n"}


async def test_sdk_async_calls_work_too(sdk_sandbox):
    await sdk_sandbox.file.write_async("/home/user/async.txt", "from async")
    assert (await sdk_sandbox.file.read_async("/home/user/async.txt"))["content"] == "from async"
    assert (await sdk_sandbox.check_health_async())["status"] == "ok"


def test_sdk_stops_then_deletes_a_sandbox(sdk_config):
    client = SandboxClient(config=sdk_config)
    created = client.create_sandbox(template_name="sdk-template", config=sdk_config)
    sandbox = Sandbox.connect(
        created.sandbox_id, template_type=TemplateType.CODE_INTERPRETER, config=sdk_config
    )

    stopped = sandbox.stop()
    assert stopped.status == "TERMINATED"
    assert stopped.ended_at
    assert client.get_sandbox(created.sandbox_id, config=sdk_config).status == "TERMINATED"

    deleted = sandbox.delete()
    assert deleted.sandbox_id == created.sandbox_id
    with pytest.raises(ResourceNotExistError):
        client.get_sandbox(created.sandbox_id, config=sdk_config)
    with pytest.raises(ResourceNotExistError):
        client.delete_sandbox(created.sandbox_id, config=sdk_config)


def test_sdk_sees_an_unknown_sandbox_as_resource_not_exist(sdk_config):
    with pytest.raises(ResourceNotExistError):
        Sandbox.connect(
            "sbx-does-not-exist", template_type=TemplateType.CODE_INTERPRETER, config=sdk_config
        )
    with pytest.raises(ResourceNotExistError):
        SandboxClient(config=sdk_config).stop_sandbox("sbx-does-not-exist", config=sdk_config)


def test_sdk_without_the_token_is_refused(sdk_environment):
    anonymous = Config()
    with pytest.raises(ClientError) as refused:
        SandboxClient(config=anonymous).create_sandbox(template_name="x", config=anonymous)
    assert refused.value.status_code == 401
    assert refused.value.error_code == "UNAUTHORIZED"
    assert refused.value.request_id
