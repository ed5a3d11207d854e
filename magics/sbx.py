"""`%sbx VERB ...`: one magic routing to small verbs, its settings, and the session it uses."""

from __future__ import annotations

import argparse
import atexit
import re
import textwrap
from collections.abc import Sequence
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand
from traitlets import Bool, Enum, Float, Int, Unicode

from sandbox_kernel.client import CodeInterpreterSandbox
from sandbox_kernel.client.session import SandboxSession
from sandbox_kernel.local import embedded_endpoint

from . import browse, contexts, files, filesystem, processes, workspace
from .completion import ListingCache
from .connection import IN_THE_SANDBOX_KERNEL, Connection
from .constants import COMPLETION_CACHE_SECONDS, COMPLETION_TIMEOUT, REMOTE_HOME
from .expansion import expand_names
from .local_paths import LocalArea
from .progress import widgets_render
from .verb_context import Settings, VerbContext, WorkspaceCopy, WorkspaceNote
from .verbs import HelpShown, Verb, verb_parser, working_directory


@magics_class
class SbxMagics(Magics):
    """`%sbx` line and cell magic.

    In the sandbox kernel it uses the kernel's session (see `load_ipython_extension`); in any
    other IPython the first verb connects to the configured sandbox server, by default the
    embedded one, unless `%sbx connect` chose another.
    """

    displaylimit = Int(50, help="Rows of a returned table that are shown (0: all).").tag(
        config=True, notebook=True
    )
    progress = Enum(
        ["auto", "widget", "text", "none"],
        "auto",
        help="How transfers show progress; auto: a widget in a Jupyter kernel, else text.",
    ).tag(config=True, notebook=True)
    progress_min_bytes = Int(
        4 * 2**20, help="Transfers of at least this many bytes show their progress."
    ).tag(config=True, notebook=True)
    timeout = Float(
        None,
        allow_none=True,
        help="Seconds a `run` cell or `sh` command may take (default: 30 on the cloud, "
        "no practical limit on the embedded server).",
    ).tag(config=True, notebook=True)
    completion_timeout = Float(
        COMPLETION_TIMEOUT,
        help="Seconds Tab waits for a sandbox directory listing before giving up.",
    ).tag(config=True, notebook=True)
    completion_cache_seconds = Float(
        COMPLETION_CACHE_SECONDS,
        help="Seconds a sandbox directory listing keeps serving Tab completion.",
    ).tag(config=True, notebook=True)

    local_root = Unicode(
        None,
        allow_none=True,
        help="Local folder that get, put and the browser's downloads stay in (default: in the "
        "sandbox kernel, its working directory, the notebook's folder; elsewhere, anywhere).",
    ).tag(config=True)
    local_hidden = Bool(
        False,
        help="Let get, put and downloads of the sandbox kernel use local dotfiles and "
        "dot-folders (.ssh, .bashrc, .git, ...).",
    ).tag(config=True)

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        self.workspace_copy: WorkspaceCopy | None = None
        """The files the kernel copied into the sandbox (relative path -> size, mtime)."""
        self.workspace_note: WorkspaceNote | None = None
        """One line on the notebook's folder in the sandbox, for `%sbx status`."""
        self.listings = ListingCache()
        self.connection = Connection(changed=self.listings.forget)
        self.verbs: dict[str, Verb] = dict(VERBS)
        atexit.register(self.connection.close_own_session)

    # ---- the session

    @property
    def session(self) -> SandboxSession | None:
        """The sandbox session the verbs use, or None before the first one connects."""
        return self.connection.session

    def use_kernel(
        self,
        session: SandboxSession | None,
        workspace_copy: WorkspaceCopy | None = None,
        workspace_note: WorkspaceNote | None = None,
    ) -> None:
        """Use the sandbox kernel's session, which the kernel opens and closes, and its hooks
        on the copy of the notebook's folder."""
        self.connection.use_kernel_session(session)
        self.workspace_copy = workspace_copy
        self.workspace_note = workspace_note

    @property
    def sandbox(self) -> CodeInterpreterSandbox:
        """The connected sandbox (connecting first when needed)."""
        return self.connection.sandbox

    @property
    def local_area(self) -> LocalArea:
        """Where the local side of a transfer may be (see `local_paths`)."""
        if self.local_root is not None:
            return LocalArea(self.local_root, hidden=self.local_hidden)
        if self.connection.shares_session:
            return LocalArea(self.connection.kernel_folder, hidden=self.local_hidden)
        return LocalArea(None)

    def verb_context(self) -> VerbContext:
        """What a verb is given: the session, the settings as they are now, the namespace."""
        style = self.progress
        if style == "auto":
            style = "widget" if widgets_render(self.shell) else "text"
        settings = Settings(
            displaylimit=self.displaylimit,
            timeout=self.timeout,
            progress=style,
            progress_min_bytes=self.progress_min_bytes,
        )
        return VerbContext(
            self.connection,
            settings,
            self.local_area,
            self.shell.user_ns if self.shell is not None else {},
            self.workspace_copy,
            self.workspace_note,
        )

    # ---- the magic

    @line_cell_magic
    @no_var_expand
    def sbx(self, line: str, cell: str | None = None) -> Any:
        line = expand_names(line, self.shell.user_ns if self.shell is not None else {})
        name, rest = re.match(r"\s*(\S*)\s*(.*)", line, re.DOTALL).groups()  # type: ignore[union-attr]
        if name in ("-h", "--help"):
            name = "help"
        if not name:
            raise UsageError(f"usage: %sbx VERB ...; verbs: {', '.join(self.verbs)}")
        verb = self.verbs.get(name)
        if verb is None:
            raise UsageError(f"%sbx: unknown verb {name!r}; verbs: {', '.join(self.verbs)}")
        if cell is not None and not verb.takes_cell:
            raise UsageError(f"%%sbx {name} takes no cell body; use the line form %sbx {name}")
        try:
            arguments = verb.parse(rest)
        except HelpShown:
            return None
        session = self.connection.session
        token = working_directory.set(session.cwd if session is not None else REMOTE_HOME)
        try:
            return verb.handler(self.verb_context(), arguments, cell)
        finally:
            working_directory.reset(token)
            if verb.changes_files:
                self.listings.forget()


