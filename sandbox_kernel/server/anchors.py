"""The anchor of an isolated sandbox: the init process that holds its namespaces open.

A bwrap started once per sandbox (confinement.py builds its argv) makes the sandbox's user,
pid and network namespaces and stays as their pid 1, reaping orphaned background jobs. The
server keeps descriptors of those namespaces, which every later launch of the sandbox
joins, and a pipe whose closing ends the anchor, so the sandbox ends with the server
however the server ends.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import selectors
import subprocess
import time
from collections.abc import Sequence
from typing import Any

from . import network
from .confinement import FIRST_KEPT_FD, IsolationSettings, Namespaces, anchor_argv, id_maps

ANCHOR_START_SECONDS = 10.0


class IsolationUnavailable(RuntimeError):
    """Bubblewrap cannot confine processes on this host (or a sandbox failed to start)."""


class Anchor:
    """pid 1 of one isolated sandbox, and the descriptors of its namespaces.

    The descriptors keep their numbers for the sandbox's life, across restarts of the
    anchor: argv already built for the sandbox's launches name them.
    """

    def __init__(self, settings: IsolationSettings) -> None:
        self.settings = settings
        self.process: subprocess.Popen | None = None
        self.lifeline: int | None = None  # write end of the anchor's pipe; closing it ends it
        self.pid = 0  # host pid of the anchor's pid 1
        self.pid_namespace = ""
        self.namespaces: Namespaces | None = None
        self.network: network.UserNetwork | None = None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, launch_prefix: Sequence[str], credentials: dict[str, Any]) -> None:
        """Start the anchor behind `launch_prefix` (cgroups, rlimits), with the Popen
        `credentials` of the sandbox's launches; raises IsolationUnavailable with bwrap's
        own last words when it does not start."""
        info_reader, info_writer = _pipe()
        block_reader, block_writer = _pipe()
        ready_reader, ready_writer = _pipe()
        lifeline_reader, lifeline = _pipe()
        self.lifeline = lifeline
        argv = anchor_argv(
            self.settings,
            info_fd=info_writer,
            block_fd=block_reader,
            lifeline_fd=lifeline_reader,
            ready_fd=ready_writer,
        )
        child_ends = (info_writer, block_reader, lifeline_reader, ready_writer)
        try:
            self.process = subprocess.Popen(
                [*launch_prefix, *argv],
                pass_fds=child_ends,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                start_new_session=True,
                **credentials,
            )
        finally:
            for descriptor in child_ends:
                os.close(descriptor)
        try:
            info = json.loads(self._read_until(info_reader, b"\n}\n"))
            self.pid = info["child-pid"]
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
                self.network = network.start(self.settings.network_tool, self.pid, net, user)
            except network.NetworkUnavailable as error:
                raise IsolationUnavailable(str(error)) from None

    def _read_until(self, descriptor: int, end: bytes) -> bytes:
        """Read the anchor's pipe until `end`, failing with bwrap's own last words."""
        assert self.process is not None
        data = b""
        deadline = time.monotonic() + ANCHOR_START_SECONDS
        with selectors.DefaultSelector() as selector:
            selector.register(descriptor, selectors.EVENT_READ)
            while end not in data:
                remaining = deadline - time.monotonic()
                ready = selector.select(max(0.0, remaining)) if remaining > 0 else []
                chunk = os.read(descriptor, 4096) if ready else b""
                if not chunk:
                    raise IsolationUnavailable(self._failure())
                data += chunk
        return data

    def _failure(self) -> str:
        assert self.process is not None
        with contextlib.suppress(OSError):
            os.killpg(self.process.pid, 9)
        try:
            _, error = self.process.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            error = b""
        lines = (error or b"").decode("utf-8", "replace").strip().splitlines()
        return lines[-1] if lines else "the sandbox's init process did not start"

    def _write_id_maps(self) -> None:
        """Map sandbox uid 1000 onto the server's unprivileged host ids (a root server)."""
        assert self.settings.host_ids is not None
        uid_map, gid_map = id_maps(self.settings.host_ids)
        for name, content in (("uid_map", uid_map), ("gid_map", gid_map)):
            descriptor = os.open(f"/proc/{self.pid}/{name}", os.O_WRONLY | os.O_NOFOLLOW)
            try:
                os.write(descriptor, content.encode())
            finally:
                os.close(descriptor)

    def _open_namespace(self, kind: str) -> int:
        kept = _kept(os.open(f"/proc/{self.pid}/ns/{kind}", os.O_RDONLY | os.O_CLOEXEC))
        if kind == "pid" and os.readlink(f"/proc/{self.pid}/ns/pid") != self.pid_namespace:
            os.close(kept)
            raise IsolationUnavailable("the sandbox's init process went away while starting")
        return kept

    def _keep_namespaces(self, opened: Namespaces) -> None:
        """Keep the first fds for the sandbox's life: argv already built name them."""
        if self.namespaces is None:
            self.namespaces = opened
            return
        pairs = zip(namespace_fds(opened), namespace_fds(self.namespaces), strict=True)
        for new, kept in pairs:
            os.dup2(new, kept, inheritable=False)
            os.close(new)

    def cut_lifeline(self) -> None:
        """Close the anchor's pipe: it ends, and the kernel then kills every process left
        in the sandbox's pid namespace."""
        if self.lifeline is not None:
            os.close(self.lifeline)
            self.lifeline = None

    def stop(self) -> None:
        """End the anchor and its user-mode network; the namespaces' fds stay open."""
        self.cut_lifeline()
        if self.network is not None:
            self.network.stop()
            self.network = None
        if self.process is not None:
            with contextlib.suppress(OSError):
                os.killpg(self.process.pid, 9)
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                self.process.communicate(timeout=5)
            self.process = None

    def close(self) -> None:
        """Give back the namespaces' descriptors (after `stop`)."""
        if self.namespaces is not None:
            for descriptor in namespace_fds(self.namespaces):
                os.close(descriptor)
            self.namespaces = None


def namespace_fds(namespaces: Namespaces) -> tuple[int, ...]:
    """The descriptors a sandbox's launches inherit to join its namespaces."""
    kept = (namespaces.user, namespaces.pid, namespaces.network, namespaces.inner_user)
    return tuple(descriptor for descriptor in kept if descriptor is not None)


def _kept(descriptor: int) -> int:
    """`descriptor` moved to FIRST_KEPT_FD or above, clear of the launch prefix's fds."""
    kept = fcntl.fcntl(descriptor, fcntl.F_DUPFD_CLOEXEC, FIRST_KEPT_FD)
    os.close(descriptor)
    return kept


def _pipe() -> tuple[int, int]:
    reader, writer = os.pipe()
    return _kept(reader), _kept(writer)


def namespace_pid(host_pid: int) -> int:
    """The pid of a process in its innermost pid namespace (the last field of NSpid)."""
    with open(f"/proc/{host_pid}/status") as status:
        for line in status:
            if line.startswith("NSpid:"):
                return int(line.split()[-1])
    raise ValueError(f"no NSpid for {host_pid}")
