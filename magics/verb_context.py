"""What a verb is given: the session, the settings it reads, the user's namespace and how a
transfer shows its progress; not the magics class, so no verb module imports `sbx.py`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sandbox_kernel.client import CodeInterpreterSandbox
from sandbox_kernel.client.session import SandboxSession

from .connection import Connection
from .local_paths import LocalArea
from .progress import TransferProgress

WorkspaceCopy = Callable[[], "dict[str, tuple[int, float]] | None"]
"""The files the kernel copied into the sandbox (relative path -> size, mtime)."""
WorkspaceNote = Callable[[], "str | None"]
"""One line on the notebook's folder in the sandbox, for `%sbx status`."""


@dataclass(frozen=True)
class Settings:
    """The `SbxMagics` settings a verb reads, as they are when the verb runs."""

    displaylimit: int = 50
    """Rows of a returned table that are shown (0: all)."""
    timeout: float | None = None
    """Seconds a `run` cell or `sh` command may take; None: the session's default."""
    progress: str = "none"
    """How transfers show progress: `widget`, `text` or `none`."""
    progress_min_bytes: int = 0
    """Transfers of at least this many bytes show their progress."""


@dataclass(frozen=True)
class VerbContext:
    """One verb's view of the magics: made by `%sbx` for each verb it runs."""

    connection: Connection
    settings: Settings
    local_area: LocalArea
    """Where the local side of a transfer may be (see `local_paths`)."""
    namespace: dict[str, Any] = field(default_factory=dict)
    """The user's namespace (`push`, `pull`, `sh --out`)."""
    workspace_copy: WorkspaceCopy | None = None
    workspace_note: WorkspaceNote | None = None

    @property
    def session(self) -> SandboxSession | None:
        """The session, or None before the first one connects."""
        return self.connection.session

    def connected(self) -> SandboxSession:
        """The open session (connecting first outside the sandbox kernel)."""
        return self.connection.connected()

    @property
    def sandbox(self) -> CodeInterpreterSandbox:
        """The connected sandbox (connecting first when needed)."""
        return self.connection.sandbox

    @property
    def displaylimit(self) -> int:
        return self.settings.displaylimit

    def remote_timeout(self) -> float:
        """Seconds a `run` cell or `sh` command may take."""
        timeout = self.settings.timeout
        return timeout if timeout is not None else self.connected().default_timeout

    def transfer(self, description: str, total: int | None) -> TransferProgress:
        """Progress display for a transfer of `total` bytes (None: not known yet)."""
        return TransferProgress(
            description,
            total,
            style=self.settings.progress,
            min_bytes=self.settings.progress_min_bytes,
        )
