"""Notebooks on the sandbox kernel through nbclient, `jupyter nbconvert --execute` and papermill."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
KERNELSPEC = {"name": "sandbox", "display_name": "Python 3 (Sandbox)", "language": "python"}


@pytest.fixture
def kernel_env(tmp_path) -> dict[str, str]:
    """No endpoint (the embedded server) and a private IPython directory."""
    return {**os.environ, "IPYTHONDIR": str(tmp_path / "ipython")}


def outputs_of(cell) -> list[dict]:
    return cell.get("outputs", [])


def stdout_of(notebook) -> str:
    return "".join(
        output["text"]
        for cell in notebook.cells
        for output in outputs_of(cell)
        if output["output_type"] == "stream" and output["name"] == "stdout"
    )


def notebook_of(*sources: str):
    notebook = nbformat.v4.new_notebook(metadata={"kernelspec": KERNELSPEC})
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    return notebook


def run_cli(*arguments: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", *arguments],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.fixture(scope="module")
def executed(tmp_path_factory) -> Callable[[Path], nbformat.NotebookNode]:
    """Run an example notebook on its own kernel (sandbox or sandbox-javascript) through
    nbclient once per module; later calls reuse the result."""
    directory = tmp_path_factory.mktemp("notebooks")
    env = {**os.environ, "IPYTHONDIR": str(directory / "ipython")}
    runs: dict[Path, nbformat.NotebookNode] = {}

    def run(path: Path) -> nbformat.NotebookNode:
        if path not in runs:
            notebook = nbformat.read(path, as_version=4)
            resources = {"metadata": {"path": str(directory)}}
            kernel_name = notebook.metadata.kernelspec.name
            NotebookClient(
                notebook, kernel_name=kernel_name, timeout=120, resources=resources
            ).execute(env=env)
            runs[path] = notebook
        return runs[path]

    return run


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda path: path.name)
def test_example_notebook_runs_to_the_end(path, executed):
    notebook = executed(path)
    for cell in notebook.cells:
        errors = [o for o in outputs_of(cell) if o["output_type"] == "error"]
        expected = "raises-exception" in cell.metadata.get("tags", [])
        assert bool(errors) == expected, (cell.source, errors)


def test_quickstart_shows_the_sandbox_a_figure_and_a_table(executed):
    notebook = executed(NOTEBOOKS / "quickstart.ipynb")
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    status = "".join(output.get("text", "") for output in outputs_of(code_cells[0]))
    assert "sandbox:    sbx-" in status
    assert "(not created yet)" not in status
    bundles = [o["data"] for c in code_cells for o in outputs_of(c) if "data" in o]
    assert any("image/png" in bundle for bundle in bundles)
    assert any("<table>" in bundle.get("text/html", "") for bundle in bundles)
    errors = [o for o in outputs_of(code_cells[-1]) if o["output_type"] == "error"]
    assert errors[0]["ename"] == "IndexError"


def test_nbconvert_execute_succeeds_on_a_good_notebook(tmp_path, kernel_env):
    nbformat.write(notebook_of("answer = 6 * 7", "print(answer)"), tmp_path / "good.ipynb")
    result = run_cli(
        "jupyter",
        "nbconvert",
        "--to",
        "notebook",
        "--execute",
        "--ExecutePreprocessor.kernel_name=sandbox",
        "--output",
        "good-out.ipynb",
        "good.ipynb",
        env=kernel_env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    executed = nbformat.read(tmp_path / "good-out.ipynb", as_version=4)
    assert stdout_of(executed) == "42\n"


def test_nbconvert_execute_fails_on_a_notebook_with_a_failing_cell(tmp_path, kernel_env):
    notebook = notebook_of("print('first')", "raise RuntimeError('broken cell')", "print('never')")
    nbformat.write(notebook, tmp_path / "bad.ipynb")
    result = run_cli(
        "jupyter",
        "nbconvert",
        "--to",
        "notebook",
        "--execute",
        "--ExecutePreprocessor.kernel_name=sandbox",
        "bad.ipynb",
        env=kernel_env,
        cwd=tmp_path,
    )
    assert result.returncode != 0
    assert "broken cell" in result.stderr


def test_papermill_injects_parameters_that_take_effect(tmp_path, kernel_env):
    output = tmp_path / "out.ipynb"
    result = run_cli(
        "papermill",
        "-k",
        "sandbox",
        "-p",
        "name",
        "Ada",
        "-p",
        "repeat",
        "3",
        str(NOTEBOOKS / "parameters.ipynb"),
        str(output),
        env=kernel_env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    executed = nbformat.read(output, as_version=4)
    assert any("injected-parameters" in cell.metadata.get("tags", []) for cell in executed.cells)
    assert stdout_of(executed) == "Hello, Ada!\n" * 3
    results = [
        o for c in executed.cells for o in outputs_of(c) if o["output_type"] == "execute_result"
    ]
    assert results[-1]["data"]["text/plain"] == "9"
