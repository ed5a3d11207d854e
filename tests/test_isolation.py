"""Bubblewrap isolation: what sandbox code can and cannot reach, and how the API sees it."""

from __future__ import annotations

import ast
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import httpx
import psutil
import pytest
from conftest import RunningServer, attempt, run, start_server

from sandbox_kernel import CodeInterpreterSandbox, SandboxError
from sandbox_kernel.cli import is_loopback
from sandbox_kernel.server.confinement import (
    IsolationSettings,
    Namespaces,
    chosen_environment_args,
    enter_argv,
    id_maps,
    limits_argv,
    mounted_directories,
    network_prefix,
)

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def isolated(server: RunningServer) -> RunningServer:
    assert server.isolation == "bwrap", "the server refuses to start unisolated by default"
    return server


@pytest.fixture(scope="module")
def jail(module_sandbox: CodeInterpreterSandbox) -> CodeInterpreterSandbox:
    """One isolated sandbox for the module's escape attempts."""
    return module_sandbox


# ---- code inside the sandbox


def test_code_runs_as_uid_1000_in_home_user(jail):
    shown = run(
        jail,
        "import os, pwd\n"
        "print(os.getuid(), os.getgid(), pwd.getpwuid(os.getuid()).pw_name)\n"
        "print(os.getcwd(), os.environ['HOME'])",
    )
    assert shown.splitlines() == ["1000 1000 user", "/home/user /home/user"]


def test_etc_is_minimal_and_has_no_secrets(jail):
    assert attempt(jail, "open('/etc/shadow').read()") == "ENOENT"
    assert attempt(jail, "os.listdir('/etc/ssl/private')") == "ENOENT"
    assert attempt(jail, "os.path.exists('/etc/ssl/certs')") == "True"
    assert "user:x:1000:1000" in attempt(jail, "open('/etc/passwd').read()")


def test_host_trees_are_not_visible(jail, isolated, tmp_path):
    planted = tmp_path / "planted.txt"
    planted.write_text("host file")
    for host_path in (planted, Path(__file__), isolated.root, Path("/work/shared")):
        assert attempt(jail, f"os.path.exists({str(host_path)!r})") == "False", host_path
    # /root and /work hold nothing but the mount points of the server's Python.
    python_prefixes = {Path(prefix) for prefix in (sys.prefix, sys.base_prefix)}
    for top in ("/root", "/work"):
        answer = attempt(jail, f"sorted(os.listdir({top!r}))")
        # Absent altogether when no Python prefix lies under it (a checkout elsewhere).
        listed = [] if answer == "ENOENT" else ast.literal_eval(answer)
        expected = {
            prefix.relative_to(top).parts[0]
            for prefix in python_prefixes
            if prefix.is_relative_to(top)
        }
        assert set(listed) <= expected, (top, listed)


def test_host_tmp_is_not_the_sandbox_tmp(jail, tmp_path):
    assert attempt(jail, f"os.listdir({str(tmp_path.parent)!r})") == "ENOENT"
    run(jail, "open('/tmp/from-code.txt', 'w').write('x')")
    assert not Path("/tmp/from-code.txt").exists()
    assert jail.file.read("/tmp/from-code.txt")["content"] == "x"


def test_system_directories_and_python_are_read_only(jail):
    targets = ["/usr/planted", "/bin/planted", "/etc/planted", f"{sys.prefix}/planted"]
    for target in targets:
        assert attempt(jail, f"open({target!r}, 'w')") == "EROFS", target
    assert attempt(jail, "os.chmod('/usr/bin/python3', 0o777)") == "EROFS"


def test_no_host_process_is_visible(jail):
    listing = run(
        jail,
        "import os\n"
        "for pid in sorted(int(p) for p in os.listdir('/proc') if p.isdigit()):\n"
        "    print(pid, open(f'/proc/{pid}/cmdline', 'rb').read().replace(b'\\0', b' '))",
    )
    assert "pytest" not in listing and "sandbox_kernel.cli" not in listing
    assert len(listing.splitlines()) < 10, listing
    assert run(jail, "import os; print(os.getppid())").strip() == "0"


def test_sandbox_code_cannot_kill_its_init(jail):
    run(jail, "import os, signal\nfor sig in (9, 15, 2):\n    os.kill(1, sig)")
    assert jail.process.cmd("echo alive", "/home/user")["result"]["stdout"] == "alive\n"


def test_network_is_cut_even_to_the_server_on_loopback(jail, isolated):
    port = int(isolated.url.rsplit(":", 1)[1])
    code = f"__import__('socket').create_connection(('127.0.0.1', {port}), timeout=5)"
    assert attempt(jail, code) == "ECONNREFUSED"
    interfaces = attempt(jail, "[name for _, name in __import__('socket').if_nameindex()]")
    assert interfaces == "['lo']"


