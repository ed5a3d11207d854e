"""The sandboxes of one server: each a root directory, its contexts and its processes."""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .contexts import ContextPool
from .errors import Conflict, InvalidRequest, NotFound
from .files import FileStore
from .isolation import IsolationSettings, launcher_for, mounted_directories, release
from .owners import ServerLock
from .paths import HOME, make_directories
from .processes import ProcessTable
from .records import RECORD, read_record, write_record
from .spares import SparePool

log = logging.getLogger(__name__)

SANDBOX_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
SKELETON = (HOME.lstrip("/"), "tmp")
REAP_INTERVAL_SECONDS = 1.0
SPARE = "spare"
"""Marks the record of a sandbox made ahead (spares.py) that nobody has claimed yet."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


class Sandbox:
    """One sandbox: `fs/` is its `/`, `staging/` holds uploads in flight, `sandbox.json` its
    record."""

    owner: str | None = None
    """The id of the server that serves this sandbox (owners.py), kept in its record."""

    def __init__(
        self, directory: Path, record: dict[str, Any], isolation: IsolationSettings
    ) -> None:
        self.directory = directory
        self.record = record
        self.id: str = record["sandboxId"]
        root = directory / "fs"
        root.mkdir(parents=True, exist_ok=True)
        for relative in SKELETON:
            make_directories(root, relative)
        self.files = FileStore(root, directory / "staging", mounted_directories(isolation))
        self.launcher = launcher_for(isolation, self.files.paths.root, self.id)
        self.processes = ProcessTable(self.launcher)
        self.contexts = ContextPool(self.files.paths, self.launcher)
        self.last_active = time.monotonic()

    @property
    def running(self) -> bool:
        return self.record["status"] == "READY"

    def describe(self) -> dict[str, Any]:
        return dict(self.record)

    def save(self) -> None:
        write_record(self.directory, self.record, self.owner)

    def touch(self) -> None:
        self.record["lastUpdatedAt"] = _now()
        self.last_active = time.monotonic()

    def expired(self, now: float) -> bool:
        """True once the sandbox has been idle for its sandboxIdleTimeoutSeconds.

        Idle means no request and nothing running: a long cell or command keeps it alive.
        """
        timeout = self.record.get("sandboxIdleTimeoutSeconds")
        if not self.running or not timeout or timeout <= 0:
            return False
        busy = self.processes.running or any(
            context.lock.locked() for context in self.contexts.contexts.values()
        )
        if busy:
            self.last_active = now
        return now - self.last_active >= timeout

    def require_running(self) -> None:
        if not self.running:
            raise Conflict(f"sandbox {self.id} is {self.record['status']}; create a new one")

    async def stop(self) -> None:
        await self.contexts.shutdown_all()
        await asyncio.to_thread(self.launcher.close)
        self.record.update(status="TERMINATED", endedAt=_now(), lastUpdatedAt=_now())
        self.save()


class SandboxRegistry:
    """Creates, finds, stops and deletes sandboxes under one root directory."""

    def __init__(
        self, root: Path, isolation: IsolationSettings | None = None, spares: int = 0
    ) -> None:
        self.root = root
        self.isolation = isolation or IsolationSettings()
        self.root.mkdir(parents=True, exist_ok=True)
        self.sandboxes: dict[str, Sandbox] = {}
        self.spares = SparePool(self._make_spare, self._discard, spares)
        self.owners = ServerLock(self.root)
        self._load()

    def _load(self) -> None:
        """Bring back the sandboxes of an earlier run: their files survive, interpreters do not.
        Spares that were never claimed are deleted. Only sandboxes whose server is gone are
        taken over: another server running on this root keeps its own."""
        with self.owners.taking_over():
            for record_file in sorted(self.root.glob(f"*/{RECORD}")):
                found = read_record(record_file)
                if found is None:
                    continue
                record, owner = found
                if not self.owners.serves(owner):
                    continue
                if record.get(SPARE):
                    shutil.rmtree(record_file.parent, ignore_errors=True)
                    continue
                try:
                    sandbox = Sandbox(record_file.parent, record, self.isolation)
                    sandbox.owner = self.owners.id
                    sandbox.save()
                except (OSError, ValueError, KeyError) as error:
                    log.warning("skipping sandbox %s: %s", record_file.parent, error)
                    continue
                self.sandboxes[sandbox.id] = sandbox
            self.owners.sweep()

    async def create(
        self, template_name: str, idle_timeout: int | None, sandbox_id: str | None
    ) -> Sandbox:
        """A new sandbox: a spare when the caller leaves the id to us and one is ready."""
        spare = None if sandbox_id is not None else await self.spares.take()
        if spare is None:
            sandbox = self._new(template_name, idle_timeout, sandbox_id)
        else:
            sandbox = spare
            now = _now()
            del sandbox.record[SPARE]
            sandbox.record.update(
                templateName=template_name,
                sandboxIdleTimeoutSeconds=idle_timeout,
                createdAt=now,
                lastUpdatedAt=now,
            )
            sandbox.touch()
            sandbox.save()
        self.sandboxes[sandbox.id] = sandbox
        log.info("sandbox %s created from template %s", sandbox.id, template_name)
        return sandbox

    def _new(
        self, template_name: str, idle_timeout: int | None, sandbox_id: str | None, **marks: Any
    ) -> Sandbox:
        if sandbox_id is None:
            sandbox_id = f"sbx-{uuid.uuid4().hex[:16]}"
        elif not SANDBOX_ID_PATTERN.match(sandbox_id):
            raise InvalidRequest(
                "sandboxId may hold only letters, digits, '.', '_' and '-' (at most 128)"
            )
        if sandbox_id in self.sandboxes:
            raise Conflict(f"sandbox {sandbox_id} already exists")
        now = _now()
        record = {
            "sandboxId": sandbox_id,
            "templateName": template_name,
            "templateType": "CodeInterpreter",
            "status": "READY",
            "sandboxIdleTimeoutSeconds": idle_timeout,
            "createdAt": now,
            "lastUpdatedAt": now,
            "endedAt": None,
            "metadata": {},
            **marks,
        }
        directory = self.root / sandbox_id
        try:
            directory.mkdir(parents=True)
        except FileExistsError:
            raise Conflict(f"sandbox {sandbox_id} already exists") from None
        sandbox = Sandbox(directory, record, self.isolation)
        sandbox.owner = self.owners.id
        sandbox.save()
        return sandbox

    async def _make_spare(self) -> Sandbox:
        sandbox = self._new("default", None, None, **{SPARE: True})
        try:
            await sandbox.contexts.start_warm()
        except BaseException:
            await self._discard(sandbox)
            raise
        return sandbox

    async def _discard(self, sandbox: Sandbox) -> None:
        await sandbox.stop()
        await asyncio.to_thread(shutil.rmtree, sandbox.directory, True)

    def get(self, sandbox_id: str) -> Sandbox:
        try:
            return self.sandboxes[sandbox_id]
        except KeyError:
            raise NotFound(f"no sandbox {sandbox_id!r}") from None

    async def delete(self, sandbox_id: str) -> Sandbox:
        sandbox = self.get(sandbox_id)
        if sandbox.running:
            await sandbox.stop()
        del self.sandboxes[sandbox_id]
        await asyncio.to_thread(shutil.rmtree, sandbox.directory, True)
        log.info("sandbox %s deleted", sandbox_id)
        return sandbox

    async def reap_idle(self) -> None:
        """Run for the server's life: stop each sandbox idle past its timeout, which frees
        its contexts and processes (its files stay)."""
        while True:
            await asyncio.sleep(REAP_INTERVAL_SECONDS)
            now = time.monotonic()
            for sandbox in list(self.sandboxes.values()):
                if not sandbox.expired(now):
                    continue
                log.info("sandbox %s idle past its timeout: stopping it", sandbox.id)
                try:
                    await sandbox.stop()
                except Exception:
                    log.exception("could not stop idle sandbox %s", sandbox.id)

    async def shutdown(self) -> None:
        """Free every interpreter and process, and what isolation holds on the host; the
        files stay for the next run (a spare's do not)."""
        await self.spares.close()
        for sandbox in self.sandboxes.values():
            await sandbox.contexts.shutdown_all()
            await asyncio.to_thread(sandbox.launcher.close)
        release(self.isolation)
        self.owners.release()
