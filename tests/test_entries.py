"""How the server turns a kernel's iopub messages into result entries, with no kernel running."""

from __future__ import annotations

import json

import pytest

from sandbox_kernel.client.results import mime_bundle
from sandbox_kernel.server.entries import (
    MIME_FIELDS,
    end_entry,
    entry_from_iopub,
    error_entry,
    result_entry,
)

RICH_BUNDLE = {
    "text/plain": "<Figure>",
    "text/html": "<b>bold</b>",
    "text/markdown": "**bold**",
    "image/svg+xml": "<svg/>",
    "image/png": "iVBORw0KGgo=",
    "image/jpeg": "/9j/4AAQ",
    "application/pdf": "JVBERi0=",
    "text/latex": "$x^2$",
    "application/json": {"a": [1, 2]},
    "application/javascript": "console.log(1)",
    "application/vnd.custom+json": {"kept": True},
}


@pytest.mark.parametrize("name", ["stdout", "stderr"])
def test_stream_becomes_a_text_entry_with_newlines_kept(name):
    content = {"name": name, "text": "line one\n  line two\r\n\n"}
    assert entry_from_iopub("stream", content) == {
        "type": name,
        "text": "line one\n  line two\r\n\n",
    }


def test_execute_result_is_the_main_result_with_every_known_mime_field():
    content = {"data": RICH_BUNDLE, "metadata": {"image/png": {"width": 10}}, "execution_count": 3}
    entry = entry_from_iopub("execute_result", content)

    assert entry["type"] == "result"
    assert entry["isMainResult"] is True
    for mime, field in MIME_FIELDS.items():
        assert entry[field] == RICH_BUNDLE[mime]
    assert entry["json"] == {"a": [1, 2]}
    assert entry["bundle"] == RICH_BUNDLE
    assert entry["metadata"] == {"image/png": {"width": 10}}
    assert "update" not in entry and "displayId" not in entry


def test_a_client_rebuilds_the_bundle_from_the_e2b_fields_alone():
    entry = entry_from_iopub("display_data", {"data": RICH_BUNDLE, "metadata": {}})
    del entry["bundle"]  # what a server without the [ext] bundle field sends
    standard = {mime: value for mime, value in RICH_BUNDLE.items() if mime in MIME_FIELDS}
    assert len(standard) == 10
    assert mime_bundle(entry) == standard
    assert entry["png"] == RICH_BUNDLE["image/png"] and entry["latex"] == RICH_BUNDLE["text/latex"]


def test_plain_result_carries_only_text():
    entry = entry_from_iopub("execute_result", {"data": {"text/plain": "42"}, "metadata": {}})
    assert entry == {
        "type": "result",
        "isMainResult": True,
        "text": "42",
        "bundle": {"text/plain": "42"},
        "metadata": {},
    }


def test_unknown_mime_type_stays_in_the_bundle_only():
    content = {"data": {"application/vnd.plotly.v1+json": {"data": []}}, "metadata": {}}
    entry = entry_from_iopub("display_data", content)
    assert entry["bundle"] == {"application/vnd.plotly.v1+json": {"data": []}}
    assert not set(MIME_FIELDS.values()) & set(entry)


def test_display_data_is_a_side_result_with_its_display_id():
    content = {
        "data": {"text/html": "<p>progress</p>"},
        "metadata": {},
        "transient": {"display_id": "bar-1"},
    }
    entry = entry_from_iopub("display_data", content)
    assert entry["isMainResult"] is False
    assert entry["html"] == "<p>progress</p>"
    assert entry["displayId"] == "bar-1"
    assert "update" not in entry


def test_update_display_data_is_marked_as_an_update_of_its_display():
    content = {"data": {"text/plain": "90%"}, "metadata": {}, "transient": {"display_id": "bar-1"}}
    entry = entry_from_iopub("update_display_data", content)
    assert entry["isMainResult"] is False
    assert entry["update"] is True
    assert entry["displayId"] == "bar-1"
    assert entry["text"] == "90%"


def test_display_without_transient_or_metadata_still_maps():
    for content in ({"data": {"text/plain": "x"}}, {"data": None, "transient": None}, {}):
        entry = entry_from_iopub("display_data", content)
        assert entry["type"] == "result"
        assert entry["metadata"] == {}
        assert "displayId" not in entry


def test_error_joins_the_traceback_into_one_string_keeping_ansi_colours():
    traceback = [
        "\x1b[31m---------------------------------------------------------------\x1b[39m",
        "\x1b[31mZeroDivisionError\x1b[39m  Traceback (most recent call last)",
        "\x1b[31mZeroDivisionError\x1b[39m: division by zero",
    ]
    content = {"ename": "ZeroDivisionError", "evalue": "division by zero", "traceback": traceback}
    assert entry_from_iopub("error", content) == {
        "type": "error",
        "name": "ZeroDivisionError",
        "value": "division by zero",
        "traceback": "\n".join(traceback),
    }


def test_error_with_missing_fields_gets_defaults():
    assert entry_from_iopub("error", {}) == {
        "type": "error",
        "name": "Error",
        "value": "",
        "traceback": "",
    }


@pytest.mark.parametrize(("wait", "expected"), [(True, True), (False, False), (None, False)])
def test_clear_output_keeps_its_wait_flag(wait, expected):
    assert entry_from_iopub("clear_output", {"wait": wait}) == {
        "type": "clearOutput",
        "wait": expected,
    }


@pytest.mark.parametrize(
    "msg_type",
    ["status", "execute_input", "comm_open", "comm_msg", "comm_close", "shutdown_reply", "debug"],
)
def test_messages_without_output_produce_no_entry(msg_type):
    assert entry_from_iopub(msg_type, {"execution_state": "busy", "code": "1"}) is None


def test_end_entry_reports_status_and_execution_count():
    assert end_entry("ok", 7) == {"type": "endOfExecution", "status": "ok", "executionCount": 7}
    assert end_entry("timeout", None)["executionCount"] is None


def test_error_entry_builds_a_server_side_error():
    assert error_entry("TimeoutError", "too slow") == {
        "type": "error",
        "name": "TimeoutError",
        "value": "too slow",
        "traceback": "",
    }


def test_entries_are_plain_json():
    contents = [
        ("stream", {"name": "stdout", "text": "é ✓"}),
        ("execute_result", {"data": RICH_BUNDLE, "metadata": {}}),
        ("error", {"ename": "E", "evalue": "v", "traceback": ["t"]}),
        ("clear_output", {"wait": True}),
    ]
    for msg_type, content in contents:
        entry = entry_from_iopub(msg_type, content)
        assert json.loads(json.dumps(entry)) == entry


def test_result_entry_does_not_share_the_bundle_fields_between_calls():
    first = result_entry({"data": {"text/plain": "1"}}, main=True)
    second = result_entry({"data": {"text/html": "<i>2</i>"}}, main=False)
    assert "html" not in first and "text" not in second
