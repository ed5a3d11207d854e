"""`SandboxBrowser`: the sandbox's files as a lazily expanding tree made of core ipywidgets, with
a preview pane and actions (download, upload, new folder, rename, delete).

Every action runs in the kernel through the sync client; its result or error is shown in the
widget, which stays usable whatever happens.
"""

from __future__ import annotations

import html
import logging
import posixpath
import re
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ipywidgets as widgets
from traitlets import List, Unicode, observe, validate

from sandbox_kernel.client import CodeInterpreterSandbox, SandboxError, SandboxRequestError

from .constants import REMOTE_HOME
from .local_paths import LocalArea
from .preview import preview_of, preview_widgets, title
from .tables import Column, Entry, Table, entries_of, format_time, human_size
from .verbs import remote_path

log = logging.getLogger(__name__)

PAGE_SIZE = 100
"""Entries of a directory shown before its "show more" button."""
DOWNLOAD_DEPTH = 64
"""How deep a selected directory is listed to download it."""
NAME_WIDTH = 260
INDENT = 18
"""Pixels: the name column, and how far each level of the tree is indented."""
SELECTED_COLOR = "var(--jp-brand-color3, #c3e1f7)"
ERROR_COLOR = "var(--jp-error-color1, #d32f2f)"
SHORT_TIME = "%Y-%m-%d %H:%M"
REQUEST_PREFIX = re.compile(r"^[A-Z]+ /\S*: ")
"""`GET /sandboxes/sbx-1/filesystem: `, which starts the client's error messages."""
DETAIL_COLUMNS = (("3.5em", "left"), ("5.5em", "right"), ("8.5em", "left"))
"""Width and alignment of a tree line's type, size and modification time."""

SandboxSource = CodeInterpreterSandbox | Callable[[], CodeInterpreterSandbox] | None

LISTING_COLUMNS = (
    Column("type", lambda entry: entry.type),
    Column("size", lambda entry: "" if entry.is_dir else human_size(entry.size), right=True),
    Column("modified", lambda entry: format_time(entry.mtime)),
    Column("name", lambda entry: entry.name + "/" if entry.is_dir else entry.name),
)


@dataclass
class _Listing:
    """A directory's entries as listed once, and how many of them the tree shows."""

    entries: list[Entry]
    shown: int


@dataclass
class _Row:
    """One entry's line in the tree: its name button and its details."""

    entry: Entry
    box: widgets.HBox
    name: widgets.Button
    details: widgets.HTML


