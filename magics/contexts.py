"""Context verbs: `ctx ls|new|use|rm`, `run` (a cell in the sandbox, shown as the kernel shows
it) and `push` / `pull` (variables moved by pickle).

`run` shows a cell with the kernel's own cell runner, `sandbox_kernel.kernel.cells` (result
entries to Jupyter messages; it loads neither the kernel nor the magics), so that a `run`
cell and an ordinary one look the same. That is the magics' one import from `kernel/`, and
it closes no cycle: the kernel reaches the magics only by the extension's name.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import functools
import json
import math
import pickle
import sys
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.display import clear_output, publish_display_data

from sandbox_kernel.client import ExecuteOptions, SandboxError
from sandbox_kernel.client.results import error_content
from sandbox_kernel.kernel.cells import Cell, CellRun

from .constants import REMOTE_HOME
from .errors import VariableTransferError
from .tables import CONTEXT_COLUMNS, Context, Table
from .unpickling import load_values
from .verbs import Verb, remote_path, verb_parser

if TYPE_CHECKING:
    from .verb_context import VerbContext

GROUP = "Contexts and variables"
PICKLE_PROTOCOL = 4
"""Readable by every Python a sandbox may run (3.4 and later)."""


class RemoteError(Exception):
    """An exception raised by code in the sandbox, shown with the sandbox's own traceback."""

    def __init__(self, value: str, traceback: list[str]) -> None:
        super().__init__(value)
        self.traceback = traceback

    def _render_traceback_(self) -> list[str]:
        return self.traceback


@functools.cache
def remote_error_type(name: str) -> type[RemoteError]:
    """A RemoteError subclass named like the sandbox's exception, so the cell's error output
    says `ZeroDivisionError` as it would for an ordinary cell."""
    return type(name, (RemoteError,), {"__module__": "sandbox", "__doc__": RemoteError.__doc__})


class RemoteResult:
    """The value of the last expression of a `run` cell, displayed with its own MIME bundle."""

    def __init__(self, bundle: dict[str, Any], metadata: dict[str, Any]) -> None:
        self.bundle = bundle
        self.metadata = metadata

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> tuple[dict, dict]:
        return self.bundle, self.metadata

    def __repr__(self) -> str:
        return str(self.bundle.get("text/plain", "<result from the sandbox>"))


class DisplayPublisher:
    """Shows the Jupyter messages of a `CellRun` through IPython's display machinery (in any
    IPython, a kernel or a terminal); keeps the main result for the cell's Out."""

    def __init__(self) -> None:
        self.main_result: RemoteResult | None = None

    def __call__(self, msg_type: str, content: dict[str, Any]) -> None:
        if msg_type == "stream":
            stream = sys.stdout if content["name"] == "stdout" else sys.stderr
            stream.write(content["text"])
            stream.flush()
        elif msg_type == "execute_result":
            self.main_result = RemoteResult(content["data"], content["metadata"])
        elif msg_type in ("display_data", "update_display_data"):
            publish_display_data(
                content["data"],
                content["metadata"],
                transient=content.get("transient") or None,
                update=msg_type == "update_display_data",
            )
        elif msg_type == "clear_output":
            clear_output(wait=content["wait"])
        # an error is raised by `run` once the cell ends, with the sandbox's traceback


def run(sbx: VerbContext, args: argparse.Namespace, cell: str | None) -> RemoteResult | None:
    if cell is None:
        raise UsageError(
            "%sbx run takes its code from the cell body:\n%%sbx run [--ctx ID]\n<code>"
        )
    timeout = _timeout(sbx, args.timeout)
    context = sbx.connected().context
    publisher = DisplayPublisher()
    cell_run = CellRun(Cell(0), publisher, lambda notice: _timed_out(timeout))
    try:
        context.execute(
            cell, context_id=args.ctx, timeout=math.ceil(timeout), on_entry=cell_run.feed
        )
    except KeyboardInterrupt:
        with contextlib.suppress(SandboxError):  # a server without the extension: it runs on
            context.interrupt(args.ctx)
        raise
    reply = cell_run.reply()
    if reply["status"] != "ok":
        raise remote_error_type(reply["ename"])(reply["evalue"], reply["traceback"])
    return publisher.main_result


