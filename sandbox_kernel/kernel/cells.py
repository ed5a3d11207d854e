"""The cell runner: a forwarded cell's entries become Jupyter messages, its end the reply.

One `CellRun` per cell, fed the entries as they arrive. The kernel publishes what it makes on
iopub; `%%sbx run` publishes it through IPython's display machinery; so a cell in the sandbox
looks the same either way. Outcomes are read from `endOfExecution.status`, never from an
error's name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .outputs import error_content, message_for

Publish = Callable[[str, dict[str, Any]], None]
"""Sends one Jupyter message: `publish(msg_type, content)`."""
ExplainTimeout = Callable[[dict[str, Any]], dict[str, Any]]
"""The error entry to show for a cell that timed out, given the server's own notice."""
OUTCOMES = ("ok", "error", "timeout", "interrupted", "died")


@dataclass(frozen=True)
class Cell:
    """How the notebook asked for one cell to run."""

    count: int
    """The kernel's execution count when the cell started."""
    silent: bool = False
    store_history: bool = True

    @property
    def stored(self) -> bool:
        """True when the cell takes a count and goes to the history (as IPython decides)."""
        return self.store_history and not self.silent

    @property
    def reply_count(self) -> int:
        """The count of its reply and its execute_result: its own, else the last one's."""
        return self.count if self.stored else self.count - 1


class CellRun:
    """One forwarded cell as it runs: publishes its output and keeps how it ended.

    An error entry is held until the next entry arrives. If that is an `endOfExecution` with
    status `timeout`, the error was the server's timeout notice, and `explain_timeout`
    replaces it with what the user can do about it.
    """

    def __init__(
        self,
        cell: Cell,
        publish: Publish,
        explain_timeout: ExplainTimeout | None = None,
        *,
        trusted: bool = False,
    ) -> None:
        self.cell = cell
        self.publish = publish
        self.trusted = trusted
        """Show what the sandbox displays as it is (see `sanitize`)."""
        self.explain_timeout = explain_timeout
        self.end: dict[str, Any] | None = None
        self.error: dict[str, Any] | None = None
        """The last error shown."""
        self._held: dict[str, Any] | None = None

    @property
    def status(self) -> str:
        """The outcome: `ok`, `error`, `timeout`, `interrupted` or `died` (an unknown one
        from a newer server counts as `error`)."""
        if self.end is None:
            return "ok" if self.error is None and self._held is None else "error"
        status = self.end.get("status")
        if status is None:  # a server that says nothing: a shown error fails the cell
            return "ok" if self.error is None else "error"
        return status if status in OUTCOMES else "error"

    def feed(self, entry: dict[str, Any]) -> None:
        """Take the next entry of the execution (an input request is the caller's to answer)."""
        kind = entry.get("type")
        if kind == "endOfExecution":
            self._ended(entry)
        elif kind == "error":
            self._release()
            self._held = entry
        elif kind != "inputRequest":
            self._release()
            self._show(entry)

    def stop(self, error: dict[str, Any]) -> None:
        """End the cell here with `error` (the sandbox did not answer, or the kernel stopped
        waiting): what the sandbox sent is shown, then this."""
        self._release()
        self.end = {"type": "endOfExecution", "status": "error"}
        self._show_error({**error, "type": "error"})

    def reply(self) -> dict[str, Any]:
        """The execute_reply content, as python3's kernel would send it."""
        self._release()
        end = self.end or {}
        payload = end.get("payload")
        expressions = end.get("userExpressions")
        reply: dict[str, Any] = {
            "status": "ok",
            "execution_count": self.cell.reply_count,
            "payload": payload if isinstance(payload, list) else [],
            "user_expressions": expressions if isinstance(expressions, dict) else {},
        }
        if self.status != "ok":
            explained = self.status == "timeout" and self.explain_timeout is not None
            source = self.error if explained else (end.get("error") or self.error)
            reply.update(status="error", **error_content(source or {}))
        return reply

    def _ended(self, entry: dict[str, Any]) -> None:
        self.end = entry
        if self.status == "timeout" and self.explain_timeout is not None:
            notice, self._held = self._held or entry.get("error") or {}, None
            self._show_error({**self.explain_timeout(notice), "type": "error"})
        else:
            self._release()

    def _release(self) -> None:
        if self._held is not None:
            held, self._held = self._held, None
            self._show_error(held)

    def _show_error(self, entry: dict[str, Any]) -> None:
        self.error = entry
        self._show(entry)

    def _show(self, entry: dict[str, Any]) -> None:
        if self.cell.silent and entry.get("type") == "result" and entry.get("isMainResult"):
            return  # a silent cell has no result, even from a server that does not know it
        message = message_for(entry, self.cell.reply_count, trusted=self.trusted)
        if message is not None:
            self.publish(*message)
