"""A hostile notebook against the kernel's own host: the local side of `%sbx` runs no notebook
code, unpickles no sandbox object that could act, and keeps to the notebook's folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from test_kernel import RunningKernel, server_environment

from sandbox_kernel.kernel.local_cells import LocalCellError, local_python
from sandbox_kernel.magics.expansion import expand_names
from sandbox_kernel.magics.unpickling import RefusedType, load_values


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> tuple[Path, Path]:
    """A notebook's folder, and beside it a host file no notebook should reach."""
    base = tmp_path_factory.mktemp("host")
    notebook = base / "notebook"
    notebook.mkdir()
    (notebook / "data.csv").write_text("a,b\n1,2\n")
    (notebook / ".env").write_text("API_KEY=secret\n")
    (base / "secret.txt").write_text("host secret\n")
    (notebook / "escape").symlink_to(base / "secret.txt")
    return base, notebook


@pytest.fixture(scope="module")
def kernel(server, folders, tmp_path_factory) -> Iterator[RunningKernel]:
    """A sandbox kernel as Jupyter starts one: in the notebook's folder, with no settings."""
    environment = server_environment(server, tmp_path_factory.mktemp("kernel"))
    running = RunningKernel(environment, cwd=str(folders[1]))
    yield running
    running.shutdown()


def failed(kernel: RunningKernel, code: str) -> str:
    """The one-line error of a cell that must fail (an error reply, or a UsageError)."""
    reply, outputs = kernel.run(code)
    text = "".join(c.get("text", "") for kind, c in outputs if kind == "stream")
    assert reply["status"] == "error" or "UsageError" in text, (code, reply, outputs)
    return reply.get("evalue") or text


# ---- no notebook text runs as Python on the host

ATTACKS = {
    "braces in a %sbx line": "%sbx ls {__import__('os').system('touch MARKER')}",
    "braces in an assigned %sbx line": "x = %sbx ls /{__import__('os').system('touch MARKER')}",
    "a %config value": "%config SandboxKernel.timeout = __import__('os').system('touch MARKER')",
    "a quote that fools the router": (
        "%sbx sh echo \\'''\n__import__('os').system('touch MARKER')\n#'''"
    ),
    "a bracket that fools the router": "%sbx sh echo (\n__import__('os').system('touch MARKER')\n)",
    "a %%sbx line": "%%sbx run {__import__('os').system('touch MARKER')}\n1",
}


@pytest.mark.parametrize("code", ATTACKS.values(), ids=ATTACKS.keys())
def test_notebook_text_never_runs_as_code_on_the_host(kernel, tmp_path, code):
    marker = tmp_path / "ran-on-the-host"
    kernel.run(code.replace("MARKER", str(marker)))
    assert not marker.exists()
    assert kernel.stdout("print('still fine')").endswith("still fine\n")


def test_names_still_expand_in_a_sbx_line_without_evaluating_anything():
    namespace = {"name": "data.csv", "entry": type("Entry", (), {"path": "/home/user/x"})()}
    namespace["_"] = [namespace["entry"]]
    assert expand_names("get $name {entry.path} {_[0].path} {1+1} $$HOME", namespace) == (
        "get data.csv /home/user/x /home/user/x {1+1} $HOME"
    )
    assert expand_names("cat {entry.__class__} $missing", namespace) == (
        "cat {entry.__class__} $missing"
    )


def test_a_local_cell_becomes_magic_calls_with_quoted_text_only():
    code = "# listing\nentries = %sbx ls /home/user \\\n  -l\n%config SbxMagics.displaylimit = 5"
    assert local_python(code) == (
        "entries = get_ipython().run_line_magic('sbx', 'ls /home/user    -l')\n"
        "get_ipython().run_line_magic('config', 'SbxMagics.displaylimit = 5')\n"
    )
    assert local_python("%%sbx write a.txt\nx = {1}\n") == (
        "get_ipython().run_cell_magic('sbx', 'write a.txt', 'x = {1}\\n')\n"
    )
    with pytest.raises(LocalCellError):
        local_python("%sbx ls\nimport os")


