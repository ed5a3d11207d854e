"""Large uploads and downloads on a plain-HTTP connection of their own, bytes moved by the OS.

httpx hands every 64 KiB of a body through Python (a read, the HTTP parser, a write), which
bounds a transfer at a few hundred MB/s. Against a plain `http://` server (the embedded one),
a transfer instead opens its own connection (`Connection: close`) and lets the kernel move
the bytes: `sendfile(2)` from the local file into the socket for an upload, `splice(2)` from
the socket through a pipe into the local file for a download. Only the request line, the
headers and an error's body are handled here; everything else goes through httpx.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import socket
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx

from .endpoints import Progress

HEADER_LIMIT = 64 * 1024
PIPE_BYTES = 1024 * 1024
STEP_BYTES = 8 * 1024 * 1024
"""Bytes moved between two progress reports."""


class TransferFailed(Exception):
    """The connection broke or the server's answer was not HTTP."""


def supported(endpoint: str) -> bool:
    """True where transfers can use their own connection: plain HTTP (TLS needs httpx), and
    a kernel with splice (Linux)."""
    return urlsplit(endpoint).scheme == "http" and hasattr(os, "splice")


def upload(
    url: str,
    params: Mapping[str, Any],
    headers: Mapping[str, str],
    local_path: str,
    progress: Progress | None,
    timeout: float | None,
) -> httpx.Response:
    """POST `local_path` as the raw body; the server's complete response."""
    with open(local_path, "rb") as file, _connection(url, timeout) as connection:
        size = os.fstat(file.fileno()).st_size
        request_headers = {
            **headers,
            "Content-Type": "application/octet-stream",
            "Content-Length": str(size),
        }
        connection.sendall(_request_head("POST", url, params, request_headers))
        _report(progress, 0, size)
        sent = 0
        # A server that refuses the upload (too large, say) answers before the body is in
        # and closes: stop sending then, and read its answer.
        while sent < size and not connection.answered():
            try:
                moved = os.sendfile(
                    connection.fileno(), file.fileno(), sent, min(STEP_BYTES, size - sent)
                )
            except (BrokenPipeError, ConnectionResetError):
                if not connection.answered():
                    raise
                break
            if moved == 0:
                raise TransferFailed(f"{local_path} shrank while it was sent")
            sent += moved
            _report(progress, sent, size)
        status, reply_headers, pending = _read_head(connection)
        body = _read_rest(connection, pending, reply_headers)
    return _response("POST", url, status, reply_headers, body)


def download(
    url: str,
    params: Mapping[str, Any],
    headers: Mapping[str, str],
    into: Callable[[httpx.Response], int | None],
    progress: Progress | None,
    timeout: float | None,
) -> tuple[httpx.Response, int]:
    """GET `url`; on success the body goes into the descriptor `into(response)` returns
    (None: not wanted). The response (with its body only when it failed) and the bytes
    written."""
    with _connection(url, timeout) as connection:
        connection.sendall(_request_head("GET", url, params, headers))
        status, reply_headers, pending = _read_head(connection)
        if not 200 <= status < 300:
            body = _read_rest(connection, pending, reply_headers)
            return _response("GET", url, status, reply_headers, body), 0
        response = _response("GET", url, status, reply_headers, b"")
        descriptor = into(response)
        length = _content_length(reply_headers)
        if descriptor is None or length is None:
            raise TransferFailed("a download needs a Content-Length")
        if len(pending) > length:
            raise TransferFailed("the server sent more than its Content-Length")
        _write_all(descriptor, pending)
        done = len(pending)
        _report(progress, done, length)
        for moved in _splice(connection, descriptor, length - done):
            done += moved
            _report(progress, done, length)
    return response, done


class _Connection:
    """A blocking socket whose every wait for the server is bounded by `timeout`."""

    def __init__(self, sock: socket.socket, timeout: float | None) -> None:
        self.socket = sock
        self.timeout = timeout
        self._poller = select.poll()
        self._poller.register(sock, select.POLLIN)

    def fileno(self) -> int:
        return self.socket.fileno()

    def answered(self) -> bool:
        """True when the server has sent something (or closed) while the request is going."""
        return bool(select.select([self.socket], [], [], 0)[0])

    def sendall(self, data: bytes) -> None:
        self.socket.sendall(data)

    def wait(self) -> None:
        """Until the server has sent something (or closed); TimeoutError past the timeout."""
        wait_ms = None if self.timeout is None else int(self.timeout * 1000)
        if not self._poller.poll(wait_ms):
            raise TimeoutError(f"the server sent nothing for {self.timeout:g} s")

    def recv(self, size: int) -> bytes:
        self.wait()
        return self.socket.recv(size)


