"""`%sbx browse`: the sandbox's files as an interactive tree (see `SandboxBrowser`)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError

from .constants import REMOTE_HOME
from .verbs import Verb, remote_path, verb_parser

if TYPE_CHECKING:
    from .verb_context import VerbContext

GROUP = "Browsing"


def browse(sbx: VerbContext, args: argparse.Namespace, cell: str | None) -> Any:
    from .browser import SandboxBrowser  # ipywidgets loads when a browser is first made

    options: dict[str, Any] = {}
    if args.page_size is not None:
        if args.page_size < 1:
            raise UsageError("%sbx browse: --page-size must be 1 or more")
        options["page_size"] = args.page_size
    return SandboxBrowser(
        remote_path(args.path),
        sandbox=lambda: sbx.sandbox,
        show_hidden=args.all,
        download_to=args.to,
        local_area=sbx.local_area,
        **options,
    )


def _verbs() -> list[Verb]:
    parser = verb_parser(
        "browse",
        "Browse sandbox files in a tree widget: preview, download, upload, rename, delete.\n"
        "Returns the browser; its `.selected` holds the selected paths.\n"
        "Where widgets do not render, it shows a listing of PATH.",
        "%sbx browse /home/user",
        "%sbx browse /tmp -a --page-size 20",
    )
    parser.add_argument("path", metavar="PATH", nargs="?", help=f"default: {REMOTE_HOME}")
    parser.add_argument("-a", "--all", action="store_true", help="show hidden entries")
    parser.add_argument(
        "--page-size",
        type=int,
        metavar="N",
        help="entries of a folder shown before 'show more' (default 100)",
    )
    parser.add_argument(
        "--to",
        default=".",
        metavar="LOCAL",
        help="local folder downloads go to (default: the current directory)",
    )
    return [Verb("browse", parser, browse, remote_positions=(0,))]


VERBS = _verbs()
