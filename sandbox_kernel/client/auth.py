"""AgentRun's RAM signature, computed for each request by the official signer."""

from __future__ import annotations

from collections.abc import Callable, Generator
from datetime import datetime

import httpx

from .errors import SandboxError
from .settings import AccessKey

Signer = Callable[..., dict[str, str]]
"""Called like `agentrun.utils.ram_signature.get_agentrun_signed_headers`; returns headers."""


def official_signer() -> Signer:
    """AgentRun's own signer, from the optional `agentrun` extra."""
    try:
        from agentrun.utils.ram_signature import get_agentrun_signed_headers
    except ImportError as error:
        raise SandboxError(
            "an AgentRun access key is configured but the RAM signer is missing: "
            "pip install 'sandbox-kernel[agentrun]'"
        ) from error
    return get_agentrun_signed_headers


class RamSignatureAuth(httpx.Auth):
    """Sign each request, with its final URL (query included) and method, using an access key.

    `signer` defaults to the official AgentRun signer; `clock` fixes the sign time (for
    comparing signatures), by default the signer uses the current time.
    """

    def __init__(
        self,
        access_key: AccessKey,
        *,
        signer: Signer | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._access_key = access_key
        self._signer = signer or official_signer()
        self._clock = clock

    def signed_headers(self, url: str, method: str, body: bytes | None) -> dict[str, str]:
        """The headers that authenticate `method url` (the payload itself is not signed)."""
        key = self._access_key
        return self._signer(
            url=url,
            method=method,
            access_key_id=key.access_key_id,
            access_key_secret=key.access_key_secret,
            security_token=key.security_token or None,
            region=key.region,
            product="agentrun",
            body=body,
            sign_time=self._clock() if self._clock else None,
        )

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        try:
            body = request.content or None
        except httpx.RequestNotRead:
            body = None
        request.headers.update(self.signed_headers(str(request.url), request.method, body))
        yield request
