"""The sandbox kernel through jupyter_client: outputs, counts, history, magics, lifecycle."""

from __future__ import annotations

import base64
import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_client import BlockingKernelClient, KernelManager

from sandbox_kernel import CodeInterpreterSandbox, SandboxNotFoundError, local

TIMEOUT = 60
PNG_PIXEL = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
    )
).decode()


class RunningKernel:
    """A sandbox kernel process and a client that runs cells in it and collects their output."""

    def __init__(
        self,
        env: dict[str, str],
        *extra_arguments: str,
        kernel_name: str = "sandbox",
        cwd: str | None = None,
    ) -> None:
        self.manager = KernelManager(kernel_name=kernel_name)
        self.manager.start_kernel(env=env, extra_arguments=list(extra_arguments), cwd=cwd)
        self.client: BlockingKernelClient = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=TIMEOUT)

    def run(self, code: str, **options: Any) -> tuple[dict[str, Any], list[tuple[str, dict]]]:
        """Execute `code`; the execute_reply content and the (msg_type, content) it published."""
        published: list[tuple[str, dict]] = []
        reply = self.client.execute_interactive(
            code,
            timeout=TIMEOUT,
            output_hook=lambda msg: published.append((msg["msg_type"], msg["content"])),
            **options,
        )
        outputs = [item for item in published if item[0] not in ("status", "execute_input")]
        return reply["content"], outputs

    def stdout(self, code: str) -> str:
        reply, outputs = self.run(code)
        assert reply["status"] == "ok", reply
        return "".join(c["text"] for kind, c in outputs if kind == "stream")

    def status(self) -> dict[str, str]:
        """`%sbx status` as a dict: endpoint, server, sandbox, context, isolation (and error)."""
        lines = self.stdout("%sbx status").splitlines()
        return dict(re.split(r":\s+", line, maxsplit=1) for line in lines)

    def kernel_info(self) -> dict[str, Any]:
        self.client.kernel_info()
        return self.client.get_shell_msg(timeout=TIMEOUT)["content"]

    def restart(self) -> None:
        self.manager.restart_kernel()
        self.client.wait_for_ready(timeout=TIMEOUT)

    def shutdown(self) -> None:
        self.client.stop_channels()
        if self.manager.has_kernel:
            self.manager.shutdown_kernel()


def kernel_environment(tmp_path: Path, **variables: str) -> dict[str, str]:
    """The tests' environment plus a private IPython directory and `variables`."""
    return {**os.environ, "IPYTHONDIR": str(tmp_path / "ipython"), **variables}


def server_environment(server: Any, tmp_path: Path) -> dict[str, str]:
    return kernel_environment(
        tmp_path, SANDBOX_KERNEL_ENDPOINT=server.url, SANDBOX_KERNEL_TOKEN=server.token
    )


@pytest.fixture(scope="module")
def kernel(server, tmp_path_factory) -> Iterator[RunningKernel]:
    """One kernel for the whole module, pointed at the session's server."""
    running = RunningKernel(server_environment(server, tmp_path_factory.mktemp("kernel")))
    yield running
    running.shutdown()


@pytest.fixture
def fresh_kernel(server, tmp_path) -> Iterator[RunningKernel]:
    """A kernel of its own, for tests that restart or shut it down."""
    running = RunningKernel(server_environment(server, tmp_path))
    yield running
    running.shutdown()


def connect(server: Any, sandbox_id: str) -> CodeInterpreterSandbox:
    return CodeInterpreterSandbox.connect(sandbox_id, server.url, server.token)


def kinds(outputs: list[tuple[str, dict]]) -> list[str]:
    return [kind for kind, _ in outputs]


# ---- outputs of every entry type


def test_print_arrives_as_stdout_stream(kernel):
    reply, outputs = kernel.run("print('hello from the sandbox')")
    assert reply["status"] == "ok"
    assert outputs == [("stream", {"name": "stdout", "text": "hello from the sandbox\n"})]


def test_stderr_arrives_as_stderr_stream(kernel):
    reply, outputs = kernel.run("import sys; print('careful', file=sys.stderr)")
    assert reply["status"] == "ok"
    assert outputs == [("stream", {"name": "stderr", "text": "careful\n"})]


