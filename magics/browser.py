"""`SandboxBrowser`: the sandbox's files as a lazily expanding tree made of core ipywidgets, with
a preview pane and actions (download, upload, new folder, rename, delete).

The browser joins three parts: the tree's state (`browser_model`), its widgets
(`browser_view`) and what its buttons do (`browser_actions`). Every action runs in the kernel
through the sync client; its result or error is shown in the widget, which stays usable
whatever happens.
"""

from __future__ import annotations

import html
import logging
import posixpath
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
from traitlets import List, Unicode, observe, validate

from sandbox_kernel.client import CodeInterpreterSandbox, SandboxError

from .browser_actions import FileActions, reason
from .browser_model import PAGE_SIZE, TreeModel, visible
from .browser_view import BrowserView, close
from .constants import REMOTE_HOME
from .local_paths import LocalArea
from .preview import preview_of, preview_widgets, title
from .tables import human_size
from .verbs import remote_path

log = logging.getLogger(__name__)

SandboxSource = CodeInterpreterSandbox | Callable[[], CodeInterpreterSandbox] | None


class SandboxBrowser(BrowserView):
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
        self.tree_model = TreeModel(_sandbox_source(sandbox), path, page_size)
        super().__init__(self.tree_model.root, show_hidden, download_to, **kwargs)
        self.actions = FileActions(
            self.tree_model,
            self,
            local_area or LocalArea(None),
            self._reload,
            lambda paths: setattr(self, "selected", paths),
        )
        self._wire()
        self._render()
        self.selected = self.tree_model.chosen

    # ---- public

    @property
    def path(self) -> str:
        """The directory at the top of the tree."""
        return self.tree_model.root

    @property
    def page_size(self) -> int:
        return self.tree_model.page_size

    @property
    def directory(self) -> str:
        """Where uploads and new folders go: the selected folder, else the folder of the
        selection, else the top of the tree."""
        return self.tree_model.directory(self.selected)

    def go_to(self, path: str) -> None:
        """Show `path` at the top of the tree (a file: its folder, with the file selected)."""
        chosen = self.tree_model.open(path)
        old_rows, old_buttons = self.take_rows()
        self.path_bar.value = self.tree_model.root
        self._render()
        close(old_rows, old_buttons)
        self.selected = chosen

    def expand(self, path: str) -> None:
        """Open a folder of the tree, listing it the first time."""
        self.tree_model.expand(path)
        self._render()

    def collapse(self, path: str) -> None:
        """Close a folder of the tree."""
        self.tree_model.collapse(path)
        self._render()

    def refresh(self) -> None:
        """List the top folder and every open folder again."""
        self._reload(*self.tree_model.shown_folders())

    # ---- the buttons

    def _wire(self) -> None:
        actions = self.actions
        confirmation = actions.confirmation
        self.up_button.on_click(lambda _: self._guarded(self._go_up))
        self.path_bar.observe(lambda _: self._guarded(self._go_to_path_bar), "value")
        self.refresh_button.on_click(lambda _: self._guarded(self._refreshed))
        self.hidden_toggle.observe(lambda _: self._render(), "value")
        self.new_folder_button.on_click(
            lambda _: self._guarded(lambda: actions.ask_new_folder(self.directory))
        )
        self.upload.observe(
            lambda _: self._guarded(lambda: actions.upload(self.directory, self.upload.value)),
            "value",
        )
        self.rename_button.on_click(
            lambda _: self._guarded(lambda: actions.ask_rename(self.selected))
        )
        self.delete_button.on_click(
            lambda _: self._guarded(lambda: actions.ask_delete(self.selected))
        )
        self.download_button.on_click(
            lambda _: self._guarded(
                lambda: actions.download(self.selected, self.download_to.value.strip() or ".")
            )
        )
        self.confirm_button.on_click(lambda _: self._guarded(confirmation.confirmed))
        self.cancel_button.on_click(lambda _: self._guarded(confirmation.cancelled))

    # ---- the tree

    def _render(self) -> None:
        tree = self.tree_model
        self.show_lines(
            tree.lines(self.hidden_toggle.value),
            self.selected,
            tree.page_size,
            lambda path: self._guarded(lambda: self._clicked(path)),
            lambda folder: self._guarded(lambda: self._show_more(folder)),
        )
        self._show_target()

    def _reload(self, *folders: str) -> None:
        """List `folders` again (those shown: the top and open ones), keeping what is shown."""
        tree = self.tree_model
        listed = tree.reload(*folders)
        old_rows, _ = self.take_rows(
            [path for path in self.row_paths() if tree.entry(path) is None]
        )
        self._render()
        close(old_rows, [])
        self.selected = [
            path
            for path in self.selected
            if posixpath.dirname(path) not in listed or tree.entry(path) is not None
        ]

    def _show_more(self, folder: str) -> None:
        self.tree_model.show_more(folder)
        self._render()

    def _clicked(self, path: str) -> None:
        tree = self.tree_model
        if tree.is_folder(path):
            if path in tree.expanded:
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
        root = self.tree_model.root
        return list(dict.fromkeys(remote_path(path, root) for path in proposal["value"]))

    @observe("selected")
    def _selection_changed(self, change: Any) -> None:
        self.mark_selected({*change["old"], *change["new"]}, change["new"])
        self._show_target()
        self._guarded(self._show_preview)

    def _show_target(self) -> None:
        self.target.value = f"In <code>{html.escape(self.directory)}</code>:"

    def _show_preview(self) -> None:
        self.preview.children = [widgets.HTML("<i>Loading…</i>")]
        tree = self.tree_model
        entries = [tree.entry(path) for path in self.selected]
        if len(entries) == 1 and entries[0] is not None and not entries[0].is_dir:
            try:
                shown = preview_widgets(preview_of(tree.sandbox(), entries[0]))
            except Exception:
                self.preview.children = [title(entries[0])]
                raise
        elif len(entries) == 1 and entries[0] is not None:
            listing = tree.listings.get(entries[0].path)
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
        if self.path != "/":
            self.go_to(posixpath.dirname(self.path))
        return None

    def _go_to_path_bar(self) -> str | None:
        wanted = self.path_bar.value.strip()
        if remote_path(wanted, self.path) == self.path:
            return None
        try:
            self.go_to(wanted)
        except Exception:
            self.path_bar.value = self.path
            raise
        return None

    def _refreshed(self) -> str:
        self.refresh()
        return f"Listed {self.path} again."

    # ---- results and errors

    def _guarded(self, action: Callable[[], str | None]) -> None:
        """Run a user action; show its result, or its error, in the widget."""
        try:
            message = action()
        except Exception as error:
            if not isinstance(error, SandboxError | OSError | ValueError):
                log.exception("the sandbox browser's action failed")
            self.show_error(reason(error))
        else:
            if message:
                self.show_status(message)

    # ---- where widgets do not render

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is None:
            return None
        tree = self.tree_model
        entries = visible(tree.listings[tree.root].entries, self.hidden_toggle.value)
        return self.listing_bundle(bundle, tree.root, entries, tree.page_size)


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
