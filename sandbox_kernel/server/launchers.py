"""How the processes of one sandbox are started, confined and found again: the launcher
for a sandbox (unisolated.py, bubblewrap.py), and what its creator chose for it.

Under bubblewrap, every process of one sandbox (context kernels, commands and whatever they
start) lives in one user namespace, one pid namespace and (when the server is root) one
network namespace. A small init process, the anchor, holds them open and reaps orphaned
background jobs; each kernel and each command then gets a bwrap of its own that joins them,
with private mount, ipc and uts namespaces and the sandbox's root directory as `/`
(confinement.py builds the argv). A bwrap per command rather than nsenter into a kernel's
namespaces: bwrap builds the same mounts, drops capabilities and sets no_new_privs for every
process, while the shared pid namespace keeps one pid space per sandbox (`ps`, `$!` and the
API agree) and lets background jobs outlive their shell. Without bubblewrap, processes run
as the server's user and are recognised by an environment variable they inherit.

The runtime directory of a sandbox (under the server's private one) holds what its kernels
need: `conn/` (connection files, written by the server, read-only inside) and `sockets/`
(the kernels' ipc sockets, the only thing the sandbox may write there).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from .anchors import IsolationUnavailable
from .bubblewrap import BubblewrapLauncher
from .confinement import IsolationSettings
from .templates import Template
from .unisolated import MARKER, PRIVATE_VARIABLES, Launcher, SandboxProcess

__all__ = [
    "MARKER",
    "PRIVATE_VARIABLES",
    "BubblewrapLauncher",
    "IsolationUnavailable",
    "Launcher",
    "SandboxChoices",
    "SandboxProcess",
    "launcher_for",
]


def launcher_for(
    settings: IsolationSettings,
    root: Path,
    sandbox_id: str,
    template: Template | None = None,
    choices: SandboxChoices | None = None,
) -> Launcher:
    """The launcher of one sandbox under these settings, with what its creator chose (and
    its template, isolated)."""
    if choices is not None:
        settings = replace(
            settings,
            egress=(*settings.egress, *choices.egress),
            environment=tuple(choices.environment.items()),
        )
    if settings.bwrap is None:
        launcher = Launcher(settings, root, sandbox_id)
        launcher.environment.update(settings.environment)
        return launcher
    return BubblewrapLauncher(settings, root, sandbox_id, template)


@dataclass(frozen=True)
class SandboxChoices:
    """What the creator of one sandbox chose for its processes (`POST /sandboxes`)."""

    environment: dict[str, str]
    egress: tuple[str, ...] = ()
