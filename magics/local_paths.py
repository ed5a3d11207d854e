"""Where the local side of a transfer may be: inside one folder, never a hidden file.

In the sandbox kernel a notebook's `%sbx get` and `put` (and the browser's downloads) read
and write files on the kernel's host, so they are confined to the notebook's folder (or
`c.SbxMagics.local_root`), and dotfiles and dot-folders (`.bashrc`, `.ssh/`, `.git/hooks/`,
`.ipython/`) are out of reach unless `c.SbxMagics.local_hidden` allows them. Both are
settings of the Jupyter config files: a notebook cannot change them.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import LocalFileError


class LocalArea:
    """The local paths transfers may use: under `root` (None: anywhere), hidden ones or not."""

    def __init__(self, root: str | os.PathLike[str] | None, *, hidden: bool = True) -> None:
        self.root = Path(os.path.realpath(root)) if root is not None else None
        self.hidden = hidden

    @property
    def confined(self) -> bool:
        return self.root is not None

    def check(self, path: str | os.PathLike[str], shown: str | None = None) -> Path:
        """`path` as an absolute path (links resolved when confined), once it is allowed."""
        shown = shown if shown is not None else os.fspath(path)
        absolute = Path(os.path.abspath(Path(path).expanduser()))
        if self.root is None:
            return absolute
        resolved = Path(os.path.realpath(absolute))
        try:
            relative = resolved.relative_to(self.root)
        except ValueError:
            raise LocalFileError(
                f"{shown} is outside {self.root}, the folder local files of this kernel stay "
                "in (c.SbxMagics.local_root in a Jupyter config file names another)"
            ) from None
        if not self.hidden and any(part.startswith(".") for part in relative.parts):
            raise LocalFileError(
                f"{shown} is a hidden file or folder; local dotfiles are out of reach of "
                "notebooks (c.SbxMagics.local_hidden = True in a Jupyter config file allows them)"
            )
        return resolved

    def allows(self, path: str | os.PathLike[str]) -> bool:
        """True when `check` would accept `path`."""
        try:
            self.check(path)
        except LocalFileError:
            return False
        return True
