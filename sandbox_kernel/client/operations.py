"""The seed API's operation groups: files, filesystem, processes and contexts, sync and async."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any

from . import endpoints
from .endpoints import Call, CodeLanguage, ExecuteOptions, Progress
from .errors import SandboxError, SandboxNotFoundError, SandboxUnsupportedError
from .messages import MessageSocket
from .results import with_e2b_fields

if TYPE_CHECKING:
    from .sandbox import CodeInterpreterSandbox

logger = logging.getLogger(__name__)

RAW_UPLOAD = "rawUpload"
"""The embedded server's extension: an upload's body is the file itself."""
EntryCallback = Callable[[dict[str, Any]], None]
"""Called with each result entry of an execution."""


def _plain_timeout(timeout: float | None) -> float:
    """`execute(timeout=None)` means the server's default limit, streamed or not."""
    return endpoints.SERVER_DEFAULT_TIMEOUT if timeout is None else timeout


def _context_of(call: Call, results: list[dict[str, Any]]) -> str | None:
    """The context a streamed execution ran in: asked for, or named by its last entry."""
    named = results[-1].get("contextId") if results else None
    return call.json.get("contextId") or named


def _seen(entry: dict[str, Any], on_entry: EntryCallback) -> dict[str, Any]:
    on_entry(entry)
    return entry


class _Operations:
    """A group of operations sending its calls through its sandbox's data client."""

    def __init__(self, sandbox: CodeInterpreterSandbox) -> None:
        self._sandbox = sandbox

    def _send(self, call: Call) -> Any:
        return self._sandbox.data_api.send(call)

    async def _send_async(self, call: Call) -> Any:
        return await self._sandbox.data_api.send_async(call)


class FileOperations(_Operations):
    """Read and write whole files in the sandbox."""

    def read(self, path: str) -> Any:
        """Read a file: `{"path", "content", "encoding"}` (base64 when not UTF-8)."""
        return self._send(endpoints.read_file(path))

    async def read_async(self, path: str) -> Any:
        """Read a file: `{"path", "content", "encoding"}` (base64 when not UTF-8)."""
        return await self._send_async(endpoints.read_file(path))

    def write(
        self,
        path: str,
        content: str,
        mode: str | None = "644",
        encoding: str | None = "utf-8",
        create_dir: bool | None = True,
    ) -> Any:
        """Write a file, creating its directory unless `create_dir` is false."""
        return self._send(endpoints.write_file(path, content, mode, encoding, create_dir))

    async def write_async(
        self,
        path: str,
        content: str,
        mode: str | None = "644",
        encoding: str | None = "utf-8",
        create_dir: bool | None = True,
    ) -> Any:
        """Write a file, creating its directory unless `create_dir` is false."""
        return await self._send_async(
            endpoints.write_file(path, content, mode, encoding, create_dir)
        )


