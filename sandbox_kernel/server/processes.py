"""Commands and the process table of one sandbox.

Every process the server starts for a sandbox (commands and context kernels) carries the
environment variable SANDBOX_KERNEL_SANDBOX_ID; children inherit it, so the table finds a
background job even after its shell has exited and it was reparented.
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

MARKER = "SANDBOX_KERNEL_SANDBOX_ID"
KILL_GRACE_SECONDS = 2.0
EXIT_POLL_SECONDS = 0.02


def _describe(process: psutil.Process) -> dict[str, Any]:
    with process.oneshot():
        return {
            "pid": process.pid,
            "ppid": process.ppid(),
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

    def __init__(self, sandbox_id: str, environment: dict[str, str]) -> None:
        self.sandbox_id = sandbox_id
        self.environment = {**environment, MARKER: sandbox_id}

    def owns(self, process: psutil.Process) -> bool:
        """True when `process` was started for this sandbox."""
        try:
            return process.environ().get(MARKER) == self.sandbox_id
        except (psutil.Error, OSError):
            return False

    def processes(self) -> list[psutil.Process]:
        own = os.getpid()
        return [p for p in psutil.process_iter() if p.pid != own and self.owns(p)]

    def list(self) -> list[dict[str, Any]]:
        described = []
        for process in self.processes():
            with contextlib.suppress(psutil.Error):
                described.append(_describe(process))
        return described

    def find(self, pid: str | int) -> psutil.Process:
        try:
            number = int(pid)
        except (TypeError, ValueError):
            raise InvalidRequest(f"pid must be an integer, not {pid!r}") from None
        if number <= 0:
            raise InvalidRequest(f"pid must be a positive integer, not {number}")
        try:
            process = psutil.Process(number)
        except (psutil.Error, OverflowError):
            raise NotFound(f"no process {number} in this sandbox") from None
        if not self.owns(process):
            raise NotFound(f"no process {number} in this sandbox")
        return process

    def get(self, pid: str | int) -> dict[str, Any]:
        try:
            return _describe(self.find(pid))
        except psutil.NoSuchProcess:
            raise NotFound(f"no process {pid} in this sandbox") from None

    async def kill(self, pid: str | int) -> dict[str, Any]:
        """SIGTERM, then SIGKILL if the process outlives the grace period."""
        process = self.find(pid)
        with contextlib.suppress(psutil.Error):
            process.terminate()
            if not await _exited(process, KILL_GRACE_SECONDS):
                process.kill()
        return {"pid": process.pid, "killed": True}

    def kill_all(self) -> None:
        """Kill every process of the sandbox at once (stop and delete)."""
        for process in self.processes():
            with contextlib.suppress(psutil.Error):
                process.kill()

    async def run(
        self, command: str, host_cwd: Path, shown_cwd: str, timeout: float | None
    ) -> dict[str, Any]:
        """Run `sh -c command`; on timeout kill its process group and say so.

        Output goes to unlinked temporary files rather than pipes, so a background job
        (`sleep 100 &`) that inherits them cannot hold the reply open.
        """
        if "\x00" in command:
            raise InvalidRequest("field 'command' must not contain NUL bytes")
        started = time.monotonic()
        with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
            process = await asyncio.create_subprocess_exec(
                "/bin/sh",
                "-c",
                command,
                cwd=host_cwd,
                env=self.environment,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
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
