"""What every verb shares: a parser that raises UsageError, the verb record, sandbox paths."""

from __future__ import annotations

import argparse
import posixpath
import shlex
import textwrap
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError

from .constants import REMOTE_HOME

if TYPE_CHECKING:
    from .verb_context import VerbContext

working_directory: ContextVar[str] = ContextVar("working_directory", default=REMOTE_HOME)
"""Where relative sandbox paths start: the cells' directory (the notebook's folder's copy
in the sandbox kernel), set by `%sbx` for each verb it runs."""


class HelpShown(Exception):
    """`-h` printed a verb's help; the verb has nothing else to do."""


class VerbParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are UsageErrors carrying the verb's usage."""

    def __init__(self, prog: str, description: str, examples: Sequence[str] = (), **kwargs: Any):
        shown = "\n".join(textwrap.indent(example, "  ") for example in examples)
        epilog = f"examples:\n{shown}" if examples else None
        super().__init__(
            prog=prog,
            description=description,
            epilog=epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            **kwargs,
        )
        self.examples = tuple(examples)

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}\n{self.format_usage().strip()}")

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        if status == 0:
            raise HelpShown
        raise UsageError((message or self.format_usage()).strip())


Handler = Callable[["VerbContext", argparse.Namespace, "str | None"], Any]
"""A verb's function: `handler(context, arguments, cell body or None)`."""


@dataclass(frozen=True)
class Verb:
    """One `%sbx` verb: its parser (usage, help, examples), its handler, and for Tab
    completion which of its positional arguments and options name sandbox or local paths."""

    name: str
    parser: VerbParser
    handler: Handler
    remote_positions: tuple[int, ...] = ()
    local_positions: tuple[int, ...] = ()
    remote_options: tuple[str, ...] = ()
    takes_cell: bool = False
    changes_files: bool = False
    parse_line: Callable[[VerbParser, str], argparse.Namespace] | None = None

    @property
    def summary(self) -> str:
        return (self.parser.description or "").split("\n")[0]

    @property
    def usage(self) -> str:
        return " ".join(self.parser.format_usage().split()).removeprefix("usage: ")

    def parse(self, text: str) -> argparse.Namespace:
        """The verb's arguments from the rest of the magic's line."""
        if self.parse_line is not None:
            return self.parse_line(self.parser, text)
        return self.parser.parse_args(split_words(text, self.parser.prog))


def verb_parser(
    name: str, description: str, *examples: str, cell_only: bool = False, **options: Any
) -> VerbParser:
    """The parser of `%sbx NAME` (`%%sbx NAME` for a verb that needs a cell body)."""
    prog = f"%%sbx {name}" if cell_only else f"%sbx {name}"
    return VerbParser(prog=prog, description=description, examples=examples, **options)


def split_words(text: str, prog: str = "%sbx") -> list[str]:
    """Split a magic's line like a shell does; an unclosed quote is a UsageError."""
    try:
        return shlex.split(text)
    except ValueError as error:
        raise UsageError(f"{prog}: {error}") from None


def remote_path(path: str | None, cwd: str | None = None) -> str:
    """An absolute, normalized sandbox path: relative paths start at `cwd` (by default the
    cells' working directory), `~` is the home."""
    cwd = cwd or working_directory.get()
    if not path:
        return cwd
    if path == "~" or path.startswith("~/"):
        path = REMOTE_HOME + path[1:]
    joined = posixpath.normpath(posixpath.join(cwd, path))
    return "/" + joined.lstrip("/")
