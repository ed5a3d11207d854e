"""Process verbs: `sh`, `ps`, `proc` and `kill`."""

from __future__ import annotations

import argparse
import math
import re
import shlex
import sys
from typing import TYPE_CHECKING, TextIO

from IPython.core.error import UsageError

from .constants import REMOTE_HOME
from .errors import CommandError
from .tables import PROCESS_COLUMNS, Process, Table
from .verbs import Verb, VerbParser, remote_path, verb_parser

if TYPE_CHECKING:
    from .verb_context import VerbContext

GROUP = "Processes"

LEADING_OPTION = re.compile(
    r"""\s*(--no-raise-error|-h|--help|--(?:cwd|timeout|out|err)(?:=|\s+)(?:'[^']*'|"[^"]*"|\S+))"""
    r"""(?=\s|$)"""
)


def parse_sh_line(parser: VerbParser, text: str) -> argparse.Namespace:
    """Options first, then the command exactly as typed (pipes, quotes and redirections kept)."""
    options, position = [], 0
    while match := LEADING_OPTION.match(text, position):
        options.append(match.group(1))
        position = match.end()
    command = text[position:].strip()
    if command == "--" or command.startswith("-- "):
        command = command[2:].strip()
    try:
        words = shlex.split(" ".join(options))
    except ValueError as error:
        raise UsageError(f"{parser.prog}: {error}") from None
    arguments = parser.parse_args(words)
    arguments.command = command
    return arguments


def sh(sbx: VerbContext, args: argparse.Namespace, cell: str | None) -> None:
    if cell is not None and args.command:
        raise UsageError(
            "%%sbx sh runs the cell body; put only options on its first line\n"
            + SH_PARSER.format_usage().strip()
        )
    command = cell if cell is not None else args.command
    if not command.strip():
        raise UsageError("%sbx sh: no command to run\n" + SH_PARSER.format_usage().strip())
    if args.timeout is not None and args.timeout <= 0:
        raise UsageError("%sbx sh: --timeout must be more than 0 seconds")
    cwd = remote_path(args.cwd)
    timeout = math.ceil(args.timeout if args.timeout is not None else sbx.remote_timeout())
    reply = sbx.sandbox.process.cmd(command, cwd, timeout)
    result = reply.get("result") or {}
    stdout, stderr = str(result.get("stdout", "")), str(result.get("stderr", ""))
    _deliver(sbx, stdout, args.out, sys.stdout)
    _deliver(sbx, stderr, args.err, sys.stderr)
    exit_code = result.get("exitCode")
    if args.raise_error:
        failure = _failure(reply.get("status"), exit_code, timeout)
        if failure:
            first_line = command.strip().splitlines()[0]
            raise CommandError(f"{failure}: {first_line}", exit_code, stdout, stderr)


def _deliver(sbx: VerbContext, text: str, variable: str | None, stream: TextIO) -> None:
    if variable:
        sbx.namespace[variable] = text
    elif text:
        stream.write(text)
        stream.flush()


def _failure(status: object, exit_code: object, timeout: int) -> str | None:
    if status == "timeout":
        return f"command timed out after {timeout} s and was killed"
    if isinstance(exit_code, int) and exit_code < 0:
        return f"command was killed by signal {-exit_code}"
    if exit_code not in (0, None):
        return f"command exited with status {exit_code}"
    return None


def ps(sbx: VerbContext, args: argparse.Namespace, cell: str | None) -> Table:
    processes = [Process.from_reply(reply) for reply in sbx.sandbox.process.list()]
    return Table(sorted(processes, key=lambda p: p.pid), PROCESS_COLUMNS, sbx.displaylimit)


def proc(sbx: VerbContext, args: argparse.Namespace, cell: str | None) -> Process:
    return Process.from_reply(sbx.sandbox.process.get(str(args.pid)))


def kill(sbx: VerbContext, args: argparse.Namespace, cell: str | None) -> None:
    sbx.sandbox.process.kill(str(args.pid))


def _sh_parser() -> VerbParser:
    parser = verb_parser(
        "sh",
        "Run a shell command in the sandbox; a non-zero exit fails the cell.",
        "%sbx sh ls -la | head",
        "%%sbx sh --cwd /tmp --out listing\nls\ndu -sh .",
        "%sbx sh --no-raise-error test -f maybe.txt",
    )
    parser.add_argument("command", metavar="COMMAND", nargs="*", help="(line form) the command")
    parser.add_argument("--cwd", metavar="DIR", help=f"working directory (default {REMOTE_HOME})")
    parser.add_argument(
        "--timeout",
        type=float,
        metavar="S",
        help="seconds before it is killed (default: SbxMagics.timeout)",
    )
    parser.add_argument("--out", metavar="VAR", help="store stdout in VAR instead of showing it")
    parser.add_argument("--err", metavar="VAR", help="store stderr in VAR instead of showing it")
    parser.add_argument(
        "--no-raise-error",
        dest="raise_error",
        action="store_false",
        help="do not fail the cell on a non-zero exit",
    )
    return parser


def _verbs() -> list[Verb]:
    ps_parser = verb_parser(
        "ps", "List the sandbox's processes; returns them (.pid, .name, .cmdline...).", "%sbx ps"
    )
    proc_parser = verb_parser("proc", "Describe one sandbox process.", "%sbx proc 1234")
    proc_parser.add_argument("pid", metavar="PID", type=int)
    kill_parser = verb_parser(
        "kill", "Stop a sandbox process (SIGTERM, then SIGKILL).", "%sbx kill 1234"
    )
    kill_parser.add_argument("pid", metavar="PID", type=int)
    return [
        Verb(
            "sh",
            SH_PARSER,
            sh,
            remote_options=("--cwd",),
            takes_cell=True,
            changes_files=True,
            parse_line=parse_sh_line,
        ),
        Verb("ps", ps_parser, ps),
        Verb("proc", proc_parser, proc),
        Verb("kill", kill_parser, kill),
    ]


SH_PARSER = _sh_parser()
VERBS = _verbs()
