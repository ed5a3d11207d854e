"""Routes that describe: the server's health, a sandbox's health (its capabilities), the
OpenAPI document."""

from __future__ import annotations

import os
from typing import Any

from fastapi import APIRouter, Request

from ... import __version__
from ..confinement import IsolationSettings
from ..constants import SERVER_NAME
from .lookups import NamedSandbox, Registry, Settings

UNISOLATED_WARNING = (
    "sandboxes are NOT isolated (--isolation none): cells run on the server's machine as its user"
)

router = APIRouter()


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


@router.get("/openapi.json", include_in_schema=False)
async def openapi_document(request: Request) -> dict[str, Any]:
    return request.app.openapi()


@router.get("/health")
async def server_health(settings: Settings, registry: Registry) -> dict[str, Any]:
    return {
        "status": "ok",
        "server": SERVER_NAME,
        "version": __version__,
        "pid": os.getpid(),
        **isolation_report(settings.confinement),
        "sandboxes": len(registry.sandboxes),
        "spareSandboxes": registry.spares.ready,
        "templates": [] if registry.templates is None else registry.templates.names(),
    }


@router.get("/sandboxes/{sandbox_id}/health")
async def sandbox_health(named: NamedSandbox, settings: Settings) -> dict[str, Any]:
    sandbox = named.get()
    return {
        "status": "ok" if sandbox.running else sandbox.record["status"].lower(),
        "server": SERVER_NAME,
        "version": __version__,
        **isolation_report(settings.confinement),
        "extensions": list(settings.extensions),
        "languages": sandbox.contexts.specs.available(),
        "diskUsageBytes": await sandbox.disk_usage(),
        "template": None if sandbox.template is None else sandbox.template.name,
    }
