"""Live cells through jupyter_client: output while a cell runs, interrupt, input(), completion
and inspection from the sandbox, long cells and restart; and how each of them degrades against
a server without the extensions (`serve --no-extensions`, standing in for the cloud)."""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import RunningServer, start_server
from jupyter_client import BlockingKernelClient, KernelManager

from sandbox_kernel import CodeInterpreterSandbox
from sandbox_kernel.client.contexts import ContextOperations

TIMEOUT = 60
DECOY_VERB = "stale_verb_from_the_sandbox"
ANSI_CODES = re.compile(r"\x1b\[[0-9;]*m")


@dataclass
class Output:
    """One iopub message, with its arrival time in seconds after the cell was sent."""

    at: float
    kind: str
    content: dict[str, Any]


@dataclass
class Cell:
    """What one execution produced: the reply, the published outputs, the time to the reply."""

    reply: dict[str, Any]
    outputs: list[Output]
    elapsed: float

    def of_kind(self, kind: str) -> list[Output]:
        return [output for output in self.outputs if output.kind == kind]

    @property
    def kinds(self) -> list[str]:
        return [output.kind for output in self.outputs]

    @property
    def stdout(self) -> str:
        return "".join(
            output.content["text"]
            for output in self.of_kind("stream")
            if output.content["name"] == "stdout"
        )


