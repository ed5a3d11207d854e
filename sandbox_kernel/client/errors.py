"""Exceptions raised by the sandbox client, and the mapping from an HTTP error reply to them."""

from __future__ import annotations

import httpx


class SandboxError(Exception):
    """A sandbox operation failed; carries the server's status, code and request id when known."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.request_id = request_id

    def __str__(self) -> str:
        details = [str(part) for part in (self.status, self.code) if part]
        if self.request_id:
            details.append(f"request id {self.request_id}")
        return f"{self.message} ({', '.join(details)})" if details else self.message

    def _render_traceback_(self) -> list[str]:
        """Show one line in IPython instead of a local traceback that says nothing useful."""
        return [f"{type(self).__name__}: {self}"]


class SandboxRequestError(SandboxError):
    """The server refused the request (a 4xx reply): bad input, conflict, payload too large."""


class SandboxAuthError(SandboxRequestError):
    """The server did not accept the credentials (401 or 403)."""


class SandboxNotFoundError(SandboxRequestError):
    """The sandbox, context, file or process does not exist (404)."""


class SandboxUnsupportedError(SandboxError):
    """The server does not offer an extension (streaming, interrupt, ...): the cloud offers none."""


class SandboxServerError(SandboxError):
    """The server failed while handling the request (a 5xx reply)."""


class SandboxConnectionError(SandboxError):
    """The server could not be reached or the connection broke."""


class SandboxTimeoutError(SandboxConnectionError):
    """The server did not answer in time."""


_ERROR_BY_STATUS: dict[int, type[SandboxError]] = {
    401: SandboxAuthError,
    403: SandboxAuthError,
    404: SandboxNotFoundError,
}

_BODY_EXCERPT = 200


def error_from_response(response: httpx.Response) -> SandboxError:
    """Build the exception for an error reply whose body has already been read."""
    status = response.status_code
    request_id = response.headers.get("x-acs-request-id")
    code = None
    message = ""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        code = _text_or_none(body.get("code"))
        message = _text_or_none(body.get("message")) or ""
        request_id = _text_or_none(body.get("requestId")) or request_id
    elif response.content:
        message = " ".join(response.text.split())[:_BODY_EXCERPT]
    if not message:
        message = response.reason_phrase or "error"
    request = response.request
    message = f"{request.method} {request.url.path}: {message}"
    return error_for_status(status, message, code=code, request_id=request_id)


def error_for_status(
    status: int, message: str, *, code: str | None = None, request_id: str | None = None
) -> SandboxError:
    """The exception for a refusal with this HTTP status (however it reached us)."""
    if status in _ERROR_BY_STATUS:
        error_type = _ERROR_BY_STATUS[status]
    elif status >= 500:
        error_type = SandboxServerError
    else:
        error_type = SandboxRequestError
    return error_type(message, status=status, code=code, request_id=request_id)


def _text_or_none(value: object) -> str | None:
    return None if value is None else str(value)
