"""Contexts: stateful interpreters, one Jupyter kernel each, and the pool of one sandbox."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from pathlib import Path
from queue import Empty
from typing import Any

import zmq
from jupyter_client import AsyncKernelManager
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager, NoSuchKernel

from .entries import end_entry, entry_from_iopub, error_entry
from .errors import Conflict, InvalidRequest, NotFound
from .paths import PathResolver, normalize

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0
INTERRUPT_GRACE_SECONDS = 5.0
START_TIMEOUT_SECONDS = 60.0
REPLY_TIMEOUT_SECONDS = 5.0


class ContextKernelSpecs(KernelSpecManager):
    """The kernels a context can run, independent of the user's installed kernelspecs."""

    def available(self) -> list[str]:
        return ["python"]

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        if kernel_name == kernel_name_for("python"):
            return KernelSpec(
                argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                display_name="Python 3",
                language="python",
                interrupt_mode="signal",
                env={},
            )
        raise NoSuchKernel(kernel_name)


def kernel_name_for(language: str) -> str:
    """Our own kernel names, so jupyter_client never maps them onto an installed kernelspec."""
    return f"sandbox-context-{language}"


def check_language(language: str, specs: ContextKernelSpecs) -> None:
    """Reject a language this server cannot run, saying what would make it work."""
    if language in specs.available():
        return
    if language == "javascript":
        raise InvalidRequest(
            "this server cannot run javascript contexts: it needs Deno's Jupyter kernel "
            "(pip install deno)"
        )
    raise InvalidRequest(f"language must be 'python' or 'javascript', not {language!r}")


class Context:
    """One interpreter: a kernel process, its client, and a lock so cells run one at a time."""

    def __init__(self, language: str, cwd: str, manager: AsyncKernelManager) -> None:
        self.id = uuid.uuid4().hex
        self.language = language
        self.cwd = cwd
        self.manager = manager
        self.client = None  # connected by start(), once the kernel's ports are known
        self.lock = asyncio.Lock()
        self.created_at = datetime.now(timezone.utc).isoformat()
        self.closed = False

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "language": self.language,
            "cwd": self.cwd,
            "status": "busy" if self.lock.locked() else "idle",
            "createdAt": self.created_at,
        }

    async def start(self, host_cwd: Path, environment: dict[str, str]) -> None:
        # The kernel echoes captured output to its own stdout: keep it off the server's stdout,
        # which carries only the ready line.
        await self.manager.start_kernel(
            cwd=str(host_cwd), env=environment, stdout=subprocess.DEVNULL
        )
        self.client = self.manager.client()
        self.client.start_channels()
        try:
            await self.client.wait_for_ready(timeout=START_TIMEOUT_SECONDS)
        except RuntimeError:
            await self.shutdown()
            raise

    async def shutdown(self) -> None:
        self.closed = True
        if self.client is not None:
            self.client.stop_channels()
        with contextlib.suppress(Exception):
            await self.manager.shutdown_kernel(now=True)

    async def execute(self, code: str, timeout: float | None) -> AsyncIterator[dict[str, Any]]:
        """Run `code`, yielding result entries in the order the kernel produced them."""
        async with self.lock:
            async for entry in self._execute_locked(code, timeout):
                yield entry

    async def _execute_locked(
        self, code: str, timeout: float | None
    ) -> AsyncIterator[dict[str, Any]]:
        if self.closed:
            yield closed_context_error()
            yield end_entry("error", None)
            return
        loop = asyncio.get_running_loop()
        msg_id = self.client.execute(code, store_history=True, allow_stdin=False)
        deadline = None if timeout is None else loop.time() + timeout
        interrupted_at: float | None = None
        status = "ok"
        while True:
            now = loop.time()
            wait = POLL_SECONDS if deadline is None else max(0.0, min(POLL_SECONDS, deadline - now))
            if interrupted_at is not None:
                wait = POLL_SECONDS
            try:
                message = await self.client.get_iopub_msg(timeout=wait)
            except Empty:
                message = None
            except (asyncio.CancelledError, zmq.ZMQError):
                # Closing the channels (delete, stop) cancels or breaks the pending read.
                if not self.closed:
                    raise
                message = None
            if self.closed:
                yield closed_context_error()
                yield end_entry("error", None)
                return
            if message is None:
                if not await self.manager.is_alive():
                    yield error_entry(
                        "ContextDied", "the interpreter process died during execution"
                    )
                    yield end_entry("error", None)
                    return
                now = loop.time()
                if deadline is not None and now >= deadline and interrupted_at is None:
                    await self.manager.interrupt_kernel()
                    interrupted_at = now
                elif interrupted_at is not None and now - interrupted_at > INTERRUPT_GRACE_SECONDS:
                    await self.manager.restart_kernel(now=True)
                    yield self._timeout_error(timeout, restarted=True)
                    yield end_entry("timeout", None)
                    return
                continue
            if message["parent_header"].get("msg_id") != msg_id:
                continue
            msg_type, content = message["msg_type"], message["content"]
            if msg_type == "status" and content.get("execution_state") == "idle":
                break
            if msg_type == "error":
                if interrupted_at is not None:
                    continue
                status = "error"
            entry = entry_from_iopub(msg_type, content)
            if entry is not None:
                yield entry
        execution_count = await self._reply_count(msg_id)
        if interrupted_at is not None:
            yield self._timeout_error(timeout, restarted=False)
            status = "timeout"
        yield end_entry(status, execution_count)

    async def _reply_count(self, msg_id: str) -> int | None:
        try:
            while True:
                reply = await self.client.get_shell_msg(timeout=REPLY_TIMEOUT_SECONDS)
                if reply["parent_header"].get("msg_id") == msg_id:
                    return reply["content"].get("execution_count")
        except Empty:
            return None
        except (asyncio.CancelledError, zmq.ZMQError):
            if not self.closed:
                raise
            return None

    @staticmethod
    def _timeout_error(timeout: float | None, *, restarted: bool) -> dict[str, Any]:
        what = "restarted (its state is lost)" if restarted else "interrupted"
        return error_entry(
            "TimeoutError",
            f"execution exceeded the timeout of {timeout} s and was {what}; "
            "pass a larger timeout to run longer",
        )