class LiveKernel:
    """A sandbox kernel pointed at one server, and a client that times what it publishes."""

    def __init__(self, server: RunningServer, ipython_dir: Path) -> None:
        env = {
            **os.environ,
            "IPYTHONDIR": str(ipython_dir),
            "SANDBOX_KERNEL_ENDPOINT": server.url,
            "SANDBOX_KERNEL_TOKEN": server.token,
        }
        self.manager = KernelManager(kernel_name="sandbox")
        self.manager.start_kernel(env=env)
        self.client: BlockingKernelClient = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=TIMEOUT)
        self.ok("import time")  # opens the sandbox, so that timed cells measure only themselves

    def run(self, code: str, *, timeout: float = TIMEOUT, **options: Any) -> Cell:
        outputs: list[Output] = []
        started = time.monotonic()

        def record(message: dict[str, Any]) -> None:
            kind = message["msg_type"]
            if kind not in ("status", "execute_input"):
                outputs.append(Output(time.monotonic() - started, kind, message["content"]))

        reply = self.client.execute_interactive(
            code, timeout=timeout, output_hook=record, **options
        )
        return Cell(reply["content"], outputs, time.monotonic() - started)

    def ok(self, code: str) -> Cell:
        cell = self.run(code)
        assert cell.reply["status"] == "ok", cell.reply
        return cell

    def interrupt_after(self, seconds: float) -> None:
        threading.Timer(seconds, self.manager.interrupt_kernel).start()

    def complete(self, code: str, cursor_pos: int | None = None) -> dict[str, Any]:
        return self._ask(self.client.complete(code, cursor_pos))

    def inspect(self, code: str, cursor_pos: int | None = None) -> dict[str, Any]:
        return self._ask(self.client.inspect(code, cursor_pos))

    def _ask(self, msg_id: str) -> dict[str, Any]:
        while True:
            reply = self.client.get_shell_msg(timeout=TIMEOUT)
            if reply["parent_header"].get("msg_id") == msg_id:
                return reply["content"]

    def restart(self) -> None:
        self.manager.restart_kernel()
        self.client.wait_for_ready(timeout=TIMEOUT)

    def shutdown(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel()


@contextlib.contextmanager
def remote_context(kernel: LiveKernel, server: RunningServer) -> Iterator[ContextOperations]:
    """The sandbox context the kernel's cells run in, reached directly through the client."""
    lines = kernel.ok("%sbx status").stdout.splitlines()
    status = dict(re.split(r":\s+", line, maxsplit=1) for line in lines)
    with CodeInterpreterSandbox.connect(status["sandbox"], server.url, server.token) as sandbox:
        yield sandbox.context.get(status["context"])


@pytest.fixture(scope="module")
def live(server, tmp_path_factory) -> Iterator[LiveKernel]:
    """A kernel on a server that offers every extension."""
    kernel = LiveKernel(server, tmp_path_factory.mktemp("live-ipython"))
    yield kernel
    kernel.shutdown()


@pytest.fixture(scope="module")
def plain_server(tmp_path_factory) -> Iterator[RunningServer]:
    """A server that speaks only the plain cloud protocol."""
    running = start_server(tmp_path_factory.mktemp("plain-root"), "--no-extensions")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def plain(plain_server, tmp_path_factory) -> Iterator[LiveKernel]:
    """A kernel on the server without extensions."""
    kernel = LiveKernel(plain_server, tmp_path_factory.mktemp("plain-ipython"))
    yield kernel
    kernel.shutdown()


# ---- output while the cell runs


def test_print_before_a_long_sleep_arrives_while_the_cell_runs(live):
    cell = live.ok("import time\nprint('a', flush=True)\ntime.sleep(3)")
    [printed] = cell.of_kind("stream")
    assert printed.content == {"name": "stdout", "text": "a\n"}
    assert printed.at < 1.0
    assert cell.elapsed - printed.at > 2.5


def test_carriage_return_progress_lines_arrive_one_by_one(live):
    code = (
        "import time\n"
        "for step in range(3):\n"
        "    print(f'\\rstep {step}', end='', flush=True)\n"
        "    time.sleep(0.5)"
    )
    cell = live.ok(code)
    streams = cell.of_kind("stream")
    assert "".join(output.content["text"] for output in streams) == "\rstep 0\rstep 1\rstep 2"
    assert len(streams) == 3
    assert streams[1].at - streams[0].at > 0.3
    assert streams[2].at - streams[1].at > 0.3


def test_clear_output_arrives_while_the_cell_runs(live):
    code = (
        "import time\n"
        "from IPython.display import clear_output\n"
        "print('gone', flush=True)\n"
        "time.sleep(0.5)\n"
        "clear_output(wait=True)\n"
        "print('kept', flush=True)\n"
        "time.sleep(1.5)"
    )
    cell = live.ok(code)
    assert cell.kinds == ["stream", "clear_output", "stream"]
    cleared = cell.of_kind("clear_output")[0]
    assert cleared.content == {"wait": True}
    assert cell.outputs[2].content["text"] == "kept\n"
    assert cell.elapsed - cleared.at > 1.0


def test_display_handle_update_arrives_as_update_display_data_while_the_cell_runs(live):
    code = (
        "import time\n"
        "from IPython.display import display\n"
        "handle = display('first', display_id=True)\n"
        "time.sleep(1)\n"
        "handle.update('second')\n"
        "time.sleep(1)"
    )
    cell = live.ok(code)
    assert cell.kinds == ["display_data", "update_display_data"]
    shown, updated = cell.outputs
    assert shown.content["data"]["text/plain"] == "'first'"
    assert updated.content["data"]["text/plain"] == "'second'"
    assert updated.content["transient"]["display_id"] == shown.content["transient"]["display_id"]
    assert updated.at - shown.at > 0.7
    assert cell.elapsed - updated.at > 0.7


def test_without_streaming_the_output_arrives_at_the_end_all_at_once(plain):
    cell = plain.ok("import time\nprint('a', flush=True)\ntime.sleep(2)\nprint('b')")
    assert cell.stdout == "a\nb\n"
    arrivals = [output.at for output in cell.of_kind("stream")]
    assert min(arrivals) > 2.0
    assert max(arrivals) - min(arrivals) < 0.2


def test_without_streaming_clear_output_and_display_updates_still_arrive_in_order(plain):
    code = (
        "from IPython.display import clear_output, display\n"
        "print('gone')\n"
        "clear_output(wait=True)\n"
        "handle = display('first', display_id=True)\n"
        "handle.update('second')"
    )
    cell = plain.ok(code)
    assert cell.kinds == ["stream", "clear_output", "display_data", "update_display_data"]
    shown, updated = cell.outputs[2:]
    assert updated.content["data"]["text/plain"] == "'second'"
    assert updated.content["transient"]["display_id"] == shown.content["transient"]["display_id"]


# ---- interrupt


def test_interrupt_stops_a_busy_loop_within_a_second_and_keeps_the_state(live):
    live.ok("survivor = 'defined before the loop'")
    live.interrupt_after(1.0)
    cell = live.run("while True:\n    pass")
    assert cell.elapsed < 2.0
    assert (cell.reply["status"], cell.reply["ename"]) == ("error", "KeyboardInterrupt")
    [error] = cell.of_kind("error")
    assert error.content["ename"] == "KeyboardInterrupt"
    assert "while True" in ANSI_CODES.sub("", "\n".join(error.content["traceback"]))
    after = live.ok("print(survivor)")
    assert after.stdout == "defined before the loop\n"
    assert after.elapsed < 1.0


def test_without_interrupt_the_kernel_stops_waiting_and_says_the_cell_may_still_run(plain):
    plain.ok("import time\nsurvivor = 'defined before the sleep'")
    plain.interrupt_after(1.0)
    cell = plain.run("time.sleep(3)\nprint('finished remotely')")
    assert cell.elapsed < 2.0
    assert (cell.reply["status"], cell.reply["ename"]) == ("error", "KeyboardInterrupt")
    assert "may still be running" in cell.reply["evalue"]
    assert cell.kinds == ["error"]
    assert plain.ok("print(survivor)").stdout == "defined before the sleep\n"


# ---- input() and getpass()


def test_input_is_answered_through_the_stdin_channel(live):
    prompts: list[dict[str, Any]] = []

    def answer(message: dict[str, Any]) -> None:
        prompts.append(message["content"])
        live.client.input("Ada")

    cell = live.run(
        "name = input('Your name? ')\nprint('hello', name)", allow_stdin=True, stdin_hook=answer
    )
    assert cell.reply["status"] == "ok", cell.reply
    assert prompts == [{"prompt": "Your name? ", "password": False}]
    assert cell.stdout == "hello Ada\n"


def test_getpass_asks_for_a_password_and_the_answer_reaches_the_sandbox(live):
    prompts: list[dict[str, Any]] = []

    def answer(message: dict[str, Any]) -> None:
        prompts.append(message["content"])
        live.client.input("s3cret")

    code = "import getpass\nsecret = getpass.getpass('Password: ')\nprint(len(secret))"
    cell = live.run(code, allow_stdin=True, stdin_hook=answer)
    assert cell.reply["status"] == "ok", cell.reply
    assert prompts == [{"prompt": "Password: ", "password": True}]
    assert cell.stdout == "6\n"
    assert live.ok("print(secret == 's3cret')").stdout == "True\n"


def test_input_without_stdin_fails_with_stdin_not_implemented_instead_of_hanging(live):
    cell = live.run("input('Your name? ')", allow_stdin=False, timeout=15)
    assert (cell.reply["status"], cell.reply["ename"]) == ("error", "StdinNotImplementedError")
    assert cell.elapsed < 5
    assert live.ok("print('still answering')").stdout == "still answering\n"


def test_input_without_the_stdin_extension_fails_cleanly_instead_of_hanging(plain):
    asked: list[dict[str, Any]] = []
    cell = plain.run("input('Your name? ')", allow_stdin=True, stdin_hook=asked.append, timeout=15)
    assert (cell.reply["status"], cell.reply["ename"]) == ("error", "StdinNotImplementedError")
    assert asked == []
    assert cell.elapsed < 5
    assert plain.ok("print('still answering')").stdout == "still answering\n"


# ---- completion and inspection


def test_name_defined_in_an_earlier_cell_completes_from_the_sandbox(live):
    live.ok("defined_in_the_sandbox = 42")
    reply = live.complete("defined_in_the_sand")
    assert reply["status"] == "ok"
    assert "defined_in_the_sandbox" in reply["matches"]
    assert (reply["cursor_start"], reply["cursor_end"]) == (0, len("defined_in_the_sand"))


def test_name_defined_in_an_earlier_cell_is_inspected_in_the_sandbox(live):
    live.ok("inspected_in_the_sandbox = 42")
    reply = live.inspect("inspected_in_the_sandbox")
    assert (reply["status"], reply["found"]) == ("ok", True)
    assert "int" in reply["data"]["text/plain"]


def test_sbx_line_completes_locally_not_in_the_sandbox(live, server):
    live.ok(
        "shell = get_ipython()\n"
        "shell.register_magic_function(lambda line: None, 'line', 'sbx')\n"
        f"shell.set_hook('complete_command', lambda *_: [{DECOY_VERB!r}], str_key='%sbx')"
    )
    with remote_context(live, server) as context:
        assert DECOY_VERB in context.complete("%sbx sta", 8)["matches"]
    reply = live.complete("%sbx sta")
    assert reply["status"] == "ok"
    assert DECOY_VERB not in reply["matches"]
    assert "status" in reply["matches"]


def test_without_the_extensions_completion_and_inspection_are_local(plain):
    plain.ok("defined_in_the_sandbox = 42")
    reply = plain.complete("defined_in_the_sand")
    assert reply["status"] == "ok"
    assert "defined_in_the_sandbox" not in reply["matches"]
    assert "print" in plain.complete("prin")["matches"]
    assert plain.complete("%sbx sta")["status"] == "ok"
    assert plain.inspect("defined_in_the_sandbox") == {
        "status": "ok",
        "found": False,
        "data": {},
        "metadata": {},
    }
    assert plain.inspect("print")["found"] is True


# ---- long cells and timeouts


@pytest.mark.slow
def test_cell_of_forty_seconds_runs_to_the_end(live):
    cell = live.run("import time\ntime.sleep(40)\nprint('done')", timeout=90)
    assert cell.reply["status"] == "ok", cell.reply
    assert cell.stdout == "done\n"
    assert cell.elapsed >= 40


def test_without_streaming_a_cell_past_the_kernel_timeout_explains_the_limit(plain):
    plain.ok("timeout_survivor = 1")
    plain.ok("%config SandboxKernel.timeout = 2")
    try:
        cell = plain.run("import time\ntime.sleep(4)")
    finally:
        plain.ok("%config SandboxKernel.timeout = None")
    assert (cell.reply["status"], cell.reply["ename"]) == ("error", "TimeoutError")
    assert "SandboxKernel.timeout = 2 s" in cell.reply["evalue"]
    assert "%config SandboxKernel.timeout = " in cell.reply["evalue"]
    assert cell.kinds == ["error"]
    assert cell.elapsed < 3.9
    assert plain.ok("print(timeout_survivor)").stdout == "1\n"


# ---- restart


def test_restart_empties_the_remote_namespace(live):
    live.ok("before_restart = 1")
    live.restart()
    cell = live.run("before_restart")
    assert (cell.reply["status"], cell.reply["ename"]) == ("error", "NameError")


def test_without_the_extensions_restart_still_empties_the_remote_namespace(plain):
    plain.ok("before_restart = 1")
    plain.restart()
    cell = plain.run("before_restart")
    assert (cell.reply["status"], cell.reply["ename"]) == ("error", "NameError")


# ---- python3's replies, and how each degrades without the `reply` extension


def test_without_the_extensions_each_reply_item_degrades_as_documented(plain):
    cell = plain.run("len?")
    assert (cell.reply["status"], cell.reply["payload"]) == ("ok", [])
    cell = plain.run("answer = 41", user_expressions={"value": "answer + 1"})
    assert cell.reply["status"] == "ok"
    assert cell.reply["user_expressions"]["value"]["ename"] == "NotImplementedError"
    cell = plain.run("print('quietly')\n5", silent=True)
    assert cell.kinds == ["stream"]
    cell = plain.run("raise TimeoutError('mine')")
    assert (cell.reply["ename"], cell.kinds) == ("TimeoutError", ["error"])
    cell = plain.run("%not_a_magic_anywhere")  # the plain reply says so with an error entry
    assert (cell.reply["ename"], cell.kinds) == ("UsageError", ["stream", "error"])
    cell = plain.run("exit")
    assert (cell.reply["status"], cell.reply["payload"]) == ("ok", [])
    assert plain.manager.is_alive()
    assert plain.ok("print('still here')").stdout == "still here\n"


def test_a_debug_request_is_answered_by_the_sandbox_or_refused_at_once(live, plain):
    for kernel, offered in ((live, True), (plain, False)):
        client = kernel.client
        request = client.session.msg(
            "debug_request", {"type": "request", "seq": 7, "command": "initialize"}
        )
        started = time.monotonic()
        client.control_channel.send(request)
        reply = client.control_channel.get_msg(timeout=10)["content"]
        assert (reply["success"], reply["request_seq"]) == (offered, 7)
        assert time.monotonic() - started < 2
