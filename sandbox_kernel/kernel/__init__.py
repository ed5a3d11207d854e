"""The sandbox kernel: an IPython kernel that runs ordinary cells in a sandbox context.

`SandboxKernel` is imported on first use, so that `%%sbx run` (in any IPython) can use the
cell runner without loading the kernel."""

from __future__ import annotations

from typing import Any

__all__ = ["SandboxKernel"]


def __getattr__(name: str) -> Any:
    if name == "SandboxKernel":
        from .kernel import SandboxKernel

        return SandboxKernel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