def closed_context_error() -> dict[str, Any]:
    """The entry that ends an execution whose context went away under it."""
    return error_entry(
        "ContextClosed", "the context was deleted, or its sandbox stopped, during execution"
    )


class ContextPool:
    """The contexts of one sandbox, with a default context per language."""

    def __init__(self, paths: PathResolver, environment: dict[str, str]) -> None:
        self.paths = paths
        self.environment = environment
        self.specs = ContextKernelSpecs()
        self.contexts: dict[str, Context] = {}
        self.defaults: dict[str, str] = {}
        self._default_lock = asyncio.Lock()
        self.closed = False

    async def create(self, language: str, cwd: str) -> Context:
        check_language(language, self.specs)
        shown_cwd = normalize(cwd)
        host_cwd = self.paths.host(shown_cwd)
        if not host_cwd.is_dir():
            raise InvalidRequest(f"cwd {shown_cwd} is not a directory in the sandbox")
        manager = AsyncKernelManager(
            kernel_name=kernel_name_for(language), kernel_spec_manager=self.specs
        )
        context = Context(language, shown_cwd, manager)
        try:
            await context.start(host_cwd, self.environment)
        except RuntimeError:
            if not self.closed:
                raise
        if self.closed:
            await context.shutdown()
            raise Conflict("the sandbox stopped while the context was starting")
        self.contexts[context.id] = context
        log.info("context %s (%s) started in %s", context.id, language, shown_cwd)
        return context

    def get(self, context_id: str) -> Context:
        try:
            return self.contexts[context_id]
        except KeyError:
            raise NotFound(f"no context {context_id!r} in this sandbox") from None

    async def default(self, language: str) -> Context:
        """The context used by execute calls that name a language but no context."""
        check_language(language, self.specs)
        async with self._default_lock:
            context_id = self.defaults.get(language)
            if context_id in self.contexts:
                return self.contexts[context_id]
            context = await self.create(language, "/home/user")
            self.defaults[language] = context.id
            return context

    async def delete(self, context_id: str) -> None:
        context = self.get(context_id)
        del self.contexts[context_id]
        await context.shutdown()

    async def shutdown_all(self) -> None:
        self.closed = True
        contexts, self.contexts = list(self.contexts.values()), {}
        await asyncio.gather(*(context.shutdown() for context in contexts))
