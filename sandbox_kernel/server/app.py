"""The HTTP routes of the embedded server: thin translations onto the sandbox services."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import __version__
from .contexts import Context
from .downloads import DescriptorResponse
from .errors import ApiError, InvalidRequest, PayloadTooLarge, code_for_status
from .execution import ExecutionRequest
from .gate import AccessGate
from .isolation import IsolationSettings
from .names import requested, shown
from .paths import HOME, normalize
from .relay import MessageRelay
from .sandboxes import Sandbox, SandboxRegistry
from .settings import ServerSettings, new_registry
from .uploads import RAW_UPLOAD, UploadReceiver, receive_raw

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "x-acs-request-id"
NDJSON = "application/x-ndjson"
UNISOLATED_WARNING = (
    "sandboxes are NOT isolated (--isolation none): cells run on the server's machine as its user"
)
_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")


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
    body = {"code": code, "message": shown(message), "requestId": _request_id.get()}
    return JSONResponse(body, status_code=status)


def isolation_report(confinement: IsolationSettings) -> dict[str, Any]:
    """What `health` says of isolation: the mode, the network, and plainly when code runs
    on the host."""
    report: dict[str, Any] = {
        "isolation": confinement.mode,
        "network": confinement.network,
        "egress": list(confinement.egress),
    }
    if confinement.mode == "none":
        report["warning"] = UNISOLATED_WARNING
    return report


def check_timeout(body: Execute | Command) -> None:
    if body.timeout is not None and body.timeout <= 0:
        raise InvalidRequest("field 'timeout' must be a positive number of seconds")


async def _send_relayed(websocket: WebSocket, relay: MessageRelay) -> None:
    """Write the relay's frames to the socket as they come."""
    with contextlib.suppress(Exception):
        while True:
            frame = await relay.outgoing.get()
            if isinstance(frame, bytes):
                await websocket.send_bytes(frame)
            else:
                await websocket.send_text(frame)


def request_error(error: ApiError) -> str:
    """The entry that refuses an execution sent over a WebSocket."""
    refusal = {"status": error.status, "code": error.code, "message": error.message}
    return json.dumps({"type": "requestError", **refusal})


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


# ---- request bodies (extra fields are accepted and ignored, as clients of the cloud send them)