def _timed_out(timeout: float) -> dict[str, Any]:
    value = (
        f"the cell ran longer than {timeout:g} s and was stopped; raise the limit "
        "with `%%sbx run --timeout S` or `%config SbxMagics.timeout = S`"
    )
    return {"type": "error", "name": "TimeoutError", "value": value}


def _timeout(sbx: VerbContext, requested: float | None) -> float:
    if requested is not None and requested <= 0:
        raise UsageError("--timeout must be more than 0 seconds")
    return requested if requested is not None else sbx.remote_timeout()


# ---- push and pull: one helper runs in the sandbox with its own globals, and prints JSON

PUSH_HELPER = """\
import base64, json, pickle
problems, values = {}, {}
for name, data in pickle.loads(base64.b64decode(payload)).items():
    try:
        values[name] = pickle.loads(data)
    except Exception as error:
        problems[name] = f"{type(error).__name__}: {error}"
if not problems:
    scope.update(values)
print(json.dumps(problems))
"""

PULL_HELPER = """\
import base64, json, pickle
problems, found = {}, {}
for name in names:
    if name not in scope:
        problems[name] = "not defined in the sandbox"
        continue
    try:
        found[name] = pickle.dumps(scope[name], protocol=protocol)
    except Exception as error:
        kind = type(scope[name]).__name__
        problems[name] = f"{kind} objects cannot be pickled ({type(error).__name__}: {error})"
payload = base64.b64encode(pickle.dumps(found, protocol=protocol)).decode("ascii")
print(json.dumps({"problems": problems, "payload": payload}))
"""


def _helper_call(helper: str, **arguments: Any) -> str:
    """Code that runs `helper` in the sandbox without leaving names behind in its namespace."""
    bound = ", ".join(f"{name!r}: {value!r}" for name, value in arguments.items())
    return f"exec({helper!r}, {{'scope': globals(), {bound}}})"


def _run_helper(sbx: VerbContext, verb: str, code: str, context_id: str | None) -> Any:
    """Run a helper in the context and read the JSON it printed."""
    reply = sbx.connected().context.execute(
        code,
        context_id=context_id,
        timeout=math.ceil(sbx.remote_timeout()),
        options=ExecuteOptions(store_history=False),  # the notebook's counts stay as they are
    )
    output = []
    for entry in reply.get("results", []):
        if entry.get("type") == "error":
            content = error_content(entry)
            raise VariableTransferError(
                f"{verb} failed in the sandbox: {content['ename']}: {content['evalue']}"
            )
        if entry.get("type") == "stdout":
            output.append(str(entry.get("text", "")))
    try:
        return json.loads("".join(output))
    except ValueError:
        raise VariableTransferError(
            f"{verb} needs a Python context; this one answered {''.join(output)[:80]!r}"
        ) from None


def _checked_names(verb: str, names: list[str]) -> list[str]:
    for name in names:
        if not name.isidentifier():
            raise UsageError(f"%sbx {verb}: {name!r} is not a variable name")
    return names


def push(sbx: VerbContext, args: argparse.Namespace, cell: str | None) -> None:
    names = _checked_names("push", args.names)
    namespace = sbx.namespace
    pickled = {}
    for name in names:
        if name not in namespace:
            raise VariableTransferError(f"cannot push {name}: it is not defined here")
        try:
            pickled[name] = pickle.dumps(namespace[name], protocol=PICKLE_PROTOCOL)
        except Exception as error:
            kind = type(namespace[name]).__name__
            raise VariableTransferError(
                f"cannot push {name}: {kind} objects cannot be pickled "
                f"({type(error).__name__}: {error})"
            ) from None
    payload = base64.b64encode(pickle.dumps(pickled, protocol=PICKLE_PROTOCOL)).decode("ascii")
    problems = _run_helper(sbx, "push", _helper_call(PUSH_HELPER, payload=payload), args.ctx)
    if problems:
        name, problem = next(iter(problems.items()))
        raise VariableTransferError(
            f"cannot push {name}: the sandbox cannot unpickle it ({problem})"
        )


