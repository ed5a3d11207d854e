"""The notebook's world in the sandbox: its folder (copied, never written back), the settings
it is given, and nothing of the host's environment."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from test_kernel import PNG_PIXEL, RunningKernel, server_environment

CELLS = [
    "print(open('data.csv').read())",
    "import helper\nhelper.greet('notebook')",
    "from IPython.display import Image\nImage('python.png')",
    "import csv\nwith open('out.csv', 'w', newline='') as out:\n"
    "    csv.writer(out).writerows([['total'], [sum(int(r['b']) for r in "
    "csv.DictReader(open('data.csv')))]])\nprint(open('out.csv').read())",
    "import os\nsorted(name for name in os.listdir('.') if not name.startswith(('.', '_')))",
]


def notebook_folder(base: Path) -> Path:
    """A folder as users keep them: data, a helper module, an image, a secret dotfile."""
    folder = base / "project"
    folder.mkdir()
    (folder / "data.csv").write_text("a,b\n1,2\n3,4\n")
    (folder / "helper.py").write_text("def greet(name):\n    return f'hello, {name}'\n")
    (folder / "python.png").write_bytes(base64.b64decode(PNG_PIXEL))
    (folder / ".env").write_text("API_KEY=do-not-leak\n")
    (folder / ".git").mkdir()
    (folder / ".git" / "config").write_text("[core]\n")
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in CELLS]
    nbformat.write(notebook, folder / "analysis.ipynb")
    return folder


def fingerprint(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def executed_outputs(folder: Path, kernel_name: str, environment: dict[str, str]) -> list:
    """The outputs of the folder's notebook run by nbclient in the folder, as nbconvert does."""
    notebook = nbformat.read(folder / "analysis.ipynb", as_version=4)
    saved = dict(os.environ)
    os.environ.update(environment)
    try:
        NotebookClient(
            notebook, kernel_name=kernel_name, timeout=120, resources={"metadata": {"path": folder}}
        ).execute()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return [
        [
            {key: value for key, value in output.items() if key != "metadata"}
            for output in cell.outputs
        ]
        for cell in notebook.cells
    ]


def test_a_notebook_beside_its_files_runs_as_on_python3_and_leaves_the_folder_alone(
    server, tmp_path
):
    folder = notebook_folder(tmp_path)
    reference = tmp_path / "reference"
    shutil.copytree(folder, reference)
    before = fingerprint(folder)
    sandboxed = executed_outputs(folder, "sandbox", server_environment(server, tmp_path))
    expected = executed_outputs(reference, "python3", {})
    assert sandboxed == expected
    assert sandboxed[3][0]["text"] == "total\n6\n\n"
    assert fingerprint(folder) == before  # out.csv was written in the sandbox only
    assert (reference / "out.csv").exists()


@pytest.fixture
def kernel(server, tmp_path) -> Iterator[RunningKernel]:
    environment = server_environment(server, tmp_path)
    environment["HOST_ONLY_SETTING"] = "must-not-pass"
    running = RunningKernel(
        environment, "--SandboxKernel.env=GREETING=hi", cwd=str(notebook_folder(tmp_path))
    )
    yield running
    running.shutdown()


def test_results_come_back_with_get_and_diff_names_what_changed(kernel, tmp_path):
    folder = tmp_path / "project"
    kernel.stdout("open('out.csv', 'w').write('x,y\\n')\nopen('data.csv', 'a').write('5,6\\n')")
    kernel.stdout("os = __import__('os'); os.remove('helper.py')")
    _, outputs = kernel.run("%sbx diff")
    assert outputs[0][1]["data"]["text/plain"] == "M data.csv\nD helper.py\nA out.csv"
    assert (folder / "data.csv").read_text() == "a,b\n1,2\n3,4\n"
    assert kernel.stdout("%sbx get out.csv").startswith("Copied out.csv to ")
    assert (folder / "out.csv").read_text() == "x,y\n"


def test_dotfiles_stay_on_the_host_and_status_says_so(kernel):
    listed = kernel.stdout("import os\nprint(os.getcwd(), sorted(os.listdir('.')))")
    assert listed == "/home/user/work ['analysis.ipynb', 'data.csv', 'helper.py', 'python.png']\n"
    status = kernel.status()
    assert status["cwd"] == "/home/user/work"
    assert "left out 2 hidden (.git/, .env)" in status["workspace"]


def test_the_environment_is_what_the_settings_say_and_nothing_of_the_hosts(kernel):
    code = "print(os.environ.get('GREETING'), os.environ.get('HOST_ONLY_SETTING'))"
    assert kernel.stdout(f"import os\n{code}") == "hi None\n"
    assert kernel.stdout("%sbx env FEATURE=on 'SPACED=a b'").startswith("Set FEATURE, SPACED")
    assert kernel.stdout("print(os.environ['FEATURE'], os.environ['SPACED'])") == "on a b\n"
    assert kernel.stdout("%sbx env") == "FEATURE\nGREETING\nSPACED\n"
    assert kernel.status()["env"] == "FEATURE, GREETING, SPACED"


def test_a_folder_past_the_limit_is_copied_in_part_and_the_first_cell_says_what_stayed(
    server, tmp_path
):
    folder = notebook_folder(tmp_path)
    (folder / "zz-large.bin").write_bytes(os.urandom(300_000))
    kernel = RunningKernel(
        server_environment(server, tmp_path),
        "--SandboxKernel.workspace_limit_mb=0.1",
        cwd=str(folder),
    )
    try:
        _, outputs = kernel.run("1")
        notice = "".join(c["text"] for kind, c in outputs if kind == "stream")
        assert "leaving out 1 past the size limit (zz-large.bin)" in notice
        assert "workspace_limit_mb" in notice
        _, again = kernel.run("2")
        assert [kind for kind, _ in again] == ["execute_result"]
    finally:
        kernel.shutdown()


def test_workspace_none_runs_cells_in_home_as_before(server, tmp_path):
    kernel = RunningKernel(
        server_environment(server, tmp_path),
        "--SandboxKernel.workspace=none",
        cwd=str(notebook_folder(tmp_path)),
    )
    try:
        assert kernel.stdout("import os\nprint(os.getcwd())") == "/home/user\n"
        assert kernel.stdout("print(os.path.exists('/home/user/work'))") == "False\n"
    finally:
        kernel.shutdown()
