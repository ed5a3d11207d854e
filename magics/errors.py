"""Failures of `%sbx` verbs that IPython shows as one line, without a local traceback."""

from __future__ import annotations


class SbxMagicError(Exception):
    """A verb failed for a reason the user can act on; the message says which and why."""

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


class CommandError(SbxMagicError):
    """A `sh` command exited with a non-zero status or ran out of time."""

    def __init__(self, message: str, exit_code: int | None, stdout: str, stderr: str) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.stdout = stdout
        self.stderr = stderr


class VariableTransferError(SbxMagicError):
    """`push` or `pull` could not move a variable: it cannot be pickled, or not unpickled."""


class LocalFileError(SbxMagicError):
    """A local file or directory of `put` or `get` is missing or unusable."""
