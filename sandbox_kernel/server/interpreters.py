"""The interpreters a context can run: IPython, and Deno's Jupyter kernel for JavaScript.

Deno comes from the `deno` package, which ships the binary beside the Python scripts; a
server where it is not installed runs python contexts only and says so in `health`.
"""

from __future__ import annotations

import functools
import os
import sys
from dataclasses import dataclass
from pathlib import Path

KERNEL_APP = "{kernel_app}"
"""Stands in an argv for the path, as the kernel's processes see it, of `context_kernel.py`."""
KERNEL_APP_FILE = Path(__file__).resolve().parent.parent / "context_kernel.py"
KERNEL_APP_FILES = (KERNEL_APP_FILE, KERNEL_APP_FILE.with_name("prompt_stream.py"))
"""The context kernel's file and the one it imports from its own directory."""


@dataclass(frozen=True)
class Interpreter:
    """How the kernel of one context language starts and behaves."""

    language: str
    display_name: str
    argv: tuple[str, ...]
    speaks_ipc: bool = True
    """False for a kernel that can listen only on TCP (isolated, it runs behind a bridge)."""
    interrupt_mode: str | None = None
    """None: the launcher's mode; "message" for a kernel that a SIGINT would kill."""
    late_output_seconds: float = 0.0
    """How long output may still arrive after the kernel went idle and replied."""
    interrupted_error: tuple[str, str] | None = None
    """(name, value) of the error the kernel reports for an interrupted cell, which the
    server reports as a KeyboardInterrupt, as Python's kernel does."""
    v8_flags_variable: str | None = None
    """For a V8 runtime, the variable that passes it V8 flags. V8 reserves far more address
    space than it uses, so a memory limit caps its heap instead of its address space."""
    history_file_option: str | None = None
    """The argument that sets the kernel's history file (`{}` is the file), if it has one."""

    @property
    def limits_address_space(self) -> bool:
        return self.v8_flags_variable is None

    def command(self, memory_bytes: int | None, history_file: str | None = None) -> list[str]:
        """The kernel's argv under a memory limit of `memory_bytes` (None: no limit), with its
        history in `history_file` where the kernel keeps one (None: its default)."""
        argv = list(self.argv)
        if history_file is not None and self.history_file_option is not None:
            argv.append(self.history_file_option.format(history_file))
        if not memory_bytes or self.v8_flags_variable is None:
            return argv
        heap = f"--max-old-space-size={max(1, memory_bytes // 2**20)}"
        return ["env", f"{self.v8_flags_variable}={heap}", *argv]


# Deno forwards console output and the cell's result to iopub from other tasks than the one
# that sends `idle`, so they can arrive a millisecond or two after it (measured under load:
# at most ~2 ms); an execution keeps listening this long after the last of its messages.
DENO_LATE_OUTPUT_SECONDS = 0.03


@functools.cache
def deno_binary() -> str | None:
    """The Deno executable that the `deno` package installed, or None without it."""
    try:
        from deno import find_deno_bin
    except ImportError:
        return None
    try:
        path = find_deno_bin()
    except FileNotFoundError:
        return None
    return os.path.realpath(path) if os.access(path, os.X_OK) else None


def python_interpreter() -> Interpreter:
    # ipykernel with flushes that return at once when nothing was written (context_kernel.py).
    command = (sys.executable, KERNEL_APP, "-f", "{connection_file}")
    return Interpreter(
        "python", "Python 3", command, history_file_option="--HistoryManager.hist_file={}"
    )


def javascript_interpreter(deno: str) -> Interpreter:
    # Deno's kernel ends an interrupted cell on an interrupt_request; SIGINT kills it.
    command = (deno, "jupyter", "--kernel", "--conn", "{connection_file}")
    return Interpreter(
        "javascript",
        "JavaScript (Deno)",
        command,
        speaks_ipc=False,
        interrupt_mode="message",
        late_output_seconds=DENO_LATE_OUTPUT_SECONDS,
        interrupted_error=("Error", "Execution failed"),
        v8_flags_variable="DENO_V8_FLAGS",
    )


def available_interpreters() -> dict[str, Interpreter]:
    """Every language this host can run, by name."""
    found = {"python": python_interpreter()}
    deno = deno_binary()
    if deno is not None:
        found["javascript"] = javascript_interpreter(deno)
    return found