def test_value_of_last_expression_is_execute_result_with_the_cells_count(kernel):
    reply, outputs = kernel.run("6 * 7")
    assert kinds(outputs) == ["execute_result"]
    content = outputs[0][1]
    assert content["data"]["text/plain"] == "42"
    assert content["execution_count"] == reply["execution_count"]


def test_trailing_semicolon_hides_the_result(kernel):
    reply, outputs = kernel.run("6 * 7;")
    assert reply["status"] == "ok"
    assert outputs == []


def test_display_keeps_the_html_and_png_bundle(kernel):
    code = (
        "from IPython.display import display\n"
        f"display({{'text/html': '<b>bold</b>', 'image/png': {PNG_PIXEL!r}, "
        "'text/plain': 'bold'}, raw=True)"
    )
    reply, outputs = kernel.run(code)
    assert reply["status"] == "ok"
    assert kinds(outputs) == ["display_data"]
    data = outputs[0][1]["data"]
    assert data["text/html"] == "<b>bold</b>"
    assert data["image/png"] == PNG_PIXEL
    assert data["text/plain"] == "bold"


def test_display_handle_update_sends_update_display_data(kernel):
    code = (
        "from IPython.display import display\n"
        "handle = display('first', display_id=True)\n"
        "handle.update('second')"
    )
    _, outputs = kernel.run(code)
    assert kinds(outputs) == ["display_data", "update_display_data"]
    first, second = outputs[0][1], outputs[1][1]
    assert first["data"]["text/plain"] == "'first'"
    assert second["data"]["text/plain"] == "'second'"
    display_id = first["transient"]["display_id"]
    assert display_id
    assert second["transient"]["display_id"] == display_id


def test_clear_output_is_forwarded(kernel):
    code = "from IPython.display import clear_output\nprint('gone')\nclear_output(wait=True)"
    _, outputs = kernel.run(code)
    assert outputs[-1] == ("clear_output", {"wait": True})


def test_exception_is_error_output_with_traceback_and_error_reply(kernel):
    reply, outputs = kernel.run("def fail():\n    return 1 / 0\n\nfail()")
    assert kinds(outputs) == ["error"]
    error = outputs[0][1]
    assert (error["ename"], error["evalue"]) == ("ZeroDivisionError", "division by zero")
    assert len(error["traceback"]) > 1
    assert any("fail()" in line for line in error["traceback"])
    assert reply["status"] == "error"
    assert (reply["ename"], reply["evalue"]) == ("ZeroDivisionError", "division by zero")
    assert reply["traceback"] == error["traceback"]


# ---- counts and history


def test_each_stored_cell_advances_the_execution_count_by_one(kernel):
    first, _ = kernel.run("1")
    second, _ = kernel.run("2")
    assert second["execution_count"] == first["execution_count"] + 1


def test_cell_not_stored_in_history_does_not_count(kernel):
    before, _ = kernel.run("1")
    kernel.run("2", store_history=False)
    after, _ = kernel.run("3")
    assert after["execution_count"] == before["execution_count"] + 1


def test_silent_execution_shows_only_its_stdout_as_python3_does_and_does_not_count(kernel):
    before, _ = kernel.run("1")
    reply, outputs = kernel.run("silent_value = 5\nprint('noise')\nsilent_value", silent=True)
    assert reply["status"] == "ok"
    assert outputs == [("stream", {"name": "stdout", "text": "noise\n"})]
    after, outputs = kernel.run("silent_value")
    assert after["execution_count"] == before["execution_count"] + 1
    assert outputs[0][1]["data"]["text/plain"] == "5"


def test_silent_failure_shows_its_error_and_replies_error_as_python3_does(kernel):
    reply, outputs = kernel.run("1 / 0", silent=True)
    assert reply["status"] == "error"
    assert kinds(outputs) == ["error"]


def test_empty_cell_is_a_noop(kernel):
    before, _ = kernel.run("1")
    for code in ("", "   \n\n"):
        reply, outputs = kernel.run(code)
        assert reply["status"] == "ok"
        assert outputs == []
    after, _ = kernel.run("1")
    assert after["execution_count"] == before["execution_count"] + 1


def test_history_request_returns_forwarded_cells(kernel):
    kernel.run("history_marker = 'tail'")
    kernel.client.history(hist_access_type="tail", n=1, output=False, raw=True)
    reply = kernel.client.get_shell_msg(timeout=TIMEOUT)["content"]
    assert [entry[2] for entry in reply["history"]] == ["history_marker = 'tail'"]

    kernel.client.history(hist_access_type="search", pattern="history_marker*", output=False)
    reply = kernel.client.get_shell_msg(timeout=TIMEOUT)["content"]
    assert "history_marker = 'tail'" in [entry[2] for entry in reply["history"]]


