"""The seed API's context operations: create, execute (streamed where offered), interrupt,
restart, stdin, completion and inspection. Each is described once (a `Call`, or a flow of
steps) and run by `run` or `run_async` (flows.py).

Over 400 lines as one job: each public operation is a sync and an async method of one line
under the seed's docstring, beside the one flow both run."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from . import endpoints
from .endpoints import Call, CodeLanguage, ExecuteOptions
from .errors import SandboxError, SandboxNotFoundError, SandboxUnsupportedError
from .flows import Flow, Step, run, run_async
from .messages import MessageSocket
from .operations import OperationGroup, Sandbox
from .results import with_e2b_fields

logger = logging.getLogger(__name__)

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


class ContextOperations(OperationGroup):
    """Stateful interpreters; remembers the context last created or fetched as the current one.

    `with sandbox.context.create() as ctx:` deletes that context on exit. The flows that
    other parts of the client compose (`create_flow`, `get_flow`, ...) describe the
    operation of the same name.
    """

    def __init__(self, sandbox: Sandbox) -> None:
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
        return run(self._send(endpoints.list_contexts()))

    async def list_async(self) -> Any:
        """List the sandbox's contexts."""
        return await run_async(self._send(endpoints.list_contexts()))

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
        return run(self.create_flow(language, cwd, history_file))

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
        return await run_async(self.create_flow(language, cwd, history_file))

    def create_flow(
        self,
        language: CodeLanguage | str | None = CodeLanguage.PYTHON,
        cwd: str = "/home/user",
        history_file: str | None = None,
    ) -> Flow[ContextOperations]:
        call = endpoints.create_context(language, cwd, history_file)
        return self._remember((yield self._send(call)))

    def get(self, context_id: str | None = None) -> ContextOperations:
        """Fetch a context (the current one by default) and make it current; returns self."""
        return run(self.get_flow(context_id))

    async def get_async(self, context_id: str | None = None) -> ContextOperations:
        """Fetch a context (the current one by default) and make it current; returns self."""
        return await run_async(self.get_flow(context_id))

    def get_flow(self, context_id: str | None = None) -> Flow[ContextOperations]:
        call = endpoints.get_context(self._required_id(context_id))
        return self._remember((yield self._send(call)))

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
        return run(self.execute_flow(code, language, context_id, timeout, on_entry, options))

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
        flow = self.execute_flow(code, language, context_id, timeout, on_entry, options)
        return await run_async(flow)

    def execute_flow(
        self,
        code: str,
        language: CodeLanguage | str | None = None,
        context_id: str | None = None,
        timeout: int | None = 30,
        on_entry: EntryCallback | None = None,
        options: ExecuteOptions | None = None,
    ) -> Flow[Any]:
        extensions = frozenset() if on_entry is None else (yield from self._sandbox.offered())
        if on_entry is not None and "stream" in extensions:
            call = self._streamed(
                code, language, context_id, _plain_timeout(timeout), False, options
            )
            results = yield self._collected(call, extensions, on_entry)
            return {"contextId": _context_of(call, results), "results": results}
        reply = yield self._send(self._execution(code, language, context_id, timeout, options))
        for entry in reply.get("results", []) if on_entry is not None else ():
            on_entry(entry)
        return reply

    def _collected(self, call: Call, extensions: frozenset[str], on_entry: EntryCallback) -> Step:
        """A streamed execution's entries, each shown to `on_entry` as it arrives: over the
        async transports awaited, or over one streamed request blocking."""

        def blocking() -> list[dict[str, Any]]:
            streamed = map(with_e2b_fields, self._sandbox.data_api.stream(call))
            return [_seen(entry, on_entry) for entry in streamed]

        async def awaited() -> list[dict[str, Any]]:
            return [_seen(entry, on_entry) async for entry in self._entries(call, extensions)]

        return Step(blocking, awaited)

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
        extensions = await run_async(self._sandbox.offered())
        if "stream" in extensions:
            call = self._streamed(code, language, context_id, timeout, allow_stdin, options)
            # Closed at once when the reader stops early, not whenever it is collected.
            async with contextlib.aclosing(self._entries(call, extensions)) as entries:
                async for entry in entries:
                    yield entry
            return
        call = self._execution(code, language, context_id, timeout, options)
        reply = await run_async(self._send(call))
        for entry in reply.get("results", []):
            yield entry

    def interrupt(self, context_id: str | None = None) -> Any:
        """Interrupt the code running in a context (KeyboardInterrupt there; state is kept)."""
        return run(self._interruption(context_id))

    async def interrupt_async(self, context_id: str | None = None) -> Any:
        """Interrupt the code running in a context (KeyboardInterrupt there; state is kept)."""
        return await run_async(self._interruption(context_id))

    def _interruption(self, context_id: str | None) -> Flow[Any]:
        return self._extension("interrupt", endpoints.interrupt_context, context_id)

    def restart(self, context_id: str | None = None) -> Any:
        """Give a context a fresh interpreter, keeping its id."""
        return run(self._extension("restart", endpoints.restart_context, context_id))

    async def restart_async(self, context_id: str | None = None) -> Any:
        """Give a context a fresh interpreter, keeping its id."""
        return await run_async(self._extension("restart", endpoints.restart_context, context_id))

    def send_input(self, value: str, context_id: str | None = None) -> Any:
        """Answer the `input()` that code running in a context is waiting on."""
        return run(self._extension("stdin", endpoints.send_input, context_id, value))

    async def send_input_async(self, value: str, context_id: str | None = None) -> Any:
        """Answer the `input()` that code running in a context is waiting on."""
        return await run_async(self._extension("stdin", endpoints.send_input, context_id, value))

    def complete(self, code: str, cursor_pos: int, context_id: str | None = None) -> Any:
        """Completions from the context: `{"matches", "cursorStart", "cursorEnd", "metadata"}`."""
        return run(self._completion(code, cursor_pos, context_id))

    async def complete_async(
        self, code: str, cursor_pos: int, context_id: str | None = None
    ) -> Any:
        """Completions from the context: `{"matches", "cursorStart", "cursorEnd", "metadata"}`."""
        return await run_async(self._completion(code, cursor_pos, context_id))

    def _completion(self, code: str, cursor_pos: int, context_id: str | None) -> Flow[Any]:
        return self._extension("complete", endpoints.complete, context_id, code, cursor_pos)

    def inspect(
        self, code: str, cursor_pos: int, detail_level: int = 0, context_id: str | None = None
    ) -> Any:
        """What the context knows about the name at the cursor: `{"found", "data", "metadata"}`."""
        return run(self._inspection(code, cursor_pos, detail_level, context_id))

    async def inspect_async(
        self, code: str, cursor_pos: int, detail_level: int = 0, context_id: str | None = None
    ) -> Any:
        """What the context knows about the name at the cursor: `{"found", "data", "metadata"}`."""
        return await run_async(self._inspection(code, cursor_pos, detail_level, context_id))

    def _inspection(
        self, code: str, cursor_pos: int, detail_level: int, context_id: str | None
    ) -> Flow[Any]:
        arguments = (code, cursor_pos, detail_level)
        return self._extension("inspect", endpoints.inspect, context_id, *arguments)

    async def connect_async(self, context_id: str | None = None) -> None:
        """Open the connection that streamed executions of the context use (the embedded
        server's `socket` extension), so the first one does not wait for it."""
        if "socket" in await run_async(self._sandbox.offered()):
            await self._sandbox.data_api.open_execution_socket(self._required_id(context_id))

    async def open_messages_async(self, context_id: str | None = None) -> MessageSocket:
        """Open the context's message socket: its kernel's comm and debug messages, both ways
        (the embedded server's `comms` and `debug` extensions)."""
        if not {"comms", "debug"} & await run_async(self._sandbox.offered()):
            raise SandboxUnsupportedError(
                f"the sandbox server at {self._sandbox.endpoint} does not relay kernel messages"
            )
        return await self._sandbox.data_api.open_message_socket(self._required_id(context_id))

    def _extension(
        self, name: str, build: Callable[..., Call], context_id: str | None, *arguments: Any
    ) -> Flow[Any]:
        """The call to an extension of the local server; a clear error where it is missing."""
        if name not in (yield from self._sandbox.offered()):
            raise SandboxUnsupportedError(
                f"the sandbox server at {self._sandbox.endpoint} does not offer '{name}'"
            )
        return (yield self._send(build(self._required_id(context_id), *arguments)))

    def delete(self, context_id: str | None = None) -> Any:
        """Delete a context (the current one by default)."""
        return run(self.delete_flow(context_id))

    async def delete_async(self, context_id: str | None = None) -> Any:
        """Delete a context (the current one by default)."""
        return await run_async(self.delete_flow(context_id))

    def delete_flow(self, context_id: str | None = None) -> Flow[Any]:
        context_id = self._required_id(context_id)
        reply = yield self._send(endpoints.delete_context(context_id))
        self._forget(context_id)
        return reply

    def __enter__(self) -> ContextOperations:
        return self._entered()

    def __exit__(self, exc_type: object, exc_value: BaseException | None, tb: object) -> None:
        run(self._exited(exc_value))

    async def __aenter__(self) -> ContextOperations:
        return self._entered()

    async def __aexit__(
        self, exc_type: object, exc_value: BaseException | None, tb: object
    ) -> None:
        await run_async(self._exited(exc_value))

    def _entered(self) -> ContextOperations:
        self._required_id(None)
        return self

    def _exited(self, exc_value: BaseException | None) -> Flow[None]:
        if self._context_id is not None:
            with self._deleting_on_exit(exc_value):
                yield from self.delete_flow()

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
