"""The sandbox browser's tree as data: which folders are listed and open, what they hold and
how much of each is shown; no widgets, one listing request per folder."""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sandbox_kernel.client import CodeInterpreterSandbox, SandboxRequestError

from .tables import Entry, entries_of
from .verbs import remote_path

PAGE_SIZE = 100
"""Entries of a directory shown before its "show more" button."""


@dataclass
class Listing:
    """A directory's entries as listed once, and how many of them the tree shows."""

    entries: list[Entry]
    shown: int


@dataclass(frozen=True)
class Line:
    """One line of the tree as shown: an entry at a depth (`opened` for an open folder), or,
    without an entry, the "show more" line of `folder` with `hidden` entries not shown."""

    depth: int
    entry: Entry | None = None
    opened: bool = False
    folder: str = ""
    hidden: int = 0


class TreeModel:
    """The folder at the top (`root`), the listings of it and of the open folders, and what
    a path is; every listing is `depth=1`, made when a folder is first shown."""

    def __init__(
        self, sandbox: Callable[[], CodeInterpreterSandbox], path: str, page_size: int = PAGE_SIZE
    ) -> None:
        if page_size < 1:
            raise ValueError("page_size must be 1 or more")
        self.sandbox = sandbox
        self.page_size = page_size
        self.root = ""
        self.listings: dict[str, Listing] = {}
        self.expanded: set[str] = set()
        self.chosen = self.open(path)
        """What opening the first path selected (a file given: that file)."""

    def open(self, path: str) -> list[str]:
        """Put `path` at the top (a file: its folder) and return what to select; nothing
        changes when `path` cannot be listed."""
        path = remote_path(path, self.root or None)
        try:
            listing = self.listing(path)
        except SandboxRequestError as error:
            if error.status == 404:
                raise
            entry = Entry.from_reply(self.sandbox().file_system.stat(path))
            if entry.is_dir:
                raise
        else:
            self.root, self.listings, self.expanded = path, {path: listing}, set()
            return []
        folder = posixpath.dirname(path)
        listing = self.listing(folder)
        self.root, self.listings, self.expanded = folder, {folder: listing}, set()
        return [path]

    def listing(self, path: str) -> Listing:
        """One listing request for one folder, never deeper."""
        entries = entries_of(self.sandbox().file_system.list(path, depth=1))
        entries.sort(key=lambda entry: (not entry.is_dir, entry.name.casefold(), entry.name))
        return Listing(entries, self.page_size)

    def expand(self, path: str) -> None:
        """Open a folder, listing it the first time."""
        path = remote_path(path, self.root)
        if path not in self.listings:
            self.listings[path] = self.listing(path)
        self.expanded.add(path)

    def collapse(self, path: str) -> None:
        self.expanded.discard(remote_path(path, self.root))

    def show_more(self, folder: str) -> None:
        self.listings[folder].shown += self.page_size

    def shown_folders(self) -> list[str]:
        """The top folder and every open one."""
        return [self.root, *sorted(self.expanded)]

    def reload(self, *folders: str) -> set[str]:
        """List `folders` again (those shown: the top and open ones), keeping how much of each
        is shown, and return those listed; a folder that went away is forgotten."""
        listed: set[str] = set()
        for folder in dict.fromkeys(folders):
            if folder not in self.listings or (folder != self.root and folder not in self.expanded):
                continue
            shown = self.listings[folder].shown
            try:
                listing = self.listing(folder)
            except SandboxRequestError:
                if folder == self.root:
                    raise
                self.forget(folder)
                continue
            listing.shown = max(shown, self.page_size)
            self.listings[folder] = listing
            listed.add(folder)
        for folder in [path for path in self.listings if path not in self.expanded]:
            if folder != self.root:
                del self.listings[folder]  # listed again when it is opened again
        return listed

    def forget(self, folder: str) -> None:
        """Drop the listings of `folder` and of everything in it, and close them."""
        for path in [path for path in self.listings if inside(path, folder)]:
            del self.listings[path]
        self.expanded = {path for path in self.expanded if not inside(path, folder)}

    def entry(self, path: str) -> Entry | None:
        """The listed entry of `path`, if a listing holds it."""
        for listing in self.listings.values():
            for entry in listing.entries:
                if entry.path == path:
                    return entry
        return None

    def is_folder(self, path: str) -> bool:
        entry = self.entry(path)
        return entry is not None and entry.is_dir

    def directory(self, selected: list[str]) -> str:
        """Where uploads and new folders go: the selected folder, else the folder of the
        selection, else the top of the tree."""
        if not selected:
            return self.root
        first = selected[0]
        return first if self.is_folder(first) else posixpath.dirname(first)

    def lines(self, show_hidden: bool) -> list[Line]:
        """The tree's lines from the top folder down, open folders unfolded."""
        lines: list[Line] = []
        self._add_lines(lines, self.root, 0, show_hidden)
        return lines

    def _add_lines(self, lines: list[Line], folder: str, depth: int, show_hidden: bool) -> None:
        listing = self.listings[folder]
        entries = visible(listing.entries, show_hidden)
        for entry in entries[: listing.shown]:
            opened = entry.path in self.expanded
            lines.append(Line(depth, entry, opened=entry.is_dir and opened))
            if opened and entry.path in self.listings:
                self._add_lines(lines, entry.path, depth + 1, show_hidden)
        hidden = len(entries) - listing.shown
        if hidden > 0:
            lines.append(Line(depth, folder=folder, hidden=hidden))


def visible(entries: Iterable[Entry], show_hidden: bool) -> list[Entry]:
    """The entries the tree shows: all of them, or those not starting with a dot."""
    if show_hidden:
        return list(entries)
    return [entry for entry in entries if not entry.name.startswith(".")]


def inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")
