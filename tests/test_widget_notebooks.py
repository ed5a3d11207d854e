"""nbclient stores the widget state of sandbox widgets in the notebook, as it does on python3."""

from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient

CELLS = [
    "import ipywidgets as w\nsliders = [w.IntSlider(i) for i in range(3)]\nsliders[0]",
    "out = w.Output()\nwith out:\n    print('in the widget')\nout",
    "w.VBox(sliders[1:])",
]
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def executed(kernel_name: str, cwd: str):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    client = NotebookClient(
        notebook,
        kernel_name=kernel_name,
        timeout=120,
        store_widget_state=True,
        resources={"metadata": {"path": cwd}},
    )
    client.execute()
    return notebook


@pytest.mark.parametrize("kernel_name", ["python3", "sandbox"])
def test_nbclient_stores_the_widget_state(kernel_name, server, tmp_path, monkeypatch):
    monkeypatch.setenv("SANDBOX_KERNEL_ENDPOINT", server.url)
    monkeypatch.setenv("SANDBOX_KERNEL_TOKEN", server.token)
    notebook = executed(kernel_name, str(tmp_path))
    state = notebook.metadata["widgets"][WIDGET_STATE]["state"]
    models = sorted(item["model_name"] for item in state.values())
    assert models.count("IntSliderModel") == 3
    assert "OutputModel" in models and "VBoxModel" in models
    views = [
        output["data"]["application/vnd.jupyter.widget-view+json"]["model_id"]
        for cell in notebook.cells
        for output in cell.outputs
        if "application/vnd.jupyter.widget-view+json" in output.get("data", {})
    ]
    assert len(views) == 3 and all(view in state for view in views)
    (output_model,) = [item for item in state.values() if item["model_name"] == "OutputModel"]
    assert output_model["state"]["outputs"][0]["text"] == "in the widget\n"
    assert all(output.get("name") != "stdout" for output in notebook.cells[1].outputs)
