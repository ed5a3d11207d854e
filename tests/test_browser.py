"""The sandbox browser widget driven from Python against the tests' server (clicks are the
widgets' own `click()`), and `%sbx browse` through a real sandbox kernel."""

from __future__ import annotations

import base64
import hashlib
import html
import os
import re
import struct
import time
import zlib
from collections.abc import Iterator
from datetime import datetime, timezone

import ipywidgets as widgets
import nbformat
import pytest
from magics_support import MagicsKernel, sha256_of
from nbconvert import HTMLExporter

from sandbox_kernel import SandboxError, SandboxNotFoundError
from sandbox_kernel.magics import SandboxBrowser

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><rect width="4"/></svg>'


def png(width: int = 2, height: int = 2) -> bytes:
    """A small red PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


@pytest.fixture
def listings(sandbox, monkeypatch) -> list[tuple[str, int | None]]:
    """The (path, depth) of every directory listing the sandbox answers."""
    calls: list[tuple[str, int | None]] = []
    listing = sandbox.file_system.list

    def recorded(path: str | None = None, depth: int | None = None):
        calls.append((path, depth))
        return listing(path, depth)

    monkeypatch.setattr(sandbox.file_system, "list", recorded)
    return calls


def write(sandbox, path: str, content: str | bytes) -> None:
    if isinstance(content, bytes):
        sandbox.file.write(path, base64.b64encode(content).decode(), encoding="base64")
    else:
        sandbox.file.write(path, content)


def exists(sandbox, path: str) -> bool:
    try:
        sandbox.file_system.stat(path)
    except SandboxNotFoundError:
        return False
    return True


def rows(browser: SandboxBrowser) -> list[str]:
    """The tree's lines as shown: names (folders with ▸ or ▾), indented two spaces a level."""
    shown = []
    for line in browser.tree.children:
        button = line.children[0] if isinstance(line, widgets.HBox) else line
        depth = button_depth(browser, button)
        shown.append("  " * depth + button.description)
    return shown


def button_depth(browser: SandboxBrowser, button: widgets.Widget) -> int:
    for depth, layout in browser._name_layouts.items():
        if button.layout is layout:
            return depth
    raise AssertionError(f"not a tree line: {button!r}")


def line(browser: SandboxBrowser, name: str) -> widgets.Button:
    """The tree's button for the entry called `name`."""
    for shown in browser.tree.children:
        if isinstance(shown, widgets.HBox):
            button = shown.children[0]
            if button.description.lstrip("▸▾ ").rstrip("/") == name:
                return button
    raise AssertionError(f"{name} is not in the tree: {rows(browser)}")


def more_button(browser: SandboxBrowser) -> widgets.Button:
    (button,) = [shown for shown in browser.tree.children if isinstance(shown, widgets.Button)]
    return button


def status(browser: SandboxBrowser) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", browser.status.value))


def preview_text(browser: SandboxBrowser) -> str:
    return html.unescape(
        " | ".join(
            re.sub(r"<[^>]+>", " ", part.value)
            for part in browser.preview.children
            if isinstance(part, widgets.HTML)
        )
    )


def preview_pre(browser: SandboxBrowser) -> str:
    (pre,) = [
        part.value
        for part in browser.preview.children
        if isinstance(part, widgets.HTML) and part.value.startswith("<pre")
    ]
    return html.unescape(re.sub(r"<[^>]+>", "", pre))


def confirmation_shown(browser: SandboxBrowser) -> bool:
    return browser.confirmation.layout.display != "none"


def uploaded(name: str, content: bytes) -> dict:
    """A FileUpload value item, as the frontend sends it."""
    return {
        "name": name,
        "type": "application/octet-stream",
        "size": len(content),
        "content": memoryview(content),
        "last_modified": datetime.now(timezone.utc),
    }


# ---- the tree


