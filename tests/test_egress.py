"""Egress you choose: `serve --allow-egress` lets sandboxes reach listed destinations only."""

from __future__ import annotations

import functools
import http.server
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from conftest import RunningServer, run, start_server
from test_kernel import RunningKernel, server_environment
from test_packages import build_wheel, outputs

from sandbox_kernel import CodeInterpreterSandbox, SandboxError

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.skipif(os.geteuid() != 0, reason="egress needs the server to run as root"),
]


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def serve_directory(directory: Path) -> tuple[http.server.ThreadingHTTPServer, int]:
    handler = functools.partial(Quiet, directory=str(directory))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, httpd.server_address[1]


@pytest.fixture(scope="module")
def package_index(tmp_path_factory) -> Iterator[int]:
    """A package index in the simple layout, with one wheel, on the host's loopback."""
    root = tmp_path_factory.mktemp("index")
    project = root / "simple" / "greeting"
    project.mkdir(parents=True)
    wheel = build_wheel(
        project, "greeting", "2.0", "def hello():\n    return 'hi from the index'\n"
    )
    (project / "index.html").write_text(f'<a href="{wheel.name}">{wheel.name}</a>\n')
    httpd, port = serve_directory(root)
    yield port
    httpd.shutdown()


@pytest.fixture(scope="module")
def other_port() -> Iterator[int]:
    """Another service on the host's loopback, which no allow-list names."""
    httpd, port = serve_directory(Path("/"))
    yield port
    httpd.shutdown()


@pytest.fixture(scope="module")
def egress_server(tmp_path_factory, package_index) -> Iterator[RunningServer]:
    running = start_server(
        tmp_path_factory.mktemp("egress"),
        "--allow-egress",
        f"127.0.0.1:{package_index}",
        "--spares",
        "0",
    )
    yield running
    running.stop()


def pip_install(port: int) -> str:
    return f"%pip install --retries 0 --index-url http://127.0.0.1:{port}/simple greeting"


def test_an_allowed_index_installs_and_the_next_cell_imports(egress_server, package_index):
    with CodeInterpreterSandbox.create(
        endpoint=egress_server.url, token=egress_server.token
    ) as sandbox:
        context = sandbox.context.create()
        installed, errors = outputs(context.execute(pip_install(package_index), timeout=120))
        assert not errors and "Successfully installed greeting-2.0" in installed, installed
        shown, errors = outputs(context.execute("import greeting; print(greeting.hello())"))
        assert (shown, errors) == ("hi from the index\n", [])
        sandbox.delete()


def test_what_the_list_does_not_name_is_refused_with_a_reason(egress_server, other_port):
    with CodeInterpreterSandbox.create(
        endpoint=egress_server.url, token=egress_server.token
    ) as sandbox:
        refused = run(
            sandbox,
            "import urllib.request, urllib.error\n"
            "for url in ('http://127.0.0.1:OTHER/', 'https://example.com/'):\n"
            "    try:\n"
            "        urllib.request.urlopen(url, timeout=10)\n"
            "    except urllib.error.HTTPError as error:\n"
            "        print(error.code, error.read().decode().strip())\n"
            "    except OSError as error:\n"
            "        print('refused', error)\n".replace("OTHER", str(other_port)),
        ).splitlines()
        assert refused[0].startswith("403 sandbox-kernel: egress to 127.0.0.1:")
        assert "not allowed" in refused[0]
        assert "403" in refused[1], refused[1]  # the CONNECT tunnel was refused
        direct = run(
            sandbox,
            "import socket\n"
            "try:\n"
            f"    socket.create_connection(('127.0.0.1', {other_port}), timeout=3)\n"
            "except OSError as error:\n"
            "    print(type(error).__name__)",
        )
        assert direct.strip() == "ConnectionRefusedError", "no route but the proxy"
        sandbox.delete()


def test_without_the_list_the_install_fails_quickly_and_clearly(sandbox, package_index):
    context = sandbox.context.create()
    reply = context.execute(pip_install(package_index), timeout=120)
    installed, _ = outputs(reply)
    assert "No matching distribution found for greeting" in installed, installed


def test_status_shows_the_allowed_destinations(egress_server, package_index, tmp_path):
    kernel = RunningKernel(server_environment(egress_server, tmp_path))
    try:
        kernel.stdout("1")
        assert kernel.status()["egress"].startswith(f"127.0.0.1:{package_index}")
    finally:
        kernel.shutdown()


def test_a_sandbox_gets_the_environment_and_egress_its_creator_chose(
    server, package_index, other_port
):
    with CodeInterpreterSandbox.create(
        endpoint=server.url,
        token=server.token,
        env={"GREETING": "hi"},
        allow_egress=[f"127.0.0.1:{package_index}"],
    ) as sandbox:
        shown = run(sandbox, "import os; print(os.environ.get('GREETING'), 'PATH' in os.environ)")
        assert shown == "hi True\n"
        command = sandbox.process.cmd("echo $GREETING", "/home/user")["result"]
        assert command["stdout"] == "hi\n", "every process of the sandbox has it"
        assert "SANDBOX_KERNEL_TOKEN" not in run(sandbox, "import os; print(dict(os.environ))")
        listed = [" ".join(p.info["cmdline"] or []) for p in psutil.process_iter(["cmdline"])]
        assert not any("GREETING" in line for line in listed), "values stay out of argv"
        fetch = (
            "import urllib.request, urllib.error\n"
            "for port in (ALLOWED, OTHER):\n"
            "    try:\n"
            "        print(urllib.request.urlopen(f'http://127.0.0.1:{port}/simple/greeting/',"
            " timeout=10).status)\n"
            "    except urllib.error.HTTPError as error:\n"
            "        print(error.code)\n"
        )
        fetch = fetch.replace("ALLOWED", str(package_index)).replace("OTHER", str(other_port))
        assert run(sandbox, fetch).split() == ["200", "403"]
        sandbox.delete()


def test_bad_choices_are_refused_with_a_reason(server):
    for choices, reason in (
        ({"env": {"1BAD": "x"}}, "not a variable name"),
        ({"allow_egress": ["http://a b"]}, "allowEgress"),
    ):
        with pytest.raises(SandboxError) as refused:
            CodeInterpreterSandbox.create(endpoint=server.url, token=server.token, **choices)
        assert refused.value.status == 400 and reason in refused.value.message
