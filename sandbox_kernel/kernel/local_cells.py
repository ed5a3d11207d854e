"""Local cells run without Python ever compiling the notebook's text.

A cell the router keeps local (`%sbx` lines, `%config` of our classes, a `%%sbx` cell) is
rewritten here into calls whose every argument is a string literal: the notebook's text
reaches the magics as data and nothing else of it runs on the kernel's host. A line that is
not one of those forms refuses the whole cell, so a quote or a bracket that fools the router
(`%sbx ls '''` with code on the next line) cannot smuggle Python past it.
"""

from __future__ import annotations

import re

from IPython.core.error import UsageError

LOCAL_MAGICS = ("sbx", "config")
_LINE = re.compile(
    r"(?:(?P<targets>[A-Za-z_]\w*(?:\s*,\s*[A-Za-z_]\w*)*)\s*=\s*)?"
    r"%(?P<magic>sbx|config)(?:\s+(?P<arguments>.*))?",
    re.DOTALL,
)
_HELP = re.compile(r"%(?P<magic>sbx|config)(?P<marks>\?\??)")
_CELL = re.compile(r"%%sbx(?:[ \t]+(?P<line>.*))?")


class LocalCellError(UsageError):
    """A local cell holds a line that is neither a `%sbx` line nor `%config` of ours."""


def local_python(code: str) -> str:
    """The Python that runs the local cell `code`: one magic call per line, arguments quoted.

    Raises LocalCellError for any other line; IPython's own transformers never see the cell.
    """
    lines = _logical_lines(code)
    while lines and _is_blank(lines[0]):
        lines.pop(0)
    if lines and lines[0].lstrip().startswith("%%"):
        return _cell_magic(code)
    statements = []
    for line in lines:
        if _is_blank(line):
            continue
        asked = _HELP.fullmatch(line.strip())
        if asked is not None:
            helper = "pinfo" if asked["marks"] == "?" else "pinfo2"
            statements.append(f"get_ipython().run_line_magic({helper!r}, '%{asked['magic']}')")
            continue
        match = _LINE.fullmatch(line.strip())
        if match is None:
            raise LocalCellError(
                "this cell mixes %sbx lines with code for the sandbox; put the %sbx lines in a "
                "cell of their own"
            )
        call = (
            f"get_ipython().run_line_magic({match['magic']!r}, "
            f"{(match['arguments'] or '').strip()!r})"
        )
        targets = match["targets"]
        statements.append(f"{targets} = {call}" if targets else call)
    return "\n".join(statements) + "\n"


def _cell_magic(code: str) -> str:
    """`%%sbx LINE` and its body, as IPython passes them: the body keeps its last newline."""
    text = code if code.endswith("\n") else code + "\n"
    lines = text.splitlines(keepends=True)
    while lines and _is_blank(lines[0]):
        lines.pop(0)
    match = _CELL.fullmatch(lines[0].strip())
    if match is None:
        raise LocalCellError("only %%sbx cells run locally; other cell magics run in the sandbox")
    body = "".join(lines[1:])
    return f"get_ipython().run_cell_magic('sbx', {(match['line'] or '').strip()!r}, {body!r})\n"


def _logical_lines(code: str) -> list[str]:
    """The cell's lines with backslash continuations joined, as IPython joins them."""
    joined: list[str] = []
    pending = ""
    for line in code.splitlines():
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        joined.append(pending + line)
        pending = ""
    if pending:
        joined.append(pending)
    return joined


def _is_blank(line: str) -> bool:
    stripped = line.strip()
    return not stripped or stripped.startswith("#")
