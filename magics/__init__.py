"""The `%sbx` IPython extension: the sandbox's files, processes and contexts from a notebook."""

from __future__ import annotations

from typing import Any

from .sbx import SbxMagics

__all__ = ["SbxMagics", "load_ipython_extension"]


def load_ipython_extension(shell: Any) -> None:
    """Register `%sbx` / `%%sbx` with an IPython shell (`%load_ext sandbox_kernel`)."""
    shell.register_magics(SbxMagics)
