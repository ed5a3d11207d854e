"""Every `%sbx` verb through real kernels against the tests' server: the sandbox kernel, and
python3 with `%load_ext sandbox_kernel`. Effects are checked where they happen."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import nbformat
import pytest
from magics_support import MagicsKernel, sha256_of

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


@pytest.fixture(scope="module")
def kernels(server, tmp_path_factory) -> Iterator[Callable[[str], MagicsKernel]]:
    """One kernel of each kind for the whole module, started when first needed."""
    started: dict[str, MagicsKernel] = {}

    def kernel_named(name: str) -> MagicsKernel:
        if name not in started:
            started[name] = MagicsKernel(name, server, tmp_path_factory.mktemp(name))
        return started[name]

    yield kernel_named
    for running in started.values():
        running.shutdown()


@pytest.fixture(params=["sandbox", "python3"])
def kernel(request, kernels) -> MagicsKernel:
    return kernels(request.param)


@pytest.fixture
def sandbox_kernel(kernels) -> MagicsKernel:
    return kernels("sandbox")


def remote_sha256(kernel: MagicsKernel, path: str) -> str:
    """The sha256 of a sandbox file, read by code in the sandbox (`path` relative to its home)."""
    code = f"import hashlib; hashlib.sha256(open({path!r}, 'rb').read()).hexdigest()"
    return ast.literal_eval(kernel.in_sandbox(code))


def remote_exists(kernel: MagicsKernel, path: str) -> bool:
    return kernel.in_sandbox(f"import os; os.path.exists({path!r})") == "True"


def listed_pids(kernel: MagicsKernel) -> list[int]:
    """The pids in the table `%sbx ps` shows."""
    return [
        int(line.split()[0]) for line in kernel.result("%sbx ps")["text/plain"].splitlines()[1:]
    ]


# ---- files


def test_write_then_cat_shows_and_returns_the_text_as_is(kernel):
    kernel.ok("%%sbx write /home/user/notes/hello.txt\nhello, sandbox\n  indented line")
    assert kernel.result("%sbx cat /home/user/notes/hello.txt") == {
        "text/plain": "hello, sandbox\n  indented line\n"
    }
    assert kernel.in_sandbox("open('notes/hello.txt').read()") == repr(
        "hello, sandbox\n  indented line\n"
    )


def test_write_append_adds_to_the_end(kernel):
    kernel.ok("%%sbx write log.txt\nfirst")
    kernel.ok("%%sbx write log.txt --append\nsecond")
    assert kernel.in_sandbox("open('log.txt').read()") == repr("first\nsecond\n")


def test_cat_of_a_binary_file_shows_size_and_hex_preview(kernel):
    kernel.in_sandbox("open('blob.bin', 'wb').write(bytes(range(200)))")
    shown = kernel.result("%sbx cat blob.bin")["text/plain"]
    assert shown.startswith("binary file, 200 B (200 bytes)")
    assert "00000000  00 01 02 03" in shown


def test_put_and_get_copy_bytes_exactly_with_a_progress_bar(kernel, tmp_path):
    original = tmp_path / "big.bin"
    original.write_bytes(os.urandom(5 * 2**20 + 123))
    outputs = kernel.ok(f"%sbx put {original} /home/user/transfers/big.bin")
    assert remote_sha256(kernel, "transfers/big.bin") == sha256_of(original)
    shown = [content for kind, content in outputs if kind == "display_data"]
    assert WIDGET_VIEW in shown[0]["data"]
    summary = [c["data"]["text/plain"] for kind, c in outputs if kind == "update_display_data"]
    assert summary[-1].startswith(f"Copied {original} to /home/user/transfers/big.bin (5.0 MiB")

    copy = tmp_path / "copy.bin"
    kernel.ok(f"%sbx get /home/user/transfers/big.bin {copy}")
    assert sha256_of(copy) == sha256_of(original)


def test_small_transfers_print_one_line_and_text_progress_can_be_chosen(kernel, tmp_path):
    small = tmp_path / "small.txt"
    small.write_text("tiny")
    assert kernel.stdout(f"%sbx put {small}").startswith(
        f"Copied {small} to /home/user/small.txt (4 B in "
    )
    kernel.ok("%config SbxMagics.progress = 'text'")
    kernel.ok("%config SbxMagics.progress_min_bytes = 1")
    try:
        text = kernel.stdout(f"%sbx put {small} /home/user/small-2.txt")
    finally:
        kernel.ok("%config SbxMagics.progress = 'auto'")
        kernel.ok("%config SbxMagics.progress_min_bytes = 4194304")
    assert text.startswith(f"\rput {small}:")
    assert f"\rput {small}: 100%  4 B / 4 B" in text
    assert text.split("\r")[-1].startswith(f"Copied {small} to /home/user/small-2.txt (4 B")
    assert text.endswith("\n")


def test_put_and_get_recursive_copy_a_tree(kernel, tmp_path):
    tree = tmp_path / "tree"
    (tree / "sub" / "deeper").mkdir(parents=True)
    (tree / "top.txt").write_text("top")
    (tree / "sub" / "middle.bin").write_bytes(os.urandom(1000))
    (tree / "sub" / "deeper" / "leaf.txt").write_text("leaf")
    kernel.ok(f"%sbx put -r {tree} /home/user/tree-copy")
    for relative in ("top.txt", "sub/middle.bin", "sub/deeper/leaf.txt"):
        expected = sha256_of(tree / relative)
        assert remote_sha256(kernel, f"tree-copy/{relative}") == expected

    back = tmp_path / "back"
    kernel.ok(f"%sbx get -r /home/user/tree-copy {back}")
    for relative in ("top.txt", "sub/middle.bin", "sub/deeper/leaf.txt"):
        assert sha256_of(back / relative) == sha256_of(tree / relative)


def test_put_of_a_directory_without_r_is_a_usage_error(kernel, tmp_path):
    reply = kernel.failure(f"%sbx put {tmp_path}")
    assert reply["ename"] == "UsageError"
    assert "put -r" in reply["evalue"]


# ---- filesystem


def test_ls_returns_entries_shown_as_tables(kernel):
    kernel.ok("%sbx mkdir -p /home/user/listing/inner")
    kernel.ok("%%sbx write /home/user/listing/a.txt\naaa")
    kernel.ok("%%sbx write /home/user/listing/.hidden\nh")
    kernel.ok("%%sbx write /home/user/listing/inner/b.txt\nbb")
    bundle = kernel.result("%sbx ls /home/user/listing")
    assert bundle["text/plain"].splitlines() == ["name", "a.txt", "inner/"]
    assert "<table>" in bundle["text/html"]
    assert "<td>a.txt</td>" in bundle["text/html"]
    every = kernel.result("%sbx ls /home/user/listing -a --depth 2")["text/plain"]
    assert every.splitlines()[1:] == [".hidden", "a.txt", "inner/", "inner/b.txt"]
    long = kernel.result("%sbx ls -l /home/user/listing")["text/plain"].splitlines()
    assert long[0].split() == ["type", "mode", "size", "modified", "name"]
    assert long[1].split()[:3] == ["file", "0644", "4"]


def test_tables_are_cut_at_the_display_limit_with_a_note(kernel):
    kernel.ok("%sbx mkdir -p /home/user/many")
    kernel.in_sandbox("for number in range(7): open(f'many/f{number}.txt', 'w').close()")
    kernel.ok("%config SbxMagics.displaylimit = 3")
    try:
        bundle = kernel.result("%sbx ls /home/user/many")
    finally:
        kernel.ok("%config SbxMagics.displaylimit = 50")
    lines = bundle["text/plain"].splitlines()
    assert lines[1:4] == ["f0.txt", "f1.txt", "f2.txt"]
    assert "4 more rows not shown" in lines[4]
    assert "4 more rows not shown" in bundle["text/html"]
    assert bundle["text/html"].count("<tr>") == 4  # the header and three rows


def test_stat_returns_one_entry(kernel):
    kernel.ok("%%sbx write /home/user/stat-me.txt\n12345")
    bundle = kernel.result("%sbx stat /home/user/stat-me.txt")
    assert "path:  /home/user/stat-me.txt" in bundle["text/plain"]
    assert "size:  6 B (6 bytes)" in bundle["text/plain"]
    assert "<table>" in bundle["text/html"]


def test_mkdir_mv_rm_change_the_sandbox(kernel):
    kernel.ok("%sbx mkdir /home/user/made")
    assert remote_exists(kernel, "made")
    assert kernel.failure("%sbx mkdir /home/user/made")["ename"] == "SandboxRequestError"
    kernel.ok("%%sbx write /home/user/made/file.txt\nx")
    kernel.ok("%sbx mv /home/user/made/file.txt /home/user/made/renamed.txt")
    assert not remote_exists(kernel, "made/file.txt")
    assert remote_exists(kernel, "made/renamed.txt")
    assert kernel.failure("%sbx rm /home/user/made")["ename"] == "UsageError"
    kernel.ok("%sbx rm /home/user/made/renamed.txt")
    assert not remote_exists(kernel, "made/renamed.txt")
    kernel.ok("%sbx rm -r /home/user/made")
    assert not remote_exists(kernel, "made")


# ---- processes


def test_sh_runs_a_shell_line_with_pipes_and_a_cell_with_options(kernel):
    assert kernel.stdout("%sbx sh echo hello | tr a-z A-Z") == "HELLO\n"
    kernel.ok("%%sbx write /tmp/marker-for-cwd.txt\nx")
    kernel.ok("%%sbx sh --cwd /tmp --out where --err problems\nls marker-*\necho oops >&2")
    assert kernel.local("where") == repr("marker-for-cwd.txt\n")
    assert kernel.local("problems") == repr("oops\n")


def test_sh_with_a_non_zero_exit_fails_unless_told_not_to(kernel):
    reply = kernel.failure("%sbx sh echo partial; exit 3")
    assert reply["ename"] == "CommandError"
    assert reply["evalue"] == "command exited with status 3: echo partial; exit 3"
    assert kernel.stdout("%sbx sh --no-raise-error echo fine; exit 3") == "fine\n"


def test_ps_proc_and_kill_manage_a_background_process(kernel):
    pid = int(kernel.stdout("%sbx sh sleep 300 > /dev/null 2>&1 & echo $!").strip())
    assert pid in listed_pids(kernel)
    shown = kernel.result(f"%sbx proc {pid}")["text/plain"]
    assert f"pid:         {pid}" in shown
    assert "sleep 300" in shown
    kernel.ok(f"%sbx kill {pid}")
    assert kernel.failure(f"%sbx proc {pid}")["ename"] == "SandboxNotFoundError"
    assert pid not in listed_pids(kernel)
    state = kernel.stdout(f"%sbx sh cut -d' ' -f3 /proc/{pid}/stat 2>/dev/null; true")
    assert state.strip() in ("", "Z")  # gone, or a zombie its parent has yet to reap


# ---- contexts, run, push and pull


def test_run_shows_streams_displays_and_the_result_as_a_cell_would(kernel):
    reply, outputs = kernel.run(
        "%%sbx run\n"
        "import sys\n"
        "from IPython.display import HTML, display\n"
        "print('out'); print('err', file=sys.stderr)\n"
        "display(HTML('<b>shown</b>'))\n"
        "6 * 7"
    )
    assert reply["status"] == "ok"
    kinds = [kind for kind, _ in outputs]
    assert kinds == ["stream", "stream", "display_data", "execute_result"]
    assert outputs[0][1] == {"name": "stdout", "text": "out\n"}
    assert outputs[1][1] == {"name": "stderr", "text": "err\n"}
    assert outputs[2][1]["data"]["text/html"] == "<b>shown</b>"
    assert outputs[3][1]["data"]["text/plain"] == "42"
    assert outputs[3][1]["execution_count"] == reply["execution_count"]


def test_run_shows_output_while_the_cell_runs(kernel):
    arrivals: list[tuple[str, float]] = []
    started = time.monotonic()
    kernel.client.execute_interactive(
        "%%sbx run\nimport time\nprint('early', flush=True)\ntime.sleep(1.5)\nprint('late')",
        timeout=60,
        output_hook=lambda msg: arrivals.append((msg["msg_type"], time.monotonic() - started)),
    )
    streams = [moment for kind, moment in arrivals if kind == "stream"]
    ended = max(moment for _, moment in arrivals)
    assert len(streams) == 2
    assert streams[0] < ended - 0.5


def test_interrupting_run_stops_the_remote_code_too(kernel):
    reply, took = kernel.interrupted("%%sbx run\nimport time\ntime.sleep(30)", after=0.5)
    assert reply["ename"] == "KeyboardInterrupt"
    assert took < 5
    # ipykernel aborts an execute_request that reaches it before it has stopped aborting after
    # the error (its stop_on_error window): one request to close that window, whatever its
    # reply, then the real question.
    kernel.run("pass")
    started = time.monotonic()
    assert kernel.in_sandbox("'still answering'") == "'still answering'"
    assert time.monotonic() - started < 5


def test_run_raises_the_remote_error_with_its_traceback(kernel):
    reply, outputs = kernel.run("%%sbx run\ndef broken():\n    return 1 / 0\nbroken()")
    assert (reply["ename"], reply["evalue"]) == ("ZeroDivisionError", "division by zero")
    assert any("broken()" in line for line in reply["traceback"])
    assert [kind for kind, _ in outputs] == ["error"]


def test_contexts_are_listed_created_used_and_removed(kernel):
    current = kernel.result("%sbx ctx ls")["text/plain"].splitlines()[1].split()
    assert current[0] == "*"
    created = kernel.result("%sbx ctx new")["text/plain"]
    new_id = created.splitlines()[0].split()[-1]
    assert new_id in kernel.result("%sbx ctx ls")["text/plain"]
    kernel.ok(f"%%sbx run --ctx {new_id}\nonly_in_new = 'here'")
    assert kernel.in_sandbox("'only_in_new' in globals()") == "False"
    kernel.ok(f"%sbx ctx use {new_id}")
    try:
        assert kernel.in_sandbox("only_in_new") == "'here'"
        assert kernel.failure(f"%sbx ctx rm {new_id}")["ename"] == "UsageError"
    finally:
        kernel.ok(f"%sbx ctx use {current[1]}")
    kernel.ok(f"%sbx ctx rm {new_id}")
    assert new_id not in kernel.result("%sbx ctx ls")["text/plain"]


def test_push_and_pull_round_trip_a_variable(kernel):
    kernel.ok("%%sbx sh --out shared\necho from the shell")
    kernel.ok("%sbx push shared")
    assert kernel.in_sandbox("shared") == repr("from the shell\n")
    kernel.in_sandbox("pulled = {'numbers': [1, 2, 3], 'shared': shared.upper()}")
    kernel.ok("%sbx pull pulled")
    assert kernel.local("pulled") == repr({"numbers": [1, 2, 3], "shared": "FROM THE SHELL\n"})


def test_pull_of_what_cannot_be_pickled_says_so(kernel):
    kernel.in_sandbox("import threading; lock = threading.Lock(); 0")
    reply = kernel.failure("%sbx pull lock")
    assert reply["ename"] == "VariableTransferError"
    assert reply["evalue"].startswith("cannot pull lock: lock objects cannot be pickled")
    assert kernel.failure("%sbx pull no_such_name")["evalue"] == (
        "cannot pull no_such_name: not defined in the sandbox"
    )


# ---- completion, help, errors


def test_tab_completes_remote_paths_verbs_and_options(kernel):
    kernel.ok("%%sbx write /home/user/completion/target.txt\nx")
    reply = kernel.complete("%sbx ls /home/us")
    assert "/home/user/" in reply["matches"]
    assert (reply["cursor_start"], reply["cursor_end"]) == (8, 16)
    reply = kernel.complete("%sbx cat /home/user/completion/ta")
    assert reply["matches"] == ["/home/user/completion/target.txt"]
    nothing = "%sbx cat /home/user/completion/in"  # no local files, no Python names
    assert kernel.complete(nothing)["matches"] == ["/home/user/completion/in"]
    assert kernel.complete("%sbx mk")["matches"] == ["mkdir"]
    assert kernel.complete("%sbx ls --de")["matches"] == ["--depth"]
    assert kernel.complete("%%sbx sh --cwd /ho")["matches"] == ["/home/"]


def test_help_documents_every_verb_with_an_example(kernel):
    text = kernel.stdout("%sbx help ls")
    assert text.startswith("usage: %sbx ls")
    assert "examples:\n  %sbx ls" in text
    reply, _ = kernel.run("%sbx?")
    page = reply["payload"][0]["data"]["text/plain"]
    for verb in ("cat", "write", "put", "get", "ls", "stat", "mkdir", "mv", "rm", "sh", "ps"):
        assert f"sbx {verb}" in page
    for verb in ("proc", "kill", "ctx", "run", "push", "pull", "status", "connect", "help"):
        assert f"sbx {verb}" in page


@pytest.mark.parametrize(
    ("cell", "ename"),
    [
        ("%sbx frobnicate", "UsageError"),
        ("%sbx cat /home/user/no/such/file", "SandboxNotFoundError"),
        ("%sbx sh exit 7", "CommandError"),
    ],
)
def test_failures_fail_the_cell_with_a_one_line_message(kernel, cell, ename):
    reply, outputs = kernel.run(cell)
    assert (reply["status"], reply["ename"]) == ("error", ename)
    assert "\n" not in reply["evalue"]
    if ename == "UsageError":  # IPython shows a UsageError as one stderr line, not a traceback
        assert outputs == [
            ("stream", {"name": "stderr", "text": f"UsageError: {reply['evalue']}\n"})
        ]
    else:
        assert outputs == [("error", {key: reply[key] for key in ("ename", "evalue", "traceback")})]
        assert reply["traceback"] == [f"{ename}: {reply['evalue']}"]


def test_bad_arguments_raise_a_usage_error_with_the_verbs_usage(kernel):
    reply = kernel.failure("%sbx ls --depth many")
    assert reply["ename"] == "UsageError"
    assert "usage: %sbx ls" in reply["evalue"]


# ---- in the sandbox kernel


def test_in_the_sandbox_kernel_the_magics_use_the_kernels_sandbox_and_context(sandbox_kernel):
    sandbox_kernel.in_sandbox("open('written-by-a-cell.txt', 'w').write('from a cell')")
    assert sandbox_kernel.result("%sbx cat /home/user/written-by-a-cell.txt") == {
        "text/plain": "from a cell"
    }
    status = sandbox_kernel.stdout("%sbx status")
    context_line = [line for line in status.splitlines() if line.startswith("context:")]
    current = sandbox_kernel.result("%sbx ctx ls")["text/plain"].splitlines()[1].split()
    assert context_line == [f"context:    {current[1]}"]


def test_in_the_sandbox_kernel_connect_and_disconnect_are_refused(sandbox_kernel):
    for verb in ("connect", "disconnect"):
        reply = sandbox_kernel.failure(f"%sbx {verb}")
        assert reply["ename"] == "UsageError"
        assert "c.SandboxKernel.endpoint" in reply["evalue"]
    assert "sandbox:    sbx-" in sandbox_kernel.stdout("%sbx status")


# ---- batch runs


def test_nbconvert_exits_non_zero_on_each_kind_of_failure(server, tmp_path):
    env = {
        **os.environ,
        "IPYTHONDIR": str(tmp_path / "ipython"),
        "SANDBOX_KERNEL_ENDPOINT": server.url,
        "SANDBOX_KERNEL_TOKEN": server.token,
    }
    failing = {
        "unknown-verb": "%sbx frobnicate",
        "missing-path": "%sbx cat /home/user/no/such/file",
        "failing-sh": "%sbx sh exit 7",
    }
    runs = {}
    for name, cell in failing.items():
        notebook = nbformat.v4.new_notebook(
            metadata={"kernelspec": {"name": "sandbox", "display_name": "Sandbox"}}
        )
        notebook.cells = [nbformat.v4.new_code_cell(cell), nbformat.v4.new_code_cell("1")]
        nbformat.write(notebook, tmp_path / f"{name}.ipynb")
        command = ["jupyter", "nbconvert", "--to", "notebook", "--execute", f"{name}.ipynb"]
        runs[name] = subprocess.Popen(
            [sys.executable, "-m", *command],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    for name, process in runs.items():
        _, stderr = process.communicate(timeout=120)
        assert process.returncode != 0, (name, stderr)
        assert failing[name].split()[1] in stderr or "exit 7" in stderr, stderr
