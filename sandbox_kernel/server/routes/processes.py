"""Routes of a sandbox's processes: run a command, list, get and kill processes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from ..errors import InvalidRequest
from ..paths import normalize
from .lookups import NamedSandbox
from .models import Command, check_timeout

router = APIRouter()


@router.post("/sandboxes/{sandbox_id}/processes/cmd")
async def run_command(named: NamedSandbox, body: Command) -> dict[str, Any]:
    sandbox = named.running()
    check_timeout(body)
    shown_cwd = normalize(body.cwd)
    host_cwd = sandbox.files.paths.host(shown_cwd)
    if not host_cwd.is_dir():
        raise InvalidRequest(f"cwd {shown_cwd} is not a directory in the sandbox")
    return await sandbox.processes.run(body.command, host_cwd, shown_cwd, body.timeout)


@router.get("/sandboxes/{sandbox_id}/processes")
def list_processes(named: NamedSandbox) -> list[dict[str, Any]]:
    return named.get().processes.list()


@router.get("/sandboxes/{sandbox_id}/processes/{pid}")
def get_process(named: NamedSandbox, pid: str) -> dict[str, Any]:
    return named.get().processes.get(pid)


@router.delete("/sandboxes/{sandbox_id}/processes/{pid}")
async def kill_process(named: NamedSandbox, pid: str) -> dict[str, Any]:
    return await named.get().processes.kill(pid)
