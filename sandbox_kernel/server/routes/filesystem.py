"""Routes of a sandbox's filesystem: list, stat, download, upload, mkdir, move, remove.

Sync routes run in the thread pool, off the event loop; the upload is received on the loop
and put in place in a thread.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request

from ..downloads import DescriptorResponse
from ..names import requested, shown
from ..paths import normalize
from ..uploads import received_upload
from .lookups import NamedSandbox, Settings
from .models import MakeDirectory, Move, PathBytesQuery, PathQuery, Remove

router = APIRouter()


@router.get("/sandboxes/{sandbox_id}/filesystem")
def list_directory(
    named: NamedSandbox,
    path: str | None = PathQuery,
    depth: int | None = None,
    path_bytes: str | None = PathBytesQuery,
) -> dict[str, Any]:
    if path_bytes is not None:
        path = requested(path, path_bytes)
    listing = named.get().files.list(path, depth)
    return {**listing, "data": dict(listing)}


@router.get("/sandboxes/{sandbox_id}/filesystem/stat")
def stat(
    named: NamedSandbox, path: str | None = PathQuery, path_bytes: str | None = PathBytesQuery
) -> dict[str, Any]:
    return named.get().files.stat(requested(path, path_bytes))


@router.get("/sandboxes/{sandbox_id}/filesystem/download")
def download(
    named: NamedSandbox, path: str | None = PathQuery, path_bytes: str | None = PathBytesQuery
) -> DescriptorResponse:
    target = requested(path, path_bytes)
    descriptor, size = named.get().files.download(target)
    return DescriptorResponse(descriptor, size, shown(Path(normalize(target)).name))


@router.post("/sandboxes/{sandbox_id}/filesystem/upload")
async def upload(
    named: NamedSandbox,
    request: Request,
    settings: Settings,
    path: str | None = PathQuery,
    path_bytes: str | None = PathBytesQuery,
) -> dict[str, Any]:
    sandbox = named.running()
    staging = sandbox.directory / "staging"
    async with received_upload(
        request, staging, settings.max_upload_bytes, path, path_bytes
    ) as received:
        # In a thread: replacing a large file frees its old blocks, ~0.1 s per 256 MB,
        # which would stall every other request meanwhile.
        return await asyncio.to_thread(sandbox.files.upload, *received)


@router.post("/sandboxes/{sandbox_id}/filesystem/mkdir")
def make_directory(named: NamedSandbox, body: MakeDirectory) -> dict[str, Any]:
    return named.running().files.mkdir(body.target, body.parents, body.mode)


@router.post("/sandboxes/{sandbox_id}/filesystem/move")
def move(named: NamedSandbox, body: Move) -> dict[str, Any]:
    source, destination = body.targets
    return named.running().files.move(source, destination)


@router.post("/sandboxes/{sandbox_id}/filesystem/remove")
def remove(named: NamedSandbox, body: Remove) -> dict[str, Any]:
    return named.running().files.remove(body.target)
