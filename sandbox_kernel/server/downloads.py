"""Stream a file the server already holds open, so the bytes sent are that file's: with
`sendfile(2)` where the connection offers it (zerocopy.py), else in chunks read in a thread."""

from __future__ import annotations

import os
from urllib.parse import quote

import anyio.to_thread
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from .zerocopy import SENDFILE

CHUNK_BYTES = 1024 * 1024


class DescriptorResponse(Response):
    """`application/octet-stream` of `size` bytes read from `descriptor`, which it closes."""

    media_type = "application/octet-stream"

    def __init__(self, descriptor: int, size: int, filename: str) -> None:
        quoted = quote(filename)
        if quoted == filename:
            disposition = f'attachment; filename="{filename}"'
        else:
            disposition = f"attachment; filename*=utf-8''{quoted}"
        super().__init__(headers={"content-disposition": disposition})
        self.descriptor = descriptor
        self.size = size
        self.headers["content-length"] = str(size)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            if SENDFILE in scope.get("extensions", {}):
                message = {"type": SENDFILE, "file": self.descriptor, "count": self.size}
                await send({**message, "offset": 0, "more_body": False})
                return
            remaining = self.size
            while remaining > 0:
                chunk = await anyio.to_thread.run_sync(
                    os.read, self.descriptor, min(CHUNK_BYTES, remaining)
                )
                if not chunk:  # the file shrank: the client sees a short body
                    break
                remaining -= len(chunk)
                await send(
                    {"type": "http.response.body", "body": chunk, "more_body": remaining > 0}
                )
            if self.size == 0 or remaining > 0:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            os.close(self.descriptor)
