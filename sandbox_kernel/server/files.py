"""File and filesystem operations of one sandbox, on descriptors inside its root.

Each operation resolves its path once (paths.py) and then works on what it opened: reads
from the descriptor, writes into a new file in the resolved parent directory and renames it
into place there, and changes names only inside directories it holds open. Sandbox code
that swaps a directory for a link meanwhile changes which of its own files is meant, never
reaches a host file.

Over 400 lines as one job: FileStore's operations share its race-safe helpers.
"""

from __future__ import annotations

import base64
import errno
import functools
import os
import secrets
import stat as stat_module
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from . import names
from .constants import HOME, MAX_INLINE_READ, MIB
from .errors import ApiError, Conflict, Forbidden, InvalidRequest, NotFound, PayloadTooLarge
from .paths import DIRECTORY, PathResolver, join, normalize, split
from .trees import CHILD_DIRECTORY, remove_tree, walk

NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
PARENT_MODE = 0o755

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
    errno.EXDEV: InvalidRequest,
    errno.EAGAIN: Conflict,
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
            shown = names.shown(normalize(path or HOME))
            raise error_type(f"cannot {verb} {shown}: {reason}") from None

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


def _kind(info: os.stat_result) -> str:
    if stat_module.S_ISLNK(info.st_mode):
        return "symlink"
    return "dir" if stat_module.S_ISDIR(info.st_mode) else "file"


