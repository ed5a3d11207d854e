"""`CodeInterpreterSandbox`: a sandbox's lifecycle and the entry point to its operations."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from typing import Any

from . import endpoints
from .contexts import ContextOperations
from .errors import SandboxAuthError, SandboxError, SandboxNotFoundError, SandboxTimeoutError
from .flows import Flow, close, in_thread, run, run_async, send, sleep
from .operations import FileOperations, FileSystemOperations, ProcessOperations
from .settings import ClientSettings, Fallback
from .transport import DataClient

READY_TIMEOUT = 60.0
"""Seconds `create` waits for a new sandbox to report itself healthy."""
READY_POLL_INTERVAL = 0.5


class CodeInterpreterSandbox:
    """A code-interpreter sandbox, made by `create` or `connect` (sync) or their `_async` forms.

    `with` / `async with` closes the HTTP connections on exit and, for a sandbox this object
    created, deletes the sandbox too; a sandbox joined with `connect` is left running.
    """

    def __init__(
        self, info: Mapping[str, Any], data_api: DataClient, *, delete_on_exit: bool = False
    ) -> None:
        self.info: dict[str, Any] = dict(info)
        self._data_api = data_api
        self._delete_on_exit = delete_on_exit
        self._deleted = False
        self._health: dict[str, Any] | None = None
        self.file = FileOperations(self)
        self.file_system = FileSystemOperations(self)
        self.process = ProcessOperations(self)
        self.context = ContextOperations(self)

    @classmethod
    def create(
        cls,
        template_name: str = "default",
        endpoint: str | None = None,
        token: str | None = None,
        idle_timeout: int = 600,
        *,
        env: dict[str, str] | None = None,
        allow_egress: list[str] | None = None,
    ) -> CodeInterpreterSandbox:
        """Create a sandbox from a template and wait until it is ready. The embedded server
        also takes `env`, variables for every process of the sandbox, and `allow_egress`,
        destinations (HOST[:PORT]) its egress proxy may reach."""
        return run(creating(template_name, endpoint, token, idle_timeout, env, allow_egress))

    @classmethod
    async def create_async(
        cls,
        template_name: str = "default",
        endpoint: str | None = None,
        token: str | None = None,
        idle_timeout: int = 600,
        *,
        env: dict[str, str] | None = None,
        allow_egress: list[str] | None = None,
    ) -> CodeInterpreterSandbox:
        """Create a sandbox from a template and wait until it is ready. The embedded server
        also takes `env`, variables for every process of the sandbox, and `allow_egress`,
        destinations (HOST[:PORT]) its egress proxy may reach."""
        flow = creating(template_name, endpoint, token, idle_timeout, env, allow_egress)
        return await run_async(flow)

    @classmethod
    def connect(
        cls, sandbox_id: str, endpoint: str | None = None, token: str | None = None
    ) -> CodeInterpreterSandbox:
        """Join an existing sandbox by id; SandboxNotFoundError when there is none."""
        return run(joining(sandbox_id, endpoint, token))

    @classmethod
    async def connect_async(
        cls, sandbox_id: str, endpoint: str | None = None, token: str | None = None
    ) -> CodeInterpreterSandbox:
        """Join an existing sandbox by id; SandboxNotFoundError when there is none."""
        return await run_async(joining(sandbox_id, endpoint, token))

    @property
    def data_api(self) -> DataClient:
        """The data client that sends this sandbox's requests."""
        return self._data_api

    @property
    def sandbox_id(self) -> str:
        """The sandbox's id."""
        return self._data_api.sandbox_id or self.info["sandboxId"]

    @property
    def template_name(self) -> str | None:
        """The template the sandbox was made from."""
        return self.info.get("templateName")

    @property
    def status(self) -> str | None:
        """The status last reported by the server (CREATING, READY, TERMINATED)."""
        return self.info.get("status")

    @property
    def endpoint(self) -> str:
        """The server's base URL."""
        return self._data_api.settings.endpoint

    @property
    def health(self) -> dict[str, Any]:
        """The health last read (`{}` before the first): the one place it is remembered."""
        return self._health or {}

    def __repr__(self) -> str:
        return (
            f"CodeInterpreterSandbox(sandbox_id={self.sandbox_id!r}, status={self.status!r}, "
            f"endpoint={self.endpoint!r})"
        )

    def check_health(self) -> Any:
        """The sandbox's health, `{"status": "ok", ...}` once it is ready."""
        return run(self.health_flow())

    async def check_health_async(self) -> Any:
        """The sandbox's health, `{"status": "ok", ...}` once it is ready."""
        return await run_async(self.health_flow())

    def health_flow(self) -> Flow[Any]:
        """Ask for the sandbox's health and remember it."""
        health = yield send(self._data_api, endpoints.health())
        if isinstance(health, dict):
            self._health = health
        return health

    @property
    def extensions(self) -> frozenset[str]:
        """What the server offers beyond the cloud protocol (the cloud: nothing)."""
        return run(self.offered())

    async def extensions_async(self) -> frozenset[str]:
        """What the server offers beyond the cloud protocol (the cloud: nothing)."""
        return await run_async(self.offered())

    def offered(self) -> Flow[frozenset[str]]:
        """The server's extensions, asking for its health only until it has said ok once."""
        if not _is_ready(self._health):
            yield from self.health_flow()
        offered = self.health.get("extensions") if _is_ready(self._health) else None
        return frozenset(offered) if isinstance(offered, list) else frozenset()

    def wait_until_ready(self, timeout: float = READY_TIMEOUT) -> Any:
        """Poll health until it says ok; SandboxTimeoutError after `timeout` seconds."""
        return run(self._ready(timeout))

    async def wait_until_ready_async(self, timeout: float = READY_TIMEOUT) -> Any:
        """Poll health until it says ok; SandboxTimeoutError after `timeout` seconds."""
        return await run_async(self._ready(timeout))

    def _ready(self, timeout: float) -> Flow[Any]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                health = yield from self.health_flow()
            except SandboxAuthError:
                raise
            except SandboxError as error:
                health = error
            if _is_ready(health):
                return health
            if time.monotonic() >= deadline:
                raise self._not_ready(timeout, health)
            yield sleep(READY_POLL_INTERVAL)

    def stop(self) -> dict[str, Any]:
        """Stop the sandbox; returns the server's sandbox object."""
        return run(self._stopped())

    async def stop_async(self) -> dict[str, Any]:
        """Stop the sandbox; returns the server's sandbox object."""
        return await run_async(self._stopped())

    def _stopped(self) -> Flow[dict[str, Any]]:
        return self._update((yield send(self._data_api, endpoints.stop_sandbox())))

    def delete(self) -> dict[str, Any]:
        """Delete the sandbox; returns the server's sandbox object."""
        return run(self.delete_flow())

    async def delete_async(self) -> dict[str, Any]:
        """Delete the sandbox; returns the server's sandbox object."""
        return await run_async(self.delete_flow())

    def delete_flow(self) -> Flow[dict[str, Any]]:
        reply = yield send(self._data_api, endpoints.delete_sandbox())
        return self._update(reply, deleted=True)

    def close(self) -> None:
        """Close the sync HTTP connections (the sandbox keeps running)."""
        self._data_api.close()

    async def aclose(self) -> None:
        """Close all HTTP connections (the sandbox keeps running)."""
        await self._data_api.aclose()

    def __enter__(self) -> CodeInterpreterSandbox:
        return self

    def __exit__(self, *exc_info: object) -> None:
        run(self._exited())

    async def __aenter__(self) -> CodeInterpreterSandbox:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await run_async(self._exited())

    def _exited(self) -> Flow[None]:
        try:
            if self._delete_on_exit and not self._deleted:
                with contextlib.suppress(SandboxNotFoundError):
                    yield from self.delete_flow()
        finally:
            yield close(self._data_api)

    def _update(self, info: dict[str, Any], *, deleted: bool = False) -> dict[str, Any]:
        self.info.update(info)
        self._deleted = self._deleted or deleted
        return info

    def _not_ready(self, timeout: float, health: object) -> SandboxTimeoutError:
        return SandboxTimeoutError(
            f"sandbox {self.sandbox_id} at {self._data_api.settings.where} was not ready "
            f"after {timeout:g} s (last health: {health})"
        )


