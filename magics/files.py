"""File verbs: `cat`, `write`, `put` and `get` (transfers stream from and to disk), and the
copy of a sandbox tree that `get -r` and the browser's download share."""

from __future__ import annotations

import argparse
import base64
import os
import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from IPython.core.error import UsageError

from sandbox_kernel.client import (
    FileSystemOperations,
    Progress,
    SandboxNotFoundError,
    SandboxRequestError,
)

from .constants import REMOTE_HOME, TREE_DEPTH
from .errors import LocalFileError
from .local_paths import LocalArea
from .progress import TransferProgress
from .tables import Entry, entries_of, human_size
from .verbs import Verb, remote_path, verb_parser

if TYPE_CHECKING:
    from .verb_context import VerbContext

GROUP = "Files"
PREVIEW_BYTES = 64
PAYLOAD_TOO_LARGE = 413


class TextContent(str):
    """A sandbox file's text, shown as is."""

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))


class BinaryContent(bytes):
    """A sandbox file's bytes, shown as their size and a short hex preview."""

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        lines = [f"binary file, {human_size(len(self))} ({len(self)} bytes)"]
        for start in range(0, min(len(self), PREVIEW_BYTES), 16):
            chunk = self[start : start + 16]
            text = "".join(chr(byte) if 32 <= byte < 127 else "." for byte in chunk)
            lines.append(f"{start:08x}  {chunk.hex(' '):<47}  |{text}|")
        if len(self) > PREVIEW_BYTES:
            lines.append("...")
        printer.text("\n".join(lines))


def cat(
    sbx: VerbContext, args: argparse.Namespace, cell: str | None
) -> TextContent | BinaryContent:
    try:
        reply = sbx.sandbox.file.read(remote_path(args.path))
    except SandboxRequestError as error:
        if error.status != PAYLOAD_TOO_LARGE:
            raise
        error.message += f"; copy it here with `%sbx get {args.path}` instead"
        raise
    content = str(reply.get("content", ""))
    if reply.get("encoding") == "base64":
        return BinaryContent(base64.b64decode(content))
    return TextContent(content)


def write(sbx: VerbContext, args: argparse.Namespace, cell: str | None) -> None:
    if cell is None:
        raise UsageError(
            "%sbx write takes the file's content from the cell body:\n"
            "%%sbx write PATH [--append]\n<content>"
        )
    path = remote_path(args.path)
    content, encoding = cell, "utf-8"
    if args.append:
        content, encoding = _appended(sbx, path, cell)
    reply = sbx.sandbox.file.write(path, content, encoding=encoding)
    print(f"Wrote {path} ({human_size(reply.get('size', len(cell.encode())))}).")


def _appended(sbx: VerbContext, path: str, addition: str) -> tuple[str, str]:
    """The file's current content followed by `addition`, and the encoding to send it in."""
    try:
        current = sbx.sandbox.file.read(path)
    except SandboxNotFoundError:
        return addition, "utf-8"
    if current.get("encoding") == "base64":
        data = base64.b64decode(current.get("content", "")) + addition.encode()
        return base64.b64encode(data).decode("ascii"), "base64"
    return str(current.get("content", "")) + addition, "utf-8"


def put(sbx: VerbContext, args: argparse.Namespace, cell: str | None) -> None:
    area = sbx.local_area
    local = area.check(args.local)
    if not local.exists():
        raise LocalFileError(f"no such local file or directory: {args.local}")
    if local.is_dir() and not args.recursive:
        raise UsageError(f"%sbx put: {args.local} is a directory (use put -r)")
    file_system = sbx.sandbox.file_system
    target = _remote_target(file_system, args.remote, local.resolve().name)
    skipped = 0
    if local.is_dir():
        directories, files, skipped = _local_tree(local, target, area)
    else:
        directories, files = [], [(local, target)]
    sizes = [source.stat().st_size for source, _ in files]
    with sbx.transfer(f"put {args.local}", sum(sizes)) as progress:
        for directory in directories:
            file_system.mkdir(directory, parents=True)
        offset = 0
        for (source, destination), size in zip(files, sizes, strict=True):
            file_system.upload(str(source), destination, progress=progress.file(offset))
            offset += size
        progress.finish(_summary(args.local, target, len(files), offset, progress, skipped))


