"""A context's message socket: Jupyter messages between a notebook's kernel and the context's
kernel (the embedded server's `comms` and `debug` extensions).

One WebSocket per context, kept open for the context's life; frames are `frames.py`'s, so
binary buffers travel as they are. The client sends `{"channel", "msgType", "content",
"metadata", "requestId"}`; the server answers with the kernel's messages as
`{"channel", "msgType", "content", "metadata", "parentMsgId", "requestId"?}`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from .errors import SandboxConnectionError
from .frames import FrameError, decode_frame, encode_frame

OPEN_TIMEOUT = 10.0
KernelMessage = tuple[dict[str, Any], list[bytes]]
"""One message of the context's kernel, as relayed, and its buffers."""


class MessageSocket:
    """The open message socket of one context (belongs to the event loop that opened it)."""

    def __init__(self, connection: ClientConnection) -> None:
        self._connection = connection

    @classmethod
    async def open(cls, url: str, headers: Mapping[str, str]) -> MessageSocket:
        """Open the socket at `url` (http or https)."""
        try:
            connection = await connect(
                "ws" + url.removeprefix("http"),
                additional_headers=dict(headers),
                open_timeout=OPEN_TIMEOUT,
                compression=None,
                max_size=None,
            )
        except (InvalidHandshake, OSError, asyncio.TimeoutError) as error:
            raise SandboxConnectionError(f"cannot open the message socket: {error}") from None
        return cls(connection)

    async def send(
        self,
        channel: str,
        msg_type: str,
        content: Mapping[str, Any],
        *,
        request_id: str,
        metadata: Mapping[str, Any] | None = None,
        buffers: Sequence[bytes] = (),
    ) -> None:
        """Send one message to the context's kernel on `channel` (shell or control)."""
        message = {
            "channel": channel,
            "msgType": msg_type,
            "content": dict(content),
            "metadata": dict(metadata or {}),
            "requestId": request_id,
        }
        try:
            await self._connection.send(encode_frame(message, buffers))
        except ConnectionClosed as error:
            raise SandboxConnectionError(f"the message socket closed: {error}") from None

    async def messages(self) -> AsyncIterator[KernelMessage]:
        """The relayed messages as they come, until the socket closes; a frame that is not a
        message is skipped."""
        while True:
            try:
                frame = await self._connection.recv()
            except ConnectionClosed:
                return
            try:
                yield decode_frame(frame)
            except FrameError:
                continue

    async def aclose(self) -> None:
        await self._connection.close()
