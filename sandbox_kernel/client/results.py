"""Read the result entries of an execution: MIME bundles and errors, whoever displays them."""

from __future__ import annotations

import re
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
# Terminal control sequences (colours, cursor moves): Deno colours the values it shows.
ANSI_ESCAPE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")


def mime_bundle(entry: dict[str, Any]) -> dict[str, Any]:
    """The full MIME bundle of a `result` entry (its `bundle`, else built from its fields)."""
    bundle = entry.get("bundle")
    if isinstance(bundle, dict) and bundle:
        return bundle
    return {
        mime: entry[field] for field, mime in FIELD_MIMES.items() if entry.get(field) is not None
    }


def e2b_fields(bundle: dict[str, Any]) -> dict[str, Any]:
    """The E2B-style fields of a result with this bundle; `text` without terminal colours."""
    fields = {field: bundle[mime] for field, mime in FIELD_MIMES.items() if mime in bundle}
    if isinstance(fields.get("text"), str):
        fields["text"] = ANSI_ESCAPE.sub("", fields["text"])
    return fields


def with_e2b_fields(entry: dict[str, Any]) -> dict[str, Any]:
    """A result entry that carries only its bundle (as the embedded server streams them), with
    the E2B-style fields filled in, so every transport yields entries of one shape."""
    if entry.get("type") == "result" and isinstance(entry.get("bundle"), dict):
        missing = {
            field: value
            for field, value in e2b_fields(entry["bundle"]).items()
            if field not in entry
        }
        if missing:
            entry.update(missing)
    return entry


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
