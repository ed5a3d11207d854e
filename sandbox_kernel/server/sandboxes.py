"""The sandboxes of one server: each a root directory, its contexts and its processes."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .constants import HOME
from .contexts import ContextPool
from .egress import Rule
from .errors import Conflict, InvalidRequest, LimitExceeded, NotFound
from .files import FileStore
from .isolation import IsolationSettings, launcher_for, mounted_directories, release
from .launchers import SandboxChoices
from .owners import ServerLock
from .paths import make_directories
from .processes import ProcessTable
from .records import RECORD, read_record, write_record
from .spares import SparePool
from .starts import StartGate
from .templates import Template, TemplateStore

log = logging.getLogger(__name__)

SANDBOX_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
SKELETON = (HOME.lstrip("/"), "tmp")
REAP_INTERVAL_SECONDS = 1.0
VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
MAX_VARIABLES = 128
MAX_VALUE_CHARACTERS = 32 * 1024
DISK_USAGE_SECONDS = 5.0
"""How long a sandbox's measured disk use is reported before it is measured again."""
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
        self,
        directory: Path,
        record: dict[str, Any],
        isolation: IsolationSettings,
        max_contexts: int | None = None,
        template: Template | None = None,
        starts: StartGate | None = None,
    ) -> None:
        self.directory = directory
        self.record = record
        self.id: str = record["sandboxId"]
        self.template = template
        root = directory / "fs"
        root.mkdir(mode=0o755, parents=True, exist_ok=True)
        for relative in SKELETON:
            make_directories(root, relative)
        if isolation.host_ids is not None:
            _hand_over(root, isolation.host_ids)
        self.files = FileStore(
            root, directory / "staging", mounted_directories(isolation), owner=isolation.host_ids
        )
        self.launcher = launcher_for(
            isolation, self.files.paths.root, self.id, template, _choices(record)
        )
        self.processes = ProcessTable(self.launcher)
        self.contexts = ContextPool(self.files.paths, self.launcher, max_contexts, starts)
        self.last_active = time.monotonic()
        self._disk_usage: tuple[float, int] | None = None

    @property
    def running(self) -> bool:
        return self.record["status"] == "READY"

    def describe(self) -> dict[str, Any]:
        return dict(self.record)

    async def disk_usage(self) -> int:
        """Bytes the sandbox's files take on disk, measured at most every few seconds."""
        now = time.monotonic()
        if self._disk_usage is None or now - self._disk_usage[0] > DISK_USAGE_SECONDS:
            measured = await asyncio.to_thread(_disk_usage, self.files.paths.root)
            self._disk_usage = (now, measured)
        return self._disk_usage[1]

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


def _choices(record: dict[str, Any]) -> SandboxChoices:
    """What the sandbox's creator chose, as its record keeps it."""
    return SandboxChoices(dict(record.get("env") or {}), tuple(record.get("allowEgress") or ()))


