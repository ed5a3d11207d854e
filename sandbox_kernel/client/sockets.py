"""Executions over one WebSocket per context: the server's "socket" extension.

A streamed HTTP request per cell costs both sides a request and response to build and
parse, and the client a connection-pool checkout: about 0.7 ms of a trivial cell here,
against 0.2 ms for a message out and one back on an open WebSocket. Each execution is one
text message (the execute body); the server answers with its entries, one message each,
ending with `endOfExecution`, or with a single `requestError`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.protocol import State

from .errors import SandboxConnectionError, SandboxError, error_for_status

OPEN_TIMEOUT = 10.0


class SocketRefused(SandboxError):
    """The WebSocket handshake was answered, but not by an upgrade (a proxy that does not
    pass WebSockets, say). Nothing was sent: the execution can go over HTTP instead."""


class ExecutionSockets:
    """Open WebSockets by URL, each reused for one execution after another.

    They belong to the event loop that opened them; on another loop they are opened anew.
    """

    def __init__(self, headers: Mapping[str, str]) -> None:
        self._headers = dict(headers)
        self._open: dict[str, ClientConnection] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    async def execute(self, url: str, body: Mapping[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """Send one execution on the socket at `url` (http or https) and yield its entries."""
        connection = await self._send(url, json.dumps(body))
        finished = False
        try:
            while True:
                try:
                    message = await connection.recv()
                except ConnectionClosed as error:
                    raise SandboxConnectionError(
                        f"the connection to {_where(url)} closed during the execution: {error}"
                    ) from None
                entry = _entry(url, message)
                if entry.get("type") == "requestError":
                    finished = True
                    raise error_for_status(
                        int(entry.get("status") or 400),
                        f"WebSocket {_path(url)}: {entry.get('message', 'refused')}",
                        code=entry.get("code"),
                    )
                if entry.get("type") == "endOfExecution":
                    finished = True
                yield entry
                if finished:
                    return
        finally:
            if not finished:
                # Left mid-execution (a failure, or the reader stopped): what is still to
                # come belongs to this execution, never to the next one on the socket.
                self._forget(url, connection)

    async def open(self, url: str) -> None:
        """Have the socket for `url` open ahead of its first execution."""
        if self._kept(url) is None:
            await self._connect(url)

    async def aclose(self) -> None:
        """Close every socket that belongs to the running event loop."""
        sockets, self._open = list(self._open.values()), {}
        if self._loop is asyncio.get_running_loop():
            await asyncio.gather(*(socket.close() for socket in sockets), return_exceptions=True)
        self._loop = None

    async def _send(self, url: str, text: str) -> ClientConnection:
        """The open socket for `url`, `text` sent on it. A kept socket the server has closed
        since (it restarted, say) is replaced once: nothing was sent on it."""
        kept = self._kept(url)
        if kept is not None:
            try:
                await kept.send(text)
                return kept
            except ConnectionClosed:
                self._forget(url, kept)
        connection = await self._connect(url)
        try:
            await connection.send(text)
        except ConnectionClosed as error:
            self._forget(url, connection)
            raise SandboxConnectionError(f"could not send to {_where(url)}: {error}") from None
        return connection

    def _kept(self, url: str) -> ClientConnection | None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._open = {}  # another loop's sockets cannot be used (nor closed) from here
            self._loop = loop
        connection = self._open.get(url)
        if connection is not None and connection.state is not State.OPEN:
            self._forget(url, connection)
            return None
        return connection

    async def _connect(self, url: str) -> ClientConnection:
        try:
            connection = await connect(
                "ws" + url.removeprefix("http"),
                additional_headers=self._headers,
                open_timeout=OPEN_TIMEOUT,
                compression=None,  # entries are small; images are base64 already
                max_size=None,  # an entry is as large as the output it carries
            )
        except InvalidHandshake as error:
            raise SocketRefused(f"WebSocket {_path(url)}: {error}") from None
        except (OSError, asyncio.TimeoutError) as error:
            raise SandboxConnectionError(f"cannot reach {_where(url)}: {error}") from None
        self._open[url] = connection
        return connection

    def _forget(self, url: str, connection: ClientConnection) -> None:
        """Drop `connection` at once, and from the kept ones if it is still the one for `url`."""
        if self._open.get(url) is connection:
            del self._open[url]
        if connection.transport is not None:
            connection.transport.abort()


def _entry(url: str, message: str | bytes) -> dict[str, Any]:
    try:
        entry = json.loads(message)
    except ValueError:
        entry = None
    if not isinstance(entry, dict):
        raise SandboxError(f"WebSocket {_path(url)}: a message is not an entry: {message[:200]!r}")
    return entry


def _path(url: str) -> str:
    return "/" + url.split("://", 1)[-1].split("/", 1)[-1]


def _where(url: str) -> str:
    return "the sandbox server at " + url.split("/sandboxes/", 1)[0]
