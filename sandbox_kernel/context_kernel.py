"""The kernel of a sandbox's Python context, which the server runs by path in each sandbox.

Inside a sandbox only ipykernel is importable, not this package: the file imports nothing
of ours but `prompt_stream.py`, which the server places beside it.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from ipykernel.ipkernel import IPythonKernel
from ipykernel.kernelapp import IPKernelApp
from ipykernel.zmqshell import ZMQInteractiveShell
from traitlets import Float, Type


class ContextShell(ZMQInteractiveShell):
    """The shell of a sandbox context: `exit` asks the notebook's kernel to exit (the
    `ask_exit` payload) but leaves this interpreter running; the kernel that owns the context
    deletes it when it shuts down."""

    def ask_exit(self) -> None:
        payload = {"source": "ask_exit", "keepkernel": bool(self.keepkernel_on_exit)}
        self.payload_manager.write_payload(payload)


class ContextKernel(IPythonKernel):
    """The kernel of a sandbox context. Its one client is the sandbox server, which reads
    neither `busy` statuses nor `execute_input`: leaving them out spares both sides two
    messages of the five a trivial cell costs. The server also waits for `idle`, which
    follows all of a cell's output, so ipykernel's pause before each reply (meant to let
    output land first) is only half a millisecond lost.

    An execute_request may say, in its metadata, which count the notebook gives it
    (`sandboxKernel.executionCount`) and what ran at the counts this kernel never saw
    (`pastInputs`, the notebook kernel's own cells): the count moves there first, with those
    inputs in `In`, so `Out[n]`, `In[n]` and `_` mean what they mean in the notebook."""

    _execute_sleep = Float(0.0).tag(config=True)
    shell_class = Type(ContextShell)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        log_only_what_is_shown(self.log)

    async def do_execute(self, code: str, silent: bool, *args: Any, **kwargs: Any) -> Any:
        alignment = (kwargs.get("cell_meta") or {}).get("sandboxKernel")
        if isinstance(alignment, dict):
            align_count(self.shell, alignment)
        return await super().do_execute(code, silent, *args, **kwargs)

    def _publish_execute_input(self, code: str, parent: Any, execution_count: int) -> None:
        return

    def _publish_status(self, status: str, channel: str, parent: Any = None) -> None:
        if status != "busy":
            super()._publish_status(status, channel, parent)


def log_only_what_is_shown(kernel_log: logging.Logger) -> None:
    """traitlets leaves an app's logger at DEBUG and lets its handlers drop what is below
    `log_level`, so each of ipykernel's debug lines per message builds a record no handler
    shows (~5% of a kernel's CPU in a trivial cell, py-spy --gil): the logger drops them."""
    levels = [handler.level for handler in kernel_log.handlers]
    if levels and kernel_log.level < min(levels):
        kernel_log.setLevel(min(levels))


def align_count(shell: Any, alignment: dict[str, Any]) -> None:
    """Move the shell's count forward to `executionCount`, storing the past inputs (or an empty
    one) at the counts it skips. Never backward: a count reused would clash in the history."""
    count = alignment.get("executionCount")
    if not isinstance(count, int):
        return
    past = {}
    for item in alignment.get("pastInputs") or ():
        if isinstance(item, (list, tuple)) and len(item) == 2:
            past[item[0]] = str(item[1])
    while shell.execution_count < count:
        shell.history_manager.store_inputs(
            shell.execution_count, past.get(shell.execution_count, "")
        )
        shell.execution_count += 1


if __name__ == "__main__":
    import prompt_stream  # beside this file, so found through sys.path[0]

    if sys.path and sys.path[0] and sys.argv[0].endswith(".py"):
        del sys.path[0]  # this file's directory: a sandbox's runtime, not for user imports
    stream = f"{prompt_stream.__name__}.{prompt_stream.PromptOutStream.__name__}"
    IPKernelApp.launch_instance(kernel_class=ContextKernel, outstream_class=stream)