def _hand_over(root: Path, host_ids: tuple[int, int]) -> None:
    """Give the sandbox user its home and /tmp; `/` and the mount points stay root's, as on
    any Linux system."""
    for relative, mode in ((HOME.lstrip("/"), 0o755), ("tmp", 0o1777)):
        descriptor = os.open(root / relative, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            os.fchown(descriptor, *host_ids)
            os.fchmod(descriptor, mode)
        finally:
            os.close(descriptor)


def _disk_usage(root: Path) -> int:
    """Allocated bytes under `root`, walked by descriptor so that no link is followed."""
    total = 0
    for _, _, files, directory in os.fwalk(root):
        total += os.stat(directory).st_blocks * 512
        for name in files:
            try:
                total += os.stat(name, dir_fd=directory, follow_symlinks=False).st_blocks * 512
            except OSError:
                continue
    return total


class SandboxRegistry:
    """Creates, finds, stops and deletes sandboxes under one root directory."""

    def __init__(
        self,
        root: Path,
        isolation: IsolationSettings | None = None,
        spares: int = 0,
        *,
        max_sandboxes: int | None = None,
        max_contexts: int | None = None,
        templates: TemplateStore | None = None,
    ) -> None:
        self.root = root
        self.isolation = isolation or IsolationSettings()
        self.templates = templates
        self.max_sandboxes = max_sandboxes
        self.max_contexts = max_contexts
        self.root.mkdir(parents=True, exist_ok=True)
        self.sandboxes: dict[str, Sandbox] = {}
        self.starts = StartGate()
        self._creating = 0
        """Creations past the limit check and not yet in `sandboxes`."""
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
                    sandbox = self._sandbox(record_file.parent, record)
                    sandbox.owner = self.owners.id
                    sandbox.save()
                except (OSError, ValueError, KeyError) as error:
                    log.warning("skipping sandbox %s: %s", record_file.parent, error)
                    continue
                self.sandboxes[sandbox.id] = sandbox
            self.owners.sweep()

    async def create(
        self,
        template_name: str,
        idle_timeout: int | None,
        sandbox_id: str | None,
        environment: dict[str, str] | None = None,
        egress: list[str] | None = None,
    ) -> Sandbox:
        """A new sandbox: a spare when the caller leaves the id, the environment and the
        egress to us and one is ready."""
        choices = self._checked_choices(environment or {}, egress or [])
        # Sandboxes being made count too: the disk work below awaits a thread, and requests
        # arriving meanwhile must not each find room under the limit.
        running = sum(sandbox.running for sandbox in self.sandboxes.values()) + self._creating
        if self.max_sandboxes is not None and running >= self.max_sandboxes:
            raise LimitExceeded(
                f"this server already runs {running} sandboxes, its limit (--max-sandboxes); "
                "stop or delete one first"
            )
        # A spare runs on the server's environment: a template's sandbox starts fresh.
        template = self._template(template_name)
        self._creating += 1
        try:
            fresh = sandbox_id or template or choices
            spare = None if fresh else await self.spares.take()
            if spare is None:
                # Directories, ownership and the record are disk work: off the event loop.
                sandbox = await asyncio.to_thread(
                    self._new, template_name, idle_timeout, sandbox_id, **choices
                )
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
                await asyncio.to_thread(sandbox.save)
            self.sandboxes[sandbox.id] = sandbox
            log.info("sandbox %s created from template %s", sandbox.id, template_name)
            return sandbox
        finally:
            self._creating -= 1

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
        sandbox = self._sandbox(directory, record)
        sandbox.owner = self.owners.id
        sandbox.save()
        return sandbox

    def _checked_choices(self, environment: dict[str, str], egress: list[str]) -> dict[str, Any]:
        """The record fields of what a creator chose, or InvalidRequest saying what is wrong."""
        if len(environment) > MAX_VARIABLES:
            raise InvalidRequest(f"env holds at most {MAX_VARIABLES} variables")
        for name, value in environment.items():
            if not VARIABLE_NAME.match(name):
                raise InvalidRequest(f"env: {name!r} is not a variable name")
            if "\x00" in value or len(value) > MAX_VALUE_CHARACTERS:
                raise InvalidRequest(f"env: {name} holds a NUL or is longer than 32 KiB")
        for rule in egress:
            try:
                Rule.parse(rule)
            except ValueError as error:
                raise InvalidRequest(f"allowEgress: {error}") from None
        if egress and self.isolation.host_ids is None:
            raise InvalidRequest("allowEgress needs an isolated server that runs as root")
        choices: dict[str, Any] = {}
        if environment:
            choices["env"] = dict(environment)
        if egress:
            choices["allowEgress"] = list(egress)
        return choices

    def _template(self, name: str) -> Template | None:
        return None if self.templates is None else self.templates.get(name)

    def _sandbox(self, directory: Path, record: dict[str, Any]) -> Sandbox:
        template = self._template(record["templateName"])
        return Sandbox(directory, record, self.isolation, self.max_contexts, template, self.starts)

    async def _make_spare(self) -> Sandbox:
        sandbox = await asyncio.to_thread(self._new, "default", None, None, **{SPARE: True})
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
