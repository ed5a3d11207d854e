"""The embedded local sandbox server: the AgentRun data-plane protocol over real kernels."""

from .app import EXTENSIONS, ServerSettings, create_app

__all__ = ["EXTENSIONS", "ServerSettings", "create_app"]