def test_folders_open_lazily_one_listing_each_never_deeper(sandbox, listings):
    write(sandbox, "/home/user/top.txt", "top")
    write(sandbox, "/home/user/a/b/c/deep.txt", "deep")
    write(sandbox, "/home/user/a/inside.txt", "inside")
    browser = SandboxBrowser("/home/user", sandbox=sandbox)
    assert listings == [("/home/user", 1)]
    assert rows(browser) == ["▸ a/", "top.txt"]

    line(browser, "a").click()
    assert listings == [("/home/user", 1), ("/home/user/a", 1)]
    assert rows(browser) == ["▾ a/", "  ▸ b/", "  inside.txt", "top.txt"]

    line(browser, "a").click()
    assert rows(browser) == ["▸ a/", "top.txt"]
    line(browser, "a").click()
    assert len(listings) == 2  # opened again from what was listed
    assert rows(browser)[1:3] == ["  ▸ b/", "  inside.txt"]

    write(sandbox, "/home/user/a/new.txt", "new")
    browser.refresh_button.click()
    assert listings[2:] == [("/home/user", 1), ("/home/user/a", 1)]
    assert "  new.txt" in rows(browser)
    assert status(browser) == "Listed /home/user again."


def test_entries_show_type_size_and_modification_time(sandbox):
    write(sandbox, "/home/user/data/values.csv", "x\n" * 1000)
    browser = SandboxBrowser("/home/user/data", sandbox=sandbox)
    details = browser.tree.children[0].children[1].value
    assert ">file<" in details
    assert ">2.0 KiB<" in details
    assert re.search(r">\d{4}-\d\d-\d\d \d\d:\d\d<", details)
    assert browser.path_bar.value == "/home/user/data"


def test_hidden_entries_show_when_asked(sandbox):
    write(sandbox, "/home/user/.secret", "s")
    write(sandbox, "/home/user/plain.txt", "p")
    browser = SandboxBrowser("/home/user", sandbox=sandbox)
    assert ".secret" not in rows(browser)
    browser.hidden_toggle.value = True
    assert ".secret" in rows(browser)


def test_a_large_folder_shows_a_page_then_more_on_demand(sandbox, listings):
    for number in range(25):
        write(sandbox, f"/home/user/many/f{number:02}.txt", str(number))
    browser = SandboxBrowser("/home/user/many", sandbox=sandbox, page_size=10)
    assert rows(browser)[:10] == [f"f{number:02}.txt" for number in range(10)]
    assert rows(browser)[10] == "show 10 more (15 not shown)"

    more_button(browser).click()
    assert len(rows(browser)) == 21
    assert rows(browser)[-1] == "show 5 more (5 not shown)"
    more_button(browser).click()
    assert rows(browser) == [f"f{number:02}.txt" for number in range(25)]
    assert len(listings) == 1


def test_the_path_bar_and_up_button_move_the_tree(sandbox):
    write(sandbox, "/home/user/one/two/file.txt", "x")
    browser = SandboxBrowser("/home/user", sandbox=sandbox)
    browser.path_bar.value = "one/two"
    assert browser.path == "/home/user/one/two"
    assert rows(browser) == ["file.txt"]
    browser.up_button.click()
    assert browser.path == "/home/user/one"
    assert browser.path_bar.value == "/home/user/one"
    assert rows(browser) == ["▸ two/"]


def test_a_file_path_opens_its_folder_with_the_file_selected(sandbox):
    write(sandbox, "/home/user/docs/readme.md", "# hello")
    browser = SandboxBrowser("/home/user/docs/readme.md", sandbox=sandbox)
    assert browser.path == "/home/user/docs"
    assert browser.selected == ["/home/user/docs/readme.md"]
    assert preview_pre(browser) == "# hello"


def test_a_missing_path_is_an_error_at_construction(sandbox):
    with pytest.raises(SandboxNotFoundError, match="/home/user/nowhere"):
        SandboxBrowser("/home/user/nowhere", sandbox=sandbox)


# ---- selection


