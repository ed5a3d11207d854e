"""Data-plane client for code-interpreter sandboxes: the seed `CodeInterpreterSandbox` API.

It speaks to the embedded local server and to AgentRun's cloud alike (see PROTOCOL.md).
Names load on first use, so the server can use the client's plain types (results, frames)
without importing httpx.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .auth import RamSignatureAuth
    from .contexts import ContextOperations
    from .endpoints import Call, CodeLanguage, ExecuteOptions, Progress
    from .errors import (
        SandboxAuthError,
        SandboxConnectionError,
        SandboxError,
        SandboxNotFoundError,
        SandboxRequestError,
        SandboxServerError,
        SandboxTimeoutError,
        SandboxUnsupportedError,
    )
    from .operations import (
        FileOperations,
        FileSystemOperations,
        ProcessOperations,
    )
    from .sandbox import CodeInterpreterSandbox
    from .settings import AccessKey, ClientSettings
    from .transport import DataClient

__all__ = [
    "AccessKey",
    "Call",
    "ClientSettings",
    "CodeInterpreterSandbox",
    "CodeLanguage",
    "ContextOperations",
    "DataClient",
    "ExecuteOptions",
    "FileOperations",
    "FileSystemOperations",
    "ProcessOperations",
    "Progress",
    "RamSignatureAuth",
    "SandboxAuthError",
    "SandboxConnectionError",
    "SandboxError",
    "SandboxNotFoundError",
    "SandboxRequestError",
    "SandboxServerError",
    "SandboxTimeoutError",
    "SandboxUnsupportedError",
]

_MODULES = {
    "AccessKey": "settings",
    "Call": "endpoints",
    "ClientSettings": "settings",
    "CodeInterpreterSandbox": "sandbox",
    "CodeLanguage": "endpoints",
    "ContextOperations": "contexts",
    "DataClient": "transport",
    "ExecuteOptions": "endpoints",
    "FileOperations": "operations",
    "FileSystemOperations": "operations",
    "ProcessOperations": "operations",
    "Progress": "endpoints",
    "RamSignatureAuth": "auth",
    "SandboxAuthError": "errors",
    "SandboxConnectionError": "errors",
    "SandboxError": "errors",
    "SandboxNotFoundError": "errors",
    "SandboxRequestError": "errors",
    "SandboxServerError": "errors",
    "SandboxTimeoutError": "errors",
    "SandboxUnsupportedError": "errors",
}


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