def test_pids_are_those_code_sees_and_kill_works_on_them(jail):
    kernel_pid = int(run(jail, "import os; print(os.getpid())"))
    started = jail.process.cmd("sleep 311 >/dev/null 2>&1 & echo $!", "/home/user")
    job_pid = int(started["result"]["stdout"])
    # `$!` is the forked shell, which shows `sh -c ...` until it execs sleep: wait for that.
    comm = f"/proc/{job_pid}/comm"
    run(jail, f"import time\nwhile open({comm!r}).read() != 'sleep\\n':\n    time.sleep(0.01)")
    listed = {entry["pid"]: entry for entry in jail.process.list()}
    assert "context_kernel.py" in listed[kernel_pid]["cmdline"]
    assert (listed[job_pid]["cmdline"], listed[job_pid]["ppid"]) == ("sleep 311", 1)
    assert 1 not in listed, "the sandbox's init is not one of its processes"
    assert jail.process.kill(str(job_pid))["killed"] is True
    assert job_pid not in {entry["pid"] for entry in jail.process.list()}


# ---- the file API


def test_api_and_code_see_the_same_paths(jail):
    jail.file.write("/home/user/from-api.txt", "api")
    assert run(jail, "print(open('/home/user/from-api.txt').read(), os.getcwd())") == (
        "api /home/user\n"
    )
    run(jail, "open('/home/user/from-code.txt', 'w').write('code')")
    assert jail.file.read("/home/user/from-code.txt")["content"] == "code"


def test_links_made_by_code_never_expose_host_files(jail, isolated):
    run(
        jail,
        "import os\n"
        "for target, name in (('/', 'to-root'), ('/etc/shadow', 'to-shadow'),"
        " ('/etc/passwd', 'to-passwd'), ('../../..', 'climb')):\n"
        "    os.symlink(target, f'/home/user/{name}')",
    )
    base = f"{isolated.url}/sandboxes/{jail.sandbox_id}"
    headers = {"Authorization": f"Bearer {isolated.token}"}
    with httpx.Client(headers=headers, timeout=30) as api:
        for path in (
            "to-root/etc/shadow",
            "to-root/etc/passwd",
            "to-shadow",
            "to-passwd",
            "climb/etc/shadow",
        ):
            for route in ("files", "filesystem/download", "filesystem"):
                response = api.get(f"{base}/{route}", params={"path": f"/home/user/{path}"})
                assert response.status_code in (403, 404), (route, path, response.text)
                assert "root:" not in response.text
        written = api.post(
            f"{base}/files", json={"path": "/home/user/to-root/tmp/planted", "content": "x"}
        )
        assert written.status_code == 200  # the link means the sandbox's own /
    assert not Path("/tmp/planted").exists()
    assert jail.file.read("/tmp/planted")["content"] == "x"


def test_api_refuses_to_write_where_code_sees_read_only_mounts(jail):
    for path in ("/usr/planted.txt", "/etc/passwd", f"{sys.prefix}/planted.txt"):
        with pytest.raises(SandboxError) as refused:
            jail.file.write(path, "x")
        assert refused.value.status == 403, path
    with pytest.raises(SandboxError) as refused:
        jail.file_system.remove("/usr")
    assert refused.value.status == 403


# ---- unisolated servers and the argv itself


def test_an_unisolated_server_says_so(tmp_path):
    running = start_server(tmp_path, "--isolation", "none")
    try:
        assert running.isolation == "none"
        with CodeInterpreterSandbox.create(endpoint=running.url, token=running.token) as sandbox:
            assert sandbox.check_health()["isolation"] == "none"
    finally:
        running.stop()


def test_every_sandbox_process_ends_with_a_killed_server(tmp_path, isolated):
    running = start_server(tmp_path)
    sandbox = CodeInterpreterSandbox.create(endpoint=running.url, token=running.token)
    sandbox.context.create()
    sandbox.process.cmd("sleep 347 >/dev/null 2>&1 &", "/home/user")
    sandbox.close()
    running.process.kill()
    running.process.wait()
    deadline = time.monotonic() + 5
    while survivors := [
        process.info["cmdline"]
        for process in psutil.process_iter(["cmdline"])
        if "sleep 347" in " ".join(process.info["cmdline"] or [])
        or str(tmp_path) in " ".join(process.info["cmdline"] or [])  # bwrap names the root
    ]:
        assert time.monotonic() < deadline, f"outlived its server: {survivors}"
        time.sleep(0.1)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("192.0.2.1", False),
        ("sandbox.example", False),
    ],
)
def test_only_loopback_addresses_count_as_private(host, loopback):
    assert is_loopback(host) is loopback


