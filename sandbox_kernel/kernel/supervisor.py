"""The supervisor: keeps the kernel's sandbox session usable.

It opens the session in the background when the kernel starts (the first cell waits for it),
reconnects when the server went away, renews a context whose interpreter was lost, hands the
sandbox over to the kernel process that replaces this one on a restart, and closes it all
(every context the kernel created) at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from ..client.session import SandboxSession
from ..client.settings import ClientSettings

log = logging.getLogger(__name__)

RECONNECT_ATTEMPTS = 5
RECONNECT_DELAY_CAP = 8.0
T = TypeVar("T")


class Supervisor:
    """Owns the session's lifecycle on the kernel's main event loop."""

    def __init__(self, session: SandboxSession, restart_record: Path | None = None) -> None:
        self.session = session
        self.restart_record = restart_record
        self.loop: asyncio.AbstractEventLoop | None = None
        self._opening: asyncio.Future | None = None
        self._connected: asyncio.Future | None = None
        """Done once the sandbox's health is read, while the context may still be starting."""
        self.after_open: Callable[[], Awaitable[None]] | None = None
        """Run once the session opened, before a waiting cell goes on (connections ahead)."""
        self._resume_after_restart()

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start opening the session on `loop`, the kernel's main loop."""
        self.loop = loop
        self._opening = self._open()

    def _open(self) -> asyncio.Future:
        """Start opening the sandbox; a failure is logged here and raised to the cell waiting."""
        assert self.loop is not None
        connected = self._connected = self.loop.create_future()

        async def connect_then_open() -> None:
            try:
                await self.session.connect_async()
            finally:
                if not connected.done():
                    connected.set_result(None)
            await self.session.open_async()
            if self.after_open is not None:
                await self.after_open()

        opening = asyncio.ensure_future(connect_then_open(), loop=self.loop)
        opening.add_done_callback(_log_failure)
        return opening

    async def ready(self) -> None:
        """Wait for the sandbox; retry once per call when an earlier attempt failed."""
        finished = self._opening is not None and self._opening.done()
        failed = finished and (self._opening.exception() is not None or not self.session.is_open)
        if self._opening is None or failed:
            self._opening = self._open()
        await asyncio.shield(self._opening)

    async def connected(self, timeout: float) -> None:
        """Wait at most `timeout` seconds (from any thread) until the opening under way knows
        what the sandbox offers; its context may still be starting."""
        connected = self._connected
        if connected is None or connected.done() or timeout <= 0:
            return
        with contextlib.suppress(Exception):
            await self.on_main_loop(lambda: asyncio.wait({connected}), timeout)

    async def on_main_loop(self, work: Callable[[], Awaitable[T]], timeout: float) -> T:
        """Run `work()` on the main loop and wait for it at most `timeout` seconds, from the
        main loop or another one (the control thread's)."""
        if self.loop is None or not self.loop.is_running():
            raise RuntimeError("the kernel's main loop is not running")

        async def bounded() -> T:
            return await asyncio.wait_for(work(), timeout)

        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            return await bounded()
        future = asyncio.run_coroutine_threadsafe(bounded(), self.loop)
        return await asyncio.wrap_future(future)

    # ---- recovery

    async def renew_context(self) -> str:
        """The context's interpreter died or vanished: start a fresh one in the same sandbox."""
        try:
            await self.session.renew_context_async()
        except Exception as error:
            self.session.forget_connection()
            return f"Its state is lost, and a fresh interpreter could not be started ({error})."
        return (
            "The sandbox's interpreter was lost with its state (variables, imports); a fresh "
            "one is ready, so run the cells that set up state again. Files are kept."
        )

    async def reconnect(self) -> str:
        """The server went away: reconnect with backoff (1 s doubling, capped), rejoining the
        sandbox where it survived, in a fresh interpreter."""
        previous = self.session.sandbox_id
        self.session.forget_connection()
        delay = 0.0
        for _ in range(RECONNECT_ATTEMPTS):
            await asyncio.sleep(delay)
            delay = min(max(delay * 2, 1.0), RECONNECT_DELAY_CAP)
            try:
                await self.session.open_async()
            except Exception as error:
                log.info("reconnecting to the sandbox server failed: %s", error)
                continue
            where = "the same sandbox" if self.session.sandbox_id == previous else "a new sandbox"
            return (
                f"Reconnected to {where} ({self.session.sandbox_id}) with a fresh interpreter: "
                "the remote state (variables, imports) was lost. Run the cell again."
            )
        return "Could not reconnect yet; the next cell tries again."

    def failure(self, error: Exception) -> dict[str, Any]:
        """An error entry for a sandbox that did not answer: what was tried, how to fix it."""
        info = self.session.describe()
        message = (str(error) or type(error).__name__).rstrip(".")
        if self.session.uses_embedded_server:
            url = self.session.embedded_url
            if not message.startswith("the embedded"):
                message = f"the embedded server{f' at {url}' if url else ''} failed: {message}"
            value = f"{message}. The next cell tries again (restarting it if it stopped)."
            return {"type": "error", "name": "SandboxError", "value": value}
        if self.session.is_open:
            hint = "The sandbox did not answer this cell; the next cell tries again."
        else:
            hint = (
                "Check the endpoint and token (c.SandboxKernel.endpoint / token, or "
                "SANDBOX_KERNEL_ENDPOINT / SANDBOX_KERNEL_TOKEN), or unset them to use the "
                "embedded local server; the next cell tries again."
            )
        if info["endpoint"] and info["where"] not in message:
            message += f" [sandbox server: {info['where']}]"
        return {"type": "error", "name": "SandboxError", "value": f"{message}. {hint}"}

    def where_cells_run(self) -> str:
        """One line that tells the user this is not their machine."""
        info = self.session.describe()
        connected = self.session.sandbox is not None and bool(self.session.health)
        if info["failure"] or not connected:
            if info["failure"]:
                return (
                    f"Cells run in a sandbox at {info['where']} (not connected: {info['failure']})."
                )
            where = info["where"]
            if self.session.settings is None:
                where = ClientSettings.planned_where(self.session.endpoint)
            return f"Cells run in a sandbox at {where} (connecting...)."
        line = (
            f"Cells run in sandbox {info['sandbox_id']} at {info['endpoint']} "
            f"(isolation: {info['isolation']})."
        )
        if info["isolation"] == "none":
            line += " Warning: this sandbox is NOT isolated from the machine it runs on."
        return line

    # ---- restart and shutdown

    async def close(self, *, restart: bool, keep_sandbox: bool, timeout: float) -> None:
        """Delete the contexts this kernel created, and the sandbox too unless restarting or
        keeping it; on a restart, leave the sandbox (and the context, restarted in place
        where the server can) to the kernel process that replaces this one."""
        if self._opening is not None and not self._opening.done():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._opening), timeout / 2)
        session = self.session
        if restart and session.is_open and await session.restart_context_async():
            self._write_restart_record(session.context_id, session.created_sandbox)
            session.release()
        elif restart and session.created_sandbox and session.sandbox_id:
            self._write_restart_record(None, True)
        await session.close_async(keep_sandbox=restart or keep_sandbox)

    def _write_restart_record(self, context_id: str | None, owns_sandbox: bool) -> None:
        """Let the kernel process that replaces this one keep using the same sandbox (and the
        restarted context, when the server restarted it)."""
        if self.restart_record is None:
            return
        self.restart_record.parent.mkdir(parents=True, exist_ok=True)
        record = {
            "sandbox_id": self.session.sandbox_id,
            "endpoint": self.session.endpoint,
            "context_id": context_id,
            "owns_sandbox": owns_sandbox,
        }
        self.restart_record.write_text(json.dumps(record))

    def _resume_after_restart(self) -> None:
        record_path = self.restart_record
        if record_path is None or not record_path.exists():
            return
        session = self.session
        with contextlib.suppress(OSError, ValueError):
            record = json.loads(record_path.read_text())
            same_target = session.sandbox_id in (None, "", record.get("sandbox_id"))
            if record.get("endpoint") == session.endpoint and same_target:
                session.sandbox_id = record["sandbox_id"]
                session.created_sandbox = bool(record.get("owns_sandbox", True))
                session.resume_context_id = record.get("context_id")
        record_path.unlink(missing_ok=True)


def restart_record_path(connection_file: str) -> Path | None:
    """Where a restarting kernel leaves its sandbox id for its successor."""
    if not connection_file:
        return None
    from ..local import runtime_dir

    digest = hashlib.sha256(str(Path(connection_file).resolve()).encode()).hexdigest()[:16]
    return runtime_dir() / "restarts" / f"{digest}.json"


def _log_failure(opening: asyncio.Future) -> None:
    """Log why the sandbox did not open (this also marks the failure as seen)."""
    if not opening.cancelled() and opening.exception() is not None:
        log.warning("could not open the sandbox: %s", opening.exception())
