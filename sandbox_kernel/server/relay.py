"""A context's message socket on the server: comm and debug messages between one client and
the context's kernel (the `comms` and `debug` extensions).

The client's messages go to the kernel's shell (comms) or control (debug) channel under
message ids of the server's own; the kernel's messages that answer them come back with the
client's `requestId`, and comm messages that no request waits for (an execution that ended,
a thread) and every `debug_event` come back too. Executions carry their own comm messages
as `comm` entries, in order with their output.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Collection
from typing import Any

from ..client.frames import FrameError, decode_frame, encode_frame
from .channels import KernelChannels

log = logging.getLogger(__name__)

ALLOWED = {
    "comms": {
        ("shell", "comm_open"),
        ("shell", "comm_msg"),
        ("shell", "comm_close"),
        ("shell", "comm_info_request"),
    },
    "debug": {("control", "debug_request")},
}
REMEMBERED_REQUESTS = 4096
"""Requests whose late messages still find their way back (an LRU of message ids)."""
UNPROMPTED = ("comm_open", "comm_msg", "comm_close", "debug_event")
QUEUE_LIMIT = 10000


class MessageRelay:
    """One client's message socket on one context's kernel."""

    def __init__(self, channels: KernelChannels, extensions: Collection[str]) -> None:
        self.channels = channels
        self.allowed = set().union(*(ALLOWED[name] for name in extensions if name in ALLOWED))
        self.debug = "debug" in extensions
        self.comms = "comms" in extensions
        self.requests: OrderedDict[str, str] = OrderedDict()
        self.outgoing: asyncio.Queue[str | bytes] = asyncio.Queue(QUEUE_LIMIT)

    def __enter__(self) -> MessageRelay:
        self.channels.relays.add(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.channels.relays.discard(self)

    def receive(self, frame: str | bytes) -> str | None:
        """Send the client's frame to the kernel; a one-line refusal when it is not allowed."""
        try:
            message, buffers = decode_frame(frame)
        except FrameError as error:
            return str(error)
        channel, msg_type = message.get("channel"), message.get("msgType")
        content, metadata = message.get("content"), message.get("metadata") or {}
        if (channel, msg_type) not in self.allowed:
            return f"{channel}/{msg_type} is not relayed by this server"
        if not isinstance(content, dict) or not isinstance(metadata, dict):
            return "content and metadata must be objects"
        client = self.channels.client
        outgoing = client.session.msg(msg_type, content, metadata=metadata)
        self._remember(outgoing["header"]["msg_id"], str(message.get("requestId") or ""))
        socket = getattr(client, f"{channel}_channel").socket
        client.session.send(socket, outgoing, buffers=buffers or None)
        return None

    def offer(self, channel: str, message: dict[str, Any]) -> None:
        """A kernel message no request waited for: relay it if it answers this client or is
        a comm message or debug event; drop the rest."""
        msg_type = message["msg_type"]
        parent = message["parent_header"].get("msg_id")
        request_id = self.requests.get(parent) if parent else None
        if msg_type == "status" or (request_id is None and msg_type not in UNPROMPTED):
            return
        if msg_type == "debug_event" and not self.debug:
            return
        if msg_type.startswith("comm_") and not self.comms:
            return
        relayed = {
            "channel": channel,
            "msgType": msg_type,
            "content": message["content"],
            "metadata": message["metadata"],
            "parentMsgId": parent,
        }
        if request_id is not None:
            relayed["requestId"] = request_id
        buffers = [bytes(buffer) for buffer in message["buffers"]]
        with contextlib.suppress(asyncio.QueueFull):  # a client that stopped reading
            self.outgoing.put_nowait(encode_frame(relayed, buffers))

    def _remember(self, msg_id: str, request_id: str) -> None:
        self.requests[msg_id] = request_id
        while len(self.requests) > REMEMBERED_REQUESTS:
            self.requests.popitem(last=False)
