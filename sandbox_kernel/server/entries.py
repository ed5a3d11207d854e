"""Translate a kernel's iopub messages into the protocol's result entries."""

from __future__ import annotations

import re
from typing import Any

from ..client.results import FIELD_MIMES

# MIME type -> the E2B-style field name the cloud protocol uses for it (one table, the client's).
MIME_FIELDS = {mime: field for field, mime in FIELD_MIMES.items()}
# Terminal control sequences (colours, cursor moves): Deno colours the values it shows.
ANSI_ESCAPE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")


def result_entry(content: dict[str, Any], *, main: bool, update: bool = False) -> dict[str, Any]:
    """A `result` entry carrying both the E2B-style fields and the full MIME bundle."""
    bundle = content.get("data") or {}
    entry: dict[str, Any] = {"type": "result", "isMainResult": main}
    for mime, field in MIME_FIELDS.items():
        if mime in bundle:
            entry[field] = bundle[mime]
    if isinstance(entry.get("text"), str):
        entry["text"] = ANSI_ESCAPE.sub("", entry["text"])  # plain text; the bundle keeps them
    entry["bundle"] = bundle
    entry["metadata"] = content.get("metadata") or {}
    display_id = (content.get("transient") or {}).get("display_id")
    if display_id:
        entry["displayId"] = display_id
    if update:
        entry["update"] = True
    return entry


def entry_from_iopub(msg_type: str, content: dict[str, Any]) -> dict[str, Any] | None:
    """The entry for one iopub message, or None for messages that produce no output."""
    if msg_type == "stream":
        return {"type": content.get("name", "stdout"), "text": content.get("text", "")}
    if msg_type == "execute_result":
        return result_entry(content, main=True)
    if msg_type == "display_data":
        return result_entry(content, main=False)
    if msg_type == "update_display_data":
        return result_entry(content, main=False, update=True)
    if msg_type == "error":
        return error_entry(
            content.get("ename", "Error"),
            content.get("evalue", ""),
            "\n".join(content.get("traceback") or []),
        )
    if msg_type == "clear_output":
        return {"type": "clearOutput", "wait": bool(content.get("wait", False))}
    return None


def error_entry(name: str, value: str, traceback: str = "") -> dict[str, Any]:
    return {"type": "error", "name": name, "value": value, "traceback": traceback}


def end_entry(status: str, execution_count: int | None) -> dict[str, Any]:
    return {"type": "endOfExecution", "status": status, "executionCount": execution_count}
