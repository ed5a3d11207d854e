"""Transfers on the embedded server: raw uploads and zero-copy downloads, byte for byte.

A raw upload (`Content-Type: application/octet-stream`, the target in the query) is the
`rawUpload` extension; multipart stays for the agentrun-sdk. Both directions move the bytes
with sendfile/splice on the server's httptools connections.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

import httpx
import pytest
from conftest import read_answer

from sandbox_kernel import SandboxNotFoundError
from sandbox_kernel.server import zerocopy
from sandbox_kernel.server.connections import ZERO_COPY

BIG = 3 * 1024 * 1024 + 17


@pytest.fixture
def payload(tmp_path):
    path = tmp_path / "payload.bin"
    path.write_bytes(os.urandom(BIG))
    return path


def api(server, sandbox, path: str) -> str:
    return f"{server.url}/sandboxes/{sandbox.sandbox_id}/{path}"


def headers(server) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.token}"}


def test_health_offers_raw_uploads(sandbox):
    assert "rawUpload" in sandbox.extensions


def test_raw_upload_puts_the_body_in_place(server, sandbox, payload):
    reply = httpx.post(
        api(server, sandbox, "filesystem/upload"),
        params={"path": "/home/user/raw/payload.bin"},
        content=payload.read_bytes(),
        headers={**headers(server), "Content-Type": "application/octet-stream"},
        timeout=60,
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["size"] == BIG
    assert sandbox.file_system.stat("/home/user/raw/payload.bin")["size"] == BIG


def test_client_round_trip_is_byte_identical(sandbox, payload, tmp_path):
    assert sandbox.file_system.upload(str(payload), "/home/user/copy.bin")["size"] == BIG
    back = tmp_path / "back.bin"
    assert sandbox.file_system.download("/home/user/copy.bin", str(back))["size"] == BIG
    assert back.read_bytes() == payload.read_bytes()


async def test_async_client_round_trip_is_byte_identical(async_sandbox, payload, tmp_path):
    await async_sandbox.file_system.upload_async(str(payload), "/home/user/copy.bin")
    back = tmp_path / "back.bin"
    await async_sandbox.file_system.download_async("/home/user/copy.bin", str(back))
    assert back.read_bytes() == payload.read_bytes()


def test_raw_upload_without_a_length_is_refused_in_one_line(server, sandbox):
    reply = httpx.post(
        api(server, sandbox, "filesystem/upload"),
        params={"path": "/home/user/chunked.bin"},
        content=iter([b"abc"]),
        headers={**headers(server), "Content-Type": "application/octet-stream"},
    )
    assert reply.status_code == 400
    assert "Content-Length" in reply.json()["message"]


def raw_request(server, sandbox, name: str, length: int, body: bytes) -> str:
    """Send an upload's head and `body` (maybe fewer bytes than `length`), then end
    sending; the start of the server's answer."""
    parts = urlsplit(server.url)
    with socket.create_connection((parts.hostname, parts.port)) as connection:
        target = f"/sandboxes/{sandbox.sandbox_id}/filesystem/upload?path=/home/user/{name}"
        head = (
            f"POST {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Authorization: Bearer {server.token}\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: {length}\r\n\r\n"
        )
        connection.sendall(head.encode() + body)
        connection.shutdown(socket.SHUT_WR)
        return read_answer(connection).decode("latin-1")


def test_raw_upload_over_the_limit_is_refused_before_reading(server, sandbox):
    answer = raw_request(server, sandbox, "huge.bin", 10 * 2**40, b"")
    assert answer.startswith("HTTP/1.1 413"), answer
    with pytest.raises(SandboxNotFoundError):
        sandbox.file_system.stat("/home/user/huge.bin")


def test_a_body_cut_short_leaves_nothing(server, sandbox):
    answer = raw_request(server, sandbox, "cut.bin", 10_000_000, os.urandom(1_000_000))
    assert answer.startswith("HTTP/1.1 400"), answer
    assert "upload incomplete" in answer
    with pytest.raises(SandboxNotFoundError):
        sandbox.file_system.stat("/home/user/cut.bin")
    staging = server.root / sandbox.sandbox_id / "staging"
    assert not list(staging.glob("upload-*"))


def test_the_server_connections_offer_zero_copy():
    assert ZERO_COPY
    assert zerocopy.SENDFILE == "http.response.zerocopysend"


def test_a_uvicorn_cycle_of_another_shape_gets_no_extension():
    """A uvicorn whose request cycle lacks a field zerocopy reads keeps the chunked path."""

    class Cycle:
        pass

    cycle = Cycle()
    for field in zerocopy.CYCLE_FIELDS:
        setattr(cycle, field, None)
    cycle.scope = {"type": "http"}
    del cycle.flow
    protocol = type("Protocol", (), {"cycle": cycle, "scope": cycle.scope})()
    zerocopy.equip(protocol)
    assert "extensions" not in cycle.scope
    cycle.flow = None
    zerocopy.equip(protocol)
    assert set(cycle.scope["extensions"]) == {zerocopy.SENDFILE, zerocopy.RECEIVE_INTO}
