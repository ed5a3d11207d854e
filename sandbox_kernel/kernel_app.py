"""Start an ipykernel whose stdout/stderr flushes cost nothing when nothing was written.

ipykernel flushes both streams several times per cell, and every flush waits for a round
trip through its IOPub thread even when the buffers are empty. On a trivial cell that is
about 2 ms of the kernel's 5 ms of CPU (cProfile of a python3 kernel). The sandbox kernel
starts through this module, and so does every Python context in a sandbox, where the
server runs this file by path: it imports nothing but ipykernel.
"""

from __future__ import annotations

import sys
from typing import Any

from ipykernel.iostream import OutStream
from ipykernel.ipkernel import IPythonKernel
from ipykernel.kernelapp import IPKernelApp
from ipykernel.zmqshell import ZMQInteractiveShell
from traitlets import Float, Type


class PromptOutStream(OutStream):
    """An OutStream whose flush returns at once when no output is buffered or in flight.

    A flush that finds the buffers empty may skip the round trip only if no flush on the
    IOPub thread has taken them and not yet queued its message: what the caller sends next
    (the idle status) must queue behind that message. So the buffers are read first and
    the in-flight count second; a flush that took the buffers counts itself in before.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._flushes_in_flight = 0
        super().__init__(*args, **kwargs)

    def flush(self) -> None:
        lock = getattr(self, "_buffer_lock", None)
        if lock is None:  # an ipykernel whose internals differ: flush as it would
            return super().flush()
        with lock:
            buffered = bool(self._buffers)
        if buffered or self._flushes_in_flight or self._subprocess_flush_pending:
            super().flush()

    def _flush(self) -> None:
        self._flushes_in_flight += 1
        try:
            super()._flush()
        finally:
            self._flushes_in_flight -= 1


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


def launch(kernel_class: type | None = None) -> None:
    """Run an IPKernelApp (with `kernel_class`, default IPython's) on these streams."""
    options: dict[str, Any] = {"outstream_class": f"{__name__}.PromptOutStream"}
    if kernel_class is not None:
        options["kernel_class"] = kernel_class
    IPKernelApp.launch_instance(**options)


if __name__ == "__main__":
    if sys.path and sys.path[0] and sys.argv[0].endswith(".py"):
        del sys.path[0]  # this file's directory: a sandbox's runtime, not for user imports
    launch(ContextKernel)