def get(sbx: VerbContext, args: argparse.Namespace, cell: str | None) -> None:
    source = remote_path(args.remote)
    name = posixpath.basename(source) or "sandbox-root"
    file_system = sbx.sandbox.file_system
    if args.recursive and Entry.from_reply(file_system.stat(source)).is_dir:
        local = sbx.local_area.check(_local_target(args.local, name), args.local or name)
        _get_tree(sbx, source, local, args.remote)
        return
    local = sbx.local_area.check(_local_target(args.local, name), args.local or name)
    try:
        with sbx.transfer(f"get {args.remote}", None) as progress:
            reply = file_system.download(source, str(local), progress=progress.file(0))
            progress.finish(_summary(args.remote, local, 1, reply["size"], progress))
    except SandboxRequestError as error:
        if isinstance(error, SandboxNotFoundError) or not _is_directory(file_system, source):
            raise
        raise UsageError(f"%sbx get: {args.remote} is a directory (use get -r)") from None


def _get_tree(sbx: VerbContext, source: str, local: Path, shown: str) -> None:
    file_system = sbx.sandbox.file_system
    local.mkdir(parents=True, exist_ok=True)
    copy = tree_copy(file_system, source, local, sbx.local_area)
    for folder in copy.folders:
        folder.mkdir(parents=True, exist_ok=True)
    with sbx.transfer(f"get {shown}", copy.size) as progress:
        size = download_files(file_system, copy.files, progress)
        progress.finish(_summary(shown, local, len(copy.files), size, progress, copy.skipped))


class FileProgress(Protocol):
    """What shows a transfer of many files (`TransferProgress`, the browser's bar)."""

    def file(self, offset: int) -> Progress:
        """The `progress(done, total)` callback of a file that starts `offset` bytes in."""
        ...


@dataclass
class TreeCopy:
    """What copying a sandbox folder to a local one takes: the local folders to make, the
    (sandbox path, local path, size) of each file, and how many entries the local area
    leaves out (hidden ones, and everything inside them)."""

    folders: list[Path] = field(default_factory=list)
    files: list[tuple[str, Path, int]] = field(default_factory=list)
    skipped: int = 0

    @property
    def size(self) -> int:
        return sum(size for _, _, size in self.files)


def tree_copy(
    file_system: FileSystemOperations, source: str, local: Path, area: LocalArea
) -> TreeCopy:
    """Plan the copy of the sandbox folder `source` (the whole tree, one listing) to `local`."""
    copy, refused = TreeCopy(), set()
    for entry in entries_of(file_system.list(source, depth=TREE_DEPTH)):
        relative = posixpath.relpath(entry.path, source)
        destination = local / relative
        if relative.startswith(tuple(refused)) or not area.allows(destination):
            copy.skipped += 1
            refused.add(relative + "/")
        elif entry.is_dir:
            copy.folders.append(destination)
        else:
            copy.files.append((entry.path, destination, entry.size))
    return copy


def download_files(
    file_system: FileSystemOperations, files: list[tuple[str, Path, int]], progress: FileProgress
) -> int:
    """Download each (sandbox path, local path, size) in turn; the bytes copied."""
    offset = 0
    for source, destination, _ in files:
        report = progress.file(offset)
        offset += file_system.download(source, str(destination), progress=report)["size"]
    return offset


def _is_directory(file_system: FileSystemOperations, path: str) -> bool:
    try:
        return Entry.from_reply(file_system.stat(path)).is_dir
    except SandboxRequestError:
        return False


def _remote_target(file_system: FileSystemOperations, argument: str | None, name: str) -> str:
    """Where `put` copies to, as `cp` would: into REMOTE when it is a directory, else onto it."""
    if argument is None:
        return remote_path(name)
    path = remote_path(argument)
    if argument.endswith("/"):
        return posixpath.join(path, name)
    return posixpath.join(path, name) if _is_directory(file_system, path) else path


