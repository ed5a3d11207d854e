"""Runs `Call`s over pooled httpx clients: one sync and one async sender sharing everything else.

Over 400 lines as one job: this is the I/O layer every flow runs on, the only place where a
blocking and an awaiting twin of each send (plain, streamed, socket, transfer) must exist.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from importlib import metadata
from typing import Any, BinaryIO
from urllib.parse import quote, urlsplit

import httpx

from . import flows, transfers
from .auth import RamSignatureAuth
from .endpoints import DEFAULT_READ_TIMEOUT, Call, Progress, execution_socket, message_socket
from .errors import (
    SandboxConnectionError,
    SandboxError,
    SandboxTimeoutError,
    error_from_response,
)
from .messages import MessageSocket
from .settings import ClientSettings
from .sockets import ExecutionSockets, SocketRefused

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0
RETRY_DELAYS = (0.25, 0.5, 1.0, 2.0)
"""Backoff between attempts of an idempotent read."""
NDJSON = "application/x-ndjson"
WRITE_TIMEOUT = 60.0


class DataClient:
    """Sends calls to one server; relative paths are resolved under `/sandboxes/{sandbox_id}`.

    Each mode keeps one pooled, keep-alive httpx client, created on first use. The async
    client belongs to the event loop that created it and is replaced on another loop.
    """

    def __init__(
        self,
        settings: ClientSettings,
        sandbox_id: str | None = None,
        *,
        auth: httpx.Auth | None = None,
    ) -> None:
        self.settings = settings
        self.sandbox_id = sandbox_id
        if auth is None and settings.access_key is not None:
            auth = RamSignatureAuth(settings.access_key)
        self.auth = auth
        self._headers = {"User-Agent": _user_agent()}
        if settings.token:
            self._headers["Authorization"] = f"Bearer {settings.token}"
        self._client: httpx.Client | None = None
        self._async_client: httpx.AsyncClient | None = None
        self._async_loop: asyncio.AbstractEventLoop | None = None
        self._sockets = ExecutionSockets(self._headers)
        self._sockets_refused = False

    def url(self, call: Call) -> str:
        """The absolute URL of a call, without its query."""
        if call.path.startswith("/"):
            return self.settings.endpoint + call.path
        if not self.sandbox_id:
            raise SandboxError(f"{call.method} {call.path}: no sandbox to send it to")
        base = f"{self.settings.endpoint}/sandboxes/{quote(self.sandbox_id, safe='')}"
        return f"{base}/{call.path}" if call.path else base

    def send(self, call: Call) -> Any:
        """Run a call and return its decoded reply, blocking (retried as `_retried` says)."""
        return flows.run(self._retried(call))

    async def send_async(self, call: Call) -> Any:
        """Run a call and return its decoded reply, without blocking the event loop on I/O."""
        return await flows.run_async(self._retried(call))

    def _retried(self, call: Call) -> flows.Flow[Any]:
        """An idempotent read is retried with backoff when the server is briefly unreachable,
        overloaded or failing; nothing else is ever sent twice."""
        for delay in _retry_delays(call):
            try:
                return (
                    yield flows.Step(
                        lambda: self._send_once(call), lambda: self._send_once_async(call)
                    )
                )
            except SandboxError as error:
                if delay is None or not _worth_retrying(error):
                    raise
            yield flows.sleep(delay)
        raise AssertionError("unreachable")

    def _send_once(self, call: Call) -> Any:
        if self._own_connection(call):
            return self._transfer(call)
        client = self._sync_client()
        with self._translated_failures(call), contextlib.ExitStack() as stack:
            request = self._build(client, call, stack)
            if call.download_to is None:
                return _read_reply(call, client.send(request))
            with _DownloadSink(call.download_to, call.progress) as sink:
                response = client.send(request, stream=True)
                try:
                    if not response.is_success:
                        response.read()
                        raise error_from_response(response)
                    sink.start(response)
                    for chunk in response.iter_bytes():
                        sink.write(chunk)
                finally:
                    response.close()
                return sink.commit()

    async def _send_once_async(self, call: Call) -> Any:
        if self._own_connection(call):
            return await asyncio.to_thread(self._transfer, call)
        client = self._async_http_client()
        with self._translated_failures(call), contextlib.ExitStack() as stack:
            request = self._build(client, call, stack)
            if call.download_to is None:
                return _read_reply(call, await client.send(request))
            with _DownloadSink(call.download_to, call.progress) as sink:
                response = await client.send(request, stream=True)
                try:
                    if not response.is_success:
                        await response.aread()
                        raise error_from_response(response)
                    sink.start(response)
                    async for chunk in response.aiter_bytes():
                        sink.write(chunk)
                finally:
                    await response.aclose()
                return sink.commit()

    def _own_connection(self, call: Call) -> bool:
        """A large transfer that goes on a connection of its own (transfers.py): a raw
        upload or a download, over plain HTTP with no request signing."""
        wanted = call.raw_upload or call.download_to is not None
        return wanted and self.auth is None and transfers.supported(self.settings.endpoint)

    def _transfer(self, call: Call) -> Any:
        """Run an upload or download on its own connection, the bytes moved by the OS."""
        headers = {**self._headers}
        with self._translated_failures(call):
            if call.download_to is None:
                assert call.upload_from is not None
                response = transfers.upload(
                    self.url(call),
                    call.params or {},
                    headers,
                    call.upload_from,
                    call.progress,
                    call.read_timeout,
                )
                return _read_reply(call, response)
            with _DownloadSink(call.download_to, call.progress) as sink:

                def into(response: httpx.Response) -> int:
                    sink.start(response)
                    return sink.descriptor()

                response, size = transfers.download(
                    self.url(call),
                    call.params or {},
                    headers,
                    into,
                    call.progress,
                    call.read_timeout,
                )
                if not response.is_success:
                    raise error_from_response(response)
                sink.wrote(size)
                return sink.commit()

    def stream(self, call: Call) -> Iterator[Any]:
        """Run a streaming call, yielding each decoded line as the server sends it."""
        client = self._sync_client()
        with self._translated_failures(call), contextlib.ExitStack() as stack:
            request = self._build(client, call, stack)
            request.headers["Accept"] = NDJSON
            response = client.send(request, stream=True)
            try:
                if not response.is_success:
                    response.read()
                    raise error_from_response(response)
                for line in response.iter_lines():
                    if line.strip():
                        yield _decoded_line(call, line)
            finally:
                response.close()

    async def stream_async(self, call: Call) -> AsyncIterator[Any]:
        """Run a streaming call, yielding each decoded line as the server sends it."""
        client = self._async_http_client()
        with self._translated_failures(call), contextlib.ExitStack() as stack:
            request = self._build(client, call, stack)
            request.headers["Accept"] = NDJSON
            response = await client.send(request, stream=True)
            try:
                if not response.is_success:
                    await response.aread()
                    raise error_from_response(response)
                # NDJSON is UTF-8 split on b"\n": raw chunks split here cost far less per
                # cell than httpx's text and line decoders stacked on them.
                pending = b""
                async for chunk in response.aiter_bytes():
                    *lines, pending = (pending + chunk).split(b"\n")
                    for line in lines:
                        if line.strip():
                            yield _decoded_line(call, line)
                if pending.strip():
                    yield _decoded_line(call, pending)
            finally:
                await response.aclose()

    async def execute_over_socket(self, call: Call, context_id: str) -> AsyncIterator[Any]:
        """Run a streaming execution on the context's WebSocket, yielding its entries; over
        a streamed request instead once a handshake was refused (nothing was sent then)."""
        if not self._sockets_refused:
            entries = self._sockets.execute(self.url(execution_socket(context_id)), call.json)
            try:
                async with contextlib.aclosing(entries):
                    async for entry in entries:
                        yield entry
                return
            except SocketRefused as refusal:
                log.warning("executions go over HTTP requests: %s", refusal)
                self._sockets_refused = True
        async for entry in self.stream_async(call):
            yield entry

    async def open_execution_socket(self, context_id: str) -> None:
        """Open the context's execution WebSocket ahead of its first execution; a refused
        handshake sends executions over streamed requests from then on."""
        if self._sockets_refused:
            return
        try:
            await self._sockets.open(self.url(execution_socket(context_id)))
        except SocketRefused as refusal:
            log.warning("executions go over HTTP requests: %s", refusal)
            self._sockets_refused = True

    async def open_message_socket(self, context_id: str) -> MessageSocket:
        """Open the context's message socket (comm and debug messages)."""
        return await MessageSocket.open(self.url(message_socket(context_id)), self._headers)

    def close(self) -> None:
        """Close the sync connection pool."""
        if self._client is not None:
            self._client.close()
            self._client = None

    async def aclose(self) -> None:
        """Close both connection pools and the execution sockets (the async ones only if they
        belong to this event loop)."""
        self.close()
        await self._sockets.aclose()
        client, self._async_client = self._async_client, None
        if client is not None and self._async_loop is asyncio.get_running_loop():
            await client.aclose()
        self._async_loop = None

    def _client_options(self) -> dict[str, Any]:
        timeout = httpx.Timeout(DEFAULT_READ_TIMEOUT, connect=CONNECT_TIMEOUT)
        options = {"auth": self.auth, "headers": self._headers, "timeout": timeout}
        if urlsplit(self.settings.endpoint).scheme == "http":
            # Nothing to verify without TLS (and redirects are not followed); httpx would
            # otherwise load the CA bundle, a tenth of a second of every kernel's start.
            options["verify"] = False
        return options

    def _sync_client(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(**self._client_options())
        return self._client

    def _async_http_client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._async_client is None or self._async_loop is not loop:
            self._async_client = httpx.AsyncClient(**self._client_options())
            self._async_loop = loop
        return self._async_client

    def _build(
        self, client: httpx.Client | httpx.AsyncClient, call: Call, stack: contextlib.ExitStack
    ) -> httpx.Request:
        """The request for a call; an upload's file is opened on `stack` and streamed from disk."""
        options: dict[str, Any] = {}
        if call.upload_from is None:
            options["headers"] = {"Content-Type": "application/json"}
            options["json"] = call.json
        elif call.raw_upload:
            file = stack.enter_context(open(call.upload_from, "rb"))  # noqa: SIM115
            size = os.fstat(file.fileno()).st_size
            options["headers"] = {
                "Content-Type": "application/octet-stream",
                "Content-Length": str(size),
            }
            options["content"] = _FileBody(file, size, call.progress)
        else:
            file: Any = stack.enter_context(open(call.upload_from, "rb"))  # noqa: SIM115
            if call.progress is not None:
                file = _ProgressReader(file, call.progress)
            options["files"] = {"file": (os.path.basename(call.upload_from), file)}
            options["data"] = dict(call.form or {})
        timeout = httpx.Timeout(
            connect=CONNECT_TIMEOUT,
            read=call.read_timeout,
            write=WRITE_TIMEOUT,
            pool=DEFAULT_READ_TIMEOUT,
        )
        return client.build_request(
            call.method, self.url(call), params=call.params, timeout=timeout, **options
        )

    def _path(self, call: Call) -> str:
        return urlsplit(self.url(call)).path

    @contextlib.contextmanager
    def _translated_failures(self, call: Call) -> Iterator[None]:
        """Turn httpx's network errors into one-line sandbox errors that name the server."""
        try:
            yield
        except (httpx.ConnectError, httpx.ConnectTimeout) as error:
            error_type = (
                SandboxTimeoutError
                if isinstance(error, httpx.TimeoutException)
                else SandboxConnectionError
            )
            message = f"cannot reach the sandbox server at {self.settings.where}: {_reason(error)}"
            raise error_type(message) from error
        except httpx.TimeoutException as error:
            raise SandboxTimeoutError(
                f"{call.method} {self._path(call)}: no answer from the sandbox server at "
                f"{self.settings.where} within {call.read_timeout or 0:g} s ({_reason(error)})"
            ) from error
        except httpx.TransportError as error:
            raise SandboxConnectionError(
                f"{call.method} {self._path(call)}: connection to the sandbox server at "
                f"{self.settings.where} failed: {_reason(error)}"
            ) from error


def _read_reply(call: Call, response: httpx.Response) -> Any:
    """Decode a complete reply: an error raises, an empty body reads as `{}`."""
    if not response.is_success:
        raise error_from_response(response)
    if not response.content:
        return call.reply({})
    try:
        decoded = response.json()
    except ValueError:
        excerpt = " ".join(response.text.split())[:200]
        raise SandboxError(
            f"{call.method} {response.request.url.path}: the reply is not JSON: {excerpt!r}",
            status=response.status_code,
        ) from None
    return call.reply(decoded)


def _retry_delays(call: Call) -> Iterator[float | None]:
    """Seconds to wait before each further attempt; None marks the last attempt."""
    idempotent = call.method == "GET" and call.download_to is None and not call.streams_lines
    if call.retried and idempotent:
        yield from RETRY_DELAYS
    yield None


def _worth_retrying(error: SandboxError) -> bool:
    if isinstance(error, SandboxTimeoutError):
        return False
    if isinstance(error, SandboxConnectionError):
        return True
    return error.status is not None and (error.status == 429 or error.status >= 500)


def _decoded_line(call: Call, line: str | bytes) -> Any:
    try:
        return json.loads(line)
    except ValueError:
        raise SandboxError(
            f"{call.method} {call.path}: a streamed line is not JSON: {line[:200]!r}"
        ) from None


def _reason(error: Exception) -> str:
    return " ".join(str(error).split()) or type(error).__name__


@functools.cache
def _user_agent() -> str:
    try:
        return f"sandbox-kernel/{metadata.version('sandbox-kernel')}"
    except metadata.PackageNotFoundError:
        return "sandbox-kernel"


class _ProgressReader:
    """A binary file that reports, as httpx reads it in chunks, how much has been read."""

    def __init__(self, file: BinaryIO, progress: Progress) -> None:
        self._file = file
        self._progress = progress
        self._total = os.fstat(file.fileno()).st_size
        progress(0, self._total)

    def read(self, size: int = -1) -> bytes:
        chunk = self._file.read(size)
        if chunk:
            self._progress(self._file.tell(), self._total)
        return chunk

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def fileno(self) -> int:
        return self._file.fileno()


class _FileBody:
    """A file sent as a request body in large reads (httpx would read 64 KiB at a time),
    reporting progress as it goes."""

    CHUNK_BYTES = 1024 * 1024

    def __init__(self, file: BinaryIO, size: int, progress: Progress | None) -> None:
        self._file = file
        self._size = size
        self._progress = progress

    def _chunks(self) -> Iterator[bytes]:
        done = 0
        if self._progress is not None:
            self._progress(0, self._size)
        while chunk := self._file.read(self.CHUNK_BYTES):
            done += len(chunk)
            if self._progress is not None:
                self._progress(done, self._size)
            yield chunk

    def __iter__(self) -> Iterator[bytes]:
        return self._chunks()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks():
            yield chunk


class _DownloadSink:
    """Writes a download to a hidden file beside `save_path`, renamed into place when complete.

    Leaving the `with` block without `commit()` removes the partial file.
    """

    def __init__(self, save_path: str, progress: Progress | None) -> None:
        self._save_path = save_path
        self._progress = progress
        directory, name = os.path.split(os.path.abspath(save_path))
        self._partial_path = os.path.join(directory, f".{name}.{secrets.token_hex(4)}.part")
        self._size = 0
        self._total: int | None = None
        self._committed = False

    def __enter__(self) -> _DownloadSink:
        self._file = open(self._partial_path, "xb")
        return self

    def start(self, response: httpx.Response) -> None:
        """Note the expected size (unknown when the body is compressed or chunked)."""
        length = response.headers.get("Content-Length")
        if length and length.isdigit() and "Content-Encoding" not in response.headers:
            self._total = int(length)
        if self._progress is not None:
            self._progress(0, self._total)

    def descriptor(self) -> int:
        """The partial file's descriptor, for bytes written past `write` (then `wrote`)."""
        self._file.flush()
        return self._file.fileno()

    def wrote(self, size: int) -> None:
        """Count `size` bytes written to `descriptor()` directly."""
        self._size += size

    def write(self, chunk: bytes) -> None:
        self._file.write(chunk)
        self._size += len(chunk)
        if self._progress is not None:
            self._progress(self._size, self._total)

    def commit(self) -> dict[str, Any]:
        """Move the complete file into place and report it as the seed API does."""
        self._file.close()
        os.replace(self._partial_path, self._save_path)
        self._committed = True
        return {"saved_path": self._save_path, "size": self._size}

    def __exit__(self, *exc_info: object) -> None:
        if not self._committed:
            self._file.close()
            with contextlib.suppress(FileNotFoundError):
                os.remove(self._partial_path)
