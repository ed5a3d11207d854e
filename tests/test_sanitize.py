"""What sandbox code displays, made safe for the browser: the bundle rules on their own."""

from __future__ import annotations

from sandbox_kernel.kernel.outputs import message_for
from sandbox_kernel.kernel.sanitize import safe_bundle

TABLE = '<table class="dataframe"><tbody><tr><th>a</th></tr><tr><td>1</td></tr></tbody></table>'


def test_html_keeps_what_shows_and_loses_what_runs():
    cleaned = safe_bundle(
        {
            "text/html": TABLE + '<img src="x.png" onerror="steal()"><script>steal()</script>'
            '<a href="javascript:steal()">link</a><iframe src="/lab"></iframe>'
            '<div style="position:fixed">over</div>',
            "text/plain": "a table",
        }
    )
    assert cleaned["text/plain"] == "a table"
    html = cleaned["text/html"]
    assert TABLE in html and '<img src="x.png">' in html and "<div>over</div>" in html
    for gone in ("onerror", "<script", "steal()", "javascript:", "<iframe", "position"):
        assert gone not in html


def test_scripts_and_unknown_renderers_are_left_out_and_said_so():
    assert safe_bundle({"application/javascript": "steal()", "text/plain": "<JS>"}) == {
        "text/plain": "<JS>"
    }
    note = safe_bundle({"application/vnd.bokehjs_exec.v0+json": {}})["text/plain"]
    assert "application/vnd.bokehjs_exec.v0+json" in note and "trust_outputs" in note
    markdown = safe_bundle({"text/markdown": "# Title\n<img src=x onerror=steal()>"})
    assert markdown == {"text/markdown": '# Title\n<img src="x">'}


def test_data_renderers_pass_as_they_are():
    bundle = {
        "image/png": "iVBOR",
        "image/svg+xml": "<svg><script>x()</script></svg>",  # shown as an <img>: never runs
        "application/vnd.vegalite.v5+json": {"mark": "bar"},
        "application/vnd.jupyter.widget-view+json": {"model_id": "m"},
    }
    assert safe_bundle(bundle) == bundle


def test_a_trusted_kernel_shows_the_bundle_as_it_came():
    entry = {"type": "result", "isMainResult": False, "javascript": "run()", "text": "js"}
    assert "application/javascript" not in message_for(entry, 1)[1]["data"]
    assert message_for(entry, 1, trusted=True)[1]["data"]["application/javascript"] == "run()"
