"""In real JupyterLab, what sandbox code displays cannot run script in the user's browser
(from there it could use the Jupyter server's API, which runs code on the host). python3's
own outputs, which are the user's, still run: the same cell there is the control."""

from __future__ import annotations

from test_jupyterlab import ARTIFACTS, lab_url, last_output, pytestmark, run_cell  # noqa: F401
from test_jupyterlab import page as lab_page  # noqa: F401

ATTACK = (
    "from IPython.display import HTML, Javascript, display\n"
    'display(HTML(\'<b>shown in bold</b><img src="nowhere.png" '
    'onerror="window.fromSandbox = (window.fromSandbox || 0) + 1">\''
    " + '<script>window.fromSandbox = (window.fromSandbox || 0) + 10</script>'))\n"
    "display(Javascript('window.fromSandbox = (window.fromSandbox || 0) + 100'))"
)


def open_notebook(page, kernel_card: str) -> None:
    """A new notebook on `kernel_card`, from a new launcher."""
    page.locator(".lm-MenuBar-itemLabel", has_text="File").click()
    page.locator(".lm-Menu-itemLabel", has_text="New Launcher").click()
    card = page.locator(".jp-LauncherCard[data-category='Notebook']:visible", has_text=kernel_card)
    card.first.click()
    page.get_by_text(f"{kernel_card} | Idle").first.wait_for()
    page.wait_for_timeout(1500)  # the kernel's websocket settles after the first idle


def test_sandbox_html_and_javascript_run_no_script_in_the_browser(lab_page):  # noqa: F811
    page = lab_page
    page.get_by_text("Python 3 (Sandbox)").first.wait_for()
    open_notebook(page, "Python 3 (Sandbox)")
    run_cell(page, ATTACK)
    shown = last_output(page, "shown in bold")
    assert shown.locator("b").inner_text() == "shown in bold"
    page.wait_for_timeout(1000)  # an image error or a script would have run by now
    assert page.evaluate("window.fromSandbox") is None
    page.screenshot(path=str(ARTIFACTS / "jupyterlab-sandbox-html.png"))

    open_notebook(page, "Python 3 (ipykernel)")
    run_cell(page, ATTACK)
    last_output(page, "shown in bold")
    page.wait_for_function("window.fromSandbox === 111")
