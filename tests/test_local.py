"""The embedded default: one local server per user, found or started on demand, and its command."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import psutil
import pytest
from jupyter_client import KernelManager

from sandbox_kernel import CodeInterpreterSandbox, local


def sandbox_kernel_command() -> list[str]:
    """The installed console script, or the module when the script is not on this venv."""
    script = Path(sys.executable).with_name("sandbox-kernel")
    if script.exists():
        return [str(script)]
    found = shutil.which("sandbox-kernel")
    return [found] if found else [sys.executable, "-m", "sandbox_kernel.cli"]


@pytest.fixture
def runtime(tmp_path, monkeypatch) -> Iterator[Path]:
    """A private runtime and data directory; any embedded server started here is stopped."""
    directory = tmp_path / "runtime"
    monkeypatch.setenv("SANDBOX_KERNEL_RUNTIME_DIR", str(directory))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    yield directory
    local.stop_server()


def health(server: local.LocalServer) -> dict:
    reply = httpx.get(
        f"{server.url}/health", headers={"Authorization": f"Bearer {server.token}"}, timeout=10
    )
    reply.raise_for_status()
    return reply.json()


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    assert not psutil.pid_exists(process.pid)
    return process.pid


def test_ensure_server_starts_a_server_records_it_privately_and_reuses_it(runtime):
    server = local.ensure_server()

    state = json.loads((runtime / local.state_file_name()).read_text())
    assert state == {"url": server.url, "token": server.token, "pid": server.pid}
    assert stat.S_IMODE((runtime / local.state_file_name()).stat().st_mode) == 0o600
    assert stat.S_IMODE(runtime.stat().st_mode) & 0o077 == 0
    assert server.url.startswith("http://127.0.0.1:")
    assert len(server.token) >= 16
    assert health(server)["pid"] == server.pid
    assert httpx.get(f"{server.url}/health", timeout=10).status_code == 401

    assert local.ensure_server() == server


def test_concurrent_callers_share_one_server(runtime):
    servers: list[local.LocalServer] = []
    callers = [
        threading.Thread(target=lambda: servers.append(local.ensure_server())) for _ in range(4)
    ]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join(timeout=60)
    assert len(servers) == 4
    assert len({server.pid for server in servers}) == 1


def test_stale_state_file_with_a_dead_pid_is_replaced_by_a_fresh_server(runtime):
    runtime.mkdir(parents=True)
    stale = {"url": "http://127.0.0.1:9", "token": "old-token", "pid": dead_pid()}
    (runtime / local.state_file_name()).write_text(json.dumps(stale))

    server = local.ensure_server()

    assert server.pid != stale["pid"]
    assert server.token != "old-token"
    assert health(server)["pid"] == server.pid
    assert json.loads((runtime / local.state_file_name()).read_text())["pid"] == server.pid


class _NotOurServer(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<html>something else listens here</html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output clean."""


def test_state_naming_a_live_pid_and_a_foreign_http_server_is_replaced(runtime):
    foreign = ThreadingHTTPServer(("127.0.0.1", 0), _NotOurServer)
    threading.Thread(target=foreign.serve_forever, args=(0.05,), daemon=True).start()
    try:
        runtime.mkdir(parents=True)
        url = f"http://127.0.0.1:{foreign.server_address[1]}"
        (runtime / local.state_file_name()).write_text(
            json.dumps({"url": url, "token": "t", "pid": os.getpid()})
        )
        server = local.ensure_server()
    finally:
        foreign.shutdown()
        foreign.server_close()
    assert server.pid != os.getpid()
    assert health(server)["pid"] == server.pid


@pytest.mark.parametrize("content", ["not json", '{"url": 1, "token": null, "pid": "x"}'])
def test_unreadable_state_file_is_replaced(runtime, content):
    runtime.mkdir(parents=True)
    (runtime / local.state_file_name()).write_text(content)
    server = local.ensure_server()
    assert health(server)["pid"] == server.pid