class Body(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def null_means_default(cls, value: Any) -> Any:
        """Clients of the cloud send `null` for options they leave out; use the default."""
        if isinstance(value, dict):
            return {key: item for key, item in value.items() if item is not None}
        return value

    @field_validator("*")
    @classmethod
    def text_is_unicode(cls, value: Any) -> Any:
        """JSON may escape a lone surrogate ("\\ud800"), which no file name or file can hold."""
        texts = [*value, *value.values()] if isinstance(value, dict) else [value]
        for text in texts:
            if isinstance(text, str):
                try:
                    text.encode("utf-8")
                except UnicodeEncodeError:
                    raise ValueError("must be valid Unicode text, not a lone surrogate") from None
        return value


class CreateSandbox(Body):
    template_name: str = Field(alias="templateName", min_length=1)
    idle_timeout: int | None = Field(default=600, alias="sandboxIdleTimeoutSeconds")
    sandbox_id: str | None = Field(default=None, alias="sandboxId")
    env: dict[str, str] | None = None
    allow_egress: list[str] | None = Field(default=None, alias="allowEgress")


class CreateContext(Body):
    language: str = "python"
    cwd: str = HOME
    history_file: str | None = Field(default=None, alias="historyFile", min_length=1)


class PastInput(Body):
    execution_count: int = Field(alias="executionCount", ge=0)
    code: str


class Execute(Body):
    code: str
    context_id: str | None = Field(default=None, alias="contextId")
    language: str | None = None
    timeout: float | None = Field(default=30, allow_inf_nan=False)
    allow_stdin: bool | None = Field(default=None, alias="allowStdin")
    # The `reply` extension: what the notebook's execute_request asked for.
    silent: bool = False
    store_history: bool = Field(default=True, alias="storeHistory")
    user_expressions: dict[str, str] = Field(default_factory=dict, alias="userExpressions")
    execution_count: int | None = Field(default=None, alias="executionCount", ge=0)
    past_inputs: list[PastInput] = Field(default_factory=list, alias="pastInputs")
    # The `comms` extension: the execution's comm messages as `comm` entries.
    comms: bool = False

    @model_validator(mode="before")
    @classmethod
    def null_means_default(cls, value: Any) -> Any:
        """As for every body, except that `"timeout": null` asks for no time limit."""
        if isinstance(value, dict):
            return {
                key: item for key, item in value.items() if item is not None or key == "timeout"
            }
        return value


class CodePosition(Body):
    code: str
    cursor_pos: int = Field(alias="cursorPos", ge=0)
    detail_level: int = Field(default=0, alias="detailLevel", ge=0, le=1)


class Input(Body):
    value: str


class Paths(Body):
    """A body naming a path, as text or (for names that are not UTF-8) as base64 bytes."""

    path: str | None = None
    path_bytes: str | None = Field(default=None, alias="pathBytes")

    @property
    def target(self) -> str:
        return requested(self.path, self.path_bytes)


class WriteFile(Paths):
    content: str
    mode: str | None = "644"
    encoding: str | None = "utf-8"
    create_dir: bool = Field(default=True, alias="createDir")


class MakeDirectory(Paths):
    parents: bool = True
    mode: str | None = "0755"


class Move(Body):
    source: str | None = None
    destination: str | None = None
    source_bytes: str | None = Field(default=None, alias="sourceBytes")
    destination_bytes: str | None = Field(default=None, alias="destinationBytes")


class Remove(Paths):
    pass


class Command(Body):
    command: str
    cwd: str = HOME
    timeout: float | None = Field(default=30, allow_inf_nan=False)


PathQuery = Query(default=None, description="the sandbox path")
PathBytesQuery = Query(
    default=None, alias="pathBytes", description="the path's bytes in base64, for names not UTF-8"
)


def create_app(settings: ServerSettings, registry: SandboxRegistry | None = None) -> FastAPI:
    """Build the ASGI app serving the sandboxes under `settings.root` (held by `registry`,
    made here when not given)."""
    if registry is None:
        registry = new_registry(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        reaper = asyncio.create_task(registry.reap_idle())
        filler = asyncio.create_task(registry.spares.keep_filled())
        yield
        reaper.cancel()
        filler.cancel()
        await registry.shutdown()

    def sandbox_of(sandbox_id: str) -> Sandbox:
        sandbox = registry.get(sandbox_id)
        sandbox.touch()
        return sandbox

    def running_sandbox(sandbox_id: str) -> Sandbox:
        sandbox = sandbox_of(sandbox_id)
        sandbox.require_running()
        return sandbox

    app = FastAPI(
        title="sandbox-kernel embedded sandbox server",
        version=__version__,
        lifespan=lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(
        AccessGate,
        token=settings.token,
        allowed_origins=settings.allowed_origins,
        refusal=lambda error: error_response(error.status, error.code, error.message),
    )
    app.add_middleware(RequestIdMiddleware)
    app.state.registry = registry
    app.state.settings = settings

    @app.exception_handler(ApiError)
    async def on_api_error(request: Request, error: ApiError) -> JSONResponse:
        return error_response(error.status, error.code, error.message)

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        return error_response(400, "INVALID_REQUEST", describe_validation_error(error))

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        message = error.detail if isinstance(error.detail, str) else "request failed"
        if error.status_code == 404 and message == "Not Found":
            message = f"no route {request.method} {request.url.path}"
        return error_response(error.status_code, code_for_status(error.status_code), message)

    def success(sandbox: Sandbox) -> dict[str, Any]:
        record = sandbox.describe()
        return {
            "code": "SUCCESS",
            "requestId": _request_id.get(),
            "sandboxId": record["sandboxId"],
            "status": record["status"],
            "data": record,
        }

    # ---- server and sandboxes

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi_document() -> dict[str, Any]:
        return app.openapi()

    @app.get("/health")
    async def server_health() -> dict[str, Any]:
        return {
            "status": "ok",
            "server": "sandbox-kernel",
            "version": __version__,
            "pid": os.getpid(),
            **isolation_report(settings.confinement),
            "sandboxes": len(registry.sandboxes),
            "spareSandboxes": registry.spares.ready,
            "templates": [] if registry.templates is None else registry.templates.names(),
        }

    @app.post("/sandboxes")
    async def create_sandbox(body: CreateSandbox) -> dict[str, Any]:
        sandbox = await registry.create(
            body.template_name, body.idle_timeout, body.sandbox_id, body.env, body.allow_egress
        )
        return success(sandbox)

    @app.get("/sandboxes/{sandbox_id}")
    async def get_sandbox(sandbox_id: str) -> dict[str, Any]:
        return success(sandbox_of(sandbox_id))

    @app.delete("/sandboxes/{sandbox_id}")
    async def delete_sandbox(sandbox_id: str) -> dict[str, Any]:
        return success(await registry.delete(sandbox_id))

    @app.post("/sandboxes/{sandbox_id}/stop")
    async def stop_sandbox(sandbox_id: str) -> dict[str, Any]:
        sandbox = sandbox_of(sandbox_id)
        if sandbox.running:
            await sandbox.stop()
        return success(sandbox)

    @app.get("/sandboxes/{sandbox_id}/health")
    async def sandbox_health(sandbox_id: str) -> dict[str, Any]:
        sandbox = sandbox_of(sandbox_id)
        return {
            "status": "ok" if sandbox.running else sandbox.record["status"].lower(),
            "server": "sandbox-kernel",
            "version": __version__,
            **isolation_report(settings.confinement),
            "extensions": list(settings.extensions),
            "languages": sandbox.contexts.specs.available(),
            "diskUsageBytes": await sandbox.disk_usage(),
            "template": None if sandbox.template is None else sandbox.template.name,
        }

    # ---- contexts

    @app.post("/sandboxes/{sandbox_id}/contexts")
    async def create_context(sandbox_id: str, body: CreateContext) -> dict[str, Any]:
        pool = running_sandbox(sandbox_id).contexts
        history_file = body.history_file if "reply" in settings.extensions else None
        context = await pool.create(body.language, body.cwd, history_file)
        return context.describe()

    @app.get("/sandboxes/{sandbox_id}/contexts")
    async def list_contexts(sandbox_id: str) -> list[dict[str, Any]]:
        pool = sandbox_of(sandbox_id).contexts
        return [context.describe() for context in pool.contexts.values()]

    @app.get("/sandboxes/{sandbox_id}/contexts/{context_id}")
    async def get_context(sandbox_id: str, context_id: str) -> dict[str, Any]:
        return sandbox_of(sandbox_id).contexts.get(context_id).describe()

    @app.delete("/sandboxes/{sandbox_id}/contexts/{context_id}")
    async def delete_context(sandbox_id: str, context_id: str) -> dict[str, Any]:
        await sandbox_of(sandbox_id).contexts.delete(context_id)
        return {"id": context_id, "deleted": True}

    async def run_code(
        sandbox: Sandbox, body: Execute, context_id: str | None, request: Request
    ) -> Any:
        check_timeout(body)
        if context_id is not None:
            context = sandbox.contexts.get(context_id)
        else:
            context = await sandbox.contexts.default(body.language or "python")
        streaming = "stream" in settings.extensions and NDJSON in request.headers.get("accept", "")
        entries = execution(context, body, streaming=streaming)
        if streaming:
            lines = (json.dumps(entry) + "\n" async for entry in entries)
            return StreamingResponse(lines, media_type=NDJSON)
        return {"contextId": context.id, "results": [entry async for entry in entries]}

    def execution(
        context: Context, body: Execute, *, streaming: bool
    ) -> AsyncIterator[dict[str, Any]]:
        """The entries of `body` run in `context`; streamed ones may ask for input, and the
        last names the context (a stream has no envelope to carry it). The caller has
        checked the timeout, before any default context was made for it."""
        if body.language is not None and body.language != context.language:
            raise InvalidRequest(
                f"context {context.id} runs {context.language}, not {body.language}; "
                "give either contextId or language"
            )
        allow_stdin = streaming and "stdin" in settings.extensions
        if body.allow_stdin is not None:
            allow_stdin = allow_stdin and body.allow_stdin
        request = ExecutionRequest(body.code, body.timeout, allow_stdin, plain=not streaming)
        if "reply" in settings.extensions:
            request = replace(
                request,
                silent=body.silent,
                store_history=body.store_history,
                user_expressions=body.user_expressions,
                execution_count=body.execution_count,
                past_inputs=[(past.execution_count, past.code) for past in body.past_inputs],
                reply_fields=True,
            )
        if streaming and body.comms and "comms" in settings.extensions:
            request = replace(request, comms=True)

        async def entries() -> AsyncIterator[dict[str, Any]]:
            async for entry in context.execute(request):
                if streaming and entry.get("type") == "endOfExecution":
                    entry = {**entry, "contextId": context.id}
                yield entry

        return entries()

    @app.post("/sandboxes/{sandbox_id}/contexts/execute")
    async def execute(sandbox_id: str, body: Execute, request: Request) -> Any:
        return await run_code(running_sandbox(sandbox_id), body, body.context_id, request)

    @app.post("/sandboxes/{sandbox_id}/contexts/{context_id}/execute")
    async def execute_in(sandbox_id: str, context_id: str, body: Execute, request: Request) -> Any:
        return await run_code(running_sandbox(sandbox_id), body, context_id, request)

    def running_context(sandbox_id: str, context_id: str) -> Context:
        return running_sandbox(sandbox_id).contexts.get(context_id)

    if "socket" in settings.extensions:

        @app.websocket("/sandboxes/{sandbox_id}/contexts/{context_id}/execute")
        async def execute_over_socket(websocket: WebSocket, sandbox_id: str, context_id: str):
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
                        context = running_context(sandbox_id, context_id)
                        entries = execution(context, body, streaming=True)
                    except ValidationError as error:
                        refusal = InvalidRequest(
                            describe_validation_error(RequestValidationError(error.errors()))
                        )
                        await websocket.send_text(request_error(refusal))
                        continue
                    except ApiError as error:
                        await websocket.send_text(request_error(error))
                        continue
                    async with contextlib.aclosing(entries):
                        async for entry in entries:
                            await websocket.send_text(json.dumps(entry))

    relayed = [name for name in ("comms", "debug") if name in settings.extensions]
    if relayed:

        @app.websocket("/sandboxes/{sandbox_id}/contexts/{context_id}/messages")
        async def relay_messages(websocket: WebSocket, sandbox_id: str, context_id: str):
            """The context kernel's comm and debug messages, both ways (relay.py); a frame
            the server does not relay is answered with one `requestError` frame."""
            try:
                context = running_context(sandbox_id, context_id)
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

    if "interrupt" in settings.extensions:

        @app.post("/sandboxes/{sandbox_id}/contexts/{context_id}/interrupt")
        async def interrupt(sandbox_id: str, context_id: str) -> dict[str, Any]:
            await running_context(sandbox_id, context_id).interrupt()
            return {"id": context_id, "interrupted": True}

    if "restart" in settings.extensions:

        @app.post("/sandboxes/{sandbox_id}/contexts/{context_id}/restart")
        async def restart(sandbox_id: str, context_id: str) -> dict[str, Any]:
            context = running_context(sandbox_id, context_id)
            await context.restart()
            return context.describe()

    if "stdin" in settings.extensions:

        @app.post("/sandboxes/{sandbox_id}/contexts/{context_id}/input")
        async def send_input(sandbox_id: str, context_id: str, body: Input) -> dict[str, Any]:
            running_context(sandbox_id, context_id).send_input(body.value)
            return {"id": context_id, "sent": True}

    if "complete" in settings.extensions:

        @app.post("/sandboxes/{sandbox_id}/contexts/{context_id}/complete")
        async def complete(sandbox_id: str, context_id: str, body: CodePosition) -> dict[str, Any]:
            context = running_context(sandbox_id, context_id)
            return await context.complete(body.code, body.cursor_pos)

    if "inspect" in settings.extensions:

        @app.post("/sandboxes/{sandbox_id}/contexts/{context_id}/inspect")
        async def inspect(sandbox_id: str, context_id: str, body: CodePosition) -> dict[str, Any]:
            context = running_context(sandbox_id, context_id)
            return await context.inspect(body.code, body.cursor_pos, body.detail_level)

    # ---- files and filesystem (sync routes: they run in the thread pool, off the event loop)

    @app.get("/sandboxes/{sandbox_id}/files")
    def read_file(
        sandbox_id: str, path: str | None = PathQuery, path_bytes: str | None = PathBytesQuery
    ) -> dict[str, Any]:
        return sandbox_of(sandbox_id).files.read(requested(path, path_bytes))

    @app.post("/sandboxes/{sandbox_id}/files")
    def write_file(sandbox_id: str, body: WriteFile) -> dict[str, Any]:
        files = running_sandbox(sandbox_id).files
        return files.write(body.target, body.content, body.mode, body.encoding, body.create_dir)

    @app.get("/sandboxes/{sandbox_id}/filesystem")
    def list_directory(
        sandbox_id: str,
        path: str | None = PathQuery,
        depth: int | None = None,
        path_bytes: str | None = PathBytesQuery,
    ) -> dict[str, Any]:
        if path_bytes is not None:
            path = requested(path, path_bytes)
        listing = sandbox_of(sandbox_id).files.list(path, depth)
        return {**listing, "data": dict(listing)}

    @app.get("/sandboxes/{sandbox_id}/filesystem/stat")
    def stat(
        sandbox_id: str, path: str | None = PathQuery, path_bytes: str | None = PathBytesQuery
    ) -> dict[str, Any]:
        return sandbox_of(sandbox_id).files.stat(requested(path, path_bytes))

    @app.get("/sandboxes/{sandbox_id}/filesystem/download")
    def download(
        sandbox_id: str, path: str | None = PathQuery, path_bytes: str | None = PathBytesQuery
    ) -> DescriptorResponse:
        target = requested(path, path_bytes)
        descriptor, size = sandbox_of(sandbox_id).files.download(target)
        return DescriptorResponse(descriptor, size, shown(Path(normalize(target)).name))

    @app.post("/sandboxes/{sandbox_id}/filesystem/upload")
    async def upload(
        sandbox_id: str,
        request: Request,
        path: str | None = PathQuery,
        path_bytes: str | None = PathBytesQuery,
    ) -> dict[str, Any]:
        sandbox = running_sandbox(sandbox_id)
        content_type = request.headers.get("content-type", "")
        if content_type.split(";")[0].strip().lower() == RAW_UPLOAD:
            target = requested(path, path_bytes)
            staged, size = await receive_raw(
                request, sandbox.directory / "staging", settings.max_upload_bytes
            )
            try:
                return await asyncio.to_thread(sandbox.files.upload, target, staged, size)
            finally:
                staged.unlink(missing_ok=True)
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > settings.max_upload_bytes + 2**20:
            raise PayloadTooLarge(
                f"upload is larger than the limit of {settings.max_upload_bytes // 2**20} MiB"
            )
        receiver = UploadReceiver(
            content_type, sandbox.directory / "staging", settings.max_upload_bytes
        )
        try:
            await receiver.receive(request.stream())
            # In a thread: replacing a large file frees its old blocks, ~0.1 s per 256 MB,
            # which would stall every other request meanwhile.
            target = requested(receiver.fields.get("path"), receiver.fields.get("pathBytes"))
            return await asyncio.to_thread(
                sandbox.files.upload, target, receiver.staged, receiver.file_size
            )
        finally:
            receiver.discard()

    @app.post("/sandboxes/{sandbox_id}/filesystem/mkdir")
    def make_directory(sandbox_id: str, body: MakeDirectory) -> dict[str, Any]:
        return running_sandbox(sandbox_id).files.mkdir(body.target, body.parents, body.mode)

    @app.post("/sandboxes/{sandbox_id}/filesystem/move")
    def move(sandbox_id: str, body: Move) -> dict[str, Any]:
        source = requested(body.source, body.source_bytes, "source")
        destination = requested(body.destination, body.destination_bytes, "destination")
        return running_sandbox(sandbox_id).files.move(source, destination)

    @app.post("/sandboxes/{sandbox_id}/filesystem/remove")
    def remove(sandbox_id: str, body: Remove) -> dict[str, Any]:
        return running_sandbox(sandbox_id).files.remove(body.target)

    # ---- processes

    @app.post("/sandboxes/{sandbox_id}/processes/cmd")
    async def run_command(sandbox_id: str, body: Command) -> dict[str, Any]:
        sandbox = running_sandbox(sandbox_id)
        check_timeout(body)
        shown_cwd = normalize(body.cwd)
        host_cwd = sandbox.files.paths.host(shown_cwd)
        if not host_cwd.is_dir():
            raise InvalidRequest(f"cwd {shown_cwd} is not a directory in the sandbox")
        return await sandbox.processes.run(body.command, host_cwd, shown_cwd, body.timeout)

    @app.get("/sandboxes/{sandbox_id}/processes")
    def list_processes(sandbox_id: str) -> list[dict[str, Any]]:
        return sandbox_of(sandbox_id).processes.list()

    @app.get("/sandboxes/{sandbox_id}/processes/{pid}")
    def get_process(sandbox_id: str, pid: str) -> dict[str, Any]:
        return sandbox_of(sandbox_id).processes.get(pid)

    @app.delete("/sandboxes/{sandbox_id}/processes/{pid}")
    async def kill_process(sandbox_id: str, pid: str) -> dict[str, Any]:
        return await sandbox_of(sandbox_id).processes.kill(pid)

    return app
