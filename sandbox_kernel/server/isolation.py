"""How the processes of a sandbox are started, confined, limited and found again.

Under bubblewrap, every process of one sandbox (context kernels, commands and whatever they
start) lives in one user namespace and one pid namespace. A small init process, the anchor,
holds both open and reaps orphaned background jobs; each kernel and each command then gets
a bwrap of its own that joins them, with private mount, ipc, uts and (by default) network
namespaces and the sandbox's root directory as `/`. A bwrap per command rather than
nsenter into a kernel's namespaces: bwrap builds the same mounts, drops capabilities and
sets no_new_privs for every process, while the shared pid namespace keeps one pid space
per sandbox (`ps`, `$!` and the API agree) and lets background jobs outlive their shell.
Without bubblewrap, processes run as the server's user and are recognised by an
environment variable they inherit.

Limits: memory is RLIMIT_AS per process (prlimit), so an allocation past it raises
MemoryError instead of calling the OOM killer; processes and threads are counted by a pids
cgroup per sandbox when the server can make one (root with cgroup v1, or a delegated v2
subtree), else by RLIMIT_NPROC, which counts per user namespace but does not bind a sandbox
whose user is root on the host.

The argv builders are pure functions of an `IsolationSettings`; `configure` probes the host
once at start, and a `Launcher` per sandbox keeps the little state there is.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import json
import logging
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psutil

from .interpreters import KERNEL_APP, KERNEL_APP_FILE, deno_binary
from .paths import HOME, make_directories

log = logging.getLogger(__name__)

SANDBOX_UID = SANDBOX_GID = 1000
HOSTNAME = "sandbox"
SYSTEM_DIRECTORIES = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# Host /etc entries a Python kernel needs: TLS roots, time zone, the loader's cache, name
# resolution, the alternatives behind /usr/bin names. Never the whole of /etc, which holds
# secrets such as /etc/shadow and /etc/ssl/private.
HOST_ETC_ENTRIES = (
    "alternatives",
    "ca-certificates",
    "fonts",
    "gai.conf",
    "host.conf",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    "mime.types",
    "protocols",
    "resolv.conf",
    "services",
    "ssl/certs",
    "ssl/openssl.cnf",
    "timezone",
)
# Files written once per server and bound into every sandbox's /etc.
GENERATED_ETC_FILES = {
    "passwd": (
        "root:x:0:0:root:/root:/usr/sbin/nologin\n"
        f"user:x:{SANDBOX_UID}:{SANDBOX_GID}:user:{HOME}:/bin/sh\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
    ),
    "group": f"root:x:0:\nuser:x:{SANDBOX_GID}:\nnogroup:x:65534:\n",
    "hostname": f"{HOSTNAME}\n",
    "hosts": f"127.0.0.1\tlocalhost {HOSTNAME}\n::1\tlocalhost ip6-localhost ip6-loopback\n",
    "nsswitch.conf": "passwd: files\ngroup: files\nhosts: files dns\n",
}
# Directories every isolated sandbox root holds besides the bound ones: bwrap mounts there.
SANDBOX_DIRECTORIES = ("etc", "proc", "dev", "run", "tmp", HOME.lstrip("/"))
# pid 1 of a sandbox: ignoring SIGCHLD makes the kernel reap the orphans it adopts, and
# with no signal handlers left, nothing inside the sandbox can kill it. It lives until the
# pipe from the server (fd argv[1]) closes, so the sandbox ends with the server however
# the server ends, even when that races bwrap's own --die-with-parent setup.
ANCHOR_SCRIPT = (
    "import os, signal, sys\n"
    "signal.signal(signal.SIGINT, signal.SIG_DFL)\n"
    "signal.signal(signal.SIGCHLD, signal.SIG_IGN)\n"
    "while os.read(int(sys.argv[1]), 1):\n"
    "    pass\n"
)
# Joins the cgroups named before `--`, then runs the rest: a process started this way is
# limited from its first instruction, so it cannot fork past the limit before being moved.
JOIN_CGROUPS = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"'
# Variables of the server's own environment that unisolated sandbox code must never see.
PRIVATE_VARIABLES = ("SANDBOX_KERNEL_TOKEN", "JPY_SESSION_NAME")
MARKER = "SANDBOX_KERNEL_SANDBOX_ID"
# A unix socket path holds at most 107 bytes: the runtime directory leaves room for
# "/<slot>/k-<12 hex>-ipc-<n>".
MAX_RUNTIME_PATH = 72
ANCHOR_START_SECONDS = 10.0
PROBE_SECONDS = 30.0


class IsolationUnavailable(RuntimeError):
    """Bubblewrap was asked for but cannot confine processes on this host."""


@dataclass(frozen=True)
class CgroupLimit:
    """One limit file of a cgroup controller, set in a child cgroup per sandbox."""

    parent: Path
    filename: str
    value: int


@dataclass(frozen=True)
class IsolationSettings:
    """How a server confines its sandboxes; `bwrap` is None when they run unisolated."""

    bwrap: str | None = None
    network: bool = False
    memory_bytes: int | None = None
    max_processes: int | None = None
    process_rlimit: bool = False
    cgroup_limits: tuple[CgroupLimit, ...] = ()
    prlimit: str | None = None
    runtime: Path | None = None
    python: str = sys.executable
    python_prefixes: tuple[str, ...] = ()
    system_directories: tuple[str, ...] = ()
    interpreter_directories: tuple[str, ...] = ()
    """Other interpreters' directories outside those above (Deno in a user install)."""

    @property
    def mode(self) -> str:
        return "none" if self.bwrap is None else "bwrap"