def test_In_and_history_magic_list_earlier_cells(kernel):
    kernel.run("earlier_cell = 'in the sandbox'")
    _, outputs = kernel.run("In[-2]")
    assert outputs[0][1]["data"]["text/plain"] == "\"earlier_cell = 'in the sandbox'\""
    assert "earlier_cell = 'in the sandbox'" in kernel.stdout("%history -l 3")


# ---- local %sbx magics


def test_sbx_status_prints_endpoint_sandbox_context_and_isolation(kernel, server):
    status = kernel.status()
    assert status["endpoint"] == f"{server.url} (from SANDBOX_KERNEL_ENDPOINT)"
    assert status["isolation"] == server.isolation
    with connect(server, status["sandbox"]) as sandbox:
        assert status["context"] in [context["id"] for context in sandbox.context.list()]


def test_cell_mixing_sbx_and_code_is_refused_with_a_usage_error(kernel):
    reply, outputs = kernel.run("%sbx status\nmixed_cell_ran = True")
    assert reply["status"] == "error"
    assert reply["ename"] == "UsageError"
    assert "%sbx" in reply["evalue"]
    assert "mixes" in reply["evalue"]
    assert kinds(outputs) == ["error"]
    reply, _ = kernel.run("mixed_cell_ran")
    assert reply["ename"] == "NameError"


def test_assigning_a_sbx_line_keeps_its_value_in_the_kernel(kernel):
    reply, outputs = kernel.run("entries = %sbx ls /home")
    assert reply["status"] == "ok", reply
    assert outputs == []
    reply, outputs = kernel.run("%sbx ls /home")
    assert "user" in dict(outputs)["execute_result"]["data"]["text/plain"]


def test_a_failure_the_sandbox_reports_only_in_its_reply_fails_the_cell(kernel):
    reply, outputs = kernel.run("%not_a_magic_anywhere")
    assert reply["status"] == "error"
    assert reply["ename"] == "UsageError"
    assert kinds(outputs) == ["stream"]  # as python3 shows it: a line on stderr
    assert "UsageError" in outputs[0][1]["text"]


def test_unknown_sbx_verb_is_a_usage_error(kernel):
    reply, _ = kernel.run("%sbx frobnicate")
    assert (reply["status"], reply["ename"]) == ("error", "UsageError")
    assert "frobnicate" in reply["evalue"]


def test_kernel_info_banner_names_endpoint_sandbox_and_isolation(kernel, server):
    status = kernel.status()
    info = kernel.kernel_info()
    assert info["language_info"]["name"] == "python"
    banner = info["banner"]
    assert server.url in banner
    assert status["sandbox"] in banner
    assert f"isolation: {server.isolation}" in banner


# ---- IPython features of the remote shell


def test_timeit_magic_runs_in_the_sandbox(kernel):
    assert "per loop" in kernel.stdout("%timeit -n1 -r1 sum(range(10))")


def test_shell_escape_runs_in_the_sandbox(kernel):
    kernel.run("import os; os.environ['ONLY_IN_THE_SANDBOX'] = 'hi'")
    assert kernel.stdout("!echo $ONLY_IN_THE_SANDBOX").strip() == "hi"


def test_matplotlib_inline_plot_is_a_png_image(kernel):
    code = "%matplotlib inline\nimport matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.show()"
    reply, outputs = kernel.run(code)
    assert reply["status"] == "ok", reply
    images = [c["data"]["image/png"] for kind, c in outputs if kind == "display_data"]
    assert len(images) == 1
    assert base64.b64decode(images[0]).startswith(b"\x89PNG\r\n\x1a\n")


def test_cells_run_in_the_sandbox_not_in_the_kernel(kernel):
    kernel.run("import os; sandbox_pid = os.getpid()")
    _, outputs = kernel.run("sandbox_pid")
    sandbox_pid = int(outputs[0][1]["data"]["text/plain"])
    assert sandbox_pid != kernel.manager.provisioner.process.pid


# ---- interrupt and timeout


