"""Operations described once, as generators that yield steps (a request, a sleep, ...), and the
two drivers that run them: `run` blocks, `run_async` awaits. Only a step knows both ways."""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Awaitable, Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from .endpoints import Call

T = TypeVar("T")


@dataclass(frozen=True)
class Step:
    """One thing a flow waits for, done either blocking or awaited; the flow gets its result
    (or its exception) back where it yielded the step."""

    blocking: Callable[[], Any]
    awaited: Callable[[], Awaitable[Any]]


Flow = Generator[Step, Any, T]
"""A description of an operation: it yields steps and returns the operation's result."""


class Sender(Protocol):
    """What sends a call both ways (the data client)."""

    def send(self, call: Call) -> Any: ...

    async def send_async(self, call: Call) -> Any: ...

    def close(self) -> None: ...

    async def aclose(self) -> None: ...


def send(sender: Sender, call: Call) -> Step:
    """Send `call`; the step's result is the decoded reply."""
    return Step(lambda: sender.send(call), lambda: sender.send_async(call))


def close(sender: Sender) -> Step:
    """Close the sender's connections."""
    return Step(sender.close, sender.aclose)


def sleep(seconds: float) -> Step:
    """Wait `seconds`, blocking or off the event loop."""
    return Step(lambda: time.sleep(seconds), lambda: asyncio.sleep(seconds))


def in_thread(function: Callable[..., T], *arguments: Any) -> Step:
    """Call a blocking function: directly, or in a worker thread away from the event loop."""
    return Step(lambda: function(*arguments), lambda: asyncio.to_thread(function, *arguments))


def awaited(work: Callable[[], Awaitable[T]]) -> Step:
    """Await `work()`: on the caller's loop, or, blocking, on a loop of its own in a worker
    thread (so that it works even from a thread whose event loop is running)."""
    return Step(lambda: _on_own_loop(work), work)


def together(*flows: Flow[Any]) -> Step:
    """Run flows side by side (one after another when blocking); the result lists each one's
    return value or exception, in order."""

    def blocking() -> list[Any]:
        return [_outcome(run, flow) for flow in flows]

    async def concurrently() -> list[Any]:
        return await asyncio.gather(*(run_async(flow) for flow in flows), return_exceptions=True)

    return Step(blocking, concurrently)


def run(flow: Flow[T] | Step) -> T:
    """Run a flow to its end, blocking on each step."""
    runner = _Runner(flow)
    for step in runner:
        try:
            runner.answer(step.blocking())
        except BaseException as error:
            runner.fail(error)
    return runner.result


async def run_async(flow: Flow[T] | Step) -> T:
    """Run a flow to its end, awaiting each step."""
    runner = _Runner(flow)
    for step in runner:
        try:
            runner.answer(await step.awaited())
        except BaseException as error:
            runner.fail(error)
    return runner.result


def single(step: Step) -> Flow[Any]:
    """A flow of one step, returning its result."""
    return (yield step)


class _Runner:
    """Feeds a flow the result (or exception) of each step it yields, until it returns."""

    def __init__(self, flow: Flow[Any] | Step) -> None:
        self._flow = single(flow) if isinstance(flow, Step) else flow
        self._reply: Any = None
        self._error: BaseException | None = None
        self.result: Any = None

    def __iter__(self) -> Iterator[Step]:
        while True:
            error, self._error = self._error, None
            try:
                yield self._flow.throw(error) if error is not None else self._flow.send(self._reply)
            except StopIteration as finished:
                self.result = finished.value
                return

    def answer(self, reply: Any) -> None:
        self._reply = reply

    def fail(self, error: BaseException) -> None:
        self._error = error


def _outcome(function: Callable[[Flow[Any]], Any], flow: Flow[Any]) -> Any:
    try:
        return function(flow)
    except Exception as error:
        return error


def _on_own_loop(work: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        return await work()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, main()).result()
