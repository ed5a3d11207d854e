"""Map sandbox paths ("/home/user/x") to host paths under one sandbox root, safely."""

from __future__ import annotations

import errno
import os
import posixpath
from collections.abc import Sequence
from pathlib import Path

from .errors import Forbidden, InvalidRequest

HOME = "/home/user"
MAX_PATH_BYTES = 4096
MAX_NAME_BYTES = 255


def normalize(sandbox_path: str, cwd: str = HOME) -> str:
    """Return the absolute, normalized sandbox path, refusing anything that climbs above `/`."""
    if not isinstance(sandbox_path, str) or sandbox_path == "":
        raise InvalidRequest("path must be a non-empty string")
    if "\x00" in sandbox_path:
        raise InvalidRequest("path must not contain NUL bytes")
    try:
        encoded = sandbox_path.encode()
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
                raise Forbidden(f"path {sandbox_path!r} leaves the sandbox")
            parts.pop()
            continue
        if len(part.encode()) > MAX_NAME_BYTES:
            raise InvalidRequest(f"name {part[:40]!r}... is longer than {MAX_NAME_BYTES} bytes")
        parts.append(part)
    return "/" + "/".join(parts)


class PathResolver:
    """Turns sandbox paths into host paths inside `root`, never following a link out of it.

    `read_only` are sandbox directories that code sees as read-only mounts of the host (the
    system directories under isolation): the API refuses to change anything under them.
    """

    def __init__(self, root: Path, read_only: Sequence[str] = ()) -> None:
        self.root = root.resolve()
        self.read_only = tuple(read_only)

    def host(self, sandbox_path: str, *, follow_final: bool = True) -> Path:
        """The host path for `sandbox_path`; raises Forbidden when links lead outside the root."""
        normalized = normalize(sandbox_path)
        candidate = Path(str(self.root) + normalized) if normalized != "/" else self.root
        parent = candidate.parent if candidate != self.root else self.root
        self._check_inside(Path(os.path.realpath(parent)), sandbox_path)
        if follow_final and candidate.is_symlink():
            self._check_inside(Path(os.path.realpath(candidate)), sandbox_path)
        return candidate

    def check_writable(self, host_path: Path) -> None:
        """Refuse a change at `host_path` when code would see it under a read-only mount."""
        if not self.read_only or host_path == self.root:
            return
        real = Path(os.path.realpath(host_path.parent)) / host_path.name
        if real != self.root and self.root not in real.parents:
            return
        shown = self.sandbox(real)
        for directory in self.read_only:
            if shown == directory or shown.startswith(directory + "/"):
                raise Forbidden(f"{shown} is read-only in the sandbox ({directory} is mounted)")

    def sandbox(self, host_path: Path) -> str:
        """The sandbox path of a host path under the root."""
        relative = host_path.relative_to(self.root).as_posix()
        return "/" if relative == "." else "/" + relative

    def _check_inside(self, real: Path, shown: str) -> None:
        if real != self.root and self.root not in real.parents:
            raise Forbidden(f"path {shown!r} resolves outside the sandbox")


def join(directory: str, name: str) -> str:
    """Join a sandbox directory and a child name."""
    return posixpath.join(directory, name)


def make_directories(root: Path, relative: str) -> None:
    """`mkdir -p root/relative` that never follows a link: a link or file in the way, put
    there by sandbox code, is replaced, so nothing is ever created outside `root`."""
    descriptor = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in Path(relative).parts:
            try:
                child = _open_directory(part, descriptor)
            except FileNotFoundError:
                os.mkdir(part, dir_fd=descriptor)
                child = _open_directory(part, descriptor)
            except OSError as error:
                if error.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
                os.unlink(part, dir_fd=descriptor)
                os.mkdir(part, dir_fd=descriptor)
                child = _open_directory(part, descriptor)
            os.close(descriptor)
            descriptor = child
    finally:
        os.close(descriptor)


def _open_directory(name: str, parent: int) -> int:
    return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent)
