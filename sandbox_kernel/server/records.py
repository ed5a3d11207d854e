"""Sandbox records (`sandbox.json`): replaced in one step, read without trusting them."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

RECORD = "sandbox.json"
OWNER = "owner"
"""The id of the server that serves the sandbox (owners.py); not part of the protocol."""
STATUSES = ("CREATING", "READY", "TERMINATED")


def write_record(directory: Path, record: dict[str, Any], owner: str | None) -> None:
    """Replace `directory/sandbox.json`: readers, and a crash at any moment, find the old
    record or the new one, whole. The temporary file is unique, so writers never collide."""
    content = json.dumps({**record, OWNER: owner} if owner else record, indent=1).encode()
    descriptor, staged = tempfile.mkstemp(dir=directory, prefix=f".{RECORD}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(staged, directory / RECORD)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(staged)
        raise
    directory_descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(directory_descriptor)
    finally:
        os.close(directory_descriptor)


def read_record(path: Path) -> tuple[dict[str, Any], str | None] | None:
    """(record, owner) of a sound record file; None, with a log line, for one that cannot be
    read, was left half-written, or is not a sandbox record of its directory."""
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError) as error:
        log.warning("skipping unreadable sandbox record %s: %s", path, error)
        return None
    problem = _problem(data, path.parent.name)
    if problem is not None:
        log.warning("skipping invalid sandbox record %s: %s", path, problem)
        return None
    owner = data.pop(OWNER, None)
    return data, owner


def _problem(data: Any, directory_name: str) -> str | None:
    if not isinstance(data, dict):
        return "not a JSON object"
    if data.get("sandboxId") != directory_name:
        return "its sandboxId is not the name of its directory"
    if data.get("status") not in STATUSES:
        return f"status is not one of {', '.join(STATUSES)}"
    for key in ("templateName", "createdAt", "lastUpdatedAt"):
        if not isinstance(data.get(key), str):
            return f"{key} is not text"
    timeout = data.get("sandboxIdleTimeoutSeconds")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int)):
        return "sandboxIdleTimeoutSeconds is not a whole number"
    if not isinstance(data.get("metadata", {}), dict):
        return "metadata is not an object"
    return None
