"""Talk to one context kernel: every channel is read once and routed by parent message id.

A single reader per channel (iopub, shell, stdin) lets an execution, a completion and an
input reply share one kernel client without stealing each other's messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import zmq
from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.session import Session
from zmq.utils.monitor import parse_monitor_message

from .errors import Conflict
from .execution import Action, Execution, ExecutionRequest

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0
CHANNELS = ("iopub", "shell", "stdin", "control")
READY_TIMEOUT_SECONDS = 60.0
STDIN_EVENTS = zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED


class Ended(Exception):
    """The context went away (deleted, stopped, restarted) while a request was waiting."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name
        self.message = message


class KernelChannels:
    """Routes the kernel's messages to the request that caused them."""

    def __init__(self, client: AsyncKernelClient) -> None:
        self.client = client
        self._waiting: dict[str, asyncio.Queue] = {}
        self._readers: list[asyncio.Task] = []
        self._stdin_monitor: Any = None
        self._stdin_connected = True
        self.pending_input: str | None = None
        self.running: Execution | None = None
        self.relays: set[Any] = set()
        """Message sockets (`relay.MessageRelay`) offered what no request is waiting for."""

    def start(self) -> None:
        self._readers = [
            asyncio.create_task(self._read(channel))
            for channel in ("iopub", "shell", "stdin", "control")
        ]
        self._stdin_monitor = self.client.stdin_channel.socket.get_monitor_socket(STDIN_EVENTS)

    async def stop(self) -> None:
        for reader in self._readers:
            reader.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)
        self._readers = []
        if self._stdin_monitor is not None:
            with contextlib.suppress(zmq.ZMQError):
                self.client.stdin_channel.socket.disable_monitor()
            self._stdin_monitor.close(linger=0)
            self._stdin_monitor = None

    def end_all(self, name: str, message: str) -> None:
        """Wake every waiting request with the reason the context went away."""
        for queue in self._waiting.values():
            queue.put_nowait(("end", Ended(name, message)))

    async def _read(self, channel: str) -> None:
        socket = getattr(self.client, f"{channel}_channel").socket
        while True:
            try:
                raw = await socket.recv_multipart()
            except (zmq.ZMQError, RuntimeError):
                return
            try:
                message = decode_message(self.client.session, raw)
            except ValueError as error:
                log.warning("dropped a message on %s: %s", channel, error)
                continue
            parent = message["parent_header"].get("msg_id")
            queue = self._waiting.get(parent)
            if queue is not None and message["msg_type"] != "debug_event":
                queue.put_nowait((channel, message))
            else:
                for relay in list(self.relays):
                    relay.offer(channel, message)

    @contextlib.contextmanager
    def _expecting(self, msg_id: str):
        queue: asyncio.Queue = asyncio.Queue()
        self._waiting[msg_id] = queue
        try:
            yield queue
        finally:
            del self._waiting[msg_id]

    async def request(self, send: Any, timeout: float) -> dict[str, Any] | None:
        """Send a shell request (`send()` returns its msg_id); its reply content or None."""
        msg_id = send()
        with self._expecting(msg_id) as queue:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while (left := deadline - loop.time()) > 0:
                try:
                    channel, message = await asyncio.wait_for(queue.get(), left)
                except asyncio.TimeoutError:
                    return None
                if channel == "end":
                    raise message
                if channel == "shell":
                    return message["content"]
        return None

    async def wait_ready(self, timeout: float = READY_TIMEOUT_SECONDS) -> None:
        """Ask kernel_info until the kernel answers on shell and iopub (after a restart).

        A restarted kernel answers on shell before our iopub subscription reaches it, and
        output published in that gap is lost: wait for the request's iopub status too.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            msg_id = self.client.kernel_info()
            with self._expecting(msg_id) as queue:
                answered: set[str] = set()
                with contextlib.suppress(asyncio.TimeoutError):
                    while answered != {"shell", "iopub"}:
                        channel, message = await asyncio.wait_for(queue.get(), POLL_SECONDS)
                        if channel == "end":
                            raise message
                        answered.add(channel)
                    await self._stdin_reconnected(deadline)
                    return
        raise RuntimeError(f"the kernel did not answer within {timeout:g} s")

    async def _stdin_reconnected(self, deadline: float) -> None:
        """Wait until our stdin socket has its connection back (after a restart): the kernel
        drops an input request sent before, and the code waits for its answer forever."""
        monitor = self._stdin_monitor
        loop = asyncio.get_running_loop()
        while monitor is not None:
            while await monitor.poll(0):
                event = parse_monitor_message(await monitor.recv_multipart())
                self._stdin_connected = event["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED
            left = deadline - loop.time()
            if self._stdin_connected or left <= 0:
                return
            await monitor.poll(left * 1000)

    def answer_input(self, value: str) -> None:
        if self.pending_input is None:
            raise Conflict("the context is not waiting for input")
        self.pending_input = None
        self.client.input(value)

    def interrupt_running(self) -> None:
        """Mark the running execution (if any) as interrupted by the user."""
        if self.running is not None:
            self.running.interrupt()

    async def execute(
        self,
        request: ExecutionRequest,
        *,
        is_alive: Any,
        interrupt: Any,
        restart: Any,
        late_output_seconds: float = 0.0,
        interrupted_error: tuple[str, str] | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """Run `request`, yielding result entries as the kernel produces them.

        What the entries are is the `Execution`'s business; this loop only moves messages to
        it and performs the interrupts and restarts it asks for.
        """
        loop = asyncio.get_running_loop()
        message = self.client.session.msg(
            "execute_request", request.content(), metadata=request.metadata()
        )
        msg_id = message["header"]["msg_id"]
        execution = Execution(
            msg_id,
            request,
            loop.time(),
            late_output_seconds=late_output_seconds,
            interrupted_error=interrupted_error,
        )
        self.running = execution
        try:
            with self._expecting(msg_id) as queue:
                self.client.shell_channel.send(message)
                while not execution.done:
                    if queue.empty():  # wait_for costs a task per message: not for one here
                        try:
                            channel, item = await asyncio.wait_for(
                                queue.get(), execution.wait(loop.time())
                            )
                        except asyncio.TimeoutError:
                            alive = execution.idle or await is_alive()
                            entries, action = execution.quiet(loop.time(), alive)
                            if action is Action.INTERRUPT:
                                await interrupt()
                            elif action is Action.RESTART:
                                await restart()
                            for entry in entries:
                                yield entry
                            continue
                    else:
                        channel, item = queue.get_nowait()
                    if channel == "end":
                        entries = execution.ended(item.name, item.message)
                    else:
                        entries = execution.receive(channel, item, loop.time())
                    for entry in entries:
                        if entry["type"] == "inputRequest":
                            self.pending_input = msg_id
                        yield entry
        finally:
            self.pending_input = None
            self.running = None


def decode_message(session: Session, raw: list[bytes]) -> dict[str, Any]:
    """A kernel message from its wire frames, signature checked.

    Leaner than `Session.deserialize`, which also turns every date in the headers into a
    datetime: on a trivial cell that was a tenth of the server's time, for fields nobody
    here reads.
    """
    _, frames = session.feed_identities(raw, copy=True)
    if len(frames) < 5:
        raise ValueError(f"{len(frames)} frames after the delimiter, 5 expected")
    signature, header, parent, metadata, content = frames[:5]
    if session.auth is not None and not hmac.compare_digest(
        signature, session.sign([header, parent, metadata, content])
    ):
        raise ValueError("invalid signature")
    try:
        header_fields = json.loads(header)
        return {
            "header": header_fields,
            "msg_type": header_fields["msg_type"],
            "parent_header": json.loads(parent),
            "metadata": json.loads(metadata),
            "content": json.loads(content),
            "buffers": frames[5:],
        }
    except (KeyError, TypeError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"malformed message: {error}") from error
