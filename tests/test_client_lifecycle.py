"""Creating, joining, stopping and deleting sandboxes; health, credentials and endpoints."""

from __future__ import annotations

import socket

import pytest

from sandbox_kernel import CodeInterpreterSandbox, SandboxError, SandboxNotFoundError
from sandbox_kernel.client import SandboxAuthError, SandboxConnectionError, SandboxRequestError
from sandbox_kernel.client.session import SandboxSession


def closed_port_url() -> str:
    """The URL of a loopback port that nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def assert_gone(server, sandbox_id: str) -> None:
    with pytest.raises(SandboxNotFoundError) as caught:
        CodeInterpreterSandbox.connect(sandbox_id, endpoint=server.url, token=server.token)
    assert (caught.value.status, caught.value.code) == (404, "NOT_FOUND")


def test_create_connect_stop_and_delete(server):
    sandbox = CodeInterpreterSandbox.create(endpoint=server.url, token=server.token)
    try:
        assert sandbox.sandbox_id
        assert (sandbox.status, sandbox.template_name) == ("READY", "default")
        sandbox.file.write("/home/user/kept.txt", "kept")

        joined = CodeInterpreterSandbox.connect(
            sandbox.sandbox_id, endpoint=server.url, token=server.token
        )
        try:
            assert (joined.sandbox_id, joined.status) == (sandbox.sandbox_id, "READY")
            assert joined.file.read("/home/user/kept.txt")["content"] == "kept"
        finally:
            joined.close()

        stopped = sandbox.stop()
        assert stopped["status"] == "TERMINATED"
        assert stopped["endedAt"]
        assert sandbox.status == "TERMINATED"
        with pytest.raises(SandboxRequestError) as caught:
            sandbox.file.write("/home/user/late.txt", "late")
        assert (caught.value.status, caught.value.code) == (409, "CONFLICT")

        deleted = sandbox.delete()
        assert deleted["sandboxId"] == sandbox.sandbox_id
    finally:
        sandbox.close()
    assert_gone(server, sandbox.sandbox_id)


async def test_async_create_connect_stop_and_delete(server):
    sandbox = await CodeInterpreterSandbox.create_async(endpoint=server.url, token=server.token)
    try:
        assert sandbox.status == "READY"
        joined = await CodeInterpreterSandbox.connect_async(
            sandbox.sandbox_id, endpoint=server.url, token=server.token
        )
        try:
            assert joined.sandbox_id == sandbox.sandbox_id
            assert (await joined.check_health_async())["status"] == "ok"
        finally:
            await joined.aclose()

        assert (await sandbox.stop_async())["status"] == "TERMINATED"
        assert (await sandbox.check_health_async())["status"] != "ok"
        assert (await sandbox.delete_async())["sandboxId"] == sandbox.sandbox_id
    finally:
        await sandbox.aclose()
    with pytest.raises(SandboxNotFoundError):
        await CodeInterpreterSandbox.connect_async(
            sandbox.sandbox_id, endpoint=server.url, token=server.token
        )


def test_deleted_sandbox_is_gone_for_every_operation(server):
    sandbox = CodeInterpreterSandbox.create(endpoint=server.url, token=server.token)
    sandbox.delete()
    try:
        with pytest.raises(SandboxNotFoundError):
            sandbox.check_health()
        with pytest.raises(SandboxNotFoundError):
            sandbox.file.read("/home/user/x.txt")
    finally:
        sandbox.close()
    assert_gone(server, sandbox.sandbox_id)


def test_with_block_deletes_the_created_sandbox(server):
    with CodeInterpreterSandbox.create(endpoint=server.url, token=server.token) as sandbox:
        sandbox_id = sandbox.sandbox_id
        assert sandbox.check_health()["status"] == "ok"
    assert_gone(server, sandbox_id)


async def test_async_with_block_deletes_the_created_sandbox(server):
    created = await CodeInterpreterSandbox.create_async(endpoint=server.url, token=server.token)
    async with created as sandbox:
        sandbox_id = sandbox.sandbox_id
    assert_gone(server, sandbox_id)


def test_with_block_leaves_a_joined_sandbox_running(sandbox, server):
    with CodeInterpreterSandbox.connect(
        sandbox.sandbox_id, endpoint=server.url, token=server.token
    ) as joined:
        assert joined.sandbox_id == sandbox.sandbox_id
    assert sandbox.check_health()["status"] == "ok"


def test_connect_to_an_unknown_id_is_not_found(server):
    with pytest.raises(SandboxNotFoundError) as caught:
        CodeInterpreterSandbox.connect(
            "sbx-does-not-exist", endpoint=server.url, token=server.token
        )
    assert caught.value.status == 404
    assert caught.value.request_id


async def test_async_connect_to_an_unknown_id_is_not_found(server):
    with pytest.raises(SandboxNotFoundError):
        await CodeInterpreterSandbox.connect_async(
            "sbx-does-not-exist", endpoint=server.url, token=server.token
        )


def test_check_health_describes_the_local_server(sandbox, server):
    health = sandbox.check_health()
    assert health["status"] == "ok"
    assert health["server"] == "sandbox-kernel"
    assert health["isolation"] == server.isolation
    assert isinstance(health["extensions"], list)


async def test_async_check_health_describes_the_local_server(sandbox, server):
    try:
        health = await sandbox.check_health_async()
    finally:
        await sandbox.aclose()
    assert (health["status"], health["server"], health["isolation"]) == (
        "ok",
        "sandbox-kernel",
        server.isolation,
    )
    assert isinstance(health["extensions"], list)


def test_wrong_token_is_an_auth_error(sandbox, server):
    with pytest.raises(SandboxAuthError) as caught:
        CodeInterpreterSandbox.create(endpoint=server.url, token="wrong-token")
    assert (caught.value.status, caught.value.code) == (401, "UNAUTHORIZED")
    with pytest.raises(SandboxAuthError):
        CodeInterpreterSandbox.connect(sandbox.sandbox_id, endpoint=server.url, token="wrong")


async def test_async_wrong_token_is_an_auth_error(server):
    with pytest.raises(SandboxAuthError) as caught:
        await CodeInterpreterSandbox.create_async(endpoint=server.url, token="wrong-token")
    assert caught.value.status == 401


def test_unreachable_endpoint_is_a_one_line_error_naming_it():
    endpoint = closed_port_url()
    with pytest.raises(SandboxConnectionError) as caught:
        CodeInterpreterSandbox.create(endpoint=endpoint, token="any")
    message = str(caught.value)
    assert endpoint in message
    assert "\n" not in message


async def test_async_unreachable_endpoint_is_a_one_line_error_naming_it():
    endpoint = closed_port_url()
    with pytest.raises(SandboxError) as caught:
        await CodeInterpreterSandbox.connect_async("sbx-any", endpoint=endpoint, token="any")
    message = str(caught.value)
    assert endpoint in message
    assert "\n" not in message


def test_endpoint_and_token_come_from_the_environment(server, monkeypatch):
    monkeypatch.setenv("SANDBOX_KERNEL_ENDPOINT", server.url)
    monkeypatch.setenv("SANDBOX_KERNEL_TOKEN", server.token)
    with CodeInterpreterSandbox.create() as sandbox:
        assert sandbox.endpoint == server.url
        assert sandbox.check_health()["status"] == "ok"
        with CodeInterpreterSandbox.connect(sandbox.sandbox_id) as joined:
            assert joined.sandbox_id == sandbox.sandbox_id


def test_token_from_the_environment_is_sent(server, monkeypatch):
    monkeypatch.setenv("SANDBOX_KERNEL_ENDPOINT", server.url)
    monkeypatch.setenv("SANDBOX_KERNEL_TOKEN", "not-the-server-token")
    with pytest.raises(SandboxAuthError):
        CodeInterpreterSandbox.create()


def test_unreachable_endpoint_from_the_environment_names_the_variable(monkeypatch):
    endpoint = closed_port_url()
    monkeypatch.setenv("SANDBOX_KERNEL_ENDPOINT", endpoint)
    with pytest.raises(SandboxConnectionError) as caught:
        CodeInterpreterSandbox.create()
    assert endpoint in str(caught.value)
    assert "SANDBOX_KERNEL_ENDPOINT" in str(caught.value)


async def test_a_failed_prepare_fails_the_open_and_close_leaves_nothing(server):
    """`prepare` runs beside the first context's start; when it fails, that context is
    still the session's, so closing deletes it with the sandbox."""

    async def failing(sandbox: CodeInterpreterSandbox) -> None:
        raise OSError("the copy failed")

    session = SandboxSession(
        endpoint=server.url, token=server.token, cwd="/home/user/work", prepare=failing
    )
    with pytest.raises(OSError, match="the copy failed"):
        await session.open_async()
    sandbox_id = session.sandbox_id
    assert len(session.owned_contexts) == 1
    await session.close_async()
    with pytest.raises(SandboxNotFoundError):
        CodeInterpreterSandbox.connect(sandbox_id, endpoint=server.url, token=server.token)