# ---- the sandbox verbs: status, connect, disconnect, help


def status(sbx: VerbContext, args: argparse.Namespace, cell: str | None) -> None:
    session = sbx.session
    if session is None:
        print(
            "Not connected to a sandbox; the first verb connects (to SANDBOX_KERNEL_ENDPOINT "
            "or AgentRun's settings when set, else the embedded local server)."
        )
        return
    info = session.describe()
    print(f"endpoint:   {info['where']}")
    print(f"server:     {info['server']}")
    print(f"sandbox:    {info['sandbox_id'] or '(not created yet)'}")
    print(f"context:    {info['context_id'] or '(not created yet)'}")
    print(f"isolation:  {info['isolation']}")
    if info["isolation"] == "none":
        print("warning:    NOT isolated: cells run on the server's machine, as its user")
    if info.get("network"):
        print(f"network:    {info['network']}")
    if info.get("egress"):
        print(f"egress:     {', '.join(info['egress'])} (through the sandbox's proxy)")
    print(f"cwd:        {session.cwd}")
    copied = sbx.workspace_note() if sbx.workspace_note is not None else None
    if copied:
        print(f"workspace:  {copied}")
    if session.env:
        print(f"env:        {', '.join(sorted(session.env))}")
    if info["failure"]:
        print(f"error:      {info['failure']}")


def connect(sbx: VerbContext, args: argparse.Namespace, cell: str | None) -> None:
    session = SandboxSession(
        endpoint=args.endpoint,
        token=args.token,
        template=args.template or "default",
        sandbox_id=args.sandbox,
        keep_sandbox=args.keep,
        fallback=embedded_endpoint,
    )
    sbx.connection.connect(session)
    status(sbx, args, cell)


