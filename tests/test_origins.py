"""Web pages and the server: the execution socket checks Origin, and there is no CORS."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from conftest import RunningServer, start_server
from test_sockets import run, socket_url
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from sandbox_kernel import CodeInterpreterSandbox
from sandbox_kernel.server.gate import origin_allowed

pytestmark = pytest.mark.timeout(120)

LAB = "https://lab.example.com"


@pytest.fixture(scope="module")
def lab_server(tmp_path_factory) -> Iterator[RunningServer]:
    running = start_server(
        tmp_path_factory.mktemp("origins"), "--spares", "0", "--allow-origin", f"{LAB}/"
    )
    yield running
    running.stop()


@pytest.fixture
async def socket_at(lab_server) -> AsyncIterator[str]:
    sandbox = await CodeInterpreterSandbox.create_async(
        endpoint=lab_server.url, token=lab_server.token
    )
    context = await sandbox.context.create_async()
    yield socket_url(lab_server, sandbox.sandbox_id, context.context_id)
    await sandbox.delete_async()
    await sandbox.aclose()


def headers(server: RunningServer) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.token}"}


@pytest.mark.parametrize(
    "origin", ["http://evil.example", "null", "http://127.0.0.1.evil.example", "file://"]
)
async def test_a_socket_from_a_foreign_page_is_refused(lab_server, socket_at, origin):
    with pytest.raises(InvalidStatus) as refused:
        async with connect(socket_at, additional_headers=headers(lab_server), origin=origin):
            pass
    assert refused.value.response.status_code == 403


@pytest.mark.parametrize(
    "origin", [None, "http://127.0.0.1:8888", "http://localhost:8888", "http://[::1]:8888", LAB]
)
async def test_a_socket_without_origin_from_loopback_or_an_allowed_origin_works(
    lab_server, socket_at, origin
):
    async with connect(socket_at, additional_headers=headers(lab_server), origin=origin) as socket:
        entries = await run(socket, {"code": "6 * 7"})
    assert entries[0]["bundle"]["text/plain"] == "42"  # sockets carry the bundle once


async def test_the_clients_own_socket_still_works(lab_server):
    sandbox = await CodeInterpreterSandbox.create_async(
        endpoint=lab_server.url, token=lab_server.token
    )
    try:
        context = await sandbox.context.create_async()
        entries = [entry async for entry in context.stream_async("print('kernel')")]
        assert entries[0]["text"] == "kernel\n"
        assert len(sandbox.data_api._sockets._open) == 1  # it went over the socket
    finally:
        await sandbox.delete_async()
        await sandbox.aclose()


def test_no_cors_for_a_foreign_origin(lab_server):
    foreign = {"Origin": "http://evil.example"}
    preflight = httpx.options(
        f"{lab_server.url}/health",
        headers={**foreign, "Access-Control-Request-Method": "GET"},
        timeout=30,
    )
    plain = httpx.get(f"{lab_server.url}/health", headers={**foreign, **headers(lab_server)})
    for response in (preflight, plain):
        assert not any(name.startswith("access-control-") for name in response.headers)


def test_origin_rules():
    assert origin_allowed(None)
    assert origin_allowed("http://127.0.0.1:1234") and origin_allowed("HTTP://LOCALHOST")
    assert not origin_allowed("http://localhost@evil.example")
    assert not origin_allowed("http://127.0.0.1:99999")
    assert not origin_allowed("")
    assert origin_allowed("https://lab.example.com", {"https://lab.example.com"})
