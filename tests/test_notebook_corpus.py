"""The notebooks under tests/notebooks, run by nbclient (and papermill) under python3 and under
the sandbox kernel: every cell's count and outputs must be the same on both."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import nbformat
import papermill
import pytest
from nbclient import NotebookClient

CORPUS = Path(__file__).resolve().parent / "notebooks"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
KERNELS = ("python3", "sandbox")
# nbclient gives this only to kernels named python3; the sandbox kernel forwards it when told.
MEMORY_HISTORY = ["--HistoryManager.hist_file=:memory:"]


@pytest.fixture(autouse=True)
def on_the_tests_server(server, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("SANDBOX_KERNEL_ENDPOINT", server.url)
    monkeypatch.setenv("SANDBOX_KERNEL_TOKEN", server.token)
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))


def comparable(notebook: nbformat.NotebookNode) -> list[tuple[Any, list[dict[str, Any]]]]:
    """Each code cell's count and outputs, tracebacks cut to their last line."""
    cells = []
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        outputs = []
        for output in cell.outputs:
            output = dict(output)
            if "traceback" in output:
                lines = ANSI.sub("", "\n".join(output["traceback"])).strip().splitlines()
                output["traceback"] = lines[-1:]
            outputs.append(output)
        cells.append((cell.execution_count, outputs))
    return cells


def executed(name: str, kernel_name: str, directory: Path) -> nbformat.NotebookNode:
    notebook = nbformat.read(CORPUS / name, as_version=4)
    directory.mkdir()
    client = NotebookClient(
        notebook,
        kernel_name=kernel_name,
        timeout=120,
        resources={"metadata": {"path": str(directory)}},
        extra_arguments=MEMORY_HISTORY if kernel_name == "sandbox" else [],
    )
    client.execute()
    return notebook


@pytest.mark.parametrize("name", ["displays.ipynb", "payloads.ipynb", "errors.ipynb"])
def test_a_notebook_has_the_same_outputs_on_both_kernels(name, tmp_path):
    runs = {kernel: comparable(executed(name, kernel, tmp_path / kernel)) for kernel in KERNELS}
    assert runs["sandbox"] == runs["python3"]


def test_the_corpus_shows_what_it_is_about(tmp_path):
    displays = comparable(executed("displays.ipynb", "sandbox", tmp_path / "displays"))
    progress = displays[1][1][0]["data"]["text/markdown"]
    assert progress == "**100%**"  # the update of a later cell reached it
    replaced = [out for out in displays[6][1] if out["output_type"] == "execute_result"]
    assert replaced[0]["data"]["text/plain"] == "'the replaced result'"
    payloads = comparable(executed("payloads.ipynb", "sandbox", tmp_path / "payloads"))
    assert payloads[-1][1][0]["data"]["text/plain"] == "':memory:'"
    errors = comparable(executed("errors.ipynb", "sandbox", tmp_path / "errors"))
    shown = [out["ename"] for _, outputs in errors for out in outputs if "ename" in out]
    assert shown == ["ValueError", "TimeoutError", "ContextDied", "ZeroDivisionError"]
    assert errors[-1][1][0]["text"] == "set before the errors\n"


def test_papermill_parameters_have_the_same_effect_on_both_kernels(tmp_path):
    runs = {}
    for kernel in KERNELS:
        output = tmp_path / f"{kernel}.ipynb"
        papermill.execute_notebook(
            str(CORPUS / "parameters.ipynb"),
            str(output),
            parameters={"greeting": "Hi", "times": 2},
            kernel_name=kernel,
            cwd=str(tmp_path),
            progress_bar=False,
        )
        runs[kernel] = comparable(nbformat.read(output, as_version=4))
    assert runs["sandbox"] == runs["python3"]
    outputs = [out for _, cell_outputs in runs["sandbox"] for out in cell_outputs]
    assert outputs[0]["text"] == "Hi, sandbox!\nHi, sandbox!\n"
    assert outputs[-1]["data"]["text/plain"] == "20"
