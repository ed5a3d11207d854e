"""Bodies moved between a connection's socket and a file by the kernel, not through Python.

Two ASGI extensions that the server's HTTP protocol (connections.py) offers on uvicorn's
httptools connections:

- `http.response.zerocopysend` (the ASGI spec's): a response body sent from an open file
  with `sendfile(2)`, after the headers (which must carry its `content-length`);
- `sandbox_kernel.receive_into`: a request body of known `content-length` written into an
  open file with `splice(2)`, socket to pipe to file. The HTTP parser never sees those
  bytes, so the connection closes after the response.

Anything else (h11 connections, the TestClient) gets neither, and the routes fall back to
chunked reads and writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import select
import threading
from typing import Any

SENDFILE = "http.response.zerocopysend"
RECEIVE_INTO = "sandbox_kernel.receive_into"
PIPE_BYTES = 1024 * 1024
IDLE_SECONDS = 60.0
"""A raw upload that sends nothing for this long is abandoned."""
POLL_MILLISECONDS = 500


class BodyEnded(Exception):
    """The client stopped sending before the body's declared length."""


CYCLE_FIELDS = (
    "body",
    "chunked_encoding",
    "disconnected",
    "expected_content_length",
    "flow",
    "keep_alive",
    "more_body",
    "response_complete",
    "response_started",
    "scope",
    "send",
    "transport",
    "waiting_for_100_continue",
)
"""What this module reads of uvicorn's request cycle. A uvicorn whose cycle lacks one of
them gets neither extension, and the routes use their chunked fallbacks."""


def equip(protocol: Any) -> None:
    """Offer both extensions on the request `protocol` (an httptools protocol) just parsed
    the headers of; its cycle's ASGI task has not run yet."""
    cycle = getattr(protocol, "cycle", None)
    if cycle is None or cycle.scope is not getattr(protocol, "scope", None):
        return  # a WebSocket upgrade: no cycle of its own
    if not all(hasattr(cycle, field) for field in CYCLE_FIELDS):
        return
    extensions = cycle.scope.setdefault("extensions", {})
    extensions[SENDFILE] = {}
    extensions[RECEIVE_INTO] = {"receive_into": lambda fd, length: _receive_into(cycle, fd, length)}
    send = cycle.send

    async def send_or_sendfile(message: Any) -> None:
        if message["type"] == SENDFILE:
            await _sendfile(cycle, send, message)
        else:
            await send(message)

    cycle.send = send_or_sendfile


async def _sendfile(cycle: Any, send: Any, message: Any) -> None:
    if not cycle.response_started or cycle.response_complete or cycle.chunked_encoding:
        raise RuntimeError(f"{SENDFILE} needs a started response with a content-length")
    count = message.get("count")
    if count is None or count > cycle.expected_content_length:
        raise RuntimeError(f"{SENDFILE} count must be given and within the content-length")
    if cycle.flow.write_paused and not cycle.disconnected:
        await cycle.flow.drain()
    if cycle.disconnected:
        return
    socket = cycle.transport.get_extra_info("socket")
    while cycle.transport.get_write_buffer_size() and not cycle.transport.is_closing():
        await asyncio.sleep(0.001)  # the headers first, whole
    sent = -1
    if socket is not None and not cycle.transport.is_closing():
        offset = message.get("offset") or 0
        sent = await _on_own_thread(_send_body, socket.fileno(), message["file"], offset, count)
    if sent != count:  # the file shrank or the client left: the body cannot be completed
        cycle.disconnected = True
        cycle.transport.close()
        return
    cycle.expected_content_length -= sent
    more = message.get("more_body", False)
    await send({"type": "http.response.body", "body": b"", "more_body": more})


