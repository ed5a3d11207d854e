"""Map the sandbox's result entries onto Jupyter iopub messages: `entry -> (msg_type, content)`."""

from __future__ import annotations

from typing import Any

# E2B-style result field -> MIME type, for servers that send no full `bundle`.
FIELD_MIMES = {
    "text": "text/plain",
    "html": "text/html",
    "markdown": "text/markdown",
    "svg": "image/svg+xml",
    "png": "image/png",
    "jpeg": "image/jpeg",
    "pdf": "application/pdf",
    "latex": "text/latex",
    "json": "application/json",
    "javascript": "application/javascript",
}


def mime_bundle(entry: dict[str, Any]) -> dict[str, Any]:
    """The full MIME bundle of a `result` entry (its `bundle`, else built from its fields)."""
    bundle = entry.get("bundle")
    if isinstance(bundle, dict) and bundle:
        return bundle
    return {
        mime: entry[field] for field, mime in FIELD_MIMES.items() if entry.get(field) is not None
    }


def traceback_lines(traceback: Any) -> list[str]:
    """A traceback as Jupyter's list of lines, whether the server sent a list or one string."""
    if isinstance(traceback, list):
        return [str(line) for line in traceback]
    return str(traceback or "").split("\n") if traceback else []


def error_content(entry: dict[str, Any]) -> dict[str, Any]:
    """`ename`, `evalue` and `traceback` of an error entry (a one-line traceback if it has none)."""
    name = str(entry.get("name") or "Error")
    value = str(entry.get("value") or "")
    lines = traceback_lines(entry.get("traceback")) or [f"{name}: {value}"]
    return {"ename": name, "evalue": value, "traceback": lines}


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
