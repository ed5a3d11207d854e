"""Routes of the sandboxes' lifecycle: create, get, stop, delete, each answered in the
cloud's envelope (`{"code": "SUCCESS", "data": {Sandbox}}`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from ..responses import current_request_id
from ..sandboxes import Sandbox
from .lookups import NamedSandbox, Registry
from .models import CreateSandbox

router = APIRouter()


def success(sandbox: Sandbox) -> dict[str, Any]:
    """The envelope the SDK requires, with `sandboxId` and `status` also at the top."""
    record = sandbox.describe()
    return {
        "code": "SUCCESS",
        "requestId": current_request_id(),
        "sandboxId": record["sandboxId"],
        "status": record["status"],
        "data": record,
    }


@router.post("/sandboxes")
async def create_sandbox(body: CreateSandbox, registry: Registry) -> dict[str, Any]:
    sandbox = await registry.create(
        body.template_name, body.idle_timeout, body.sandbox_id, body.env, body.allow_egress
    )
    return success(sandbox)


@router.get("/sandboxes/{sandbox_id}")
async def get_sandbox(named: NamedSandbox) -> dict[str, Any]:
    return success(named.get())


@router.delete("/sandboxes/{sandbox_id}")
async def delete_sandbox(sandbox_id: str, registry: Registry) -> dict[str, Any]:
    return success(await registry.delete(sandbox_id))


@router.post("/sandboxes/{sandbox_id}/stop")
async def stop_sandbox(named: NamedSandbox) -> dict[str, Any]:
    sandbox = named.get()
    if sandbox.running:
        await sandbox.stop()
    return success(sandbox)
