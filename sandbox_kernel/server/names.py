"""File names that are not valid UTF-8, carried through JSON that is.

Inside the server a name is a `str` decoded the way `os` decodes names (undecodable bytes
become lone surrogates, "surrogateescape"). On the wire, a text field such as `path` shows
such a name with U+FFFD in place of the bad bytes, and a sibling field such as `pathBytes`
carries the exact bytes in base64; a request may name a path by its bytes the same way.
"""

from __future__ import annotations

import base64
import binascii
import os
from typing import Any

from .errors import InvalidRequest


def shown(text: str) -> str:
    """`text` as valid Unicode: bytes that are not UTF-8 appear as U+FFFD."""
    try:
        return os.fsencode(text).decode("utf-8", "replace")
    except UnicodeEncodeError:  # a lone surrogate that stands for no byte
        return text.encode("utf-8", "replace").decode("utf-8")


def exact(text: str) -> bool:
    """True when `shown(text)` loses nothing."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def field(key: str, text: str) -> dict[str, Any]:
    """`{key: text}` for JSON, plus `{keyBytes: base64}` when the text is not valid UTF-8."""
    if exact(text):
        return {key: text}
    return {key: shown(text), f"{key}Bytes": base64.b64encode(os.fsencode(text)).decode("ascii")}


def requested(text: str | None, encoded: str | None, key: str = "path") -> str:
    """The path a request names: `{key}Bytes` (base64) when given, else `{key}`."""
    if encoded is not None:
        try:
            raw = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidRequest(f"{key}Bytes must be base64") from None
        return os.fsdecode(raw)
    if text is None:
        raise InvalidRequest(f"field '{key}' is required")
    return text
