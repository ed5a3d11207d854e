"""Progress of file transfers: a widget bar where a notebook renders widgets, text lines
elsewhere, nothing for small transfers; each ends as one summary line."""

from __future__ import annotations

import importlib.util
import sys
import time
from typing import Any

from IPython.display import display

from sandbox_kernel.client import Progress

from .tables import human_size

WIDGET_INTERVAL = 0.1
TEXT_INTERVAL = 0.5
"""Seconds between two redraws of a widget bar / a text progress line."""


def widgets_render(shell: Any) -> bool:
    """True in a Jupyter kernel (whose frontends render widgets) with ipywidgets installed."""
    in_kernel = getattr(shell, "kernel", None) is not None
    return in_kernel and importlib.util.find_spec("ipywidgets") is not None


class TransferProgress:
    """Tracks the bytes of one transfer (one or many files) and shows them once the transfer
    is at least `min_bytes` big; `style` is `widget`, `text` or `none`.

    Use as a context manager and call `finish(summary)` on success; leaving without it says
    how far the transfer got.
    """

    def __init__(self, description: str, total: int | None, *, style: str, min_bytes: int) -> None:
        self.description = description
        self.total = total
        self.style = style
        self.min_bytes = min_bytes
        self.done = 0
        self.started = time.monotonic()
        self._shown: str | None = None
        self._last_draw = 0.0
        self._bar: Any = None
        self._label: Any = None
        self._box: Any = None
        self._handle: Any = None
        self._text_width = 0
        self._finished = False

    def __enter__(self) -> TransferProgress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if not self._finished and self._shown in ("widget", "text"):
            self._end(f"{self.description}: stopped after {human_size(self.done)}")

    def file(self, offset: int) -> Progress:
        """The `progress(done, total)` callback for one file that starts `offset` bytes in."""

        def report(done: int, total: int | None) -> None:
            if self.total is None and offset == 0:
                self.total = total
            self.update(offset + done)

        return report

    def update(self, done: int) -> None:
        self.done = done
        if self._shown is None:
            size = self.total if self.total is not None else done
            if self.style == "none" or size < self.min_bytes or size == 0:
                return
            self._show()
        now = time.monotonic()
        interval = WIDGET_INTERVAL if self._shown == "widget" else TEXT_INTERVAL
        if now - self._last_draw >= interval or done == self.total:
            self._last_draw = now
            self._draw()

    def finish(self, summary: str) -> None:
        """Replace the bar (or print) a one-line summary of the finished transfer."""
        self._finished = True
        self._end(summary)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def _show(self) -> None:
        if self.style == "widget":
            import ipywidgets

            self._bar = ipywidgets.FloatProgress(value=0, min=0, max=float(self.total or 1))
            self._label = ipywidgets.Label(self.description)
            self._box = ipywidgets.HBox([self._bar, self._label])
            self._handle = display(self._box, display_id=True)
        self._shown = self.style

    def _status(self) -> str:
        if self.total:
            percent = 100 * self.done / self.total
            amount = f"{human_size(self.done)} / {human_size(self.total)}"
            return f"{self.description}: {percent:3.0f}%  {amount}"
        return f"{self.description}: {human_size(self.done)}"

    def _draw(self) -> None:
        if self._shown == "widget":
            self._bar.max = float(max(self.total or 0, self.done, 1))
            self._bar.value = float(self.done)
            self._label.value = self._status()
        elif self._shown == "text":
            line = self._status()
            sys.stdout.write("\r" + line.ljust(self._text_width))
            sys.stdout.flush()
            self._text_width = len(line)

    def _end(self, summary: str) -> None:
        if self._shown == "widget":
            self._handle.update({"text/plain": summary}, raw=True)
            self._box.close()
        elif self._shown == "text":
            sys.stdout.write("\r" + summary.ljust(self._text_width) + "\n")
            sys.stdout.flush()
        else:
            print(summary)
        self._shown = "ended"