def test_serving_beyond_loopback_prints_a_warning(tmp_path):
    # 192.0.2.1 is reserved for documentation: the bind fails, so nothing is ever exposed.
    command = [sys.executable, "-m", "sandbox_kernel.cli", "serve", "--host", "192.0.2.1"]
    finished = subprocess.run(
        [*command, "--root", str(tmp_path), "--log-level", "ERROR"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode != 0
    assert "WARNING: listening on 192.0.2.1, not loopback" in finished.stderr


SETTINGS = IsolationSettings(
    bwrap="/usr/bin/bwrap",
    runtime=Path("/run/sbk/abc"),
    python="/opt/py/bin/python3",
    python_prefixes=("/opt/py",),
    system_directories=("/usr", "/bin", "/lib"),
    memory_bytes=2**30,
    address_space_limit=True,
    prlimit="/usr/bin/prlimit",
)
AS_ROOT = replace(SETTINGS, host_ids=(2_000_000_000, 2_000_000_000), setpriv="/usr/bin/setpriv")
BINDS = [("ro", Path("/run/sbk/abc/3/conn")), ("rw", Path("/run/sbk/abc/3/sockets"))]


def enter(settings: IsolationSettings = SETTINGS) -> list[str]:
    inner = None if settings.host_ids is None else 10
    return enter_argv(
        settings,
        root=Path("/data/sbx/fs"),
        binds=BINDS,
        namespaces=Namespaces(user=7, pid=8, network=9, inner_user=inner),
        cwd="/home/user/work",
        command=["python3", "-c", "pass"],
    )


def pairs(argv: list[str], option: str) -> list[tuple[str, str]]:
    return [(argv[i + 1], argv[i + 2]) for i, arg in enumerate(argv) if arg == option]


def test_enter_argv_binds_the_root_and_only_chosen_host_paths():
    argv = enter()
    assert argv[:5] == ["/usr/bin/bwrap", "--userns", "7", "--pidns", "8"]
    assert ("/data/sbx/fs", "/") in pairs(argv, "--bind")
    assert ("/run/sbk/abc/3/sockets", "/run/sbk/abc/3/sockets") in pairs(argv, "--bind")
    read_only = pairs(argv, "--ro-bind")
    assert ("/run/sbk/abc/3/conn", "/run/sbk/abc/3/conn") in read_only
    assert {("/usr", "/usr"), ("/bin", "/bin"), ("/lib", "/lib"), ("/opt/py", "/opt/py")} <= set(
        read_only
    )
    sources = {source for source, _ in read_only + pairs(argv, "--ro-bind-try")}
    assert "/etc" not in sources and "/etc/shadow" not in sources and "/etc/ssl" not in sources
    assert argv[argv.index("--uid") + 1] == argv[argv.index("--gid") + 1] == "1000"
    assert "--unshare-net" in argv and "--clearenv" in argv
    assert argv[argv.index("--seccomp") + 1] == "9"
    assert ("HOME", "/home/user") in pairs(argv, "--setenv")
    assert argv[-6:] == ["--chdir", "/home/user/work", "--", "python3", "-c", "pass"]


def test_as_root_processes_end_in_the_inner_namespace_with_nothing_left_to_drop():
    argv = enter(AS_ROOT)
    assert argv[argv.index("--userns2") + 1] == "10"
    assert "--uid" not in argv, "bwrap keeps uid 0 of the outer namespace for its set-up"
    drop = argv[argv.index("/usr/bin/setpriv") :]
    assert drop[:8] == [
        "/usr/bin/setpriv",
        "--reuid=1000",
        "--regid=1000",
        "--keep-groups",
        "--inh-caps=-all",
        "--ambient-caps=-all",
        "--bounding-set=-all",
        "--",
    ]
    assert drop[8:] == ["python3", "-c", "pass"]


def test_the_outer_namespace_maps_root_only_for_set_up():
    assert id_maps((2_000_000_000, 2_000_000_001)) == (
        "0 0 1\n1000 2000000000 1\n",
        "0 0 1\n1000 2000000001 1\n",
    )


def test_only_host_network_mode_shares_the_host_network():
    namespaces = Namespaces(user=7, pid=8, network=9, inner_user=10)
    assert network_prefix(AS_ROOT, namespaces) == ["nsenter", "--net=/proc/self/fd/9", "--"]
    assert network_prefix(replace(AS_ROOT, network="user"), namespaces)[0] == "nsenter"
    assert network_prefix(replace(AS_ROOT, network="host"), namespaces) == []


def test_limits_prefix_joins_cgroups_opens_the_filter_then_sets_rlimits():
    argv = limits_argv(SETTINGS, [Path("/cg/pids/sbk/3/cgroup.procs")])
    assert argv[:3] == ["/bin/sh", "-c", argv[2]]
    assert argv[3:8] == [
        "sh",
        "/run/sbk/abc/seccomp.bpf",
        "/dev/null",
        "/cg/pids/sbk/3/cgroup.procs",
        "--",
    ]
    assert argv[8:] == ["/usr/bin/prlimit", f"--as={2**30}", "--"]
    assert limits_argv(IsolationSettings(), []) == []


def test_variables_a_creator_chose_stay_out_of_argv():
    chosen = replace(AS_ROOT, environment=(("API_KEY", "secret-value"),))
    argv = enter(chosen)
    assert "secret-value" not in " ".join(argv)
    assert argv[argv.index("--args") + 1] == "8"
    assert chosen_environment_args(chosen) == b"--setenv\0API_KEY\0secret-value\0"


def test_mounted_directories_are_read_only_for_the_api():
    assert mounted_directories(IsolationSettings()) == []
    assert {"/usr", "/opt/py", "/etc", "/proc"} <= set(mounted_directories(SETTINGS))
