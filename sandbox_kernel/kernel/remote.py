"""Forwarded cells: each goes to the sandbox's context, its entries to a `CellRun`.

Around the entries themselves: `input()` answered through the notebook, SIGINT turned into
a remote interrupt, a sandbox that did not answer recovered through the supervisor, and the
context's execution count kept in step with the notebook's, the kernel's own `%sbx` cells
included (the `reply` extension).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ..client import SandboxConnectionError, SandboxNotFoundError
from ..client.endpoints import ExecuteOptions
from .cells import Cell, CellRun, Publish
from .comms import NO_COMMS_NOTE, WIDGET_VIEW, SandboxComms
from .supervisor import Supervisor

log = logging.getLogger(__name__)

INTERRUPT_GRACE_SECONDS = 5.0
AskInput = Callable[[dict[str, Any], bool], str]
"""Asks the notebook for what an `inputRequest` entry wants: `ask(entry, allow_stdin)`."""
UNSUPPORTED_EXPRESSION = {
    "status": "error",
    "ename": "NotImplementedError",
    "evalue": "user_expressions need a sandbox server with the 'reply' extension",
    "traceback": [],
}


class RemoteCells:
    """Runs the cells that go to the sandbox, one at a time."""

    def __init__(self, supervisor: Supervisor, publish: Publish, ask_input: AskInput) -> None:
        self.supervisor = supervisor
        self.publish = publish
        self.ask_input = ask_input
        self.notices: list[str] = []
        """Lines the next forwarded cell shows first, once (what the kernel's start left out)."""
        self.trust_outputs = False
        self.noted_widgets = False
        self.comms: SandboxComms | None = None
        """The sandbox's widgets (set by the kernel); None: widgets show as text."""
        self.cell_parent: Callable[[], dict[str, Any]] = dict
        """The notebook's message of the running cell."""
        """Show what the sandbox displays as it is, scripts included (see `sanitize`)."""
        self.past_inputs: dict[int, str] = {}
        """Inputs of the kernel's own cells since the last forwarded one, by count."""

    def note_local_cell(self, count: int, source: str) -> None:
        """A cell ran here, locally, under `count`: the context's history gets it too."""
        self.past_inputs[count] = source

    async def run(
        self,
        code: str,
        cell: Cell,
        *,
        allow_stdin: bool,
        user_expressions: dict[str, str] | None,
        timeout: float | None,
    ) -> dict[str, Any]:
        """Run `code` in the sandbox, publishing its output; the execute_reply content.

        `timeout` is the kernel's setting (None: the server's default where it has no cap).
        """
        run = CellRun(
            cell,
            self.publish,
            lambda _notice: self._explain_timeout(timeout),
            trusted=self.trust_outputs,
        )
        state = _Forwarding()
        await self._show_notices(cell)
        task = asyncio.ensure_future(
            self._forward(code, run, state, allow_stdin, user_expressions, timeout)
        )
        try:
            with self._sigint_interrupts(task, state):
                await task
        except asyncio.CancelledError:
            if not state.interrupted:
                raise
            run.stop(_stopped_waiting())
        except Exception as error:  # a failure to reach the sandbox must never kill the kernel
            run.stop(await self._recover(error))
        if run.status == "died":
            notice = await self.supervisor.renew_context()
            if not cell.silent:
                self.publish("stream", {"name": "stderr", "text": notice + "\n"})
        reply = run.reply()
        if user_expressions and reply["status"] == "ok" and not state.options_sent:
            reply["user_expressions"] = {name: UNSUPPORTED_EXPRESSION for name in user_expressions}
        return reply

    async def _show_notices(self, cell: Cell) -> None:
        """Publish the pending notices (after the sandbox opened: opening may add some)."""
        if cell.silent:
            return
        with contextlib.suppress(Exception):  # a failure to open is this cell's own error
            await self.supervisor.ready()
        while self.notices:
            self.publish("stream", {"name": "stderr", "text": self.notices.pop(0) + "\n"})

    async def _forward(
        self,
        code: str,
        run: CellRun,
        state: _Forwarding,
        allow_stdin: bool,
        user_expressions: dict[str, str] | None,
        timeout: float | None,
    ) -> None:
        """Send the cell and feed its entries to `run`: as they come where the server streams."""
        await self.supervisor.ready()
        session = self.supervisor.session
        context = session.context
        extensions = session.extensions
        relays_comms = await self._comms_ready(session)
        options = None
        if "reply" in extensions:
            options = ExecuteOptions(
                comms=relays_comms,
                silent=run.cell.silent,
                store_history=run.cell.store_history,
                user_expressions=user_expressions or None,
                execution_count=run.cell.count,
                past_inputs=sorted(self.past_inputs.items()),
            )
            state.options_sent = True
        if "stream" in extensions:
            state.streaming = True
            entries = context.stream_async(
                code, timeout=timeout, allow_stdin=allow_stdin, options=options
            )
            async for entry in entries:
                if entry.get("type") == "inputRequest":
                    await self._answer_input(entry, allow_stdin)
                else:
                    self._feed(run, entry)
        else:
            limit = timeout if timeout is not None else session.default_timeout
            reply = await context.execute_async(code, timeout=limit, options=options)
            for entry in reply.get("results", []):
                self._feed(run, entry)
        if options is not None:
            self.past_inputs.clear()

    async def connect(self) -> None:
        """Open the context's sockets ahead of the first cell, which would wait for them;
        a failure here is left for that cell to meet."""
        session = self.supervisor.session
        if session.context is None:
            return
        try:
            await asyncio.gather(
                session.context.connect_async(session.context_id), self._comms_ready(session)
            )
        except Exception as error:
            log.info("the context's sockets did not open ahead of the first cell: %s", error)

    async def _comms_ready(self, session: Any) -> bool:
        """True when the context's message socket is open, so its widgets reach the notebook."""
        if (
            self.comms is None
            or "comms" not in session.extensions
            or "reply" not in (session.extensions)
        ):
            return False
        try:
            await self.comms.connect(session.context, session.context_id)
        except Exception as error:  # widgets then show as text; cells still run
            log.warning("the context's message socket did not open: %s", error)
            return False
        return True

    def _feed(self, run: CellRun, entry: dict[str, Any]) -> None:
        """Give `run` the entry; the sandbox's comm messages and widget views go through
        `comms` (a view of a widget the notebook cannot reach shows as its text)."""
        if entry.get("type") == "comm":
            if self.comms is not None and self.comms.socket is not None:
                self.comms.from_execution(entry, self.cell_parent())
            return
        bundle = entry.get("bundle")
        if entry.get("type") == "result" and isinstance(bundle, dict) and WIDGET_VIEW in bundle:
            shown = self.comms.view_bundle(bundle) if self.comms is not None else {}
            if WIDGET_VIEW not in shown:
                entry = {**entry, "bundle": shown or {"text/plain": bundle.get("text/plain", "")}}
                unrelayed = self.comms is None or self.comms.socket is None
                if unrelayed and not self.noted_widgets and not run.cell.silent:
                    self.noted_widgets = True
                    self.publish("stream", {"name": "stderr", "text": NO_COMMS_NOTE + "\n"})
        run.feed(entry)

    async def _answer_input(self, entry: dict[str, Any], allow_stdin: bool) -> None:
        """Ask the frontend (the notebook's input box) and pass the answer to the sandbox."""
        try:
            value = await asyncio.to_thread(self.ask_input, entry, allow_stdin)
        except Exception:  # no frontend to ask: the remote input() must not wait forever
            value = ""
        await self.supervisor.session.context.send_input_async(value)

    async def _recover(self, error: Exception) -> dict[str, Any]:
        """The error entry for a sandbox that did not answer, after trying to recover."""
        failure = self.supervisor.failure(error)
        session = self.supervisor.session
        if isinstance(error, SandboxConnectionError) and session.is_open:
            failure["value"] += " " + await self.supervisor.reconnect()
        elif isinstance(error, SandboxNotFoundError) and session.is_open:
            failure["value"] += " " + await self.supervisor.renew_context()
        return failure

    def _explain_timeout(self, timeout: float | None) -> dict[str, Any]:
        session = self.supervisor.session
        limit = timeout if timeout is not None else session.default_timeout
        value = (
            f"the cell ran longer than SandboxKernel.timeout = {limit:g} s and was stopped; "
            "raise the limit with `%config SandboxKernel.timeout = 600`"
        )
        if not session.is_embedded_server:
            value += " (the cloud runs one synchronous execution for at most 30 s)"
        return {"type": "error", "name": "TimeoutError", "value": value, "traceback": ""}

    @contextlib.contextmanager
    def _sigint_interrupts(self, task: asyncio.Future, state: _Forwarding) -> Iterator[None]:
        """Turn SIGINT (what an interrupt delivers, message or signal mode) into a remote
        interrupt where the server offers one; otherwise stop waiting for the reply.

        Without this, SIGINT while a cell awaits its reply raises in the event loop and the
        kernel dies.
        """
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        loop = asyncio.get_running_loop()

        def on_sigint(*_: object) -> None:
            first = not state.interrupted
            state.interrupted = True
            offered = "interrupt" in self.supervisor.session.extensions
            if first and state.streaming and offered:
                loop.call_soon_threadsafe(
                    lambda: asyncio.ensure_future(self._interrupt_remote(task))
                )
            else:
                loop.call_soon_threadsafe(task.cancel)

        previous = signal.signal(signal.SIGINT, on_sigint)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    async def _interrupt_remote(self, task: asyncio.Future) -> None:
        """Interrupt the sandbox's context; stop waiting if the cell does not end soon after."""
        try:
            await self.supervisor.session.context.interrupt_async()
            await asyncio.wait_for(asyncio.shield(task), INTERRUPT_GRACE_SECONDS)
        except Exception:
            task.cancel()


@dataclass
class _Forwarding:
    """What the forwarding of one cell has done so far."""

    streaming: bool = False
    interrupted: bool = False
    options_sent: bool = False


def _stopped_waiting() -> dict[str, Any]:
    value = (
        "the kernel stopped waiting for this cell; the sandbox may still be running it "
        "(this server cannot interrupt), and the next cell starts when it ends"
    )
    return {"type": "error", "name": "KeyboardInterrupt", "value": value, "traceback": ""}
