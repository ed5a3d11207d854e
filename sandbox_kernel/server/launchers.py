"""How the processes of one sandbox are started, confined and found again.

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

import asyncio
import contextlib
import fcntl
import itertools
import json
import logging
import os
import selectors
import shutil
import subprocess
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psutil

from . import network
from .cgroups import make_sandbox_group, remove_group
from .confinement import (
    FIRST_KEPT_FD,
    IsolationSettings,
    Namespaces,
    anchor_argv,
    chosen_environment_args,
    enter_argv,
    id_maps,
    limits_argv,
    mount_points,
    network_prefix,
)
from .egress import EgressProxy, Rule
from .environments import SANDBOX_PYTHON, setup_command
from .interpreters import KERNEL_APP, KERNEL_APP_FILE
from .paths import make_directories
from .templates import Template

log = logging.getLogger(__name__)

# Variables of the server's own environment that unisolated sandbox code must never see.
PRIVATE_VARIABLES = ("SANDBOX_KERNEL_TOKEN", "JPY_SESSION_NAME")
MARKER = "SANDBOX_KERNEL_SANDBOX_ID"
ANCHOR_START_SECONDS = 10.0
LAUNCH_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
# argv: the sandbox's python ($0), the server's python, its arguments.
OWN_PYTHON_FIRST = 'if [ -x "$0" ]; then shift; exec "$0" "$@"; fi; exec "$@"'


class IsolationUnavailable(RuntimeError):
    """Bubblewrap cannot confine processes on this host (or a sandbox failed to start)."""


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
        self.environment.update(HOME=str(root / "home" / "user"), **{MARKER: sandbox_id})

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
        """Where this sandbox's processes find `kernel_app.py`."""
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


