"""Contexts: stateful interpreters, one Jupyter kernel each, and the pool of one sandbox."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import subprocess
import uuid
from collections.abc import AsyncIterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from jupyter_client import AsyncKernelManager
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager, NoSuchKernel

from .channels import Ended, KernelChannels
from .constants import HOME
from .errors import Conflict, InvalidRequest, LimitExceeded, NotFound
from .execution import Execution, ExecutionRequest
from .interpreters import Interpreter, available_interpreters
from .launchers import Launcher
from .paths import PathResolver, normalize
from .starts import StartGate

log = logging.getLogger(__name__)

START_TIMEOUT_SECONDS = 60.0
START_ATTEMPTS = 2
ASK_TIMEOUT_SECONDS = 10.0


class ContextKernelSpecs(KernelSpecManager):
    """The kernels a context can run, independent of the user's installed kernelspecs.

    Each argv is wrapped by the sandbox's launcher, so the kernel starts confined, in `cwd`.
    """

    def __init__(
        self,
        launcher: Launcher,
        cwd: str = HOME,
        interpreters: Mapping[str, Interpreter] | None = None,
        history_file: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.launcher = launcher
        self.cwd = cwd
        self.history_file = history_file
        self.interpreters = dict(available_interpreters() if interpreters is None else interpreters)

    def available(self) -> list[str]:
        return list(self.interpreters)

    def interpreter(self, language: str) -> Interpreter:
        check_language(language, self)
        return self.interpreters[language]

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        for language, interpreter in self.interpreters.items():
            if kernel_name == kernel_name_for(language):
                command = self.launcher.kernel_command(
                    interpreter.command(self.launcher.settings.memory_bytes, self.history_file),
                    speaks_ipc=interpreter.speaks_ipc,
                )
                argv = self.launcher.argv(
                    command, self.cwd, limit_address_space=interpreter.limits_address_space
                )
                return KernelSpec(
                    argv=argv,
                    display_name=interpreter.display_name,
                    language=language,
                    interrupt_mode=interpreter.interrupt_mode or self.launcher.interrupt_mode,
                    env={},
                )
        raise NoSuchKernel(kernel_name)


class ContextKernelManager(AsyncKernelManager):
    """A kernel manager that lets the sandbox read the connection file it wrote."""

    def __init__(self, launcher: Launcher, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.launcher = launcher

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
        self.launcher.share_connection_file(self.connection_file)
        await super()._async_launch_kernel(kernel_cmd, **kw)


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
            "(pip install deno, then restart the server)"
        )
    raise InvalidRequest(f"language must be 'python' or 'javascript', not {language!r}")


class Context:
    """One interpreter: a kernel process, its client, and a lock so cells run one at a time."""

    def __init__(self, interpreter: Interpreter, cwd: str, manager: AsyncKernelManager) -> None:
        self.id = uuid.uuid4().hex
        self.interpreter = interpreter
        self.language = interpreter.language
        self.cwd = cwd
        self.manager = manager
        self.client = None  # connected by start(), once the kernel's ports are known
        self.channels: KernelChannels | None = None
        self.lock = asyncio.Lock()
        self.created_at = datetime.now(timezone.utc).isoformat()
        self.closed = False
        self.moved_to: str | None = None
        """The directory (as the interpreter names it) `move_to` made its working one: the
        kernel's process started elsewhere, so a restart moves it there again."""
        self._move_after_restart = False

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "language": self.language,
            "cwd": self.cwd,
            "status": "busy" if self.lock.locked() else "idle",
            "createdAt": self.created_at,
        }

    async def start(self, options: dict[str, Any]) -> None:
        """Start the kernel with the launcher's popen options (cwd, env, fds)."""
        # The kernel echoes captured output to its own stdout: keep it off the server's stdout,
        # which carries only the ready line.
        await self.manager.start_kernel(stdout=subprocess.DEVNULL, **options)
        self.client = self.manager.client()
        self.client.start_channels()
        try:
            await self.client.wait_for_ready(timeout=START_TIMEOUT_SECONDS)
        except RuntimeError:
            await self.shutdown()
            raise
        self.channels = KernelChannels(self.client)
        self.channels.start()

    async def alive(self) -> bool:
        """True while the kernel process runs and this context is not closed."""
        return not self.closed and await self.manager.is_alive()

    async def shutdown(self) -> None:
        self.closed = True
        if self.channels is not None:
            self.channels.end_all(*CLOSED)
            await self.channels.stop()
        if self.client is not None:
            self.client.stop_channels()
        with contextlib.suppress(Exception):
            await self.manager.shutdown_kernel(now=True)

    async def execute(self, request: ExecutionRequest) -> AsyncIterator[dict[str, Any]]:
        """Run `request`, yielding result entries in the order the kernel produced them."""
        async with self.lock:
            if self.closed or self.channels is None:
                entries = Execution("", request, 0.0).ended(*CLOSED)
                for entry in entries:
                    yield entry
                return
            if self._move_after_restart and self.moved_to is not None:
                self._move_after_restart = False
                if not await self._chdir(self.moved_to):
                    log.warning("context %s restarted outside its directory %s", self.id, self.cwd)
            async for entry in self._run(request):
                yield entry

    def _run(self, request: ExecutionRequest) -> AsyncIterator[dict[str, Any]]:
        assert self.channels is not None
        return self.channels.execute(
            request,
            is_alive=self.manager.is_alive,
            interrupt=self.manager.interrupt_kernel,
            restart=self._restart_kernel,
            late_output_seconds=self.interpreter.late_output_seconds,
            interrupted_error=self.interpreter.interrupted_error,
        )

    async def move_to(self, cwd: str, seen_path: str) -> bool:
        """Make `cwd` the interpreter's working directory (`seen_path`, as the interpreter
        names it) with a silent execution that binds no name and takes no count; False if
        the kernel refused."""
        async with self.lock:
            if self.closed or self.channels is None or not await self._chdir(seen_path):
                return False
        self.cwd, self.moved_to = cwd, seen_path
        return True

    async def _chdir(self, seen_path: str) -> bool:
        """With the lock held: the interpreter's working directory changed to `seen_path`."""
        code = f"__import__('os').chdir({seen_path!r})"
        request = ExecutionRequest(
            code, timeout=START_TIMEOUT_SECONDS, silent=True, store_history=False
        )
        outcome = None
        async for entry in self._run(request):
            if entry.get("type") == "endOfExecution":
                outcome = entry.get("status")
        return outcome == "ok"

    async def interrupt(self) -> None:
        """Interrupt the running code (KeyboardInterrupt in the kernel); state is kept."""
        if self.channels is not None:
            self.channels.interrupt_running()
        await self.manager.interrupt_kernel()

    async def restart(self) -> None:
        """Same context id, fresh interpreter: a running execution ends with an error."""
        if self.channels is not None:
            self.channels.end_all("ContextRestarted", "the context was restarted")
        await self._restart_kernel()

    async def _restart_kernel(self) -> None:
        await self.manager.restart_kernel(now=True)
        if self.channels is not None:
            await self.channels.wait_ready()
        # The new process starts where the first did; the next execution moves it first.
        self._move_after_restart = True

    def send_input(self, value: str) -> None:
        """Answer the `input()` the running code is waiting on."""
        if self.channels is None:
            raise Conflict("the context is not waiting for input")
        self.channels.answer_input(value)

    async def complete(self, code: str, cursor_pos: int) -> dict[str, Any]:
        reply = await self._ask(lambda: self.client.complete(code, cursor_pos))
        return {
            "matches": reply.get("matches", []),
            "cursorStart": reply.get("cursor_start", cursor_pos),
            "cursorEnd": reply.get("cursor_end", cursor_pos),
            "metadata": reply.get("metadata", {}),
        }

    async def inspect(self, code: str, cursor_pos: int, detail_level: int) -> dict[str, Any]:
        reply = await self._ask(lambda: self.client.inspect(code, cursor_pos, detail_level))
        return {
            "found": bool(reply.get("found", False)),
            "data": reply.get("data", {}),
            "metadata": reply.get("metadata", {}),
        }

    async def _ask(self, send: Any) -> dict[str, Any]:
        """A shell request answered between executions; busy or gone reads as an empty reply."""
        if self.closed or self.channels is None:
            return {}
        try:
            return await self.channels.request(send, ASK_TIMEOUT_SECONDS) or {}
        except Ended:
            return {}


