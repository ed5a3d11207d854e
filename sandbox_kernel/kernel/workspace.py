"""The notebook's folder in the sandbox: a copy at `WORKSPACE`, where cells run.

Jupyter starts a kernel in the notebook's folder. When the kernel creates its sandbox it
copies that folder in (one tar archive, unpacked by `tar` in the sandbox), so `data.csv`,
`helper.py` and `logo.png` open as they do under python3. Writes land in the sandbox's copy
and never reach the host; `%sbx get` brings results back and `%sbx diff` lists what changed.
Dotfiles and dot-folders (`.env`, `.git`, `.ssh`), links that leave the folder, and whatever
passes the size limit stay behind.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..client import CodeInterpreterSandbox

log = logging.getLogger(__name__)

WORKSPACE = "/home/user/work"
"""Where the notebook's folder is in the sandbox, and the cells' working directory."""
ARCHIVE = "/home/user/.sandbox-kernel-workspace.tar"
COPY_TIMEOUT = 600
MAX_NAMED = 1000
"""Files past the limit after which the walk stops (the count then reads "at least")."""


@dataclass
class Packed:
    """What a copy of the folder holds and what it left behind."""

    folder: Path
    files: dict[str, tuple[int, float]] = field(default_factory=dict)
    """Relative path -> (size, mtime) of every file copied."""
    hidden: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)
    """Links that point out of the folder."""
    too_big: list[str] = field(default_factory=list)
    """Files past the size limit."""
    seconds: float = 0.0

    @property
    def size(self) -> int:
        return sum(size for size, _ in self.files.values())

    def summary(self) -> str:
        """One line for `%sbx status`: what was copied from where, and what stayed behind."""
        line = f"{len(self.files)} files ({self.size / 2**20:.1f} MB) copied from {self.folder}"
        behind = self.left_out()
        if self.hidden:
            hidden = f"{len(self.hidden)} hidden ({_names(self.hidden)})"
            behind = f"{behind}; {hidden}" if behind else hidden
        return f"{line}; left out {behind}" if behind else line

    def left_out(self) -> str:
        """One line naming what stayed on the host, or '' when only dotfiles did."""
        parts = []
        if self.too_big:
            parts.append(f"{len(self.too_big)} past the size limit ({_names(self.too_big)})")
        if self.outside:
            parts.append(f"{len(self.outside)} links out of the folder ({_names(self.outside)})")
        return "; ".join(parts)


def pack(folder: Path, archive: Path, limit_bytes: int) -> Packed:
    """Write the copyable part of `folder` into the tar file `archive`."""
    root = Path(os.path.realpath(folder))
    packed = Packed(root)
    with tarfile.open(archive, "w") as tar:
        for directory, folders, names in os.walk(root):
            relative_directory = Path(directory).relative_to(root)
            for name in sorted(folders):
                if name.startswith("."):
                    packed.hidden.append(str(relative_directory / name) + "/")
            folders[:] = sorted(name for name in folders if not name.startswith("."))
            for name in sorted(names):
                relative = str(relative_directory / name)
                if name.startswith("."):
                    packed.hidden.append(relative)
                    continue
                path = Path(directory) / name
                resolved = Path(os.path.realpath(path))
                if not resolved.is_relative_to(root) or not resolved.is_file():
                    packed.outside.append(relative)
                    continue
                stat = resolved.stat()
                if packed.size + stat.st_size > limit_bytes:
                    packed.too_big.append(relative)
                    if len(packed.too_big) >= MAX_NAMED:
                        return packed  # a kernel started in a huge tree stops walking here
                    continue
                info = tar.gettarinfo(str(resolved), arcname=relative)
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                with open(resolved, "rb") as source:
                    tar.addfile(info, source)
                packed.files[relative] = (stat.st_size, stat.st_mtime)
    return packed


async def copy_folder(sandbox: CodeInterpreterSandbox, folder: Path, limit_bytes: int) -> Packed:
    """Copy `folder` into the sandbox at `WORKSPACE` (which exists afterwards in any case)."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="sandbox-kernel-workspace-") as staging:
        archive = Path(staging) / "workspace.tar"
        packed = await asyncio.to_thread(pack, folder, archive, limit_bytes)
        await sandbox.file_system.upload_async(str(archive), ARCHIVE)
    command = f"mkdir -p {WORKSPACE} && tar -xf {ARCHIVE} -C {WORKSPACE} --no-same-owner"
    reply = await sandbox.process.cmd_async(
        f"{command}; status=$?; rm -f {ARCHIVE}; exit $status", "/home/user", COPY_TIMEOUT
    )
    result = reply.get("result") or {}
    if result.get("exitCode") != 0:
        raise OSError(f"unpacking the notebook's folder failed: {result.get('stderr', '')}")
    packed.seconds = time.monotonic() - started
    log.info(
        "copied %d files (%d bytes) of %s to %s in %.2f s",
        len(packed.files),
        packed.size,
        folder,
        WORKSPACE,
        packed.seconds,
    )
    return packed


def _names(paths: list[str], shown: int = 3) -> str:
    more = f", and {len(paths) - shown} more" if len(paths) > shown else ""
    return ", ".join(paths[:shown]) + more