# ---- argv (pure)


def read_only_directories(settings: IsolationSettings) -> list[str]:
    """Host directories every sandbox sees, read-only, at their own paths."""
    return [
        *settings.system_directories,
        *settings.python_prefixes,
        *settings.interpreter_directories,
    ]


def mount_points(settings: IsolationSettings) -> list[str]:
    """Directories, relative to a sandbox root, that bwrap mounts on."""
    bound = read_only_directories(settings)
    return [path.lstrip("/") for path in bound] + list(SANDBOX_DIRECTORIES)


def mounted_directories(settings: IsolationSettings) -> list[str]:
    """Sandbox directories that code sees as mounts rather than as the sandbox's own files."""
    if settings.bwrap is None:
        return []
    own_mounts = ["/etc", "/proc", "/dev", "/run"]
    return [*read_only_directories(settings), *own_mounts]


def _read_only_binds(settings: IsolationSettings) -> list[str]:
    argv: list[str] = []
    for path in read_only_directories(settings):
        argv += ["--ro-bind", path, path]
    return argv


def sandbox_environment(settings: IsolationSettings) -> dict[str, str]:
    """The whole environment of an isolated process: nothing leaks in from the server's."""
    search = [str(Path(settings.python).parent), "/usr/local/sbin", "/usr/local/bin"]
    search += ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
    return {
        "HOME": HOME,
        "USER": "user",
        "LOGNAME": "user",
        "SHELL": "/bin/sh",
        "PATH": ":".join(dict.fromkeys(search)),
        "LANG": "C.UTF-8",
    }


def anchor_argv(settings: IsolationSettings, info_fd: int, lifeline_fd: int) -> list[str]:
    """The bwrap that creates a sandbox's user and pid namespaces and stays as their pid 1
    until `lifeline_fd`, the read end of a pipe, reaches its end."""
    assert settings.bwrap is not None
    return [
        settings.bwrap,
        "--unshare-user",
        "--unshare-pid",
        "--unshare-net",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--uid",
        str(SANDBOX_UID),
        "--gid",
        str(SANDBOX_GID),
        "--die-with-parent",
        "--as-pid-1",
        *_read_only_binds(settings),
        "--clearenv",
        "--info-fd",
        str(info_fd),
        "--",
        settings.python,
        "-I",
        "-S",
        "-c",
        ANCHOR_SCRIPT,
        str(lifeline_fd),
    ]


