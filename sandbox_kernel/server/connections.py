"""HTTP connections that cannot starve the server: idle ones make way for new ones.

Opening a connection needs no token, so anyone on the machine can hold many open. uvicorn
would keep each one forever until its first request and, past `limit_concurrency`, answer
every newcomer with a 503. Here a connection must start its first request within
FIRST_REQUEST_SECONDS, and once more than `budget` are open the one idle the longest (no
request in progress) is closed to make room: a real client always gets in, and the number
of descriptors the server holds stays bounded.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Any

from uvicorn.protocols.http.auto import AutoHTTPProtocol

from . import zerocopy

FIRST_REQUEST_SECONDS = 10.0
ZERO_COPY = AutoHTTPProtocol.__name__ == "HttpToolsProtocol"
"""uvicorn's httptools connections take the zero-copy extensions (zerocopy.py); h11's not."""


def guarded_protocol(budget: int, first_request_seconds: float = FIRST_REQUEST_SECONDS) -> type:
    """An HTTP protocol class for one server; its connections share one budget."""
    # Open connections, least recently idle first: made, or done with their last request.
    connections: OrderedDict[Any, None] = OrderedDict()

    class GuardedProtocol(AutoHTTPProtocol):  # type: ignore[misc, valid-type]
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            connections[self] = None
            if self.timeout_keep_alive_task is None:
                self.timeout_keep_alive_task = self.loop.call_later(
                    first_request_seconds, self.timeout_keep_alive_handler
                )
            if len(connections) > budget:
                self._close_longest_idle()

        def connection_lost(self, exc: Exception | None) -> None:
            connections.pop(self, None)
            super().connection_lost(exc)

        if ZERO_COPY:

            def on_headers_complete(self) -> None:
                super().on_headers_complete()
                zerocopy.equip(self)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if self in connections:
                connections.move_to_end(self)

        def handle_websocket_upgrade(self, *args: Any) -> None:
            connections.pop(self, None)  # the socket's own protocol takes the connection over
            super().handle_websocket_upgrade(*args)

        def _idle(self) -> bool:
            cycle = self.cycle
            pipelined = getattr(self, "pipeline", None)  # httptools keeps one, h11 does not
            return not pipelined and (cycle is None or cycle.response_complete)

        def _close_longest_idle(self) -> None:
            for connection in connections:
                if connection is not self and connection._idle():
                    del connections[connection]
                    connection.transport.close()
                    return

    return GuardedProtocol
