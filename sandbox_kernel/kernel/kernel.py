"""SandboxKernel: the protocol adapter, an IPython kernel whose ordinary cells run in a sandbox.

The ipykernel handlers live here and stay short: where a cell runs is `routing`'s call, a
forwarded cell is `remote.RemoteCells`' (whose `cells.CellRun` turns entries into messages),
and the sandbox session's lifecycle is `supervisor.Supervisor`'s.

Over 400 lines as one job: one short handler for each message this kernel answers otherwise
than ipykernel does, and the traits a config file sets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import warnings
from pathlib import Path
from typing import Any

from ipykernel.ipkernel import IPythonKernel
from traitlets import Bool, Dict, Enum, Float, Type, Unicode

from .. import __version__
from ..client import CodeInterpreterSandbox
from ..client.session import SandboxSession
from ..client.settings import chooses_embedded
from ..context_kernel import log_only_what_is_shown
from ..local import abandon_server, embedded_endpoint
from .cells import Cell, CellRun
from .comms import SandboxComms
from .local_cells import LocalCellError, local_python
from .local_shell import SandboxShell
from .remote import RemoteCells
from .routing import MixedCellError, Route, is_local_at, route
from .supervisor import Supervisor, restart_record_path
from .workspace import WORKSPACE, Packed, copy_folder

log = logging.getLogger(__name__)

ASK_TIMEOUT_SECONDS = 12.0
# jupyter_client kills a kernel that has not exited 5 s after a shutdown request.
SHUTDOWN_SECONDS = 4.5
BANNER_WAIT_SECONDS = 0.9
"""How long after start-up kernel_info waits for the sandbox, so that the banner can say
which one: under the second after which jupyter_client's wait_for_ready asks again."""
# ipykernel pauses this long after each cell so that output written here lands first.
DEBUG_SECONDS = 35.0
DEBUGGER_WAIT_SECONDS = 5.0
LOCAL_EXECUTE_SLEEP = IPythonKernel._execute_sleep.default_value
MEMORY_HISTORY = ":memory:"
JAVASCRIPT_LANGUAGE_INFO = {
    "name": "javascript",
    "mimetype": "application/javascript",
    "file_extension": ".js",
    "codemirror_mode": "javascript",
    "pygments_lexer": "javascript",
    "nbconvert_exporter": "script",
}
DEBUGGER_UNAVAILABLE = (
    "the sandbox kernel does not offer a debugger: cells run in the sandbox, and this "
    "sandbox server does not forward debug requests"
)
# platformdirs warns on the terminal when XDG_RUNTIME_DIR is unset and falls back to /tmp,
# which is where the embedded server's state goes anyway.
warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")


