"""The live extensions through the client against real servers: entries as they are produced,
NDJSON streaming, interrupt, restart, input, completion and inspection; and what the client does
against a server that offers none of them (`serve --no-extensions`, standing in for the cloud)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from conftest import RunningServer, start_server

from sandbox_kernel import CodeInterpreterSandbox
from sandbox_kernel.client import SandboxError
from sandbox_kernel.client.contexts import ContextOperations
from sandbox_kernel.client.errors import SandboxUnsupportedError

EXTENSIONS = {
    "stream",
    "socket",
    "interrupt",
    "restart",
    "stdin",
    "complete",
    "inspect",
    "reply",
    "comms",
    "debug",
    "rawUpload",
}
PRINT_THEN_SLEEP = "import time\nprint('a', flush=True)\ntime.sleep(2)\nprint('b')"


@pytest.fixture(scope="module")
def plain_server(tmp_path_factory) -> Iterator[RunningServer]:
    """A server that speaks only the plain cloud protocol."""
    running = start_server(tmp_path_factory.mktemp("plain-root"), "--no-extensions")
    yield running
    running.stop()


async def open_sandbox(server: RunningServer) -> AsyncIterator[CodeInterpreterSandbox]:
    sandbox = await CodeInterpreterSandbox.create_async(endpoint=server.url, token=server.token)
    await sandbox.context.create_async()
    yield sandbox
    try:
        await sandbox.delete_async()
    finally:
        await sandbox.aclose()


@pytest.fixture(scope="module")
async def live_sandbox(server) -> AsyncIterator[CodeInterpreterSandbox]:
    """A sandbox with one context on the server that offers every extension."""
    async for sandbox in open_sandbox(server):
        yield sandbox


@pytest.fixture(scope="module")
async def plain_sandbox(plain_server) -> AsyncIterator[CodeInterpreterSandbox]:
    """A sandbox with one context on the server without extensions."""
    async for sandbox in open_sandbox(plain_server):
        yield sandbox


@pytest.fixture
def live_context(live_sandbox) -> ContextOperations:
    return live_sandbox.context


@pytest.fixture
def plain_context(plain_sandbox) -> ContextOperations:
    return plain_sandbox.context


class Arrivals:
    """Entries with the time each one reached the client, in seconds after the start."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.seen: list[tuple[float, dict[str, Any]]] = []

    def __call__(self, entry: dict[str, Any]) -> None:
        self.seen.append((time.monotonic() - self.started, entry))

    @property
    def entries(self) -> list[dict[str, Any]]:
        return [entry for _, entry in self.seen]

    def at(self, kind: str, text: str | None = None) -> float:
        """When the first entry of `kind` (with `text`, if given) arrived."""
        return next(
            moment
            for moment, entry in self.seen
            if entry["type"] == kind and (text is None or entry.get("text") == text)
        )


async def collect(entries: AsyncIterator[dict[str, Any]]) -> Arrivals:
    arrivals = Arrivals()
    async for entry in entries:
        arrivals(entry)
    return arrivals


def kinds(entries: list[dict[str, Any]]) -> list[str]:
    return [entry["type"] for entry in entries]


def ending(entries: list[dict[str, Any]]) -> dict[str, Any]:
    assert entries[-1]["type"] == "endOfExecution"
    return entries[-1]


def error_names(entries: list[dict[str, Any]]) -> list[str]:
    return [entry["name"] for entry in entries if entry["type"] == "error"]


def raw_execute(
    sandbox: CodeInterpreterSandbox, body: dict[str, Any], accept: str | None = None
) -> httpx.Response:
    """POST /contexts/execute without the client, to see the HTTP reply as it is."""
    headers = {"Authorization": f"Bearer {sandbox.data_api.settings.token}"}
    if accept is not None:
        headers["Accept"] = accept
    url = f"{sandbox.endpoint}/sandboxes/{sandbox.sandbox_id}/contexts/execute"
    return httpx.post(url, json=body, headers=headers, timeout=30)


# ---- entries as they are produced


def test_health_offers_every_extension(live_sandbox):
    assert live_sandbox.check_health()["extensions"]
    assert live_sandbox.extensions == EXTENSIONS