def test_interrupt_stops_waiting_for_a_remote_cell_and_the_kernel_lives_on(kernel):
    kernel.run("import time")

    published: list[str] = []

    def interrupt_once_running(message: dict) -> None:
        published.append(message["msg_type"])
        if message["msg_type"] == "stream":
            kernel.manager.interrupt_kernel()

    # The cell outlasts the reply's timeout: a reply at all means the wait was stopped.
    reply = kernel.client.execute_interactive(
        f"print('running', flush=True); time.sleep({3 * TIMEOUT})",
        timeout=TIMEOUT,
        output_hook=interrupt_once_running,
    )["content"]
    assert (reply["status"], reply["ename"]) == ("error", "KeyboardInterrupt")
    assert [kind for kind in published if kind not in ("status", "execute_input")] == [
        "stream",
        "error",
    ]
    assert kernel.manager.is_alive()
    assert kernel.stdout("print('after the interrupt')") == "after the interrupt\n"


def test_interrupting_an_idle_kernel_is_harmless(kernel):
    kernel.manager.interrupt_kernel()
    time.sleep(0.2)
    assert kernel.manager.is_alive()
    assert kernel.stdout("print('still here')") == "still here\n"


def test_cell_longer_than_the_configured_timeout_is_stopped_with_a_hint(kernel):
    kernel.run("timeout_survivor = 1")
    kernel.run("%config SandboxKernel.timeout = 1")
    try:
        reply, outputs = kernel.run("import time; time.sleep(5)")
    finally:
        kernel.run("%config SandboxKernel.timeout = None")
    assert (reply["status"], reply["ename"]) == ("error", "TimeoutError")
    assert "%config SandboxKernel.timeout" in reply["evalue"]
    assert kinds(outputs) == ["error"]
    assert kernel.stdout("print(timeout_survivor)") == "1\n"


# ---- restart and shutdown


def test_restart_gives_fresh_state_in_the_same_sandbox(fresh_kernel, server):
    fresh_kernel.run("before_restart = 1")
    fresh_kernel.run("open('kept.txt', 'w').write('still here')")
    before = fresh_kernel.status()

    fresh_kernel.restart()

    reply, _ = fresh_kernel.run("before_restart")
    assert reply["ename"] == "NameError"
    assert fresh_kernel.stdout("print(open('kept.txt').read())") == "still here\n"
    after = fresh_kernel.status()
    assert after["sandbox"] == before["sandbox"]
    # The embedded server restarts the same context in place: same id, fresh interpreter.
    assert after["context"] == before["context"]
    with connect(server, after["sandbox"]) as sandbox:
        assert [context["id"] for context in sandbox.context.list()] == [after["context"]]


def test_shutdown_deletes_the_context_and_the_sandbox_it_created(fresh_kernel, server):
    status = fresh_kernel.status()
    fresh_kernel.shutdown()
    with pytest.raises(SandboxNotFoundError):
        connect(server, status["sandbox"])


def test_restarted_kernel_still_deletes_its_sandbox_on_shutdown(fresh_kernel, server):
    fresh_kernel.restart()
    status = fresh_kernel.status()
    fresh_kernel.shutdown()
    with pytest.raises(SandboxNotFoundError):
        connect(server, status["sandbox"])


def test_shutdown_keeps_the_sandbox_when_asked_but_deletes_the_context(server, tmp_path):
    kernel = RunningKernel(
        server_environment(server, tmp_path), "--SandboxKernel.keep_sandbox=True"
    )
    try:
        status = kernel.status()
    finally:
        kernel.shutdown()
    with connect(server, status["sandbox"]) as sandbox:
        try:
            assert sandbox.context.list() == []
        finally:
            sandbox.delete()


def test_shutdown_deletes_every_context_the_kernel_created_after_ctx_use_too(server, tmp_path):
    with CodeInterpreterSandbox.create(endpoint=server.url, token=server.token) as sandbox:
        foreign = sandbox.context.create().context_id
        kernel = RunningKernel(
            server_environment(server, tmp_path), f"--SandboxKernel.sandbox_id={sandbox.sandbox_id}"
        )
        try:
            first = kernel.status()["context"]
            kernel.stdout("created = %sbx ctx new")
            kernel.stdout("%sbx ctx use {created.id}")
            assert kernel.stdout("print('in the new context')") == "in the new context\n"
            kernel.stdout(f"%sbx ctx use {foreign}")
            listed = {context["id"] for context in sandbox.context.list()}
            assert first in listed and foreign in listed and len(listed) == 3
        finally:
            kernel.shutdown()
        # Its own two are gone, wherever `ctx use` left it; the one it only used is kept.
        assert [context["id"] for context in sandbox.context.list()] == [foreign]