class SandboxKernel(IPythonKernel):
    """Forwards every ordinary cell to `context.execute`; `%sbx` cells run here, locally."""

    implementation = "sandbox-kernel"
    implementation_version = __version__
    shell_class = Type(SandboxShell)

    endpoint = Unicode(
        None, allow_none=True, help="Sandbox server URL (default: environment, else embedded)."
    ).tag(config=True)
    token = Unicode(None, allow_none=True, help="Token for the sandbox server.").tag(config=True)
    template = Unicode("default", help="Template of the sandbox this kernel creates.").tag(
        config=True
    )
    sandbox_id = Unicode(
        None, allow_none=True, help="Join this existing sandbox instead of creating one."
    ).tag(config=True)
    timeout = Float(
        None,
        allow_none=True,
        help="Seconds one cell may run in the sandbox (default: 30 on the cloud, "
        "no practical limit on the embedded server).",
    ).tag(config=True, notebook=True)
    keep_sandbox = Bool(
        False, help="Leave the sandbox this kernel created running when the kernel shuts down."
    ).tag(config=True)
    workspace = Enum(
        ["copy", "none"],
        "copy",
        help=f"copy: the notebook's folder (the kernel's working directory) is copied into a "
        f"sandbox the kernel creates, at {WORKSPACE}, where cells run; writes stay in the "
        "sandbox. Dotfiles and dot-folders stay behind. none: cells run in /home/user.",
    ).tag(config=True)
    workspace_limit_mb = Float(
        50, help="Megabytes of the notebook's folder copied at most; the rest stays behind."
    ).tag(config=True)
    env = Dict(
        value_trait=Unicode(),
        help="Variables for the sandbox's interpreters (nothing of the host's environment "
        "passes otherwise); %sbx env NAME=VALUE adds more from a notebook.",
    ).tag(config=True)
    trust_outputs = Bool(
        False,
        help="Show what sandbox code displays as it is: its scripts run in your browser, "
        "with your Jupyter session. Off: HTML is cleaned and JavaScript left out.",
    ).tag(config=True)
    language = Enum(
        ["python", "javascript"], "python", help="Language of the sandbox context cells run in."
    ).tag(config=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        log_only_what_is_shown(self.log)
        _log_beside_the_kernel(self.log)
        if self.language == "javascript":
            self.language_info = JAVASCRIPT_LANGUAGE_INFO
        history = getattr(getattr(self.shell, "history_manager", None), "hist_file", None)
        self.sandbox_session = SandboxSession(
            endpoint=self.endpoint,
            token=self.token,
            template=self.template,
            sandbox_id=self.sandbox_id,
            keep_sandbox=self.keep_sandbox,
            language=self.language,
            history_file=MEMORY_HISTORY if str(history) == MEMORY_HISTORY else None,
            env=dict(self.env),
            fallback=embedded_endpoint,
            **self._workspace_settings(),
        )
        connection_file = getattr(self.parent, "connection_file", "")
        self.supervisor = Supervisor(self.sandbox_session, restart_record_path(connection_file))
        self.remote = RemoteCells(self.supervisor, self._publish, self._ask_input)
        self.remote.trust_outputs = self.trust_outputs
        self.sandbox_comms = SandboxComms(
            self._send_iopub,
            lambda: set(self.comm_manager.comms),
            trusted=lambda: self.trust_outputs,
        )
        self.sandbox_comms.on_debug_event = self._publish_debug_event_of_sandbox
        self.remote.comms = self.sandbox_comms
        self.supervisor.after_open = self.remote.connect
        if not chooses_embedded(self.endpoint):
            abandon_server()  # started early on a guess (__main__) that the config overruled
        self.remote.cell_parent = lambda: self.get_parent("shell")
        for msg_type in ("comm_open", "comm_msg", "comm_close"):
            self.shell_handlers[msg_type] = self._route_comm
        self._started_at = time.monotonic()
        if self.shell is not None:
            self.shell.configurables.append(self)
            # The magics take `sandbox_session` and the two workspace hooks below as they load.
            self.shell.extension_manager.load_extension("sandbox_kernel.magics")

    def _workspace_settings(self) -> dict[str, Any]:
        """Where the session's contexts run, and the copy of the folder a new sandbox gets."""
        self.workspace_copy: Packed | None = None
        self._folder = Path.cwd()
        if self.workspace == "none" or self.sandbox_id:
            return {}
        return {"cwd": WORKSPACE, "prepare": self._copy_workspace}

    def workspace_files(self) -> dict[str, tuple[int, float]] | None:
        """The files copied into the sandbox (relative path -> size, mtime), for `%sbx`."""
        return self.workspace_copy.files if self.workspace_copy is not None else None

    def workspace_summary(self) -> str | None:
        """One line on the notebook's folder in the sandbox, for `%sbx status`."""
        return self.workspace_copy.summary() if self.workspace_copy is not None else None

    async def _copy_workspace(self, sandbox: CodeInterpreterSandbox) -> None:
        """Copy the notebook's folder in; a failure is told in the first cell, not fatal."""
        limit = int(self.workspace_limit_mb * 2**20)
        try:
            self.workspace_copy = await copy_folder(sandbox, self._folder, limit)
        except Exception as error:
            self.log.warning("copying %s into the sandbox failed: %s", self._folder, error)
            await sandbox.file_system.mkdir_async(WORKSPACE, parents=True)
            self.remote.notices.append(
                f"The notebook's folder was not copied into the sandbox ({error}); cells run "
                f"in an empty {WORKSPACE}."
            )
            return
        copied = self.workspace_copy
        left_out = copied.left_out()
        if left_out:
            hint = " (c.SandboxKernel.workspace_limit_mb sets the limit)" if copied.too_big else ""
            self.remote.notices.append(
                f"Copied {self._folder} to {WORKSPACE} in the sandbox, leaving out "
                f"{left_out}{hint}."
            )

    def start(self) -> None:
        super().start()
        self._started_at = time.monotonic()
        self.supervisor.start(self.io_loop.asyncio_loop)

    # ---- kernel_info: the banner says where cells run; no debugger is offered

    @property
    def banner(self) -> str:
        # IPython's own banner describes the local Python, which runs only %sbx magics here.
        local = (super().banner or "") if self.language == "python" else ""
        return f"{local}\n{self.supervisor.where_cells_run()}\n"

    @property
    def kernel_info(self) -> dict[str, Any]:
        info = dict(super().kernel_info)
        features = [item for item in info.get("supported_features", []) if item != "debugger"]
        if self._offers_debugger():
            features.append("debugger")
        info["supported_features"] = features
        info["debugger"] = self._offers_debugger()
        return info

    def _offers_debugger(self) -> bool:
        """The sandbox's interpreter is debugged, never this process: only where the server
        forwards debug requests (its `debug` extension), and only for Python."""
        session = self.sandbox_session
        return (
            self.language == "python"
            and session.sandbox is not None
            and "debug" in session.extensions
        )

    async def kernel_info_request(self, stream: Any, ident: Any, parent: Any) -> None:
        waited = time.monotonic() - self._started_at
        # Python's kernel_info also says whether the debugger is offered, which only the
        # sandbox's health tells: JupyterLab asks once, so wait longer for it. The context
        # goes on starting meanwhile; the first cell waits for it.
        limit = DEBUGGER_WAIT_SECONDS if self.language == "python" else BANNER_WAIT_SECONDS
        await self.supervisor.connected(limit - waited)
        await super().kernel_info_request(stream, ident, parent)

    async def do_debug_request(self, msg: dict[str, Any]) -> dict[str, Any]:
        """Forward a DAP request to the sandbox's interpreter where the server offers it;
        else refuse at once, so the control channel keeps answering (interrupts, shutdown).
        This process itself is never debugged."""
        if self._offers_debugger():
            comms, session = self.sandbox_comms, self.sandbox_session

            async def forward() -> dict[str, Any]:
                await comms.connect(session.context, session.context_id)
                return await comms.debug_request(msg)

            with contextlib.suppress(Exception):
                return await self.supervisor.on_main_loop(forward, DEBUG_SECONDS)
        return {
            "type": "response",
            "request_seq": msg.get("seq", 0),
            "success": False,
            "command": msg.get("command", ""),
            "message": DEBUGGER_UNAVAILABLE,
            "body": {},
        }

    # ---- execution

    async def do_execute(
        self,
        code: str,
        silent: bool,
        store_history: bool = True,
        user_expressions: dict | None = None,
        allow_stdin: bool = False,
        *,
        cell_meta: dict | None = None,
        cell_id: str | None = None,
    ) -> dict[str, Any]:
        shell = self.shell
        cell = Cell(shell.execution_count, silent, store_history)
        try:
            where = route(code)
            if where is Route.LOCAL:
                local_python(code)  # refuses what only looks local
        except (MixedCellError, LocalCellError) as error:
            run = CellRun(cell, self._publish)
            run.stop({"name": "UsageError", "value": str(error), "traceback": ""})
            return self._replied(cell, run.reply())
        # A forwarded cell writes nothing here to wait for; the pause was 0.5 of its ~10 ms.
        self._execute_sleep = LOCAL_EXECUTE_SLEEP if where is Route.LOCAL else 0.0
        if where is Route.LOCAL:
            return await self._execute_locally(
                code, cell, user_expressions, allow_stdin, cell_meta, cell_id
            )
        if cell.stored:
            shell.history_manager.store_inputs(cell.count, code)
        reply = await self.remote.run(
            code,
            cell,
            allow_stdin=allow_stdin,
            user_expressions=user_expressions,
            timeout=self.timeout,
        )
        reply = self._replied(cell, reply)
        if _asks_exit(reply):
            await self._exit()
        return reply

    async def _execute_locally(
        self,
        code: str,
        cell: Cell,
        user_expressions: dict | None,
        allow_stdin: bool,
        cell_meta: dict | None,
        cell_id: str | None,
    ) -> dict[str, Any]:
        """Run a `%sbx` cell in this process, as IPython would; the context's history gets
        its input, so the notebook's counts mean the same on both sides."""
        if code.strip():
            with contextlib.suppress(Exception):  # %sbx status reports a failure itself
                await self.supervisor.ready()
        reply = await super().do_execute(
            code,
            cell.silent,
            cell.store_history,
            user_expressions,
            allow_stdin,
            cell_meta=cell_meta,
            cell_id=cell_id,
        )
        if cell.stored and self.shell.execution_count > cell.count:
            parsed = self.shell.history_manager.input_hist_parsed
            source = parsed[cell.count] if cell.count < len(parsed) else code
            self.remote.note_local_cell(cell.count, source)
        return reply

    def _replied(self, cell: Cell, reply: dict[str, Any]) -> dict[str, Any]:
        """The reply of a cell handled here: the count advanced as IPython advances it."""
        if cell.stored:
            self.shell.execution_count += 1
        if reply["status"] == "error":
            reply["engine_info"] = {
                "engine_uuid": self.ident,
                "engine_id": self.int_id,
                "method": "execute",
            }
        return reply

    async def _exit(self) -> None:
        """`exit` in a cell: as python3's kernel does, end this process, once the sandbox
        session is closed (the frontend then restarts the kernel, or the console quits)."""
        with contextlib.suppress(Exception):
            await self.supervisor.close(
                restart=False, keep_sandbox=self.keep_sandbox, timeout=SHUTDOWN_SECONDS
            )
        self.shell.exit_now = True

    def _send_iopub(
        self,
        msg_type: str,
        content: dict[str, Any],
        parent: dict[str, Any] | None,
        *,
        buffers: list[bytes] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Publish a message of the sandbox's widgets under the notebook's `parent`."""
        self.session.send(
            self.iopub_socket,
            msg_type,
            content,
            parent=parent or {},
            ident=self._topic(msg_type),
            buffers=buffers or None,
            metadata=metadata,
        )

    def _publish_debug_event_of_sandbox(self, event: dict[str, Any]) -> None:
        self.session.send(
            self.iopub_socket,
            "debug_event",
            event,
            parent=self.get_parent("control"),
            ident=self._topic("debug_event"),
        )

    async def _route_comm(self, stream: Any, ident: Any, msg: dict[str, Any]) -> None:
        """A comm message of the notebook: the sandbox's comms go there, the rest to this
        process's own comm manager (the `%sbx browse` widgets)."""
        if self.sandbox_comms.is_for_sandbox(msg, set(self.comm_manager.targets)):
            with contextlib.suppress(Exception):
                await self.sandbox_comms.to_sandbox(msg)
            return
        getattr(self.comm_manager, msg["header"]["msg_type"])(stream, ident, msg)

    async def comm_info_request(self, stream: Any, ident: Any, parent: Any) -> None:
        """This process's comms and the sandbox's, as one kernel's."""
        target_name = parent["content"].get("target_name")
        comms = {
            comm_id: {"target_name": comm.target_name}
            for comm_id, comm in self.comm_manager.comms.items()
            if target_name is None or comm.target_name == target_name
        }
        comms.update(self.sandbox_comms.comm_info(target_name))
        content = {"comms": comms, "status": "ok"}
        self.session.send(stream, "comm_info_reply", content, parent, ident)

    def _publish(self, msg_type: str, content: dict[str, Any]) -> None:
        self.session.send(
            self.iopub_socket,
            msg_type,
            content,
            parent=self.get_parent("shell"),
            ident=self._topic(msg_type),
        )

    def _ask_input(self, entry: dict[str, Any], allow_stdin: bool) -> str:
        """Ask the frontend (runs in a thread: the prompt waits on the stdin channel)."""
        self._allow_stdin = allow_stdin
        ask = self.getpass if entry.get("password") else self.raw_input
        return ask(str(entry.get("prompt", "")))

    def do_is_complete(self, code: str) -> dict[str, Any]:
        """Python's check for Python cells and local magics; other languages are unknown here."""
        if self.language == "python":
            return super().do_is_complete(code)
        try:
            local = route(code) is Route.LOCAL
        except MixedCellError:
            return {"status": "invalid"}
        return super().do_is_complete(code) if local else {"status": "unknown"}

    # ---- completion and inspection: from the sandbox's context, `%sbx` lines locally

    async def do_complete(self, code: str, cursor_pos: int | None) -> dict[str, Any]:
        cursor_pos = len(code) if cursor_pos is None else cursor_pos
        if self._answers_remotely(code, cursor_pos, "complete"):
            with contextlib.suppress(Exception):
                reply = await asyncio.wait_for(
                    self.sandbox_session.context.complete_async(code, cursor_pos),
                    ASK_TIMEOUT_SECONDS,
                )
                return {
                    "status": "ok",
                    "matches": reply.get("matches", []),
                    "cursor_start": reply.get("cursorStart", cursor_pos),
                    "cursor_end": reply.get("cursorEnd", cursor_pos),
                    "metadata": reply.get("metadata", {}),
                }
        return super().do_complete(code, cursor_pos)

    async def do_inspect(
        self,
        code: str,
        cursor_pos: int | None,
        detail_level: int = 0,
        omit_sections: Any = (),
    ) -> dict[str, Any]:
        cursor_pos = len(code) if cursor_pos is None else cursor_pos
        if self._answers_remotely(code, cursor_pos, "inspect"):
            with contextlib.suppress(Exception):
                reply = await asyncio.wait_for(
                    self.sandbox_session.context.inspect_async(code, cursor_pos, detail_level),
                    ASK_TIMEOUT_SECONDS,
                )
                return {
                    "status": "ok",
                    "found": bool(reply.get("found")),
                    "data": reply.get("data", {}),
                    "metadata": reply.get("metadata", {}),
                }
        return super().do_inspect(code, cursor_pos, detail_level, omit_sections)

    def _answers_remotely(self, code: str, cursor_pos: int, extension: str) -> bool:
        """The sandbox answers unless the cursor is in a local `%sbx` line or cell, or the
        server cannot (then the local kernel does what it can)."""
        if not self.sandbox_session.is_open or extension not in self.sandbox_session.extensions:
            return False
        return not is_local_at(code, cursor_pos)

    # ---- restart and shutdown

    async def do_shutdown(self, restart: bool) -> dict[str, Any]:
        """Delete the contexts this kernel created; the sandbox too unless restarting or
        keeping it."""

        def close() -> Any:
            return self.supervisor.close(
                restart=restart, keep_sandbox=self.keep_sandbox, timeout=SHUTDOWN_SECONDS
            )

        with contextlib.suppress(Exception):
            await self.supervisor.on_main_loop(close, SHUTDOWN_SECONDS)
        return super().do_shutdown(restart)


def _asks_exit(reply: dict[str, Any]) -> bool:
    """True when the cell called `exit` (or `quit`) without keeping the kernel."""
    return any(
        item.get("source") == "ask_exit" and not item.get("keepkernel")
        for item in reply.get("payload", [])
        if isinstance(item, dict)
    )


def _log_beside_the_kernel(kernel_log: logging.Logger) -> None:
    """Send this package's log records where the kernel's own go (the terminal or the
    Jupyter server's log), never to sys.stderr, which in a kernel is the user's cell output."""
    package_log = logging.getLogger("sandbox_kernel")
    if package_log.handlers or not kernel_log.handlers:
        return
    for handler in kernel_log.handlers:
        package_log.addHandler(handler)
    package_log.setLevel(kernel_log.getEffectiveLevel())
    package_log.propagate = False
