"""The ASGI app of the embedded server: the registry, the middleware, the error mapping and
the routers (routes/) put together for one ServerSettings."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from .. import __version__
from .constants import EXTENSIONS
from .gate import AccessGate
from .responses import RequestIdMiddleware, api_error_response, map_errors
from .routes import contexts, files, filesystem, health, processes, sandboxes, sockets
from .sandboxes import SandboxRegistry
from .settings import ServerSettings, new_registry

__all__ = ["EXTENSIONS", "ServerSettings", "create_app"]


def create_app(settings: ServerSettings, registry: SandboxRegistry | None = None) -> FastAPI:
    """Build the ASGI app serving the sandboxes under `settings.root` (held by `registry`,
    made here when not given)."""
    if registry is None:
        registry = new_registry(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        reaper = asyncio.create_task(registry.reap_idle())
        filler = asyncio.create_task(registry.spares.keep_filled())
        yield
        reaper.cancel()
        filler.cancel()
        await registry.shutdown()

    app = FastAPI(
        title="sandbox-kernel embedded sandbox server",
        version=__version__,
        lifespan=lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(
        AccessGate,
        token=settings.token,
        allowed_origins=settings.allowed_origins,
        refusal=api_error_response,
    )
    app.add_middleware(RequestIdMiddleware)
    app.state.registry = registry
    app.state.settings = settings
    map_errors(app)
    extensions = settings.extensions
    for router in (
        health.router,
        sandboxes.router,
        *contexts.routers(extensions),
        *sockets.routers(extensions),
        files.router,
        filesystem.router,
        processes.router,
    ):
        # The routes themselves, not `include_router`: newer FastAPI nests an included
        # router as one entry, and `app.routes` would no longer list every route.
        app.router.routes.extend(router.routes)
    return app