class BubblewrapLauncher(Launcher):
    """Starts the processes of one sandbox inside bubblewrap (see the module docstring).

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
        self.anchor: subprocess.Popen | None = None
        self.lifeline: int | None = None  # write end of the anchor's pipe; closing it ends it
        self.anchor_pid = 0  # host pid of the anchor's pid 1
        self.pid_namespace = ""
        self.namespaces: Namespaces | None = None
        self.network: network.UserNetwork | None = None
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
        if not self.settings.egress or self.namespaces is None:
            return
        rules = tuple(Rule.parse(rule) for rule in self.settings.egress)
        self.proxy = EgressProxy(rules, self.sandbox_id)
        try:
            await self.proxy.start(self.namespaces.network)
        except OSError as error:
            await asyncio.to_thread(self._stop_anchor)
            raise IsolationUnavailable(f"the egress proxy cannot listen: {error}") from None

    def anchor_alive(self) -> bool:
        return self.anchor is not None and self.anchor.poll() is None

    def start_anchor(self, *, with_environment: bool = True) -> None:
        """Start (or restart) the anchor, and make the sandbox's Python environment unless
        told not to (the start-up probe needs none); fd numbers of its namespaces stay the
        same. A start that fails leaves nothing running."""
        self._make_host_resources()
        for relative in mount_points(self.settings):
            make_directories(self.root, relative)
        self._cut_lifeline()
        try:
            self._start_anchor()
            if with_environment:
                self._make_environment()
        except BaseException:
            self._stop_anchor()
            raise
        log.debug("sandbox %s: anchor pid %s in %s", self.sandbox_id, self.anchor_pid, self.root)

    def _start_anchor(self) -> None:
        info_reader, info_writer = _pipe()
        block_reader, block_writer = _pipe()
        ready_reader, ready_writer = _pipe()
        lifeline_reader, lifeline = _pipe()
        self.lifeline = lifeline
        procs = [group / "cgroup.procs" for group in self.cgroups]
        argv = anchor_argv(
            self.settings,
            info_fd=info_writer,
            block_fd=block_reader,
            lifeline_fd=lifeline_reader,
            ready_fd=ready_writer,
        )
        child_ends = (info_writer, block_reader, lifeline_reader, ready_writer)
        try:
            self.anchor = subprocess.Popen(
                [*limits_argv(self.settings, procs), *argv],
                pass_fds=child_ends,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                start_new_session=True,
                **self._credentials(),
            )
        finally:
            for descriptor in child_ends:
                os.close(descriptor)
        try:
            info = json.loads(self._read_until(info_reader, b"\n}\n"))
            self.anchor_pid = info["child-pid"]
            self.pid_namespace = f"pid:[{info['pid-namespace']}]"
            if self.settings.host_ids is not None:
                self._write_id_maps()
            user, pid, net = (self._open_namespace(kind) for kind in ("user", "pid", "net"))
            os.write(block_writer, b"1")
            self._read_until(ready_reader, b"r")
            inner = None
            if self.settings.host_ids is not None:
                inner = self._open_namespace("user")
                if os.fstat(inner).st_ino == os.fstat(user).st_ino:
                    raise IsolationUnavailable("the sandbox's inner user namespace is missing")
        finally:
            for descriptor in (info_reader, block_writer, ready_reader):
                os.close(descriptor)
        self._keep_namespaces(Namespaces(user, pid, net, inner))
        if self.settings.network == "user" and self.settings.network_tool is not None:
            try:
                self.network = network.start(self.settings.network_tool, self.anchor_pid, net, user)
            except network.NetworkUnavailable as error:
                raise IsolationUnavailable(str(error)) from None

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

    def _read_until(self, descriptor: int, end: bytes) -> bytes:
        """Read the anchor's pipe until `end`, failing with bwrap's own last words."""
        assert self.anchor is not None
        data = b""
        deadline = time.monotonic() + ANCHOR_START_SECONDS
        with selectors.DefaultSelector() as selector:
            selector.register(descriptor, selectors.EVENT_READ)
            while end not in data:
                remaining = deadline - time.monotonic()
                ready = selector.select(max(0.0, remaining)) if remaining > 0 else []
                chunk = os.read(descriptor, 4096) if ready else b""
                if not chunk:
                    raise IsolationUnavailable(self._anchor_failure())
                data += chunk
        return data

    def _anchor_failure(self) -> str:
        assert self.anchor is not None
        with contextlib.suppress(OSError):
            os.killpg(self.anchor.pid, 9)
        try:
            _, error = self.anchor.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            error = b""
        lines = (error or b"").decode("utf-8", "replace").strip().splitlines()
        return lines[-1] if lines else "the sandbox's init process did not start"

    def _write_id_maps(self) -> None:
        """Map sandbox uid 1000 onto the server's unprivileged host ids (a root server)."""
        assert self.settings.host_ids is not None
        uid_map, gid_map = id_maps(self.settings.host_ids)
        for name, content in (("uid_map", uid_map), ("gid_map", gid_map)):
            descriptor = os.open(f"/proc/{self.anchor_pid}/{name}", os.O_WRONLY | os.O_NOFOLLOW)
            try:
                os.write(descriptor, content.encode())
            finally:
                os.close(descriptor)

    def _open_namespace(self, kind: str) -> int:
        kept = _kept(os.open(f"/proc/{self.anchor_pid}/ns/{kind}", os.O_RDONLY | os.O_CLOEXEC))
        if kind == "pid" and os.readlink(f"/proc/{self.anchor_pid}/ns/pid") != self.pid_namespace:
            os.close(kept)
            raise IsolationUnavailable("the sandbox's init process went away while starting")
        return kept

    def _keep_namespaces(self, opened: Namespaces) -> None:
        """Keep the first fds for the sandbox's life: argv already built name them."""
        if self.namespaces is None:
            self.namespaces = opened
            return
        pairs = zip(_fds(opened), _fds(self.namespaces), strict=True)
        for new, kept in pairs:
            os.dup2(new, kept, inheritable=False)
            os.close(new)

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
        assert self.namespaces is not None and self.runtime is not None, "prepare() first"
        assert self.connections is not None and self.sockets is not None
        procs = [group / "cgroup.procs" for group in self.cgroups]
        chosen = self._chosen_environment()
        binds = [("ro", self.settings.kernel_app), ("ro", self.connections)]
        binds.append(("rw", self.sockets))
        entered = enter_argv(
            self.settings,
            root=self.root,
            binds=binds,
            namespaces=self.namespaces,
            cwd=cwd,
            command=command,
        )
        limits = limits_argv(
            self.settings,
            procs,
            limit_address_space=limit_address_space,
            chosen_environment=chosen,
        )
        return [*limits, *network_prefix(self.settings, self.namespaces), *entered]

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
        assert self.namespaces is not None, "prepare() first"
        return {
            "cwd": str(self.runtime),
            "env": {"PATH": LAUNCH_PATH},
            "pass_fds": _fds(self.namespaces),
            **self._credentials(),
        }

    def processes(self) -> list[SandboxProcess]:
        if not self.anchor_alive():
            return []
        members: dict[int, tuple[int, psutil.Process]] = {}
        for process in psutil.process_iter():
            try:
                if os.readlink(f"/proc/{process.pid}/ns/pid") != self.pid_namespace:
                    continue
                members[process.pid] = (_namespace_pid(process.pid), process)
            except (OSError, ValueError):
                continue
        found = []
        for host_pid, (pid, process) in members.items():
            if host_pid == self.anchor_pid:
                continue
            try:
                parent = process.ppid()
            except psutil.Error:
                continue
            ppid = members[parent][0] if parent in members else 0
            found.append(SandboxProcess(pid, ppid, process))
        return found

    def _cut_lifeline(self) -> None:
        if self.lifeline is not None:
            os.close(self.lifeline)
            self.lifeline = None

    def _stop_anchor(self) -> None:
        """End the anchor and its helpers; the kernel then kills every process left in the
        sandbox's pid namespace."""
        self._cut_lifeline()
        if self.proxy is not None:
            self.proxy.close()
            self.proxy = None
        if self.network is not None:
            self.network.stop()
            self.network = None
        if self.anchor is not None:
            with contextlib.suppress(OSError):
                os.killpg(self.anchor.pid, 9)
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                self.anchor.communicate(timeout=5)
            self.anchor = None

    def kill_all(self) -> None:
        super().kill_all()
        self._stop_anchor()

    def close(self) -> None:
        super().close()
        if self.namespaces is not None:
            for descriptor in _fds(self.namespaces):
                os.close(descriptor)
            self.namespaces = None


