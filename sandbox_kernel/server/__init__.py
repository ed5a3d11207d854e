"""The embedded local sandbox server: the AgentRun data-plane protocol over real kernels."""

from .app import ServerSettings, create_app

__all__ = ["ServerSettings", "create_app"]