class SandboxBrowser(widgets.VBox):
    """A browser of the sandbox's files: `SandboxBrowser("/home/user")`.

    `sandbox` is a `CodeInterpreterSandbox` (or a function returning one); by default the one
    the `%sbx` magics use. A folder shows `page_size` entries, then a "show more" button;
    `show_hidden` shows dot files; `download_to` is the local folder downloads go to.

    `selected` holds the selected paths and can be observed: `browser.observe(callback,
    "selected")`. Clicking a folder opens or closes it (one listing request the first time);
    clicking a file selects it and previews it.
    """

    selected = List(Unicode(), help="The selected sandbox paths, absolute.")

    def __init__(
        self,
        path: str = REMOTE_HOME,
        *,
        sandbox: SandboxSource = None,
        page_size: int = PAGE_SIZE,
        show_hidden: bool = False,
        download_to: str = ".",
        local_area: LocalArea | None = None,
        **kwargs: Any,
    ) -> None:
        if page_size < 1:
            raise ValueError("page_size must be 1 or more")
        self._sandbox = _sandbox_source(sandbox)
        self._local_area = local_area or LocalArea(None)
        self.page_size = page_size
        root, listing, chosen = self._opened(remote_path(path))
        self._root = root
        self._listings: dict[str, _Listing] = {root: listing}
        self._expanded: set[str] = set()
        self._rows: dict[str, _Row] = {}
        self._more: dict[str, widgets.Button] = {}
        self._confirm_action: Callable[[], str] | None = None
        self._build(show_hidden, download_to)
        super().__init__(children=self._parts(), **kwargs)
        self._render()
        self.selected = chosen

    # ---- public

    @property
    def path(self) -> str:
        """The directory at the top of the tree."""
        return self._root

    @property
    def directory(self) -> str:
        """Where uploads and new folders go: the selected folder, else the folder of the
        selection, else the top of the tree."""
        if not self.selected:
            return self._root
        first = self.selected[0]
        return first if self._is_folder(first) else posixpath.dirname(first)

    def go_to(self, path: str) -> None:
        """Show `path` at the top of the tree (a file: its folder, with the file selected)."""
        root, listing, chosen = self._opened(remote_path(path, self._root))
        old_rows, old_buttons = list(self._rows.values()), list(self._more.values())
        self._rows, self._more, self._expanded = {}, {}, set()
        self._root, self._listings = root, {root: listing}
        self.path_bar.value = root
        self._render()
        _close(old_rows, old_buttons)
        self.selected = chosen

    def expand(self, path: str) -> None:
        """Open a folder of the tree, listing it the first time."""
        path = remote_path(path, self._root)
        if path not in self._listings:
            self._listings[path] = self._listing(path)
        self._expanded.add(path)
        self._render()

    def collapse(self, path: str) -> None:
        """Close a folder of the tree."""
        self._expanded.discard(remote_path(path, self._root))
        self._render()

    def refresh(self) -> None:
        """List the top folder and every open folder again."""
        self._reload(*[self._root, *sorted(self._expanded)])

    # ---- the parts

    def _build(self, show_hidden: bool, download_to: str) -> None:
        button = widgets.Layout(width="auto")
        self.up_button = widgets.Button(icon="arrow-up", tooltip="Parent folder", layout=button)
        self.path_bar = widgets.Text(
            value=self._root, continuous_update=False, layout=widgets.Layout(flex="1 1 auto")
        )
        self.refresh_button = widgets.Button(
            description="Refresh",
            icon="refresh",
            tooltip="List the open folders again",
            layout=button,
        )
        self.hidden_toggle = widgets.Checkbox(
            value=show_hidden, description="hidden files", indent=False, layout=button
        )
        self.several_toggle = widgets.Checkbox(
            value=False, description="select several", indent=False, layout=button
        )
        self.up_button.on_click(lambda _: self._guarded(self._go_up))
        self.path_bar.observe(lambda _: self._guarded(self._go_to_path_bar), "value")
        self.refresh_button.on_click(lambda _: self._guarded(self._refreshed))
        self.hidden_toggle.observe(lambda _: self._render(), "value")

        self.header = widgets.HTML(_details_html(("type", "size", "modified"), name="name"))
        self.tree = widgets.VBox(
            layout=widgets.Layout(max_height="420px", overflow="auto", min_height="120px")
        )
        self.preview = widgets.VBox(
            [widgets.HTML("<i>Click a file to preview it.</i>")],
            layout=widgets.Layout(
                flex="1 1 40%", min_width="240px", padding="0 0 0 12px", overflow="hidden"
            ),
        )

        self.new_folder_button = widgets.Button(
            description="New folder", icon="folder", layout=button
        )
        self.upload = widgets.FileUpload(multiple=True, description="Upload", layout=button)
        self.rename_button = widgets.Button(description="Rename", icon="pencil", layout=button)
        self.delete_button = widgets.Button(description="Delete", icon="trash", layout=button)
        self.download_button = widgets.Button(
            description="Download", icon="download", layout=button
        )
        self.download_to = widgets.Text(
            value=download_to,
            description="to",
            tooltip="Local folder the selection is copied into",
            layout=widgets.Layout(width="200px"),
            style={"description_width": "initial"},
        )
        self.target = widgets.HTML()
        self.new_folder_button.on_click(lambda _: self._guarded(self._ask_new_folder))
        self.upload.observe(lambda _: self._guarded(self._uploaded), "value")
        self.rename_button.on_click(lambda _: self._guarded(self._ask_rename))
        self.delete_button.on_click(lambda _: self._guarded(self._ask_delete))
        self.download_button.on_click(lambda _: self._guarded(self._downloaded))

        self.question = widgets.HTML()
        self.answer = widgets.Text(layout=widgets.Layout(width="240px"))
        self.confirm_button = widgets.Button(button_style="primary", layout=button)
        self.cancel_button = widgets.Button(description="Cancel", layout=button)
        self.confirm_button.on_click(lambda _: self._guarded(self._confirmed))
        self.cancel_button.on_click(lambda _: self._guarded(self._cancelled))
        self.confirmation = widgets.HBox(
            [self.question, self.answer, self.confirm_button, self.cancel_button],
            layout=widgets.Layout(display="none", align_items="center"),
        )

        self.progress = widgets.FloatProgress(value=0, min=0, max=1)
        self.progress_label = widgets.Label()
        self.progress_box = widgets.HBox(
            [self.progress, self.progress_label], layout=widgets.Layout(display="none")
        )
        self.status = widgets.HTML()

        self._name_layouts: dict[int, widgets.Layout] = {}
        self._row_layout = widgets.Layout(align_items="center", min_height="28px")
        self._details_layout = widgets.Layout(margin="0 0 0 8px")
        self._plain_style = widgets.ButtonStyle(button_color="transparent")
        self._selected_style = widgets.ButtonStyle(button_color=SELECTED_COLOR)

    def _parts(self) -> list[widgets.Widget]:
        toolbar = widgets.HBox(
            [
                self.up_button,
                self.path_bar,
                self.refresh_button,
                self.hidden_toggle,
                self.several_toggle,
            ],
            layout=widgets.Layout(align_items="center"),
        )
        tree = widgets.VBox(
            [self.header, self.tree], layout=widgets.Layout(flex="1 1 60%", overflow="hidden")
        )
        body = widgets.HBox(
            [tree, self.preview],
            layout=widgets.Layout(border="1px solid var(--jp-border-color2, #ddd)", padding="4px"),
        )
        actions = widgets.HBox(
            [
                self.target,
                self.new_folder_button,
                self.upload,
                self.rename_button,
                self.delete_button,
                self.download_button,
                self.download_to,
            ],
            layout=widgets.Layout(align_items="center", flex_flow="row wrap"),
        )
        return [toolbar, body, actions, self.confirmation, self.progress_box, self.status]

    # ---- the tree

    def _opened(self, path: str) -> tuple[str, _Listing, list[str]]:
        """The folder to show for `path`, its listing, and what to select (a file given)."""
        try:
            return path, self._listing(path), []
        except SandboxRequestError as error:
            if error.status == 404:
                raise
            entry = Entry.from_reply(self._sandbox().file_system.stat(path))
            if entry.is_dir:
                raise
        folder = posixpath.dirname(path)
        return folder, self._listing(folder), [path]

    def _listing(self, path: str) -> _Listing:
        """One listing request for one folder, never deeper."""
        entries = entries_of(self._sandbox().file_system.list(path, depth=1))
        entries.sort(key=lambda entry: (not entry.is_dir, entry.name.casefold(), entry.name))
        return _Listing(entries, self.page_size)

    def _reload(self, *folders: str) -> None:
        """List `folders` again (those shown: the top and open ones), keeping what is shown."""
        listed: set[str] = set()
        for folder in dict.fromkeys(folders):
            if folder not in self._listings or (
                folder != self._root and folder not in self._expanded
            ):
                continue
            shown = self._listings[folder].shown
            try:
                listing = self._listing(folder)
            except SandboxRequestError:
                if folder == self._root:
                    raise
                self._forget(folder)
                continue
            listing.shown = max(shown, self.page_size)
            self._listings[folder] = listing
            listed.add(folder)
        for folder in [path for path in self._listings if path not in self._expanded]:
            if folder != self._root:
                del self._listings[folder]  # listed again when it is opened again
        gone = [path for path in self._rows if self._entry(path) is None]
        old_rows = [self._rows.pop(path) for path in gone]
        self._render()
        _close(old_rows, [])
        self.selected = [
            path
            for path in self.selected
            if posixpath.dirname(path) not in listed or self._entry(path) is not None
        ]

    def _forget(self, folder: str) -> None:
        for path in [path for path in self._listings if _inside(path, folder)]:
            del self._listings[path]
        self._expanded = {path for path in self._expanded if not _inside(path, folder)}

    def _visible(self, entries: Iterable[Entry]) -> list[Entry]:
        if self.hidden_toggle.value:
            return list(entries)
        return [entry for entry in entries if not entry.name.startswith(".")]

    def _render(self) -> None:
        shown: list[widgets.Widget] = []
        self._add_rows(shown, self._root, 0)
        if not shown:
            shown.append(widgets.HTML("<i>(empty folder)</i>"))
        self.tree.children = shown
        self._show_target()

    def _add_rows(self, shown: list[widgets.Widget], folder: str, depth: int) -> None:
        listing = self._listings[folder]
        entries = self._visible(listing.entries)
        for entry in entries[: listing.shown]:
            shown.append(self._row(entry, depth).box)
            if entry.path in self._expanded and entry.path in self._listings:
                self._add_rows(shown, entry.path, depth + 1)
        hidden = len(entries) - listing.shown
        if hidden > 0:
            shown.append(self._more_button(folder, depth, hidden))

    def _row(self, entry: Entry, depth: int) -> _Row:
        """The entry's line, made on first use and brought up to date after that."""
        if entry.is_dir:
            opened = entry.path in self._expanded
            label = f"{'▾' if opened else '▸'} {entry.name}/"
            icon = "folder-open" if opened else "folder"
        else:
            label, icon = entry.name, "file"
        style = self._selected_style if entry.path in self.selected else self._plain_style
        size = "" if entry.is_dir else human_size(entry.size)
        modified = "" if entry.mtime is None else entry.mtime.astimezone().strftime(SHORT_TIME)
        details = _details_html((entry.type, size, modified))
        row = self._rows.get(entry.path)
        if row is None:
            name = widgets.Button(
                description=label,
                icon=icon,
                tooltip=entry.path,
                layout=self._name_layout(depth),
                style=style,
            )
            name.on_click(lambda _, path=entry.path: self._guarded(lambda: self._clicked(path)))
            html_details = widgets.HTML(details, layout=self._details_layout)
            box = widgets.HBox([name, html_details], layout=self._row_layout)
            row = self._rows[entry.path] = _Row(entry, box, name, html_details)
            return row
        row.entry = entry
        row.name.description, row.name.icon, row.name.style = label, icon, style
        row.details.value = details
        return row

    def _more_button(self, folder: str, depth: int, hidden: int) -> widgets.Button:
        button = self._more.get(folder)
        if button is None:
            button = widgets.Button(layout=self._name_layout(depth), icon="ellipsis-h")
            button.on_click(lambda _: self._guarded(lambda: self._show_more(folder)))
            self._more[folder] = button
        count = min(hidden, self.page_size)
        button.description = f"show {count} more ({hidden} not shown)"
        return button

    def _show_more(self, folder: str) -> None:
        self._listings[folder].shown += self.page_size
        self._render()

    def _name_layout(self, depth: int) -> widgets.Layout:
        layout = self._name_layouts.get(depth)
        if layout is None:
            layout = self._name_layouts[depth] = widgets.Layout(
                width=f"{NAME_WIDTH}px",
                flex="0 0 auto",
                padding=f"0 4px 0 {4 + depth * INDENT}px",
                display="flex",
                justify_content="flex-start",
                align_items="center",
            )
        return layout

    def _entry(self, path: str) -> Entry | None:
        for listing in self._listings.values():
            for entry in listing.entries:
                if entry.path == path:
                    return entry
        return None

    def _is_folder(self, path: str) -> bool:
        entry = self._entry(path)
        return entry is not None and entry.is_dir

    def _clicked(self, path: str) -> None:
        if self._is_folder(path):
            if path in self._expanded:
                self.collapse(path)
            else:
                self.expand(path)
        if self.several_toggle.value:
            others = [chosen for chosen in self.selected if chosen != path]
            self.selected = others if path in self.selected else [*self.selected, path]
        else:
            self.selected = [path]

    @validate("selected")
    def _absolute(self, proposal: Any) -> list[str]:
        return list(dict.fromkeys(remote_path(path, self._root) for path in proposal["value"]))

    @observe("selected")
    def _selection_changed(self, change: Any) -> None:
        for path in {*change["old"], *change["new"]}:
            row = self._rows.get(path)
            if row is not None:
                chosen = path in change["new"]
                row.name.style = self._selected_style if chosen else self._plain_style
        self._show_target()
        self._guarded(self._show_preview)

    def _show_target(self) -> None:
        self.target.value = f"In <code>{html.escape(self.directory)}</code>:"

    def _show_preview(self) -> None:
        self.preview.children = [widgets.HTML("<i>Loading…</i>")]
        entries = [self._entry(path) for path in self.selected]
        if len(entries) == 1 and entries[0] is not None and not entries[0].is_dir:
            try:
                shown = preview_widgets(preview_of(self._sandbox(), entries[0]))
            except Exception:
                self.preview.children = [title(entries[0])]
                raise
        elif len(entries) == 1 and entries[0] is not None:
            listing = self._listings.get(entries[0].path)
            count = "" if listing is None else f"{len(listing.entries)} entries"
            shown = [title(entries[0], count)]
        elif entries:
            size = sum(entry.size for entry in entries if entry is not None and not entry.is_dir)
            shown = [widgets.HTML(f"<b>{len(entries)} selected</b> ({human_size(size)} in files)")]
        else:
            shown = [widgets.HTML("<i>Click a file to preview it.</i>")]
        self.preview.children = shown

    # ---- navigation

    def _go_up(self) -> str | None:
        if self._root != "/":
            self.go_to(posixpath.dirname(self._root))
        return None

    def _go_to_path_bar(self) -> str | None:
        wanted = self.path_bar.value.strip()
        if remote_path(wanted, self._root) == self._root:
            return None
        try:
            self.go_to(wanted)
        except Exception:
            self.path_bar.value = self._root
            raise
        return None

    def _refreshed(self) -> str:
        self.refresh()
        return f"Listed {self._root} again."

    # ---- actions

    def _ask(
        self,
        question: str,
        confirm: str,
        action: Callable[[], str],
        answer: str | None = None,
        danger: bool = False,
    ) -> None:
        """Show a question (with a text field when `answer` is given) and a confirm and a
        cancel button; `action` runs on confirm."""
        self._confirm_action = action
        self.question.value = question
        self.answer.value = answer or ""
        self.answer.layout.display = "none" if answer is None else None
        self.confirm_button.description = confirm
        self.confirm_button.button_style = "danger" if danger else "primary"
        self.confirmation.layout.display = None

    def _confirmed(self) -> str:
        action, self._confirm_action = self._confirm_action, None
        self.confirmation.layout.display = "none"
        return action() if action is not None else ""

    def _cancelled(self) -> str:
        self._confirm_action = None
        self.confirmation.layout.display = "none"
        return "Cancelled."

    def _ask_new_folder(self) -> None:
        folder = self.directory
        self._ask(
            f"New folder in <code>{html.escape(folder)}</code>:",
            "Create",
            lambda: self._make_folder(folder),
            "",
        )

    def _make_folder(self, folder: str) -> str:
        name = self.answer.value.strip()
        if not name:
            raise ValueError("a new folder needs a name")
        path = remote_path(name, folder)
        self._sandbox().file_system.mkdir(path, parents=False)
        self._reload(posixpath.dirname(path))
        return f"Created {path}."

    def _ask_rename(self) -> None:
        if len(self.selected) != 1:
            raise ValueError("select one file or folder to rename")
        source = self.selected[0]
        self._ask(
            f"Rename <code>{html.escape(source)}</code> to:",
            "Rename",
            lambda: self._renamed(source),
            posixpath.basename(source),
        )

    def _renamed(self, source: str) -> str:
        name = self.answer.value.strip()
        if not name:
            raise ValueError("the new name is empty")
        destination = remote_path(name, posixpath.dirname(source))
        self._sandbox().file_system.move(source, destination)
        self._forget(source)
        self._reload(posixpath.dirname(source), posixpath.dirname(destination))
        self.selected = [destination]
        return f"Renamed {source} to {destination}."

    def _ask_delete(self) -> None:
        paths = list(self.selected)
        if not paths:
            raise ValueError("select the files or folders to delete")
        names = ", ".join(html.escape(posixpath.basename(path)) for path in paths)
        what = f"<code>{names}</code>" if len(paths) == 1 else f"{len(paths)} items ({names})"
        inside = " with everything in it" if any(map(self._is_folder, paths)) else ""
        self._ask(
            f"Delete {what}{inside}? This cannot be undone.",
            "Delete",
            lambda: self._deleted(paths),
            danger=True,
        )

    def _deleted(self, paths: list[str]) -> str:
        file_system = self._sandbox().file_system
        deleted = 0
        try:
            for path in paths:
                file_system.remove(path)
                deleted += 1
        except SandboxError as error:
            raise SandboxError(
                f"could not delete {paths[deleted]} ({deleted} of {len(paths)} deleted): "
                f"{_reason(error)}"
            ) from error
        finally:
            for removed in paths:
                self._forget(removed)
            self._reload(*[posixpath.dirname(removed) for removed in paths])
        shown = paths[0] if len(paths) == 1 else f"{len(paths)} items"
        return f"Deleted {shown}."

    def _uploaded(self) -> str | None:
        files = list(self.upload.value)
        if not files:
            return None
        folder = self.directory
        total = sum(len(item["content"]) for item in files)
        try:
            with (
                tempfile.TemporaryDirectory(prefix="sbx-upload-") as staging,
                self._progress(f"Uploading to {folder}", total) as report,
            ):
                for item in files:
                    name = posixpath.basename(str(item["name"]))
                    local = Path(staging) / name
                    local.write_bytes(bytes(item["content"]))
                    target = posixpath.join(folder, name)
                    self._sandbox().file_system.upload(str(local), target, progress=report.file())
        finally:
            self.upload.value = ()
            self._reload(folder)
        what = files[0]["name"] if len(files) == 1 else f"{len(files)} files"
        return f"Uploaded {what} to {folder} ({human_size(total)})."

    def _downloaded(self) -> str:
        if not self.selected:
            raise ValueError("select the files or folders to download")
        shown = self.download_to.value.strip() or "."
        destination = self._local_area.check(shown)
        file_system = self._sandbox().file_system
        copies: list[tuple[str, Path, int]] = []
        for path in self.selected:
            entry = self._entry(path) or Entry.from_reply(file_system.stat(path))
            local = destination / entry.name
            if not entry.is_dir:
                copies.append((path, local, entry.size))
                continue
            tree = entries_of(file_system.list(path, depth=DOWNLOAD_DEPTH))
            for inner in tree:
                if not inner.is_dir:
                    target = local / posixpath.relpath(inner.path, path)
                    copies.append((inner.path, target, inner.size))
        kept = [copy for copy in copies if self._local_area.allows(copy[1])]
        left_out = len(copies) - len(kept)
        copies = kept
        total = sum(size for _, _, size in copies)
        with self._progress(f"Downloading to {destination}", total) as report:
            for source, local, _ in copies:
                local.parent.mkdir(parents=True, exist_ok=True)
                file_system.download(source, str(local), progress=report.file())
        count = f"{len(copies)} file{'s' if len(copies) != 1 else ''}"
        note = f"; left out {left_out} hidden or outside" if left_out else ""
        return f"Downloaded {count} ({human_size(total)}) to {destination.resolve()}{note}."

    def _progress(self, label: str, total: int) -> _TransferBar:
        return _TransferBar(self.progress, self.progress_label, self.progress_box, label, total)

    # ---- results and errors

    def _guarded(self, action: Callable[[], str | None]) -> None:
        """Run a user action; show its result, or its error, in the widget."""
        try:
            message = action()
        except Exception as error:
            if not isinstance(error, SandboxError | OSError | ValueError):
                log.exception("the sandbox browser's action failed")
            self.status.value = (
                f"<span style='color:{ERROR_COLOR}'>Error: {html.escape(_reason(error))}</span>"
            )
        else:
            if message:
                self.status.value = html.escape(message)

    # ---- where widgets do not render

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is None:
            return None
        entries = self._visible(self._listings[self._root].entries)
        table = Table(entries[: self.page_size], LISTING_COLUMNS)
        hidden = len(entries) - self.page_size
        note = f"{hidden} more entries not shown" if hidden > 0 else ""
        bundle["text/plain"] = "\n".join(
            part for part in (f"{self._root}:", table.text(), note) if part
        )
        bundle["text/html"] = (
            f"<p><code>{html.escape(self._root)}</code></p>{table._repr_html_()}"
            + (f"<p><em>{html.escape(note)}</em></p>" if note else "")
        )
        return bundle


