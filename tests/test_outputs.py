"""Result entries to Jupyter iopub messages, checked without a kernel."""

from __future__ import annotations

import pytest

from sandbox_kernel.kernel.outputs import error_content, message_for, mime_bundle


@pytest.mark.parametrize("name", ["stdout", "stderr"])
def test_stream_entries_become_stream_messages(name):
    assert message_for({"type": name, "text": "line\n"}, 3) == (
        "stream",
        {"name": name, "text": "line\n"},
    )


def test_main_result_is_execute_result_with_the_given_count():
    entry = {
        "type": "result",
        "isMainResult": True,
        "text": "42",
        "bundle": {"text/plain": "42"},
        "metadata": {"isolated": True},
    }
    assert message_for(entry, 7) == (
        "execute_result",
        {"execution_count": 7, "data": {"text/plain": "42"}, "metadata": {"isolated": True}},
    )


def test_other_result_is_display_data_without_a_count():
    entry = {"type": "result", "isMainResult": False, "bundle": {"text/html": "<b>x</b>"}}
    assert message_for(entry, 7) == (
        "display_data",
        {"data": {"text/html": "<b>x</b>"}, "metadata": {}, "transient": {}},
    )


def test_display_id_goes_to_transient_and_an_update_is_update_display_data():
    shown = {"type": "result", "bundle": {"text/plain": "'a'"}, "displayId": "d1"}
    updated = {**shown, "bundle": {"text/plain": "'b'"}, "update": True}
    assert message_for(shown, 1)[0] == "display_data"
    assert message_for(shown, 1)[1]["transient"] == {"display_id": "d1"}
    assert message_for(updated, 1) == (
        "update_display_data",
        {"data": {"text/plain": "'b'"}, "metadata": {}, "transient": {"display_id": "d1"}},
    )


def test_update_without_a_display_id_is_shown_as_new_display_data():
    entry = {"type": "result", "bundle": {"text/plain": "'b'"}, "update": True}
    assert message_for(entry, 1)[0] == "display_data"


def test_full_bundle_wins_over_the_field_names():
    entry = {
        "type": "result",
        "text": "plain",
        "bundle": {"text/plain": "plain", "application/vnd.custom+json": {"a": 1}},
    }
    assert mime_bundle(entry) == {"text/plain": "plain", "application/vnd.custom+json": {"a": 1}}


def test_field_names_build_the_bundle_when_the_server_sends_none():
    entry = {"type": "result", "text": "t", "html": "<i>h</i>", "png": "iVBOR", "json": {"k": 1}}
    assert mime_bundle(entry) == {
        "text/plain": "t",
        "text/html": "<i>h</i>",
        "image/png": "iVBOR",
        "application/json": {"k": 1},
    }


def test_error_entry_keeps_a_traceback_list_as_it_is():
    entry = {"type": "error", "name": "KeyError", "value": "'k'", "traceback": ["a", "b\nc"]}
    assert message_for(entry, 1) == (
        "error",
        {"ename": "KeyError", "evalue": "'k'", "traceback": ["a", "b\nc"]},
    )


def test_error_entry_splits_a_traceback_string_into_lines():
    entry = {"name": "ValueError", "value": "bad", "traceback": "first\nsecond"}
    assert error_content(entry)["traceback"] == ["first", "second"]


def test_error_entry_without_traceback_gets_a_one_line_traceback():
    assert error_content({"name": "SandboxError", "value": "unreachable"}) == {
        "ename": "SandboxError",
        "evalue": "unreachable",
        "traceback": ["SandboxError: unreachable"],
    }


def test_clear_output_keeps_its_wait_flag():
    assert message_for({"type": "clearOutput", "wait": True}, 1) == (
        "clear_output",
        {"wait": True},
    )
    assert message_for({"type": "clearOutput"}, 1) == ("clear_output", {"wait": False})


@pytest.mark.parametrize(
    "entry",
    [{"type": "endOfExecution", "status": "ok", "executionCount": 3}, {"type": "somethingNew"}],
)
def test_entries_that_are_not_output_give_no_message(entry):
    assert message_for(entry, 1) is None