def _kept(descriptor: int) -> int:
    """`descriptor` moved to FIRST_KEPT_FD or above, clear of the launch prefix's fds."""
    kept = fcntl.fcntl(descriptor, fcntl.F_DUPFD_CLOEXEC, FIRST_KEPT_FD)
    os.close(descriptor)
    return kept


def _pipe() -> tuple[int, int]:
    reader, writer = os.pipe()
    return _kept(reader), _kept(writer)


def _fds(namespaces: Namespaces) -> tuple[int, ...]:
    kept = (namespaces.user, namespaces.pid, namespaces.network, namespaces.inner_user)
    return tuple(descriptor for descriptor in kept if descriptor is not None)


def kernel_bridge_source() -> str:
    """The bridge's code, run with `python -c`: the package may be invisible in a sandbox."""
    return _BRIDGE_SOURCE


_BRIDGE_SOURCE = Path(__file__).with_name("kernel_bridge.py").read_text()


def _namespace_pid(host_pid: int) -> int:
    """The pid of a process in its innermost pid namespace (the last field of NSpid)."""
    with open(f"/proc/{host_pid}/status") as status:
        for line in status:
            if line.startswith("NSpid:"):
                return int(line.split()[-1])
    raise ValueError(f"no NSpid for {host_pid}")


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
