"""The `%sbx` extension's pure parts, without a kernel: tables, parsing, paths, help."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError
from IPython.lib.pretty import pretty

from sandbox_kernel.magics.completion import _positional_index
from sandbox_kernel.magics.contexts import RemoteError, remote_error_type
from sandbox_kernel.magics.files import BinaryContent, TextContent
from sandbox_kernel.magics.processes import SH_PARSER, parse_sh_line
from sandbox_kernel.magics.sbx import GROUPS, overview
from sandbox_kernel.magics.tables import Column, Entry, Table, human_size
from sandbox_kernel.magics.verbs import HelpShown, remote_path, verb_parser

NAME = Column("name", lambda row: row)


def test_table_cuts_at_its_limit_and_says_how_many_rows_are_hidden():
    table = Table([f"row{number}" for number in range(5)], (NAME,), limit=2)
    lines = table.text().splitlines()
    assert lines[:3] == ["name", "row0", "row1"]
    assert lines[3].startswith("3 more rows not shown (%config SbxMagics.displaylimit = 2")
    assert table._repr_html_().count("<tr>") == 3
    assert "3 more rows not shown" in table._repr_html_()
    assert len(table) == 5  # the value keeps every row


def test_table_without_limit_shows_everything_and_escapes_html():
    table = Table(["<b>bold</b>", "plain"], (NAME,), limit=0)
    assert "more rows" not in table.text()
    assert "<td>&lt;b&gt;bold&lt;/b&gt;</td>" in table._repr_html_()
    assert Table([], (NAME,)).text() == "name\n(empty)"


def test_entry_reads_a_protocol_entry_and_shows_its_fields():
    entry = Entry.from_reply(
        {
            "name": "a.csv",
            "path": "/home/user/a.csv",
            "type": "file",
            "size": 2048,
            "mode": "0644",
            "mtime": "2024-05-01T12:00:00+00:00",
        }
    )
    assert (entry.name, entry.size, entry.mtime.year, entry.is_dir) == ("a.csv", 2048, 2024, False)
    shown = pretty(entry)
    assert "size:  2.0 KiB (2048 bytes)" in shown
    assert "symlink_target" not in shown
    assert repr(entry).startswith("Entry(name='a.csv', path='/home/user/a.csv'")


def test_file_contents_display_as_text_or_as_a_hex_preview():
    assert pretty(TextContent("line one\n  line two\n")) == "line one\n  line two\n"
    shown = pretty(BinaryContent(bytes(range(100))))
    assert shown.splitlines()[0] == "binary file, 100 B (100 bytes)"
    assert shown.splitlines()[1].startswith("00000000  00 01 02 03 04 05 06 07 08 09 0a 0b")
    assert shown.splitlines()[-1] == "..."


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (None, "/home/user"),
        ("data.csv", "/home/user/data.csv"),
        ("a/../b/./c", "/home/user/b/c"),
        ("~", "/home/user"),
        ("~/notes", "/home/user/notes"),
        ("//tmp//x/", "/tmp/x"),
        ("../../../..", "/"),
    ],
)
def test_remote_paths_are_absolute_and_normalized(path, expected):
    assert remote_path(path) == expected


@pytest.mark.parametrize(
    ("size", "shown"),
    [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (5 * 2**20, "5.0 MiB"), (None, "?")],
)
def test_sizes_are_shown_for_people(size, shown):
    assert human_size(size) == shown


def test_sh_line_keeps_the_command_as_typed_after_its_options():
    arguments = parse_sh_line(SH_PARSER, "--cwd '/tmp/a dir' --out listing ls -la | grep 'x  y'")
    assert (arguments.cwd, arguments.out) == ("/tmp/a dir", "listing")
    assert arguments.command == "ls -la | grep 'x  y'"
    assert arguments.raise_error
    arguments = parse_sh_line(SH_PARSER, "--no-raise-error --timeout=5 -- --looks-like-an-option")
    assert (arguments.raise_error, arguments.timeout) == (False, 5.0)
    assert arguments.command == "--looks-like-an-option"


def test_bad_arguments_raise_usage_error_with_the_usage_and_h_shows_help():
    parser = verb_parser("demo", "A demo verb.", "%sbx demo 1")
    parser.add_argument("count", type=int)
    with pytest.raises(UsageError, match=r"invalid int value: 'many'\nusage: %sbx demo"):
        parser.parse_args(["many"])
    with pytest.raises(HelpShown):
        parser.parse_args(["-h"])


def test_the_overview_documents_every_verb_with_an_example():
    text = overview()
    verbs = [verb for _, group in GROUPS for verb in group]
    assert [verb.name for verb in verbs] == [
        *["cat", "write", "put", "get", "ls", "stat", "mkdir", "mv", "rm", "browse"],
        *["sh", "ps", "proc", "kill", "ctx", "run", "push", "pull", "diff", "env"],
        *["status", "connect", "disconnect", "help"],
    ]
    for verb in verbs:
        assert verb.parser.examples, verb.name
        assert verb.parser.examples[0].splitlines()[0] in text
        assert "examples:" in verb.parser.format_help()


def test_positional_index_skips_options_and_their_values():
    options = {"-r": False, "--depth": True}
    assert _positional_index([], options) == 0
    assert _positional_index(["-r", "local.txt"], options) == 1
    assert _positional_index(["--depth", "2"], options) == 0
    assert _positional_index(["--depth=2", "a", "b"], options) == 2


def test_remote_errors_are_named_like_the_sandboxs_exception():
    error = remote_error_type("KeyError")("'missing'", ["KeyError: 'missing'"])
    assert isinstance(error, RemoteError)
    assert type(error).__name__ == "KeyError"
    assert error._render_traceback_() == ["KeyError: 'missing'"]
    assert remote_error_type("KeyError") is type(error)
