"""What the sandbox browser's action buttons do: new folder, rename and delete (asked first, in
the confirmation line), upload and download; each returns the line the browser shows."""

from __future__ import annotations

import html
import posixpath
import re
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sandbox_kernel.client import SandboxError

from .browser_model import TreeModel
from .browser_view import BrowserView
from .files import TreeCopy, download_files, tree_copy
from .local_paths import LocalArea
from .tables import Entry, human_size
from .verbs import remote_path

REQUEST_PREFIX = re.compile(r"^[A-Z]+ /\S*: ")
"""`GET /sandboxes/sbx-1/filesystem: `, which starts the client's error messages."""


class Confirmation:
    """The question of the confirmation line: a text, an answer field when one is wanted, a
    confirm and a cancel button; the action waits for confirm."""

    def __init__(self, view: BrowserView) -> None:
        self.view = view
        self._action: Callable[[], str] | None = None

    def ask(
        self,
        question: str,
        confirm: str,
        action: Callable[[], str],
        answer: str | None = None,
        danger: bool = False,
    ) -> None:
        """Show `question` (with a text field holding `answer` when it is given); `action`
        runs on confirm."""
        view = self.view
        self._action = action
        view.question.value = question
        view.answer.value = answer or ""
        view.answer.layout.display = "none" if answer is None else None
        view.confirm_button.description = confirm
        view.confirm_button.button_style = "danger" if danger else "primary"
        view.confirmation.layout.display = None

    @property
    def answer(self) -> str:
        return self.view.answer.value.strip()

    def confirmed(self) -> str:
        action, self._action = self._action, None
        self.view.confirmation.layout.display = "none"
        return action() if action is not None else ""

    def cancelled(self) -> str:
        self._action = None
        self.view.confirmation.layout.display = "none"
        return "Cancelled."


class FileActions:
    """The browser's actions on the sandbox's files. After a change, `reload(*folders)` lists
    the folders again and `select(paths)` changes the selection."""

    def __init__(
        self,
        tree: TreeModel,
        view: BrowserView,
        local_area: LocalArea,
        reload: Callable[..., None],
        select: Callable[[list[str]], None],
    ) -> None:
        self.tree = tree
        self.view = view
        self.local_area = local_area
        self.confirmation = Confirmation(view)
        self._reload = reload
        self._select = select

    # ---- asked first

    def ask_new_folder(self, folder: str) -> None:
        self.confirmation.ask(
            f"New folder in <code>{html.escape(folder)}</code>:",
            "Create",
            lambda: self.make_folder(folder, self.confirmation.answer),
            "",
        )

    def ask_rename(self, selected: Sequence[str]) -> None:
        if len(selected) != 1:
            raise ValueError("select one file or folder to rename")
        source = selected[0]
        self.confirmation.ask(
            f"Rename <code>{html.escape(source)}</code> to:",
            "Rename",
            lambda: self.rename(source, self.confirmation.answer),
            posixpath.basename(source),
        )

    def ask_delete(self, selected: Sequence[str]) -> None:
        paths = list(selected)
        if not paths:
            raise ValueError("select the files or folders to delete")
        names = ", ".join(html.escape(posixpath.basename(path)) for path in paths)
        what = f"<code>{names}</code>" if len(paths) == 1 else f"{len(paths)} items ({names})"
        inside = " with everything in it" if any(map(self.tree.is_folder, paths)) else ""
        self.confirmation.ask(
            f"Delete {what}{inside}? This cannot be undone.",
            "Delete",
            lambda: self.delete(paths),
            danger=True,
        )

    # ---- the actions

    def make_folder(self, folder: str, name: str) -> str:
        if not name:
            raise ValueError("a new folder needs a name")
        path = remote_path(name, folder)
        self.tree.sandbox().file_system.mkdir(path, parents=False)
        self._reload(posixpath.dirname(path))
        return f"Created {path}."

    def rename(self, source: str, name: str) -> str:
        if not name:
            raise ValueError("the new name is empty")
        destination = remote_path(name, posixpath.dirname(source))
        self.tree.sandbox().file_system.move(source, destination)
        self.tree.forget(source)
        self._reload(posixpath.dirname(source), posixpath.dirname(destination))
        self._select([destination])
        return f"Renamed {source} to {destination}."

    def delete(self, paths: list[str]) -> str:
        file_system = self.tree.sandbox().file_system
        deleted = 0
        try:
            for path in paths:
                file_system.remove(path)
                deleted += 1
        except SandboxError as error:
            raise SandboxError(
                f"could not delete {paths[deleted]} ({deleted} of {len(paths)} deleted): "
                f"{reason(error)}"
            ) from error
        finally:
            for removed in paths:
                self.tree.forget(removed)
            self._reload(*[posixpath.dirname(removed) for removed in paths])
        shown = paths[0] if len(paths) == 1 else f"{len(paths)} items"
        return f"Deleted {shown}."

    def upload(self, folder: str, files: Sequence[dict[str, Any]]) -> str | None:
        """Copy the files of the upload button into `folder`."""
        if not files:
            return None
        total = sum(len(item["content"]) for item in files)
        file_system = self.tree.sandbox().file_system
        try:
            with (
                tempfile.TemporaryDirectory(prefix="sbx-upload-") as staging,
                self.view.progress_bar(f"Uploading to {folder}", total) as bar,
            ):
                offset = 0
                for item in files:
                    name = posixpath.basename(str(item["name"]))
                    local = Path(staging) / name
                    local.write_bytes(bytes(item["content"]))
                    target = posixpath.join(folder, name)
                    file_system.upload(str(local), target, progress=bar.file(offset))
                    offset += len(item["content"])
        finally:
            self.view.upload.value = ()
            self._reload(folder)
        what = files[0]["name"] if len(files) == 1 else f"{len(files)} files"
        return f"Uploaded {what} to {folder} ({human_size(total)})."

    def download(self, selected: Sequence[str], to: str) -> str:
        """Copy the selected files and folders (whole trees) into the local folder `to`."""
        if not selected:
            raise ValueError("select the files or folders to download")
        destination = self.local_area.check(to)
        file_system = self.tree.sandbox().file_system
        copy = TreeCopy(folders=[destination])
        for path in selected:
            entry = self.tree.entry(path) or Entry.from_reply(file_system.stat(path))
            local = destination / entry.name
            if not self.local_area.allows(local):
                copy.skipped += 1
            elif entry.is_dir:
                inner = tree_copy(file_system, path, local, self.local_area)
                copy.folders += [local, *inner.folders]
                copy.files += inner.files
                copy.skipped += inner.skipped
            else:
                copy.files.append((path, local, entry.size))
        with self.view.progress_bar(f"Downloading to {destination}", copy.size) as bar:
            for folder in copy.folders:
                folder.mkdir(parents=True, exist_ok=True)
            download_files(file_system, copy.files, bar)
        count = f"{len(copy.files)} file{'s' if len(copy.files) != 1 else ''}"
        note = f"; left out {copy.skipped} hidden or outside" if copy.skipped else ""
        return f"Downloaded {count} ({human_size(copy.size)}) to {destination.resolve()}{note}."


def reason(error: BaseException) -> str:
    """An error as one line for people: a sandbox error without the request it answered."""
    if isinstance(error, SandboxError):
        return REQUEST_PREFIX.sub("", error.message)
    if isinstance(error, ValueError | OSError):
        return str(error)
    return f"{type(error).__name__}: {error}"