def disconnect(sbx: VerbContext, args: argparse.Namespace, cell: str | None) -> None:
    connection = sbx.connection
    if connection.shares_session:
        raise UsageError(f"%sbx disconnect: {IN_THE_SANDBOX_KERNEL}")
    session = connection.session
    if session is None or session.sandbox is None:
        connection.close_own_session()  # forget a `connect` that failed
        print("Not connected to a sandbox.")
        return
    connection.close_own_session()
    if session.created_sandbox and not session.keep_sandbox:
        print(f"Disconnected; sandbox {session.sandbox_id} was deleted.")
    else:
        print(f"Disconnected; sandbox {session.sandbox_id} is still running.")


def help_verb(sbx: VerbContext, args: argparse.Namespace, cell: str | None) -> None:
    if args.verb is None:
        print(overview())
        return
    verb = VERBS.get(args.verb)
    if verb is None:
        raise UsageError(f"%sbx help: unknown verb {args.verb!r}; verbs: {', '.join(VERBS)}")
    print(verb.parser.format_help().rstrip())


def _sandbox_verbs() -> list[Verb]:
    status_parser = verb_parser(
        "status", "Say where cells run: endpoint, sandbox, context, isolation.", "%sbx status"
    )
    connect_parser = verb_parser(
        "connect",
        "Connect the magics to a sandbox (not in the sandbox kernel, which has its own).\n"
        "Without arguments: SANDBOX_KERNEL_ENDPOINT or AgentRun's settings, else the "
        "embedded local server.",
        "%sbx connect",
        "%sbx connect --endpoint http://127.0.0.1:8900 --token T --sandbox sbx-1234",
    )
    connect_parser.add_argument("--endpoint", metavar="URL", help="sandbox server")
    connect_parser.add_argument("--token", metavar="T", help="the server's token")
    which = connect_parser.add_mutually_exclusive_group()
    which.add_argument("--sandbox", metavar="ID", help="join this sandbox instead of creating one")
    which.add_argument("--template", metavar="NAME", help="template of the sandbox to create")
    connect_parser.add_argument(
        "--keep", action="store_true", help="leave a sandbox it creates running at disconnect"
    )
    disconnect_parser = verb_parser(
        "disconnect",
        "Delete the context, and the sandbox if `connect` created it.",
        "%sbx disconnect",
    )
    help_parser = verb_parser(
        "help", "Show every verb, or one verb's options and examples.", "%sbx help ls"
    )
    help_parser.add_argument("verb", metavar="VERB", nargs="?")
    return [
        Verb("status", status_parser, status),
        Verb("connect", connect_parser, connect),
        Verb("disconnect", disconnect_parser, disconnect),
        Verb("help", help_parser, help_verb),
    ]


GROUPS: Sequence[tuple[str, Sequence[Verb]]] = (
    (files.GROUP, files.VERBS),
    (filesystem.GROUP, filesystem.VERBS),
    (browse.GROUP, browse.VERBS),
    (processes.GROUP, processes.VERBS),
    (contexts.GROUP, contexts.VERBS),
    (workspace.GROUP, workspace.VERBS),
    ("Sandbox", _sandbox_verbs()),
)
VERBS: dict[str, Verb] = {verb.name: verb for _, group in GROUPS for verb in group}


def overview() -> str:
    """Every verb with its usage, what it does and an example (`%sbx?`, `%sbx help`)."""
    lines = [
        "Work with the sandbox from the notebook: its files, processes and contexts.",
        "",
        "%sbx VERB ARGUMENTS on a line; %%sbx VERB OPTIONS above a body for write, sh and run.",
        "Line verbs return values (tables of entries, processes, contexts) that display as",
        "tables. `%sbx help VERB` shows a verb's options; `%config SbxMagics` its settings.",
    ]
    for title, verbs in GROUPS:
        lines += ["", f"{title}:"]
        for verb in verbs:
            lines.append(f"  {verb.usage.replace(' [-h]', '')}")
            lines.append(f"      {verb.summary}")
            lines.append(textwrap.indent(verb.parser.examples[0], "        "))
    return "\n".join(lines)


SbxMagics.sbx.__doc__ = overview()
