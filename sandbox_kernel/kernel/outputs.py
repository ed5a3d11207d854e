"""Map the sandbox's result entries onto Jupyter iopub messages: one table, `entry -> (msg_type,
content)`, used by the kernel and by `%%sbx run` alike."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..client.results import error_content, mime_bundle
from .sanitize import safe_bundle

__all__ = ["MESSAGES", "error_content", "message_for", "mime_bundle"]

Message = tuple[str, dict[str, Any]]


def stream_message(entry: dict[str, Any], execution_count: int) -> Message:
    return "stream", {"name": entry["type"], "text": str(entry.get("text", ""))}


def result_message(entry: dict[str, Any], execution_count: int) -> Message:
    """An execute_result, display_data or update_display_data; a display id is kept on all
    three, so a later update reaches an execute_result too. An execute_result keeps the
    count the sandbox gave it, where the server says."""
    data, metadata = mime_bundle(entry), entry.get("metadata") or {}
    transient = {"display_id": entry["displayId"]} if entry.get("displayId") else {}
    if entry.get("isMainResult"):
        count = entry.get("executionCount")
        count = count if isinstance(count, int) else execution_count
        content = {"execution_count": count, "data": data, "metadata": metadata}
        if transient:
            content["transient"] = transient
        return "execute_result", content
    msg_type = "update_display_data" if transient and entry.get("update") else "display_data"
    return msg_type, {"data": data, "metadata": metadata, "transient": transient}


def error_message(entry: dict[str, Any], execution_count: int) -> Message:
    return "error", error_content(entry)


def clear_output_message(entry: dict[str, Any], execution_count: int) -> Message:
    return "clear_output", {"wait": bool(entry.get("wait", False))}


MESSAGES: dict[str, Callable[[dict[str, Any], int], Message]] = {
    "stdout": stream_message,
    "stderr": stream_message,
    "result": result_message,
    "error": error_message,
    "clearOutput": clear_output_message,
}
"""Entry type -> the builder of its Jupyter message (entries of other types are not output)."""


DISPLAYS = frozenset({"execute_result", "display_data", "update_display_data"})


def message_for(
    entry: dict[str, Any], execution_count: int, *, trusted: bool = False
) -> Message | None:
    """The iopub message for one entry, or None for entries that are not output. Unless
    `trusted`, what it displays is made safe for the browser (see `sanitize`)."""
    build = MESSAGES.get(str(entry.get("type")))
    if build is None:
        return None
    msg_type, content = build(entry, execution_count)
    if not trusted and msg_type in DISPLAYS:
        content["data"] = safe_bundle(content["data"])
    return msg_type, content
