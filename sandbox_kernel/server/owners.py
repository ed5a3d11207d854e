"""Which server serves which sandboxes, when several share one root directory.

Two installations (two virtual environments) run a server each, and both default to the
same data directory. Each server holds an exclusive `flock` on a lock file of its own under
`ROOT/.servers/` for as long as it runs, and every sandbox record names the server that
serves it. A starting server takes over only the records whose server is gone (its lock
file is missing or can be locked: the kernel drops a flock when its holder dies, however
it dies), and leaves every other server's sandboxes and spares alone.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

SERVERS_DIRECTORY = ".servers"
SERVER_ID = re.compile(r"^[0-9a-f]{32}$")


class ServerLock:
    """This server's claim on a root: its id, held locked for the server's life."""

    def __init__(self, root: Path) -> None:
        self.directory = root / SERVERS_DIRECTORY
        self.directory.mkdir(parents=True, exist_ok=True)
        self.id = uuid.uuid4().hex
        # Locked before it gets its name, so that no other server ever finds it unlocked.
        descriptor, staged = tempfile.mkstemp(dir=self.directory, prefix=".", suffix=".lock")
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        about = {"pid": os.getpid(), "prefix": sys.prefix, "started": time.time()}
        os.write(descriptor, json.dumps(about).encode())
        os.rename(staged, self.path)
        self._descriptor: int | None = descriptor

    @property
    def path(self) -> Path:
        return self.directory / f"{self.id}.lock"

    def serves(self, owner: object) -> bool:
        """True when a record naming `owner` is this server's to serve: its own, one of a
        server that is gone, or one that names no server (written before owners were)."""
        if owner == self.id:
            return True
        if not isinstance(owner, str) or not SERVER_ID.match(owner):
            return True
        return not is_held(self.directory / f"{owner}.lock")

    @contextlib.contextmanager
    def taking_over(self) -> Iterator[None]:
        """Held while records are read and claimed: two servers starting at once never
        both take over the same sandbox."""
        with open(self.directory / "takeover", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def sweep(self) -> None:
        """Remove the lock files of servers that are gone."""
        for path in self.directory.glob("*.lock"):
            if path != self.path and SERVER_ID.match(path.stem) and not is_held(path):
                path.unlink(missing_ok=True)

    def release(self) -> None:
        if self._descriptor is None:
            return
        self.path.unlink(missing_ok=True)
        os.close(self._descriptor)
        self._descriptor = None


def is_held(lock: Path) -> bool:
    """True while the server that made `lock` runs."""
    try:
        descriptor = os.open(lock, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(descriptor)
    return False
