"""One execution in a context kernel as a state object: kernel messages in, result entries out.

It does no I/O and reads no clock: the channel loop hands it each message of its request with
the time it arrived, asks how long to wait for the next one, says when nothing came (and
whether the kernel still lives), and performs the actions it asks for (interrupt or restart
the kernel). Each way an execution can go, a reply before its output, a timeout mid-output, a
kernel that dies, is therefore a unit test with no kernel running.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from .entries import comm_entry, end_entry, entry_from_iopub, error_entry

POLL_SECONDS = 1.0
"""How often a quiet execution checks that its kernel still lives."""
REPLY_AFTER_IDLE_SECONDS = 5.0
"""How long an execution waits for the reply once the kernel has gone idle."""
INTERRUPT_GRACE_SECONDS = 5.0
"""How long a kernel interrupted for a timeout has to go idle before it is restarted."""
COMM_MESSAGES = ("comm_open", "comm_msg", "comm_close")
DIED = ("ContextDied", "the interpreter process died during execution; its state is lost")
INTERRUPTED = ("KeyboardInterrupt", "the execution was interrupted")


class Action(Enum):
    """What the channel loop must do for the execution before it goes on."""

    INTERRUPT = "interrupt"
    RESTART = "restart"


@dataclass(frozen=True)
class ExecutionRequest:
    """What one execute call asks of the kernel, and how its entries travel."""

    code: str
    timeout: float | None = None
    allow_stdin: bool = False
    silent: bool = False
    store_history: bool = True
    user_expressions: Mapping[str, str] = field(default_factory=dict)
    execution_count: int | None = None
    """The count this execution takes in the notebook: the kernel moves to it first."""
    past_inputs: Sequence[tuple[int, str]] = ()
    """Inputs of cells that ran elsewhere (in the notebook's kernel), by their counts."""
    plain: bool = True
    """The plain HTTP reply: results carry the E2B-style fields, and a failure the kernel
    reports only in its reply (a UsageError) becomes an error entry."""
    reply_fields: bool = False
    """`endOfExecution` carries the reply's payload, userExpressions and error (`reply`)."""
    comms: bool = False
    """The execution's comm messages become `comm` entries (the `comms` extension)."""

    def content(self) -> dict[str, Any]:
        """The execute_request's content."""
        return {
            "code": self.code,
            "silent": self.silent,
            "store_history": self.store_history,
            "user_expressions": dict(self.user_expressions),
            "allow_stdin": self.allow_stdin,
            "stop_on_error": True,
        }

    def metadata(self) -> dict[str, Any]:
        """The execute_request's metadata: where the notebook's count stands, for a context
        kernel that keeps its own aligned (`context_kernel.ContextKernel`)."""
        if self.execution_count is None:
            return {}
        alignment = {"executionCount": self.execution_count, "pastInputs": list(self.past_inputs)}
        return {"sandboxKernel": alignment}


class Execution:
    """The progress of one execute_request, from its sending to its `endOfExecution`."""

    def __init__(
        self,
        msg_id: str,
        request: ExecutionRequest,
        started_at: float,
        *,
        late_output_seconds: float = 0.0,
        interrupted_error: tuple[str, str] | None = None,
    ) -> None:
        self.msg_id = msg_id
        self.request = request
        self.late_output_seconds = late_output_seconds
        self.interrupted_error = interrupted_error
        self.deadline = None if request.timeout is None else started_at + request.timeout
        self.last_message_at = started_at
        self.idle_at: float | None = None
        self.reply: dict[str, Any] | None = None
        self.timed_out_at: float | None = None
        self.interrupt_requested = False
        self.saw_error = False
        self.done = False

    @property
    def idle(self) -> bool:
        """True once the kernel went idle: it has published everything of this execution."""
        return self.idle_at is not None

    @property
    def _answered(self) -> bool:
        return self.idle_at is not None and self.reply is not None

    def interrupt(self) -> None:
        """The user interrupted the execution: an error that follows ends it `interrupted`."""
        self.interrupt_requested = True

    def wait(self, now: float) -> float:
        """Seconds the loop may wait for the next message before calling `quiet`."""
        if self._answered:
            return max(0.0, self.late_output_seconds - (now - self.last_message_at))
        if self.idle_at is not None:
            return max(0.0, REPLY_AFTER_IDLE_SECONDS - (now - self.idle_at))
        if self.deadline is not None and self.timed_out_at is None:
            return max(0.0, min(POLL_SECONDS, self.deadline - now))
        return POLL_SECONDS

    def receive(self, channel: str, message: dict[str, Any], now: float) -> list[dict[str, Any]]:
        """The entries one kernel message produces (messages of other requests: none)."""
        if self.done or message["parent_header"].get("msg_id") != self.msg_id:
            return []
        self.last_message_at = now
        msg_type, content = message["msg_type"], message["content"]
        entries: list[dict[str, Any]] = []
        if channel == "shell":
            if msg_type == "execute_reply":
                self.reply = content
        elif channel == "stdin":
            if msg_type == "input_request":
                prompt, password = content.get("prompt", ""), content.get("password", False)
                entries.append({"type": "inputRequest", "prompt": prompt, "password": password})
        elif msg_type == "status":
            if content.get("execution_state") == "idle":
                self.idle_at = now
        elif msg_type in COMM_MESSAGES:
            if self.request.comms:
                entries.append(comm_entry(message))
        else:
            entry = self._output(msg_type, content)
            if entry is not None:
                entries.append(entry)
        if self._answered and self.late_output_seconds <= 0:
            entries += self._finish()
        return entries

    def quiet(self, now: float, alive: bool) -> tuple[list[dict[str, Any]], Action | None]:
        """Nothing arrived within `wait()`: the entries that ends (if any), and what the loop
        must do first. `alive` is whether the kernel still runs (not asked once idle)."""
        if self._answered:
            return self._finish(), None
        if self.idle_at is not None:
            if now - self.idle_at >= REPLY_AFTER_IDLE_SECONDS:
                return self._finish(), None
            return [], None
        if not alive:
            return self.died(), None
        if self.deadline is not None and self.timed_out_at is None and now >= self.deadline:
            self.timed_out_at = now
            return [], Action.INTERRUPT
        if self.timed_out_at is not None and now - self.timed_out_at > INTERRUPT_GRACE_SECONDS:
            return self._close("timeout", self._timeout_error(restarted=True)), Action.RESTART
        return [], None

    def died(self) -> list[dict[str, Any]]:
        """The kernel process is gone: the execution ends `died`."""
        return self._close("died", error_entry(*DIED))

    def ended(self, name: str, message: str) -> list[dict[str, Any]]:
        """The context went away (deleted, restarted, its sandbox stopped): `died` too."""
        return self._close("died", error_entry(name, message))

    def _output(self, msg_type: str, content: dict[str, Any]) -> dict[str, Any] | None:
        if msg_type == "error":
            if self.timed_out_at is not None:
                return None  # the interrupt's own error: the timeout notice stands for it
            self.saw_error = True
            if self._is_interrupt_error(content):
                return error_entry(*INTERRUPTED)
        return entry_from_iopub(msg_type, content, plain=self.request.plain)

    def _is_interrupt_error(self, content: dict[str, Any]) -> bool:
        """True for the error a kernel that is not Python's reports for an interrupted cell
        (shown, as Python's kernel shows it, as a KeyboardInterrupt)."""
        error = (content.get("ename", "Error"), content.get("evalue", ""))
        return self.interrupt_requested and error == self.interrupted_error

    def _finish(self) -> list[dict[str, Any]]:
        if self.timed_out_at is not None:
            return self._close("timeout", self._timeout_error(restarted=False))
        reply = self.reply or {}
        if self.reply is None:
            status = "error" if self.saw_error else "ok"
        else:
            status = "ok" if reply.get("status") == "ok" else "error"
        if status == "error" and self.interrupt_requested:
            status = "interrupted"
        error = None
        if status != "ok" and self._is_interrupt_error(reply):
            error = error_entry(*INTERRUPTED)
        elif status != "ok":
            traceback = "\n".join(str(line) for line in reply.get("traceback") or [])
            error = error_entry(
                str(reply.get("ename") or "Error"), str(reply.get("evalue") or ""), traceback
            )
        entries = []
        if error is not None and self.request.plain and not self.saw_error:
            entries.append(error)  # a failure IPython reports only in its reply (UsageError)
        entries.append(self._end(status, reply.get("execution_count"), error))
        return entries

    def _close(self, status: str, notice: dict[str, Any]) -> list[dict[str, Any]]:
        """End with a notice of the server's own (a timeout, a death) and `status`."""
        return [notice, self._end(status, None, notice)]

    def _end(
        self, status: str, execution_count: int | None, error: dict[str, Any] | None
    ) -> dict[str, Any]:
        self.done = True
        if not self.request.reply_fields:
            return end_entry(status, execution_count)
        reply = self.reply or {}
        fields: dict[str, Any] = {
            "payload": reply.get("payload") or [],
            "userExpressions": reply.get("user_expressions") or {},
        }
        if error is not None:
            fields["error"] = {key: error[key] for key in ("name", "value", "traceback")}
        return end_entry(status, execution_count, **fields)

    def _timeout_error(self, *, restarted: bool) -> dict[str, Any]:
        what = "restarted (its state is lost)" if restarted else "interrupted"
        return error_entry(
            "TimeoutError",
            f"execution exceeded the timeout of {self.request.timeout:g} s and was {what}; "
            "pass a larger timeout to run longer",
        )
