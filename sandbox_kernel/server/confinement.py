"""The argv that confines a sandbox's processes: pure functions of an IsolationSettings.

Two ways to keep a sandbox from being host root, chosen by who runs the server:

- **A server running as root** maps sandbox uid 1000 onto an unprivileged host uid of its
  own (`host_ids`). The anchor's bwrap makes the sandbox's user namespace (U) and waits;
  the server writes U's id maps (`0 0 1` for bwrap's own set-up, `1000 HOSTUID 1`); the
  anchor then drops to uid 1000 and makes a child namespace (U2) that maps only uid 1000.
  Every later bwrap joins U to build its mounts (as root, it can reach a Python that lives
  under /root), then U2, where no id means host root, and ends in `setpriv`, which drops to
  uid 1000 with every capability gone before the command runs.
- **Any other server** runs bwrap unprivileged: its user namespace maps uid 1000 onto the
  server's own uid, which is not root.

Every process also gets the seccomp filter (seccomp.py) on fd SECCOMP_FD, which the
launch prefix opens afresh for each launch, and no_new_privs (bwrap sets it).

Over 400 lines as one job: the argv and the scripts it runs belong together.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .cgroups import CgroupLimit
from .constants import HOME
from .egress import PROXY_URL
from .environments import SANDBOX_VENV

SANDBOX_UID = SANDBOX_GID = 1000
HOSTNAME = "sandbox"
SECCOMP_FD = 9
"""The fd on which every launch finds the seccomp filter (one digit: POSIX sh redirects)."""
CHOSEN_ENVIRONMENT_FD = 8
"""The fd on which bwrap reads (`--args`) the variables the sandbox's creator chose: kept
out of argv, which every host user can read in /proc."""
FIRST_KEPT_FD = 10
"""Descriptors a launcher keeps for its sandbox's life sit at or above this one."""
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
    "services",
    "ssl/certs",
    "ssl/openssl.cnf",
    "timezone",
)
USER_NETWORK_DNS = "10.0.2.3"
"""The resolver user-mode networking offers inside the sandbox (slirp4netns's and ours)."""
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
    "resolv.conf": f"nameserver {USER_NETWORK_DNS}\n",
}
# Directories every isolated sandbox root holds besides the bound ones: bwrap mounts there.
SANDBOX_DIRECTORIES = ("etc", "proc", "dev", "run", "tmp", HOME.lstrip("/"))
# Joins the cgroups named before `--`, opens the seccomp filter (the first argument) on
# SECCOMP_FD, then runs the rest: a process started this way is limited from its first
# instruction, so it cannot fork past the limit before being moved.
LAUNCH_PREFIX_SCRIPT = (
    'filter=$1; chosen=$2; shift 2; while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; '
    f'shift; done; shift; exec "$@" {SECCOMP_FD}<"$filter" {CHOSEN_ENVIRONMENT_FD}<"$chosen"'
)
# What the last step before the command drops: bwrap leaves it uid 0 of no mapping, with
# the capabilities to change its ids and nothing else; after this it has none.
DROP_TO_SANDBOX_USER = (
    f"--reuid={SANDBOX_UID}",
    f"--regid={SANDBOX_GID}",
    "--keep-groups",
    "--inh-caps=-all",
    "--ambient-caps=-all",
    "--bounding-set=-all",
)
SETUP_CAPABILITIES = ("CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP")
# pid 1 of a sandbox when the server is root: it drops to uid 1000, makes the inner user
# namespace (which maps only uid 1000), loads the seccomp filter, then becomes the anchor
# proper. argv: lifeline fd, ready fd.
ANCHOR_SETUP_SCRIPT = f"""\
import ctypes, os, sys
os.setgroups([])
os.setresgid({SANDBOX_GID}, {SANDBOX_GID}, {SANDBOX_GID})
os.setresuid({SANDBOX_UID}, {SANDBOX_UID}, {SANDBOX_UID})
libc = ctypes.CDLL(None, use_errno=True)
libc.prctl(4, 1, 0, 0, 0)  # PR_SET_DUMPABLE: a changed uid left /proc/self root's
if libc.unshare(0x10000000) != 0:
    raise OSError(ctypes.get_errno(), "cannot make the sandbox's inner user namespace")
for name, line in (("setgroups", "deny"), ("uid_map", "{SANDBOX_UID} {SANDBOX_UID} 1"),
                   ("gid_map", "{SANDBOX_GID} {SANDBOX_GID} 1")):
    with open("/proc/self/" + name, "w") as handle:
        handle.write(line)
program = b""
while chunk := os.read({SECCOMP_FD}, 65536):
    program += chunk
os.close({SECCOMP_FD})
class Program(ctypes.Structure):
    _fields_ = [("length", ctypes.c_ushort), ("instructions", ctypes.c_char_p)]
instructions = ctypes.create_string_buffer(program, len(program))
loaded = Program(len(program) // 8, ctypes.cast(instructions, ctypes.c_char_p))
if libc.prctl(22, 2, ctypes.byref(loaded), 0, 0) != 0:
    raise OSError(ctypes.get_errno(), "cannot load the seccomp filter")
os.execv(sys.executable, [sys.executable, "-I", "-S", "-c", sys.argv[1], *sys.argv[2:]])
"""
# The anchor proper: ignoring SIGCHLD makes the kernel reap the orphans it adopts, and with
# no signal handlers left, nothing inside the sandbox can kill it. It says it is ready on
# its second fd, then lives until the pipe from the server (its first fd) closes, so the
# sandbox ends with the server however the server ends.
ANCHOR_SCRIPT = (
    "import os, signal, sys\n"
    "signal.signal(signal.SIGINT, signal.SIG_DFL)\n"
    "signal.signal(signal.SIGCHLD, signal.SIG_IGN)\n"
    "os.write(int(sys.argv[2]), b'r')\n"
    "os.close(int(sys.argv[2]))\n"
    "while os.read(int(sys.argv[1]), 1):\n"
    "    pass\n"
)


