"""The WebSocket routes: executions one after another on one connection (`socket`), and a
context kernel's comm and debug messages both ways (`comms`, `debug`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Sequence

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import ValidationError

from ..errors import ApiError, InvalidRequest
from ..relay import MessageRelay
from ..responses import invalid_body, request_error
from .contexts import execution
from .lookups import NamedSandbox, Settings
from .models import Execute, check_timeout

RELAYED = ("comms", "debug")
"""The extensions whose messages the message socket relays."""

execution_router = APIRouter()
message_router = APIRouter()


@execution_router.websocket("/sandboxes/{sandbox_id}/contexts/{context_id}/execute")
async def execute_over_socket(
    websocket: WebSocket, named: NamedSandbox, context_id: str, settings: Settings
) -> None:
    """Executions one after another on one connection, which spares each cell an
    HTTP request: every text message is an execute body, answered with its entries
    (one message each, the last `endOfExecution`), or with one `requestError` entry
    carrying the code and message an HTTP request would have had."""
    await websocket.accept()
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            # A text message, or the same JSON sent as bytes by a less careful client.
            request = message.get("text") or message.get("bytes") or b""
            try:
                body = Execute.model_validate_json(request)
                check_timeout(body)
                context = named.running_context(context_id)
                entries = execution(context, body, settings.extensions, streaming=True)
            except ValidationError as error:
                await websocket.send_text(request_error(invalid_body(error)))
                continue
            except ApiError as error:
                await websocket.send_text(request_error(error))
                continue
            async with contextlib.aclosing(entries):
                async for entry in entries:
                    await websocket.send_text(json.dumps(entry))


async def _send_relayed(websocket: WebSocket, relay: MessageRelay) -> None:
    """Write the relay's frames to the socket as they come."""
    with contextlib.suppress(Exception):
        while True:
            frame = await relay.outgoing.get()
            if isinstance(frame, bytes):
                await websocket.send_bytes(frame)
            else:
                await websocket.send_text(frame)


@message_router.websocket("/sandboxes/{sandbox_id}/contexts/{context_id}/messages")
async def relay_messages(
    websocket: WebSocket, named: NamedSandbox, context_id: str, settings: Settings
) -> None:
    """The context kernel's comm and debug messages, both ways (relay.py); a frame
    the server does not relay is answered with one `requestError` frame."""
    relayed = [name for name in RELAYED if name in settings.extensions]
    try:
        context = named.running_context(context_id)
        channels = context.channels
        if channels is None:
            raise InvalidRequest("the context is not running")
    except ApiError as error:
        await websocket.close(code=4404, reason=error.message[:120])
        return
    await websocket.accept()
    with MessageRelay(channels, relayed) as relay:
        sender = asyncio.create_task(_send_relayed(websocket, relay))
        try:
            with contextlib.suppress(WebSocketDisconnect):
                while True:
                    message = await websocket.receive()
                    if message["type"] == "websocket.disconnect":
                        return
                    frame = message.get("text")
                    frame = frame if frame is not None else message.get("bytes") or b""
                    refusal = relay.receive(frame)
                    if refusal is not None:
                        relay.outgoing.put_nowait(request_error(InvalidRequest(refusal)))
        finally:
            sender.cancel()


def routers(extensions: Sequence[str]) -> list[APIRouter]:
    """The sockets a server offering `extensions` serves."""
    offered = [execution_router] if "socket" in extensions else []
    if any(name in extensions for name in RELAYED):
        offered.append(message_router)
    return offered
