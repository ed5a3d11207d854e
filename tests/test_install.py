"""`sandbox-kernel install`: a kernelspec pinned to this Python, found by `jupyter kernelspec`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

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


# ---- the magics install inside the package; no top-level `magics` module

ROOT = Path(__file__).resolve().parents[1]
IMPORTS = (
    "import importlib.util, sys\n"
    "from sandbox_kernel.magics import SandboxBrowser, load_ipython_extension\n"
    "print(SandboxBrowser.__module__, importlib.util.find_spec('magics'))\n"
)


def imports_from(python: Path | str, folder: Path) -> str:
    """What `IMPORTS` prints when `python` runs it in `folder` (not the checkout)."""
    result = subprocess.run(
        [str(python), "-c", IMPORTS], cwd=folder, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_this_environment_has_sandbox_kernel_magics_and_no_magics_module(tmp_path):
    """Editable or not, the installed project offers the magics only inside the package."""
    assert imports_from(sys.executable, tmp_path) == "sandbox_kernel.magics.browser None"


@pytest.mark.slow
def test_a_wheel_in_a_fresh_venv_has_sandbox_kernel_magics_and_no_magics_module(tmp_path):
    wheels, venv = tmp_path / "wheels", tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = wheels.glob("sandbox_kernel-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert "sandbox_kernel/magics/__init__.py" in names
    assert "sandbox_kernel/magics/sbx.py" in names
    assert not [name for name in names if name.split("/")[0] == "magics"]

    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", str(wheel)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    assert imports_from(python, tmp_path) == "sandbox_kernel.magics.browser None"
    plain = subprocess.run(
        [str(python), "-c", "import magics"], cwd=tmp_path, capture_output=True, text=True
    )
    assert plain.returncode != 0
    assert "No module named 'magics'" in plain.stderr


def test_both_extension_names_load_the_magics_in_ipython(tmp_path):
    for extension in ("sandbox_kernel", "sandbox_kernel.magics"):
        cell = f"%load_ext {extension}\n%sbx help ls"
        result = subprocess.run(
            [sys.executable, "-m", "IPython", "--quick", "--no-banner", "-c", cell],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("usage: %sbx ls"), (extension, result.stdout)