def creating(
    template_name: str = "default",
    endpoint: str | None = None,
    token: str | None = None,
    idle_timeout: int = 600,
    env: dict[str, str] | None = None,
    allow_egress: list[str] | None = None,
    *,
    fallback: Fallback | None = None,
) -> Flow[CodeInterpreterSandbox]:
    """Create a sandbox and wait until it is ready; a sandbox that never gets ready is
    deleted again. Resolving the server may start one (`fallback`): off the event loop."""
    data_api = yield from _data_client(endpoint, token, fallback)
    try:
        call = endpoints.create_sandbox(template_name, idle_timeout, env, allow_egress)
        info = yield send(data_api, call)
    except BaseException:
        yield close(data_api)
        raise
    data_api.sandbox_id = info["sandboxId"]
    sandbox = CodeInterpreterSandbox(info, data_api, delete_on_exit=True)
    try:
        yield from sandbox._ready(READY_TIMEOUT)
    except BaseException:
        with contextlib.suppress(SandboxError):
            yield from sandbox.delete_flow()
        yield close(data_api)
        raise
    return sandbox


def joining(
    sandbox_id: str,
    endpoint: str | None = None,
    token: str | None = None,
    *,
    fallback: Fallback | None = None,
) -> Flow[CodeInterpreterSandbox]:
    """Join an existing sandbox by id; SandboxNotFoundError when there is none."""
    data_api = yield from _data_client(endpoint, token, fallback, sandbox_id)
    try:
        return CodeInterpreterSandbox((yield send(data_api, endpoints.get_sandbox())), data_api)
    except BaseException:
        yield close(data_api)
        raise


def _data_client(
    endpoint: str | None,
    token: str | None,
    fallback: Fallback | None,
    sandbox_id: str | None = None,
) -> Flow[DataClient]:
    settings = yield in_thread(ClientSettings.resolve, endpoint, token, None, fallback)
    return DataClient(settings, sandbox_id)


def _is_ready(health: object) -> bool:
    return isinstance(health, dict) and health.get("status") == "ok"
