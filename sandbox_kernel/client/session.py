"""A sandbox plus one context in it: what the kernel (and the magics) talk to."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from . import endpoints
from .contexts import ContextOperations
from .endpoints import ExecuteOptions
from .errors import SandboxError, SandboxNotFoundError
from .fallback import Fallback
from .flows import Flow, awaited, close, in_thread, run, run_async, send, single, together
from .sandbox import CodeInterpreterSandbox, creating, joining
from .settings import EMBEDDED, ClientSettings, chooses_embedded

log = logging.getLogger(__name__)

HOME = "/home/user"
Prepare = Callable[[CodeInterpreterSandbox], Awaitable[None]]
"""Work on a new sandbox before its first context (the kernel copies the notebook's folder)."""
QUIET = ExecuteOptions(silent=True, store_history=False)

CLOUD_TIMEOUT = 30.0
"""Seconds the cloud lets one synchronous execution or command run."""
EMBEDDED_TIMEOUT = 24 * 3600.0
"""The embedded server has no cap; a day stands for none."""


class SandboxSession:
    """Opens (creates or joins) a sandbox and a context; closes them in the right order.

    A sandbox this session created is deleted on close unless `keep_sandbox`; a sandbox it
    joined by id is left running.
    """

    def __init__(
        self,
        endpoint: str | None = None,
        token: str | None = None,
        template: str = "default",
        sandbox_id: str | None = None,
        keep_sandbox: bool = False,
        language: str = "python",
        history_file: str | None = None,
        *,
        env: dict[str, str] | None = None,
        cwd: str = HOME,
        prepare: Prepare | None = None,
        fallback: Fallback | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.token = token
        self.template = template
        self.sandbox_id = sandbox_id
        self.keep_sandbox = keep_sandbox
        self.language = language
        self.history_file = history_file
        """The IPython history file of the contexts it creates (`:memory:`: none on disk)."""
        self.env: dict[str, str] = dict(env or {})
        """Variables for the sandbox's interpreters, the host's own never among them."""
        self._env_in_contexts: dict[str, str] = {}
        """The part of `env` each new context is told itself (the server did not take it)."""
        self.cwd = cwd
        """The working directory of the contexts it creates."""
        self.prepare = prepare
        """Work on a sandbox this session creates, while its first context starts."""
        self._unprepared = False
        self.fallback = fallback
        """Finds the server when nothing names one (the kernel and magics: the embedded one)."""
        self.sandbox: CodeInterpreterSandbox | None = None
        self.context: ContextOperations | None = None
        self.created_sandbox = False
        self.settings: ClientSettings | None = None
        self.embedded_url: str | None = None
        """Where the embedded server last listened; kept while it is being looked for anew."""
        self.failure: str | None = None
        self.resume_context_id: str | None = None
        """A context to join on open (a restarted kernel's), instead of creating one."""
        self.owned_contexts: set[str] = set()
        """The contexts this session created (or took over on a restart): close deletes
        them, whichever one is in use by then."""

    @property
    def is_open(self) -> bool:
        return self.context is not None and self.context.context_id is not None

    @property
    def context_id(self) -> str | None:
        return None if self.context is None else self.context.context_id

    @property
    def health(self) -> dict[str, Any]:
        """The sandbox's health as last read (the sandbox remembers it), `{}` before."""
        return {} if self.sandbox is None else self.sandbox.health

    @property
    def isolation(self) -> str:
        return str(self.health.get("isolation", "unknown (not reported by the server)"))

    @property
    def is_embedded_server(self) -> bool:
        """True for our own server, which runs cells with no time cap."""
        return self.health.get("server") == "sandbox-kernel"

    @property
    def extensions(self) -> frozenset[str]:
        """What the server offers beyond the cloud protocol (streaming, interrupt, ...)."""
        offered = self.health.get("extensions")
        return frozenset(offered) if isinstance(offered, list) else frozenset()

    @property
    def default_timeout(self) -> float:
        """Seconds a cell or command may run unless configured otherwise."""
        return EMBEDDED_TIMEOUT if self.is_embedded_server else CLOUD_TIMEOUT

    @property
    def uses_embedded_server(self) -> bool:
        """True when no endpoint was configured, so the embedded local server was chosen
        (also while it is being started or looked for again)."""
        if self.settings is not None:
            return self.settings.source == EMBEDDED
        return chooses_embedded(self.endpoint)

    def _resolved(self, settings: ClientSettings) -> ClientSettings:
        if settings.source == EMBEDDED:
            self.embedded_url = settings.endpoint
        return settings

    def open(self) -> None:
        """Create or join the sandbox, read its health, create the context (blocking).

        A failure is kept in `failure` (for `%sbx status` and the banner) and raised.
        """
        run(self._opened())

    async def open_async(self) -> None:
        """Create or join the sandbox, read its health, create the context.

        A failure is kept in `failure` (for `%sbx status` and the banner) and raised.
        """
        await run_async(self._opened())

    def _opened(self) -> Flow[None]:
        if self.sandbox is None or not self.health:
            yield from self._connected()
        with self._failure_recorded():
            if not (self.created_sandbox and self.is_embedded_server):
                self._env_in_contexts = dict(self.env)  # a cloud or joined sandbox has its own
            self.context = (yield from self._joined_context()) or (
                yield from self._prepared_context()
            )
            self.owned_contexts.add(self.context.context_id)
        log.info("sandbox %s, context %s", self.sandbox_id, self.context_id)

    async def connect_async(self) -> None:
        """Resolve the server, create or join the sandbox and read its health: what the
        sandbox offers is known from here on, before any context exists."""
        await run_async(self._connected())

    def _connected(self) -> Flow[None]:
        with self._failure_recorded():
            if self.settings is None:
                # Resolving may start the embedded server, which blocks: off the event loop.
                resolve = ClientSettings.resolve
                arguments = (self.endpoint, self.token, None, self.fallback)
                self.settings = self._resolved((yield in_thread(resolve, *arguments)))
            if self.sandbox is None:
                endpoint, token = self.settings.endpoint, self.settings.token
                if self.sandbox_id:
                    self.sandbox = yield from self._rejoined(endpoint, token)
                if self.sandbox is None:
                    self.sandbox = yield from creating(
                        self.template, endpoint, token, env=self.env or None
                    )
                    self.created_sandbox = True
                    self._env_in_contexts = {}
                    self._unprepared = self.prepare is not None
                self.sandbox_id = self.sandbox.sandbox_id
            yield from self.sandbox.health_flow()

    def _prepared_context(self) -> Flow[ContextOperations]:
        """A new context; on a sandbox just created, `prepare` runs beside its start, in the
        working directory made first (a failure of `prepare` is its own to report)."""
        if not self._unprepared or self.prepare is None:
            return (yield from self._new_context())
        self._unprepared = False
        sandbox, prepare = self._open_sandbox(), self.prepare
        if self.cwd != HOME:
            yield send(sandbox.data_api, endpoints.mkdir(self.cwd, True, "0755"))
        context, prepared = yield together(
            self._new_context(), single(awaited(lambda: prepare(sandbox)))
        )
        if isinstance(context, BaseException):
            raise context
        if isinstance(prepared, BaseException):
            self.owned_contexts.add(context.context_id)  # close() still deletes it
            raise prepared
        return context

    def _rejoined(self, endpoint: str, token: str | None) -> Flow[CodeInterpreterSandbox | None]:
        """Join `sandbox_id`; a sandbox this session made that is gone is made anew (None)."""
        try:
            return (yield from joining(self.sandbox_id or "", endpoint, token))
        except SandboxNotFoundError:
            if not self.created_sandbox:
                raise
            log.info("sandbox %s is gone; creating a new one", self.sandbox_id)
            return None

    def forget_connection(self) -> None:
        """Drop the connection (the server went away) but remember which sandbox to rejoin."""
        if self.sandbox is not None:
            self.sandbox.close()
        self.sandbox = None
        self.context = None
        if self.uses_embedded_server:
            self.settings = None  # the embedded server may come back on another port

    async def renew_context_async(self) -> None:
        """Replace a context whose interpreter died with a fresh one in the same sandbox."""
        if self.context is not None and self.context.context_id is not None:
            lost = self.context.context_id
            with contextlib.suppress(SandboxError):
                await self.context.delete_async()
            self.owned_contexts.discard(lost)
        self.context = await run_async(self._new_context())
        self.owned_contexts.add(self.context.context_id)

    def _new_context(self) -> Flow[ContextOperations]:
        """A context in the session's directory, told the variables the server did not take."""
        context = yield from self._open_sandbox().context.create_flow(
            self.language, self.cwd, self.history_file
        )
        if self._env_in_contexts:
            yield from self._env_set(context, self._env_in_contexts)
        return context

    def set_env(self, variables: dict[str, str]) -> None:
        """Set variables in the current context's interpreter, and in every later one."""
        run(self._env_kept(variables))

    async def set_env_async(self, variables: dict[str, str]) -> None:
        """Set variables in the current context's interpreter, and in every later one."""
        await run_async(self._env_kept(variables))

    def _env_kept(self, variables: dict[str, str]) -> Flow[None]:
        if self.context is None:
            raise SandboxError("not connected to a sandbox")
        yield from self._env_set(self.context, variables)
        self.env.update(variables)
        self._env_in_contexts.update(variables)

    def _env_set(self, context: ContextOperations, variables: dict[str, str]) -> Flow[None]:
        code = env_code(self.language, variables)
        _raise_on_error((yield from context.execute_flow(code, options=QUIET)))

    def new_context(self, language: str, cwd: str) -> str:
        """Create another context in the sandbox (not the one in use), owned by this session."""
        created = ContextOperations(self._open_sandbox()).create(language=language, cwd=cwd)
        self.owned_contexts.add(str(created.context_id))
        return str(created.context_id)

    def delete_context(self, context_id: str) -> None:
        """Delete a context of the sandbox (whoever created it)."""
        ContextOperations(self._open_sandbox()).delete(context_id)
        self.owned_contexts.discard(context_id)

    def _open_sandbox(self) -> CodeInterpreterSandbox:
        if self.sandbox is None:
            raise SandboxError("not connected to a sandbox")
        return self.sandbox

    def _joined_context(self) -> Flow[ContextOperations | None]:
        context_id, self.resume_context_id = self.resume_context_id, None
        if context_id is None:
            return None
        try:
            return (yield from self._open_sandbox().context.get_flow(context_id))
        except SandboxError as error:
            log.info("context %s is gone (%s); creating a new one", context_id, error)
            return None

    async def restart_context_async(self) -> bool:
        """Give the context a fresh interpreter where the server can (True), keeping its id."""
        if not self.is_open or "restart" not in self.extensions:
            return False
        try:
            await self.context.restart_async()
        except SandboxError as error:
            log.warning("could not restart context: %s", error)
            return False
        return True

    def release(self) -> None:
        """Hand the sandbox and the context in use over to a successor: they are kept, while
        `close` still deletes the other contexts this session created."""
        self.owned_contexts.discard(self.context_id or "")
        self.context = None
        self.created_sandbox = False

    @contextlib.contextmanager
    def _failure_recorded(self) -> Iterator[None]:
        try:
            yield
        except Exception as error:
            self.failure = str(error) or type(error).__name__
            if self.sandbox is None and self.uses_embedded_server:
                self.settings = None  # resolve again next time: the server may have to restart
            raise
        self.failure = None

    def close(self, *, keep_sandbox: bool | None = None) -> None:
        """Delete the contexts this session created, and the sandbox too when it created it
        (blocking)."""
        run(self._closed(keep_sandbox))

    async def close_async(self, *, keep_sandbox: bool | None = None) -> None:
        """Delete the contexts this session created, and the sandbox too when it created it."""
        await run_async(self._closed(keep_sandbox))

    def _closed(self, keep_sandbox: bool | None) -> Flow[None]:
        keep = self.keep_sandbox if keep_sandbox is None else keep_sandbox
        if self.sandbox is None:
            return
        operations = ContextOperations(self.sandbox)
        for context_id in sorted(self.owned_contexts):
            try:
                yield from operations.delete_flow(context_id)
            except SandboxNotFoundError:
                pass
            except SandboxError as error:
                log.warning("could not delete context %s: %s", context_id, error)
        self.owned_contexts.clear()
        self.context = None
        if self.created_sandbox and not keep:
            with contextlib.suppress(SandboxError):
                yield from self.sandbox.delete_flow()
        yield close(self.sandbox.data_api)
        self.sandbox = None

    def describe(self) -> dict[str, Any]:
        """Where cells run, for banners and `%sbx status`."""
        if self.settings is not None:
            endpoint, where = self.settings.endpoint, self.settings.where
        else:
            endpoint = self.endpoint
            where = endpoint or "not chosen yet (argument, environment, else the embedded server)"
        return {
            "endpoint": endpoint,
            "where": where,
            "failure": self.failure,
            "sandbox_id": self.sandbox_id,
            "context_id": self.context_id,
            "isolation": self.isolation,
            "network": self.health.get("network"),
            "egress": self.health.get("egress"),
            "server": self.health.get("server", "AgentRun") if self.health else "(not known yet)",
            "created_sandbox": self.created_sandbox,
        }


def env_code(language: str, variables: dict[str, str]) -> str:
    """Code that sets `variables` in an interpreter of `language`, leaving no names behind."""
    if language == "javascript":
        return "".join(
            f"Deno.env.set({json.dumps(k)}, {json.dumps(v)});" for k, v in variables.items()
        )
    return f"__import__('os').environ.update({variables!r})"


def _raise_on_error(reply: Any) -> None:
    for entry in reply.get("results", []) if isinstance(reply, dict) else []:
        if entry.get("type") == "error":
            raise SandboxError(f"could not set the variables: {entry.get('value', '')}")
