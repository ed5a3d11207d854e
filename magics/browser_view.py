"""The sandbox browser's widgets: the toolbar, the tree's lines, the preview pane, the action
buttons, the confirmation line and the progress bar; how they look, not what they do."""

from __future__ import annotations

import html
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets

from .browser_model import Line
from .tables import Column, Entry, Table, format_time, human_size

NAME_WIDTH = 260
INDENT = 18
"""Pixels: the name column, and how far each level of the tree is indented."""
SELECTED_COLOR = "var(--jp-brand-color3, #c3e1f7)"
ERROR_COLOR = "var(--jp-error-color1, #d32f2f)"
SHORT_TIME = "%Y-%m-%d %H:%M"
DETAIL_COLUMNS = (("3.5em", "left"), ("5.5em", "right"), ("8.5em", "left"))
"""Width and alignment of a tree line's type, size and modification time."""

LISTING_COLUMNS = (
    Column("type", lambda entry: entry.type),
    Column("size", lambda entry: "" if entry.is_dir else human_size(entry.size), right=True),
    Column("modified", lambda entry: format_time(entry.mtime)),
    Column("name", lambda entry: entry.name + "/" if entry.is_dir else entry.name),
)
"""The columns of the plain listing shown where widgets do not render."""


@dataclass
class Row:
    """One entry's line in the tree: its name button and its details."""

    entry: Entry
    box: widgets.HBox
    name: widgets.Button
    details: widgets.HTML