def test_kernel_joins_an_existing_sandbox_and_leaves_it_running(server, tmp_path):
    with CodeInterpreterSandbox.create(endpoint=server.url, token=server.token) as sandbox:
        sandbox.file.write("/home/user/shared.txt", "written before the kernel")
        kernel = RunningKernel(
            server_environment(server, tmp_path), f"--SandboxKernel.sandbox_id={sandbox.sandbox_id}"
        )
        try:
            assert kernel.stdout("print(open('shared.txt').read())") == (
                "written before the kernel\n"
            )
        finally:
            kernel.shutdown()
        assert sandbox.context.list() == []
        assert sandbox.check_health()["status"] == "ok"


# ---- an endpoint that does not answer


def test_unreachable_endpoint_gives_every_cell_an_error_that_says_how_to_fix_it(tmp_path):
    env = kernel_environment(
        tmp_path, SANDBOX_KERNEL_ENDPOINT="http://127.0.0.1:9", SANDBOX_KERNEL_TOKEN="unused"
    )
    kernel = RunningKernel(env)
    try:
        for code in ("1 + 1", "print('again')"):
            reply, outputs = kernel.run(code)
            assert reply["status"] == "error"
            assert reply["ename"] == "SandboxError"
            assert "http://127.0.0.1:9 (from SANDBOX_KERNEL_ENDPOINT)" in reply["evalue"]
            assert "SANDBOX_KERNEL_TOKEN" in reply["evalue"]
            assert "unset them to use the embedded local server" in reply["evalue"]
            assert kinds(outputs) == ["error"]
        status = kernel.status()
        assert status["endpoint"] == "http://127.0.0.1:9 (from SANDBOX_KERNEL_ENDPOINT)"
        assert "cannot reach" in status["error"]
        info = kernel.kernel_info()
        assert info["status"] == "ok"
        assert "http://127.0.0.1:9" in info["banner"]
        assert kernel.manager.is_alive()
    finally:
        kernel.shutdown()


# ---- zero configuration: the embedded server


def test_a_failure_of_the_embedded_server_names_it_and_suggests_no_settings(tmp_path, monkeypatch):
    runtime = tmp_path / "runtime"
    monkeypatch.setenv("SANDBOX_KERNEL_RUNTIME_DIR", str(runtime))
    kernel = RunningKernel(kernel_environment(tmp_path), "--SandboxKernel.sandbox_id=gone")
    try:
        reply, outputs = kernel.run("1 + 1")
        url = json.loads((runtime / local.state_file_name()).read_text())["url"]
        assert (reply["status"], reply["ename"]) == ("error", "SandboxError")
        assert reply["evalue"].startswith(f"the embedded server at {url} failed: "), reply
        assert "'gone'" in reply["evalue"] and "404" in reply["evalue"]
        assert "unset them" not in reply["evalue"]
        assert kinds(outputs) == ["error"]
    finally:
        kernel.shutdown()
        local.stop_server()


def test_kernel_with_nothing_configured_starts_the_embedded_server_and_a_second_reuses_it(
    tmp_path, monkeypatch
):
    runtime = tmp_path / "runtime"
    monkeypatch.setenv("SANDBOX_KERNEL_RUNTIME_DIR", str(runtime))
    env = kernel_environment(tmp_path)
    assert not any(name.startswith(("SANDBOX_KERNEL_E", "AGENTRUN_")) for name in env)
    first = RunningKernel(env)
    try:
        first_status = first.status()
        state = json.loads((runtime / local.state_file_name()).read_text())
        assert first_status["endpoint"] == f"{state['url']} (the embedded server)"
        assert first_status["server"] == "sandbox-kernel"
        assert first.stdout("print('embedded')") == "embedded\n"

        second = RunningKernel(env)
        try:
            second_status = second.status()
        finally:
            second.shutdown()
        assert second_status["endpoint"] == first_status["endpoint"]
        assert second_status["sandbox"] != first_status["sandbox"]
        assert json.loads((runtime / local.state_file_name()).read_text())["pid"] == state["pid"]
    finally:
        first.shutdown()
        local.stop_server()
