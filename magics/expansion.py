"""`$name` and `{name.attr[0]}` in a `%sbx` line, filled from the local namespace without
evaluating anything: IPython's own expansion runs any Python in braces, which would let a
notebook's text run on the kernel's host."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

_PATH = r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*|\[-?\d+\])*"
_REFERENCE = re.compile(rf"\$\$|\$(?P<dollar>{_PATH})|\{{(?P<braced>{_PATH})\}}")
_STEP = re.compile(r"\.(?P<attribute>\w+)|\[(?P<index>-?\d+)\]")
_MISSING = object()


def expand_names(line: str, namespace: Mapping[str, Any]) -> str:
    """`line` with each `$name`, `{name}`, `{name.attr}` or `{name[0]}` of a defined name
    replaced by its value's text; `$$` is a `$`. Anything else (`{1 + 1}`, an unknown name,
    a private attribute) stays as written."""

    def replace(match: re.Match[str]) -> str:
        reference = match["dollar"] or match["braced"]
        if reference is None:
            return "$"
        head = re.match(r"[A-Za-z_]\w*", reference)[0]  # type: ignore[index]
        value = namespace.get(head, _MISSING)
        for step in _STEP.finditer(reference, len(head)):
            value = _step(value, step["attribute"], step["index"])
        return match[0] if value is _MISSING else str(value)

    return _REFERENCE.sub(replace, line)


def _step(value: Any, attribute: str | None, index: str | None) -> Any:
    """One `.attr` or `[N]` of a reference: only public attributes, only sequence items."""
    if value is _MISSING:
        return value
    if attribute is not None:
        if attribute.startswith("_"):
            return _MISSING
        return getattr(value, attribute, _MISSING)
    if not isinstance(value, Sequence) or isinstance(value, str | bytes):
        return _MISSING
    try:
        return value[int(index or 0)]
    except IndexError:
        return _MISSING
