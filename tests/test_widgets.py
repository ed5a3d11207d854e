"""Widgets of sandbox code, message by message, with python3 as the reference; the two comm
id spaces kept apart; and the same cases where the server relays no comms."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from conftest import start_server
from test_kernel import TIMEOUT, RunningKernel, server_environment

KERNELS = ("python3", "sandbox")


class WidgetKernel(RunningKernel):
    def cell(self, code: str) -> tuple[dict[str, Any], list[dict[str, Any]], str]:
        """Run `code`: its reply, every iopub message but statuses, and its request's id."""
        published: list[dict[str, Any]] = []
        msg_id = self.client.execute(code)
        reply = self.client._recv_reply(msg_id, timeout=TIMEOUT)
        while True:
            message = self.client.get_iopub_msg(timeout=TIMEOUT)
            if message["msg_type"] == "status" and message["content"]["execution_state"] == "idle":
                if message["parent_header"].get("msg_id") == msg_id:
                    break
                continue
            if message["msg_type"] not in ("status", "execute_input"):
                published.append(message)
        return reply["content"], published, msg_id

    def send_comm_msg(self, comm_id: str, data: dict[str, Any], buffers=None) -> None:
        message = self.client.session.msg("comm_msg", {"comm_id": comm_id, "data": data})
        self.client.session.send(self.client.shell_channel.socket, message, buffers=buffers)

    def value(self, expression: str) -> str:
        _, messages, _ = self.cell(expression)
        results = [m for m in messages if m["msg_type"] == "execute_result"]
        assert results, messages
        return results[-1]["content"]["data"]["text/plain"]


def comm_opens(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m["content"] for m in messages if m["msg_type"] == "comm_open"]


def model(messages: list[dict[str, Any]], name: str) -> dict[str, Any]:
    (opened,) = [c for c in comm_opens(messages) if c["data"]["state"]["_model_name"] == name]
    return opened


@pytest.fixture(scope="module")
def kernels(server, tmp_path_factory) -> Iterator[dict[str, WidgetKernel]]:
    started = {}
    for name in KERNELS:
        directory = tmp_path_factory.mktemp(f"widgets-{name}")
        started[name] = WidgetKernel(
            server_environment(server, directory), kernel_name=name, cwd=str(directory)
        )
    yield started
    for kernel in started.values():
        kernel.shutdown()


@pytest.fixture(scope="module")
def sliders(kernels) -> dict[str, tuple[str, list[dict[str, Any]], str]]:
    """An IntSlider made in a cell on each kernel: its comm id, the messages, the cell's id."""
    made = {}
    for name, kernel in kernels.items():
        reply, messages, msg_id = kernel.cell("import ipywidgets as w\ns = w.IntSlider(5)\ns")
        assert reply["status"] == "ok", reply
        made[name] = (model(messages, "IntSliderModel")["comm_id"], messages, msg_id)
    return made


def test_an_int_slider_opens_its_comms_as_on_python3(kernels, sliders):
    shapes = {}
    for name, (comm_id, messages, msg_id) in sliders.items():
        kinds = [m["msg_type"] for m in messages]
        assert all(m["parent_header"]["msg_id"] == msg_id for m in messages)
        opened = model(messages, "IntSliderModel")
        (result,) = [m for m in messages if m["msg_type"] == "execute_result"]
        view = result["content"]["data"]["application/vnd.jupyter.widget-view+json"]
        assert view["model_id"] == comm_id
        shapes[name] = (kinds, opened["target_name"], opened["data"]["state"]["value"])
    assert shapes["sandbox"] == shapes["python3"]
    assert shapes["sandbox"][1:] == ("jupyter.widget", 5)


def test_comm_messages_carry_the_widget_protocol_version_as_on_python3(kernels, sliders):
    """JupyterLab's widget manager refuses a comm_open without the protocol version."""
    versions = {}
    for name, kernel in kernels.items():
        _, messages, _ = kernel.cell("s.value = 6")
        comm_messages = [m for m in sliders[name][1] + messages if m["msg_type"].startswith("comm")]
        versions[name] = [(m["msg_type"], m["metadata"].get("version")) for m in comm_messages]
    assert versions["sandbox"] == versions["python3"]
    opens = [version for msg_type, version in versions["sandbox"] if msg_type == "comm_open"]
    assert opens and all(version.startswith("2.") for version in opens)


def test_a_frontend_update_sets_the_value_the_next_cell_sees(kernels, sliders):
    for name, kernel in kernels.items():
        comm_id = sliders[name][0]
        kernel.send_comm_msg(comm_id, {"method": "update", "state": {"value": 42}})
        assert kernel.value("s.value") == "42", name


def test_a_change_in_the_kernel_sends_an_update(kernels, sliders):
    updates = {}
    for name, kernel in kernels.items():
        _, messages, _ = kernel.cell("s.value = 7")
        updates[name] = [
            (m["content"]["comm_id"] == sliders[name][0], m["content"]["data"])
            for m in messages
            if m["msg_type"] == "comm_msg"
        ]
    assert updates["sandbox"] == updates["python3"]
    assert updates["sandbox"][0][1]["state"] == {"value": 7}


