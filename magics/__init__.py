"""The `%sbx` IPython extension: the sandbox's files, processes and contexts from a notebook.

It installs as `sandbox_kernel.magics`: `%load_ext sandbox_kernel.magics` (or
`%load_ext sandbox_kernel`) loads it in any IPython."""

from __future__ import annotations

from typing import Any

from .completion import SbxCompleter
from .sbx import SbxMagics

__all__ = ["SandboxBrowser", "SbxMagics", "load_ipython_extension"]


def __getattr__(name: str) -> Any:
    """`SandboxBrowser` imports ipywidgets, so it loads on first use, not with the extension."""
    if name == "SandboxBrowser":
        from .browser import SandboxBrowser

        return SandboxBrowser
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_ipython_extension(shell: Any) -> None:
    """Register `%sbx` / `%%sbx` and their Tab completion with an IPython shell."""
    magics = SbxMagics(shell=shell)
    shell.register_magics(magics)
    matchers = shell.Completer.custom_matchers
    matchers[:] = [m for m in matchers if getattr(m, "matcher_identifier", None) != "sbx"]
    matchers.append(SbxCompleter(magics).complete)
