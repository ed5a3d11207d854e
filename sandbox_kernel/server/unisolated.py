"""The launcher of an unisolated sandbox, and what every launcher offers (`Launcher`).

Without bubblewrap, a sandbox's processes run as the server's user with the sandbox's
directory as HOME, and are recognised by an environment variable they inherit.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from .cgroups import make_sandbox_group, remove_group
from .confinement import IsolationSettings, limits_argv
from .constants import HOME
from .interpreters import KERNEL_APP, KERNEL_APP_FILE

# Variables of the server's own environment that unisolated sandbox code must never see.
PRIVATE_VARIABLES = ("SANDBOX_KERNEL_TOKEN", "JPY_SESSION_NAME")
MARKER = "SANDBOX_KERNEL_SANDBOX_ID"

_slots = itertools.count(1)


@dataclass(frozen=True)
class SandboxProcess:
    """A process of a sandbox, with pid and ppid as the API reports them."""

    pid: int
    ppid: int
    process: psutil.Process


class Launcher:
    """Starts the processes of one unisolated sandbox and finds them again.

    They run as the server's user with the sandbox's directory as HOME; each carries the
    environment variable MARKER, which its children inherit, so the table finds a
    background job even after its shell exited and it was reparented. Pids are host pids.
    """

    interrupt_mode = "signal"

    def __init__(self, settings: IsolationSettings, root: Path, sandbox_id: str) -> None:
        self.settings = settings
        self.root = root
        self.sandbox_id = sandbox_id
        self.slot = next(_slots)
        self.runtime = None if settings.runtime is None else settings.runtime / str(self.slot)
        self.cgroups: list[Path] = []
        self.environment = {
            key: value for key, value in os.environ.items() if key not in PRIVATE_VARIABLES
        }
        self.environment.update(HOME=str(root / HOME.lstrip("/")), **{MARKER: sandbox_id})

    async def prepare(self) -> None:
        """Make what every launch needs (cgroups; under bwrap the namespaces)."""
        self._make_host_resources()

    @property
    def connections(self) -> Path | None:
        """Where connection files go."""
        return self.runtime

    @property
    def sockets(self) -> Path | None:
        """Where kernels make their ipc sockets."""
        return self.runtime

    def _make_host_resources(self) -> None:
        if self.runtime is not None:
            self.runtime.mkdir(mode=0o700, exist_ok=True)
        if self.cgroups or not self.settings.cgroup_limits:
            return
        for limit in self.settings.cgroup_limits:
            group = make_sandbox_group(limit, str(self.slot))
            if group not in self.cgroups:
                self.cgroups.append(group)

    def argv(
        self, command: Sequence[str], cwd: str, *, limit_address_space: bool = True
    ) -> list[str]:
        """The argv that runs `command` in the sandbox, in the sandbox directory `cwd`;
        `limit_address_space=False` spares it a per-process memory limit (RLIMIT_AS)."""
        procs = [group / "cgroup.procs" for group in self.cgroups]
        limits = limits_argv(self.settings, procs, limit_address_space=limit_address_space)
        return [*limits, *command]

    def popen_options(self, host_cwd: Path) -> dict[str, Any]:
        """Working directory, environment and fds for starting `argv(...)`."""
        return {"cwd": str(host_cwd), "env": dict(self.environment)}

    def seen_path(self, sandbox_path: str, host_path: Path) -> str:
        """How the sandbox's processes name the directory `sandbox_path` (at `host_path` on
        the host): unisolated, they see the host's tree."""
        return str(host_path)

    def kernel_command(self, command: Sequence[str], *, speaks_ipc: bool) -> list[str]:
        """The command that starts a context kernel, before `argv` confines it."""
        return [self.kernel_app_path() if part == KERNEL_APP else part for part in command]

    def kernel_app_path(self) -> str:
        """Where this sandbox's processes find `context_kernel.py`."""
        return str(KERNEL_APP_FILE)

    def kernel_options(self, *, speaks_ipc: bool = True) -> dict[str, Any]:
        """Connection settings of a context kernel's manager: ipc sockets in the private
        runtime directory (which an isolated sandbox sees at the same path), so no port is
        open to other users or other sandboxes. A kernel that cannot use ipc listens on
        loopback TCP like any other Jupyter kernel."""
        if self.connections is None or self.sockets is None or not speaks_ipc:
            return {}
        name = f"k-{uuid.uuid4().hex[:12]}"
        return {
            "transport": "ipc",
            "connection_file": str(self.connections / f"{name}.json"),
            "ip": str(self.sockets / f"{name}-ipc"),
        }

    def share_connection_file(self, path: str) -> None:
        """Let the sandbox's kernel read a connection file the server wrote."""

    def processes(self) -> list[SandboxProcess]:
        own = os.getpid()
        found = []
        for process in psutil.process_iter():
            if process.pid == own:
                continue
            try:
                if process.environ().get(MARKER) == self.sandbox_id:
                    found.append(SandboxProcess(process.pid, process.ppid(), process))
            except (psutil.Error, OSError):
                continue
        return found

    def kill_all(self) -> None:
        """Kill every process of the sandbox at once."""
        for entry in self.processes():
            with contextlib.suppress(psutil.Error):
                entry.process.kill()

    def close(self) -> None:
        """Kill everything and give back what the sandbox held on the host."""
        self.kill_all()
        for group in self.cgroups:
            remove_group(group)
        self.cgroups = []
        if self.runtime is not None:
            shutil.rmtree(self.runtime, ignore_errors=True)
