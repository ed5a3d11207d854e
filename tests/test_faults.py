"""Faults in real use: an interpreter that dies mid-cell, a server that goes away, a flaky read."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import threading
import time
from urllib.parse import urlsplit

import psutil
import pytest
from conftest import start_server
from test_kernel import RunningKernel, kernel_environment, server_environment

from sandbox_kernel import CodeInterpreterSandbox, local
from sandbox_kernel.client import SandboxConnectionError


@pytest.fixture
def kernel(server, tmp_path):
    running = RunningKernel(server_environment(server, tmp_path))
    yield running
    running.shutdown()


def wait_until_gone(pid: int) -> None:
    """Wait for a killed process that is not our child (it stays a zombie until reaped)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.NoSuchProcess:
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} is still running")


def stderr_of(outputs) -> str:
    return "".join(c["text"] for kind, c in outputs if kind == "stream" and c["name"] == "stderr")


@pytest.mark.parametrize(
    "fatal",
    ["import os; os._exit(1)", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"],
    ids=["exit", "sigkill"],
)
def test_interpreter_dying_mid_cell_is_reported_and_the_next_cell_works(kernel, fatal):
    kernel.run("state_before = 1")
    kernel.run("open('/home/user/kept.txt', 'w').write('kept')")
    reply, outputs = kernel.run(f"print('going', flush=True)\n{fatal}")
    assert reply["status"] == "error"
    assert reply["ename"] == "ContextDied"
    assert "state" in stderr_of(outputs) and "fresh" in stderr_of(outputs)
    assert kernel.stdout("print(6 * 7)") == "42\n"
    assert kernel.run("state_before")[0]["ename"] == "NameError"
    assert kernel.stdout("print(open('/home/user/kept.txt').read())") == "kept\n"


def test_embedded_server_killed_under_a_kernel_comes_back_and_the_next_cell_works(tmp_path):
    env = kernel_environment(
        tmp_path,
        SANDBOX_KERNEL_RUNTIME_DIR=str(tmp_path / "runtime"),
        XDG_DATA_HOME=str(tmp_path / "data"),
    )
    running = RunningKernel(env)
    state_file = tmp_path / "runtime" / local.state_file_name()
    try:
        running.run("value = 1")
        running.run("open('/home/user/survives.txt', 'w').write('yes')")
        first = json.loads(state_file.read_text())
        os.kill(first["pid"], signal.SIGKILL)
        wait_until_gone(first["pid"])

        reply, _ = running.run("value")
        assert reply["status"] == "error"
        assert "Reconnected to the same sandbox" in reply["evalue"]
        assert "state" in reply["evalue"]
        assert running.stdout("print(open('/home/user/survives.txt').read())") == "yes\n"
        assert running.run("value")[0]["ename"] == "NameError"
        second = json.loads(state_file.read_text())
        assert second["pid"] != first["pid"]
    finally:
        running.shutdown()
        if state_file.exists():
            with_pid = json.loads(state_file.read_text())["pid"]
            if psutil.pid_exists(with_pid):
                psutil.Process(with_pid).terminate()


def test_an_idempotent_read_survives_a_server_restart(tmp_path):
    running = start_server(tmp_path / "root")
    port = str(urlsplit(running.url).port)
    sandbox = CodeInterpreterSandbox.create(endpoint=running.url, token=running.token)
    sandbox.file.write("/home/user/x.txt", "x")
    running.stop()
    replacement = []
    restarter = threading.Timer(
        0.3,
        lambda: replacement.append(
            start_server(tmp_path / "root", "--port", port, "--isolation", "none")
        ),
    )
    restarter.start()
    try:
        assert sandbox.file_system.stat("/home/user/x.txt")["size"] == 1
    finally:
        restarter.join()
        for server in replacement:
            server.stop()
        sandbox.close()


class DroppingListener:
    """A listener on `port` that closes each connection it is offered and counts them."""

    def __init__(self, port: int) -> None:
        self.count = 0
        self._socket = socket.create_server(("127.0.0.1", port))
        self._socket.settimeout(0.05)
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._accept_until_done)
        self._thread.start()

    def _accept_until_done(self) -> None:
        while not self._done.is_set():
            with contextlib.suppress(TimeoutError):
                self._drop(self._socket.accept()[0])

    def _drop(self, connection: socket.socket) -> None:
        self.count += 1
        connection.close()

    def close(self) -> int:
        """Stop listening; how many connections were offered in all."""
        self._done.set()
        self._thread.join()
        self._socket.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            while True:
                self._drop(self._socket.accept()[0])
        self._socket.close()
        return self.count


def test_an_execute_is_never_retried(tmp_path):
    running = start_server(tmp_path / "root")
    port = urlsplit(running.url).port
    sandbox = CodeInterpreterSandbox.create(endpoint=running.url, token=running.token)
    context = sandbox.context.create()
    running.stop()
    # In the stopped server's place, a listener that drops every connection it is offered.
    listener = DroppingListener(port)
    try:
        with pytest.raises(SandboxConnectionError):
            context.execute("1")
    finally:
        offered = listener.close()
    assert offered == 1, "the execute was sent again after its connection dropped"
    sandbox.close()
