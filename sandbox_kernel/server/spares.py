"""Spare sandboxes, made ahead of time with a Python context already started.

A kernel that starts waits for a new sandbox's namespaces and for its first context's
interpreter, about half a second together. A server keeps a few spares ready instead:
`POST /sandboxes` hands one out under the caller's template and idle timeout, and the
first Python context asked of it in the home directory is the one already running.
Unclaimed spares are invisible (never listed, never reaped); the server deletes them when
it stops, and deletes the leftovers of a crashed run when it starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

RETRY_SECONDS = 5.0

Spare = TypeVar("Spare")


class SparePool(Generic[Spare]):
    """Keeps `size` spares made by `make`; `discard` frees one that is never handed out."""

    def __init__(
        self,
        make: Callable[[], Awaitable[Spare]],
        discard: Callable[[Spare], Awaitable[None]],
        size: int,
    ) -> None:
        self.size = size
        self._make = make
        self._discard = discard
        self._ready: list[Spare] = []
        self._making: asyncio.Task | None = None
        self._wanted = asyncio.Event()
        self._closed = False
        self._filling = False

    @property
    def ready(self) -> int:
        return len(self._ready)

    async def keep_filled(self) -> None:
        """Run for the server's life: make spares whenever fewer than `size` are ready. A
        second call while one runs returns at once."""
        if self._filling:
            return
        self._filling = True
        try:
            await self._fill()
        finally:
            self._filling = False

    async def _fill(self) -> None:
        while not self._closed:
            if len(self._ready) >= self.size:
                self._wanted.clear()
                await self._wanted.wait()
                continue
            self._making = asyncio.create_task(self._make_one())
            try:
                await asyncio.shield(self._making)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("could not make a spare sandbox (retrying): %s", error)
                await asyncio.sleep(RETRY_SECONDS)
            finally:
                self._making = None

    async def _make_one(self) -> None:
        spare = await self._make()
        if self._closed:
            await self._discard(spare)
        else:
            self._ready.append(spare)

    async def take(self) -> Spare | None:
        """A ready spare, or the one being made once it is ready; None when there is none."""
        if not self._ready and self._making is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._making)
        if not self._ready:
            return None
        spare = self._ready.pop(0)
        self._wanted.set()
        return spare

    async def close(self) -> None:
        """Stop making spares and free those that were never handed out."""
        self._closed = True
        self._wanted.set()
        if self._making is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._making)
        spares, self._ready = self._ready, []
        for spare in spares:
            with contextlib.suppress(Exception):
                await self._discard(spare)