@dataclass(frozen=True)
class IsolationSettings:
    """How a server confines its sandboxes; `bwrap` is None when they run unisolated."""

    bwrap: str | None = None
    network: str = "none"
    """none: no network; user: egress through user-mode networking; host: the host's."""
    network_tool: str | None = None
    """slirp4netns or pasta, for `network == "user"`."""
    memory_bytes: int | None = None
    address_space_limit: bool = False
    """True when memory is limited per process (RLIMIT_AS) for want of a memory cgroup."""
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
    egress: tuple[str, ...] = ()
    """Destinations (HOST[:PORT]) sandbox code may reach through the egress proxy."""
    environment: tuple[tuple[str, str], ...] = ()
    """Variables the sandbox's creator chose, set in every process of the sandbox."""
    host_ids: tuple[int, int] | None = None
    """Host uid and gid that sandbox uid 1000 maps onto when the server is root; None when
    it is the server's own (an unprivileged server)."""
    setpriv: str = "setpriv"
    nsenter: str = "nsenter"

    @property
    def mode(self) -> str:
        return "none" if self.bwrap is None else "bwrap"

    @property
    def seccomp_file(self) -> Path:
        assert self.runtime is not None
        return self.runtime / "seccomp.bpf"

    @property
    def kernel_app(self) -> Path:
        """The server's own copy of context_kernel.py, bound read-only into every sandbox."""
        assert self.runtime is not None
        return self.runtime / "context_kernel.py"

    @property
    def kernel_app_files(self) -> list[Path]:
        """The context kernel's copy and the stream module beside it, both bound read-only."""
        return [self.kernel_app, self.kernel_app.with_name("prompt_stream.py")]


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


