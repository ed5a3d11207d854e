"""`%sbx VERB ...`: one magic, a router of verbs, an argument parser that raises UsageError."""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Callable
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from traitlets.config import Configurable

from sandbox_kernel.client.session import SandboxSession


class VerbParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are UsageErrors carrying the verb's usage."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message}\n{self.format_usage().strip()}")

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        if message:
            raise UsageError(message.strip())
        raise UsageError(self.format_help().strip())


@magics_class
class SbxMagics(Magics, Configurable):
    """`%sbx` line and cell magic; in the sandbox kernel it shares the kernel's session."""

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        self.session: SandboxSession | None = None
        self.verbs: dict[str, Callable[[list[str], str | None], Any]] = {
            "status": self.status,
        }

    @line_cell_magic
    def sbx(self, line: str, cell: str | None = None) -> Any:
        """Work with the sandbox: `%sbx status`."""
        try:
            words = shlex.split(line)
        except ValueError as error:
            raise UsageError(f"%sbx: {error}") from None
        if not words:
            raise UsageError(f"usage: %sbx VERB ... (verbs: {', '.join(sorted(self.verbs))})")
        verb, arguments = words[0], words[1:]
        if verb not in self.verbs:
            raise UsageError(
                f"%sbx: unknown verb {verb!r} (verbs: {', '.join(sorted(self.verbs))})"
            )
        return self.verbs[verb](arguments, cell)

    def status(self, arguments: list[str], cell: str | None) -> None:
        """Print where cells run: endpoint, sandbox, context and isolation."""
        VerbParser(prog="%sbx status", description=self.status.__doc__).parse_args(arguments)
        if self.session is None:
            print("Not connected to a sandbox.")
            return
        info = self.session.describe()
        print(f"endpoint:   {info['where']}")
        print(f"server:     {info['server']}")
        print(f"sandbox:    {info['sandbox_id'] or '(not created yet)'}")
        print(f"context:    {info['context_id'] or '(not created yet)'}")
        print(f"isolation:  {info['isolation']}")
        if info["failure"]:
            print(f"error:      {info['failure']}")