class FileStore:
    """Reads, writes and walks the files of one sandbox through a PathResolver.

    `owner` (host uid, gid), when given, is made the owner of every file and directory the
    API creates, so that sandbox code running as that uid can change them.
    """

    def __init__(
        self,
        root: Path,
        staging: Path,
        read_only: Sequence[str] = (),
        *,
        owner: tuple[int, int] | None = None,
    ) -> None:
        self.paths = PathResolver(root, read_only)
        self.staging = staging
        self.owner = owner

    # ---- entries

    @staticmethod
    def entry(path: str, info: os.stat_result, target: str | None = None) -> dict[str, Any]:
        """Describe one path as a protocol Entry (links are described, not followed)."""
        entry: dict[str, Any] = {
            **names.field("name", posixpath_name(path)),
            **names.field("path", path),
            "type": _kind(info),
            "size": info.st_size,
            "mode": f"{stat_module.S_IMODE(info.st_mode):04o}",
            "mtime": datetime.fromtimestamp(info.st_mtime, timezone.utc).isoformat(),
        }
        if target is not None:
            entry.update(names.field("symlinkTarget", target))
        return entry

    @_refusals_as_errors
    def stat(self, path: str) -> dict[str, Any]:
        shown = normalize(path)
        if shown == "/":
            with self.paths.opened(shown, DIRECTORY) as root:
                return self.entry(shown, os.fstat(root))
        try:
            with self.paths.parent(shown) as (parent, name):
                info = os.lstat(name, dir_fd=parent)
                target = _link_target(parent, name, info)
        except FileNotFoundError:
            raise NotFound(f"no such file or directory: {names.shown(shown)}") from None
        return self.entry(shown, info, target)

    @_refusals_as_errors
    def list(self, path: str | None, depth: int | None) -> dict[str, Any]:
        shown = normalize(path or HOME)
        depth = 1 if depth is None else depth
        if depth < 1:
            raise InvalidRequest("depth must be 1 or more")
        try:
            directory = self.paths.open(shown, os.O_RDONLY | os.O_DIRECTORY)
        except FileNotFoundError:
            raise NotFound(f"no such directory: {names.shown(shown)}") from None
        except NotADirectoryError:
            raise InvalidRequest(f"not a directory: {names.shown(shown)}") from None
        try:
            entries = [
                self.entry(child_path, info, _link_target(parent, name, info))
                for parent, name, child_path, info in walk(directory, shown, depth)
            ]
        finally:
            os.close(directory)
        return {**names.field("path", shown), "entries": entries}

    # ---- file contents

    @_refusals_as_errors
    def read(self, path: str) -> dict[str, Any]:
        descriptor, size = self._open_file(path)
        with open(descriptor, "rb") as handle:
            if size > MAX_INLINE_READ:
                raise PayloadTooLarge(
                    f"{names.shown(normalize(path))} is {size} bytes; read files over "
                    f"{MAX_INLINE_READ // MIB} MiB with /filesystem/download"
                )
            data = handle.read(MAX_INLINE_READ)
        shown = names.field("path", normalize(path))
        try:
            return {**shown, "content": data.decode("utf-8"), "encoding": "utf-8"}
        except UnicodeDecodeError:
            content = base64.b64encode(data).decode("ascii")
            return {**shown, "content": content, "encoding": "base64"}

    @_refusals_as_errors
    def download(self, path: str) -> tuple[int, int]:
        """An open descriptor of the file to stream and its size; the caller closes it."""
        return self._open_file(path)

    def _open_file(self, path: str) -> tuple[int, int]:
        """A regular file opened for reading: links are followed inside the sandbox, and
        nothing but a regular file is opened (a FIFO would block, a device stream forever)."""
        shown = normalize(path)
        try:
            handle = self.paths.open(shown, os.O_PATH)
        except FileNotFoundError:
            raise NotFound(f"no such file: {names.shown(shown)}") from None
        try:
            info = os.fstat(handle)
            if stat_module.S_ISDIR(info.st_mode):
                raise InvalidRequest(f"is a directory: {names.shown(shown)}")
            if not stat_module.S_ISREG(info.st_mode):
                raise InvalidRequest(f"not a regular file: {names.shown(shown)}")
            # Reopening the very file this descriptor holds: no name is looked up again.
            return os.open(f"/proc/self/fd/{handle}", os.O_RDONLY | os.O_CLOEXEC), info.st_size
        finally:
            os.close(handle)

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
        with self._target(path, create_dir) as (parent, name):
            staged = f".sandbox-kernel-{secrets.token_hex(8)}.part"
            descriptor = os.open(staged, NEW_FILE, 0o600, dir_fd=parent)
            try:
                with open(descriptor, "wb") as handle:
                    handle.write(data)
                    self._give(handle.fileno(), permissions)
                os.rename(staged, name, src_dir_fd=parent, dst_dir_fd=parent)
            except BaseException:
                _unlink_quietly(parent, staged)
                raise
        return {**names.field("path", normalize(path)), "size": len(data)}

    @_refusals_as_errors
    def upload(self, path: str, staged: Path, size: int) -> dict[str, Any]:
        """Put a completely received upload (a file in the private staging directory) in
        place; parents are created, as the cloud does."""
        with self._target(path, create_dir=True) as (parent, name):
            descriptor = os.open(staged, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                self._give(descriptor, 0o644)
            finally:
                os.close(descriptor)
            os.rename(staged, name, dst_dir_fd=parent)
        return {**names.field("path", normalize(path)), "size": size}

    @contextmanager
    def _target(self, path: str, create_dir: bool) -> Iterator[tuple[int, str]]:
        """(open parent directory, name) of a file about to be written; refuses `/`, a
        directory and a read-only place."""
        shown = normalize(path)
        if shown == "/":
            raise InvalidRequest("cannot write to /")
        directory, name = split(shown)
        parent = self._parent_directory(directory, create=create_dir)
        try:
            self.paths.check_writable(parent, name)
            if self._resolves_to_directory(shown):
                raise InvalidRequest(f"is a directory: {names.shown(shown)}")
            yield parent, name
        finally:
            os.close(parent)

    def _parent_directory(self, directory: str, *, create: bool) -> int:
        try:
            return self.paths.open(directory, DIRECTORY)
        except FileNotFoundError:
            if not create:
                raise NotFound(
                    f"parent directory does not exist: {names.shown(directory)}"
                ) from None
        except NotADirectoryError:
            raise InvalidRequest(f"not a directory: {names.shown(directory)}") from None
        return self._make_tree(directory)

    def _make_tree(self, directory: str) -> int:
        """`mkdir -p` inside the sandbox (links followed inside it, as code would); an open
        descriptor of the directory."""
        current = self.paths.open("/", DIRECTORY)
        location = "/"
        try:
            for part in directory.strip("/").split("/") if directory != "/" else ():
                location = join(location, part)
                try:
                    child = self.paths.open(location, DIRECTORY)
                except FileNotFoundError:
                    child = self._new_directory(current, part, PARENT_MODE, exact=False)
                    if child is None:
                        child = self.paths.open(location, DIRECTORY)
                os.close(current)
                current = child
        except BaseException:
            os.close(current)
            raise
        return current

    def _new_directory(self, parent: int, name: str, mode: int, *, exact: bool) -> int | None:
        """Make `name` in the open directory `parent` and own it; None when it exists."""
        self.paths.check_writable(parent, name)
        try:
            os.mkdir(name, mode, dir_fd=parent)
        except FileExistsError:
            return None
        descriptor = os.open(name, CHILD_DIRECTORY, dir_fd=parent)
        try:
            self._give(descriptor, mode if exact else None)
        except BaseException:
            os.close(descriptor)
            raise
        return descriptor

    def _give(self, descriptor: int, mode: int | None) -> None:
        """Set the exact mode (whatever the umask) and the owner of something just made."""
        if mode is not None:
            os.fchmod(descriptor, mode)
        if self.owner is not None:
            os.fchown(descriptor, *self.owner)

    # ---- filesystem changes

    @_refusals_as_errors
    def mkdir(self, path: str, parents: bool, mode: str | None) -> dict[str, Any]:
        permissions = _parse_mode(mode, 0o755)
        shown = normalize(path)
        created = {**names.field("path", shown), "created": True}
        if shown == "/":
            if parents:
                return created
            raise Conflict("already exists: /")
        directory, name = split(shown)
        try:
            parent = self._parent_directory(directory, create=parents)
        except InvalidRequest:
            raise InvalidRequest(f"a parent of {names.shown(shown)} is not a directory") from None
        try:
            made = self._new_directory(parent, name, permissions, exact=True)
        finally:
            os.close(parent)
        if made is not None:
            os.close(made)
            return created
        if parents and self._resolves_to_directory(shown):
            return created
        raise Conflict(f"already exists: {names.shown(shown)}")

    def _resolves_to_directory(self, shown: str) -> bool:
        try:
            os.close(self.paths.open(shown, DIRECTORY))
        except OSError:
            return False
        return True

    @_refusals_as_errors
    def move(self, source: str, destination: str) -> dict[str, Any]:
        """Move like `mv`: into `destination` when it is a directory, else onto it.

        Neither end's final name is followed: a link as the source is moved itself, a link
        as the destination is replaced. Missing parents of the destination are created.
        """
        source_shown = normalize(source)
        if source_shown == "/":
            raise InvalidRequest("cannot move /")
        shown = normalize(destination)
        with self.paths.parent(source_shown) as (source_parent, source_name):
            if not _exists(source_parent, source_name):
                raise NotFound(f"no such file or directory: {names.shown(source_shown)}")
            self.paths.check_writable(source_parent, source_name)
            try:
                parent = self.paths.open(shown, DIRECTORY)
                name = source_name
                shown = join(shown, name)
            except (FileNotFoundError, NotADirectoryError):
                directory, name = split(shown)
                parent = self._parent_directory(directory, create=True)
            try:
                if _same_entry(source_parent, source_name, parent, name):
                    raise InvalidRequest(f"cannot move {names.shown(source_shown)} into itself")
                if _is_directory(parent, name):
                    raise Conflict(f"already exists: {names.shown(shown)}")
                self.paths.check_writable(parent, name)
                try:
                    os.rename(source_name, name, src_dir_fd=source_parent, dst_dir_fd=parent)
                except OSError as error:
                    if error.errno == errno.EINVAL:
                        message = f"cannot move {names.shown(source_shown)} into itself"
                        raise InvalidRequest(message) from None
                    raise
            finally:
                os.close(parent)
        return {
            **names.field("source", source_shown),
            **names.field("destination", shown),
        }

    @_refusals_as_errors
    def remove(self, path: str) -> dict[str, Any]:
        shown = normalize(path)
        if shown == "/":
            raise InvalidRequest("refusing to remove /")
        try:
            with self.paths.parent(shown) as (parent, name):
                self.paths.check_writable(parent, name)
                if not _exists(parent, name):
                    raise FileNotFoundError(errno.ENOENT, "no such file")
                remove_tree(parent, name)
        except FileNotFoundError:
            raise NotFound(f"no such file or directory: {names.shown(shown)}") from None
        return {**names.field("path", shown), "removed": True}


def posixpath_name(path: str) -> str:
    """The final name of a normalized sandbox path (`/` for the root)."""
    return path.rsplit("/", 1)[-1] or "/"


def _link_target(parent: int, name: str, info: os.stat_result) -> str | None:
    if not stat_module.S_ISLNK(info.st_mode):
        return None
    try:
        return os.readlink(name, dir_fd=parent)
    except OSError:
        return ""


def _exists(parent: int, name: str) -> bool:
    try:
        os.lstat(name, dir_fd=parent)
    except FileNotFoundError:
        return False
    return True


def _is_directory(parent: int, name: str) -> bool:
    """True when `name` in `parent` is a directory itself (not a link to one)."""
    try:
        return stat_module.S_ISDIR(os.lstat(name, dir_fd=parent).st_mode)
    except FileNotFoundError:
        return False


def _same_entry(parent: int, name: str, other_parent: int, other_name: str) -> bool:
    if name != other_name:
        return False
    first, second = os.fstat(parent), os.fstat(other_parent)
    return (first.st_dev, first.st_ino) == (second.st_dev, second.st_ino)


def _unlink_quietly(parent: int, name: str) -> None:
    with suppress(OSError):
        os.unlink(name, dir_fd=parent)
