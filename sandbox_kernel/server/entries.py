"""Translate a kernel's iopub messages into the protocol's result entries."""

from __future__ import annotations

import base64
from typing import Any

from ..client.results import FIELD_MIMES, e2b_fields

# MIME type -> the E2B-style field name the cloud protocol uses for it (one table, the client's).
MIME_FIELDS = {mime: field for field, mime in FIELD_MIMES.items()}


def result_entry(
    content: dict[str, Any], *, main: bool, update: bool = False, plain: bool = True
) -> dict[str, Any]:
    """A `result` entry: the full MIME bundle, and on the plain HTTP reply (`plain`, what the
    cloud's clients read) the E2B-style fields too; the server's own transports carry each
    bundle once."""
    bundle = content.get("data") or {}
    entry: dict[str, Any] = {"type": "result", "isMainResult": main}
    if plain:
        entry.update(e2b_fields(bundle))
    entry["bundle"] = bundle
    entry["metadata"] = content.get("metadata") or {}
    display_id = (content.get("transient") or {}).get("display_id")
    if display_id:
        entry["displayId"] = display_id
    if main and isinstance(content.get("execution_count"), int):
        entry["executionCount"] = content["execution_count"]
    if update:
        entry["update"] = True
    return entry


def entry_from_iopub(
    msg_type: str, content: dict[str, Any], *, plain: bool = True
) -> dict[str, Any] | None:
    """The entry for one iopub message, or None for messages that produce no output."""
    if msg_type == "stream":
        return {"type": content.get("name", "stdout"), "text": content.get("text", "")}
    if msg_type == "execute_result":
        return result_entry(content, main=True, plain=plain)
    if msg_type == "display_data":
        return result_entry(content, main=False, plain=plain)
    if msg_type == "update_display_data":
        return result_entry(content, main=False, update=True, plain=plain)
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


def end_entry(status: str, execution_count: int | None, **reply: Any) -> dict[str, Any]:
    """The last entry of an execution: its outcome as data (`ok`, `error`, `timeout`,
    `interrupted`, `died`), and `reply`'s fields (payload, userExpressions, error) as given."""
    return {"type": "endOfExecution", "status": status, "executionCount": execution_count, **reply}


def comm_entry(message: dict[str, Any]) -> dict[str, Any]:
    """A `comm` entry: a comm message of the execution, its buffers in base64, and the
    context kernel's parent message id (what an Output widget's `msg_id` names)."""
    return {
        "type": "comm",
        "msgType": message["msg_type"],
        "content": message["content"],
        "metadata": message["metadata"],
        "buffers": [base64.b64encode(bytes(buffer)).decode() for buffer in message["buffers"]],
        "parentMsgId": message["parent_header"].get("msg_id"),
    }