class BrowserView(widgets.VBox):
    """The browser's widgets, laid out; `show_lines` draws the tree, reusing each entry's line.

    The buttons are wired by the browser (`SandboxBrowser`), which adds the tree's state and
    the actions to this view.
    """

    def __init__(self, root: str, show_hidden: bool, download_to: str, **kwargs: Any) -> None:
        self._rows: dict[str, Row] = {}
        self._more: dict[str, widgets.Button] = {}
        self._build(root, show_hidden, download_to)
        super().__init__(children=self._parts(), **kwargs)

    def _build(self, root: str, show_hidden: bool, download_to: str) -> None:
        button = widgets.Layout(width="auto")
        self.up_button = widgets.Button(icon="arrow-up", tooltip="Parent folder", layout=button)
        self.path_bar = widgets.Text(
            value=root, continuous_update=False, layout=widgets.Layout(flex="1 1 auto")
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

        self.header = widgets.HTML(details_html(("type", "size", "modified"), name="name"))
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

        self.question = widgets.HTML()
        self.answer = widgets.Text(layout=widgets.Layout(width="240px"))
        self.confirm_button = widgets.Button(button_style="primary", layout=button)
        self.cancel_button = widgets.Button(description="Cancel", layout=button)
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

    # ---- the tree's lines

    def show_lines(
        self,
        lines: list[Line],
        selected: Collection[str],
        page_size: int,
        clicked: Callable[[str], None],
        more: Callable[[str], None],
    ) -> None:
        """Draw the tree; `clicked(path)` and `more(folder)` answer a line's button."""
        shown: list[widgets.Widget] = []
        for line in lines:
            if line.entry is not None:
                shown.append(self._row(line, selected, clicked).box)
            else:
                shown.append(self._more_button(line, page_size, more))
        if not shown:
            shown.append(widgets.HTML("<i>(empty folder)</i>"))
        self.tree.children = shown

    def mark_selected(self, paths: Collection[str], selected: Collection[str]) -> None:
        """Bring the look of the lines of `paths` up to date with the selection."""
        for path in paths:
            row = self._rows.get(path)
            if row is not None:
                chosen = path in selected
                row.name.style = self._selected_style if chosen else self._plain_style

    def take_rows(
        self, paths: Collection[str] | None = None
    ) -> tuple[list[Row], list[widgets.Button]]:
        """Stop reusing the lines of `paths` (None: of every entry, and the "show more"
        buttons); `close` them once the tree no longer shows them."""
        if paths is None:
            rows, buttons = list(self._rows.values()), list(self._more.values())
            self._rows, self._more = {}, {}
            return rows, buttons
        return [self._rows.pop(path) for path in paths if path in self._rows], []

    def row_paths(self) -> list[str]:
        """The paths whose lines are kept for reuse."""
        return list(self._rows)

    def _row(self, line: Line, selected: Collection[str], clicked: Callable[[str], None]) -> Row:
        """The entry's line, made on first use and brought up to date after that."""
        entry, depth = line.entry, line.depth
        assert entry is not None
        if entry.is_dir:
            label = f"{'▾' if line.opened else '▸'} {entry.name}/"
            icon = "folder-open" if line.opened else "folder"
        else:
            label, icon = entry.name, "file"
        style = self._selected_style if entry.path in selected else self._plain_style
        size = "" if entry.is_dir else human_size(entry.size)
        modified = "" if entry.mtime is None else entry.mtime.astimezone().strftime(SHORT_TIME)
        details = details_html((entry.type, size, modified))
        row = self._rows.get(entry.path)
        if row is None:
            name = widgets.Button(
                description=label,
                icon=icon,
                tooltip=entry.path,
                layout=self._name_layout(depth),
                style=style,
            )
            name.on_click(lambda _, path=entry.path: clicked(path))
            html_details = widgets.HTML(details, layout=self._details_layout)
            box = widgets.HBox([name, html_details], layout=self._row_layout)
            row = self._rows[entry.path] = Row(entry, box, name, html_details)
            return row
        row.entry = entry
        row.name.description, row.name.icon, row.name.style = label, icon, style
        row.details.value = details
        return row

    def _more_button(
        self, line: Line, page_size: int, more: Callable[[str], None]
    ) -> widgets.Button:
        folder, hidden = line.folder, line.hidden
        button = self._more.get(folder)
        if button is None:
            button = widgets.Button(layout=self._name_layout(line.depth), icon="ellipsis-h")
            button.on_click(lambda _: more(folder))
            self._more[folder] = button
        count = min(hidden, page_size)
        button.description = f"show {count} more ({hidden} not shown)"
        return button

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

    # ---- status, progress, and the listing where widgets do not render

    def show_status(self, message: str) -> None:
        self.status.value = html.escape(message)

    def show_error(self, reason: str) -> None:
        self.status.value = f"<span style='color:{ERROR_COLOR}'>Error: {html.escape(reason)}</span>"

    def progress_bar(self, label: str, total: int) -> TransferBar:
        """The bar of one transfer of `total` bytes (a context manager that shows it)."""
        return TransferBar(self.progress, self.progress_label, self.progress_box, label, total)

    def listing_bundle(
        self, bundle: dict[str, Any], root: str, entries: list[Entry], page_size: int
    ) -> dict[str, Any]:
        """`bundle` with a plain listing of `root` as its text and HTML."""
        table = Table(entries[:page_size], LISTING_COLUMNS)
        hidden = len(entries) - page_size
        note = f"{hidden} more entries not shown" if hidden > 0 else ""
        bundle["text/plain"] = "\n".join(part for part in (f"{root}:", table.text(), note) if part)
        bundle["text/html"] = f"<p><code>{html.escape(root)}</code></p>{table._repr_html_()}" + (
            f"<p><em>{html.escape(note)}</em></p>" if note else ""
        )
        return bundle


class TransferBar:
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

    def __enter__(self) -> TransferBar:
        self.bar.max = float(max(self.total, 1))
        self.bar.value = 0.0
        self._draw(0)
        self.box.layout.display = None
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.box.layout.display = "none"

    def file(self, offset: int) -> Callable[[int, int | None], None]:
        """The `progress(done, total)` callback of a file that starts `offset` bytes in."""

        def report(done: int, total: int | None) -> None:
            self._draw(offset + done)

        return report

    def _draw(self, done: int) -> None:
        self.done = done
        self.bar.value = float(done)
        self.label.value = f"{self.description}: {human_size(done)} / {human_size(self.total)}"


def details_html(cells: tuple[str, str, str], name: str | None = None) -> str:
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


def close(rows: list[Row], buttons: list[widgets.Button]) -> None:
    """Close the widgets of tree lines no longer shown (their comms go with them)."""
    for row in rows:
        for widget in (row.box, row.name, row.details):
            widget.close()
    for button in buttons:
        button.close()