async def _receive_into(cycle: Any, descriptor: int, length: int) -> int:
    """Write the request body, `length` bytes, into `descriptor`; raises BodyEnded when the
    client sends fewer. What the parser already buffered is written first."""
    if cycle.waiting_for_100_continue and not cycle.transport.is_closing():
        cycle.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        cycle.waiting_for_100_continue = False
    cycle.flow.pause_reading()
    buffered = bytes(cycle.body)
    cycle.body = bytearray()
    if len(buffered) > length:
        raise BodyEnded("the body is longer than its content-length")
    write_all(descriptor, buffered)
    remaining = length - len(buffered)
    if not cycle.more_body or remaining == 0:
        if remaining:
            raise BodyEnded(f"the body ended after {len(buffered)} of {length} bytes")
        return length
    # From here on the parser is behind the socket: this connection ends with its response.
    cycle.keep_alive = False
    socket = cycle.transport.get_extra_info("socket")
    if socket is None:
        raise BodyEnded("the connection has no socket")
    # A descriptor of our own: the transport may close its socket meanwhile, and a number it
    # frees could be reused by anything this process opens next.
    await _on_own_thread(_splice_body, socket.fileno(), descriptor, remaining)
    return length


async def _on_own_thread(work: Any, socket: int, *args: Any) -> Any:
    """Run `work(own_socket, *args, stop)` on a thread of its own (always started, unlike a
    queued executor job) with a duplicate of `socket` that the thread closes: the transport
    may close its socket meanwhile, and a number it frees could be reused by anything this
    process opens next. Cancelling sets `stop`, which `work` checks between waits."""
    own = os.dup(socket)
    stop = threading.Event()
    loop = asyncio.get_running_loop()
    done: asyncio.Future[Any] = loop.create_future()

    def report(result: Any, error: BaseException | None) -> None:
        if done.cancelled():
            return
        if error is None:
            done.set_result(result)
        else:
            done.set_exception(error)

    def run() -> None:
        result, failure = None, None
        try:
            result = work(own, *args, stop)
        except BaseException as error:
            failure = error
        finally:
            os.close(own)
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits
            loop.call_soon_threadsafe(report, result, failure)

    threading.Thread(target=run, name="zero-copy", daemon=True).start()
    try:
        return await done
    except asyncio.CancelledError:
        stop.set()
        raise


def _send_body(socket: int, descriptor: int, offset: int, count: int, stop: Any) -> int:
    """Send `count` bytes of `descriptor` from `offset` on the non-blocking `socket`; the
    bytes sent (fewer when the file shrank or the client left)."""
    poller = select.poll()
    poller.register(socket, select.POLLOUT)
    sent, idle = 0, 0.0
    while sent < count and not stop.is_set():
        try:
            moved = os.sendfile(socket, descriptor, offset + sent, count - sent)
        except BlockingIOError:
            if not poller.poll(POLL_MILLISECONDS):
                idle += POLL_MILLISECONDS / 1000
                if idle >= IDLE_SECONDS:
                    break
            continue
        except OSError:
            break
        if moved == 0:
            break
        sent += moved
        idle = 0.0
    return sent


def _splice_body(socket: int, descriptor: int, remaining: int, stop: threading.Event) -> None:
    """Move `remaining` bytes from the non-blocking `socket` into `descriptor`."""
    read_end, write_end = os.pipe()
    try:
        with contextlib.suppress(OSError):
            fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        poller = select.poll()
        poller.register(socket, select.POLLIN | select.POLLRDHUP)
        idle = 0.0
        total = remaining
        while remaining:
            if stop.is_set():
                raise BodyEnded("the upload was cancelled")
            try:
                moved = os.splice(
                    socket, write_end, min(remaining, PIPE_BYTES), flags=_NONBLOCKING_MOVE
                )
            except BlockingIOError:
                if not poller.poll(POLL_MILLISECONDS):
                    idle += POLL_MILLISECONDS / 1000
                    if idle >= IDLE_SECONDS:
                        raise BodyEnded(f"no data for {IDLE_SECONDS:g} s") from None
                continue
            except OSError as error:
                if error.errno in (errno.ECONNRESET, errno.EPIPE):
                    moved = 0
                else:
                    raise
            if moved == 0:
                raise BodyEnded(f"the body ended after {total - remaining} of {total} bytes")
            idle = 0.0
            remaining -= moved
            while moved:
                moved -= os.splice(read_end, descriptor, moved, flags=os.SPLICE_F_MOVE)
    finally:
        os.close(read_end)
        os.close(write_end)


def write_all(descriptor: int, data: bytes) -> None:
    """os.write until every byte of `data` is written."""
    view = memoryview(data)
    while view:
        view = view[os.write(descriptor, view) :]


_NONBLOCKING_MOVE = getattr(os, "SPLICE_F_MOVE", 1) | getattr(os, "SPLICE_F_NONBLOCK", 2)
