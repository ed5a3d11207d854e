"""The same cases, message by message, on python3 and on the sandbox kernel.

Each case runs on a python3 kernel and on a sandbox kernel (on the tests' server), in the
same order from a fresh start, and the replies and iopub messages must be the same once
normalized: tracebacks compared by their last line (the frames name different files) and
the engine id dropped. The debugger answers on both (tests/test_debugger.py runs a whole session).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_kernel import TIMEOUT, RunningKernel, server_environment

ANSI = re.compile(r"\x1b\[[0-9;]*m")
KERNELS = ("python3", "sandbox")
Messages = list[tuple[str, dict[str, Any]]]


class ParityKernel(RunningKernel):
    def __init__(self, name: str, server: Any, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        super().__init__(
            server_environment(server, directory), kernel_name=name, cwd=str(directory)
        )
        if name == "python3":  # %sbx for the numbering case; silent, so it takes no count
            reply = self.client.execute_interactive(
                "%load_ext sandbox_kernel", silent=True, timeout=TIMEOUT
            )
            assert reply["content"]["status"] == "ok", reply["content"]

    def exchange(self, code: str, **options: Any) -> tuple[dict[str, Any], Messages]:
        """The reply and every iopub message but the statuses, normalized."""
        published: Messages = []
        reply = self.client.execute_interactive(
            code,
            timeout=TIMEOUT,
            output_hook=lambda msg: published.append((msg["msg_type"], msg["content"])),
            **options,
        )
        messages = [(kind, normalized(content)) for kind, content in published if kind != "status"]
        return normalized(reply["content"]), messages


def normalized(content: Any) -> Any:
    """Content with tracebacks cut to their last line (uncoloured) and no engine id."""
    if isinstance(content, list):
        return [normalized(item) for item in content]
    if not isinstance(content, dict):
        return content
    result = {}
    for key, value in content.items():
        if key == "engine_info":
            value = {name: item for name, item in value.items() if name != "engine_uuid"}
        elif key == "traceback":
            lines = ANSI.sub("", "\n".join(value)).strip().splitlines()
            value = lines[-1:] if lines else []
        result[key] = normalized(value)
    return result


@pytest.fixture(scope="module")
def kernels(server, tmp_path_factory) -> Iterator[dict[str, ParityKernel]]:
    started = {
        name: ParityKernel(name, server, tmp_path_factory.mktemp(f"parity-{name}"))
        for name in KERNELS
    }
    yield started
    for kernel in started.values():
        kernel.shutdown()


def same_on_both(kernels: dict[str, ParityKernel], code: str, **options: Any) -> tuple:
    """Run `code` on both kernels; assert the reply and the messages are the same."""
    python3 = kernels["python3"].exchange(code, **options)
    sandbox = kernels["sandbox"].exchange(code, **options)
    assert sandbox[0] == python3[0], code
    assert sandbox[1] == python3[1], code
    return python3


def test_a_users_own_timeout_error_is_an_error_like_any_other(kernels):
    reply, messages = same_on_both(kernels, "raise TimeoutError('mine')")
    assert (reply["status"], reply["ename"], reply["evalue"]) == ("error", "TimeoutError", "mine")
    assert [kind for kind, _ in messages] == ["execute_input", "error"]


def test_a_users_own_context_died_keeps_the_state(kernels):
    code = "class ContextDied(Exception):\n    pass\n\nsurvivor = 'kept'\nraise ContextDied('mine')"
    reply, _ = same_on_both(kernels, code)
    assert reply["ename"] == "ContextDied"
    _, messages = same_on_both(kernels, "survivor")
    assert messages[-1][1]["data"] == {"text/plain": "'kept'"}


def test_the_pager_payload_of_a_question_mark(kernels):
    reply, messages = same_on_both(kernels, "len?")
    (page,) = reply["payload"]
    assert page["source"] == "page"
    assert "Return the number of items" in page["data"]["text/plain"]
    assert [kind for kind, _ in messages] == ["execute_input"]


def test_set_next_input_from_code_from_load_and_from_recall(kernels):
    reply, _ = same_on_both(kernels, "get_ipython().set_next_input('x = 1')")
    assert reply["payload"] == [{"source": "set_next_input", "text": "x = 1", "replace": False}]
    same_on_both(kernels, "with open('loadme.py', 'w') as f:\n    f.write('loaded = 42\\n')")
    reply, _ = same_on_both(kernels, "%load loadme.py")
    assert reply["payload"][0]["text"] == "# %load loadme.py\nloaded = 42\n"
    count = reply["execution_count"]
    reply, _ = same_on_both(kernels, f"%recall {count - 1}")
    assert reply["payload"][0]["source"] == "set_next_input"
    assert "loadme.py" in reply["payload"][0]["text"]


def test_user_expressions_ok_and_failing(kernels):
    expressions = {"ok": "answer + 1", "bad": "1 / 0"}
    reply, _ = same_on_both(kernels, "answer = 41", user_expressions=expressions)
    values = reply["user_expressions"]
    assert values["ok"] == {"status": "ok", "data": {"text/plain": "42"}, "metadata": {}}
    assert (values["bad"]["status"], values["bad"]["ename"]) == ("error", "ZeroDivisionError")


def test_a_silent_cell_still_sends_its_stdout(kernels):
    _, messages = same_on_both(kernels, "print('quietly')\n5", silent=True)
    assert messages == [("stream", {"name": "stdout", "text": "quietly\n"})]
    _, messages = same_on_both(kernels, "1 / 0", silent=True)
    assert [kind for kind, _ in messages] == ["error"]


def test_numbering_across_unstored_and_local_cells(kernels):
    first, _ = same_on_both(kernels, "'stored'")
    unstored, messages = same_on_both(kernels, "'not stored'", store_history=False)
    assert unstored["execution_count"] == first["execution_count"]
    local, messages = same_on_both(kernels, "%sbx help")
    assert local["execution_count"] == first["execution_count"] + 1
    assert "Work with the sandbox" in messages[-1][1]["text"]
    count = local["execution_count"]
    code = f"(_, __, Out.get({count - 1}), In[{count}], len(In))"
    _, messages = same_on_both(kernels, code)
    value = messages[-1][1]["data"]["text/plain"]
    assert "'not stored'" in value and "run_line_magic('sbx', 'help')" in value


def test_an_update_reaches_a_display_id_on_an_execute_result(kernels):
    send_result = (
        "ip = get_ipython()\n"
        "data, metadata = ip.display_formatter.format('first')\n"
        "content = {'data': data, 'metadata': metadata, 'transient': {'display_id': 'shown'},"
        " 'execution_count': ip.execution_count}\n"
        "ip.kernel.session.send(ip.kernel.iopub_socket, 'execute_result', content,"
        " parent=ip.kernel.get_parent('shell'));"
    )
    _, messages = same_on_both(kernels, send_result)
    assert messages[-1][0] == "execute_result"
    assert messages[-1][1]["transient"] == {"display_id": "shown"}
    update = (
        "from IPython.display import update_display\nupdate_display('second', display_id='shown')"
    )
    _, messages = same_on_both(kernels, update)
    assert messages[-1] == (
        "update_display_data",
        {"data": {"text/plain": "'second'"}, "metadata": {}, "transient": {"display_id": "shown"}},
    )


def test_debug_request_is_answered_and_control_keeps_answering(kernels):
    replies = {}
    for name, kernel in kernels.items():
        client = kernel.client
        request = client.session.msg(
            "debug_request", {"type": "request", "seq": 1, "command": "initialize", "arguments": {}}
        )
        client.control_channel.send(request)
        replies[name] = client.control_channel.get_msg(timeout=TIMEOUT)["content"]
        client.control_channel.send(client.session.msg("kernel_info_request"))
        info = client.control_channel.get_msg(timeout=TIMEOUT)
        assert info["msg_type"] == "kernel_info_reply"
        threading.Timer(1.0, kernel.manager.interrupt_kernel).start()
        started = time.monotonic()
        reply, _ = kernel.exchange("import time\ntime.sleep(20)")
        assert (reply["status"], reply["ename"]) == ("error", "KeyboardInterrupt")
        assert time.monotonic() - started < 10
    assert replies["python3"]["success"] is True
    # The sandbox's interpreter answers (the server's `debug` extension).
    assert replies["sandbox"]["success"] is True
    assert replies["sandbox"]["command"] == "initialize"
    features = kernels["sandbox"].kernel_info()["supported_features"]
    assert "debugger" in features


def test_exit_asks_the_frontend_to_exit_and_ends_the_kernel(server, tmp_path):
    pair = {name: ParityKernel(name, server, tmp_path / name) for name in KERNELS}
    try:
        sandbox_id = pair["sandbox"].status()["sandbox"]
        pair["python3"].exchange("%sbx help")  # the same count on both
        results = {name: kernel.exchange("exit") for name, kernel in pair.items()}
        assert results["sandbox"] == results["python3"]
        assert results["sandbox"][0]["payload"] == [{"source": "ask_exit", "keepkernel": False}]
        deadline = time.monotonic() + 15
        while any(kernel.manager.is_alive() for kernel in pair.values()):
            assert time.monotonic() < deadline, "a kernel did not end after exit"
            time.sleep(0.2)
        from sandbox_kernel import CodeInterpreterSandbox, SandboxNotFoundError

        with pytest.raises(SandboxNotFoundError):
            CodeInterpreterSandbox.connect(sandbox_id, server.url, server.token)
    finally:
        for kernel in pair.values():
            kernel.shutdown()


def test_the_case_list_runs_from_a_fresh_start(kernels):
    """Both kernels went through the same cases: their counts agree."""
    counts = {name: kernel.exchange("1")[0]["execution_count"] for name, kernel in kernels.items()}
    assert counts["sandbox"] == counts["python3"]
