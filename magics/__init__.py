"""The `%sbx` IPython extension: the sandbox's files, processes and contexts from a notebook.

It installs as `sandbox_kernel.magics`: `%load_ext sandbox_kernel.magics` (or
`%load_ext sandbox_kernel`) loads it in any IPython. Loaded in the sandbox kernel, it takes
over the kernel's session and its hooks on the copied folder (see `load_ipython_extension`)."""

from __future__ import annotations

from typing import Any

from sandbox_kernel.client.session import SandboxSession

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
    """Register `%sbx` / `%%sbx` and their Tab completion with an IPython shell.

    The shell's kernel, where it is the sandbox kernel, hands over three documented
    attributes: `sandbox_session` (the session it opens and closes), `workspace_files()` and
    `workspace_summary()` (the files it copied into the sandbox and one line on them)."""
    magics = SbxMagics(shell=shell)
    kernel = getattr(shell, "kernel", None)
    session = getattr(kernel, "sandbox_session", None)
    if isinstance(session, SandboxSession):
        magics.use_kernel(session, kernel.workspace_files, kernel.workspace_summary)
    shell.register_magics(magics)
    matchers = shell.Completer.custom_matchers
    matchers[:] = [m for m in matchers if getattr(m, "matcher_identifier", None) != "sbx"]
    matchers.append(SbxCompleter(magics).complete)
