"""The sandbox kernel's own IPython shell: it runs `%sbx` magics and never the notebook's code.

Two doors of IPython would run a notebook's text on the kernel's host: the cell transformers
(any line the router misjudged would be compiled) and `%config`, which evaluates its value as
Python. The shell closes both: cells go through `local_python`, and `%config` takes Python
literals only, for the settings marked `notebook=True`; the rest (endpoint, token, where local
files may go) belong to the Jupyter config files of whoever runs the kernel.
"""

from __future__ import annotations

import ast
import re
from typing import Any

from ipykernel.zmqshell import ZMQInteractiveShell
from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from traitlets import TraitError
from traitlets.config import Config, Configurable

from .local_cells import local_python

_SETTING = re.compile(r"(?P<owner>[A-Za-z_]\w*)\.(?P<name>[A-Za-z_]\w*)\s*(?:=\s*(?P<value>.+))?")


class SandboxShell(ZMQInteractiveShell):
    """ZMQInteractiveShell whose cells are only ever magic calls (see `local_python`)."""

    def transform_cell(self, raw_cell: str) -> str:
        return local_python(raw_cell)

    def init_magics(self) -> None:
        super().init_magics()
        self.register_magics(LiteralConfigMagics)


@magics_class
class LiteralConfigMagics(Magics):
    """`%config` that shows settings and sets them to literals, never evaluating its text."""

    @line_magic
    def config(self, line: str) -> Any:
        """`%config`, `%config Class`, `%config Class.name`, `%config Class.name = literal`."""
        return configure(self.shell.configurables, line)


def configure(configurables: list[Configurable], line: str) -> Any:
    """Show or set a setting of `configurables` as `%config` does, with literal values only."""
    owners = {type(item).__name__: item for item in configurables}
    line = line.strip()
    if not line:
        print("Available objects for config:")
        for name in owners:
            print("   ", name)
        return None
    if line in owners:
        print(re.sub(r"^--", "", type(owners[line]).class_get_help(owners[line]), flags=re.M))
        return None
    match = _SETTING.fullmatch(line)
    if match is None or match["owner"] not in owners:
        raise UsageError(f"%config: {line!r} is not `Class.setting = value` of {', '.join(owners)}")
    owner, name = owners[match["owner"]], match["name"]
    trait = owner.traits(config=True).get(name)
    if trait is None:
        raise UsageError(f"%config: {match['owner']} has no setting {name!r}")
    if match["value"] is None:
        return getattr(owner, name)
    if not trait.metadata.get("notebook"):
        raise UsageError(
            f"%config: {match['owner']}.{name} cannot be changed from a notebook; set "
            f"c.{match['owner']}.{name} in a Jupyter config file"
        )
    try:
        value = ast.literal_eval(match["value"].strip())
    except (ValueError, SyntaxError):
        raise UsageError(
            f"%config: {match['value'].strip()!r} is not a Python literal (a number, a string, "
            "True, False, None, or a list, tuple or dict of those)"
        ) from None
    config = Config()
    config[match["owner"]][name] = value
    try:
        for item in configurables:
            item.update_config(config)
    except TraitError as error:
        raise UsageError(f"%config: {match['owner']}.{name}: {error}") from None
    return None
