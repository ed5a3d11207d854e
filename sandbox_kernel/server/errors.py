"""Error types of the embedded server; one handler turns each into the protocol's JSON body."""

from __future__ import annotations


class ApiError(Exception):
    """A failure the client should see as a 4xx/5xx with a protocol error code."""

    status = 500
    code = "INTERNAL_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(ApiError):
    status = 400
    code = "INVALID_REQUEST"


class Unauthorized(ApiError):
    status = 401
    code = "UNAUTHORIZED"


class Forbidden(ApiError):
    status = 403
    code = "FORBIDDEN"


class NotFound(ApiError):
    status = 404
    code = "NOT_FOUND"


class Conflict(ApiError):
    status = 409
    code = "CONFLICT"


class PayloadTooLarge(ApiError):
    status = 413
    code = "PAYLOAD_TOO_LARGE"


class LimitExceeded(ApiError):
    """A cap on what one server or sandbox may hold at once; free something and retry."""

    status = 429
    code = "LIMIT_EXCEEDED"


_CODES_BY_STATUS = {cls.status: cls.code for cls in ApiError.__subclasses__()}


def code_for_status(status: int) -> str:
    """The protocol error code for an HTTP status raised by the framework itself."""
    if status >= 500:
        return "INTERNAL_ERROR"
    return _CODES_BY_STATUS.get(status, "INVALID_REQUEST")