def test_on_entry_sees_each_entry_as_it_is_produced(live_context):
    arrivals = Arrivals()
    reply = live_context.execute(PRINT_THEN_SLEEP, on_entry=arrivals)
    assert reply["results"] == arrivals.entries
    assert reply["contextId"] == live_context.context_id
    assert kinds(arrivals.entries) == ["stdout", "stdout", "endOfExecution"]
    assert arrivals.at("stdout", "a\n") < 1.0
    assert arrivals.at("stdout", "b\n") - arrivals.at("stdout", "a\n") > 1.5
    assert ending(arrivals.entries)["status"] == "ok"


async def test_on_entry_of_the_async_execute_sees_each_entry_as_it_is_produced(live_context):
    arrivals = Arrivals()
    reply = await live_context.execute_async(PRINT_THEN_SLEEP, on_entry=arrivals)
    assert reply["results"] == arrivals.entries
    assert arrivals.at("stdout", "b\n") - arrivals.at("stdout", "a\n") > 1.5


async def test_stream_async_yields_entries_as_they_are_produced(live_context):
    arrivals = await collect(live_context.stream_async(PRINT_THEN_SLEEP))
    assert [entry.get("text") for entry in arrivals.entries] == ["a\n", "b\n", None]
    assert arrivals.at("stdout", "a\n") < 1.0
    assert arrivals.at("endOfExecution") - arrivals.at("stdout", "a\n") > 1.5


def test_streamed_execute_answers_ndjson_one_entry_per_line(live_sandbox, live_context):
    body = {"code": "print('one')\n1 + 1", "contextId": live_context.context_id}
    response = raw_execute(live_sandbox, body, accept="application/x-ndjson")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    lines = response.text.splitlines()
    entries = [json.loads(line) for line in lines]
    assert kinds(entries) == ["stdout", "result", "endOfExecution"]
    assert entries[1]["bundle"] == {"text/plain": "2"}  # a stream carries the bundle once

    plain = raw_execute(live_sandbox, body)
    assert plain.headers["content-type"].startswith("application/json")
    assert kinds(plain.json()["results"]) == kinds(entries)


async def test_streamed_execute_with_a_timeout_is_stopped_at_that_timeout(live_context):
    started = time.monotonic()
    arrivals = await collect(live_context.stream_async("import time\ntime.sleep(5)", timeout=1))
    assert time.monotonic() - started < 4
    assert error_names(arrivals.entries) == ["TimeoutError"]
    assert ending(arrivals.entries)["status"] == "timeout"


async def test_streamed_execute_without_a_timeout_has_no_limit(live_sandbox, live_context):
    arrivals = await collect(live_context.stream_async("import time\ntime.sleep(2)", timeout=None))
    assert ending(arrivals.entries)["status"] == "ok"
    body = {"code": "time.sleep(2)", "contextId": live_context.context_id, "timeout": None}
    response = await asyncio.to_thread(
        raw_execute, live_sandbox, body, accept="application/x-ndjson"
    )
    assert json.loads(response.text.splitlines()[-1])["status"] == "ok"


# ---- interrupt and restart


def test_interrupt_ends_the_running_execution_and_keeps_the_state(live_context):
    live_context.execute("kept = 'before the loop'")
    threading.Timer(1.0, live_context.interrupt).start()
    started = time.monotonic()
    reply = live_context.execute("while True:\n    pass", on_entry=lambda entry: None)
    assert time.monotonic() - started < 2.0
    assert error_names(reply["results"]) == ["KeyboardInterrupt"]
    assert ending(reply["results"])["status"] == "interrupted"
    after = live_context.execute("kept")
    assert after["results"][0]["text"] == "'before the loop'"


async def test_interrupt_async_stops_a_streamed_execution_soon_after_it_started(live_context):
    entries = live_context.stream_async("print('looping', flush=True)\nwhile True:\n    pass")
    arrivals = Arrivals()
    async for entry in entries:
        arrivals(entry)
        if entry.get("text") == "looping\n":
            assert (await live_context.interrupt_async())["interrupted"] is True
    assert arrivals.at("endOfExecution") - arrivals.at("stdout") < 1.0
    assert error_names(arrivals.entries) == ["KeyboardInterrupt"]


