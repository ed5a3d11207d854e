"""Packages in the sandbox: `%pip install` writes into the sandbox's own environment."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(180)


def build_wheel(directory: Path, name: str, version: str, source: str) -> Path:
    """A pure-Python wheel with one module, made by hand (the format is a zip)."""
    dist_info = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": source.encode(),
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist_info}/WHEEL": "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }
    wheel = directory / f"{name}-{version}-py3-none-any.whl"
    record = []
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, content in files.items():
            data = content if isinstance(content, bytes) else content.encode()
            archive.writestr(path, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            record.append(f"{path},sha256={digest.decode()},{len(data)}")
        record.append(f"{dist_info}/RECORD,,")
        archive.writestr(f"{dist_info}/RECORD", "\n".join(record) + "\n")
    return wheel


def outputs(reply: dict) -> tuple[str, list[dict]]:
    results = reply["results"]
    stdout = "".join(entry["text"] for entry in results if entry["type"] == "stdout")
    return stdout, [entry for entry in results if entry["type"] == "error"]


def test_pip_installs_into_the_sandbox_and_the_next_cell_imports_it(sandbox, tmp_path):
    wheel = build_wheel(tmp_path, "greeting", "1.0", "def hello():\n    return 'hi'\n")
    remote = f"/home/user/{wheel.name}"
    sandbox.file_system.upload(str(wheel), remote)
    context = sandbox.context.create()
    installed, errors = outputs(context.execute(f"%pip install --no-index {remote}", timeout=120))
    assert not errors and "Successfully installed greeting-1.0" in installed, installed
    shown, errors = outputs(context.execute("import greeting; print(greeting.hello())"))
    assert (shown, errors) == ("hi\n", [])
    # Installed in the sandbox's files: a fresh interpreter (a kernel restart) still has it.
    again = sandbox.context.create()
    shown, errors = outputs(again.execute("import greeting, sys; print(greeting.__file__)"))
    assert not errors and shown.startswith("/home/user/.venv/"), shown
    # What the server itself has still imports, and pip leaves it alone.
    shown, errors = outputs(again.execute("import ipykernel, sys; print(sys.prefix)"))
    assert (shown, errors) == ("/home/user/.venv\n", [])


def test_shell_pip_uses_the_same_environment(sandbox):
    result = sandbox.process.cmd("pip --version && which python", "/home/user")["result"]
    assert result["exitCode"] == 0, result
    assert result["stdout"].splitlines()[-1] == "/home/user/.venv/bin/python"


def test_a_sandbox_that_removed_its_environment_still_starts_interpreters(sandbox):
    sandbox.process.cmd("rm -rf /home/user/.venv", "/home/user")
    fresh = sandbox.context.create()
    shown, errors = outputs(fresh.execute("import ipykernel; print('started')"))
    assert (shown, errors) == ("started\n", [])
