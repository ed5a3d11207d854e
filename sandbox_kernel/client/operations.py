"""The seed API's operation groups for files, the filesystem and processes (contexts are in
contexts.py). Each operation is described once (a `Call`, or a flow of steps) and run by
`run` or `run_async` (flows.py)."""

from __future__ import annotations

import logging
from typing import Any, Protocol

from . import endpoints
from .endpoints import Call, Progress
from .flows import Flow, Step, run, run_async, send
from .transport import DataClient

logger = logging.getLogger(__name__)

RAW_UPLOAD = "rawUpload"
"""The embedded server's extension: an upload's body is the file itself."""


class Sandbox(Protocol):
    """What the operations need of their sandbox (a `CodeInterpreterSandbox`)."""

    @property
    def data_api(self) -> DataClient: ...

    @property
    def endpoint(self) -> str: ...

    def offered(self) -> Flow[frozenset[str]]:
        """The server's extensions, from the sandbox's one health cache."""
        ...


class OperationGroup:
    """A group of operations sending its calls through its sandbox's data client."""

    def __init__(self, sandbox: Sandbox) -> None:
        self._sandbox = sandbox

    def _send(self, call: Call) -> Step:
        return send(self._sandbox.data_api, call)


class FileOperations(OperationGroup):
    """Read and write whole files in the sandbox."""

    def read(self, path: str) -> Any:
        """Read a file: `{"path", "content", "encoding"}` (base64 when not UTF-8)."""
        return run(self._send(endpoints.read_file(path)))

    async def read_async(self, path: str) -> Any:
        """Read a file: `{"path", "content", "encoding"}` (base64 when not UTF-8)."""
        return await run_async(self._send(endpoints.read_file(path)))

    def write(
        self,
        path: str,
        content: str,
        mode: str | None = "644",
        encoding: str | None = "utf-8",
        create_dir: bool | None = True,
    ) -> Any:
        """Write a file, creating its directory unless `create_dir` is false."""
        return run(self._write(path, content, mode, encoding, create_dir))

    async def write_async(
        self,
        path: str,
        content: str,
        mode: str | None = "644",
        encoding: str | None = "utf-8",
        create_dir: bool | None = True,
    ) -> Any:
        """Write a file, creating its directory unless `create_dir` is false."""
        return await run_async(self._write(path, content, mode, encoding, create_dir))

    def _write(
        self,
        path: str,
        content: str,
        mode: str | None,
        encoding: str | None,
        create_dir: bool | None,
    ) -> Step:
        return self._send(endpoints.write_file(path, content, mode, encoding, create_dir))


class FileSystemOperations(OperationGroup):
    """List, inspect, create, move, remove, upload and download paths in the sandbox."""

    def list(self, path: str | None = None, depth: int | None = None) -> Any:
        """List a directory (`depth` levels deep, 1 by default)."""
        return run(self._send(endpoints.list_directory(path, depth)))

    async def list_async(self, path: str | None = None, depth: int | None = None) -> Any:
        """List a directory (`depth` levels deep, 1 by default)."""
        return await run_async(self._send(endpoints.list_directory(path, depth)))

    def move(self, source: str, destination: str) -> Any:
        """Move or rename a file or directory."""
        return run(self._send(endpoints.move(source, destination)))

    async def move_async(self, source: str, destination: str) -> Any:
        """Move or rename a file or directory."""
        return await run_async(self._send(endpoints.move(source, destination)))

    def remove(self, path: str) -> Any:
        """Remove a file, or a directory with everything in it."""
        return run(self._send(endpoints.remove(path)))

    async def remove_async(self, path: str) -> Any:
        """Remove a file, or a directory with everything in it."""
        return await run_async(self._send(endpoints.remove(path)))

    def stat(self, path: str) -> Any:
        """Describe one path: name, type, size, mode, mtime."""
        return run(self._send(endpoints.stat(path)))

    async def stat_async(self, path: str) -> Any:
        """Describe one path: name, type, size, mode, mtime."""
        return await run_async(self._send(endpoints.stat(path)))

    def mkdir(self, path: str, parents: bool | None = True, mode: str | None = "0755") -> Any:
        """Create a directory, with its parents by default."""
        return run(self._send(endpoints.mkdir(path, parents, mode)))

    async def mkdir_async(
        self, path: str, parents: bool | None = True, mode: str | None = "0755"
    ) -> Any:
        """Create a directory, with its parents by default."""
        return await run_async(self._send(endpoints.mkdir(path, parents, mode)))

    def upload(
        self, local_file_path: str, target_file_path: str, *, progress: Progress | None = None
    ) -> Any:
        """Stream a local file to `target_file_path` in the sandbox."""
        return run(self._upload(local_file_path, target_file_path, progress))

    async def upload_async(
        self, local_file_path: str, target_file_path: str, *, progress: Progress | None = None
    ) -> Any:
        """Stream a local file to `target_file_path` in the sandbox."""
        return await run_async(self._upload(local_file_path, target_file_path, progress))

    def _upload(
        self, local_file_path: str, target_file_path: str, progress: Progress | None
    ) -> Flow[Any]:
        """Raw where the server takes it and requests go unsigned (a signed upload stays
        multipart, as the agentrun-sdk's)."""
        unsigned = self._sandbox.data_api.auth is None
        raw = unsigned and RAW_UPLOAD in (yield from self._sandbox.offered())
        call = endpoints.upload(local_file_path, target_file_path, progress, raw=raw)
        return (yield self._send(call))

    def download(
        self, path: str, save_path: str, *, progress: Progress | None = None
    ) -> dict[str, Any]:
        """Stream a sandbox file to `save_path`: `{"saved_path", "size"}`; never a partial file."""
        return run(self._send(endpoints.download(path, save_path, progress)))

    async def download_async(
        self, path: str, save_path: str, *, progress: Progress | None = None
    ) -> dict[str, Any]:
        """Stream a sandbox file to `save_path`: `{"saved_path", "size"}`; never a partial file."""
        return await run_async(self._send(endpoints.download(path, save_path, progress)))


class ProcessOperations(OperationGroup):
    """Run shell commands and manage the sandbox's processes."""

    def cmd(self, command: str, cwd: str, timeout: int | None = 30) -> Any:
        """Run a shell command to completion; a non-zero exit is in the result, not an error."""
        return run(self._send(endpoints.run_command(command, cwd, timeout)))

    async def cmd_async(self, command: str, cwd: str, timeout: int | None = 30) -> Any:
        """Run a shell command to completion; a non-zero exit is in the result, not an error."""
        return await run_async(self._send(endpoints.run_command(command, cwd, timeout)))

    def list(self) -> Any:
        """List the sandbox's processes."""
        return run(self._send(endpoints.list_processes()))

    async def list_async(self) -> Any:
        """List the sandbox's processes."""
        return await run_async(self._send(endpoints.list_processes()))

    def get(self, pid: str) -> Any:
        """Describe one process."""
        return run(self._send(endpoints.get_process(pid)))

    async def get_async(self, pid: str) -> Any:
        """Describe one process."""
        return await run_async(self._send(endpoints.get_process(pid)))

    def kill(self, pid: str) -> Any:
        """Terminate a process (SIGTERM, then SIGKILL after a grace period)."""
        return run(self._send(endpoints.kill_process(pid)))

    async def kill_async(self, pid: str) -> Any:
        """Terminate a process (SIGTERM, then SIGKILL after a grace period)."""
        return await run_async(self._send(endpoints.kill_process(pid)))
