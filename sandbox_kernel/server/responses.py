"""How the server answers: a request id on every response, and every error turned into the
protocol's JSON body in one place (routes raise; none builds an error body)."""

from __future__ import annotations

import contextvars
import json
import logging
import uuid

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import ApiError, InvalidRequest, code_for_status
from .names import shown

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "x-acs-request-id"
_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")


def current_request_id() -> str:
    """The id of the request being answered ("" outside one)."""
    return _request_id.get()


class RequestIdMiddleware:
    """Gives every request an id, echoed in `x-acs-request-id` and in error bodies.

    It also answers an unexpected exception with a 500 error body itself: left to the
    framework, the exception would reach the HTTP server, which then drops the connection.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex
        _request_id.set(request_id)
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (REQUEST_ID_HEADER.encode(), request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as error:
            log.exception("unexpected error on %s %s", scope["method"], scope["path"])
            if started:
                raise
            response = error_response(500, "INTERNAL_ERROR", f"{type(error).__name__}: {error}")
            await response(scope, receive, send_with_id)


def error_response(status: int, code: str, message: str) -> JSONResponse:
    """The protocol's error body: code, one-line message, request id."""
    body = {"code": code, "message": shown(message), "requestId": _request_id.get()}
    return JSONResponse(body, status_code=status)


def api_error_response(error: ApiError) -> JSONResponse:
    """The error body of one of the server's own errors."""
    return error_response(error.status, error.code, error.message)


def describe_validation_error(error: RequestValidationError) -> str:
    """One line naming the first bad field of a request."""
    first = error.errors()[0]
    kind = first.get("type", "")
    location = [str(part) for part in first.get("loc", ()) if part not in ("body", "query")]
    name = ".".join(location) or "body"
    if kind == "json_invalid":
        return "request body is not valid JSON"
    if kind == "missing":
        return "request body is required" if name == "body" else f"field '{name}' is required"
    if name == "body" and kind in ("model_attributes_type", "dict_type"):
        return "request body must be a JSON object"
    message = str(first.get("msg", "is invalid")).removeprefix("Value error, ")
    return f"field '{name}': {message}"


def invalid_body(error: ValidationError) -> InvalidRequest:
    """A body that failed validation outside a route's own parsing (a socket message)."""
    return InvalidRequest(describe_validation_error(RequestValidationError(error.errors())))


def request_error(error: ApiError) -> str:
    """The entry that refuses an execution sent over a WebSocket."""
    refusal = {"status": error.status, "code": error.code, "message": error.message}
    return json.dumps({"type": "requestError", **refusal})


def map_errors(app: FastAPI) -> None:
    """Answer the server's errors, bad requests and the framework's own refusals (no route,
    wrong method) with the protocol's error body."""

    @app.exception_handler(ApiError)
    async def on_api_error(request: Request, error: ApiError) -> JSONResponse:
        return api_error_response(error)

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        return error_response(400, "INVALID_REQUEST", describe_validation_error(error))

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        message = error.detail if isinstance(error.detail, str) else "request failed"
        if error.status_code == 404 and message == "Not Found":
            message = f"no route {request.method} {request.url.path}"
        return error_response(error.status_code, code_for_status(error.status_code), message)