def test_state_file_is_private_even_over_a_leftover_staged_file(runtime):
    runtime.mkdir(parents=True)
    leftover = runtime / "server.tmp"
    leftover.write_text("{}")
    leftover.chmod(0o644)

    local.ensure_server()

    assert stat.S_IMODE((runtime / local.state_file_name()).stat().st_mode) == 0o600


def test_stop_server_stops_it_and_forgets_it(runtime):
    server = local.ensure_server()
    assert local.stop_server() is True
    assert not psutil.pid_exists(server.pid) or (
        psutil.Process(server.pid).status() == psutil.STATUS_ZOMBIE
    )
    assert not (runtime / local.state_file_name()).exists()
    assert local.stop_server() is False
    assert local.read_state() is None


def test_create_without_an_endpoint_uses_the_embedded_server(runtime):
    with CodeInterpreterSandbox.create() as sandbox:
        server = local.read_state()
        assert server is not None
        assert sandbox.endpoint == server.url
        sandbox.file.write("/home/user/hello.txt", "embedded")
        assert sandbox.file.read("/home/user/hello.txt")["content"] == "embedded"
        assert health(server)["sandboxes"] == 1
    assert local.ensure_server() == server


def embedded_servers(runtime: Path) -> list[psutil.Process]:
    """This process's live children that serve as the embedded server of `runtime`."""
    found = []
    for process in psutil.Process().children():
        try:
            command = " ".join(process.cmdline())
            ours = "serve" in command and str(runtime) in command
            if ours and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
        except psutil.Error:
            continue
    return found


def test_a_server_begun_early_is_the_one_ensure_server_returns(runtime):
    local.begin_server()
    local.begin_server()  # a second call while it starts starts nothing more
    server = local.ensure_server()
    assert health(server)["pid"] == server.pid
    servers = [process for process in embedded_servers(runtime) if process.is_running()]
    assert [process.pid for process in servers] == [server.pid]
    assert local.ensure_server() == server


def test_a_server_begun_early_and_abandoned_is_stopped_and_not_recorded(runtime):
    local.begin_server()
    (started,) = embedded_servers(runtime)
    local.abandon_server()
    assert not started.is_running() or started.status() == psutil.STATUS_ZOMBIE
    assert local.read_state() is None
    # The lock is free again: the next caller starts a server of its own.
    assert health(local.ensure_server())["status"] == "ok"


def test_a_kernel_configured_for_another_server_stops_the_one_it_began(runtime, server, tmp_path):
    """The kernel starts the embedded server before it reads its config files; one that
    names an endpoint makes it stop that server again."""
    config = tmp_path / "ipython" / "profile_default"
    config.mkdir(parents=True)
    (config / "ipython_kernel_config.json").write_text(
        json.dumps({"SandboxKernel": {"endpoint": server.url, "token": server.token}})
    )
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("SANDBOX_KERNEL_ENDPOINT", "SANDBOX_KERNEL_TOKEN")
    }
    env["IPYTHONDIR"] = str(tmp_path / "ipython")
    manager = KernelManager(kernel_name="sandbox")
    manager.start_kernel(env=env)
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        reply = client.execute_interactive(
            "import os; print(os.getcwd())", timeout=60, output_hook=lambda message: None
        )
        assert reply["content"]["status"] == "ok"
        assert local.read_state() is None
        kernel = psutil.Process(manager.provisioner.process.pid)
        assert not [
            process
            for process in kernel.children(recursive=True)
            if "serve" in process.cmdline() and process.status() != psutil.STATUS_ZOMBIE
        ]
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


# ---- the command


