"""The embedded local sandbox server: the AgentRun data-plane protocol over real kernels."""

from typing import Any

from .settings import EXTENSIONS, ServerSettings

__all__ = ["EXTENSIONS", "ServerSettings", "create_app"]


def __getattr__(name: str) -> Any:
    # The web app (FastAPI and pydantic, a third of a second) loads when first asked for.
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