def test_settings_that_guard_the_host_cannot_change_from_a_notebook(kernel):
    for setting in (
        "SbxMagics.local_root = '/'",
        "SbxMagics.local_hidden = True",
        "SandboxKernel.endpoint = 'http://127.0.0.1:1'",
        "SandboxKernel.token = 'stolen'",
    ):
        assert "cannot be changed from a notebook" in failed(kernel, f"%config {setting}")
    kernel.stdout("%config SbxMagics.displaylimit = 7")
    assert kernel.stdout("%config SbxMagics.displaylimit") == ""
    _, outputs = kernel.run("%config SbxMagics.displaylimit")
    assert outputs[0][1]["data"]["text/plain"] == "7"
    kernel.stdout("%config SbxMagics.displaylimit = 50")


# ---- %sbx pull builds values, never calls what the sandbox names


def test_pull_refuses_an_object_whose_pickle_would_run_a_command(kernel, tmp_path):
    marker = tmp_path / "ran-on-the-host"
    kernel.stdout(
        "import os\nclass Payload:\n"
        f"    def __reduce__(self):\n        return (os.system, ('touch {marker}',))\n"
        "payload = Payload()"
    )
    message = failed(kernel, "%sbx pull payload")
    assert "posix.system is not a value type pull accepts" in message
    assert not marker.exists()


def test_pull_still_brings_back_values_and_arrays(kernel):
    kernel.stdout(
        "import datetime, decimal, collections, numpy\n"
        "values = {'when': datetime.datetime(2024, 5, 1, 12), 'cost': decimal.Decimal('1.5'),"
        " 'counts': collections.Counter('aab'), 'array': numpy.arange(4.0), 'set': {1, 2}}"
    )
    kernel.stdout("%sbx pull values")
    check = "(values['when'].hour, str(values['cost']), values['counts']['a'], "
    check += "values['array'].tolist(), type(values['array']).__name__, values['set'])"
    reply, _ = kernel.run("%sbx status", user_expressions={"check": check})
    value = reply["user_expressions"]["check"]
    assert value["data"]["text/plain"] == "(12, '1.5', 2, [0.0, 1.0, 2.0, 3.0], 'ndarray', {1, 2})"


def test_the_unpickler_refuses_every_callable_outside_its_list():
    import pickle

    assert load_values(pickle.dumps({"a": [1, 2.5, b"x"], "b": frozenset({3})})) == {
        "a": [1, 2.5, b"x"],
        "b": frozenset({3}),
    }
    for dangerous in (eval, getattr, __import__, print):
        with pytest.raises(RefusedType):
            load_values(pickle.dumps(dangerous))


# ---- local files stay in the notebook's folder, hidden ones out of reach


def test_get_and_put_keep_to_the_notebook_folder(kernel, folders):
    base, notebook = folders
    kernel.stdout("%%sbx write /home/user/payload.sh\necho owned\n")
    outside = [
        "%sbx put ../secret.txt",
        f"%sbx put {base / 'secret.txt'}",
        "%sbx put /etc/passwd",
        "%sbx put escape",  # a link in the folder that points out of it
        "%sbx get /home/user/payload.sh ../dropped.sh",
        f"%sbx get /home/user/payload.sh {base}/",
    ]
    for code in outside:
        assert "is outside" in failed(kernel, code), code
    for code in ("%sbx put .env", "%sbx get /home/user/payload.sh .bashrc"):
        assert "is a hidden file or folder" in failed(kernel, code), code
    assert not (base / "dropped.sh").exists() and not (base / "payload.sh").exists()
    assert not (notebook / ".bashrc").exists()
    kernel.stdout("%sbx get /home/user/payload.sh result.sh")
    assert (notebook / "result.sh").read_text() == "echo owned\n"


def test_recursive_transfers_leave_out_hidden_entries_and_links_that_leave(kernel, folders):
    _, notebook = folders
    summary = kernel.stdout("%sbx put -r . /home/user/copy")
    assert "Left out 2 hidden or outside entries" in summary
    # The last line: a kernel's first cell also shows the note on its folder's copy.
    listed = kernel.stdout("import os\nprint(sorted(os.listdir('/home/user/copy')))")
    listed = listed.splitlines()[-1]
    assert "data.csv" in listed and ".env" not in listed and "escape" not in listed
    kernel.stdout(
        "os.makedirs('/home/user/tree/.git/hooks', exist_ok=True)\n"
        "open('/home/user/tree/.git/hooks/post-checkout', 'w').write('echo owned')\n"
        "open('/home/user/tree/result.txt', 'w').write('ok')"
    )
    kernel.stdout("%sbx get -r /home/user/tree fetched")
    assert (notebook / "fetched" / "result.txt").read_text() == "ok"
    assert not (notebook / "fetched" / ".git").exists()
