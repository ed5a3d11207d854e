"""SandboxKernel: an IPython kernel whose ordinary cells run in a sandbox context."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ipykernel.ipkernel import IPythonKernel
from traitlets import Bool, Enum, Float, Unicode

from .. import __version__
from ..client import SandboxConnectionError, SandboxNotFoundError
from ..client.session import SandboxSession
from .outputs import error_content, message_for
from .routing import MixedCellError, Route, is_local_at, route

log = logging.getLogger(__name__)

INTERRUPT_GRACE_SECONDS = 5.0
ASK_TIMEOUT_SECONDS = 12.0
# jupyter_client kills a kernel that has not exited 5 s after a shutdown request.
SHUTDOWN_SECONDS = 4.5
RECONNECT_ATTEMPTS = 5
RECONNECT_DELAY_CAP = 8.0
# ipykernel pauses this long after each cell so that output written here lands first.
LOCAL_EXECUTE_SLEEP = IPythonKernel._execute_sleep.default_value
JAVASCRIPT_LANGUAGE_INFO = {
    "name": "javascript",
    "mimetype": "application/javascript",
    "file_extension": ".js",
    "codemirror_mode": "javascript",
    "pygments_lexer": "javascript",
    "nbconvert_exporter": "script",
}


@dataclass
class RemoteCell:
    """What one forwarded cell has produced so far."""

    count: int
    silent: bool
    allow_stdin: bool
    streaming: bool = False
    interrupted: bool = False
    timed_out: bool = False
    error: dict[str, Any] | None = None


class SandboxKernel(IPythonKernel):
    """Forwards every ordinary cell to `context.execute`; `%sbx` cells run here, locally."""

    implementation = "sandbox-kernel"
    implementation_version = __version__

    endpoint = Unicode(
        None, allow_none=True, help="Sandbox server URL (default: environment, else embedded)."
    ).tag(config=True)
    token = Unicode(None, allow_none=True, help="Token for the sandbox server.").tag(config=True)
    template = Unicode("default", help="Template of the sandbox this kernel creates.").tag(
        config=True
    )
    sandbox_id = Unicode(
        None, allow_none=True, help="Join this existing sandbox instead of creating one."
    ).tag(config=True)
    timeout = Float(
        None,
        allow_none=True,
        help="Seconds one cell may run in the sandbox (default: 30 on the cloud, "
        "no practical limit on the embedded server).",
    ).tag(config=True)
    keep_sandbox = Bool(
        False, help="Leave the sandbox this kernel created running when the kernel shuts down."
    ).tag(config=True)
    language = Enum(
        ["python", "javascript"], "python", help="Language of the sandbox context cells run in."
    ).tag(config=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _log_beside_the_kernel(self.log)
        if self.language == "javascript":
            self.language_info = JAVASCRIPT_LANGUAGE_INFO
        self.remote = SandboxSession(
            endpoint=self.endpoint,
            token=self.token,
            template=self.template,
            sandbox_id=self.sandbox_id,
            keep_sandbox=self.keep_sandbox,
            language=self.language,
        )
        self._restart_record = _restart_record_path(getattr(self.parent, "connection_file", ""))
        self._resume_after_restart()
        self._opening: asyncio.Future | None = None
        self._main_loop: asyncio.AbstractEventLoop | None = None
        if self.shell is not None:
            self.shell.configurables.append(self)
            self.shell.extension_manager.load_extension("magics")
            self.shell.magics_manager.registry["SbxMagics"].session = self.remote

    # ---- start-up: open the sandbox in the background, the first cell waits for it

    def start(self) -> None:
        super().start()
        self._main_loop = self.io_loop.asyncio_loop
        self._opening = self._open()

    def _open(self) -> asyncio.Future:
        """Start opening the sandbox; a failure is logged here and raised to the cell waiting."""
        opening = asyncio.ensure_future(self.remote.open_async(), loop=self._main_loop)
        opening.add_done_callback(_log_failure)
        return opening

    async def _ready(self) -> None:
        """Wait for the sandbox; retry once per cell when an earlier attempt failed."""
        finished = self._opening is not None and self._opening.done()
        failed = finished and (self._opening.exception() is not None or not self.remote.is_open)
        if self._opening is None or failed:
            self._opening = self._open()
        await asyncio.shield(self._opening)

    @property
    def banner(self) -> str:
        # IPython's own banner describes the local Python, which runs only %sbx magics here.
        local = (super().banner or "") if self.language == "python" else ""
        return f"{local}\n{self.where_cells_run()}\n"

    def where_cells_run(self) -> str:
        """One line that tells the user this is not their machine."""
        info = self.remote.describe()
        if not self.remote.is_open:
            state = f"not connected: {info['failure']}" if info["failure"] else "connecting..."
            return f"Cells run in a sandbox at {info['where']} ({state})."
        line = (
            f"Cells run in sandbox {info['sandbox_id']} at {info['endpoint']} "
            f"(isolation: {info['isolation']})."
        )
        if info["isolation"] == "none":
            line += " Warning: this sandbox is NOT isolated from the machine it runs on."
        return line

    # ---- execution

    async def do_execute(
        self,
        code: str,
        silent: bool,
        store_history: bool = True,
        user_expressions: dict | None = None,
        allow_stdin: bool = False,
        *,
        cell_meta: dict | None = None,
        cell_id: str | None = None,
    ) -> dict[str, Any]:
        try:
            where = route(code)
        except MixedCellError as error:
            return self._fail(
                {"name": "UsageError", "value": str(error), "traceback": ""}, silent, store_history
            )
        # A forwarded cell writes nothing here to wait for; the pause was 0.5 of its ~10 ms.
        self._execute_sleep = LOCAL_EXECUTE_SLEEP if where is Route.LOCAL else 0.0
        if where is Route.LOCAL:
            if code.strip():
                with contextlib.suppress(Exception):  # %sbx status reports a failure itself
                    await self._ready()
            return await super().do_execute(
                code,
                silent,
                store_history,
                user_expressions,
                allow_stdin,
                cell_meta=cell_meta,
                cell_id=cell_id,
            )
        return await self._execute_remote(code, silent, store_history, allow_stdin)

    async def _execute_remote(
        self, code: str, silent: bool, store_history: bool, allow_stdin: bool
    ) -> dict[str, Any]:
        shell = self.shell
        count = shell.execution_count
        if store_history and not silent:
            shell.history_manager.store_inputs(count, code)
        cell = RemoteCell(count=count, silent=silent, allow_stdin=allow_stdin)
        request = asyncio.ensure_future(self._run_cell(code, cell))
        try:
            with self._interrupt_handler(request, cell):
                await request
        except asyncio.CancelledError:
            if not cell.interrupted:
                raise
            return self._fail(self._stopped_waiting(), silent, store_history)
        except Exception as error:  # a failure to reach the sandbox must never kill the kernel
            failure = self._sandbox_failure(error)
            if isinstance(error, SandboxConnectionError) and self.remote.is_open:
                failure["value"] += " " + await self._reconnect()
            elif isinstance(error, SandboxNotFoundError) and self.remote.is_open:
                failure["value"] += " " + await self._renew_context()
            return self._fail(failure, silent, store_history)
        if cell.error is not None and cell.error.get("name") == "ContextDied":
            notice = await self._renew_context()
            if not silent:
                self._publish({"type": "stderr", "text": notice + "\n"}, count)
        if cell.timed_out:
            cell.error = self._explain_timeout(cell.error or {})
            if not silent:
                self._publish(cell.error, count)
        return self._finish(count, cell.error, silent, store_history)

    async def _run_cell(self, code: str, cell: RemoteCell) -> None:
        """Send the cell and publish its entries: as they come where the server streams."""
        await self._ready()
        context = self.remote.context
        if "stream" in self.remote.extensions:
            cell.streaming = True
            entries = context.stream_async(code, timeout=self.timeout, allow_stdin=cell.allow_stdin)
            async for entry in entries:
                await self._handle_entry(entry, cell)
            return
        reply = await context.execute_async(code, timeout=self._cell_timeout())
        for entry in reply.get("results", []):
            await self._handle_entry(entry, cell)

    async def _handle_entry(self, entry: dict[str, Any], cell: RemoteCell) -> None:
        kind = entry.get("type")
        if kind == "endOfExecution":
            cell.timed_out = entry.get("status") == "timeout"
            return
        if kind == "inputRequest":
            await self._answer_input(entry, cell)
            return
        if kind == "error":
            cell.error = entry
            if entry.get("name") == "TimeoutError":
                return
        if not cell.silent:
            self._publish(entry, cell.count)

    async def _answer_input(self, entry: dict[str, Any], cell: RemoteCell) -> None:
        """Ask the frontend (the notebook's input box) and pass the answer to the sandbox."""
        self._allow_stdin = cell.allow_stdin
        ask = self.getpass if entry.get("password") else self.raw_input
        try:
            value = await asyncio.to_thread(ask, str(entry.get("prompt", "")))
        except Exception:  # no frontend to ask: the remote input() must not wait forever
            value = ""
        await self.remote.context.send_input_async(value)

    async def _renew_context(self) -> str:
        """The context's interpreter died or vanished: start a fresh one in the same sandbox."""
        try:
            await self.remote.renew_context_async()
        except Exception as error:
            self.remote.forget_connection()
            return f"Its state is lost, and a fresh interpreter could not be started ({error})."
        return (
            "The sandbox's interpreter was lost with its state (variables, imports); a fresh "
            "one is ready, so run the cells that set up state again. Files are kept."
        )

    async def _reconnect(self) -> str:
        """The server went away: reconnect with backoff (1 s doubling, capped), rejoining the
        sandbox where it survived, in a fresh interpreter."""
        previous = self.remote.sandbox_id
        self.remote.forget_connection()
        delay = 0.0
        for _ in range(RECONNECT_ATTEMPTS):
            await asyncio.sleep(delay)
            delay = min(max(delay * 2, 1.0), RECONNECT_DELAY_CAP)
            try:
                await self.remote.open_async()
            except Exception as error:
                log.info("reconnecting to the sandbox server failed: %s", error)
                continue
            where = "the same sandbox" if self.remote.sandbox_id == previous else "a new sandbox"
            return (
                f"Reconnected to {where} ({self.remote.sandbox_id}) with a fresh interpreter: "
                "the remote state (variables, imports) was lost. Run the cell again."
            )
        return "Could not reconnect yet; the next cell tries again."

    @contextlib.contextmanager
    def _interrupt_handler(self, request: asyncio.Future, cell: RemoteCell) -> Iterator[None]:
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
            first = not cell.interrupted
            cell.interrupted = True
            if first and cell.streaming and "interrupt" in self.remote.extensions:
                loop.call_soon_threadsafe(
                    lambda: asyncio.ensure_future(self._interrupt_remote(request))
                )
            else:
                loop.call_soon_threadsafe(request.cancel)

        previous = signal.signal(signal.SIGINT, on_sigint)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    async def _interrupt_remote(self, request: asyncio.Future) -> None:
        """Interrupt the sandbox's context; stop waiting if the cell does not end soon after."""
        try:
            await self.remote.context.interrupt_async()
            await asyncio.wait_for(asyncio.shield(request), INTERRUPT_GRACE_SECONDS)
        except Exception:
            request.cancel()

    def _stopped_waiting(self) -> dict[str, Any]:
        value = (
            "the kernel stopped waiting for this cell; the sandbox may still be running it "
            "(this server cannot interrupt), and the next cell starts when it ends"
        )
        return {"name": "KeyboardInterrupt", "value": value, "traceback": ""}

    def _cell_timeout(self) -> float:
        if self.timeout is not None:
            return self.timeout
        return self.remote.default_timeout

    def _explain_timeout(self, entry: dict[str, Any]) -> dict[str, Any]:
        limit = self._cell_timeout()
        value = (
            f"the cell ran longer than SandboxKernel.timeout = {limit:g} s and was stopped; "
            "raise the limit with `%config SandboxKernel.timeout = 600`"
        )
        if not self.remote.is_embedded_server:
            value += " (the cloud runs one synchronous execution for at most 30 s)"
        return {**entry, "name": "TimeoutError", "value": value, "traceback": ""}

    def _sandbox_failure(self, error: Exception) -> dict[str, Any]:
        """An error entry that says which server failed, what it said and what to do."""
        info = self.remote.describe()
        message = (str(error) or type(error).__name__).rstrip(".")
        if self.remote.uses_embedded_server:
            url = self.remote.embedded_url
            if not message.startswith("the embedded"):
                message = f"the embedded server{f' at {url}' if url else ''} failed: {message}"
            return {
                "name": "SandboxError",
                "value": f"{message}. The next cell tries again (restarting it if it stopped).",
                "traceback": "",
            }
        if self.remote.is_open:
            hint = "The sandbox did not answer this cell; the next cell tries again."
        else:
            hint = (
                "Check the endpoint and token (c.SandboxKernel.endpoint / token, or "
                "SANDBOX_KERNEL_ENDPOINT / SANDBOX_KERNEL_TOKEN), or unset them to use the "
                "embedded local server; the next cell tries again."
            )
        if info["endpoint"] and info["where"] not in message:
            message += f" [sandbox server: {info['where']}]"
        return {"name": "SandboxError", "value": f"{message}. {hint}", "traceback": ""}

    def _publish(self, entry: dict[str, Any], count: int) -> None:
        message = message_for(entry, count)
        if message is None:
            return
        msg_type, content = message
        self.session.send(
            self.iopub_socket,
            msg_type,
            content,
            parent=self.get_parent("shell"),
            ident=self._topic(msg_type),
        )

    def _fail(self, entry: dict[str, Any], silent: bool, store_history: bool) -> dict[str, Any]:
        count = self.shell.execution_count
        if not silent:
            self._publish({**entry, "type": "error"}, count)
        return self._finish(count, entry, silent, store_history)

    def _finish(
        self, count: int, error: dict[str, Any] | None, silent: bool, store_history: bool
    ) -> dict[str, Any]:
        """The execute_reply content; advances the count as IPython does for a stored cell."""
        if store_history and not silent:
            self.shell.execution_count += 1
            reply_count = count
        else:
            reply_count = self.shell.execution_count - 1
        reply: dict[str, Any] = {
            "execution_count": reply_count,
            "payload": [],
            "user_expressions": {},
        }
        if error is None:
            reply["status"] = "ok"
        else:
            reply.update(status="error", **error_content(error))
        return reply

    def do_is_complete(self, code: str) -> dict[str, Any]:
        """Python's check for Python cells and local magics; other languages are unknown here."""
        if self.language == "python":
            return super().do_is_complete(code)
        try:
            local = route(code) is Route.LOCAL
        except MixedCellError:
            return {"status": "invalid"}
        return super().do_is_complete(code) if local else {"status": "unknown"}

    # ---- completion and inspection: from the sandbox's context, `%sbx` lines locally

    async def do_complete(self, code: str, cursor_pos: int | None) -> dict[str, Any]:
        cursor_pos = len(code) if cursor_pos is None else cursor_pos
        if self._answers_remotely(code, cursor_pos, "complete"):
            with contextlib.suppress(Exception):
                reply = await asyncio.wait_for(
                    self.remote.context.complete_async(code, cursor_pos), ASK_TIMEOUT_SECONDS
                )
                return {
                    "status": "ok",
                    "matches": reply.get("matches", []),
                    "cursor_start": reply.get("cursorStart", cursor_pos),
                    "cursor_end": reply.get("cursorEnd", cursor_pos),
                    "metadata": reply.get("metadata", {}),
                }
        return super().do_complete(code, cursor_pos)

    async def do_inspect(
        self,
        code: str,
        cursor_pos: int | None,
        detail_level: int = 0,
        omit_sections: Any = (),
    ) -> dict[str, Any]:
        cursor_pos = len(code) if cursor_pos is None else cursor_pos
        if self._answers_remotely(code, cursor_pos, "inspect"):
            with contextlib.suppress(Exception):
                reply = await asyncio.wait_for(
                    self.remote.context.inspect_async(code, cursor_pos, detail_level),
                    ASK_TIMEOUT_SECONDS,
                )
                return {
                    "status": "ok",
                    "found": bool(reply.get("found")),
                    "data": reply.get("data", {}),
                    "metadata": reply.get("metadata", {}),
                }
        return super().do_inspect(code, cursor_pos, detail_level, omit_sections)

    def _answers_remotely(self, code: str, cursor_pos: int, extension: str) -> bool:
        """The sandbox answers unless the cursor is in a local `%sbx` line or cell, or the
        server cannot (then the local kernel does what it can)."""
        if not self.remote.is_open or extension not in self.remote.extensions:
            return False
        return not is_local_at(code, cursor_pos)

    # ---- restart and shutdown

    async def do_shutdown(self, restart: bool) -> dict[str, Any]:
        """Delete the context; delete the sandbox too unless restarting or keeping it."""
        if self._main_loop is not None and self._main_loop.is_running():
            future = asyncio.run_coroutine_threadsafe(self._close(restart), self._main_loop)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.wrap_future(future), SHUTDOWN_SECONDS)
        return super().do_shutdown(restart)

    async def _close(self, restart: bool) -> None:
        if self._opening is not None and not self._opening.done():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._opening), SHUTDOWN_SECONDS / 2)
        if restart and self.remote.is_open and await self.remote.restart_context_async():
            # The server gave the context a fresh interpreter: the next kernel joins it.
            self._write_restart_record(self.remote.context_id, self.remote.created_sandbox)
            self.remote.release()
        elif restart and self.remote.created_sandbox and self.remote.sandbox_id:
            self._write_restart_record(None, True)
        await self.remote.close_async(keep_sandbox=restart or self.keep_sandbox)

    def _write_restart_record(self, context_id: str | None, owns_sandbox: bool) -> None:
        """Let the kernel process that replaces this one keep using the same sandbox (and the
        restarted context, when the server restarted it)."""
        if self._restart_record is None:
            return
        self._restart_record.parent.mkdir(parents=True, exist_ok=True)
        record = {
            "sandbox_id": self.remote.sandbox_id,
            "endpoint": self.remote.endpoint,
            "context_id": context_id,
            "owns_sandbox": owns_sandbox,
        }
        self._restart_record.write_text(json.dumps(record))

    def _resume_after_restart(self) -> None:
        if self._restart_record is None or not self._restart_record.exists():
            return
        with contextlib.suppress(OSError, ValueError):
            record = json.loads(self._restart_record.read_text())
            same_target = self.remote.sandbox_id in (None, "", record.get("sandbox_id"))
            if record.get("endpoint") == self.remote.endpoint and same_target:
                self.remote.sandbox_id = record["sandbox_id"]
                self.remote.created_sandbox = bool(record.get("owns_sandbox", True))
                self.remote.resume_context_id = record.get("context_id")
        self._restart_record.unlink(missing_ok=True)


def _log_failure(opening: asyncio.Future) -> None:
    """Log why the sandbox did not open (this also marks the failure as seen)."""
    if not opening.cancelled() and opening.exception() is not None:
        log.warning("could not open the sandbox: %s", opening.exception())


def _log_beside_the_kernel(kernel_log: logging.Logger) -> None:
    """Send this package's log records where the kernel's own go (the terminal or the
    Jupyter server's log), never to sys.stderr, which in a kernel is the user's cell output."""
    package_log = logging.getLogger("sandbox_kernel")
    if package_log.handlers or not kernel_log.handlers:
        return
    for handler in kernel_log.handlers:
        package_log.addHandler(handler)
    package_log.setLevel(kernel_log.getEffectiveLevel())
    package_log.propagate = False


def _restart_record_path(connection_file: str) -> Path | None:
    """Where a restarting kernel leaves its sandbox id for its successor."""
    if not connection_file:
        return None
    from ..local import runtime_dir

    digest = hashlib.sha256(str(Path(connection_file).resolve()).encode()).hexdigest()[:16]
    return runtime_dir() / "restarts" / f"{digest}.json"
