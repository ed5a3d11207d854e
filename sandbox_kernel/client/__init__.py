"""Data-plane client for code-interpreter sandboxes: the seed `CodeInterpreterSandbox` API.

It speaks to the embedded local server and to AgentRun's cloud alike (see PROTOCOL.md).
"""

from .auth import RamSignatureAuth
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
from .operations import ContextOperations, FileOperations, FileSystemOperations, ProcessOperations
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
