"""What one embedded server serves and how: the settings `create_app` is given, and the
registry of its sandboxes. Light to import: the server starts its first spare sandbox
before it loads the web framework."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .confinement import IsolationSettings
from .constants import DEFAULT_UPLOAD_LIMIT, EXTENSIONS
from .sandboxes import SandboxRegistry
from .templates import TemplateStore


@dataclass
class ServerSettings:
    """What one server instance serves and how."""

    root: Path
    token: str
    max_upload_bytes: int = DEFAULT_UPLOAD_LIMIT
    extensions: list[str] = field(default_factory=lambda: list(EXTENSIONS))
    confinement: IsolationSettings = field(default_factory=IsolationSettings)
    spare_sandboxes: int = 0
    """Sandboxes kept ready, each with a Python context started (spares.py)."""
    max_sandboxes: int | None = None
    """Running sandboxes the server holds at once (None: no limit)."""
    max_contexts: int | None = None
    """Contexts one sandbox holds at once (None: no limit)."""
    templates: Path | None = None
    """The directory of the templates (`sandbox-kernel template`) sandboxes may name."""
    allowed_origins: list[str] = field(default_factory=list)
    """Web origins beyond loopback pages that may open the execution socket."""

    @property
    def isolation(self) -> str:
        """What `health` reports: "bwrap" or "none"."""
        return self.confinement.mode


def new_registry(settings: ServerSettings) -> SandboxRegistry:
    """The registry of the sandboxes under `settings.root`, spares not started yet."""
    return SandboxRegistry(
        settings.root,
        settings.confinement,
        settings.spare_sandboxes,
        max_sandboxes=settings.max_sandboxes,
        max_contexts=settings.max_contexts,
        templates=None if settings.templates is None else TemplateStore(settings.templates),
    )