class FileSystemOperations(_Operations):
    """List, inspect, create, move, remove, upload and download paths in the sandbox."""

    def list(self, path: str | None = None, depth: int | None = None) -> Any:
        """List a directory (`depth` levels deep, 1 by default)."""
        return self._send(endpoints.list_directory(path, depth))

    async def list_async(self, path: str | None = None, depth: int | None = None) -> Any:
        """List a directory (`depth` levels deep, 1 by default)."""
        return await self._send_async(endpoints.list_directory(path, depth))

    def move(self, source: str, destination: str) -> Any:
        """Move or rename a file or directory."""
        return self._send(endpoints.move(source, destination))

    async def move_async(self, source: str, destination: str) -> Any:
        """Move or rename a file or directory."""
        return await self._send_async(endpoints.move(source, destination))

    def remove(self, path: str) -> Any:
        """Remove a file, or a directory with everything in it."""
        return self._send(endpoints.remove(path))

    async def remove_async(self, path: str) -> Any:
        """Remove a file, or a directory with everything in it."""
        return await self._send_async(endpoints.remove(path))

    def stat(self, path: str) -> Any:
        """Describe one path: name, type, size, mode, mtime."""
        return self._send(endpoints.stat(path))

    async def stat_async(self, path: str) -> Any:
        """Describe one path: name, type, size, mode, mtime."""
        return await self._send_async(endpoints.stat(path))

    def mkdir(self, path: str, parents: bool | None = True, mode: str | None = "0755") -> Any:
        """Create a directory, with its parents by default."""
        return self._send(endpoints.mkdir(path, parents, mode))

    async def mkdir_async(
        self, path: str, parents: bool | None = True, mode: str | None = "0755"
    ) -> Any:
        """Create a directory, with its parents by default."""
        return await self._send_async(endpoints.mkdir(path, parents, mode))

    def upload(
        self, local_file_path: str, target_file_path: str, *, progress: Progress | None = None
    ) -> Any:
        """Stream a local file to `target_file_path` in the sandbox."""
        raw = self._signs_nothing() and RAW_UPLOAD in self._sandbox.extensions
        return self._send(endpoints.upload(local_file_path, target_file_path, progress, raw=raw))

    async def upload_async(
        self, local_file_path: str, target_file_path: str, *, progress: Progress | None = None
    ) -> Any:
        """Stream a local file to `target_file_path` in the sandbox."""
        raw = self._signs_nothing() and RAW_UPLOAD in await self._sandbox.extensions_async()
        call = endpoints.upload(local_file_path, target_file_path, progress, raw=raw)
        return await self._send_async(call)

    def _signs_nothing(self) -> bool:
        """Requests go unsigned: a signed upload stays multipart, as the agentrun-sdk's."""
        return self._sandbox.data_api.auth is None

    def download(
        self, path: str, save_path: str, *, progress: Progress | None = None
    ) -> dict[str, Any]:
        """Stream a sandbox file to `save_path`: `{"saved_path", "size"}`; never a partial file."""
        return self._send(endpoints.download(path, save_path, progress))

    async def download_async(
        self, path: str, save_path: str, *, progress: Progress | None = None
    ) -> dict[str, Any]:
        """Stream a sandbox file to `save_path`: `{"saved_path", "size"}`; never a partial file."""
        return await self._send_async(endpoints.download(path, save_path, progress))


class ProcessOperations(_Operations):
    """Run shell commands and manage the sandbox's processes."""

    def cmd(self, command: str, cwd: str, timeout: int | None = 30) -> Any:
        """Run a shell command to completion; a non-zero exit is in the result, not an error."""
        return self._send(endpoints.run_command(command, cwd, timeout))

    async def cmd_async(self, command: str, cwd: str, timeout: int | None = 30) -> Any:
        """Run a shell command to completion; a non-zero exit is in the result, not an error."""
        return await self._send_async(endpoints.run_command(command, cwd, timeout))

    def list(self) -> Any:
        """List the sandbox's processes."""
        return self._send(endpoints.list_processes())

    async def list_async(self) -> Any:
        """List the sandbox's processes."""
        return await self._send_async(endpoints.list_processes())

    def get(self, pid: str) -> Any:
        """Describe one process."""
        return self._send(endpoints.get_process(pid))

    async def get_async(self, pid: str) -> Any:
        """Describe one process."""
        return await self._send_async(endpoints.get_process(pid))

    def kill(self, pid: str) -> Any:
        """Terminate a process (SIGTERM, then SIGKILL after a grace period)."""
        return self._send(endpoints.kill_process(pid))

    async def kill_async(self, pid: str) -> Any:
        """Terminate a process (SIGTERM, then SIGKILL after a grace period)."""
        return await self._send_async(endpoints.kill_process(pid))


