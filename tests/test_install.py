"""`sandbox-kernel install`: a kernelspec pinned to this Python, found by `jupyter kernelspec`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

CONSOLE_SCRIPT = Path(sys.executable).parent / "sandbox-kernel"


def test_install_writes_a_kernelspec_pinned_to_this_python_with_its_env(tmp_path):
    result = subprocess.run(
        [
            str(CONSOLE_SCRIPT),
            "install",
            "--prefix",
            str(tmp_path),
            "--name",
            "x",
            "--display-name",
            "X",
            "--env",
            "K=V",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    spec_dir = tmp_path / "share" / "jupyter" / "kernels" / "x"
    spec = json.loads((spec_dir / "kernel.json").read_text())
    assert spec["display_name"] == "X"
    assert spec["env"] == {"K": "V"}
    assert spec["argv"][1:] == ["-m", "sandbox_kernel", "-f", "{connection_file}"]
    interpreter = Path(spec["argv"][0])
    assert interpreter.is_absolute()
    prefix = subprocess.run(
        [str(interpreter), "-c", "import sys; print(sys.prefix)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert prefix == sys.prefix
    assert (spec_dir / "logo-64x64.png").is_file()

    listing = subprocess.run(
        [sys.executable, "-m", "jupyter", "kernelspec", "list", "--json"],
        env={**os.environ, "JUPYTER_PATH": str(tmp_path / "share" / "jupyter")},
        capture_output=True,
        text=True,
        check=True,
    )
    kernelspecs = json.loads(listing.stdout)["kernelspecs"]
    assert Path(kernelspecs["x"]["resource_dir"]) == spec_dir
    assert kernelspecs["x"]["spec"]["display_name"] == "X"


def test_install_refuses_an_env_setting_without_a_value(tmp_path):
    result = subprocess.run(
        [str(CONSOLE_SCRIPT), "install", "--prefix", str(tmp_path), "--env", "NOVALUE"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "KEY=VALUE" in result.stderr
    assert not (tmp_path / "share").exists()


def test_install_writes_both_kernelspecs_by_default_and_one_with_language(tmp_path):
    both = subprocess.run(
        [str(CONSOLE_SCRIPT), "install", "--prefix", str(tmp_path / "both")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert both.returncode == 0, both.stderr
    kernels = tmp_path / "both" / "share" / "jupyter" / "kernels"
    assert sorted(path.name for path in kernels.iterdir()) == ["sandbox", "sandbox-javascript"]
    python = json.loads((kernels / "sandbox" / "kernel.json").read_text())
    javascript = json.loads((kernels / "sandbox-javascript" / "kernel.json").read_text())
    assert (python["display_name"], python["language"]) == ("Python 3 (Sandbox)", "python")
    assert (javascript["display_name"], javascript["language"]) == (
        "JavaScript (Sandbox)",
        "javascript",
    )
    assert javascript["argv"][0] == python["argv"][0]
    assert javascript["argv"][1:] == [
        "-m",
        "sandbox_kernel",
        "-f",
        "{connection_file}",
        "--SandboxKernel.language=javascript",
    ]
    logos = {path.name for path in (kernels / "sandbox-javascript").iterdir()}
    assert {"logo-32x32.png", "logo-64x64.png", "logo-svg.svg"} <= logos

    only = subprocess.run(
        [
            str(CONSOLE_SCRIPT),
            "install",
            "--prefix",
            str(tmp_path / "one"),
            "--language",
            "javascript",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert only.returncode == 0, only.stderr
    kernels = tmp_path / "one" / "share" / "jupyter" / "kernels"
    assert [path.name for path in kernels.iterdir()] == ["sandbox-javascript"]


def test_this_environment_offers_both_kernelspecs():
    """`pip install` ships both as shared-data, so Jupyter finds them without an install step."""
    listing = subprocess.run(
        [sys.executable, "-m", "jupyter", "kernelspec", "list", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    kernelspecs = json.loads(listing.stdout)["kernelspecs"]
    assert kernelspecs["sandbox"]["spec"]["language"] == "python"
    assert kernelspecs["sandbox-javascript"]["spec"]["language"] == "javascript"


def test_the_python_kernelspec_lets_jupyterlab_offer_its_debugger(tmp_path):
    """JupyterLab enables its debugger button from the kernelspec's metadata alone; the kernel
    itself then answers whether this sandbox server forwards debugging. JavaScript never."""
    result = subprocess.run(
        [str(CONSOLE_SCRIPT), "install", "--prefix", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    kernels = tmp_path / "share" / "jupyter" / "kernels"
    python = json.loads((kernels / "sandbox" / "kernel.json").read_text())
    javascript = json.loads((kernels / "sandbox-javascript" / "kernel.json").read_text())
    assert (python["metadata"]["debugger"], javascript["metadata"]["debugger"]) == (True, False)
