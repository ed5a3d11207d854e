"""File and filesystem operations of one sandbox, on its host root directory."""

from __future__ import annotations

import base64
import errno
import functools
import os
import shutil
import stat as stat_module
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from .errors import ApiError, Conflict, Forbidden, InvalidRequest, NotFound, PayloadTooLarge
from .paths import PathResolver, join, normalize

MAX_INLINE_READ = 64 * 1024 * 1024

# What the OS says when sandbox code left the tree in a shape a request cannot work with.
_ERRORS_BY_ERRNO: dict[int, type[ApiError]] = {
    errno.ENOENT: NotFound,
    errno.EEXIST: Conflict,
    errno.ENOTEMPTY: Conflict,
    errno.ENOTDIR: InvalidRequest,
    errno.EISDIR: InvalidRequest,
    errno.ELOOP: InvalidRequest,
    errno.ENAMETOOLONG: InvalidRequest,
    errno.EINVAL: InvalidRequest,
    errno.EACCES: Forbidden,
    errno.EPERM: Forbidden,
    errno.EROFS: Forbidden,
}

Operation = TypeVar("Operation", bound=Callable[..., Any])


def _refusals_as_errors(operation: Operation) -> Operation:
    """Report the OS refusing an operation as a protocol error naming the sandbox path.

    The OS's own message would name the host path, which is none of the client's business.
    """

    @functools.wraps(operation)
    def translated(self: FileStore, path: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return operation(self, path, *args, **kwargs)
        except OSError as error:
            error_type = _ERRORS_BY_ERRNO.get(error.errno or 0)
            if error_type is None:
                raise
            reason = (error.strerror or "failed").lower()
            verb = operation.__name__.split("_")[0]
            raise error_type(f"cannot {verb} {normalize(path)}: {reason}") from None

    return translated  # type: ignore[return-value]


def _parse_mode(mode: str | int | None, default: int) -> int:
    if mode is None or mode == "":
        return default
    try:
        value = int(mode, 8) if isinstance(mode, str) else int(mode)
    except ValueError:
        raise InvalidRequest(f"mode {mode!r} is not an octal permission such as '644'") from None
    if not 0 <= value <= 0o7777:
        raise InvalidRequest(f"mode {mode!r} is out of range")
    return value


class FileStore:
    """Reads, writes and walks the files of one sandbox through a PathResolver."""

    def __init__(self, root: Path, staging: Path, read_only: Sequence[str] = ()) -> None:
        self.paths = PathResolver(root, read_only)
        self.staging = staging

    # ---- entries

    def entry(self, host_path: Path) -> dict[str, Any]:
        """Describe one path as a protocol Entry (links are described, not followed)."""
        info = host_path.lstat()
        if stat_module.S_ISLNK(info.st_mode):
            kind = "symlink"
        elif stat_module.S_ISDIR(info.st_mode):
            kind = "dir"
        else:
            kind = "file"
        entry: dict[str, Any] = {
            "name": host_path.name or "/",
            "path": self.paths.sandbox(host_path),
            "type": kind,
            "size": info.st_size,
            "mode": f"{stat_module.S_IMODE(info.st_mode):04o}",
            "mtime": datetime.fromtimestamp(info.st_mtime, timezone.utc).isoformat(),
        }
        if kind == "symlink":
            entry["symlinkTarget"] = os.readlink(host_path)
        return entry

    @_refusals_as_errors
    def stat(self, path: str) -> dict[str, Any]:
        host = self.paths.host(path, follow_final=False)
        if not host.is_symlink() and not host.exists():
            raise NotFound(f"no such file or directory: {normalize(path)}")
        return self.entry(host)

    @_refusals_as_errors
    def list(self, path: str | None, depth: int | None) -> dict[str, Any]:
        shown = normalize(path or "/home/user")
        depth = 1 if depth is None else depth
        if depth < 1:
            raise InvalidRequest("depth must be 1 or more")
        host = self.paths.host(shown)
        if not host.exists():
            raise NotFound(f"no such directory: {shown}")
        if not host.is_dir():
            raise InvalidRequest(f"not a directory: {shown}")
        return {"path": shown, "entries": list(self._walk(host, depth))}

    def _walk(self, directory: Path, depth: int) -> Iterator[dict[str, Any]]:
        try:
            children = sorted(os.scandir(directory), key=lambda item: item.name)
        except PermissionError:
            return
        for child in children:
            child_path = Path(child.path)
            try:
                yield self.entry(child_path)
            except FileNotFoundError:
                continue
            if depth > 1 and child.is_dir(follow_symlinks=False):
                yield from self._walk(child_path, depth - 1)

    # ---- file contents

    @_refusals_as_errors
    def read(self, path: str) -> dict[str, Any]:
        host = self._existing_file(path)
        size = host.stat().st_size
        if size > MAX_INLINE_READ:
            raise PayloadTooLarge(
                f"{normalize(path)} is {size} bytes; read files over "
                f"{MAX_INLINE_READ // 2**20} MiB with /filesystem/download"
            )
        data = host.read_bytes()
        try:
            return {"path": normalize(path), "content": data.decode("utf-8"), "encoding": "utf-8"}
        except UnicodeDecodeError:
            content = base64.b64encode(data).decode("ascii")
            return {"path": normalize(path), "content": content, "encoding": "base64"}

    @_refusals_as_errors
    def write(
        self, path: str, content: str, mode: str | None, encoding: str | None, create_dir: bool
    ) -> dict[str, Any]:
        encoding = (encoding or "utf-8").lower()
        if encoding in ("utf-8", "utf8"):
            data = content.encode("utf-8")
        elif encoding == "base64":
            try:
                data = base64.b64decode(content, validate=True)
            except ValueError:
                raise InvalidRequest("content is not valid base64") from None
        else:
            raise InvalidRequest(f"encoding must be 'utf-8' or 'base64', not {encoding!r}")
        permissions = _parse_mode(mode, 0o644)
        host = self._writable_target(path, create_dir)
        with self.staged_file(host) as handle:
            handle.write(data)
        os.chmod(host, permissions)
        return {"path": normalize(path), "size": len(data)}

    def _existing_file(self, path: str) -> Path:
        host = self.paths.host(path)
        if not host.exists():
            raise NotFound(f"no such file: {normalize(path)}")
        if host.is_dir():
            raise InvalidRequest(f"is a directory: {normalize(path)}")
        if not host.is_file():
            # A FIFO would block the read forever, a device node could stream without end.
            raise InvalidRequest(f"not a regular file: {normalize(path)}")
        return host

    @_refusals_as_errors
    def download_path(self, path: str) -> Path:
        """The host file to stream for a download."""
        return self._existing_file(path)

    def _writable_target(self, path: str, create_dir: bool) -> Path:
        shown = normalize(path)
        if shown == "/":
            raise InvalidRequest("cannot write to /")
        host = self.paths.host(shown)
        if host.is_dir():
            raise InvalidRequest(f"is a directory: {shown}")
        self.paths.check_writable(host)
        parent = host.parent
        if not parent.exists():
            if not create_dir:
                raise NotFound(f"parent directory does not exist: {normalize(shown + '/..')}")
            parent.mkdir(parents=True, exist_ok=True)
            self.paths.host(shown)
        elif not parent.is_dir():
            raise InvalidRequest(f"not a directory: {normalize(shown + '/..')}")
        return host

    @_refusals_as_errors
    def upload(self, path: str, staged: Path, size: int) -> dict[str, Any]:
        """Put a completely received upload in place (parents are created, like the cloud does)."""
        target = self._writable_target(path, create_dir=True)
        os.chmod(staged, 0o644)
        os.replace(staged, target)
        return {"path": normalize(path), "size": size}

    @contextmanager
    def staged_file(self, target: Path) -> Iterator[BinaryIO]:
        """Write into a temporary file and rename it onto `target` only on success."""
        self.staging.mkdir(parents=True, exist_ok=True)
        descriptor, name = tempfile.mkstemp(dir=self.staging, prefix="upload-")
        staged = Path(name)
        try:
            with os.fdopen(descriptor, "wb") as handle:
                yield handle
            os.chmod(staged, 0o644)
            os.replace(staged, target)
        finally:
            staged.unlink(missing_ok=True)

    # ---- filesystem changes

    @_refusals_as_errors
    def mkdir(self, path: str, parents: bool, mode: str | None) -> dict[str, Any]:
        permissions = _parse_mode(mode, 0o755)
        host = self.paths.host(path)
        self.paths.check_writable(host)
        existed = host.exists()
        if existed and not (parents and host.is_dir()):
            raise Conflict(f"already exists: {normalize(path)}")
        try:
            host.mkdir(mode=permissions, parents=parents, exist_ok=parents)
        except FileNotFoundError:
            raise NotFound(f"parent directory does not exist: {normalize(path + '/..')}") from None
        except NotADirectoryError:
            raise InvalidRequest(f"a parent of {normalize(path)} is not a directory") from None
        if not existed:
            os.chmod(host, permissions)  # the exact mode asked for, whatever the umask
        return {"path": normalize(path), "created": True}

    @_refusals_as_errors
    def move(self, source: str, destination: str) -> dict[str, Any]:
        """Move like `mv`: into `destination` when it is a directory, else onto it.

        A link as the destination is followed only when it leads inside the sandbox, and the
        final rename never follows one: a link there is replaced, not moved into.
        """
        source_host = self.paths.host(source, follow_final=False)
        if not source_host.is_symlink() and not source_host.exists():
            raise NotFound(f"no such file or directory: {normalize(source)}")
        if source_host == self.paths.root:
            raise InvalidRequest("cannot move /")
        self.paths.check_writable(source_host)
        shown = normalize(destination)
        destination_host = self.paths.host(shown)
        if destination_host.is_dir():
            shown = join(shown, source_host.name)
            destination_host = self.paths.host(shown, follow_final=False)
        real_source = Path(os.path.realpath(source_host.parent)) / source_host.name
        real_destination = Path(os.path.realpath(destination_host.parent)) / destination_host.name
        if real_destination == real_source or real_source in real_destination.parents:
            raise InvalidRequest(f"cannot move {normalize(source)} into itself")
        if destination_host.is_dir() and not destination_host.is_symlink():
            raise Conflict(f"already exists: {shown}")
        self.paths.check_writable(destination_host)
        destination_host.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(source_host, destination_host)
        except OSError as error:
            if error.errno != errno.EXDEV:
                raise
            shutil.move(source_host, destination_host)
        return {"source": normalize(source), "destination": shown}

    @_refusals_as_errors
    def remove(self, path: str) -> dict[str, Any]:
        host = self.paths.host(path, follow_final=False)
        if host == self.paths.root:
            raise InvalidRequest("refusing to remove /")
        self.paths.check_writable(host)
        if host.is_symlink() or host.is_file():
            host.unlink()
        elif host.is_dir():
            shutil.rmtree(host)
        elif host.exists():
            host.unlink()
        else:
            raise NotFound(f"no such file or directory: {normalize(path)}")
        return {"path": normalize(path), "removed": True}
