"""Per-sandbox cgroups: a pids limit and a memory limit, where this server can make them.

Each limited controller gets a parent cgroup per server (`sandbox-kernel-<pid>`, under the
server's own cgroup in that hierarchy) and a child per sandbox. Works with cgroup v1 as
root and with a delegated cgroup v2 subtree; elsewhere the limit is reported as not
enforced and the server falls back to rlimits.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

log = logging.getLogger(__name__)

PREFIX = "sandbox-kernel-"
REMOVE_SECONDS = 2.0
# v1 and v2 name the same limits differently; swap is kept out of a memory limit.
LIMIT_FILES = {
    "pids": {"v1": ("pids.max",), "v2": ("pids.max",)},
    "memory": {"v1": ("memory.limit_in_bytes",), "v2": ("memory.max", "memory.swap.max")},
}


@dataclass(frozen=True)
class CgroupLimit:
    """Limit files of one controller, set in a child cgroup per sandbox under `parent`.

    `values` pairs each file with what it is set to, in order (a v1 memory limit may need
    its memory+swap limit set after it)."""

    parent: Path
    values: tuple[tuple[str, str], ...]

    @property
    def controller(self) -> str:
        return self.values[0][0].split(".")[0]


def make_limits(max_processes: int | None, memory_bytes: int | None) -> tuple[CgroupLimit, ...]:
    """A parent cgroup for each limit this server can enforce through cgroups."""
    wanted = {"pids": max_processes, "memory": memory_bytes}
    limits = []
    for controller, value in wanted.items():
        if not value:
            continue
        limit = _make_limit(controller, value)
        if limit is not None:
            limits.append(limit)
    return tuple(limits)


def _make_limit(controller: str, value: int) -> CgroupLimit | None:
    directory = own_cgroup(controller)
    if directory is None:
        return None
    remove_left_by_dead_servers(directory)
    version = "v2" if (directory / "cgroup.controllers").exists() else "v1"
    files = LIMIT_FILES[controller][version]
    values = [(files[0], str(value))]
    if len(files) > 1:
        values.append((files[1], "0"))
    parent = directory / f"{PREFIX}{os.getpid()}"
    try:
        parent.mkdir(exist_ok=True)
        if version == "v2":
            (parent / "cgroup.subtree_control").write_text(f"+{controller}")
        probe = parent / "probe"
        probe.mkdir(exist_ok=True)
        try:
            written = _write_limits(probe, values)
        finally:
            probe.rmdir()
    except OSError as error:
        log.info("no %s cgroup for sandboxes (%s)", controller, error)
        with contextlib.suppress(OSError):
            parent.rmdir()
        return None
    return CgroupLimit(parent, tuple(written))


def _write_limits(group: Path, values: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Write each limit; an optional second file (swap) that does not exist is left out."""
    written = []
    for index, (filename, value) in enumerate(values):
        path = group / filename
        if index > 0 and not path.exists():
            continue
        path.write_text(value)
        written.append((filename, value))
    return written


def make_sandbox_group(limit: CgroupLimit, name: str) -> Path:
    """The child cgroup of one sandbox, its limits set."""
    group = limit.parent / name
    group.mkdir(exist_ok=True)
    _write_limits(group, list(limit.values))
    return group


def remove_group(group: Path) -> None:
    """A cgroup can go once its last process is gone, which takes the kernel a moment;
    processes still in it are killed first."""
    deadline = time.monotonic() + REMOVE_SECONDS
    while True:
        try:
            group.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            _kill_members(group)
            if time.monotonic() >= deadline:
                log.warning("cgroup %s still busy; left in place", group)
                return
            time.sleep(0.02)


def _kill_members(group: Path) -> None:
    with contextlib.suppress(OSError):
        for line in (group / "cgroup.procs").read_text().split():
            with contextlib.suppress(psutil.Error, ValueError):
                psutil.Process(int(line)).kill()


def release_limits(limits: tuple[CgroupLimit, ...]) -> None:
    """Remove the per-server parents (their children first)."""
    for limit in limits:
        with contextlib.suppress(OSError):
            for child in limit.parent.iterdir():
                if child.is_dir():
                    remove_group(child)
        remove_group(limit.parent)


def remove_left_by_dead_servers(directory: Path) -> None:
    for leftover in left_by_dead_servers(directory, PREFIX):
        with contextlib.suppress(OSError):
            for child in leftover.iterdir():
                if child.is_dir():
                    remove_group(child)
        remove_group(leftover)


def left_by_dead_servers(directory: Path, prefix: str) -> list[Path]:
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
