"""The kernel's cell runner, fed entries by hand: what it publishes and how it replies."""

from __future__ import annotations

from typing import Any

from sandbox_kernel.kernel.cells import Cell, CellRun
from sandbox_kernel.kernel.outputs import MESSAGES, message_for


class Published(list):
    def __call__(self, msg_type: str, content: dict[str, Any]) -> None:
        self.append((msg_type, content))

    @property
    def kinds(self) -> list[str]:
        return [kind for kind, _ in self]


def end(status: str, **fields: Any) -> dict[str, Any]:
    return {"type": "endOfExecution", "status": status, **fields}


def error(name: str, value: str = "v") -> dict[str, Any]:
    return {"type": "error", "name": name, "value": value, "traceback": f"{name}: {value}"}


def explain(notice: dict[str, Any]) -> dict[str, Any]:
    return {"type": "error", "name": "TimeoutError", "value": "raise the limit"}


def test_the_table_maps_every_output_entry_type():
    assert set(MESSAGES) == {"stdout", "stderr", "result", "error", "clearOutput"}
    assert message_for({"type": "inputRequest"}, 1) is None
    assert message_for({"type": "endOfExecution"}, 1) is None


def test_outputs_are_published_and_an_ok_end_replies_ok_with_the_payload():
    published = Published()
    run = CellRun(Cell(4), published)
    page = {"source": "page", "data": {"text/plain": "doc"}, "start": 0}
    for entry in (
        {"type": "stdout", "text": "hi\n"},
        {"type": "result", "isMainResult": True, "bundle": {"text/plain": "1"}},
        end("ok", payload=[page], userExpressions={"x": {"status": "ok"}}),
    ):
        run.feed(entry)
    assert published.kinds == ["stream", "execute_result"]
    assert published[1][1]["execution_count"] == 4
    assert run.reply() == {
        "status": "ok",
        "execution_count": 4,
        "payload": [page],
        "user_expressions": {"x": {"status": "ok"}},
    }


def test_an_error_named_like_a_signal_is_shown_and_fails_the_cell():
    for name in ("TimeoutError", "ContextDied"):
        published = Published()
        run = CellRun(Cell(1), published, explain)
        run.feed(error(name, "mine"))
        run.feed(end("error"))
        assert published == [
            ("error", {"ename": name, "evalue": "mine", "traceback": [f"{name}: mine"]})
        ]
        assert (run.reply()["ename"], run.reply()["evalue"]) == (name, "mine")


def test_a_timeout_replaces_the_servers_notice_with_the_explanation():
    published = Published()
    run = CellRun(Cell(1), published, explain)
    run.feed({"type": "stdout", "text": "working\n"})
    run.feed(error("TimeoutError", "server's words"))
    run.feed(end("timeout"))
    assert published.kinds == ["stream", "error"]
    assert published[1][1]["evalue"] == "raise the limit"
    assert run.reply()["evalue"] == "raise the limit"


def test_an_error_is_shown_as_soon_as_anything_follows_it():
    published = Published()
    run = CellRun(Cell(1), published, explain)
    run.feed(error("ValueError"))
    assert published == []
    run.feed({"type": "stderr", "text": "after\n"})
    assert published.kinds == ["error", "stream"]


def test_the_reply_error_comes_from_the_end_when_the_server_gives_one():
    published = Published()
    run = CellRun(Cell(2), published)
    run.feed({"type": "stderr", "text": "UsageError: no such magic\n"})
    run.feed(end("error", error={"name": "UsageError", "value": "no such magic", "traceback": ""}))
    assert published.kinds == ["stream"]
    reply = run.reply()
    assert (reply["status"], reply["ename"], reply["evalue"]) == (
        "error",
        "UsageError",
        "no such magic",
    )


def test_interrupted_and_died_and_unknown_outcomes_fail_the_cell():
    for status in ("interrupted", "died", "something-new"):
        run = CellRun(Cell(1), Published())
        run.feed(error("KeyboardInterrupt"))
        run.feed(end(status))
        assert run.reply()["status"] == "error"
    assert CellRun(Cell(1), Published()).status == "ok"


def test_a_server_without_an_end_status_fails_the_cell_on_an_error_entry():
    run = CellRun(Cell(1), Published())
    run.feed(error("NameError"))
    run.feed({"type": "endOfExecution"})
    assert run.status == "error"


def test_a_silent_cell_shows_no_result_but_its_streams():
    published = Published()
    run = CellRun(Cell(3, silent=True), published)
    run.feed({"type": "result", "isMainResult": True, "bundle": {"text/plain": "5"}})
    run.feed({"type": "stdout", "text": "s\n"})
    run.feed(end("ok"))
    assert published.kinds == ["stream"]
    assert run.reply()["execution_count"] == 2


def test_an_unstored_cells_result_and_reply_take_the_last_count():
    published = Published()
    run = CellRun(Cell(6, store_history=False), published)
    run.feed({"type": "result", "isMainResult": True, "bundle": {"text/plain": "7"}})
    assert published[0][1]["execution_count"] == 5


def test_a_result_keeps_the_count_and_display_id_the_sandbox_gave_it():
    entry = {
        "type": "result",
        "isMainResult": True,
        "bundle": {"text/plain": "9"},
        "displayId": "result",
        "executionCount": 11,
    }
    assert message_for(entry, 3) == (
        "execute_result",
        {
            "execution_count": 11,
            "data": {"text/plain": "9"},
            "metadata": {},
            "transient": {"display_id": "result"},
        },
    )


def test_stop_ends_the_cell_with_the_kernels_own_error():
    published = Published()
    run = CellRun(Cell(1), published)
    run.feed({"type": "stdout", "text": "partial\n"})
    run.stop({"name": "SandboxError", "value": "no answer"})
    assert published.kinds == ["stream", "error"]
    assert run.reply()["ename"] == "SandboxError"
