"""What the sandbox displays is made safe for the notebook's browser before it is sent there.

JupyterLab trusts the outputs of a cell the user ran: it runs their scripts and lets their
HTML call the Jupyter server's API as the user, which starts kernels on the host. Code in
the sandbox is not the user's, so its bundles are cut down to what only shows: HTML and
Markdown without scripts, handlers, frames, forms or styles (nh3, the ammonia sanitizer),
no JavaScript, and only MIME types whose renderers draw data. `c.SandboxKernel.trust_outputs`
turns this off for sandboxes whose code you trust (bokeh, folium and other script outputs).
"""

from __future__ import annotations

import re
from typing import Any

import nh3

SHOWN_AS_IS = frozenset(
    {
        "text/plain",
        "text/latex",
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "image/bmp",
        "image/svg+xml",  # JupyterLab draws it as an <img>, where scripts never run
        "application/json",
        "application/pdf",
        "application/geo+json",
        "application/vnd.dataresource+json",
        "application/vnd.jupyter.widget-view+json",
        "application/vnd.plotly.v1+json",
    }
)
"""MIME types whose JupyterLab renderers draw data and run none of it."""
SHOWN_AS_IS_PATTERN = re.compile(r"application/vnd\.vega(?:lite)?\.v\d+\+json")
CLEANED = frozenset({"text/html", "text/markdown"})
DROPPED_NOTE = "[{types} output of sandbox code left out: see c.SandboxKernel.trust_outputs]"
ATTRIBUTES = {
    **nh3.ALLOWED_ATTRIBUTES,
    "*": {"class", "title", "align", "colspan", "rowspan", "border"},
}
"""ammonia's own allow-list (img src, a href, ...) plus the table and class attributes that
pandas and friends write."""


def safe_bundle(data: dict[str, Any]) -> dict[str, Any]:
    """`data` with HTML and Markdown cleaned and every other unsafe MIME type left out (a
    bundle left with nothing to show says what was left out)."""
    safe: dict[str, Any] = {}
    dropped = []
    for mime, value in data.items():
        if mime in CLEANED and isinstance(value, str):
            safe[mime] = clean_html(value)
        elif mime in SHOWN_AS_IS or SHOWN_AS_IS_PATTERN.fullmatch(mime):
            safe[mime] = value
        else:
            dropped.append(mime)
    if dropped and not safe:
        safe["text/plain"] = DROPPED_NOTE.format(types=", ".join(sorted(dropped)))
    return safe


def clean_html(text: str) -> str:
    """HTML (or Markdown with HTML in it) with only tags and attributes that show."""
    if "<" not in text:
        return text
    return nh3.clean(text, attributes=ATTRIBUTES, link_rel="noopener noreferrer")
