"""Commands and the process table of one sandbox.

Processes are started and found through the sandbox's launcher (see isolation.py), which
also decides the pid namespace the table's pids belong to: the sandbox's own under bwrap,
the host's without isolation. Either way a listed pid is the one to pass to `kill`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO

import psutil

from .errors import InvalidRequest, NotFound
from .launchers import Launcher, SandboxProcess

KILL_GRACE_SECONDS = 2.0
EXIT_POLL_SECONDS = 0.02


def _describe(entry: SandboxProcess) -> dict[str, Any]:
    process = entry.process
    with process.oneshot():
        return {
            "pid": entry.pid,
            "ppid": entry.ppid,
            "name": process.name(),
            "cmdline": " ".join(process.cmdline()),
            "status": process.status(),
            "createTime": datetime.fromtimestamp(process.create_time(), timezone.utc).isoformat(),
            "cpuPercent": process.cpu_percent(interval=None),
            "memoryRss": process.memory_info().rss,
        }


async def _exited(process: psutil.Process, timeout: float) -> bool:
    """Wait up to `timeout` s for `process` to exit; an unreaped zombie counts as exited.

    An orphan whose new parent never reaps it (a container's init, say) stays a zombie, so
    waiting for its pid to vanish would always take the whole grace period.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(EXIT_POLL_SECONDS)


def _read_all(handle: BinaryIO) -> str:
    handle.seek(0)
    return handle.read().decode("utf-8", "replace")


class ProcessTable:
    """Runs commands in a sandbox and lists, inspects and kills the sandbox's processes."""

    def __init__(self, launcher: Launcher) -> None:
        self.launcher = launcher
        self.running = 0  # commands in progress, which keep the sandbox from being idle

    def list(self) -> list[dict[str, Any]]:
        described = []
        for entry in self.launcher.processes():
            with contextlib.suppress(psutil.Error):
                described.append(_describe(entry))
        return described

    def find(self, pid: str | int) -> SandboxProcess:
        try:
            number = int(pid)
        except (TypeError, ValueError):
            raise InvalidRequest(f"pid must be an integer, not {pid!r}") from None
        if number <= 0:
            raise InvalidRequest(f"pid must be a positive integer, not {number}")
        for entry in self.launcher.processes():
            if entry.pid == number:
                return entry
        raise NotFound(f"no process {number} in this sandbox")

    def get(self, pid: str | int) -> dict[str, Any]:
        try:
            return _describe(self.find(pid))
        except psutil.NoSuchProcess:
            raise NotFound(f"no process {pid} in this sandbox") from None

    async def kill(self, pid: str | int) -> dict[str, Any]:
        """SIGTERM, then SIGKILL if the process outlives the grace period."""
        entry = self.find(pid)
        with contextlib.suppress(psutil.Error):
            entry.process.terminate()
            if not await _exited(entry.process, KILL_GRACE_SECONDS):
                entry.process.kill()
        return {"pid": entry.pid, "killed": True}

    async def run(
        self, command: str, host_cwd: Path, shown_cwd: str, timeout: float | None
    ) -> dict[str, Any]:
        """Run `sh -c command`; on timeout kill its process group and say so.

        Output goes to unlinked temporary files rather than pipes, so a background job
        (`sleep 100 &`) that inherits them cannot hold the reply open.
        """
        if "\x00" in command:
            raise InvalidRequest("field 'command' must not contain NUL bytes")
        self.running += 1
        try:
            await self.launcher.prepare()
            argv = self.launcher.argv(["/bin/sh", "-c", command], shown_cwd)
            options = self.launcher.popen_options(host_cwd)
            return await self._run(argv, options, shown_cwd, timeout)
        finally:
            self.running -= 1

    async def _run(
        self, argv: list[str], options: dict[str, Any], shown_cwd: str, timeout: float | None
    ) -> dict[str, Any]:
        started = time.monotonic()
        with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
                **options,
            )
            status = "completed"
            try:
                await asyncio.wait_for(process.wait(), timeout)
            except asyncio.TimeoutError:
                status = "timeout"
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                await process.wait()
            elapsed_ms = int((time.monotonic() - started) * 1000)
            out_text, err_text = (_read_all(handle) for handle in (stdout, stderr))
        if status == "timeout":
            err_text += f"\ncommand timed out after {timeout} s and was killed\n"
        return {
            "executionId": uuid.uuid4().hex,
            "status": status,
            "result": {
                "exitCode": process.returncode,
                "stdout": out_text,
                "stderr": err_text,
                "cwd": shown_cwd,
                "executionTimeMs": elapsed_ms,
            },
            "executionTimeMs": elapsed_ms,
        }