class _TransferBar:
    """The widget's progress bar for one transfer of `total` bytes, over one or many files."""

    def __init__(
        self,
        bar: widgets.FloatProgress,
        label: widgets.Label,
        box: widgets.HBox,
        description: str,
        total: int,
    ) -> None:
        self.bar, self.label, self.box = bar, label, box
        self.description = description
        self.total = total
        self.done = 0

    def __enter__(self) -> _TransferBar:
        self.bar.max = float(max(self.total, 1))
        self.bar.value = 0.0
        self._draw(0)
        self.box.layout.display = None
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.box.layout.display = "none"

    def file(self) -> Callable[[int, int | None], None]:
        """The `progress(done, total)` callback of the next file."""
        offset = self.done

        def report(done: int, total: int | None) -> None:
            self._draw(offset + done)

        return report

    def _draw(self, done: int) -> None:
        self.done = done
        self.bar.value = float(done)
        self.label.value = f"{self.description}: {human_size(done)} / {human_size(self.total)}"


def _sandbox_source(sandbox: SandboxSource) -> Callable[[], CodeInterpreterSandbox]:
    if isinstance(sandbox, CodeInterpreterSandbox):
        return lambda: sandbox
    if sandbox is not None:
        return sandbox
    return _magics_sandbox


def _magics_sandbox() -> CodeInterpreterSandbox:
    """The sandbox of the `%sbx` magics loaded in the running IPython."""
    from IPython import get_ipython

    shell = get_ipython()
    magics = None if shell is None else shell.magics_manager.registry.get("SbxMagics")
    if magics is None:
        raise SandboxError(
            "no sandbox to browse: pass sandbox=..., or load the magics first "
            "(%load_ext sandbox_kernel)"
        )
    return magics.sandbox


def _details_html(cells: tuple[str, str, str], name: str | None = None) -> str:
    """A tree line's type, size and time in fixed-width columns (the header: the name too)."""
    spans = []
    if name is not None:
        spans.append(f"<span style='display:inline-block;width:{NAME_WIDTH + 8}px'>{name}</span>")
    for value, (width, align) in zip(cells, DETAIL_COLUMNS, strict=True):
        spans.append(
            f"<span style='display:inline-block;width:{width};text-align:{align};"
            f"padding-right:0.8em'>{html.escape(value)}</span>"
        )
    return f"<span style='white-space:nowrap;opacity:0.8'>{''.join(spans)}</span>"


def _close(rows: list[_Row], buttons: list[widgets.Button]) -> None:
    """Close the widgets of tree lines no longer shown (their comms go with them)."""
    for row in rows:
        for widget in (row.box, row.name, row.details):
            widget.close()
    for button in buttons:
        button.close()


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _reason(error: BaseException) -> str:
    """An error as one line for people: a sandbox error without the request it answered."""
    if isinstance(error, SandboxError):
        return REQUEST_PREFIX.sub("", error.message)
    if isinstance(error, ValueError | OSError):
        return str(error)
    return f"{type(error).__name__}: {error}"
