"""What line verbs return: sandbox entries, processes and contexts, shown as readable tables
(HTML and text) cut at `SbxMagics.displaylimit` rows."""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any


def parse_time(value: Any) -> datetime | None:
    """A protocol timestamp (ISO 8601) as a datetime, or None when absent or unreadable."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def format_time(value: datetime | None) -> str:
    return "" if value is None else value.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def human_size(size: int | float | None) -> str:
    """`1.5 MiB`, `12 B`: a byte count for people."""
    if size is None:
        return "?"
    value, unit = float(size), "B"
    for larger_unit in ("KiB", "MiB", "GiB", "TiB"):
        if value < 1024:
            break
        value, unit = value / 1024, larger_unit
    return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"


@dataclass(frozen=True)
class Column:
    """A table column: its header, how to show a row's cell, and its alignment."""

    header: str
    cell: Callable[[Any], str]
    right: bool = False


class Table(list):
    """A list of records that displays as a table of at most `limit` rows (0: all of them)."""

    def __init__(self, rows: Iterable[Any], columns: Sequence[Column], limit: int = 0) -> None:
        super().__init__(rows)
        self.columns = tuple(columns)
        self.limit = limit

    def _shown(self) -> tuple[list[Any], str]:
        if not self.limit or len(self) <= self.limit:
            return list(self), ""
        hidden = len(self) - self.limit
        note = (
            f"{hidden} more row{'s' if hidden != 1 else ''} not shown "
            f"(%config SbxMagics.displaylimit = {self.limit}; 0 shows all)"
        )
        return list(self)[: self.limit], note

    def text(self) -> str:
        rows, note = self._shown()
        cells = [[column.header for column in self.columns]]
        cells += [[column.cell(row) for column in self.columns] for row in rows]
        widths = [max(len(line[index]) for line in cells) for index in range(len(self.columns))]
        lines = []
        for line in cells:
            padded = [
                value.rjust(width) if column.right else value.ljust(width)
                for value, width, column in zip(line, widths, self.columns, strict=True)
            ]
            lines.append("  ".join(padded).rstrip())
        if not rows:
            lines.append("(empty)")
        if note:
            lines.append(note)
        return "\n".join(lines)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.text())

    def _repr_html_(self) -> str:
        rows, note = self._shown()

        def cell(tag: str, value: str, column: Column) -> str:
            style = ' style="text-align: right"' if column.right else ""
            return f"<{tag}{style}>{html.escape(value)}</{tag}>"

        head = "".join(cell("th", column.header, column) for column in self.columns)
        body = "".join(
            "<tr>"
            + "".join(cell("td", column.cell(row), column) for column in self.columns)
            + "</tr>"
            for row in rows
        )
        footer = f"<p><em>{html.escape(note)}</em></p>" if note else ""
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{footer}"


class Record:
    """A single returned object (one entry, one process) shown as a two-column field table.

    Subclasses are dataclasses made with `repr=False`, so that IPython finds `_repr_pretty_`
    here before a generated `__repr__`.
    """

    def __repr__(self) -> str:
        shown = ", ".join(f"{field.name}={getattr(self, field.name)!r}" for field in fields(self))
        return f"{type(self).__name__}({shown})"

    def _fields(self) -> list[tuple[str, str]]:
        return [(field.name, _plain(getattr(self, field.name))) for field in fields(self)]

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        pairs = self._fields()
        width = max(len(name) for name, _ in pairs) + 1
        printer.text("\n".join(f"{name + ':':<{width}} {value}" for name, value in pairs))

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><th style='text-align: left'>{html.escape(name)}</th>"
            f"<td style='text-align: left'>{html.escape(value)}</td></tr>"
            for name, value in self._fields()
        )
        return f"<table><tbody>{rows}</tbody></table>"


def _plain(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return format_time(value)
    return str(value)


@dataclass(frozen=True, repr=False)
class Entry(Record):
    """A file, directory or link in the sandbox."""

    name: str
    path: str
    type: str
    size: int
    mode: str
    mtime: datetime | None
    symlink_target: str | None = None

    @classmethod
    def from_reply(cls, reply: Mapping[str, Any]) -> Entry:
        return cls(
            name=str(reply.get("name", "")),
            path=str(reply.get("path", "")),
            type=str(reply.get("type", "")),
            size=int(reply.get("size") or 0),
            mode=str(reply.get("mode", "")),
            mtime=parse_time(reply.get("mtime")),
            symlink_target=reply.get("symlinkTarget"),
        )

    @property
    def is_dir(self) -> bool:
        return self.type == "dir"

    def _fields(self) -> list[tuple[str, str]]:
        pairs = super()._fields()
        return [
            (name, human_size(self.size) + f" ({self.size} bytes)" if name == "size" else value)
            for name, value in pairs
            if name != "symlink_target" or self.symlink_target
        ]


@dataclass(frozen=True, repr=False)
class Process(Record):
    """A process running in the sandbox."""

    pid: int
    ppid: int | None
    name: str
    status: str
    cpu_percent: float | None
    memory_rss: int | None
    create_time: datetime | None
    cmdline: str

    def _fields(self) -> list[tuple[str, str]]:
        return [
            (name, human_size(self.memory_rss) if name == "memory_rss" else value)
            for name, value in super()._fields()
        ]

    @classmethod
    def from_reply(cls, reply: Mapping[str, Any]) -> Process:
        return cls(
            pid=int(reply["pid"]),
            ppid=reply.get("ppid"),
            name=str(reply.get("name", "")),
            status=str(reply.get("status", "")),
            cpu_percent=reply.get("cpuPercent"),
            memory_rss=reply.get("memoryRss"),
            create_time=parse_time(reply.get("createTime")),
            cmdline=str(reply.get("cmdline", "")),
        )


@dataclass(frozen=True, repr=False)
class Context(Record):
    """A context (a stateful interpreter) in the sandbox; `current` is where cells run."""

    id: str
    language: str
    cwd: str
    current: bool = False

    @classmethod
    def from_reply(cls, reply: Mapping[str, Any], current_id: str | None = None) -> Context:
        context_id = str(reply.get("id", ""))
        return cls(
            id=context_id,
            language=str(reply.get("language", "")),
            cwd=str(reply.get("cwd", "")),
            current=context_id == current_id,
        )


def entries_of(listing: Mapping[str, Any]) -> list[Entry]:
    """The entries of a `filesystem` listing reply (at its top level or under `data`)."""
    entries = listing.get("entries")
    if entries is None and isinstance(listing.get("data"), Mapping):
        entries = listing["data"].get("entries")
    return [Entry.from_reply(entry) for entry in entries or []]


PROCESS_COLUMNS = (
    Column("pid", lambda process: str(process.pid), right=True),
    Column("ppid", lambda process: _plain(process.ppid), right=True),
    Column("name", lambda process: process.name),
    Column("status", lambda process: process.status),
    Column("cpu %", lambda process: _plain(process.cpu_percent), right=True),
    Column("memory", lambda process: human_size(process.memory_rss), right=True),
    Column("started", lambda process: format_time(process.create_time)),
    Column("command", lambda process: _shortened(process.cmdline, 60)),
)

CONTEXT_COLUMNS = (
    Column("", lambda context: "*" if context.current else ""),
    Column("id", lambda context: context.id),
    Column("language", lambda context: context.language),
    Column("cwd", lambda context: context.cwd),
)


def _shortened(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
