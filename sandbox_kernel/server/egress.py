"""Egress through an allow-list (`serve --allow-egress HOST[:PORT]`): an HTTP proxy per sandbox.

The proxy's listening socket is made inside the sandbox's network namespace (a short-lived
thread joins it, binds 127.0.0.1:PROXY_PORT there, and leaves), and the server's event loop
serves it, so the sandbox reaches the proxy on its own loopback and has no other route out.
Each request names where it goes (`CONNECT host:port`, or an absolute `http://` URL); the
proxy connects from the host only when the allow-list has that host and port, and answers
anything else with a 403 that says why, which the server logs. Sandbox code finds the
proxy through HTTP_PROXY / HTTPS_PROXY.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import socket
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

PROXY_PORT = 3128
PROXY_URL = f"http://127.0.0.1:{PROXY_PORT}"
CLONE_NEWNET = 0x40000000
MAX_HEAD_BYTES = 64 * 1024
HEAD_SECONDS = 30.0
CONNECT_SECONDS = 15.0
MAX_CONNECTIONS = 64
"""Connections one sandbox may hold open through its proxy: the server's descriptors are
shared by every sandbox, so one of them must not use them all."""
DROPPED_HEADERS = (b"proxy-connection", b"proxy-authorization", b"connection", b"keep-alive")


@dataclass(frozen=True)
class Rule:
    """One allowed destination: a host name or address, and a port (None: any port)."""

    host: str
    port: int | None

    @classmethod
    def parse(cls, text: str) -> Rule:
        """`HOST`, `HOST:PORT`, `[IPV6]` or `[IPV6]:PORT`; raises ValueError otherwise."""
        parts = urlsplit(f"//{text.strip()}")
        try:
            port = parts.port
        except ValueError:
            raise ValueError(f"not HOST[:PORT]: {text!r}") from None
        if not parts.hostname or parts.path or parts.username:
            raise ValueError(f"not HOST[:PORT]: {text!r}")
        return cls(parts.hostname.lower(), port)

    def allows(self, host: str, port: int) -> bool:
        return host.lower().strip("[]") == self.host and self.port in (None, port)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"


def listen_in(netns_fd: int) -> socket.socket:
    """A socket listening on 127.0.0.1:PROXY_PORT in the network namespace on `netns_fd`."""
    made: list[socket.socket | BaseException] = []

    def in_namespace() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.setns(netns_fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "cannot join the sandbox's network namespace")
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", PROXY_PORT))
            listener.listen(64)
            listener.setblocking(False)
            made.append(listener)
        except BaseException as error:
            made.append(error)

    thread = threading.Thread(target=in_namespace, name="egress-listen")
    thread.start()
    thread.join()
    if isinstance(made[0], BaseException):
        raise made[0]
    return made[0]


class EgressProxy:
    """The proxy of one sandbox."""

    def __init__(self, rules: tuple[Rule, ...], sandbox_id: str) -> None:
        self.rules = rules
        self.sandbox_id = sandbox_id
        self.server: asyncio.Server | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.open_connections = 0

    async def start(self, netns_fd: int) -> None:
        listener = await asyncio.to_thread(listen_in, netns_fd)
        self.loop = asyncio.get_running_loop()
        self.server = await asyncio.start_server(self._serve, sock=listener)

    def close(self) -> None:
        """Stop listening; safe from any thread."""
        server, self.server = self.server, None
        if server is None or self.loop is None:
            return
        if self.loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(server.close)

    def allows(self, host: str, port: int) -> bool:
        return any(rule.allows(host, port) for rule in self.rules)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.open_connections >= MAX_CONNECTIONS:
            log.warning(
                "sandbox %s: egress proxy at %d connections", self.sandbox_id, MAX_CONNECTIONS
            )
            writer.close()
            return
        self.open_connections += 1
        try:
            await self._serve_one(reader, writer)
        finally:
            self.open_connections -= 1

    async def _serve_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_SECONDS)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError):
            writer.close()
            return
        try:
            await self._forward(head, reader, writer)
        except OSError:
            pass
        finally:
            writer.close()

    async def _forward(
        self, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        request_line, _, headers = head.partition(b"\r\n")
        try:
            method, target, version = request_line.decode("latin-1").split(" ")
            host, port, path = _destination(method, target)
        except ValueError:
            await _answer(writer, 400, "sandbox-kernel egress proxy: malformed request")
            return
        if not self.allows(host, port):
            log.warning("sandbox %s: egress to %s:%s refused", self.sandbox_id, host, port)
            await _answer(
                writer,
                403,
                f"sandbox-kernel: egress to {host}:{port} is not allowed for this sandbox "
                f"(the server allows: {', '.join(map(str, self.rules)) or 'nothing'}; "
                "serve --allow-egress HOST[:PORT] adds a destination)",
            )
            return
        try:
            upstream_reader, upstream_writer = await asyncio.wait_for(
                asyncio.open_connection(host, port), CONNECT_SECONDS
            )
        except (OSError, asyncio.TimeoutError) as error:
            await _answer(writer, 502, f"sandbox-kernel: cannot reach {host}:{port}: {error}")
            return
        if method == "CONNECT":
            writer.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        else:
            kept = [
                line
                for line in headers.split(b"\r\n")
                if line and line.split(b":", 1)[0].strip().lower() not in DROPPED_HEADERS
            ]
            upstream_writer.write(
                f"{method} {path} {version}\r\n".encode("latin-1")
                + b"".join(line + b"\r\n" for line in kept)
                + b"Connection: close\r\n\r\n"
            )
        try:
            await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
        finally:
            upstream_writer.close()


def _destination(method: str, target: str) -> tuple[str, int, str]:
    """Host, port and origin-form path of a proxy request; ValueError when it names none."""
    if method == "CONNECT":
        rule = Rule.parse(target)
        if rule.port is None:
            raise ValueError(target)
        return rule.host, rule.port, ""
    parts = urlsplit(target)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(target)
    path = parts.path or "/"
    if parts.query:
        path += f"?{parts.query}"
    return parts.hostname, parts.port or 80, path


async def _answer(writer: asyncio.StreamWriter, status: int, text: str) -> None:
    reasons = {400: "Bad Request", 403: "Forbidden", 502: "Bad Gateway"}
    body = f"{text}\n".encode()
    writer.write(
        f"HTTP/1.1 {status} {reasons[status]}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )
    with contextlib.suppress(OSError):
        await writer.drain()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            if writer.can_write_eof():
                writer.write_eof()
