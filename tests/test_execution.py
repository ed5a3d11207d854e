"""The server's execution state object, fed kernel messages by hand: no kernel, no clock."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox_kernel.server.execution import (
    INTERRUPT_GRACE_SECONDS,
    POLL_SECONDS,
    REPLY_AFTER_IDLE_SECONDS,
    Action,
    Execution,
    ExecutionRequest,
)

MSG_ID = "execute-1"


def message(msg_type: str, content: dict[str, Any], parent: str = MSG_ID) -> dict[str, Any]:
    return {"msg_type": msg_type, "content": content, "parent_header": {"msg_id": parent}}


def stream(text: str, parent: str = MSG_ID) -> tuple[str, dict[str, Any]]:
    return "iopub", message("stream", {"name": "stdout", "text": text}, parent)


def idle(parent: str = MSG_ID) -> tuple[str, dict[str, Any]]:
    return "iopub", message("status", {"execution_state": "idle"}, parent)


def reply(status: str = "ok", parent: str = MSG_ID, **content: Any) -> tuple[str, dict]:
    return "shell", message("execute_reply", {"status": status, **content}, parent)


def error(name: str, value: str) -> tuple[str, dict[str, Any]]:
    return "iopub", message("error", {"ename": name, "evalue": value, "traceback": ["tb"]})


def execution(**options: Any) -> Execution:
    settings = {"late_output_seconds": options.pop("late_output_seconds", 0.0)}
    if "interrupted_error" in options:
        settings["interrupted_error"] = options.pop("interrupted_error")
    return Execution(MSG_ID, ExecutionRequest("code", **options), 0.0, **settings)


def feed(run: Execution, *messages: tuple[str, dict], at: float = 0.1) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    for channel, item in messages:
        entries += run.receive(channel, item, at)
    return entries


def types(entries: list[dict[str, Any]]) -> list[str]:
    return [entry["type"] for entry in entries]


def test_output_idle_and_reply_end_the_execution_ok_with_its_count():
    run = execution()
    entries = feed(run, stream("a\n"), idle(), reply(execution_count=3))
    assert types(entries) == ["stdout", "endOfExecution"]
    assert entries[-1] == {"type": "endOfExecution", "status": "ok", "executionCount": 3}
    assert run.done


def test_a_reply_before_its_output_waits_for_the_output_and_idle():
    run = execution()
    assert feed(run, reply(execution_count=1)) == []
    assert not run.done
    entries = feed(run, stream("late\n"), idle())
    assert types(entries) == ["stdout", "endOfExecution"]
    assert entries[0]["text"] == "late\n"


def test_interleaved_replies_of_other_requests_are_not_this_executions():
    run = execution()
    entries = feed(
        run,
        stream("mine\n"),
        ("shell", message("complete_reply", {"matches": []}, parent="complete-7")),
        reply(parent="execute-0", execution_count=99),
        stream("not mine\n", parent="execute-0"),
        idle(parent="execute-0"),
        ("shell", message("inspect_reply", {"found": False})),
        idle(),
    )
    assert types(entries) == ["stdout"]
    assert not run.done
    entries = feed(run, reply(execution_count=4))
    assert entries == [{"type": "endOfExecution", "status": "ok", "executionCount": 4}]


def test_an_error_is_data_whatever_its_name():
    for name in ("TimeoutError", "ContextDied", "KeyboardInterrupt"):
        run = execution()
        entries = feed(run, error(name, "mine"), idle(), reply("error", ename=name, evalue="mine"))
        assert types(entries) == ["error", "endOfExecution"]
        assert entries[0]["name"] == name
        assert entries[-1]["status"] == "error"


def test_a_timeout_mid_output_interrupts_then_ends_timeout():
    run = execution(timeout=2)
    assert types(feed(run, stream("1\n"), at=0.5)) == ["stdout"]
    assert run.wait(1.5) == pytest.approx(0.5)
    assert run.quiet(2.0, alive=True) == ([], Action.INTERRUPT)
    # The interrupt's own KeyboardInterrupt is not shown: the timeout notice stands for it.
    entries = feed(run, stream("2\n"), error("KeyboardInterrupt", ""), idle(), at=2.1)
    entries += feed(run, reply("error", ename="KeyboardInterrupt"), at=2.1)
    assert types(entries) == ["stdout", "error", "endOfExecution"]
    assert entries[1]["name"] == "TimeoutError"
    assert "interrupted" in entries[1]["value"]
    assert entries[-1]["status"] == "timeout"


def test_a_kernel_that_ignores_the_timeouts_interrupt_is_restarted():
    run = execution(timeout=1)
    assert run.quiet(1.0, alive=True) == ([], Action.INTERRUPT)
    assert run.quiet(1.0 + INTERRUPT_GRACE_SECONDS / 2, alive=True) == ([], None)
    entries, action = run.quiet(1.1 + INTERRUPT_GRACE_SECONDS, alive=True)
    assert action is Action.RESTART
    assert types(entries) == ["error", "endOfExecution"]
    assert "restarted" in entries[0]["value"]
    assert entries[-1]["status"] == "timeout"


def test_an_interrupt_ends_the_execution_interrupted():
    run = execution()
    feed(run, stream("working\n"))
    run.interrupt()
    entries = feed(
        run, error("KeyboardInterrupt", ""), idle(), reply("error", ename="KeyboardInterrupt")
    )
    assert types(entries) == ["error", "endOfExecution"]
    assert entries[0]["name"] == "KeyboardInterrupt"
    assert entries[-1]["status"] == "interrupted"


def test_an_interrupt_the_code_survives_ends_ok():
    run = execution()
    run.interrupt()
    entries = feed(run, stream("caught it\n"), idle(), reply())
    assert entries[-1]["status"] == "ok"


def test_a_kernels_own_word_for_an_interrupt_reads_as_a_keyboard_interrupt():
    run = execution(interrupted_error=("Error", "Execution failed"))
    run.interrupt()
    entries = feed(run, error("Error", "Execution failed"), idle(), reply("error"))
    assert entries[0]["name"] == "KeyboardInterrupt"
    assert entries[-1]["status"] == "interrupted"
    uninterrupted = execution(interrupted_error=("Error", "Execution failed"))
    assert feed(uninterrupted, error("Error", "Execution failed"))[0]["name"] == "Error"
    reply_only = execution(interrupted_error=("Error", "Execution failed"))
    reply_only.interrupt()
    entries = feed(reply_only, idle(), reply("error", ename="Error", evalue="Execution failed"))
    assert [entries[0]["name"], entries[-1]["status"]] == ["KeyboardInterrupt", "interrupted"]


def test_a_death_ends_the_execution_died():
    run = execution()
    feed(run, stream("about to die\n"))
    assert run.wait(0.1) == POLL_SECONDS
    entries, action = run.quiet(1.1, alive=False)
    assert action is None
    assert types(entries) == ["error", "endOfExecution"]
    assert entries[0]["name"] == "ContextDied"
    assert entries[-1] == {"type": "endOfExecution", "status": "died", "executionCount": None}
    assert run.done


def test_a_context_that_goes_away_ends_the_execution_died():
    entries = execution().ended("ContextRestarted", "the context was restarted")
    assert [entries[0]["name"], entries[-1]["status"]] == ["ContextRestarted", "died"]


def test_idle_without_a_reply_ends_after_a_while():
    run = execution()
    feed(run, stream("x\n"), error("ValueError", "v"), idle(), at=1.0)
    assert run.wait(2.0) == pytest.approx(REPLY_AFTER_IDLE_SECONDS - 1.0)
    assert run.quiet(3.0, alive=True) == ([], None)
    entries, _ = run.quiet(1.0 + REPLY_AFTER_IDLE_SECONDS, alive=True)
    assert entries[-1]["status"] == "error"


def test_late_output_is_taken_until_the_kernel_is_quiet():
    run = execution(late_output_seconds=0.03)
    assert feed(run, idle(), reply(), at=1.0) == []
    assert run.wait(1.01) == pytest.approx(0.02)
    assert types(feed(run, stream("late\n"), at=1.02)) == ["stdout"]
    entries, _ = run.quiet(1.06, alive=True)
    assert types(entries) == ["endOfExecution"]


def test_input_requests_become_entries():
    run = execution()
    request = message("input_request", {"prompt": "Name? ", "password": True})
    assert feed(run, ("stdin", request)) == [
        {"type": "inputRequest", "prompt": "Name? ", "password": True}
    ]


def test_a_failure_only_in_the_reply_is_an_entry_on_the_plain_reply_only():
    usage = reply("error", ename="UsageError", evalue="no magic", traceback=[])
    plain = feed(execution(), ("iopub", message("stream", {"name": "stderr", "text": "U"})))
    plain += feed(execution(), idle(), usage)
    assert types(plain) == ["stderr", "error", "endOfExecution"]
    streamed = feed(execution(plain=False, reply_fields=True), idle(), usage)
    assert types(streamed) == ["endOfExecution"]
    assert streamed[0]["status"] == "error"
    assert streamed[0]["error"] == {"name": "UsageError", "value": "no magic", "traceback": ""}


def test_the_reply_extension_carries_payload_and_user_expressions():
    run = execution(plain=False, reply_fields=True)
    page = {"source": "page", "data": {"text/plain": "Docstring"}, "start": 0}
    values = {"x": {"status": "ok", "data": {"text/plain": "2"}, "metadata": {}}}
    (end,) = feed(run, idle(), reply(execution_count=2, payload=[page], user_expressions=values))
    assert end == {
        "type": "endOfExecution",
        "status": "ok",
        "executionCount": 2,
        "payload": [page],
        "userExpressions": values,
    }


def test_results_carry_their_bundle_once_on_the_servers_own_transports():
    content = {"data": {"text/plain": "42", "image/png": "iVBOR"}, "metadata": {}}
    result = ("iopub", message("execute_result", content))
    (streamed,) = feed(execution(plain=False), result)
    assert streamed == {
        "type": "result",
        "isMainResult": True,
        "bundle": content["data"],
        "metadata": {},
    }
    (plain,) = feed(execution(), result)
    assert (plain["text"], plain["png"], plain["bundle"]) == ("42", "iVBOR", content["data"])


def test_the_request_carries_the_notebooks_count_in_its_metadata():
    request = ExecutionRequest("x", execution_count=7, past_inputs=[(5, "%sbx ls")])
    assert request.metadata() == {
        "sandboxKernel": {"executionCount": 7, "pastInputs": [(5, "%sbx ls")]}
    }
    assert ExecutionRequest("x").metadata() == {}
    assert ExecutionRequest("x", silent=True).content()["silent"] is True