CLOSED = ("ContextClosed", "the context was deleted, or its sandbox stopped, during execution")


class ContextPool:
    """The contexts of one sandbox, with a default context per language."""

    def __init__(
        self,
        paths: PathResolver,
        launcher: Launcher,
        max_contexts: int | None = None,
        starts: StartGate | None = None,
    ) -> None:
        self.paths = paths
        self.starts = starts or StartGate()
        self.launcher = launcher
        self.max_contexts = max_contexts
        self.specs = ContextKernelSpecs(launcher)
        self.contexts: dict[str, Context] = {}
        self.defaults: dict[str, str] = {}
        self.warm: Context | None = None
        self._default_lock = asyncio.Lock()
        self._starting = 0
        self.closed = False

    async def create(self, language: str, cwd: str, history_file: str | None = None) -> Context:
        """A new context; `history_file` is its interpreter's history (`:memory:`: none kept)."""
        interpreter = self.specs.interpreter(language)
        held = len(self.contexts) + self._starting  # starts in flight count: they await
        if self.max_contexts is not None and held >= self.max_contexts:
            raise LimitExceeded(
                f"this sandbox already holds {held} contexts, its limit "
                "(--max-contexts); delete one first"
            )
        shown_cwd = normalize(cwd)
        self._starting += 1
        try:
            warm = None if history_file is not None else await self._take_warm(language, shown_cwd)
            context = warm or await self._start(interpreter, shown_cwd, history_file)
        finally:
            self._starting -= 1
        self.contexts[context.id] = context
        log.info("context %s (%s) started in %s", context.id, language, shown_cwd)
        return context

    async def start_warm(self) -> None:
        """Start a Python context in the home directory ahead of the first request for one
        (a spare sandbox's), kept out of the list until `create` hands it out."""
        self.warm = await self._start(self.specs.interpreter("python"), HOME)

    async def _take_warm(self, language: str, cwd: str) -> Context | None:
        """The warm context, moved to `cwd`, when it is of `language` and alive."""
        context, self.warm = self.warm, None
        if context is None:
            return None
        if cwd != context.cwd and not self.paths.host(cwd).is_dir():
            self.warm = context  # kept for a request that names a directory that exists
            return None
        if language == context.language and await context.alive():
            seen = self.launcher.seen_path(cwd, self.paths.host(cwd))
            if cwd == context.cwd or await context.move_to(cwd, seen):
                context.created_at = datetime.now(timezone.utc).isoformat()
                return context
        await context.shutdown()
        return None

    async def _start(
        self, interpreter: Interpreter, shown_cwd: str, history_file: str | None = None
    ) -> Context:
        host_cwd = self.paths.host(shown_cwd)
        if not host_cwd.is_dir():
            raise InvalidRequest(f"cwd {shown_cwd} is not a directory in the sandbox")
        async with self.starts:
            return await self._start_admitted(interpreter, shown_cwd, host_cwd, history_file)

    async def _start_admitted(
        self, interpreter: Interpreter, shown_cwd: str, host_cwd: Path, history_file: str | None
    ) -> Context:
        await self.launcher.prepare()
        for attempt in range(START_ATTEMPTS):
            manager = ContextKernelManager(
                self.launcher,
                kernel_name=kernel_name_for(interpreter.language),
                kernel_spec_manager=ContextKernelSpecs(
                    self.launcher, shown_cwd, self.specs.interpreters, history_file
                ),
                **self.launcher.kernel_options(speaks_ipc=interpreter.speaks_ipc),
            )
            context = Context(interpreter, shown_cwd, manager)
            try:
                await context.start(self.launcher.popen_options(host_cwd))
                break
            except RuntimeError as error:
                # bwrap joining the sandbox's namespaces rarely fails under load ("Can't send
                # pid"); the kernel then dies at once, and a second launch works.
                if self.closed:
                    break
                if attempt + 1 == START_ATTEMPTS:
                    raise
                log.warning("context kernel did not start (%s); trying once more", error)
        if self.closed:
            await context.shutdown()
            raise Conflict("the sandbox stopped while the context was starting")
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
            context = await self.create(language, HOME)
            self.defaults[language] = context.id
            return context

    async def delete(self, context_id: str) -> None:
        context = self.get(context_id)
        del self.contexts[context_id]
        await context.shutdown()

    async def shutdown_all(self) -> None:
        self.closed = True
        contexts, self.contexts = list(self.contexts.values()), {}
        if self.warm is not None:
            contexts.append(self.warm)
            self.warm = None
        await asyncio.gather(*(context.shutdown() for context in contexts))