def test_clicking_selects_and_observers_see_the_selection(sandbox):
    write(sandbox, "/home/user/a.txt", "a")
    write(sandbox, "/home/user/b.txt", "b")
    write(sandbox, "/home/user/sub/c.txt", "c")
    browser = SandboxBrowser("/home/user", sandbox=sandbox)
    seen: list[list[str]] = []
    browser.observe(lambda change: seen.append(change["new"]), "selected")

    line(browser, "a.txt").click()
    line(browser, "b.txt").click()
    assert seen == [["/home/user/a.txt"], ["/home/user/b.txt"]]
    assert line(browser, "b.txt").style is browser._selected_style
    assert line(browser, "a.txt").style is browser._plain_style
    assert browser.directory == "/home/user"

    browser.several_toggle.value = True
    line(browser, "a.txt").click()
    assert browser.selected == ["/home/user/b.txt", "/home/user/a.txt"]
    line(browser, "b.txt").click()
    assert browser.selected == ["/home/user/a.txt"]

    browser.several_toggle.value = False
    line(browser, "sub").click()
    assert browser.selected == ["/home/user/sub"]
    assert browser.directory == "/home/user/sub"
    assert "In /home/user/sub:" in html.unescape(re.sub(r"<[^>]+>", "", browser.target.value))


def test_selected_can_be_set_from_python(sandbox):
    write(sandbox, "/home/user/notes.txt", "set from python")
    browser = SandboxBrowser("/home/user", sandbox=sandbox)
    browser.selected = ["notes.txt"]
    assert browser.selected == ["/home/user/notes.txt"]
    assert preview_pre(browser) == "set from python"


# ---- preview


def test_a_text_file_previews_as_text(sandbox):
    write(sandbox, "/home/user/poem.txt", "roses <are> red\nviolets & blue\n")
    browser = SandboxBrowser("/home/user", sandbox=sandbox)
    line(browser, "poem.txt").click()
    assert preview_pre(browser) == "roses <are> red\nviolets & blue\n"
    assert "text/plain" in preview_text(browser)
    assert "Truncated" not in preview_text(browser)


