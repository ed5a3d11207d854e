"""Run the embedded server under uvicorn and announce where it listens."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import resource
import socket
import sys
from pathlib import Path
from typing import Any

import uvicorn

from .connections import guarded_protocol
from .settings import ServerSettings, new_registry

log = logging.getLogger(__name__)

CONNECTION_BUDGET = 512
"""Open connections beyond which the longest idle one is closed for a newcomer."""
MAX_CONCURRENCY = 1024
"""Connections plus requests in flight beyond which a new request gets a quick 503."""
KEEP_ALIVE_SECONDS = 30
"""Longer than clients keep an idle pooled connection (httpx: 5 s), so the client, never
the server, closes it: a request is never sent on a connection being closed."""
LISTEN_BACKLOG = 1024


def bind(host: str, port: int) -> socket.socket:
    """A listening socket with TCP_NODELAY set, so small replies are not held back."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(LISTEN_BACKLOG)
    sock.set_inheritable(False)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def connection_budget() -> int:
    """CONNECTION_BUDGET, or a quarter of the descriptors this process may open if less:
    the rest is for kernels, pipes and files."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return CONNECTION_BUDGET
    return max(16, min(CONNECTION_BUDGET, soft // 4))


def write_state(path: Path, state: dict) -> None:
    """Write the state file atomically and readable only by this user (it holds the token)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_suffix(".tmp")
    descriptor = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # a leftover staged file keeps its old mode through O_CREAT
    with os.fdopen(descriptor, "w") as handle:
        json.dump(state, handle)
    staged.replace(path)


async def serve(
    settings: ServerSettings, host: str, port: int, state_file: Path | None = None
) -> None:
    """Serve until stopped; print `{"url", "token"}` on stdout once ready."""
    sock = bind(host, port)
    url = url_of(sock)
    # The first spare's interpreter starts (in a process of its own) while this one loads
    # the web app: on a cold start, a kernel's first cell waits for that spare.
    registry = new_registry(settings)
    filler = asyncio.create_task(registry.spares.keep_filled())
    try:
        app = await asyncio.to_thread(_web_app, settings, registry)
    except BaseException:
        filler.cancel()
        await registry.shutdown()
        raise
    config = uvicorn.Config(
        app,
        http=guarded_protocol(connection_budget()),
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=5,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        limit_concurrency=MAX_CONCURRENCY,
        ws="websockets-sansio",  # the "socket" extension: executions over a WebSocket
    )
    server = uvicorn.Server(config)

    async def announce() -> None:
        while not server.started:
            if server.should_exit:
                return
            await asyncio.sleep(0.01)
        if state_file is not None:
            write_state(state_file, {"url": url, "token": settings.token, "pid": os.getpid()})
        sys.stdout.write(json.dumps({"url": url, "token": settings.token}) + "\n")
        sys.stdout.flush()
        log.info("serving %s on %s (isolation: %s)", settings.root, url, settings.isolation)

    announcer = asyncio.create_task(announce())
    try:
        await server.serve(sockets=[sock])
    finally:
        announcer.cancel()
        filler.cancel()
        if state_file is not None:
            try:
                if json.loads(state_file.read_text()).get("pid") == os.getpid():
                    state_file.unlink()
            except (OSError, ValueError):
                pass


def _web_app(settings: ServerSettings, registry: Any) -> Any:
    """The ASGI app; FastAPI and pydantic are imported here, on the caller's thread."""
    from .app import create_app

    return create_app(settings, registry)
