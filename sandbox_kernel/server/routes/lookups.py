"""What routes are given rather than look up: the settings, the registry, the sandbox the
path names.

The sandbox is handed over as a NamedSandbox that a route asks for it, not as the sandbox
itself: FastAPI runs dependencies before it validates the body, so a lookup there would
answer a bad body for an unknown sandbox with a 404 where the route answers a 400.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from ..contexts import Context
from ..sandboxes import Sandbox, SandboxRegistry
from ..settings import ServerSettings


async def server_settings(connection: HTTPConnection) -> ServerSettings:
    return connection.app.state.settings


async def sandbox_registry(connection: HTTPConnection) -> SandboxRegistry:
    return connection.app.state.registry


Settings = Annotated[ServerSettings, Depends(server_settings)]
Registry = Annotated[SandboxRegistry, Depends(sandbox_registry)]


@dataclass(frozen=True)
class SandboxLookup:
    """The sandbox a request names, found when the route asks for it."""

    registry: SandboxRegistry
    sandbox_id: str

    def get(self) -> Sandbox:
        """The sandbox, stopped or not; asking counts as a use (idle timeout)."""
        sandbox = self.registry.get(self.sandbox_id)
        sandbox.touch()
        return sandbox

    def running(self) -> Sandbox:
        """The sandbox, refused unless it is running."""
        sandbox = self.get()
        sandbox.require_running()
        return sandbox

    def running_context(self, context_id: str) -> Context:
        """The context `context_id` of the sandbox, which must be running."""
        return self.running().contexts.get(context_id)


async def sandbox_lookup(sandbox_id: str, registry: Registry) -> SandboxLookup:
    return SandboxLookup(registry, sandbox_id)


NamedSandbox = Annotated[SandboxLookup, Depends(sandbox_lookup)]
"""The sandbox the path's `sandbox_id` names, to look up with `.get()` or `.running()`."""
