"""Callers without the token cannot starve the server: idle sockets, unread bodies."""

from __future__ import annotations

import resource
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from conftest import RunningServer, read_answer, start_server

from sandbox_kernel import CodeInterpreterSandbox

pytestmark = pytest.mark.timeout(180)

IDLE_CONNECTIONS = 1100


@pytest.fixture
def fresh_server(tmp_path) -> Iterator[RunningServer]:
    """No spare: the sandbox and context asked for below start while the sockets are open."""
    running = start_server(tmp_path, "--spares", "0")
    yield running
    running.stop()


def address(server: RunningServer) -> tuple[str, int]:
    parts = urlsplit(server.url)
    return parts.hostname, parts.port


def enough_descriptors(count: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < count:
        if hard != resource.RLIM_INFINITY and hard < count:
            pytest.skip(f"this process may open only {hard} descriptors")
        resource.setrlimit(resource.RLIMIT_NOFILE, (count, hard))


def test_a_sandbox_context_and_cell_work_while_many_idle_connections_are_open(fresh_server):
    enough_descriptors(IDLE_CONNECTIONS + 256)
    idle = []
    try:
        for number in range(IDLE_CONNECTIONS):
            connection = socket.create_connection(address(fresh_server), timeout=10)
            if number % 2:  # half of them start a request and never finish it
                connection.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            idle.append(connection)
        sandbox = CodeInterpreterSandbox.create(endpoint=fresh_server.url, token=fresh_server.token)
        try:
            context = sandbox.context.create()
            results = context.execute("print(1)")["results"]
            assert [entry["text"] for entry in results if entry["type"] == "stdout"] == ["1\n"]
        finally:
            sandbox.delete()
    finally:
        for connection in idle:
            connection.close()


def test_the_token_is_checked_before_a_body_is_read(fresh_server):
    with socket.create_connection(address(fresh_server), timeout=10) as connection:
        connection.sendall(
            b"POST /sandboxes/any/files HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: 50000000\r\n\r\n{"
        )
        # A server waiting for the body answers nothing: the read times out and fails.
        reply = read_answer(connection)
    assert reply.startswith(b"HTTP/1.1 401"), reply[:200]
    assert b"UNAUTHORIZED" in reply
