"""The launcher of an isolated sandbox: every process inside bubblewrap, joining the
namespaces its anchor holds (anchors.py), with the argv confinement.py builds."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import psutil

from .anchors import (
    ANCHOR_START_SECONDS,
    Anchor,
    IsolationUnavailable,
    namespace_fds,
    namespace_pid,
)
from .confinement import (
    IsolationSettings,
    chosen_environment_args,
    enter_argv,
    limits_argv,
    mount_points,
    network_prefix,
)
from .egress import EgressProxy, Rule
from .environments import SANDBOX_PYTHON, setup_command
from .paths import make_directories
from .templates import Template
from .unisolated import Launcher, SandboxProcess

log = logging.getLogger(__name__)

LAUNCH_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
# argv: the sandbox's python ($0), the server's python, its arguments.
OWN_PYTHON_FIRST = 'if [ -x "$0" ]; then shift; exec "$0" "$@"; fi; exec "$@"'


class BubblewrapLauncher(Launcher):
    """Starts the processes of one sandbox inside bubblewrap (see launchers.py).

    Pids are those of the sandbox's own pid namespace, the numbers `os.getpid()` and `$!`
    give inside it; the anchor, pid 1, is not listed.
    """

    # SIGINT to bwrap would end the sandboxed kernel; an interrupt_request interrupts it.
    interrupt_mode = "message"

    def __init__(
        self,
        settings: IsolationSettings,
        root: Path,
        sandbox_id: str,
        template: Template | None = None,
    ) -> None:
        if template is not None:
            extra = (*settings.interpreter_directories, template.prefix)
            settings = replace(settings, interpreter_directories=extra)
        super().__init__(settings, root, sandbox_id)
        self.layers = () if template is None else (template.site_packages,)
        self.anchor = Anchor(self.settings)
        self.proxy: EgressProxy | None = None
        self._starting = asyncio.Lock()

    @property
    def connections(self) -> Path | None:
        return None if self.runtime is None else self.runtime / "conn"

    @property
    def sockets(self) -> Path | None:
        return None if self.runtime is None else self.runtime / "sockets"

    def _make_host_resources(self) -> None:
        super()._make_host_resources()
        assert self.connections is not None and self.sockets is not None
        host_ids = self.settings.host_ids
        for directory, mode in ((self.connections, 0o750), (self.sockets, 0o700)):
            directory.mkdir(mode=mode, exist_ok=True)
            if host_ids is not None:
                uid = host_ids[0] if directory == self.sockets else 0
                os.chown(directory, uid, host_ids[1], follow_symlinks=False)

    async def prepare(self) -> None:
        self._make_host_resources()
        async with self._starting:
            if not self.anchor_alive():
                await asyncio.to_thread(self.start_anchor)
                await self._start_proxy()

    async def _start_proxy(self) -> None:
        """The egress proxy on the sandbox's own loopback, when an allow-list is set (a root
        server's sandboxes, whose processes share one network namespace)."""
        namespaces = self.anchor.namespaces
        if not self.settings.egress or namespaces is None:
            return
        rules = tuple(Rule.parse(rule) for rule in self.settings.egress)
        self.proxy = EgressProxy(rules, self.sandbox_id)
        try:
            await self.proxy.start(namespaces.network)
        except OSError as error:
            await asyncio.to_thread(self._stop_anchor)
            raise IsolationUnavailable(f"the egress proxy cannot listen: {error}") from None

    def anchor_alive(self) -> bool:
        return self.anchor.alive()

    def start_anchor(self, *, with_environment: bool = True) -> None:
        """Start (or restart) the anchor, and make the sandbox's Python environment unless
        told not to (the start-up probe needs none); fd numbers of its namespaces stay the
        same. A start that fails leaves nothing running."""
        self._make_host_resources()
        for relative in mount_points(self.settings):
            make_directories(self.root, relative)
        self.anchor.cut_lifeline()
        try:
            procs = [group / "cgroup.procs" for group in self.cgroups]
            self.anchor.start(limits_argv(self.settings, procs), self._credentials())
            if with_environment:
                self._make_environment()
        except BaseException:
            self._stop_anchor()
            raise
        log.debug("sandbox %s: anchor pid %s in %s", self.sandbox_id, self.anchor.pid, self.root)

    def _make_environment(self) -> None:
        """Make the sandbox's own Python environment (environments.py), as its user."""
        argv = self.argv(setup_command(self.settings.python, self.layers), "/")
        finished = subprocess.run(
            argv, capture_output=True, timeout=ANCHOR_START_SECONDS, **self.popen_options(self.root)
        )
        if finished.returncode != 0:
            lines = finished.stderr.decode("utf-8", "replace").strip().splitlines()
            log.warning(
                "sandbox %s: no environment of its own (%s); pip installs will fail",
                self.sandbox_id,
                lines[-1] if lines else f"exit code {finished.returncode}",
            )

    def _credentials(self) -> dict[str, Any]:
        """Popen options that leave a root server's supplementary groups behind."""
        return {} if self.settings.host_ids is None else {"extra_groups": []}

    def kernel_command(self, command: Sequence[str], *, speaks_ipc: bool) -> list[str]:
        """A kernel that cannot use ipc runs behind the bridge (kernel_bridge.py), which
        listens on the ipc sockets and shares the kernel's network namespace."""
        command = super().kernel_command(command, speaks_ipc=speaks_ipc)
        if command[:1] == [self.settings.python]:
            # The sandbox's own environment, or the server's where sandbox code removed it.
            command = ["/bin/sh", "-c", OWN_PYTHON_FIRST, SANDBOX_PYTHON, *command]
        if speaks_ipc:
            return command
        bridge = [self.settings.python, "-I", "-S", "-c", kernel_bridge_source()]
        return [*bridge, "{connection_file}", *command]

    def kernel_app_path(self) -> str:
        """The server's read-only copy: the package itself may live where the sandbox
        cannot see (an editable install)."""
        return str(self.settings.kernel_app)

    def seen_path(self, sandbox_path: str, host_path: Path) -> str:
        return sandbox_path

    def kernel_options(self, *, speaks_ipc: bool = True) -> dict[str, Any]:
        # Always ipc: the server cannot reach a port in the sandbox's network namespace.
        return super().kernel_options()

    def share_connection_file(self, path: str) -> None:
        if self.settings.host_ids is None:
            return
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            os.fchown(descriptor, 0, self.settings.host_ids[1])
            os.fchmod(descriptor, 0o640)
        finally:
            os.close(descriptor)

    def argv(
        self, command: Sequence[str], cwd: str, *, limit_address_space: bool = True
    ) -> list[str]:
        namespaces = self.anchor.namespaces
        assert namespaces is not None and self.runtime is not None, "prepare() first"
        assert self.connections is not None and self.sockets is not None
        procs = [group / "cgroup.procs" for group in self.cgroups]
        chosen = self._chosen_environment()
        binds = [("ro", path) for path in self.settings.kernel_app_files]
        binds.append(("ro", self.connections))
        binds.append(("rw", self.sockets))
        entered = enter_argv(
            self.settings,
            root=self.root,
            binds=binds,
            namespaces=namespaces,
            cwd=cwd,
            command=command,
        )
        limits = limits_argv(
            self.settings,
            procs,
            limit_address_space=limit_address_space,
            chosen_environment=chosen,
        )
        return [*limits, *network_prefix(self.settings, namespaces), *entered]

    def _chosen_environment(self) -> Path | None:
        """The file of the creator's variables (server-private), written once."""
        if not self.settings.environment or self.runtime is None:
            return None
        path = self.runtime / "environment.args"
        if not path.exists():
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(chosen_environment_args(self.settings))
        return path

    def popen_options(self, host_cwd: Path) -> dict[str, Any]:
        namespaces = self.anchor.namespaces
        assert namespaces is not None, "prepare() first"
        return {
            "cwd": str(self.runtime),
            "env": {"PATH": LAUNCH_PATH},
            "pass_fds": namespace_fds(namespaces),
            **self._credentials(),
        }

    def processes(self) -> list[SandboxProcess]:
        if not self.anchor_alive():
            return []
        members: dict[int, tuple[int, psutil.Process]] = {}
        for process in psutil.process_iter():
            try:
                if os.readlink(f"/proc/{process.pid}/ns/pid") != self.anchor.pid_namespace:
                    continue
                members[process.pid] = (namespace_pid(process.pid), process)
            except (OSError, ValueError):
                continue
        found = []
        for host_pid, (pid, process) in members.items():
            if host_pid == self.anchor.pid:
                continue
            try:
                parent = process.ppid()
            except psutil.Error:
                continue
            ppid = members[parent][0] if parent in members else 0
            found.append(SandboxProcess(pid, ppid, process))
        return found

    def _stop_anchor(self) -> None:
        """End the anchor and its helpers; the kernel then kills every process left in the
        sandbox's pid namespace."""
        self.anchor.cut_lifeline()
        if self.proxy is not None:
            self.proxy.close()
            self.proxy = None
        self.anchor.stop()

    def kill_all(self) -> None:
        super().kill_all()
        self._stop_anchor()

    def close(self) -> None:
        super().close()
        self.anchor.close()


def kernel_bridge_source() -> str:
    """The bridge's code, run with `python -c`: the package may be invisible in a sandbox."""
    return _BRIDGE_SOURCE


_BRIDGE_SOURCE = Path(__file__).with_name("kernel_bridge.py").read_text()
