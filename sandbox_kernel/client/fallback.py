"""The server the client turns to when nothing names one: handed in by its callers, or the
default that the package registers (the embedded server). Imports nothing, so it costs nothing."""

from __future__ import annotations

from collections.abc import Callable

Fallback = Callable[[], tuple[str, "str | None"]]
"""Finds (or starts) a server when called: its `(endpoint, token)`."""

_registered: list[Fallback] = []


def register_default(fallback: Fallback) -> None:
    """Make `fallback` the one used where a caller hands in none (the last registered wins)."""
    _registered.append(fallback)


def default() -> Fallback | None:
    """The fallback registered last, or None."""
    return _registered[-1] if _registered else None