def test_interrupting_an_idle_context_is_harmless(live_context):
    live_context.interrupt()
    time.sleep(0.2)
    reply = live_context.execute("print('still here')")
    assert reply["results"][0]["text"] == "still here\n"


def test_restart_keeps_the_id_and_empties_the_namespace(live_context):
    live_context.execute("before_restart = 1")
    described = live_context.restart()
    assert described["id"] == live_context.context_id
    reply = live_context.execute("before_restart")
    assert error_names(reply["results"]) == ["NameError"]


async def test_restart_ends_a_running_execution(live_context):
    entries = live_context.stream_async(
        "print('sleeping', flush=True)\nimport time\ntime.sleep(30)"
    )
    arrivals = Arrivals()
    async for entry in entries:
        arrivals(entry)
        if entry.get("text") == "sleeping\n":
            await live_context.restart_async()
    assert ending(arrivals.entries)["status"] == "died"
    assert error_names(arrivals.entries) == ["ContextRestarted"]
    assert arrivals.at("endOfExecution") < 10


# ---- input


async def answered(context: ContextOperations, code: str, answer: str) -> Arrivals:
    """Run `code` with stdin allowed, answering each input request with `answer`."""
    arrivals = Arrivals()
    async for entry in context.stream_async(code, allow_stdin=True, timeout=20):
        arrivals(entry)
        if entry["type"] == "inputRequest":
            await context.send_input_async(answer)
    return arrivals


async def test_input_request_is_answered_with_send_input(live_context):
    arrivals = await answered(live_context, "name = input('Name? ')\nprint('hello', name)", "Ada")
    request, printed, end = arrivals.entries
    assert request == {"type": "inputRequest", "prompt": "Name? ", "password": False}
    assert printed == {"type": "stdout", "text": "hello Ada\n"}
    assert end["status"] == "ok"


async def test_getpass_request_is_marked_as_a_password(live_context):
    code = "import getpass\nsecret = getpass.getpass('Password: ')\nprint(len(secret))"
    arrivals = await answered(live_context, code, "s3cret")
    assert arrivals.entries[0] == {"type": "inputRequest", "prompt": "Password: ", "password": True}
    assert arrivals.entries[1]["text"] == "6\n"


async def test_input_right_after_a_restart_is_answered(live_context):
    for _ in range(3):
        await live_context.restart_async()
        arrivals = await answered(live_context, "print(input('Name? '))", "Ada")
        assert kinds(arrivals.entries) == ["inputRequest", "stdout", "endOfExecution"]
        assert arrivals.at("endOfExecution") < 5


async def test_input_without_allow_stdin_fails_instead_of_waiting(live_context):
    arrivals = await collect(live_context.stream_async("input('Name? ')", timeout=20))
    assert "inputRequest" not in kinds(arrivals.entries)
    assert error_names(arrivals.entries) == ["StdinNotImplementedError"]
    assert arrivals.at("endOfExecution") < 5


def test_send_input_when_nothing_waits_is_a_conflict(live_context):
    with pytest.raises(SandboxError) as caught:
        live_context.send_input("unasked")
    assert caught.value.status == 409
    assert "not waiting for input" in str(caught.value)


# ---- completion and inspection


def test_complete_offers_a_name_defined_earlier(live_context):
    live_context.execute("defined_earlier = 42")
    reply = live_context.complete("defined_ear", 11)
    assert "defined_earlier" in reply["matches"]
    assert (reply["cursorStart"], reply["cursorEnd"]) == (0, 11)


async def test_complete_async_offers_attributes_of_a_name_defined_earlier(live_context):
    await live_context.execute_async("defined_earlier = 42")
    reply = await live_context.complete_async("defined_earlier.bit_", 20)
    assert reply["matches"] == ["bit_count", "bit_length"]
    assert reply["cursorStart"] == len("defined_earlier.")


