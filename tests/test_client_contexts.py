"""Contexts (stateful interpreters) and code execution in them, against a real server."""

from __future__ import annotations

import base64
import time

import pytest

from sandbox_kernel import SandboxNotFoundError
from sandbox_kernel.client import CodeLanguage

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def entries(reply, kind: str) -> list[dict]:
    return [entry for entry in reply["results"] if entry["type"] == kind]


def end_of(reply) -> dict:
    last = reply["results"][-1]
    assert last["type"] == "endOfExecution"
    return last


def context_ids(listing) -> list[str]:
    return [context["id"] for context in listing]


def test_context_create_list_get_and_delete(sandbox):
    context = sandbox.context.create(CodeLanguage.PYTHON, cwd="/home/user")
    first = context.context_id
    assert first
    listed = {item["id"]: item for item in sandbox.context.list()}
    assert (listed[first]["language"], listed[first]["cwd"]) == ("python", "/home/user")

    sandbox.file_system.mkdir("/home/user/elsewhere")
    sandbox.context.create("python", cwd="/home/user/elsewhere")
    second = sandbox.context.context_id
    assert second != first
    assert sorted(context_ids(sandbox.context.list())) == sorted([first, second])

    assert sandbox.context.get(first) is sandbox.context
    assert sandbox.context.context_id == first
    [cwd] = entries(sandbox.context.execute("import os; print(os.getcwd())"), "stdout")
    assert cwd["text"].strip().endswith("/home/user")

    sandbox.context.delete(second)
    assert sandbox.context.context_id == first
    sandbox.context.delete()
    assert sandbox.context.context_id is None
    assert sandbox.context.list() == []
    with pytest.raises(SandboxNotFoundError):
        sandbox.context.get(first)


async def test_async_context_create_list_get_execute_and_delete(async_sandbox):
    context = await async_sandbox.context.create_async()
    context_id = context.context_id
    assert context_ids(await async_sandbox.context.list_async()) == [context_id]
    assert (await async_sandbox.context.get_async(context_id)).context_id == context_id

    await context.execute_async("value = 6 * 7")
    reply = await context.execute_async("value")
    assert reply["contextId"] == context_id
    assert entries(reply, "result")[0]["text"] == "42"

    await async_sandbox.context.delete_async()
    assert await async_sandbox.context.list_async() == []
    with pytest.raises(SandboxNotFoundError):
        await async_sandbox.context.get_async(context_id)


def test_with_block_deletes_the_context(sandbox):
    with sandbox.context.create() as context:
        context_id = context.context_id
        assert context_ids(sandbox.context.list()) == [context_id]
    assert sandbox.context.list() == []
    assert sandbox.context.context_id is None


async def test_async_with_block_deletes_the_context(async_sandbox):
    async with await async_sandbox.context.create_async() as context:
        context_id = context.context_id
        assert context_ids(await async_sandbox.context.list_async()) == [context_id]
    assert await async_sandbox.context.list_async() == []


def test_execute_keeps_state_and_returns_streams_results_and_counts(sandbox):
    with sandbox.context.create() as context:
        first = context.execute(
            "import sys\ntotal = 40\nprint('out')\nprint('err', file=sys.stderr)"
        )
        assert first["contextId"] == context.context_id
        assert entries(first, "stdout") == [{"type": "stdout", "text": "out\n"}]
        assert entries(first, "stderr") == [{"type": "stderr", "text": "err\n"}]
        assert end_of(first)["status"] == "ok"

        second = context.execute("total + 2")
        [result] = entries(second, "result")
        assert result["isMainResult"] is True
        assert result["text"] == "42"
        assert end_of(second)["status"] == "ok"
        assert end_of(second)["executionCount"] > end_of(first)["executionCount"]


def test_execution_error_carries_name_value_and_traceback(sandbox):
    with sandbox.context.create() as context:
        reply = context.execute("def fail():\n    raise ValueError('bad value')\nfail()")
        [error] = entries(reply, "error")
        assert (error["name"], error["value"]) == ("ValueError", "bad value")
        assert isinstance(error["traceback"], str)
        assert "fail()" in error["traceback"]
        assert "bad value" in error["traceback"]
        assert end_of(reply)["status"] == "error"


def test_matplotlib_figure_arrives_as_a_png_display(sandbox):
    code = (
        "import matplotlib\n"
        "matplotlib.use('module://matplotlib_inline.backend_inline')\n"
        "import matplotlib.pyplot as plt\n"
        "plt.plot([1, 3, 2])\n"
        "plt.show()\n"
    )
    with sandbox.context.create() as context:
        reply = context.execute(code)
    assert end_of(reply)["status"] == "ok", reply
    displays = [entry for entry in entries(reply, "result") if "png" in entry]
    assert len(displays) == 1
    [display] = displays
    assert display["isMainResult"] is False
    assert display["bundle"]["image/png"] == display["png"]
    assert base64.b64decode(display["png"]).startswith(PNG_SIGNATURE)


def test_timeout_interrupts_the_cell_and_keeps_the_state(sandbox):
    with sandbox.context.create() as context:
        context.execute("kept = 'still here'")
        started = time.monotonic()
        reply = context.execute("import time\ntime.sleep(30)", timeout=1)
        assert time.monotonic() - started < 10
        assert end_of(reply)["status"] == "timeout"
        assert [error["name"] for error in entries(reply, "error")] == ["TimeoutError"]

        after = context.execute("kept")
        assert entries(after, "result")[0]["text"] == "'still here'"
        assert end_of(after)["status"] == "ok"


def test_execute_with_only_a_language_uses_a_default_python_context(sandbox):
    first = sandbox.context.execute("shared = 'default'", language="python")
    assert first["contextId"]
    second = sandbox.context.execute("shared", language=CodeLanguage.PYTHON)
    assert second["contextId"] == first["contextId"]
    assert entries(second, "result")[0]["text"] == "'default'"
    third = sandbox.context.execute("shared")
    assert third["contextId"] == first["contextId"]
    assert context_ids(sandbox.context.list()) == [first["contextId"]]


async def test_async_execute_with_only_a_language_uses_a_default_context(async_sandbox):
    first = await async_sandbox.context.execute_async("n = 1", language="python")
    second = await async_sandbox.context.execute_async("n + 1", language="python")
    assert second["contextId"] == first["contextId"]
    assert entries(second, "result")[0]["text"] == "2"


def test_files_are_shared_between_the_api_and_code(sandbox):
    """A file written by the API is read by code in home, and the other way round."""
    sandbox.file.write("/home/user/x.txt", "from the API ✓")
    with sandbox.context.create() as context:
        reply = context.execute(
            "print(open('x.txt', encoding='utf-8').read())\n"
            "open('y.txt', 'w', encoding='utf-8').write('from code')"
        )
    assert entries(reply, "stdout") == [{"type": "stdout", "text": "from the API ✓\n"}]
    assert sandbox.file.read("/home/user/y.txt")["content"] == "from code"


def test_operations_on_a_deleted_context_are_not_found(sandbox):
    context_id = sandbox.context.create().context_id
    sandbox.context.delete()
    with pytest.raises(SandboxNotFoundError):
        sandbox.context.execute("1", context_id=context_id)
    with pytest.raises(SandboxNotFoundError):
        sandbox.context.delete(context_id)


def test_context_operations_without_a_context_say_so(sandbox):
    with pytest.raises(ValueError, match="no context"):
        sandbox.context.delete()
    with pytest.raises(ValueError, match="no context"), sandbox.context:
        pass
