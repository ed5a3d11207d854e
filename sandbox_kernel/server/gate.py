"""The first thing every request meets: the token, and for the execution socket the origin.

It runs before routing, so a caller without the token costs the server no body read, no
validation and no lookup. A WebSocket may be opened by a web page in the user's browser;
one from a page that is not on this machine (or named with `--allow-origin`) is refused.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Collection
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import ApiError, Forbidden, Unauthorized

log = logging.getLogger(__name__)

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
WS_POLICY_VIOLATION = 1008


def normalize_origin(origin: str) -> str:
    """An origin as browsers send it: lowercase, no trailing slash."""
    return origin.strip().lower().rstrip("/")


def origin_allowed(origin: str | None, allowed: Collection[str] = ()) -> bool:
    """No Origin (not a browser), a page served from this machine, or one named in `allowed`."""
    if origin is None:
        return True
    normalized = normalize_origin(origin)
    if normalized in allowed:
        return True
    try:
        parts = urlsplit(normalized)
        parts.port  # noqa: B018 (a malformed port raises here)
    except ValueError:
        return False
    plain = not (parts.path or parts.query or parts.fragment or parts.username)
    return plain and parts.scheme in ("http", "https") and parts.hostname in LOOPBACK_HOSTS


def supplied_token(headers: Headers) -> str:
    supplied = headers.get("authorization", "")
    if supplied.lower().startswith("bearer "):
        return supplied[7:].strip()
    return headers.get("x-api-key", "")


class AccessGate:
    """ASGI middleware: refuses what lacks the token, and sockets from foreign origins."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        token: str,
        allowed_origins: Collection[str],
        refusal: Callable[[ApiError], Response],
    ) -> None:
        self.app = app
        self.token = token.encode()
        self.allowed_origins = frozenset(normalize_origin(origin) for origin in allowed_origins)
        self.refusal = refusal
        for origin in self.allowed_origins:
            parts = urlsplit(origin)
            if not parts.scheme or not parts.netloc:
                log.warning("--allow-origin %r is not scheme://host[:port]: ignored", origin)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        refused: ApiError | None = None
        if not hmac.compare_digest(supplied_token(headers).encode(), self.token):
            refused = Unauthorized("missing or wrong token (send 'Authorization: Bearer TOKEN')")
        elif scope["type"] == "websocket" and not origin_allowed(
            headers.get("origin"), self.allowed_origins
        ):
            refused = Forbidden(
                f"origin {headers.get('origin')!r} may not open an execution socket "
                "(loopback pages may; others need --allow-origin)"
            )
        if refused is None:
            await self.app(scope, receive, send)
        elif scope["type"] == "http":
            await self.refusal(refused)(scope, receive, send)
        else:
            await receive()  # websocket.connect
            reason = refused.message[:120]
            await send({"type": "websocket.close", "code": WS_POLICY_VIOLATION, "reason": reason})