def _parent_directories(paths: Sequence[str | Path], below: str = "/") -> list[str]:
    """Directories on a tmpfs (the anchor's root, a sandbox's /run) that the bind targets
    `paths` need, traversable by uid 1000: bwrap would make them private to their creator.
    Only those under `below` are made."""
    parents: dict[str, None] = {}
    for path in paths:
        parts = Path(path).parts[1:-1]
        for depth in range(1, len(parts) + 1):
            parents["/" + "/".join(parts[:depth])] = None
    argv: list[str] = []
    for parent in parents:
        if parent.startswith(below.rstrip("/") + "/"):
            argv += ["--perms", "0755", "--dir", parent]
    return argv


def _setup_capabilities() -> list[str]:
    argv: list[str] = []
    for capability in SETUP_CAPABILITIES:
        argv += ["--cap-add", capability]
    return argv


def sandbox_environment(settings: IsolationSettings) -> dict[str, str]:
    """The whole environment of an isolated process: nothing leaks in from the server's."""
    search = [f"{SANDBOX_VENV}/bin", str(Path(settings.python).parent)]
    search += ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]
    environment = {
        "HOME": HOME,
        "USER": "user",
        "LOGNAME": "user",
        "SHELL": "/bin/sh",
        "PATH": ":".join(dict.fromkeys(search)),
        "LANG": "C.UTF-8",
        "VIRTUAL_ENV": SANDBOX_VENV,
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    if settings.egress:
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
            environment[name] = PROXY_URL
    return environment


def chosen_environment_args(settings: IsolationSettings) -> bytes:
    """The creator's variables as bwrap `--args` (NUL-separated `--setenv NAME VALUE`)."""
    return b"".join(
        b"--setenv\0" + name.encode() + b"\0" + value.encode() + b"\0"
        for name, value in settings.environment
    )


def anchor_argv(
    settings: IsolationSettings, *, info_fd: int, block_fd: int, lifeline_fd: int, ready_fd: int
) -> list[str]:
    """The bwrap that creates a sandbox's user, pid and network namespaces and stays as
    their pid 1 until `lifeline_fd`, the read end of a pipe, reaches its end."""
    assert settings.bwrap is not None
    argv = [
        settings.bwrap,
        "--unshare-user",
        "--unshare-pid",
        "--unshare-net",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--die-with-parent",
        "--as-pid-1",
        "--info-fd",
        str(info_fd),
        *_parent_directories(read_only_directories(settings)),
        *_read_only_binds(settings),
        "--proc",
        "/proc",
        "--clearenv",
    ]
    anchor = [settings.python, "-I", "-S", "-c"]
    if settings.host_ids is None:
        argv += ["--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_GID)]
        argv += ["--seccomp", str(SECCOMP_FD)]
        anchor += [ANCHOR_SCRIPT]
    else:
        argv += ["--userns-block-fd", str(block_fd), *_setup_capabilities()]
        anchor += [ANCHOR_SETUP_SCRIPT, ANCHOR_SCRIPT]
    return [*argv, "--", *anchor, str(lifeline_fd), str(ready_fd)]


def id_maps(host_ids: tuple[int, int]) -> tuple[str, str]:
    """uid_map and gid_map of a sandbox's outer user namespace when the server is root."""
    uid, gid = host_ids
    return f"0 0 1\n{SANDBOX_UID} {uid} 1\n", f"0 0 1\n{SANDBOX_GID} {gid} 1\n"


@dataclass(frozen=True)
class Namespaces:
    """Descriptors of an anchor's namespaces, held by the server for the sandbox's life."""

    user: int
    """The namespace bwrap builds mounts in (U): the only one when the server is not root."""
    pid: int
    network: int
    inner_user: int | None = None
    """Where sandbox processes live when the server is root (U2)."""


def enter_argv(
    settings: IsolationSettings,
    *,
    root: Path,
    binds: Sequence[tuple[str, Path]],
    namespaces: Namespaces,
    cwd: str,
    command: Sequence[str],
) -> list[str]:
    """The bwrap that runs `command` in a sandbox: `root` is `/`, system directories and the
    Python prefixes are read-only, /etc is minimal. `binds` are (mode, host path) pairs bound
    at their own paths, mode "ro" or "rw": the runtime files the sandbox's kernels need.

    No --new-session: the server starts every launch in a new session already, and keeping
    the sandboxed process in the launcher's process group lets a group kill reach it.
    """
    assert settings.bwrap is not None and settings.runtime is not None
    argv = [settings.bwrap, "--userns", str(namespaces.user), "--pidns", str(namespaces.pid)]
    if namespaces.inner_user is not None:
        argv += ["--userns2", str(namespaces.inner_user), *_setup_capabilities()]
    else:
        argv += ["--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_GID)]
        argv.append("--unshare-net")  # an unprivileged server cannot join the anchor's
    argv += ["--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
    argv += ["--hostname", HOSTNAME, "--die-with-parent"]
    argv += ["--bind", str(root), "/", *_read_only_binds(settings), "--tmpfs", "/etc"]
    argv += _parent_directories([f"/etc/{entry}" for entry in HOST_ETC_ENTRIES], "/etc")
    for entry in HOST_ETC_ENTRIES:
        argv += ["--ro-bind-try", f"/etc/{entry}", f"/etc/{entry}"]
    generated = dict.fromkeys(GENERATED_ETC_FILES)
    if settings.network == "host":
        del generated["resolv.conf"]
        argv += ["--ro-bind-try", "/etc/resolv.conf", "/etc/resolv.conf"]
    for name in generated:
        argv += ["--ro-bind", str(settings.runtime / "etc" / name), f"/etc/{name}"]
    argv += ["--remount-ro", "/etc", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/run"]
    tmpfs_top = "/" + settings.runtime.parts[1]  # /run or /dev: fresh in every sandbox
    argv += _parent_directories([path for _, path in binds], tmpfs_top)
    for mode, path in binds:
        argv += ["--ro-bind" if mode == "ro" else "--bind", str(path), str(path)]
    argv += ["--seccomp", str(SECCOMP_FD), "--clearenv"]
    for name, value in sandbox_environment(settings).items():
        argv += ["--setenv", name, value]
    if settings.environment:
        argv += ["--args", str(CHOSEN_ENVIRONMENT_FD)]
    argv += ["--chdir", cwd, "--"]
    if namespaces.inner_user is not None:
        argv += [settings.setpriv, *DROP_TO_SANDBOX_USER, "--"]
    return [*argv, *command]


def network_prefix(settings: IsolationSettings, namespaces: Namespaces) -> list[str]:
    """What puts a launch in its sandbox's network namespace (a root server's launches)."""
    if namespaces.inner_user is None or settings.network == "host":
        return []
    return [settings.nsenter, f"--net=/proc/self/fd/{namespaces.network}", "--"]


def limits_argv(
    settings: IsolationSettings,
    cgroup_procs: Sequence[Path],
    *,
    limit_address_space: bool = True,
    chosen_environment: Path | None = None,
) -> list[str]:
    """The prefix that puts a launch in the sandbox's cgroups, opens the seccomp filter on
    SECCOMP_FD and the `chosen_environment` file on CHOSEN_ENVIRONMENT_FD (isolated
    launches) and sets its rlimits."""
    argv: list[str] = []
    if settings.bwrap is not None or cgroup_procs:
        filter_file = str(settings.seccomp_file) if settings.bwrap is not None else "/dev/null"
        chosen = str(chosen_environment or "/dev/null")
        argv += ["/bin/sh", "-c", LAUNCH_PREFIX_SCRIPT, "sh", filter_file, chosen]
        argv += [*map(str, cgroup_procs), "--"]
    rlimits = []
    if settings.memory_bytes and settings.address_space_limit and limit_address_space:
        rlimits.append(f"--as={settings.memory_bytes}")
    if settings.process_rlimit and settings.max_processes:
        rlimits.append(f"--nproc={settings.max_processes}")
    if rlimits and settings.prlimit:
        argv += [settings.prlimit, *rlimits, "--"]
    return argv
