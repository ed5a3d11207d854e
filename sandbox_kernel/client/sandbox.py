"""`CodeInterpreterSandbox`: a sandbox's lifecycle and the entry point to its operations."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from typing import Any

from . import endpoints
from .errors import SandboxAuthError, SandboxError, SandboxNotFoundError, SandboxTimeoutError
from .operations import ContextOperations, FileOperations, FileSystemOperations, ProcessOperations
from .settings import ClientSettings
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
        data_api = DataClient(ClientSettings.resolve(endpoint, token))
        try:
            call = endpoints.create_sandbox(template_name, idle_timeout, env, allow_egress)
            sandbox = cls._created(data_api.send(call), data_api)
        except BaseException:
            data_api.close()
            raise
        try:
            sandbox.wait_until_ready()
        except BaseException:
            with contextlib.suppress(SandboxError):
                sandbox.delete()
            sandbox.close()
            raise
        return sandbox

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
        settings = await asyncio.to_thread(ClientSettings.resolve, endpoint, token)
        data_api = DataClient(settings)
        try:
            call = endpoints.create_sandbox(template_name, idle_timeout, env, allow_egress)
            sandbox = cls._created(await data_api.send_async(call), data_api)
        except BaseException:
            await data_api.aclose()
            raise
        try:
            await sandbox.wait_until_ready_async()
        except BaseException:
            with contextlib.suppress(SandboxError):
                await sandbox.delete_async()
            await sandbox.aclose()
            raise
        return sandbox

    @classmethod
    def connect(
        cls, sandbox_id: str, endpoint: str | None = None, token: str | None = None
    ) -> CodeInterpreterSandbox:
        """Join an existing sandbox by id; SandboxNotFoundError when there is none."""
        data_api = DataClient(ClientSettings.resolve(endpoint, token), sandbox_id)
        try:
            return cls(data_api.send(endpoints.get_sandbox()), data_api)
        except BaseException:
            data_api.close()
            raise

    @classmethod
    async def connect_async(
        cls, sandbox_id: str, endpoint: str | None = None, token: str | None = None
    ) -> CodeInterpreterSandbox:
        """Join an existing sandbox by id; SandboxNotFoundError when there is none."""
        settings = await asyncio.to_thread(ClientSettings.resolve, endpoint, token)
        data_api = DataClient(settings, sandbox_id)
        try:
            return cls(await data_api.send_async(endpoints.get_sandbox()), data_api)
        except BaseException:
            await data_api.aclose()
            raise

    @classmethod
    def _created(cls, info: dict[str, Any], data_api: DataClient) -> CodeInterpreterSandbox:
        data_api.sandbox_id = info["sandboxId"]
        return cls(info, data_api, delete_on_exit=True)

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

    def __repr__(self) -> str:
        return (
            f"CodeInterpreterSandbox(sandbox_id={self.sandbox_id!r}, status={self.status!r}, "
            f"endpoint={self.endpoint!r})"
        )

    def check_health(self) -> Any:
        """The sandbox's health, `{"status": "ok", ...}` once it is ready."""
        return self._remember_health(self._data_api.send(endpoints.health()))

    async def check_health_async(self) -> Any:
        """The sandbox's health, `{"status": "ok", ...}` once it is ready."""
        return self._remember_health(await self._data_api.send_async(endpoints.health()))

    @property
    def extensions(self) -> frozenset[str]:
        """What the server offers beyond the cloud protocol (the cloud: nothing)."""
        if self._health is None:
            self.check_health()
        return self._offered()

    async def extensions_async(self) -> frozenset[str]:
        """What the server offers beyond the cloud protocol (the cloud: nothing)."""
        if self._health is None:
            await self.check_health_async()
        return self._offered()

    def _offered(self) -> frozenset[str]:
        offered = self._health.get("extensions") if isinstance(self._health, dict) else None
        return frozenset(offered) if isinstance(offered, list) else frozenset()

    def _remember_health(self, health: Any) -> Any:
        if isinstance(health, dict) and health.get("status") == "ok":
            self._health = health
        return health

    def wait_until_ready(self, timeout: float = READY_TIMEOUT) -> Any:
        """Poll health until it says ok; SandboxTimeoutError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                health = self.check_health()
            except SandboxAuthError:
                raise
            except SandboxError as error:
                health = error
            if _is_ready(health):
                return health
            if time.monotonic() >= deadline:
                raise self._not_ready(timeout, health)
            time.sleep(READY_POLL_INTERVAL)

    async def wait_until_ready_async(self, timeout: float = READY_TIMEOUT) -> Any:
        """Poll health until it says ok; SandboxTimeoutError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                health = await self.check_health_async()
            except SandboxAuthError:
                raise
            except SandboxError as error:
                health = error
            if _is_ready(health):
                return health
            if time.monotonic() >= deadline:
                raise self._not_ready(timeout, health)
            await asyncio.sleep(READY_POLL_INTERVAL)

    def stop(self) -> dict[str, Any]:
        """Stop the sandbox; returns the server's sandbox object."""
        return self._update(self._data_api.send(endpoints.stop_sandbox()))

    async def stop_async(self) -> dict[str, Any]:
        """Stop the sandbox; returns the server's sandbox object."""
        return self._update(await self._data_api.send_async(endpoints.stop_sandbox()))

    def delete(self) -> dict[str, Any]:
        """Delete the sandbox; returns the server's sandbox object."""
        return self._update(self._data_api.send(endpoints.delete_sandbox()), deleted=True)

    async def delete_async(self) -> dict[str, Any]:
        """Delete the sandbox; returns the server's sandbox object."""
        reply = await self._data_api.send_async(endpoints.delete_sandbox())
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
        try:
            if self._delete_on_exit and not self._deleted:
                with contextlib.suppress(SandboxNotFoundError):
                    self.delete()
        finally:
            self.close()

    async def __aenter__(self) -> CodeInterpreterSandbox:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        try:
            if self._delete_on_exit and not self._deleted:
                with contextlib.suppress(SandboxNotFoundError):
                    await self.delete_async()
        finally:
            await self.aclose()

    def _update(self, info: dict[str, Any], *, deleted: bool = False) -> dict[str, Any]:
        self.info.update(info)
        self._deleted = self._deleted or deleted
        return info

    def _not_ready(self, timeout: float, health: object) -> SandboxTimeoutError:
        return SandboxTimeoutError(
            f"sandbox {self.sandbox_id} at {self._data_api.settings.where} was not ready "
            f"after {timeout:g} s (last health: {health})"
        )


def _is_ready(health: object) -> bool:
    return isinstance(health, dict) and health.get("status") == "ok"