class ContextOperations(_Operations):
    """Stateful interpreters; remembers the context last created or fetched as the current one.

    `with sandbox.context.create() as ctx:` deletes that context on exit.
    """

    def __init__(self, sandbox: CodeInterpreterSandbox) -> None:
        super().__init__(sandbox)
        self._context_id: str | None = None
        self._language: str | None = None
        self._cwd: str | None = None

    @property
    def context_id(self) -> str | None:
        """The current context's id, or None before `create` or `get`."""
        return self._context_id

    def list(self) -> Any:
        """List the sandbox's contexts."""
        return self._send(endpoints.list_contexts())

    async def list_async(self) -> Any:
        """List the sandbox's contexts."""
        return await self._send_async(endpoints.list_contexts())

    def create(
        self,
        language: CodeLanguage | str | None = CodeLanguage.PYTHON,
        cwd: str = "/home/user",
        *,
        history_file: str | None = None,
    ) -> ContextOperations:
        """Create a context and make it the current one; returns self for chaining and `with`.

        `history_file` (the embedded server's `reply` extension) is its interpreter's IPython
        history file, `:memory:` for none on disk."""
        call = endpoints.create_context(language, cwd, history_file)
        return self._remember(self._send(call))

    async def create_async(
        self,
        language: CodeLanguage | str | None = CodeLanguage.PYTHON,
        cwd: str = "/home/user",
        *,
        history_file: str | None = None,
    ) -> ContextOperations:
        """Create a context and make it the current one; returns self for chaining and `with`.

        `history_file` (the embedded server's `reply` extension) is its interpreter's IPython
        history file, `:memory:` for none on disk."""
        call = endpoints.create_context(language, cwd, history_file)
        return self._remember(await self._send_async(call))

    def get(self, context_id: str | None = None) -> ContextOperations:
        """Fetch a context (the current one by default) and make it current; returns self."""
        return self._remember(self._send(endpoints.get_context(self._required_id(context_id))))

    async def get_async(self, context_id: str | None = None) -> ContextOperations:
        """Fetch a context (the current one by default) and make it current; returns self."""
        call = endpoints.get_context(self._required_id(context_id))
        return self._remember(await self._send_async(call))

    def execute(
        self,
        code: str,
        language: CodeLanguage | str | None = None,
        context_id: str | None = None,
        timeout: int | None = 30,
        *,
        on_entry: EntryCallback | None = None,
        options: ExecuteOptions | None = None,
    ) -> Any:
        """Run code: `{"contextId", "results": [entry, ...]}`; an exception is an entry.

        `on_entry(entry)` sees each entry as it is produced where the server streams, and
        all of them at the end where it does not. `options` are honoured where the server
        offers the `reply` extension.
        """
        if on_entry is not None and "stream" in self._sandbox.extensions:
            call = self._streamed(
                code, language, context_id, _plain_timeout(timeout), False, options
            )
            streamed = map(with_e2b_fields, self._sandbox.data_api.stream(call))
            results = [_seen(entry, on_entry) for entry in streamed]
            return {"contextId": _context_of(call, results), "results": results}
        reply = self._send(self._execution(code, language, context_id, timeout, options))
        for entry in reply.get("results", []) if on_entry is not None else ():
            on_entry(entry)
        return reply

    async def execute_async(
        self,
        code: str,
        language: CodeLanguage | str | None = None,
        context_id: str | None = None,
        timeout: int | None = 30,
        *,
        on_entry: EntryCallback | None = None,
        options: ExecuteOptions | None = None,
    ) -> Any:
        """Run code: `{"contextId", "results": [entry, ...]}`; an exception is an entry.

        `on_entry(entry)` sees each entry as it is produced where the server streams, and
        all of them at the end where it does not. `options` are honoured where the server
        offers the `reply` extension.
        """
        extensions = await self._sandbox.extensions_async()
        if on_entry is not None and "stream" in extensions:
            call = self._streamed(
                code, language, context_id, _plain_timeout(timeout), False, options
            )
            results = [_seen(entry, on_entry) async for entry in self._entries(call, extensions)]
            return {"contextId": _context_of(call, results), "results": results}
        call = self._execution(code, language, context_id, timeout, options)
        reply = await self._send_async(call)
        for entry in reply.get("results", []) if on_entry is not None else ():
            on_entry(entry)
        return reply

    async def stream_async(
        self,
        code: str,
        language: CodeLanguage | str | None = None,
        context_id: str | None = None,
        timeout: float | None = None,
        *,
        allow_stdin: bool = False,
        options: ExecuteOptions | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """Entries of an execution as they are produced (`timeout=None`: no limit).

        Where the server does not stream, this runs a plain execution (the server's own
        time limit applies) and yields its entries at the end.
        """
        extensions = await self._sandbox.extensions_async()
        if "stream" in extensions:
            call = self._streamed(code, language, context_id, timeout, allow_stdin, options)
            # Closed at once when the reader stops early, not whenever it is collected.
            async with contextlib.aclosing(self._entries(call, extensions)) as entries:
                async for entry in entries:
                    yield entry
            return
        call = self._execution(code, language, context_id, timeout, options)
        reply = await self._send_async(call)
        for entry in reply.get("results", []):
            yield entry

    def interrupt(self, context_id: str | None = None) -> Any:
        """Interrupt the code running in a context (KeyboardInterrupt there; state is kept)."""
        return self._send(self._extension("interrupt", endpoints.interrupt_context, context_id))

    async def interrupt_async(self, context_id: str | None = None) -> Any:
        """Interrupt the code running in a context (KeyboardInterrupt there; state is kept)."""
        await self._sandbox.extensions_async()
        call = self._extension("interrupt", endpoints.interrupt_context, context_id)
        return await self._send_async(call)

    def restart(self, context_id: str | None = None) -> Any:
        """Give a context a fresh interpreter, keeping its id."""
        return self._send(self._extension("restart", endpoints.restart_context, context_id))

    async def restart_async(self, context_id: str | None = None) -> Any:
        """Give a context a fresh interpreter, keeping its id."""
        await self._sandbox.extensions_async()
        call = self._extension("restart", endpoints.restart_context, context_id)
        return await self._send_async(call)

    def send_input(self, value: str, context_id: str | None = None) -> Any:
        """Answer the `input()` that code running in a context is waiting on."""
        return self._send(self._extension("stdin", endpoints.send_input, context_id, value))

    async def send_input_async(self, value: str, context_id: str | None = None) -> Any:
        """Answer the `input()` that code running in a context is waiting on."""
        await self._sandbox.extensions_async()
        call = self._extension("stdin", endpoints.send_input, context_id, value)
        return await self._send_async(call)

    def complete(self, code: str, cursor_pos: int, context_id: str | None = None) -> Any:
        """Completions from the context: `{"matches", "cursorStart", "cursorEnd", "metadata"}`."""
        call = self._extension("complete", endpoints.complete, context_id, code, cursor_pos)
        return self._send(call)

    async def complete_async(
        self, code: str, cursor_pos: int, context_id: str | None = None
    ) -> Any:
        """Completions from the context: `{"matches", "cursorStart", "cursorEnd", "metadata"}`."""
        await self._sandbox.extensions_async()
        call = self._extension("complete", endpoints.complete, context_id, code, cursor_pos)
        return await self._send_async(call)

    def inspect(
        self, code: str, cursor_pos: int, detail_level: int = 0, context_id: str | None = None
    ) -> Any:
        """What the context knows about the name at the cursor: `{"found", "data", "metadata"}`."""
        call = self._extension(
            "inspect", endpoints.inspect, context_id, code, cursor_pos, detail_level
        )
        return self._send(call)

    async def inspect_async(
        self, code: str, cursor_pos: int, detail_level: int = 0, context_id: str | None = None
    ) -> Any:
        """What the context knows about the name at the cursor: `{"found", "data", "metadata"}`."""
        await self._sandbox.extensions_async()
        call = self._extension(
            "inspect", endpoints.inspect, context_id, code, cursor_pos, detail_level
        )
        return await self._send_async(call)

    async def connect_async(self, context_id: str | None = None) -> None:
        """Open the connection that streamed executions of the context use (the embedded
        server's `socket` extension), so the first one does not wait for it."""
        if "socket" in self._sandbox.extensions:
            await self._sandbox.data_api.open_execution_socket(self._required_id(context_id))

    async def open_messages_async(self, context_id: str | None = None) -> MessageSocket:
        """Open the context's message socket: its kernel's comm and debug messages, both ways
        (the embedded server's `comms` and `debug` extensions)."""
        if not {"comms", "debug"} & set(self._sandbox.extensions):
            raise SandboxUnsupportedError(
                f"the sandbox server at {self._sandbox.endpoint} does not relay kernel messages"
            )
        return await self._sandbox.data_api.open_message_socket(self._required_id(context_id))

    def _extension(
        self, name: str, build: Callable[..., Call], context_id: str | None, *arguments: Any
    ) -> Call:
        """The call for an extension of the local server; a clear error where it is missing."""
        if name not in self._sandbox.extensions:
            raise SandboxUnsupportedError(
                f"the sandbox server at {self._sandbox.endpoint} does not offer '{name}'"
            )
        return build(self._required_id(context_id), *arguments)

    def delete(self, context_id: str | None = None) -> Any:
        """Delete a context (the current one by default)."""
        context_id = self._required_id(context_id)
        reply = self._send(endpoints.delete_context(context_id))
        self._forget(context_id)
        return reply

    async def delete_async(self, context_id: str | None = None) -> Any:
        """Delete a context (the current one by default)."""
        context_id = self._required_id(context_id)
        reply = await self._send_async(endpoints.delete_context(context_id))
        self._forget(context_id)
        return reply

    def __enter__(self) -> ContextOperations:
        self._required_id(None)
        return self

    def __exit__(self, exc_type: object, exc_value: BaseException | None, tb: object) -> None:
        if self._context_id is not None:
            with self._deleting_on_exit(exc_value):
                self.delete()

    async def __aenter__(self) -> ContextOperations:
        self._required_id(None)
        return self

    async def __aexit__(
        self, exc_type: object, exc_value: BaseException | None, tb: object
    ) -> None:
        if self._context_id is not None:
            with self._deleting_on_exit(exc_value):
                await self.delete_async()

    def _execution(
        self,
        code: str,
        language: CodeLanguage | str | None,
        context_id: str | None,
        timeout: int | None,
        options: ExecuteOptions | None = None,
    ) -> Call:
        return endpoints.execute(code, *self._target(language, context_id), timeout, options)

    def _streamed(
        self,
        code: str,
        language: CodeLanguage | str | None,
        context_id: str | None,
        timeout: float | None,
        allow_stdin: bool,
        options: ExecuteOptions | None,
    ) -> Call:
        context_id, language = self._target(language, context_id)
        return endpoints.execute_streaming(
            code, context_id, language, timeout, allow_stdin, options
        )

    async def _entries(
        self, call: Call, extensions: frozenset[str]
    ) -> AsyncIterator[dict[str, Any]]:
        """A streamed execution's entries: on the context's WebSocket where the server keeps
        one (cheaper per cell), else over one streamed HTTP request. A result streamed with
        its bundle only gets its E2B-style fields back, so every transport yields one shape."""
        context_id = (call.json or {}).get("contextId")
        if "socket" in extensions and context_id:
            entries = self._sandbox.data_api.execute_over_socket(call, context_id)
        else:
            entries = self._sandbox.data_api.stream_async(call)
        async with contextlib.aclosing(entries):
            async for entry in entries:
                yield with_e2b_fields(entry)

    def _target(
        self, language: CodeLanguage | str | None, context_id: str | None
    ) -> tuple[str | None, str | None]:
        """Where code runs: the given context, else the current one, else a default context.

        A language that differs from the current context's runs in that language's default
        context; with no current context the language defaults to python.
        """
        same_language = language is None or endpoints.checked_language(language) == self._language
        if context_id is None and self._context_id is not None and same_language:
            context_id, language = self._context_id, None
        if context_id is None and language is None:
            language = CodeLanguage.PYTHON
        return context_id, language

    def _remember(self, context: dict[str, Any]) -> ContextOperations:
        self._context_id = context["id"]
        self._language = context["language"]
        self._cwd = context["cwd"]
        return self

    def _forget(self, context_id: str) -> None:
        if context_id == self._context_id:
            self._context_id = self._language = self._cwd = None

    def _required_id(self, context_id: str | None) -> str:
        context_id = context_id or self._context_id
        if context_id is None:
            raise ValueError(
                "no context: pass context_id or create one first "
                "(with sandbox.context.create() as context: ...)"
            )
        return context_id

    @contextlib.contextmanager
    def _deleting_on_exit(self, exc_value: BaseException | None) -> Iterator[None]:
        """A context already gone is fine; another failure to delete it is raised, unless the
        `with` block is already raising (then it is logged, so as not to hide that error)."""
        context_id = self._context_id
        try:
            yield
        except SandboxNotFoundError:
            self._forget(context_id or "")
        except SandboxError as error:
            if exc_value is None:
                raise
            logger.warning("could not delete context %s: %s", context_id, error)
