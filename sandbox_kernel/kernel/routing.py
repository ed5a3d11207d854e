"""Decide where a cell runs: locally in the kernel (`%sbx` magics) or in the sandbox.

A cell runs locally when it is a `%%sbx` cell, or when every statement of it is a `%sbx` line
(`entries = %sbx ls` included) or `%config` of our own classes; blank cells and comments stay
local too. Every other cell goes to the sandbox. A cell that mixes local lines with other code
is refused: the two halves would run in different interpreters, which is never what the
author meant.
"""

from __future__ import annotations

import io
import re
import tokenize
from enum import Enum

LOCAL_LINE = re.compile(
    r"^(?:[A-Za-z_]\w*(?:\s*,\s*[A-Za-z_]\w*)*\s*=\s*)?%sbx\b"
    r"|^%config\s+(SandboxKernel|SbxMagics)\b"
)
LOCAL_CELL = re.compile(r"^%%sbx\b")
_NOT_STATEMENT_STARTS = (
    tokenize.NEWLINE,
    tokenize.NL,
    tokenize.INDENT,
    tokenize.DEDENT,
    tokenize.COMMENT,
    tokenize.ENDMARKER,
)


class Route(Enum):
    LOCAL = "local"
    REMOTE = "remote"


class MixedCellError(ValueError):
    """A cell holds both `%sbx` lines and code for the sandbox."""


def route(code: str) -> Route:
    """Where `code` runs; raises MixedCellError for a cell that mixes both."""
    statements = statement_lines(code)
    if not statements:
        return Route.LOCAL
    if LOCAL_CELL.match(statements[0]):
        return Route.LOCAL
    local = [bool(LOCAL_LINE.match(line)) for line in statements]
    if all(local):
        return Route.LOCAL
    if any(local):
        raise MixedCellError(
            "this cell mixes %sbx lines with code for the sandbox; put the %sbx lines in a "
            "cell of their own"
        )
    return Route.REMOTE


def statement_lines(code: str) -> list[str]:
    """The stripped lines of `code` that start a statement: not blank, not a comment, and not
    inside a multi-line string or bracket (so a docstring that mentions `%sbx` is just text).

    Code Python cannot tokenize (an unclosed quote in a `!` line, say) falls back to every
    non-blank, non-comment line.
    """
    lines = code.splitlines()
    try:
        numbers = _statement_starts(code)
    except (tokenize.TokenError, SyntaxError):
        numbers = range(1, len(lines) + 1)
    starts = [lines[number - 1].strip() for number in numbers if number <= len(lines)]
    return [line for line in starts if line and not line.startswith("#")]


def _statement_starts(code: str) -> list[int]:
    """1-based numbers of the lines on which a logical line of Python begins."""
    numbers: list[int] = []
    at_start, depth = True, 0
    for token in tokenize.generate_tokens(io.StringIO(code).readline):
        if token.type == tokenize.OP and token.string in ("(", "[", "{"):
            depth += 1
        elif token.type == tokenize.OP and token.string in (")", "]", "}"):
            depth = max(depth - 1, 0)
        if token.type in (tokenize.NEWLINE, tokenize.NL):
            at_start = at_start or depth == 0
        elif token.type not in _NOT_STATEMENT_STARTS and at_start:
            numbers.append(token.start[0])
            at_start = False
    return numbers


def is_local_at(code: str, cursor_pos: int) -> bool:
    """True when the cursor is in a `%%sbx` cell or on a `%sbx` line: it completes locally."""
    statements = statement_lines(code)
    if statements and LOCAL_CELL.match(statements[0]):
        return True
    line_start = code.rfind("\n", 0, cursor_pos) + 1
    line_end = code.find("\n", cursor_pos)
    line = code[line_start : len(code) if line_end < 0 else line_end].strip()
    return bool(LOCAL_LINE.match(line))
