"""What the browser's preview pane shows for one sandbox file: the start of a text file, an
image, or the size and type of anything else."""

from __future__ import annotations

import base64
import html
import mimetypes
import posixpath
import shlex
from dataclasses import dataclass

import ipywidgets as widgets

from sandbox_kernel.client import CodeInterpreterSandbox, SandboxError

from .constants import HELPER_TIMEOUT, REMOTE_HOME
from .tables import Entry, format_time, human_size

TEXT_LIMIT = 64 * 1024
"""Bytes of a text file the preview shows."""
WHOLE_READ_LIMIT = 1024 * 1024
"""Files up to this size are read whole; of larger ones only the first TEXT_LIMIT bytes."""
IMAGE_LIMIT = 8 * 1024 * 1024
"""Larger images are described, not shown."""
IMAGE_FORMATS = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".gif": "gif", ".svg": "svg+xml"}


@dataclass(frozen=True)
class Preview:
    """One file's preview: `text` (maybe `truncated`), an `image` in `image_format`, or neither
    (a file that is not text, or an image too large to show)."""

    entry: Entry
    text: str | None = None
    truncated: bool = False
    image: bytes | None = None
    image_format: str = ""


def preview_of(sandbox: CodeInterpreterSandbox, entry: Entry) -> Preview:
    """Read what the preview of `entry` needs: at most TEXT_LIMIT bytes of text, or the image."""
    image_format = IMAGE_FORMATS.get(posixpath.splitext(entry.name)[1].lower())
    if image_format is not None:
        if entry.size > IMAGE_LIMIT:
            return Preview(entry)
        return Preview(entry, image=_read(sandbox, entry.path), image_format=image_format)
    if entry.size > WHOLE_READ_LIMIT:
        data, truncated = _head(sandbox, entry.path, TEXT_LIMIT), True
    else:
        data = _read(sandbox, entry.path)
        truncated = len(data) > TEXT_LIMIT
        data = data[:TEXT_LIMIT]
    return Preview(entry, text=_as_text(data, truncated), truncated=truncated)


def _read(sandbox: CodeInterpreterSandbox, path: str) -> bytes:
    reply = sandbox.file.read(path)
    content = str(reply.get("content", ""))
    if reply.get("encoding") == "base64":
        return base64.b64decode(content)
    return content.encode()


def _head(sandbox: CodeInterpreterSandbox, path: str, size: int) -> bytes:
    """The first `size` bytes of a sandbox file, without transferring the rest."""
    command = f"head -c {size} -- {shlex.quote(path)} | base64 -w 0"
    result = sandbox.process.cmd(command, REMOTE_HOME, HELPER_TIMEOUT).get("result") or {}
    stderr = str(result.get("stderr", "")).strip()
    if stderr:
        raise SandboxError(f"cannot read {path}: {stderr}")
    return base64.b64decode(str(result.get("stdout", "")))


def _as_text(data: bytes, truncated: bool) -> str | None:
    """The bytes as text, or None when they are not UTF-8 text (a cut last character is fine)."""
    if b"\x00" in data:
        return None
    try:
        return data.decode()
    except UnicodeDecodeError as error:
        if truncated and error.start >= len(data) - 3:
            return data[: error.start].decode(errors="replace")
        return None


def description(entry: Entry) -> str:
    """`text/plain, 1.2 KiB, modified 2024-05-01 10:00:00`: what an entry is."""
    kind = "folder" if entry.is_dir else mimetypes.guess_type(entry.name)[0] or entry.type
    if entry.symlink_target:
        kind = f"link to {entry.symlink_target}"
    parts = [kind]
    if not entry.is_dir:
        parts.append(human_size(entry.size))
    if entry.mtime is not None:
        parts.append(f"modified {format_time(entry.mtime)}")
    return ", ".join(parts)


def title(entry: Entry, note: str = "") -> widgets.HTML:
    """The preview's heading: the entry's name, what it is, and an optional note."""
    lines = [f"<b>{html.escape(entry.name)}</b>", html.escape(description(entry))]
    if note:
        lines.append(f"<i>{html.escape(note)}</i>")
    return widgets.HTML(f"<div style='line-height: 1.5'>{'<br>'.join(lines)}</div>")


def preview_widgets(preview: Preview) -> list[widgets.Widget]:
    """The preview pane's content for one file."""
    entry = preview.entry
    if preview.image is not None:
        image = widgets.Image(
            value=preview.image,
            format=preview.image_format,
            layout=widgets.Layout(max_width="100%", max_height="360px", object_fit="contain"),
        )
        return [title(entry), image]
    if preview.text is not None:
        note = (
            f"Truncated: the first {human_size(TEXT_LIMIT)} are shown." if preview.truncated else ""
        )
        text = widgets.HTML(
            "<pre style='margin: 0; white-space: pre-wrap; word-break: break-all'>"
            f"{html.escape(preview.text)}</pre>",
            layout=widgets.Layout(max_height="360px", overflow="auto"),
        )
        return [title(entry, note), text]
    if IMAGE_FORMATS.get(posixpath.splitext(entry.name)[1].lower()):
        reason = f"An image larger than {human_size(IMAGE_LIMIT)}: download it to see it."
    else:
        reason = "Not a text file or an image: download it to open it."
    return [title(entry, reason)]
