"""Decide where a cell runs: locally in the kernel (`%sbx` magics) or in the sandbox.

A cell runs locally when it is a `%%sbx` cell, or when every line of it that is not blank or a
comment is a `%sbx` line (or `%config` of our own classes). Every other cell goes to the
sandbox. A cell that mixes local lines with other code is refused: the two halves would run in
different interpreters, which is never what the author meant.
"""

from __future__ import annotations

import re
from enum import Enum

LOCAL_LINE = re.compile(r"^%sbx\b|^%config\s+(SandboxKernel|SbxMagics)\b")
LOCAL_CELL = re.compile(r"^%%sbx\b")


class Route(Enum):
    LOCAL = "local"
    REMOTE = "remote"


class MixedCellError(ValueError):
    """A cell holds both `%sbx` lines and code for the sandbox."""


def route(code: str) -> Route:
    """Where `code` runs; raises MixedCellError for a cell that mixes both."""
    lines = [line.strip() for line in code.splitlines()]
    meaningful = [line for line in lines if line and not line.startswith("#")]
    if not meaningful:
        return Route.LOCAL
    if LOCAL_CELL.match(meaningful[0]):
        return Route.LOCAL
    local = [bool(LOCAL_LINE.match(line)) for line in meaningful]
    if all(local):
        return Route.LOCAL
    if any(local):
        raise MixedCellError(
            "this cell mixes %sbx lines with code for the sandbox; put the %sbx lines in a "
            "cell of their own"
        )
    return Route.REMOTE