def test_serve_prints_exactly_one_json_line_on_stdout(tmp_path):
    process = subprocess.Popen(
        [*sandbox_kernel_command(), "serve", "--port", "0", "--root", str(tmp_path / "root")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready = json.loads(process.stdout.readline())
        assert set(ready) == {"url", "token"}
        headers = {"Authorization": f"Bearer {ready['token']}"}
        with httpx.Client(base_url=ready["url"], headers=headers, timeout=60) as client:
            sandbox_id = client.post("/sandboxes", json={"templateName": "t"}).json()["sandboxId"]
            url = f"/sandboxes/{sandbox_id}"
            client.post(f"{url}/processes/cmd", json={"command": "echo from-a-command"})
            code = "import os; os.system('echo from-a-cell'); print('printed')"
            reply = client.post(f"{url}/contexts/execute", json={"code": code})
            assert reply.json()["results"][0]["type"] == "stdout"
            client.delete(url)
    finally:
        process.terminate()
        rest, logs = process.communicate(timeout=30)
    assert rest == ""
    assert "serving" in logs


def test_serve_with_a_token_announces_and_requires_it(tmp_path):
    process = subprocess.Popen(
        [
            *sandbox_kernel_command(),
            "serve",
            "--root",
            str(tmp_path / "root"),
            "--token",
            "chosen-token",
            "--log-level",
            "WARNING",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        ready = json.loads(process.stdout.readline())
        assert ready["token"] == "chosen-token"
        assert httpx.get(f"{ready['url']}/health", timeout=10).status_code == 401
        headers = {"X-API-Key": "chosen-token"}
        assert httpx.get(f"{ready['url']}/health", headers=headers, timeout=10).is_success
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_help_works_and_lists_the_serve_options():
    overall = subprocess.run(
        [*sandbox_kernel_command(), "--help"], capture_output=True, text=True, timeout=60
    )
    assert overall.returncode == 0 and "serve" in overall.stdout
    serve = subprocess.run(
        [*sandbox_kernel_command(), "serve", "--help"], capture_output=True, text=True, timeout=60
    )
    assert serve.returncode == 0 and serve.stderr == ""
    for option in ("--port", "--host", "--token", "--root", "--isolation", "--max-upload-mb"):
        assert option in serve.stdout
    assert "--spares" in serve.stdout


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--spares", "-1", "must be 0 or more, got -1"),
        ("--memory-mb", "-5", "must be 0 or more, got -5"),
        ("--max-upload-mb", "lots", "expected a whole number, got 'lots'"),
    ],
)
def test_serve_refuses_a_negative_or_malformed_limit_in_one_line(tmp_path, option, value, message):
    refused = subprocess.run(
        [*sandbox_kernel_command(), "serve", "--root", str(tmp_path), option, value],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2
    assert refused.stdout == ""
    assert refused.stderr.strip().splitlines()[-1] == (
        f"sandbox-kernel serve: error: argument {option}: {message}"
    )


def test_serve_where_isolation_lacks_its_tools_exits_with_a_clear_message(tmp_path):
    finished = subprocess.run(
        [*sandbox_kernel_command(), "serve", "--isolation", "bwrap", "--root", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PATH": str(tmp_path / "no-commands-here")},
    )
    assert finished.returncode != 0
    assert finished.stdout == ""
    message = finished.stderr.strip()
    assert "cannot be isolated on this host" in message and "--isolation none" in message
    assert len(message.splitlines()) == 1


def test_serve_on_a_port_in_use_exits_non_zero_with_a_clear_message(tmp_path, server):
    port = server.url.rsplit(":", 1)[1]
    finished = subprocess.run(
        [*sandbox_kernel_command(), "serve", "--port", port, "--root", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode != 0
    assert finished.stdout == ""
    assert "sandbox-kernel serve" in finished.stderr
    assert "Traceback" not in finished.stderr


def test_the_server_loads_without_the_http_client():
    """The server uses the client's plain types only: httpx stays out of its process."""
    probe = (
        "import sys, sandbox_kernel.cli, sandbox_kernel.server.runner, sandbox_kernel.server.app;"
        "print(sorted(name for name in ('httpx', 'websockets.asyncio.client')"
        " if name in sys.modules))"
    )
    found = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert found.stdout.strip() == "[]"
