"""Filesystem verbs: `ls`, `stat`, `mkdir`, `mv` and `rm`."""

from __future__ import annotations

import argparse
import posixpath
from typing import TYPE_CHECKING

from IPython.core.error import UsageError

from sandbox_kernel.client import SandboxNotFoundError, SandboxRequestError

from .constants import REMOTE_HOME
from .tables import Column, Entry, Table, entries_of, format_time, human_size
from .verbs import Verb, remote_path, verb_parser

if TYPE_CHECKING:
    from .verb_context import VerbContext

GROUP = "Filesystem"


def ls(sbx: VerbContext, args: argparse.Namespace, cell: str | None) -> Table:
    path = remote_path(args.path)
    file_system = sbx.sandbox.file_system
    if args.depth < 1:
        raise UsageError("%sbx ls: --depth must be 1 or more")
    try:
        entries = entries_of(file_system.list(path, depth=args.depth))
    except SandboxRequestError as error:
        if isinstance(error, SandboxNotFoundError):
            raise
        entry = Entry.from_reply(file_system.stat(path))  # `ls FILE` shows the file, as ls does
        if entry.is_dir:
            raise
        entries, path = [entry], posixpath.dirname(path)
    if not args.all:
        entries = [entry for entry in entries if not _hidden(entry.path, path)]
    return Table(entries, _listing_columns(path, args.long), sbx.displaylimit)


def _hidden(entry_path: str, base: str) -> bool:
    return any(part.startswith(".") for part in posixpath.relpath(entry_path, base).split("/"))


def _listing_columns(base: str, long: bool) -> tuple[Column, ...]:
    def shown_name(entry: Entry) -> str:
        name = posixpath.relpath(entry.path, base) if entry.path else entry.name
        if entry.is_dir:
            return name + "/"
        if entry.symlink_target:
            return f"{name} -> {entry.symlink_target}"
        return name

    name = Column("name", shown_name)
    if not long:
        return (name,)
    return (
        Column("type", lambda entry: entry.type),
        Column("mode", lambda entry: entry.mode),
        Column("size", lambda entry: human_size(entry.size), right=True),
        Column("modified", lambda entry: format_time(entry.mtime)),
        name,
    )


def stat(sbx: VerbContext, args: argparse.Namespace, cell: str | None) -> Entry:
    return Entry.from_reply(sbx.sandbox.file_system.stat(remote_path(args.path)))


def mkdir(sbx: VerbContext, args: argparse.Namespace, cell: str | None) -> None:
    sbx.sandbox.file_system.mkdir(remote_path(args.path), parents=args.parents)


def mv(sbx: VerbContext, args: argparse.Namespace, cell: str | None) -> None:
    sbx.sandbox.file_system.move(remote_path(args.source), remote_path(args.destination))


def rm(sbx: VerbContext, args: argparse.Namespace, cell: str | None) -> None:
    path = remote_path(args.path)
    file_system = sbx.sandbox.file_system
    if not args.recursive and Entry.from_reply(file_system.stat(path)).is_dir:
        raise UsageError(f"%sbx rm: {args.path} is a directory (use rm -r)")
    file_system.remove(path)


def _verbs() -> list[Verb]:
    ls_parser = verb_parser(
        "ls",
        "List a sandbox directory; returns the entries (.name, .path, .type, .size, .mtime).",
        "%sbx ls",
        "%sbx ls /home/user -l",
        "entries = %sbx ls /tmp --depth 2 -a",
    )
    ls_parser.add_argument("path", metavar="PATH", nargs="?", help=f"default: {REMOTE_HOME}")
    ls_parser.add_argument("-l", "--long", action="store_true", help="type, mode, size, time")
    ls_parser.add_argument("-a", "--all", action="store_true", help="include hidden entries")
    ls_parser.add_argument(
        "--depth", type=int, default=1, metavar="N", help="list N levels deep (default 1)"
    )
    stat_parser = verb_parser(
        "stat",
        "Describe one sandbox path; returns its entry.",
        "%sbx stat /home/user/data.csv",
        "entry = %sbx stat data.csv",
    )
    stat_parser.add_argument("path", metavar="PATH")
    mkdir_parser = verb_parser(
        "mkdir", "Create a sandbox directory.", "%sbx mkdir -p /home/user/outputs/plots"
    )
    mkdir_parser.add_argument("path", metavar="PATH")
    mkdir_parser.add_argument(
        "-p", "--parents", action="store_true", help="create parents; an existing one is fine"
    )
    mv_parser = verb_parser(
        "mv",
        "Move or rename a sandbox path (into DST when DST is a directory).",
        "%sbx mv data.csv archive/data-1.csv",
    )
    mv_parser.add_argument("source", metavar="SRC")
    mv_parser.add_argument("destination", metavar="DST")
    rm_parser = verb_parser(
        "rm", "Remove a sandbox file, or with -r a directory.", "%sbx rm -r /home/user/scratch"
    )
    rm_parser.add_argument("path", metavar="PATH")
    rm_parser.add_argument(
        "-r", "--recursive", action="store_true", help="remove a directory and its contents"
    )
    return [
        Verb("ls", ls_parser, ls, remote_positions=(0,)),
        Verb("stat", stat_parser, stat, remote_positions=(0,)),
        Verb("mkdir", mkdir_parser, mkdir, remote_positions=(0,), changes_files=True),
        Verb("mv", mv_parser, mv, remote_positions=(0, 1), changes_files=True),
        Verb("rm", rm_parser, rm, remote_positions=(0,), changes_files=True),
    ]


VERBS = _verbs()