def pull(sbx: VerbContext, args: argparse.Namespace, cell: str | None) -> None:
    names = _checked_names("pull", args.names)
    code = _helper_call(PULL_HELPER, names=names, protocol=PICKLE_PROTOCOL)
    reply = _run_helper(sbx, "pull", code, args.ctx)
    if reply["problems"]:
        name, problem = next(iter(reply["problems"].items()))
        raise VariableTransferError(f"cannot pull {name}: {problem}")
    values = {}
    try:
        pulled = load_values(base64.b64decode(reply["payload"]))
    except Exception as error:
        raise VariableTransferError(f"cannot pull: the sandbox sent {error}") from None
    if not isinstance(pulled, dict) or not all(isinstance(name, str) for name in pulled):
        raise VariableTransferError("cannot pull: the sandbox's reply is not a set of variables")
    for name, data in pulled.items():
        if name not in names or not isinstance(data, bytes):
            raise VariableTransferError(f"cannot pull: the sandbox sent {name!r}, not asked for")
        try:
            values[name] = load_values(data)
        except Exception as error:
            raise VariableTransferError(
                f"cannot pull {name}: this Python cannot unpickle it ({type(error).__name__}: "
                f"{error})"
            ) from None
    sbx.namespace.update(values)


# ---- ctx


def ctx(sbx: VerbContext, args: argparse.Namespace, cell: str | None) -> Any:
    session = sbx.connected()
    sandbox = session.sandbox
    if args.action == "ls":
        current = session.context_id
        contexts = [Context.from_reply(reply, current) for reply in sandbox.context.list()]
        return Table(contexts, CONTEXT_COLUMNS, sbx.displaylimit)
    if args.action == "new":
        cwd = remote_path(args.cwd)
        return Context(session.new_context(args.language, cwd), args.language, cwd)
    if args.action == "use":
        session.context.get(args.id)
        print(f"Now using context {args.id}.")
        return None
    if args.id == session.context_id:
        raise UsageError(
            f"%sbx ctx rm: {args.id} is the context in use; `%sbx ctx use` another one first"
        )
    session.delete_context(args.id)
    return None


CTX_ACTIONS = {
    "ls": "List the contexts; * marks the one in use.",
    "new": "Create a context (it does not become the one in use).",
    "use": "Run later cells (and `run`, `push`, `pull`) in this context.",
    "rm": "Delete a context that is not in use.",
}


def _verbs() -> list[Verb]:
    ctx_parser = verb_parser(
        "ctx",
        "Manage the sandbox's contexts (interpreters): ls, new, use, rm.",
        "%sbx ctx ls",
        "%sbx ctx new --language javascript",
        "%sbx ctx use ctx-1234",
        "%sbx ctx rm ctx-1234",
        usage="%(prog)s {ls | new [--language L] [--cwd DIR] | use ID | rm ID}",
    )
    actions = ctx_parser.add_subparsers(
        dest="action", metavar="ACTION", required=True, prog=ctx_parser.prog
    )
    for action, description in CTX_ACTIONS.items():
        actions.add_parser(action, help=description, description=description)
    new, use, remove = (actions.choices[action] for action in ("new", "use", "rm"))
    new.add_argument("--language", choices=["python", "javascript"], default="python")
    new.add_argument("--cwd", metavar="DIR", help=f"working directory (default {REMOTE_HOME})")
    use.add_argument("id", metavar="ID")
    remove.add_argument("id", metavar="ID")

    run_parser = verb_parser(
        "run",
        "Run the cell body in the sandbox and show its outputs as a sandbox cell would.",
        "%%sbx run\nimport platform\nplatform.node()",
        "%%sbx run --ctx ctx-1234 --timeout 600\ntrain()",
        cell_only=True,
    )
    run_parser.add_argument("--ctx", metavar="ID", help="context to run in (default: current)")
    run_parser.add_argument(
        "--timeout", type=float, metavar="S", help="seconds it may run (default SbxMagics.timeout)"
    )
    push_parser = verb_parser(
        "push",
        "Copy local variables into the sandbox's context (by pickle).",
        "%sbx push df threshold",
    )
    pull_parser = verb_parser(
        "pull",
        "Copy variables from the sandbox's context into the local namespace (by pickle).",
        "%sbx pull results",
    )
    for parser in (push_parser, pull_parser):
        parser.add_argument("names", metavar="NAME", nargs="+")
        parser.add_argument("--ctx", metavar="ID", help="context to use (default: current)")
    return [
        Verb("ctx", ctx_parser, ctx),
        Verb("run", run_parser, run, takes_cell=True, changes_files=True),
        Verb("push", push_parser, push),
        Verb("pull", pull_parser, pull),
    ]


VERBS = _verbs()