@contextlib.contextmanager
def _connection(url: str, timeout: float | None) -> Iterator[_Connection]:
    parts = urlsplit(url)
    try:
        connection = socket.create_connection((parts.hostname, parts.port or 80), timeout=timeout)
    except OSError as error:
        raise httpx.ConnectError(str(error)) from error
    try:
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # Blocking, for sendfile and splice; waits for the server are bounded by _readable.
        connection.setblocking(True)
        yield _Connection(connection, timeout)
    except TimeoutError as error:
        raise httpx.ReadTimeout(str(error) or "timed out") from error
    except (OSError, TransferFailed) as error:
        raise httpx.ReadError(str(error) or type(error).__name__) from error
    finally:
        connection.close()


def _request_head(
    method: str, url: str, params: Mapping[str, Any], headers: Mapping[str, str]
) -> bytes:
    parts = urlsplit(url)
    target = parts.path or "/"
    if params:
        target += "?" + urlencode(params)
    lines = [f"{method} {target} HTTP/1.1", f"Host: {parts.netloc}", "Connection: close"]
    for name, value in headers.items():
        if "\r" in name + value or "\n" in name + value:
            raise ValueError(f"header {name!r} holds a line break")
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _read_head(connection: _Connection) -> tuple[int, list[tuple[str, str]], bytes]:
    """(status, headers, body bytes already read) of the server's answer."""
    received = b""
    while b"\r\n\r\n" not in received:
        if len(received) > HEADER_LIMIT:
            raise TransferFailed("the server's headers are too long")
        chunk = connection.recv(HEADER_LIMIT)
        if not chunk:
            raise TransferFailed("the server closed the connection before answering")
        received += chunk
    head, pending = received.split(b"\r\n\r\n", 1)
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    try:
        status = int(status_line.split(" ", 2)[1])
    except (IndexError, ValueError):
        raise TransferFailed(f"not an HTTP answer: {status_line[:80]!r}") from None
    headers = []
    for line in header_lines:
        name, _, value = line.partition(":")
        headers.append((name.strip(), value.strip()))
    return status, headers, pending


def _content_length(headers: list[tuple[str, str]]) -> int | None:
    for name, value in headers:
        if name.lower() == "content-length" and value.isdigit():
            return int(value)
    return None


def _read_rest(connection: _Connection, pending: bytes, headers: list[tuple[str, str]]) -> bytes:
    """The rest of a small body (a JSON reply): up to its length, or to the end."""
    length = _content_length(headers)
    chunks = [pending]
    received = len(pending)
    while length is None or received < length:
        chunk = connection.recv(HEADER_LIMIT)
        if not chunk:
            break
        chunks.append(chunk)
        received += len(chunk)
    body = b"".join(chunks)
    return body if length is None else body[:length]


def _response(
    method: str, url: str, status: int, headers: list[tuple[str, str]], body: bytes
) -> httpx.Response:
    kept = [(name, value) for name, value in headers if name.lower() != "transfer-encoding"]
    return httpx.Response(status, headers=kept, content=body, request=httpx.Request(method, url))


def _splice(source: _Connection, descriptor: int, count: int) -> Iterator[int]:
    """Move `count` bytes from the socket `source` into `descriptor` through a pipe,
    yielding every few MB how many were moved."""
    read_end, write_end = os.pipe()
    try:
        with contextlib.suppress(OSError):
            fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        remaining, step = count, 0
        while remaining:
            source.wait()
            moved = os.splice(source.fileno(), write_end, min(remaining, PIPE_BYTES))
            if moved == 0:
                raise TransferFailed(f"the body ended after {count - remaining} of {count} bytes")
            remaining -= moved
            step += moved
            while moved:
                moved -= os.splice(read_end, descriptor, moved)
            if step >= STEP_BYTES or not remaining:
                yield step
                step = 0
    finally:
        os.close(read_end)
        os.close(write_end)


def _write_all(descriptor: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(descriptor, view) :]


def _report(progress: Progress | None, done: int, total: int | None) -> None:
    if progress is not None:
        progress(done, total)
