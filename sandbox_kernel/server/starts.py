"""How many context kernels of one server start at once: a few, so that requests such as
`health` never wait behind dozens of interpreters starting together."""

from __future__ import annotations

import asyncio
import os

CONCURRENT_STARTS = max(2, os.cpu_count() or 2)


class StartGate:
    """Admits at most `limit` kernel starts at a time; made lazily on the server's loop."""

    def __init__(self, limit: int = CONCURRENT_STARTS) -> None:
        self.limit = limit
        self._semaphore: asyncio.Semaphore | None = None
        self.waiting = 0

    def _admission(self) -> asyncio.Semaphore:
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.limit)
        return self._semaphore

    async def __aenter__(self) -> None:
        self.waiting += 1
        try:
            await self._admission().acquire()
        finally:
            self.waiting -= 1

    async def __aexit__(self, *exc_info: object) -> None:
        self._admission().release()
