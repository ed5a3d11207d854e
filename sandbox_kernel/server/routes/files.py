"""Routes of a sandbox's file contents in JSON: read and write one file (`/files`).

Sync routes: they run in the thread pool, off the event loop.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from ..names import requested
from .lookups import NamedSandbox
from .models import PathBytesQuery, PathQuery, WriteFile

router = APIRouter()


@router.get("/sandboxes/{sandbox_id}/files")
def read_file(
    named: NamedSandbox, path: str | None = PathQuery, path_bytes: str | None = PathBytesQuery
) -> dict[str, Any]:
    return named.get().files.read(requested(path, path_bytes))


@router.post("/sandboxes/{sandbox_id}/files")
def write_file(named: NamedSandbox, body: WriteFile) -> dict[str, Any]:
    files = named.running().files
    return files.write(body.target, body.content, body.mode, body.encoding, body.create_dir)
