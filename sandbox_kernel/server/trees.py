"""Walk and remove directory trees by descriptor, never following a link."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator

from .paths import MAX_PATH_BYTES, join

CHILD_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def children(directory: int) -> list[tuple[str, os.stat_result]]:
    """The entries of an open directory, sorted by name, each with its own (lstat) details.

    An entry removed while it is read is left out.
    """
    found = []
    with os.scandir(directory) as entries:
        for entry in entries:
            try:
                found.append((entry.name, entry.stat(follow_symlinks=False)))
            except FileNotFoundError:
                continue
    found.sort(key=lambda item: item[0])
    return found


def walk(top: int, shown: str, depth: int) -> Iterator[tuple[int, str, str, os.stat_result]]:
    """(directory descriptor, name, sandbox path, lstat) of every entry under `top`, `depth`
    levels deep, parents before children. Directories it cannot open are not descended."""
    pending = [(top, shown, depth, iter(children(top)))]
    try:
        while pending:
            directory, path, remaining, entries = pending[-1]
            entry = next(entries, None)
            if entry is None:
                pending.pop()
                if directory != top:
                    os.close(directory)
                continue
            name, info = entry
            child_path = join(path, name)
            yield directory, name, child_path, info
            too_long = len(os.fsencode(child_path)) >= MAX_PATH_BYTES
            if remaining > 1 and stat.S_ISDIR(info.st_mode) and not too_long:
                try:
                    child = os.open(name, CHILD_DIRECTORY, dir_fd=directory)
                except OSError:
                    continue
                pending.append((child, child_path, remaining - 1, iter(children(child))))
    finally:
        for directory, *_ in pending:
            if directory != top:
                os.close(directory)


def remove_tree(parent: int, name: str) -> None:
    """`rm -r` of `name` in the open directory `parent`: a link anywhere is removed itself."""
    if _unlinked(parent, name):
        return
    top = _open_child(parent, name)
    if top is None:
        return
    pending = [(top, name, parent, iter(os.listdir(top)))]
    try:
        while pending:
            directory, _, _, names = pending[-1]
            for entry in names:
                if _unlinked(directory, entry):
                    continue
                child = _open_child(directory, entry)
                if child is not None:
                    pending.append((child, entry, directory, iter(os.listdir(child))))
                    break
            else:
                directory, own_name, above, _ = pending.pop()
                os.close(directory)
                os.rmdir(own_name, dir_fd=above)
    finally:
        for directory, *_ in pending:
            os.close(directory)


def _unlinked(directory: int, name: str) -> bool:
    """Unlink anything but a directory; False when `name` is a directory."""
    try:
        os.unlink(name, dir_fd=directory)
    except IsADirectoryError:
        return False
    except FileNotFoundError:
        pass
    return True


def _open_child(directory: int, name: str) -> int | None:
    """The directory `name`, or None when it went away or was swapped for something that a
    second unlink removed."""
    try:
        return os.open(name, CHILD_DIRECTORY, dir_fd=directory)
    except FileNotFoundError:
        return None
    except OSError as error:
        if error.errno not in (errno.ELOOP, errno.ENOTDIR):
            raise
    with contextlib.suppress(FileNotFoundError):
        os.unlink(name, dir_fd=directory)
    return None
