"""The product where users use it: JupyterLab in a real Chromium, driven by Playwright."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

playwright_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = shutil.which("chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
LAB_TOKEN = "lab-test-token"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
if CHROMIUM is None and IN_CI:
    raise RuntimeError("CI must run the JupyterLab tests: Debian's chromium is not installed")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def lab_url(server, tmp_path_factory) -> Iterator[str]:
    """`jupyter lab` on loopback with a token, in a temporary root, kernels on the test server."""
    root = tmp_path_factory.mktemp("lab-root")
    port = free_port()
    # JupyterLab's prompt about news would cover the page (and the screenshots).
    news = root / ".jupyter-config/lab/user-settings/@jupyterlab/apputils-extension"
    news.mkdir(parents=True)
    (news / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    env = {
        **os.environ,
        "SANDBOX_KERNEL_ENDPOINT": server.url,
        "SANDBOX_KERNEL_TOKEN": server.token,
        "JUPYTER_CONFIG_DIR": str(root / ".jupyter-config"),
        "JUPYTERLAB_WORKSPACES_DIR": str(root / ".workspaces"),
    }
    log = open(root.parent / "jupyterlab.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter",
            "lab",
            "--no-browser",
            "--allow-root",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            f"--IdentityProvider.token={LAB_TOKEN}",
            f"--ServerApp.root_dir={root}",
            "--LabApp.news_url=",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/api/status", params={"token": LAB_TOKEN}).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            raise RuntimeError(f"jupyter lab exited; see {log.name}")
        time.sleep(0.3)
    else:
        process.kill()
        raise RuntimeError(f"jupyter lab did not start; see {log.name}")
    yield url
    process.terminate()
    process.wait(timeout=30)
    log.close()


@pytest.fixture(scope="module")
def page(lab_url) -> Iterator:
    """A Chromium page showing JupyterLab."""
    ARTIFACTS.mkdir(exist_ok=True)
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(60_000)
        page.goto(f"{lab_url}/lab?token={LAB_TOKEN}")
        yield page
        browser.close()


@pytest.fixture(scope="module")
def notebook(page):
    """A new notebook on the "Python 3 (Sandbox)" kernel, opened from the launcher."""
    card = page.locator(".jp-LauncherCard[data-category='Notebook']", has_text="Python 3 (Sandbox)")
    card.first.click()
    page.locator(".jp-NotebookPanel .jp-Notebook").first.wait_for()
    page.get_by_text("Python 3 (Sandbox) | Idle").first.wait_for()
    page.wait_for_timeout(1500)  # the kernel's websocket settles after the first idle
    return page


def run_cell(page, code: str) -> None:
    """Type code into the last cell and run it with Shift+Enter (which adds a new cell)."""
    editor = page.locator(".jp-NotebookPanel:visible .jp-Cell .cm-content").last
    editor.click()
    page.keyboard.insert_text(code)
    page.keyboard.press("Shift+Enter")


def last_output(page, text: str):
    output = page.locator(".jp-NotebookPanel:visible .jp-OutputArea-output", has_text=text)
    output.last.wait_for()
    return output.last


def test_a_cell_runs_in_the_sandbox_and_shows_its_result(notebook):
    run_cell(notebook, "print(6 * 7)")
    assert last_output(notebook, "42").inner_text().strip() == "42"
    notebook.screenshot(path=str(ARTIFACTS / "jupyterlab-print.png"))


def test_a_failing_cell_shows_the_remote_error(notebook):
    run_cell(notebook, "1 / 0")
    error = last_output(notebook, "ZeroDivisionError")
    assert "division by zero" in error.inner_text()
    notebook.screenshot(path=str(ARTIFACTS / "jupyterlab-error.png"))


def test_sbx_status_says_where_cells_run(notebook, server):
    run_cell(notebook, "%sbx status")
    status = last_output(notebook, "isolation")
    assert server.url in status.inner_text()


def test_browse_shows_the_tree_opens_a_folder_and_previews_a_text_file(notebook):
    run_cell(notebook, "%%sbx write /home/user/hello.txt\nhello from the sandbox\nsecond line")
    last_output(notebook, "Wrote /home/user/hello.txt")
    run_cell(notebook, "%%sbx write /home/user/project/readme.md\n# Project\nread me first")
    last_output(notebook, "Wrote /home/user/project/readme.md")
    run_cell(notebook, "%sbx browse /home/user")
    browser = last_output(notebook, "hello.txt")
    tree_button = browser.locator("button.widget-button")
    tree_button.filter(has_text="hello.txt").wait_for()
    assert browser.locator("input[type='text']").first.input_value() == "/home/user"

    tree_button.filter(has_text="project/").click()
    tree_button.filter(has_text="readme.md").wait_for()
    assert "▾ project/" in tree_button.filter(has_text="project/").inner_text()

    tree_button.filter(has_text="hello.txt").click()
    preview = browser.locator("pre", has_text="hello from the sandbox")
    preview.wait_for()
    assert preview.inner_text() == "hello from the sandbox\nsecond line\n"
    browser.screenshot(path=str(ARTIFACTS / "jupyterlab-browse.png"))
    notebook.screenshot(path=str(ARTIFACTS / "jupyterlab-browse-page.png"))


def test_browse_uploads_a_file_chosen_in_the_browser(notebook, tmp_path):
    local = tmp_path / "chosen.txt"
    local.write_text("picked in chromium")
    run_cell(notebook, "%sbx mkdir /home/user/inbox")
    run_cell(notebook, "%sbx browse /home/user/inbox")
    last_output(notebook, "(empty folder)")
    browser = notebook.locator(".jp-NotebookPanel:visible .jp-OutputArea-output").last
    with notebook.expect_file_chooser() as chooser:
        browser.locator("button", has_text="Upload").click()
    chooser.value.set_files(str(local))
    browser.get_by_text("Uploaded chosen.txt to /home/user/inbox (18 B).").wait_for()
    browser.locator("button.widget-button", has_text="chosen.txt").click()
    browser.locator("pre", has_text="picked in chromium").wait_for()
    browser.screenshot(path=str(ARTIFACTS / "jupyterlab-browse-upload.png"))
