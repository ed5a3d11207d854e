"""Shared fixtures: a real embedded server on a free loopback port, and sandboxes on it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from sandbox_kernel import CodeInterpreterSandbox

CLOUD_VARIABLES = (
    "SANDBOX_KERNEL_ENDPOINT",
    "SANDBOX_KERNEL_TOKEN",
    "AGENTRUN_DATA_ENDPOINT",
    "AGENTRUN_ACCOUNT_ID",
    "AGENTRUN_ACCESS_KEY_ID",
    "AGENTRUN_ACCESS_KEY_SECRET",
    "AGENTRUN_SECURITY_TOKEN",
    "ALIBABA_CLOUD_ACCESS_KEY_ID",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
    "ALIBABA_CLOUD_SECURITY_TOKEN",
)


UNIT_MODULES = {
    "test_cells",
    "test_entries",
    "test_execution",
    "test_file_store",
    "test_import_graph",
    "test_magics_units",
    "test_outputs",
    "test_routing",
    "test_sanitize",
    "test_smoke",
}
"""Modules that start no server and no kernel: `make test-fast` runs these (marker `unit`).
A new module is not among them until it is named here, so it runs only in `make test`."""

BROWSER_MODULES = {"test_jupyterlab", "test_jupyterlab_outputs", "test_jupyterlab_widgets"}
"""Modules that share one JupyterLab and Chromium: under xdist they run on one worker."""


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the unit tests, and keep the JupyterLab tests together under `--dist loadgroup`."""
    for item in items:
        module = item.module.__name__ if item.module else ""
        if module in UNIT_MODULES:
            item.add_marker(pytest.mark.unit)
        if module in BROWSER_MODULES:
            item.add_marker(pytest.mark.xdist_group("jupyterlab"))


@dataclass
class RunningServer:
    """A `sandbox-kernel serve` process started for the tests."""

    url: str
    token: str
    root: Path
    process: subprocess.Popen
    isolation: str  # what its health says: "bwrap" or "none"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_server(
    root: Path,
    *extra: str,
    token: str = "test-token",
    environment: dict[str, str] | None = None,
) -> RunningServer:
    """Start a real server process (with `environment` added to ours) and wait for its ready
    line."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sandbox_kernel.cli",
            "serve",
            "--port",
            "0",
            "--root",
            str(root),
            "--token",
            token,
            "--log-level",
            "WARNING",
            *extra,
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, **(environment or {})},
    )
    line = process.stdout.readline()
    if not line:
        raise RuntimeError(f"server exited with code {process.wait()}")
    ready = json.loads(line)
    headers = {"Authorization": f"Bearer {ready['token']}"}
    health = httpx.get(f"{ready['url']}/health", headers=headers, timeout=30).json()
    return RunningServer(ready["url"], ready["token"], root, process, health["isolation"])


def run(sandbox: CodeInterpreterSandbox, code: str) -> str:
    """Run `code` in the sandbox's default context; its stdout, or the error raised."""
    results = sandbox.context.execute(code, timeout=60)["results"]
    errors = [entry for entry in results if entry["type"] == "error"]
    assert not errors, errors[0]["traceback"]
    return "".join(entry["text"] for entry in results if entry["type"] == "stdout")


def attempt(sandbox: CodeInterpreterSandbox, expression: str) -> str:
    """Evaluate `expression` in the sandbox: its repr, or the name of the OSError raised."""
    code = (
        "import errno, os\n"
        f"try:\n    print(repr({expression}))\n"
        "except OSError as error:\n    print(errno.errorcode[error.errno])"
    )
    return run(sandbox, code).strip()


@pytest.fixture(scope="session", autouse=True)
def private_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep the tests away from the user's config, data and any cloud credentials."""
    saved = dict(os.environ)
    for name in CLOUD_VARIABLES:
        os.environ.pop(name, None)
    home = tmp_path_factory.mktemp("home")
    os.environ["XDG_DATA_HOME"] = str(home / "data")
    os.environ["SANDBOX_KERNEL_RUNTIME_DIR"] = str(home / "runtime")
    os.environ["IPYTHONDIR"] = str(home / "ipython")
    yield
    from sandbox_kernel import local

    local.stop_server()
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("server-root"))
    yield running
    running.stop()


def sandbox_on(server: RunningServer) -> Iterator[CodeInterpreterSandbox]:
    """A new sandbox on `server`, deleted when the generator ends."""
    created = CodeInterpreterSandbox.create(endpoint=server.url, token=server.token)
    yield created
    try:
        created.delete()
    finally:
        created.close()


@pytest.fixture
def sandbox(server: RunningServer) -> Iterator[CodeInterpreterSandbox]:
    """A fresh sandbox on the session's server, deleted afterwards."""
    yield from sandbox_on(server)


@pytest.fixture(scope="module")
def module_sandbox(server: RunningServer) -> Iterator[CodeInterpreterSandbox]:
    """One sandbox of the session's (isolated) server for a whole module."""
    assert server.isolation == "bwrap", "the server refuses to start unisolated by default"
    yield from sandbox_on(server)


@pytest.fixture
async def async_sandbox(server):
    """A fresh sandbox made with the async API, deleted afterwards."""
    sandbox = await CodeInterpreterSandbox.create_async(endpoint=server.url, token=server.token)
    yield sandbox
    try:
        await sandbox.delete_async()
    finally:
        await sandbox.aclose()


def read_answer(connection: socket.socket) -> bytes:
    """An HTTP answer's head and its whole body (they may arrive in separate segments)."""
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = connection.recv(65536)
        if not chunk:
            return answer
        answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = connection.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body