def test_comm_info_lists_the_sandbox_widgets(kernels, sliders):
    for name, kernel in kernels.items():
        kernel.client.comm_info(target_name="jupyter.widget")
        reply = kernel.client.get_shell_msg(timeout=TIMEOUT)["content"]
        assert sliders[name][0] in reply["comms"], name
        assert reply["comms"][sliders[name][0]] == {"target_name": "jupyter.widget"}


def test_output_widget_capture_names_the_cells_message(kernels):
    shapes = {}
    for name, kernel in kernels.items():
        code = "out = w.Output()\ndisplay(out)\nwith out:\n    print('captured')"
        _, messages, msg_id = kernel.cell(code)
        ids = [
            m["content"]["data"]["state"]["msg_id"]
            for m in messages
            if m["msg_type"] == "comm_msg" and "msg_id" in m["content"]["data"].get("state", {})
        ]
        assert ids == [msg_id, ""], name
        streams = [m for m in messages if m["msg_type"] == "stream"]
        assert [m["content"]["text"] for m in streams] == ["captured\n"]
        assert streams[0]["parent_header"]["msg_id"] == msg_id
        shapes[name] = [m["msg_type"] for m in messages]
    assert shapes["sandbox"] == shapes["python3"]


def test_a_bytes_trait_travels_as_a_binary_buffer(kernels):
    payload = bytes(range(256))
    for name, kernel in kernels.items():
        _, messages, _ = kernel.cell(f"image = w.Image(value={payload!r})")
        opened = [m for m in messages if m["msg_type"] == "comm_open"]
        image = [m for m in opened if m["content"]["data"]["state"]["_model_name"] == "ImageModel"]
        assert [bytes(b) for b in image[0]["buffers"]] == [payload], name
        assert image[0]["content"]["data"]["buffer_paths"] == [["value"]]
        comm_id = image[0]["content"]["comm_id"]
        kernel.send_comm_msg(
            comm_id,
            {"method": "update", "state": {}, "buffer_paths": [["value"]]},
            buffers=[b"\xff\x00back"],
        )
        assert kernel.value("bytes(image.value)") == repr(b"\xff\x00back"), name


def test_a_widget_message_reaches_a_running_cell(kernels, sliders):
    for name, kernel in kernels.items():
        code = (
            "import asyncio\ns.value = 0\n"
            "for _ in range(600):\n    await asyncio.sleep(0.05)\n"
            "    if s.value == 99:\n        break\nprint('saw', s.value)"
        )
        msg_id = kernel.client.execute(code)
        kernel.send_comm_msg(sliders[name][0], {"method": "update", "state": {"value": 99}})
        reply = kernel.client._recv_reply(msg_id, timeout=TIMEOUT)
        assert reply["content"]["status"] == "ok"
        assert kernel.value("s.value") == "99", name


def test_the_sandbox_cannot_open_or_drive_a_local_comm(kernels):
    kernel = kernels["sandbox"]
    _, messages, _ = kernel.cell("%sbx browse /home/user")
    local_ids = [c["comm_id"] for c in comm_opens(messages)]
    assert local_ids
    taken = local_ids[0]
    code = (
        "from comm import create_comm\n"
        f"c = create_comm(comm_id={taken!r}, target_name='jupyter.widget', data={{}})\n"
        f"s.comm.send({{'method': 'update', 'state': {{}}}})\n"
        f"s.comm.comm_id = {taken!r}\n"
        "s.comm.send({'method': 'update', 'state': {'value': 1}})\n"
        f"child = w.HBox(children=[s])\nchild.send_state()\n"
    )
    reply, messages, _ = kernel.cell(code)
    assert reply["status"] == "ok", reply
    assert all(m["content"].get("comm_id") != taken for m in messages)


def test_no_comms_where_the_server_relays_none(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("plain-root"), "--no-extensions")
    kernel = WidgetKernel(server_environment(server, tmp_path_factory.mktemp("plain")))
    try:
        _, messages, _ = kernel.cell("import ipywidgets as w\nw.IntSlider(3)")
        assert comm_opens(messages) == []
        (result,) = [m for m in messages if m["msg_type"] == "execute_result"]
        assert result["content"]["data"] == {"text/plain": "IntSlider(value=3)"}
        notes = [m["content"]["text"] for m in messages if m["msg_type"] == "stream"]
        assert any("show as text" in note for note in notes)
        _, messages, _ = kernel.cell("w.IntSlider(4)")
        assert [m["msg_type"] for m in messages] == ["execute_result"]  # the note comes once
        info = kernel.kernel_info()
        assert "debugger" not in info["supported_features"] and info["debugger"] is False
    finally:
        kernel.shutdown()
        server.stop()
