"""Templates: Python environments built on the server machine that sandboxes run on."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import RunningServer, attempt, run, start_server
from test_packages import build_wheel

from sandbox_kernel import CodeInterpreterSandbox

pytestmark = pytest.mark.timeout(180)


def template(directory: Path, *arguments: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "sandbox_kernel.cli", "template", "--dir", str(directory)]
    return subprocess.run([*command, *arguments], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def templates(tmp_path_factory) -> Path:
    """A templates directory holding `science`, whose only extra package is `stars`."""
    directory = tmp_path_factory.mktemp("templates")
    wheels = tmp_path_factory.mktemp("wheels")
    wheel = build_wheel(wheels, "stars", "1.0", "def count():\n    return 42\n")
    requirements = wheels / "requirements.txt"
    requirements.write_text(f"{wheel}\n")
    built = template(directory, "add", "science", "--requirements", str(requirements))
    assert built.returncode == 0, built.stderr
    return directory


@pytest.fixture(scope="module")
def templated(tmp_path_factory, templates) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("templated"), "--templates", str(templates))
    yield running
    running.stop()


def test_a_package_of_a_template_imports_only_in_its_sandboxes(templated):
    server = {"endpoint": templated.url, "token": templated.token}
    with CodeInterpreterSandbox.create("science", **server) as science:
        assert run(science, "import stars; print(stars.count())") == "42\n"
        assert science.check_health()["template"] == "science"
        site = run(science, "import stars, os; print(os.path.dirname(stars.__file__))").strip()
        assert attempt(science, f"open({site + '/planted.py'!r}, 'w')") == "EROFS"
        science.delete()
    with CodeInterpreterSandbox.create("default", **server) as default:
        shown = run(default, "import importlib.util; print(importlib.util.find_spec('stars'))")
        assert shown == "None\n"
        default.delete()


def test_health_lists_the_templates(templated):
    headers = {"X-API-Key": templated.token}
    health = httpx.get(f"{templated.url}/health", headers=headers, timeout=10).json()
    assert health["templates"] == ["science"]


def test_templates_are_listed_refused_twice_and_removed(tmp_path, templates):
    listed = template(templates, "ls")
    assert listed.returncode == 0 and listed.stdout.startswith("science\t")
    again = template(templates, "add", "science", "--python", sys.prefix)
    assert again.returncode == 1 and "exists already" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1
    own = tmp_path / "own"
    assert template(own, "add", "mine", "--python", sys.prefix).returncode == 0
    assert template(own, "rm", "mine").returncode == 0
    assert template(own, "ls").stdout == ""
    missing = template(own, "rm", "mine")
    assert missing.returncode == 1 and "no template 'mine'" in missing.stderr