def _local_target(argument: str | None, name: str) -> Path:
    """Where `get` copies to, as `cp` would: into LOCAL when it is a directory, else onto it."""
    path = Path(argument).expanduser() if argument else Path.cwd() / name
    if path.is_dir():
        path = path / name
    elif argument and argument.endswith(os.sep):
        raise LocalFileError(f"no such local directory: {argument}")
    if not path.parent.is_dir():
        raise LocalFileError(f"no such local directory: {path.parent}")
    return path


def _local_tree(
    root: Path, target: str, area: LocalArea
) -> tuple[list[str], list[tuple[Path, str]], int]:
    """The sandbox directories to create, the (local, sandbox) file pairs to copy, and how
    many local entries the area keeps out (hidden ones, links that leave it)."""
    directories, files, skipped = [], [], 0
    for directory, folders, names in os.walk(root):
        kept = [folder for folder in folders if area.allows(Path(directory) / folder)]
        skipped += len(folders) - len(kept)
        folders[:] = kept
        relative = Path(directory).relative_to(root).as_posix()
        remote_directory = posixpath.normpath(posixpath.join(target, relative))
        directories.append(remote_directory)
        for name in names:
            if not area.allows(Path(directory) / name):
                skipped += 1
                continue
            files.append((Path(directory) / name, posixpath.join(remote_directory, name)))
    return directories, files, skipped


def _summary(
    source: str,
    target: object,
    count: int,
    size: int,
    progress: TransferProgress,
    skipped: int = 0,
) -> str:
    what = source if count == 1 else f"{count} files from {source}"
    summary = f"Copied {what} to {target} ({human_size(size)} in {progress.elapsed():.1f} s)."
    if skipped:
        summary += f" Left out {skipped} hidden or outside entr{'y' if skipped == 1 else 'ies'}."
    return summary


def _verbs() -> list[Verb]:
    cat_parser = verb_parser(
        "cat",
        "Show a sandbox file: text as is, binary as its size and a hex preview; returns it.",
        "%sbx cat /home/user/notes.txt",
        "text = %sbx cat notes.txt",
    )
    cat_parser.add_argument("path", metavar="PATH")
    write_parser = verb_parser(
        "write",
        "Write the cell body to a sandbox file (creating its directory).",
        "%%sbx write /home/user/data.csv\na,b\n1,2",
        "%%sbx write log.txt --append\none more line",
        cell_only=True,
    )
    write_parser.add_argument("path", metavar="PATH")
    write_parser.add_argument("--append", action="store_true", help="add to the end of the file")
    put_parser = verb_parser(
        "put",
        "Copy a local file (or with -r a directory) into the sandbox.",
        "%sbx put data.csv",
        "%sbx put results/ /home/user/inputs/ -r",
    )
    put_parser.add_argument("local", metavar="LOCAL")
    put_parser.add_argument(
        "remote", metavar="REMOTE", nargs="?", help=f"default: the same name in {REMOTE_HOME}"
    )
    put_parser.add_argument("-r", "--recursive", action="store_true", help="copy a directory")
    get_parser = verb_parser(
        "get",
        "Copy a sandbox file (or with -r a directory) to the local machine.",
        "%sbx get /home/user/model.pkl",
        "%sbx get /home/user/outputs ./outputs -r",
    )
    get_parser.add_argument("remote", metavar="REMOTE")
    get_parser.add_argument(
        "local", metavar="LOCAL", nargs="?", help="default: the same name in the current directory"
    )
    get_parser.add_argument("-r", "--recursive", action="store_true", help="copy a directory")
    return [
        Verb("cat", cat_parser, cat, remote_positions=(0,)),
        Verb(
            "write", write_parser, write, remote_positions=(0,), takes_cell=True, changes_files=True
        ),
        Verb(
            "put", put_parser, put, remote_positions=(1,), local_positions=(0,), changes_files=True
        ),
        Verb("get", get_parser, get, remote_positions=(0,), local_positions=(1,)),
    ]


VERBS = _verbs()
