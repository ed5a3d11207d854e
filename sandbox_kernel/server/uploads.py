"""Receive an upload to disk under a size limit: multipart (part `file`, field `path`), as
the cloud and the agentrun-sdk send it, or the raw body (this project's own client)."""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from .constants import MIB, MULTIPART_OVERHEAD_BYTES, UPLOAD_FIELD_LIMIT
from .errors import InvalidRequest, PayloadTooLarge
from .names import requested
from .zerocopy import RECEIVE_INTO, BodyEnded, write_all

RAW_UPLOAD = "application/octet-stream"


class UploadReceiver:
    """Feeds request chunks to a streaming parser; file bytes go straight to a temporary file."""

    def __init__(self, content_type: str, staging: Path, limit: int) -> None:
        kind, options = parse_options_header(content_type)
        boundary = options.get(b"boundary")
        if kind != b"multipart/form-data" or not boundary:
            raise InvalidRequest("upload must be multipart/form-data with a boundary")
        self.limit = limit
        self.fields: dict[str, str] = {}
        self.file_size = 0
        self.file_seen = False
        staging.mkdir(parents=True, exist_ok=True)
        descriptor, name = tempfile.mkstemp(dir=staging, prefix="upload-")
        self.staged = Path(name)
        self._file = os.fdopen(descriptor, "wb")
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._part_name: str | None = None
        self._part_is_file = False
        self._field_value = bytearray()
        self._parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._on_part_begin,
                "on_header_field": lambda data, start, end: self._header_field.extend(
                    data[start:end]
                ),
                "on_header_value": lambda data, start, end: self._header_value.extend(
                    data[start:end]
                ),
                "on_header_end": self._on_header_end,
                "on_part_data": self._on_part_data,
                "on_part_end": self._on_part_end,
            },
        )

    async def receive(self, chunks: AsyncIterator[bytes]) -> None:
        """Consume the whole body; raises PayloadTooLarge as soon as the file passes the limit."""
        try:
            async for chunk in chunks:
                self._parser.write(chunk)
            self._parser.finalize()
        except (PayloadTooLarge, InvalidRequest):
            raise
        except Exception as error:
            raise InvalidRequest(f"malformed multipart body: {error}") from None
        finally:
            self._file.close()
        if not self.file_seen:
            raise InvalidRequest("upload has no 'file' part")
        if not self.fields.get("path") and not self.fields.get("pathBytes"):
            raise InvalidRequest("upload has no 'path' field naming the target file")

    def discard(self) -> None:
        self._file.close()
        self.staged.unlink(missing_ok=True)

    def _on_part_begin(self) -> None:
        self._part_name, self._part_is_file = None, False
        self._field_value.clear()

    def _on_header_end(self) -> None:
        field = bytes(self._header_field).lower()
        value = bytes(self._header_value)
        self._header_field.clear()
        self._header_value.clear()
        if field != b"content-disposition":
            return
        _, options = parse_options_header(value)
        self._part_name = options.get(b"name", b"").decode("utf-8", "replace")
        self._part_is_file = self._part_name == "file"
        if self._part_is_file:
            if self.file_seen:
                raise InvalidRequest("upload has more than one 'file' part")
            self.file_seen = True

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._part_is_file:
            self.file_size += end - start
            if self.file_size > self.limit:
                raise PayloadTooLarge(f"upload is larger than the limit of {self.limit // MIB} MiB")
            self._file.write(data[start:end])
        else:
            self._field_value.extend(data[start:end])
            if len(self._field_value) > UPLOAD_FIELD_LIMIT:
                raise InvalidRequest(
                    f"a form field is larger than {UPLOAD_FIELD_LIMIT // 1024} KiB"
                )

    def _on_part_end(self) -> None:
        if self._part_name and not self._part_is_file:
            self.fields[self._part_name] = self._field_value.decode("utf-8", "replace")


async def receive_raw(request: Request, staging: Path, limit: int) -> tuple[Path, int]:
    """Receive a raw upload (`application/octet-stream`, the body is the file) into a new
    file in `staging`: (its path, its size). The body's `content-length` is required and
    bounded by `limit` before a byte is read; with the connection's zero-copy extension the
    bytes go from the socket to the file by splice(2), else chunk by chunk."""
    declared = request.headers.get("content-length", "")
    if not declared.isdigit():
        raise InvalidRequest("a raw upload (application/octet-stream) needs a Content-Length")
    length = int(declared)
    if length > limit:
        raise PayloadTooLarge(f"upload is larger than the limit of {limit // MIB} MiB")
    staging.mkdir(parents=True, exist_ok=True)
    descriptor, name = tempfile.mkstemp(dir=staging, prefix="upload-")
    staged = Path(name)
    try:
        receive_into = request.scope.get("extensions", {}).get(RECEIVE_INTO)
        if receive_into is not None:
            try:
                await receive_into["receive_into"](descriptor, length)
            except BodyEnded as error:
                raise InvalidRequest(f"upload incomplete: {error}") from None
        else:
            received = 0
            async for chunk in request.stream():
                received += len(chunk)
                if received > length:
                    raise InvalidRequest("upload incomplete: the body is longer than declared")
                await asyncio.to_thread(write_all, descriptor, chunk)
            if received != length:
                raise InvalidRequest(f"upload incomplete: {received} of {length} bytes arrived")
    except BaseException:
        os.close(descriptor)
        staged.unlink(missing_ok=True)
        raise
    os.close(descriptor)
    return staged, length


@asynccontextmanager
async def received_upload(
    request: Request, staging: Path, limit: int, path: str | None, path_bytes: str | None
) -> AsyncIterator[tuple[str, Path, int]]:
    """(target path, staged file, size) of an upload received whole into `staging`: a raw
    one names its target in the query (`path`, `pathBytes`), a multipart one in its fields.
    The staged file is removed when the block ends, unless it was put in place meanwhile."""
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() == RAW_UPLOAD:
        target = requested(path, path_bytes)
        staged, size = await receive_raw(request, staging, limit)
        try:
            yield target, staged, size
        finally:
            staged.unlink(missing_ok=True)
        return
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + MULTIPART_OVERHEAD_BYTES:
        raise PayloadTooLarge(f"upload is larger than the limit of {limit // MIB} MiB")
    receiver = UploadReceiver(content_type, staging, limit)
    try:
        await receiver.receive(request.stream())
        target = requested(receiver.fields.get("path"), receiver.fields.get("pathBytes"))
        yield target, receiver.staged, receiver.file_size
    finally:
        receiver.discard()
