"""Map the sandbox's result entries onto Jupyter iopub messages: `entry -> (msg_type, content)`."""

from __future__ import annotations

from typing import Any

from ..client.results import error_content, mime_bundle

__all__ = ["error_content", "message_for", "mime_bundle"]


def message_for(entry: dict[str, Any], execution_count: int) -> tuple[str, dict[str, Any]] | None:
    """The iopub message for one entry, or None for entries that are not output."""
    kind = entry.get("type")
    if kind in ("stdout", "stderr"):
        return "stream", {"name": kind, "text": str(entry.get("text", ""))}
    if kind == "result":
        data = mime_bundle(entry)
        metadata = entry.get("metadata") or {}
        if entry.get("isMainResult"):
            content = {"execution_count": execution_count, "data": data, "metadata": metadata}
            return "execute_result", content
        content = {"data": data, "metadata": metadata, "transient": {}}
        if not entry.get("displayId"):
            return "display_data", content
        content["transient"] = {"display_id": entry["displayId"]}
        return ("update_display_data" if entry.get("update") else "display_data"), content
    if kind == "error":
        return "error", error_content(entry)
    if kind == "clearOutput":
        return "clear_output", {"wait": bool(entry.get("wait", False))}
    return None