@pytest.mark.parametrize("size", [200_000, 3_000_000], ids=["read whole", "read the start"])
def test_a_large_text_file_previews_its_first_64_kib_with_a_note(sandbox, size):
    text = "".join(f"line {number:07}\n" for number in range(size // 13 + 1))
    write(sandbox, "/home/user/big.log", text)
    browser = SandboxBrowser("/home/user", sandbox=sandbox)
    line(browser, "big.log").click()
    shown = preview_pre(browser)
    assert len(shown.encode()) == 64 * 1024
    assert text.startswith(shown)
    assert "Truncated: the first 64.0 KiB are shown." in preview_text(browser)


def test_a_text_file_cut_inside_a_character_still_previews(sandbox):
    write(sandbox, "/home/user/accents.txt", "x" + "é" * 40_000)  # 64 KiB ends inside an é
    browser = SandboxBrowser("/home/user", sandbox=sandbox)
    line(browser, "accents.txt").click()
    assert preview_pre(browser) == "x" + "é" * (64 * 1024 // 2 - 1)


@pytest.mark.parametrize(
    ("name", "content", "image_format"),
    [("dot.png", png(), "png"), ("dot.gif", GIF, "gif"), ("box.svg", SVG.encode(), "svg+xml")],
)
def test_images_are_rendered(sandbox, name, content, image_format):
    write(sandbox, f"/home/user/{name}", content)
    browser = SandboxBrowser("/home/user", sandbox=sandbox)
    line(browser, name).click()
    (image,) = [part for part in browser.preview.children if isinstance(part, widgets.Image)]
    assert image.value == content
    assert image.format == image_format


def test_other_files_show_their_size_and_type(sandbox):
    write(sandbox, "/home/user/blob.bin", bytes(range(256)) * 10)
    browser = SandboxBrowser("/home/user", sandbox=sandbox)
    line(browser, "blob.bin").click()
    shown = preview_text(browser)
    assert "application/octet-stream, 2.5 KiB" in shown
    assert "Not a text file or an image" in shown
    assert not any(isinstance(part, widgets.Image) for part in browser.preview.children)


# ---- actions


def test_download_copies_the_selection_byte_for_byte_with_a_progress_bar(sandbox, tmp_path):
    big = os.urandom(3 * 2**20 + 17)
    write(sandbox, "/home/user/big.bin", big)
    write(sandbox, "/home/user/results/a.txt", "a")
    write(sandbox, "/home/user/results/deeper/b.txt", "b")
    browser = SandboxBrowser("/home/user", sandbox=sandbox)
    progress: list[float] = []
    shown: list[str | None] = []
    browser.progress.observe(lambda change: progress.append(change["new"]), "value")
    browser.progress_box.layout.observe(lambda change: shown.append(change["new"]), "display")

    browser.several_toggle.value = True
    line(browser, "big.bin").click()
    line(browser, "results").click()
    browser.download_to.value = str(tmp_path / "copies")
    browser.download_button.click()

    copies = tmp_path / "copies"
    assert hashlib.sha256(big).hexdigest() == sha256_of(copies / "big.bin")
    assert (copies / "results/a.txt").read_text() == "a"
    assert (copies / "results/deeper/b.txt").read_text() == "b"
    assert max(progress) == len(big) + 2
    assert len(progress) > 2
    assert shown == [None, "none"]
    assert status(browser) == f"Downloaded 3 files (3.0 MiB) to {copies}."


def test_upload_writes_the_files_into_the_current_folder(sandbox):
    write(sandbox, "/home/user/inbox/old.txt", "old")
    browser = SandboxBrowser("/home/user", sandbox=sandbox)
    line(browser, "inbox").click()
    payload = os.urandom(70_000)
    browser.upload.value = (uploaded("data.bin", payload), uploaded("note.txt", b"hi"))

    assert base64.b64decode(sandbox.file.read("/home/user/inbox/data.bin")["content"]) == payload
    assert sandbox.file.read("/home/user/inbox/note.txt")["content"] == "hi"
    assert "  data.bin" in rows(browser)
    assert browser.upload.value == ()
    assert status(browser) == "Uploaded 2 files to /home/user/inbox (68.4 KiB)."


def test_new_folder_is_made_in_the_current_folder(sandbox):
    write(sandbox, "/home/user/work/file.txt", "x")
    browser = SandboxBrowser("/home/user", sandbox=sandbox)
    line(browser, "work").click()
    browser.new_folder_button.click()
    assert confirmation_shown(browser)
    assert browser.question.value == "New folder in <code>/home/user/work</code>:"
    browser.answer.value = "plots"
    browser.confirm_button.click()
    assert sandbox.file_system.stat("/home/user/work/plots")["type"] == "dir"
    assert "  ▸ plots/" in rows(browser)
    assert not confirmation_shown(browser)
    assert status(browser) == "Created /home/user/work/plots."


def test_rename_moves_the_selected_entry_and_keeps_it_selected(sandbox):
    write(sandbox, "/home/user/draft.txt", "text")
    browser = SandboxBrowser("/home/user", sandbox=sandbox)
    line(browser, "draft.txt").click()
    browser.rename_button.click()
    assert browser.answer.value == "draft.txt"
    browser.answer.value = "final.txt"
    browser.confirm_button.click()
    assert not exists(sandbox, "/home/user/draft.txt")
    assert sandbox.file.read("/home/user/final.txt")["content"] == "text"
    assert rows(browser) == ["final.txt"]
    assert browser.selected == ["/home/user/final.txt"]
    assert status(browser) == "Renamed /home/user/draft.txt to /home/user/final.txt."


def test_delete_asks_first_and_cancel_keeps_everything(sandbox):
    write(sandbox, "/home/user/keep.txt", "keep")
    write(sandbox, "/home/user/old/inner.txt", "old")
    browser = SandboxBrowser("/home/user", sandbox=sandbox)
    line(browser, "keep.txt").click()
    browser.delete_button.click()
    assert confirmation_shown(browser)
    assert "Delete <code>keep.txt</code>?" in browser.question.value
    assert browser.confirm_button.description == "Delete"
    browser.cancel_button.click()
    assert exists(sandbox, "/home/user/keep.txt")
    assert status(browser) == "Cancelled."

    line(browser, "old").click()
    browser.delete_button.click()
    assert "with everything in it" in browser.question.value
    browser.confirm_button.click()
    assert not exists(sandbox, "/home/user/old")
    assert rows(browser) == ["keep.txt"]
    assert browser.selected == []
    assert status(browser) == "Deleted /home/user/old."


# ---- errors stay in the widget


def test_deleting_a_path_that_vanished_shows_the_error_and_the_widget_goes_on(sandbox):
    write(sandbox, "/home/user/gone.txt", "soon gone")
    write(sandbox, "/home/user/stays.txt", "stays")
    browser = SandboxBrowser("/home/user", sandbox=sandbox)
    line(browser, "gone.txt").click()
    sandbox.file_system.remove("/home/user/gone.txt")
    browser.delete_button.click()
    browser.confirm_button.click()
    assert status(browser).startswith(
        "Error: could not delete /home/user/gone.txt (0 of 1 deleted)"
    )
    assert "gone.txt" in status(browser)
    assert rows(browser) == ["stays.txt"]  # listed again: the tree shows what is there

    line(browser, "stays.txt").click()
    assert preview_pre(browser) == "stays"
    browser.new_folder_button.click()
    browser.answer.value = "after"
    browser.confirm_button.click()
    assert status(browser) == "Created /home/user/after."


def test_bad_input_is_an_error_line_not_an_exception(sandbox):
    write(sandbox, "/home/user/file.txt", "x")
    browser = SandboxBrowser("/home/user", sandbox=sandbox)
    browser.rename_button.click()
    assert status(browser) == "Error: select one file or folder to rename"
    browser.path_bar.value = "/home/user/missing"
    assert status(browser) == "Error: no such directory: /home/user/missing"
    assert browser.path_bar.value == "/home/user"
    assert rows(browser) == ["file.txt"]
    line(browser, "file.txt").click()
    browser.download_to.value = str(os.devnull) + "/inside"
    browser.download_button.click()
    assert status(browser).startswith("Error: ")
    assert not confirmation_shown(browser)


def test_a_preview_that_fails_says_why(sandbox):
    write(sandbox, "/home/user/flaky.txt", "x")
    browser = SandboxBrowser("/home/user", sandbox=sandbox)
    sandbox.file_system.remove("/home/user/flaky.txt")
    line(browser, "flaky.txt").click()
    assert status(browser) == "Error: no such file: /home/user/flaky.txt"
    assert "flaky.txt" in preview_text(browser)


# ---- where widgets do not render


def test_the_display_carries_a_text_and_html_listing(sandbox):
    write(sandbox, "/home/user/report.csv", "a,b\n")
    write(sandbox, "/home/user/plots/fig.png", png())
    browser = SandboxBrowser("/home/user", sandbox=sandbox)
    bundle = browser._repr_mimebundle_()
    assert bundle[WIDGET_VIEW]["model_id"] == browser.model_id
    text = bundle["text/plain"].splitlines()
    assert text[0] == "/home/user:"
    assert text[1].split() == ["type", "size", "modified", "name"]
    assert text[2].split()[0] == "dir" and text[2].endswith("plots/")
    assert text[3].split()[:3] == ["file", "4", "B"] and text[3].endswith("report.csv")
    assert "<td>report.csv</td>" in bundle["text/html"]


def test_nbconvert_html_without_widget_state_shows_the_listing(sandbox):
    write(sandbox, "/home/user/report.csv", "a,b\n")
    browser = SandboxBrowser("/home/user", sandbox=sandbox)
    notebook = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("%sbx browse /home/user", execution_count=1)
    cell.outputs = [
        nbformat.v4.new_output(
            "execute_result", data=browser._repr_mimebundle_(), execution_count=1
        )
    ]
    notebook.cells = [cell]
    body, _ = HTMLExporter().from_notebook_node(notebook)
    assert "<td>report.csv</td>" in body


# ---- where the sandbox comes from


def test_without_a_sandbox_or_the_magics_the_error_says_what_to_do():
    with pytest.raises(SandboxError, match=r"pass sandbox=\.\.\., or load the magics first"):
        SandboxBrowser("/home/user")


def test_python_in_a_python3_kernel_browses_the_magics_sandbox(server, tmp_path):
    kernel = MagicsKernel("python3", server, tmp_path)
    try:
        kernel.ok("%%sbx write /home/user/from-python.txt\nhi")
        kernel.ok(
            "from sandbox_kernel.magics import SandboxBrowser\n"
            "browser = SandboxBrowser('/home/user')\n"
            "seen = []\n"
            "browser.observe(lambda change: seen.append(change['new']), 'selected')\n"
            "browser.selected = ['from-python.txt']"
        )
        assert kernel.local("seen") == "[['/home/user/from-python.txt']]"
        bundle = kernel.result("browser")
        assert WIDGET_VIEW in bundle
        assert bundle["text/plain"].endswith("from-python.txt")
    finally:
        kernel.shutdown()


# ---- `%sbx browse` in the sandbox kernel


@pytest.fixture(scope="module")
def kernel(server, tmp_path_factory) -> Iterator[MagicsKernel]:
    running = MagicsKernel("sandbox", server, tmp_path_factory.mktemp("browse-kernel"))
    yield running
    running.shutdown()


def widget_states(outputs: list[tuple[str, dict]]) -> dict[str, dict]:
    """comm id -> state of every widget a cell created."""
    return {
        content["comm_id"]: content["data"]["state"]
        for kind, content in outputs
        if kind == "comm_open"
    }


def test_sbx_browse_returns_the_widget_with_a_listing(kernel):
    kernel.ok("%%sbx write /home/user/listed/hello.txt\nhello")
    outputs = kernel.ok("%sbx browse /home/user/listed --to downloads")
    (bundle,) = [content["data"] for kind, content in outputs if kind == "execute_result"]
    assert WIDGET_VIEW in bundle
    assert bundle["text/plain"].splitlines()[0] == "/home/user/listed:"
    assert bundle["text/plain"].endswith("hello.txt")
    states = widget_states(outputs)
    assert any(state.get("description") == "hello.txt" for state in states.values())
    assert kernel.local("(type(_).__name__, _.path, _.selected, _.download_to.value)") == (
        "('SandboxBrowser', '/home/user/listed', [], 'downloads')"
    )


def test_sbx_browse_rejects_a_bad_page_size_and_a_missing_path(kernel):
    reply = kernel.failure("%sbx browse --page-size 0")
    assert "--page-size must be 1 or more" in reply["evalue"]
    reply = kernel.failure("%sbx browse /home/user/no-such-folder")
    assert "no such directory: /home/user/no-such-folder" in reply["evalue"]


def test_the_widget_answers_while_a_long_remote_cell_runs(kernel):
    kernel.ok("%%sbx write /home/user/live/inner/file.txt\nx")
    outputs = kernel.ok("%sbx browse /home/user/live")
    states = widget_states(outputs)
    (folder,) = [comm for comm, state in states.items() if state.get("description") == "▸ inner/"]

    client = kernel.client
    running = client.execute("import time; time.sleep(3)")
    time.sleep(0.5)
    click = client.session.msg(
        "comm_msg",
        {"comm_id": folder, "data": {"method": "custom", "content": {"event": "click"}}},
    )
    client.shell_channel.send(click)
    clicked_at = time.monotonic()
    opened_at = finished_at = None
    while finished_at is None:
        message = client.get_iopub_msg(timeout=30)
        content = message["content"]
        state = content.get("data", {}).get("state", {}) if "comm_id" in content else {}
        if content.get("comm_id") == folder and state.get("description") == "▾ inner/":
            opened_at = time.monotonic()
        parent = message["parent_header"].get("msg_id")
        if parent == running and content.get("execution_state") == "idle":
            finished_at = time.monotonic()
    assert opened_at is not None
    assert opened_at - clicked_at < 2
    assert finished_at - opened_at > 1
