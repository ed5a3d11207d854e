"""Executions over a context's WebSocket (the "socket" extension): the server's side with a
plain WebSocket client, then the client's, which keeps one socket per context."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator

import pytest
from conftest import RunningServer, start_server
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from sandbox_kernel import CodeInterpreterSandbox
from sandbox_kernel.client import SandboxNotFoundError, transport
from sandbox_kernel.client.endpoints import Call
from sandbox_kernel.client.errors import SandboxRequestError


def socket_url(server: RunningServer, sandbox_id: str, context_id: str) -> str:
    base = "ws" + server.url.removeprefix("http")
    return f"{base}/sandboxes/{sandbox_id}/contexts/{context_id}/execute"


async def run(socket: ClientConnection, body: dict) -> list[dict]:
    """Send one execution and read its entries, up to the last one."""
    await socket.send(json.dumps(body))
    entries = []
    while True:
        entries.append(json.loads(await socket.recv()))
        if entries[-1]["type"] in ("endOfExecution", "requestError"):
            return entries


@pytest.fixture
async def context_socket(server, sandbox) -> AsyncIterator[tuple[ClientConnection, str]]:
    context = sandbox.context.create()
    url = socket_url(server, sandbox.sandbox_id, context.context_id)
    headers = {"Authorization": f"Bearer {server.token}"}
    async with connect(url, additional_headers=headers) as socket:
        yield socket, context.context_id


async def test_executions_follow_each_other_on_one_socket(context_socket):
    socket, context_id = context_socket
    first = await run(socket, {"code": "x = 6\nprint('set', flush=True)"})
    second = await run(socket, {"code": "x * 7"})
    assert [entry["type"] for entry in first] == ["stdout", "endOfExecution"]
    assert first[-1]["contextId"] == context_id
    assert second[0]["bundle"] == {"text/plain": "42"}
    assert "text" not in second[0]  # the socket carries each result's bundle once
    assert second[-1]["status"] == "ok"


async def test_a_refused_execution_says_why_and_the_socket_stays_usable(context_socket):
    socket, _ = context_socket
    (refused,) = await run(socket, {"code": 1})
    assert refused["type"] == "requestError"
    assert refused["status"] == 400 and refused["code"] == "INVALID_REQUEST"
    assert "code" in refused["message"]
    (timeout,) = await run(socket, {"code": "1", "timeout": -1})
    assert "timeout" in timeout["message"]
    await socket.send("not json")
    assert json.loads(await socket.recv())["message"] == "request body is not valid JSON"
    await socket.send(b'{"code": "3 * 3"}')  # the same JSON as a binary message is fine
    assert json.loads(await socket.recv())["bundle"]["text/plain"] == "9"
    assert json.loads(await socket.recv())["type"] == "endOfExecution"
    assert (await run(socket, {"code": "1 + 1"}))[0]["bundle"]["text/plain"] == "2"


async def test_a_context_deleted_meanwhile_is_refused_as_not_found(server, sandbox):
    context = sandbox.context.create()
    url = socket_url(server, sandbox.sandbox_id, context.context_id)
    async with connect(url, additional_headers={"X-API-Key": server.token}) as socket:
        context.delete()
        (refused,) = await run(socket, {"code": "1"})
    assert refused["status"] == 404 and refused["code"] == "NOT_FOUND"


async def test_the_socket_needs_the_token(server, sandbox):
    context = sandbox.context.create()
    url = socket_url(server, sandbox.sandbox_id, context.context_id)
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, additional_headers={"Authorization": "Bearer wrong"}):
            pass
    assert refused.value.response.status_code in (401, 403)


async def test_a_server_without_extensions_has_no_socket(tmp_path):
    plain = start_server(tmp_path, "--no-extensions", "--spares", "0")
    try:
        sandbox = await CodeInterpreterSandbox.create_async(endpoint=plain.url, token=plain.token)
        context = await sandbox.context.create_async()
        url = socket_url(plain, sandbox.sandbox_id, context.context_id)
        with pytest.raises(InvalidStatus):
            async with connect(url, additional_headers={"X-API-Key": plain.token}):
                pass
        # ...and the client runs its cells over plain requests there.
        entries = [entry async for entry in context.stream_async("6 * 7")]
        assert entries[0]["text"] == "42"
        await sandbox.aclose()
    finally:
        plain.stop()


# ---- the client


async def test_the_client_streams_over_the_socket_and_keeps_it(async_sandbox):
    context = await async_sandbox.context.create_async()
    first = [entry async for entry in context.stream_async("print('over the socket')")]
    sockets = async_sandbox.data_api._sockets._open
    (kept,) = sockets.values()
    second = [entry async for entry in context.stream_async("6 * 7")]
    assert first[0]["text"] == "over the socket\n"
    assert second[0]["text"] == "42"
    assert list(sockets.values()) == [kept]


async def test_an_execution_left_early_does_not_leak_into_the_next(async_sandbox):
    context = await async_sandbox.context.create_async()
    counting = "import time\nfor i in range(4):\n    print(i, flush=True)\n    time.sleep(0.2)"
    async with contextlib.aclosing(context.stream_async(counting)) as entries:
        async for entry in entries:
            assert entry["text"] == "0\n"
            break
    following = [entry async for entry in context.stream_async("print('next')")]
    # print() may reach the stream as "next" then "\n": only what arrived matters here.
    printed = "".join(entry["text"] for entry in following if entry["type"] == "stdout")
    assert printed == "next\n"
    assert [entry["type"] for entry in following if entry["type"] != "stdout"] == ["endOfExecution"]


async def test_refusals_on_the_socket_raise_as_over_http(async_sandbox):
    context = await async_sandbox.context.create_async()
    with pytest.raises(SandboxRequestError, match="timeout"):
        [entry async for entry in context.stream_async("1", timeout=-1)]
    (four, _) = [entry async for entry in context.stream_async("2 + 2")]
    assert four["text"] == "4"
    deleted = context.context_id
    await context.delete_async()
    with pytest.raises(SandboxNotFoundError):
        [entry async for entry in context.stream_async("1", context_id=deleted)]


async def test_a_refused_handshake_sends_executions_over_requests_instead(
    async_sandbox, monkeypatch
):
    """As behind a proxy that does not pass WebSockets: the handshake is answered without an
    upgrade (here, at a path with no socket), and executions stream over HTTP requests."""
    monkeypatch.setattr(
        transport, "execution_socket", lambda context_id: Call("GET", "no-socket-here")
    )
    context = await async_sandbox.context.create_async()
    first = [entry async for entry in context.stream_async("6 * 7")]
    second = [entry async for entry in context.stream_async("print('again')")]
    assert first[0]["text"] == "42"
    assert second[0]["text"] == "again\n"
    assert async_sandbox.data_api._sockets._open == {}