def test_inspect_describes_a_name_defined_earlier(live_context):
    live_context.execute("defined_earlier = 42")
    reply = live_context.inspect("defined_earlier", 5)
    assert reply["found"] is True
    assert "int" in reply["data"]["text/plain"]
    assert live_context.inspect("never_defined_anywhere", 5)["found"] is False


async def test_inspect_async_with_detail_describes_a_function_defined_earlier(live_context):
    await live_context.execute_async("def described(x):\n    'Doubles x.'\n    return 2 * x")
    reply = await live_context.inspect_async("described", 3, detail_level=1)
    assert reply["found"] is True
    assert "Doubles x." in reply["data"]["text/plain"]


# ---- a server without extensions


def test_plain_server_offers_no_extensions(plain_sandbox):
    assert plain_sandbox.check_health()["status"] == "ok"
    assert plain_sandbox.extensions == frozenset()


def test_extensions_are_unsupported_errors_on_a_plain_server(plain_context):
    for name, call in [
        ("interrupt", plain_context.interrupt),
        ("restart", plain_context.restart),
        ("stdin", lambda: plain_context.send_input("x")),
        ("complete", lambda: plain_context.complete("pri", 3)),
        ("inspect", lambda: plain_context.inspect("print", 3)),
    ]:
        with pytest.raises(SandboxUnsupportedError, match=f"does not offer '{name}'"):
            call()


async def test_async_extensions_are_unsupported_errors_on_a_plain_server(plain_context):
    for call in [
        plain_context.interrupt_async(),
        plain_context.restart_async(),
        plain_context.send_input_async("x"),
        plain_context.complete_async("pri", 3),
        plain_context.inspect_async("print", 3),
    ]:
        with pytest.raises(SandboxUnsupportedError):
            await call


def test_plain_server_has_no_extension_routes(plain_sandbox, plain_context):
    base = f"{plain_sandbox.endpoint}/sandboxes/{plain_sandbox.sandbox_id}"
    headers = {"Authorization": f"Bearer {plain_sandbox.data_api.settings.token}"}
    for route in ("interrupt", "restart", "input", "complete", "inspect"):
        url = f"{base}/contexts/{plain_context.context_id}/{route}"
        response = httpx.post(url, json={}, headers=headers)
        assert response.status_code == 404, route


def test_plain_server_answers_one_json_reply_even_when_asked_for_ndjson(
    plain_sandbox, plain_context
):
    body = {"code": "print('one')", "contextId": plain_context.context_id}
    response = raw_execute(plain_sandbox, body, accept="application/x-ndjson")
    assert response.headers["content-type"].startswith("application/json")
    assert kinds(response.json()["results"]) == ["stdout", "endOfExecution"]


def test_on_entry_on_a_plain_server_sees_every_entry_at_the_end(plain_context):
    arrivals = Arrivals()
    reply = plain_context.execute(PRINT_THEN_SLEEP, on_entry=arrivals)
    assert reply["results"] == arrivals.entries
    assert kinds(arrivals.entries) == ["stdout", "stdout", "endOfExecution"]
    assert arrivals.at("stdout", "a\n") > 2.0


async def test_stream_async_on_a_plain_server_yields_every_entry_at_the_end(plain_context):
    arrivals = await collect(plain_context.stream_async(PRINT_THEN_SLEEP, timeout=30))
    assert [entry.get("text") for entry in arrivals.entries] == ["a\n", "b\n", None]
    assert arrivals.at("stdout", "a\n") > 2.0


async def test_input_on_a_plain_server_fails_instead_of_waiting(plain_context):
    code = "input('Name? ')"
    arrivals = await collect(plain_context.stream_async(code, allow_stdin=True, timeout=20))
    assert error_names(arrivals.entries) == ["StdinNotImplementedError"]
    assert arrivals.at("endOfExecution") < 5


def test_streamed_execution_in_a_default_context_names_that_context(server):
    with CodeInterpreterSandbox.create(endpoint=server.url, token=server.token) as sandbox:
        seen: list[dict] = []
        reply = sandbox.context.execute("1", language="python", on_entry=seen.append)
        assert reply["contextId"]
        assert reply["contextId"] in [context["id"] for context in sandbox.context.list()]