def enter_argv(
    settings: IsolationSettings,
    *,
    root: Path,
    runtime: Path,
    namespaces: tuple[int, int],
    cwd: str,
    command: Sequence[str],
) -> list[str]:
    """The bwrap that runs `command` in a sandbox: `root` is `/`, system directories and the
    Python prefixes are read-only, /etc is minimal, and `runtime` (ipc sockets) is bound at
    its own path. `namespaces` are the fds of the anchor's user and pid namespaces.

    No --new-session: the server starts every launch in a new session already, and keeping
    the sandboxed process in the launcher's process group lets a group kill reach it.
    """
    assert settings.bwrap is not None and settings.runtime is not None
    user_namespace, pid_namespace = namespaces
    argv = [
        settings.bwrap,
        "--userns",
        str(user_namespace),
        "--pidns",
        str(pid_namespace),
        "--uid",
        str(SANDBOX_UID),
        "--gid",
        str(SANDBOX_GID),
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--hostname",
        HOSTNAME,
        "--die-with-parent",
    ]
    if not settings.network:
        argv.append("--unshare-net")
    argv += ["--bind", str(root), "/", *_read_only_binds(settings), "--tmpfs", "/etc"]
    for entry in HOST_ETC_ENTRIES:
        argv += ["--ro-bind-try", f"/etc/{entry}", f"/etc/{entry}"]
    for name in GENERATED_ETC_FILES:
        argv += ["--ro-bind", str(settings.runtime / "etc" / name), f"/etc/{name}"]
    argv += ["--remount-ro", "/etc", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/run"]
    argv += ["--bind", str(runtime), str(runtime), "--clearenv"]
    for name, value in sandbox_environment(settings).items():
        argv += ["--setenv", name, value]
    return [*argv, "--chdir", cwd, "--", *command]


def limits_argv(
    settings: IsolationSettings, cgroup_procs: Sequence[Path], *, limit_address_space: bool = True
) -> list[str]:
    """The prefix that puts a launch in the sandbox's cgroups and sets its rlimits."""
    argv: list[str] = []
    if cgroup_procs:
        argv += ["/bin/sh", "-c", JOIN_CGROUPS, "sh", *map(str, cgroup_procs), "--"]
    rlimits = []
    if settings.memory_bytes and limit_address_space:
        rlimits.append(f"--as={settings.memory_bytes}")
    if settings.process_rlimit and settings.max_processes:
        rlimits.append(f"--nproc={settings.max_processes}")
    if rlimits and settings.prlimit:
        argv += [settings.prlimit, *rlimits, "--"]
    return argv


# ---- host checks, once per server


def configure(
    mode: str, *, network: bool, memory_mb: int | None, max_processes: int | None
) -> IsolationSettings:
    """Settings for this host. `auto` falls back to no isolation (with a warning) when a
    tiny sandbox fails to run; `bwrap` raises IsolationUnavailable instead."""
    prlimit = shutil.which("prlimit")
    memory_bytes = memory_mb * 2**20 if memory_mb else None
    if memory_bytes and prlimit is None:
        log.warning("no prlimit command (util-linux): --memory-mb is not enforced")
    cgroup_limits = _cgroup_limits(max_processes)
    process_limited = any(limit.filename == "pids.max" for limit in cgroup_limits)
    try:
        runtime: Path | None = _runtime_directory()
    except IsolationUnavailable:
        if mode == "bwrap":
            raise
        runtime = None  # kernels then listen on loopback TCP
    unisolated = IsolationSettings(
        memory_bytes=memory_bytes,
        max_processes=max_processes,
        cgroup_limits=cgroup_limits,
        prlimit=prlimit,
        runtime=runtime,
    )
    if mode != "none":
        settings, reason = _bubblewrap(unisolated, network, process_limited)
        if settings is not None:
            return settings
        if mode == "bwrap":
            release(unisolated)
            raise IsolationUnavailable(f"--isolation bwrap does not work on this host: {reason}")
        log.warning("sandboxes run UNISOLATED (no bubblewrap: %s)", reason)
    if max_processes and not process_limited:
        log.warning("no writable pids cgroup: --max-processes is not enforced without isolation")
    return unisolated


def _bubblewrap(
    unisolated: IsolationSettings, network: bool, process_limited: bool
) -> tuple[IsolationSettings | None, str]:
    """Settings with bubblewrap when the probe passes, else None and the reason."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return None, "the bwrap command is not installed (apt-get install bubblewrap)"
    assert unisolated.runtime is not None
    etc = unisolated.runtime / "etc"
    etc.mkdir(exist_ok=True)
    for name, content in GENERATED_ETC_FILES.items():
        (etc / name).write_text(content)
    # RLIMIT_NPROC counts the processes of the sandbox's user namespace, unless that user
    # is root outside it: root is exempt, so as root only a pids cgroup limits processes.
    process_rlimit = not process_limited and os.geteuid() != 0
    if unisolated.max_processes and not process_limited and not process_rlimit:
        log.warning("as root without a writable pids cgroup, --max-processes is not enforced")
    system = tuple(path for path in SYSTEM_DIRECTORIES if os.path.isdir(path))
    prefixes = {sys.prefix, sys.base_prefix}
    prefixes |= {os.path.realpath(prefix) for prefix in prefixes}
    python_prefixes = tuple(sorted(p for p in prefixes if not _inside(p, system)))
    deno = deno_binary()
    deno_directory = [] if deno is None else [os.path.dirname(deno)]
    settings = replace(
        unisolated,
        bwrap=bwrap,
        network=network,
        process_rlimit=process_rlimit,
        python_prefixes=python_prefixes,
        system_directories=system,
        interpreter_directories=tuple(
            path for path in deno_directory if not _inside(path, (*system, *python_prefixes))
        ),
    )
    reason = probe(settings)
    if reason is not None:
        shutil.rmtree(etc, ignore_errors=True)
        return None, reason
    return settings, ""


def _inside(path: str, directories: Sequence[str]) -> bool:
    return any(path == directory or path.startswith(directory + "/") for directory in directories)


def probe(settings: IsolationSettings) -> str | None:
    """Run a tiny sandbox the way contexts run; None when it works, else why not."""
    assert settings.runtime is not None
    scratch = Path(tempfile.mkdtemp(prefix="probe-", dir=settings.runtime))
    (scratch / "fs").mkdir()
    launcher = BubblewrapLauncher(settings, scratch / "fs", "probe")
    try:
        launcher.start_anchor()
        code = "import os; print(os.getuid(), os.getcwd())"
        argv = launcher.argv([settings.python, "-I", "-S", "-c", code], HOME)
        finished = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=PROBE_SECONDS,
            **launcher.popen_options(scratch),
        )
    except (OSError, subprocess.SubprocessError, IsolationUnavailable) as error:
        return str(error)
    finally:
        launcher.close()
        shutil.rmtree(scratch, ignore_errors=True)
    if finished.stdout.split() != [str(SANDBOX_UID), HOME]:
        lines = (finished.stderr or finished.stdout).strip().splitlines()
        return lines[-1] if lines else f"the probe exited with code {finished.returncode}"
    return None


def release(settings: IsolationSettings) -> None:
    """Remove what `configure` made on the host (runtime directory, cgroups)."""
    if settings.runtime is not None:
        shutil.rmtree(settings.runtime, ignore_errors=True)
    for parent in {limit.parent for limit in settings.cgroup_limits}:
        with contextlib.suppress(OSError):
            parent.rmdir()


def _runtime_directory() -> Path:
    """A private, short directory for ipc sockets and generated /etc files.

    Under /run when possible: each sandbox mounts a fresh tmpfs on /run, so binding a
    directory there leaves no trace in the sandbox's own tree.
    """
    candidates = [Path("/run/sandbox-kernel")] if os.geteuid() == 0 else []
    if os.environ.get("XDG_RUNTIME_DIR", "").startswith("/run/"):
        candidates.append(Path(os.environ["XDG_RUNTIME_DIR"]) / "sandbox-kernel")
    candidates.append(Path(tempfile.gettempdir()) / f"sandbox-kernel-{os.getuid()}")
    for base in candidates:
        if len(f"{base}/{os.getpid()}-12345678") > MAX_RUNTIME_PATH:
            continue
        try:
            base.mkdir(mode=0o700, parents=True, exist_ok=True)
            info = base.lstat()
            if not base.is_dir() or base.is_symlink() or info.st_uid != os.geteuid():
                continue
            for leftover in _left_by_dead_servers(base, ""):
                shutil.rmtree(leftover, ignore_errors=True)
            return Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=base))
        except OSError:
            continue
    raise IsolationUnavailable("no private runtime directory with a short enough path")


# ---- cgroups


def _cgroup_limits(max_processes: int | None) -> tuple[CgroupLimit, ...]:
    """A child cgroup of this server's own, per limited controller that can hold one."""
    if not max_processes:
        return ()
    directory = own_cgroup("pids")
    if directory is None:
        return ()
    for leftover in _left_by_dead_servers(directory, "sandbox-kernel-"):
        for group in (*(child for child in leftover.iterdir() if child.is_dir()), leftover):
            with contextlib.suppress(OSError):
                group.rmdir()
    parent = directory / f"sandbox-kernel-{os.getpid()}"
    try:
        parent.mkdir(exist_ok=True)
        if (directory / "cgroup.controllers").exists():  # cgroup v2: enable pids below
            (parent / "cgroup.subtree_control").write_text("+pids")
        probe_group = parent / "probe"
        probe_group.mkdir(exist_ok=True)
        (probe_group / "pids.max").write_text(str(max_processes))
        probe_group.rmdir()
    except OSError as error:
        log.info("no pids cgroup for sandboxes (%s)", error)
        with contextlib.suppress(OSError):
            parent.rmdir()
        return ()
    return (CgroupLimit(parent, "pids.max", max_processes),)


def _left_by_dead_servers(directory: Path, prefix: str) -> list[Path]:
    """Entries named `<prefix><pid>...` whose server is gone (killed before cleaning up)."""
    leftovers = []
    with contextlib.suppress(OSError):
        for entry in directory.iterdir():
            pid = entry.name.removeprefix(prefix).split("-")[0]
            if entry.name.startswith(prefix) and pid.isdigit() and not psutil.pid_exists(int(pid)):
                leftovers.append(entry)
    return leftovers


def own_cgroup(controller: str) -> Path | None:
    """This process's cgroup directory in the hierarchy that has `controller`, if any."""
    try:
        memberships = Path("/proc/self/cgroup").read_text().splitlines()
        mounts = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return None
    for membership in memberships:
        hierarchy, controllers, path = membership.split(":", 2)
        for mount in mounts:
            fields, _, tail = mount.partition(" - ")
            parts, fstype = fields.split(), tail.split()
            v1 = fstype[:1] == ["cgroup"] and controller in fstype[-1].split(",")
            v2 = fstype[:1] == ["cgroup2"] and hierarchy == "0"
            if not (v1 and controller in controllers.split(",")) and not v2:
                continue
            mount_root, mount_point = parts[3], parts[4]
            relative = path[len(mount_root) :] if path.startswith(mount_root) else path
            directory = Path(mount_point + "/" + relative.lstrip("/"))
            if v2 and controller not in _read(directory / "cgroup.subtree_control").split():
                continue
            return directory
    return None


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


# ---- one sandbox


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

    def _make_host_resources(self) -> None:
        if self.runtime is not None:
            self.runtime.mkdir(mode=0o700, exist_ok=True)
        if self.cgroups or not self.settings.cgroup_limits:
            return
        for limit in self.settings.cgroup_limits:
            group = limit.parent / str(self.slot)
            group.mkdir(exist_ok=True)
            (group / limit.filename).write_text(str(limit.value))
            if group not in self.cgroups:
                self.cgroups.append(group)

    def argv(
        self, command: Sequence[str], cwd: str, *, limit_address_space: bool = True
    ) -> list[str]:
        """The argv that runs `command` in the sandbox, in the sandbox directory `cwd`;
        `limit_address_space=False` spares it the memory limit's RLIMIT_AS."""
        procs = [group / "cgroup.procs" for group in self.cgroups]
        limits = limits_argv(self.settings, procs, limit_address_space=limit_address_space)
        return [*limits, *command]

    def popen_options(self, host_cwd: Path) -> dict[str, Any]:
        """Working directory, environment and fds for starting `argv(...)`."""
        return {"cwd": str(host_cwd), "env": dict(self.environment)}

    def kernel_command(self, command: Sequence[str], *, speaks_ipc: bool) -> list[str]:
        """The command that starts a context kernel, before `argv` confines it."""
        return [self.kernel_app_path() if part == KERNEL_APP else part for part in command]

    def kernel_app_path(self) -> str:
        """Where this sandbox's processes find `kernel_app.py`."""
        return str(KERNEL_APP_FILE)

    def kernel_options(self, *, speaks_ipc: bool = True) -> dict[str, Any]:
        """Connection settings of a context kernel's manager: ipc sockets beside its
        connection file in the private runtime directory (which an isolated sandbox sees at
        the same path), so no port is open to other users or other sandboxes. A kernel that
        cannot use ipc listens on loopback TCP like any other Jupyter kernel."""
        if self.runtime is None or not speaks_ipc:
            return {}
        return {
            "transport": "ipc",
            "connection_file": str(self.runtime / f"k-{uuid.uuid4().hex[:12]}.json"),
        }

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
            _remove_cgroup(group)
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

    def __init__(self, settings: IsolationSettings, root: Path, sandbox_id: str) -> None:
        super().__init__(settings, root, sandbox_id)
        self.anchor: subprocess.Popen | None = None
        self.lifeline: int | None = None  # write end of the anchor's pipe; closing it ends it
        self.anchor_pid = 0  # host pid of the anchor's pid 1
        self.pid_namespace = ""
        self.namespace_fds: tuple[int, int] | None = None
        self._starting = asyncio.Lock()

    async def prepare(self) -> None:
        self._make_host_resources()
        async with self._starting:
            if not self.anchor_alive():
                await asyncio.to_thread(self.start_anchor)

    def anchor_alive(self) -> bool:
        return self.anchor is not None and self.anchor.poll() is None

    def start_anchor(self) -> None:
        """Start (or restart) the anchor; fd numbers of its namespaces stay the same."""
        self._make_host_resources()
        for relative in mount_points(self.settings):
            make_directories(self.root, relative)
        reader, writer = os.pipe()
        lifeline_reader, lifeline = os.pipe()
        procs = [group / "cgroup.procs" for group in self.cgroups]
        argv = anchor_argv(self.settings, writer, lifeline_reader)
        try:
            self.anchor = subprocess.Popen(
                [*limits_argv(self.settings, procs), *argv],
                pass_fds=(writer, lifeline_reader),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except OSError:
            os.close(lifeline)
            raise
        finally:
            os.close(writer)
            os.close(lifeline_reader)
        self._cut_lifeline()
        self.lifeline = lifeline
        with os.fdopen(reader, "rb") as info_pipe:
            info = self._read_info(info_pipe)
        self.anchor_pid = info["child-pid"]
        self.pid_namespace = f"pid:[{info['pid-namespace']}]"
        user_fd = os.open(f"/proc/{self.anchor_pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
        pid_fd = os.open(f"/proc/{self.anchor_pid}/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        if os.readlink(f"/proc/{self.anchor_pid}/ns/pid") != self.pid_namespace:
            os.close(user_fd)
            os.close(pid_fd)
            raise IsolationUnavailable("the sandbox's init process went away while starting")
        if self.namespace_fds is None:
            self.namespace_fds = (user_fd, pid_fd)
        else:
            for new, kept in zip((user_fd, pid_fd), self.namespace_fds, strict=True):
                os.dup2(new, kept, inheritable=False)
                os.close(new)
        log.debug("sandbox %s: anchor pid %s in %s", self.sandbox_id, self.anchor_pid, self.root)

    def _read_info(self, info_pipe: Any) -> dict[str, Any]:
        """bwrap's --info-fd JSON: the anchor's host pid and its namespaces."""
        assert self.anchor is not None
        data = b""
        deadline = time.monotonic() + ANCHOR_START_SECONDS
        while b"\n}\n" not in data:
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([info_pipe], [], [], max(0.0, remaining))
            chunk = os.read(info_pipe.fileno(), 4096) if ready else b""
            if not chunk:
                self.anchor.kill()
                _, error = self.anchor.communicate()
                lines = error.decode("utf-8", "replace").strip().splitlines()
                raise IsolationUnavailable(lines[-1] if lines else "bwrap did not start")
            data += chunk
        return json.loads(data)

    def kernel_command(self, command: Sequence[str], *, speaks_ipc: bool) -> list[str]:
        """A kernel that cannot use ipc runs behind the bridge (kernel_bridge.py), which
        listens on the ipc sockets and shares the kernel's network namespace."""
        command = super().kernel_command(command, speaks_ipc=speaks_ipc)
        if speaks_ipc:
            return command
        bridge = [self.settings.python, "-I", "-S", "-c", kernel_bridge_source()]
        return [*bridge, "{connection_file}", *command]

    def kernel_app_path(self) -> str:
        """A copy in the runtime directory, which the sandbox sees at the same path: the
        package itself may live where the sandbox cannot see (an editable install)."""
        assert self.runtime is not None, "prepare() first"
        copy = self.runtime / KERNEL_APP_FILE.name
        if not copy.exists():
            shutil.copyfile(KERNEL_APP_FILE, copy)
        return str(copy)

    def kernel_options(self, *, speaks_ipc: bool = True) -> dict[str, Any]:
        # Always ipc: the server cannot reach a port in the sandbox's network namespace.
        return super().kernel_options()

    def argv(
        self, command: Sequence[str], cwd: str, *, limit_address_space: bool = True
    ) -> list[str]:
        assert self.namespace_fds is not None and self.runtime is not None, "prepare() first"
        procs = [group / "cgroup.procs" for group in self.cgroups]
        entered = enter_argv(
            self.settings,
            root=self.root,
            runtime=self.runtime,
            namespaces=self.namespace_fds,
            cwd=cwd,
            command=command,
        )
        limits = limits_argv(self.settings, procs, limit_address_space=limit_address_space)
        return [*limits, *entered]

    def popen_options(self, host_cwd: Path) -> dict[str, Any]:
        assert self.namespace_fds is not None, "prepare() first"
        return {
            "cwd": str(self.runtime),
            "env": {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
            "pass_fds": self.namespace_fds,
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

    def kill_all(self) -> None:
        super().kill_all()
        self._cut_lifeline()
        if self.anchor is not None:
            # Without its lifeline the anchor's pid 1 exits (and dies with bwrap anyway,
            # --die-with-parent); the kernel then kills every process left in its namespace.
            with contextlib.suppress(OSError):
                self.anchor.kill()
            with contextlib.suppress(subprocess.SubprocessError):
                self.anchor.communicate(timeout=5)
            self.anchor = None

    def close(self) -> None:
        super().close()
        if self.namespace_fds is not None:
            for descriptor in self.namespace_fds:
                os.close(descriptor)
            self.namespace_fds = None


@functools.cache
def kernel_bridge_source() -> str:
    """The bridge's code, run with `python -c`: the package may be invisible in a sandbox."""
    return Path(__file__).with_name("kernel_bridge.py").read_text()


def _namespace_pid(host_pid: int) -> int:
    """The pid of a process in its innermost pid namespace (the last field of NSpid)."""
    with open(f"/proc/{host_pid}/status") as status:
        for line in status:
            if line.startswith("NSpid:"):
                return int(line.split()[-1])
    raise ValueError(f"no NSpid for {host_pid}")


def _remove_cgroup(group: Path) -> None:
    """A cgroup can go once its last process is gone, which takes the kernel a moment."""
    deadline = time.monotonic() + 2.0
    while True:
        try:
            group.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            if time.monotonic() >= deadline:
                log.info("cgroup %s still busy; left in place", group)
                return
            time.sleep(0.02)


def launcher_for(settings: IsolationSettings, root: Path, sandbox_id: str) -> Launcher:
    """The launcher of one sandbox under these settings."""
    cls = Launcher if settings.bwrap is None else BubblewrapLauncher
    return cls(settings, root, sandbox_id)
