"""Widgets and the debugger of sandbox code in real JupyterLab, in Chromium: a slider dragged
with the mouse, a tqdm bar that fills, a breakpoint that stops a cell."""

from __future__ import annotations

from playwright.sync_api import expect
from test_jupyterlab import ARTIFACTS, lab_url, last_output, pytestmark, run_cell  # noqa: F401
from test_jupyterlab import page as lab_page  # noqa: F401
from test_jupyterlab_outputs import open_notebook

SANDBOX = "Python 3 (Sandbox)"
TQDM_CELL = (
    "import time\nfrom tqdm.notebook import tqdm\nfor i in tqdm(range(20)):\n    time.sleep(0.05)"
)
DEBUGGED_CELL = "x = 21\ny = x * 2\nprint('y is', y)"


def cell_output(page, index: int):
    """The output area of the `index`th code cell of the visible notebook."""
    cell = page.locator(".jp-NotebookPanel:visible .jp-Cell.jp-CodeCell").nth(index)
    return cell.locator(".jp-OutputArea")


def wait_for_text(locator, text: str) -> None:
    """Wait until `locator`'s text, stripped, is `text`."""
    locator.page.wait_for_function(
        "([element, text]) => element.innerText.trim() === text",
        arg=[locator.element_handle(), text],
    )


def test_a_dragged_slider_sets_the_value_the_next_cell_prints(lab_page):  # noqa: F811
    page = lab_page
    open_notebook(page, SANDBOX)
    run_cell(page, "import ipywidgets as w\nslider = w.IntSlider(value=10, max=100)\nslider")
    output = cell_output(page, 0)
    handle = output.locator(".widget-slider .noUi-handle")
    handle.wait_for()
    readout = output.locator(".widget-readout")
    wait_for_text(readout, "10")
    track = output.locator(".widget-slider .noUi-target").bounding_box()
    start = handle.bounding_box()
    middle_y = start["y"] + start["height"] / 2
    page.mouse.move(start["x"] + start["width"] / 2, middle_y)
    page.mouse.down()
    page.mouse.move(track["x"] + track["width"] + 40, middle_y, steps=12)
    page.mouse.up()
    wait_for_text(readout, "100")
    run_cell(page, "print('value', slider.value)")
    assert last_output(page, "value").inner_text().strip() == "value 100"
    run_cell(page, "slider.value = 33")  # and the other way: the kernel moves the slider
    wait_for_text(readout, "33")
    page.screenshot(path=str(ARTIFACTS / "jupyterlab-widget-slider.png"))


def test_a_tqdm_loop_shows_a_progress_bar_widget_that_fills(lab_page):  # noqa: F811
    page = lab_page
    open_notebook(page, SANDBOX)
    run_cell(page, TQDM_CELL)
    output = cell_output(page, 0)
    output.locator(".widget-html", has_text="20/20").wait_for()
    bar = output.locator(".widget-hprogress .progress-bar")
    page.wait_for_function(
        "bar => bar.style.width === '100%' && bar.classList.contains('progress-bar-success')",
        arg=bar.element_handle(),
    )
    assert output.locator(".widget-html", has_text="100%").count() == 1
    assert output.locator("[data-mime-type='application/vnd.jupyter.stderr']").count() == 0
    page.screenshot(path=str(ARTIFACTS / "jupyterlab-widget-tqdm.png"))


def test_a_breakpoint_stops_the_cell_and_shows_its_variables(lab_page):  # noqa: F811
    page = lab_page
    open_notebook(page, SANDBOX)
    panel = page.locator(".jp-NotebookPanel:visible")
    # The bug's button is disabled until the kernel says it debugs: a click before that is lost.
    bug = panel.locator(".jp-DebuggerBugButton button")
    expect(bug).to_be_enabled(timeout=60_000)
    bug.click()
    expect(bug).to_have_attribute("aria-pressed", "true", timeout=30_000)
    page.locator(".jp-DebuggerVariables").first.wait_for()
    editor = panel.locator(".jp-Cell .cm-content").last
    editor.click()
    page.keyboard.insert_text(DEBUGGED_CELL)
    line = panel.locator(".jp-Cell .cm-line").nth(1)
    gutter = panel.locator(".jp-Cell .cm-breakpoint-gutter").last
    row, column = line.bounding_box(), gutter.bounding_box()
    page.mouse.click(column["x"] + column["width"] / 2, row["y"] + row["height"] / 2)
    page.keyboard.press("Shift+Enter")
    page.get_by_text("Paused in Debugger").wait_for()
    variables = page.locator(".jp-DebuggerVariables").first
    variables.get_by_text("21", exact=True).first.wait_for()
    shown = variables.inner_text()
    assert "x\n21" in shown and "\ny\n" not in shown  # stopped before line 2 ran
    page.screenshot(path=str(ARTIFACTS / "jupyterlab-debugger.png"))
    page.locator("button[title^='Continue']").first.click()
    assert last_output(page, "y is").inner_text().strip() == "y is 42"
