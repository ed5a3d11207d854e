"""Routes of the contexts of a sandbox: their lifecycle, executions (plain or streamed), and
the extensions that reach a running context (interrupt, restart, stdin, completion,
inspection)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Collection, Sequence
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from ..contexts import Context
from ..errors import InvalidRequest
from ..execution import ExecutionRequest
from ..sandboxes import Sandbox
from .lookups import NamedSandbox, Settings
from .models import CodePosition, CreateContext, Execute, Input, check_timeout

NDJSON = "application/x-ndjson"

router = APIRouter()


@router.post("/sandboxes/{sandbox_id}/contexts")
async def create_context(
    named: NamedSandbox, body: CreateContext, settings: Settings
) -> dict[str, Any]:
    pool = named.running().contexts
    history_file = body.history_file if "reply" in settings.extensions else None
    context = await pool.create(body.language, body.cwd, history_file)
    return context.describe()


@router.get("/sandboxes/{sandbox_id}/contexts")
async def list_contexts(named: NamedSandbox) -> list[dict[str, Any]]:
    return [context.describe() for context in named.get().contexts.contexts.values()]


@router.get("/sandboxes/{sandbox_id}/contexts/{context_id}")
async def get_context(named: NamedSandbox, context_id: str) -> dict[str, Any]:
    return named.get().contexts.get(context_id).describe()


@router.delete("/sandboxes/{sandbox_id}/contexts/{context_id}")
async def delete_context(named: NamedSandbox, context_id: str) -> dict[str, Any]:
    await named.get().contexts.delete(context_id)
    return {"id": context_id, "deleted": True}


def execution(
    context: Context, body: Execute, extensions: Collection[str], *, streaming: bool
) -> AsyncIterator[dict[str, Any]]:
    """The entries of `body` run in `context`; streamed ones may ask for input, and the
    last names the context (a stream has no envelope to carry it). The caller has
    checked the timeout, before any default context was made for it."""
    if body.language is not None and body.language != context.language:
        raise InvalidRequest(
            f"context {context.id} runs {context.language}, not {body.language}; "
            "give either contextId or language"
        )
    allow_stdin = streaming and "stdin" in extensions
    if body.allow_stdin is not None:
        allow_stdin = allow_stdin and body.allow_stdin
    request = ExecutionRequest(body.code, body.timeout, allow_stdin, plain=not streaming)
    if "reply" in extensions:
        request = replace(
            request,
            silent=body.silent,
            store_history=body.store_history,
            user_expressions=body.user_expressions,
            execution_count=body.execution_count,
            past_inputs=[(past.execution_count, past.code) for past in body.past_inputs],
            reply_fields=True,
        )
    if streaming and body.comms and "comms" in extensions:
        request = replace(request, comms=True)

    async def entries() -> AsyncIterator[dict[str, Any]]:
        async for entry in context.execute(request):
            if streaming and entry.get("type") == "endOfExecution":
                entry = {**entry, "contextId": context.id}
            yield entry

    return entries()


async def run_code(
    sandbox: Sandbox,
    body: Execute,
    context_id: str | None,
    request: Request,
    extensions: Collection[str],
) -> Any:
    """Run `body` in `context_id` (else the default context of its language): a stream of
    NDJSON lines when asked for and offered, else all the entries in one reply."""
    check_timeout(body)
    if context_id is not None:
        context = sandbox.contexts.get(context_id)
    else:
        context = await sandbox.contexts.default(body.language or "python")
    streaming = "stream" in extensions and NDJSON in request.headers.get("accept", "")
    entries = execution(context, body, extensions, streaming=streaming)
    if streaming:
        lines = (json.dumps(entry) + "\n" async for entry in entries)
        return StreamingResponse(lines, media_type=NDJSON)
    return {"contextId": context.id, "results": [entry async for entry in entries]}


@router.post("/sandboxes/{sandbox_id}/contexts/execute")
async def execute(named: NamedSandbox, body: Execute, request: Request, settings: Settings) -> Any:
    return await run_code(named.running(), body, body.context_id, request, settings.extensions)


@router.post("/sandboxes/{sandbox_id}/contexts/{context_id}/execute")
async def execute_in(
    named: NamedSandbox, context_id: str, body: Execute, request: Request, settings: Settings
) -> Any:
    return await run_code(named.running(), body, context_id, request, settings.extensions)


# ---- extensions: each route is served only by a server offering its extension

interrupt_router = APIRouter()
restart_router = APIRouter()
stdin_router = APIRouter()
complete_router = APIRouter()
inspect_router = APIRouter()


@interrupt_router.post("/sandboxes/{sandbox_id}/contexts/{context_id}/interrupt")
async def interrupt(named: NamedSandbox, context_id: str) -> dict[str, Any]:
    await named.running_context(context_id).interrupt()
    return {"id": context_id, "interrupted": True}


@restart_router.post("/sandboxes/{sandbox_id}/contexts/{context_id}/restart")
async def restart(named: NamedSandbox, context_id: str) -> dict[str, Any]:
    context = named.running_context(context_id)
    await context.restart()
    return context.describe()


@stdin_router.post("/sandboxes/{sandbox_id}/contexts/{context_id}/input")
async def send_input(named: NamedSandbox, context_id: str, body: Input) -> dict[str, Any]:
    named.running_context(context_id).send_input(body.value)
    return {"id": context_id, "sent": True}


@complete_router.post("/sandboxes/{sandbox_id}/contexts/{context_id}/complete")
async def complete(named: NamedSandbox, context_id: str, body: CodePosition) -> dict[str, Any]:
    context = named.running_context(context_id)
    return await context.complete(body.code, body.cursor_pos)


@inspect_router.post("/sandboxes/{sandbox_id}/contexts/{context_id}/inspect")
async def inspect(named: NamedSandbox, context_id: str, body: CodePosition) -> dict[str, Any]:
    context = named.running_context(context_id)
    return await context.inspect(body.code, body.cursor_pos, body.detail_level)


EXTENSION_ROUTERS = {
    "interrupt": interrupt_router,
    "restart": restart_router,
    "stdin": stdin_router,
    "complete": complete_router,
    "inspect": inspect_router,
}


def routers(extensions: Sequence[str]) -> list[APIRouter]:
    """The context routes a server offering `extensions` serves."""
    offered = [extension for name, extension in EXTENSION_ROUTERS.items() if name in extensions]
    return [router, *offered]
