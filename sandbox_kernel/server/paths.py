"""Sandbox paths ("/home/user/x") resolved inside one sandbox root, by descriptor.

Every lookup starts from a descriptor of the root, opened once, and goes through `openat2`
with `RESOLVE_IN_ROOT`: a link means what it means to code in the sandbox (an absolute
target starts at the sandbox's `/`), and no component can lead out of the root, whatever
sandbox code renames or swaps meanwhile. Operations then act on the descriptors they got.
"""

from __future__ import annotations

import errno
import os
import posixpath
import threading
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from .constants import HOME
from .descriptors import open_in_root
from .errors import Forbidden, InvalidRequest
from .names import shown

MAX_PATH_BYTES = 4096
MAX_NAME_BYTES = 255
DIRECTORY = os.O_PATH | os.O_DIRECTORY
"""How a directory is opened to look names up in it."""


def normalize(sandbox_path: str, cwd: str = HOME) -> str:
    """Return the absolute, normalized sandbox path, refusing anything that climbs above `/`."""
    if not isinstance(sandbox_path, str) or sandbox_path == "":
        raise InvalidRequest("path must be a non-empty string")
    if "\x00" in sandbox_path:
        raise InvalidRequest("path must not contain NUL bytes")
    try:
        encoded = os.fsencode(sandbox_path)
    except UnicodeEncodeError:
        raise InvalidRequest("path must be valid Unicode text") from None
    if len(encoded) > MAX_PATH_BYTES:
        raise InvalidRequest(f"path is longer than {MAX_PATH_BYTES} bytes")
    joined = sandbox_path if sandbox_path.startswith("/") else f"{cwd}/{sandbox_path}"
    parts: list[str] = []
    for part in joined.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise Forbidden(f"path {shown(sandbox_path)!r} leaves the sandbox")
            parts.pop()
            continue
        if len(os.fsencode(part)) > MAX_NAME_BYTES:
            raise InvalidRequest(
                f"name {shown(part)[:40]!r}... is longer than {MAX_NAME_BYTES} bytes"
            )
        parts.append(part)
    return "/" + "/".join(parts)


def split(normalized: str) -> tuple[str, str]:
    """A normalized path other than `/` as (parent directory, final name)."""
    parent, name = posixpath.split(normalized)
    return parent, name


def join(directory: str, name: str) -> str:
    """Join a sandbox directory and a child name."""
    return posixpath.join(directory, name)


class PathResolver:
    """Opens sandbox paths inside `root`, holding a descriptor of the root for its life.

    `read_only` are sandbox directories that code sees as read-only mounts of the host (the
    system directories under isolation): the API refuses to change anything under them.
    """

    def __init__(self, root: Path, read_only: Sequence[str] = ()) -> None:
        self.root = root.resolve()
        self.read_only = tuple(read_only)
        self._root_descriptor: int | None = None
        self._opening = threading.Lock()

    @property
    def root_descriptor(self) -> int:
        """A descriptor of the root, opened on first use and kept (closed with the resolver):
        a sandbox nobody touches holds none."""
        if self._root_descriptor is None:
            with self._opening:
                if self._root_descriptor is None:
                    flags = DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
                    self._root_descriptor = os.open(self.root, flags)
                    weakref.finalize(self, os.close, self._root_descriptor)
        return self._root_descriptor

    def open(self, normalized: str, flags: int, mode: int = 0) -> int:
        """A descriptor of a normalized sandbox path, links followed inside the sandbox."""
        return open_in_root(self.root_descriptor, normalized, flags, mode)

    @contextmanager
    def opened(self, normalized: str, flags: int) -> Iterator[int]:
        descriptor = self.open(normalized, flags)
        try:
            yield descriptor
        finally:
            os.close(descriptor)

    @contextmanager
    def parent(self, normalized: str) -> Iterator[tuple[int, str]]:
        """(descriptor of the parent directory, final name) of a path other than `/`; the
        final name is never followed, so an operation on it acts on a link itself."""
        directory, name = split(normalized)
        with self.opened(directory, DIRECTORY) as descriptor:
            yield descriptor, name

    def location(self, descriptor: int) -> str:
        """The sandbox path where an open directory is now."""
        real = os.readlink(f"/proc/self/fd/{descriptor}")
        if real == str(self.root):
            return "/"
        prefix = f"{self.root}/"
        if not real.startswith(prefix):
            raise Forbidden("the path resolves outside the sandbox")
        return "/" + real[len(prefix) :]

    def check_writable(self, parent: int, name: str) -> None:
        """Refuse a change to `name` in the open directory `parent` when code would see it
        under a read-only mount. Sandbox code cannot move anything into or out of those."""
        if not self.read_only:
            return
        target = join(self.location(parent), name)
        for directory in self.read_only:
            if target == directory or target.startswith(directory + "/"):
                raise Forbidden(
                    f"{shown(target)} is read-only in the sandbox ({directory} is mounted)"
                )

    def host(self, sandbox_path: str) -> Path:
        """The host path that `sandbox_path` names now, resolved inside the root: a working
        directory to start a process in (file operations work on descriptors instead)."""
        normalized = normalize(sandbox_path)
        try:
            descriptor = self.open(normalized, os.O_PATH)
        except OSError:
            return Path(str(self.root) + normalized) if normalized != "/" else self.root
        try:
            return Path(os.readlink(f"/proc/self/fd/{descriptor}"))
        finally:
            os.close(descriptor)


def make_directories(root: Path, relative: str, owner: tuple[int, int] | None = None) -> None:
    """`mkdir -p root/relative` that never follows a link: a link or file in the way, put
    there by sandbox code, is replaced, so nothing is ever created outside `root`. Each
    directory it creates is given to `owner` (host uid, gid) when one is named."""
    descriptor = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in Path(relative).parts:
            try:
                child = _open_directory(part, descriptor)
            except FileNotFoundError:
                child = _new_directory(part, descriptor, owner)
            except OSError as error:
                if error.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
                os.unlink(part, dir_fd=descriptor)
                child = _new_directory(part, descriptor, owner)
            os.close(descriptor)
            descriptor = child
    finally:
        os.close(descriptor)


def _open_directory(name: str, parent: int) -> int:
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    return os.open(name, flags, dir_fd=parent)


def _new_directory(name: str, parent: int, owner: tuple[int, int] | None) -> int:
    os.mkdir(name, dir_fd=parent)
    child = _open_directory(name, parent)
    if owner is not None:
        os.fchown(child, *owner)
    return child
