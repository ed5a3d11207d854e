"""`%sbx diff` (what the sandbox changed in its copy of the notebook's folder) and
`%sbx env` (variables of the sandbox's interpreters)."""

from __future__ import annotations

import argparse
import posixpath
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError

from .constants import TREE_DEPTH
from .tables import entries_of
from .verbs import Verb, verb_parser

if TYPE_CHECKING:
    from .verb_context import VerbContext

GROUP = "The notebook's folder and settings"
_ASSIGNMENT = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)=(?P<value>.*)", re.DOTALL)


@dataclass
class Changes:
    """The sandbox's copy of the notebook's folder against what was copied in."""

    folder: str
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.removed)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        if not self:
            printer.text(f"No changes in {self.folder} since it was copied in.")
            return
        lines = [f"A {path}" for path in self.added]
        lines += [f"M {path}" for path in self.changed]
        lines += [f"D {path}" for path in self.removed]
        printer.text("\n".join(sorted(lines, key=lambda line: line[2:])))


def diff(sbx: VerbContext, args: argparse.Namespace, cell: str | None) -> Changes:
    copied = sbx.workspace_copy() if sbx.workspace_copy is not None else None
    if copied is None:
        raise UsageError(
            "%sbx diff: this kernel copied no folder into the sandbox "
            "(c.SandboxKernel.workspace is 'none', or the sandbox was joined)"
        )
    folder = sbx.connected().cwd
    changes = Changes(folder)
    seen = set()
    for entry in entries_of(sbx.sandbox.file_system.list(folder, depth=TREE_DEPTH)):
        if entry.is_dir:
            continue
        relative = posixpath.relpath(entry.path, folder)
        seen.add(relative)
        if relative not in copied:
            changes.added.append(relative)
            continue
        size, mtime = copied[relative]
        moved = entry.mtime is not None and abs(entry.mtime.timestamp() - mtime) >= 1
        if entry.size != size or moved:
            changes.changed.append(relative)
    changes.removed = sorted(set(copied) - seen)
    return changes


def env(sbx: VerbContext, args: argparse.Namespace, cell: str | None) -> None:
    session = sbx.connected()
    if not args.assignments:
        names = sorted(session.env)
        print("\n".join(names) if names else "No variables set by this kernel.")
        return
    variables = {}
    for assignment in args.assignments:
        match = _ASSIGNMENT.fullmatch(assignment)
        if match is None:
            raise UsageError(f"%sbx env: {assignment!r} is not NAME=VALUE")
        variables[match["name"]] = match["value"]
    session.set_env(variables)
    print(f"Set {', '.join(variables)} in the sandbox's interpreter.")


def _verbs() -> list[Verb]:
    diff_parser = verb_parser(
        "diff",
        "List what the sandbox added (A), changed (M) and removed (D) in its copy of the "
        "notebook's folder; returns the changes (.added, .changed, .removed).",
        "%sbx diff",
        "changes = %sbx diff",
    )
    env_parser = verb_parser(
        "env",
        "Set variables in the sandbox's interpreter, now and after a restart of the context; "
        "with no argument, list the names this kernel set.",
        "%sbx env API_BASE=https://example.org FEATURE=on",
        "%sbx env",
    )
    env_parser.add_argument("assignments", nargs="*", metavar="NAME=VALUE")
    return [Verb("diff", diff_parser, diff), Verb("env", env_parser, env)]


VERBS = _verbs()
