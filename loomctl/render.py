"""The only module that knows output formats: tables for people, stable JSON and YAML for programs, on stdout.

A result is written by :func:`emit` with its :class:`View` (its tables, and what JSON and YAML write); one format
class per ``--output``, chosen from :data:`FORMATS`."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class Output(str, enum.Enum):
    table = "table"
    json = "json"
    yaml = "yaml"


_PLAIN_TYPES = (str, int, float, bool)


def to_jsonable(value: Any, *, for_table: bool = False) -> Any:
    """Plain JSON types from dataclasses, datetimes, decimals, enums and paths (keys keep their order).

    ``for_table`` writes datetimes as a short UTC time for people instead of ISO 8601 for programs.
    """
    if value is None or type(value) in _PLAIN_TYPES:
        return value  # most values of large outputs: skip the checks below
    import decimal  # here, not at the top: `loomctl --help` must start fast

    if for_table and isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc)
        return value.strftime("%Y-%m-%d %H:%M:%S") + ("Z" if value.tzinfo is not None else "")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name), for_table=for_table) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v, for_table=for_table) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v, for_table=for_table) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Path):
        return str(value)
    return value


# Free text may wrap; every other column stays on one line.
_PROSE_WIDTH = 60  # free text wraps at this width rather than widening the table

_PROSE_COLUMNS = {"description", "reason", "recommendation", "message", "error", "changes", "risks", "consumers"}

# Identifiers, not quantities: no thousands separators (`port=35777`, not `port=35,777`).
_PLAIN_INT_NAMES = ("port", "pid", "partition", "version", "id", "revision")


# Durations in milliseconds that people read as time ("4m 05s"); JSON keeps the number.
_DURATION_COLUMNS = {"time_lag_ms", "max_time_lag_ms"}


def duration_text(ms: float) -> str:
    seconds = int(ms // 1000)
    if seconds < 60:
        return f"{ms / 1000:.1f}s" if ms < 10_000 else f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours:02d}h"


_SPARKS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float | None]) -> str:
    """One character per value, scaled from zero to the largest; a gap where nothing was measured."""
    known = [v for v in values if v is not None]
    top = max(known, default=0) or 1
    return "".join(" " if v is None else _SPARKS[min(int(v / top * (len(_SPARKS) - 1) + 0.5), len(_SPARKS) - 1)] for v in values)


def _cell(value: Any, name: str = "") -> str:
    if value is None:
        return "-"
    if name in _DURATION_COLUMNS and isinstance(value, (int, float)) and not isinstance(value, bool):
        return duration_text(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return str(value) if name.endswith(_PLAIN_INT_NAMES) else f"{value:,}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_cell(v, name) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={_cell(v, k)}" for k, v in value.items())
    return str(value)


def json_bytes(data: Any, *, indent: bool = False) -> bytes:
    """``data`` as UTF-8 JSON. orjson writes plain values, dataclasses and datetimes (ISO 8601) itself, the
    others through :func:`to_jsonable`; what it refuses (an integer past 64 bits) goes through the standard
    library's encoder, which writes the same document."""
    import orjson

    try:
        return orjson.dumps(data, default=to_jsonable, option=orjson.OPT_NON_STR_KEYS | (orjson.OPT_INDENT_2 if indent else 0))
    except TypeError:
        import json

        return json.dumps(data, indent=2 if indent else None, ensure_ascii=False, default=to_jsonable).encode()


@dataclass(frozen=True)
class Table:
    """One table of a result: its title, its columns (None: every key of the first row) and its rows, drawn from the
    result by ``rows`` (None: the result is the rows; a record or a mapping alone is a grid of names and values)."""

    title: str | Callable[[Any], str] | None = None
    """A title, or how to word it from the result."""
    columns: Sequence[str] | Callable[[Any], Sequence[str]] | None = None
    """The columns, or how to choose them from the result."""
    rows: Callable[[Any], Any] | None = None
    only_with_rows: bool = False
    """A table of details: left out, not "nothing to show", when it has no rows."""


@dataclass(frozen=True)
class View:
    """How a result reads: its tables, and the document that JSON and YAML write (None: the result itself)."""

    tables: Sequence[Table] = (Table(),)
    document: Callable[[Any], Any] | None = None


def view(
    title: str | Callable[[Any], str] | None = None,
    columns: Sequence[str] | Callable[[Any], Sequence[str]] | None = None,
    rows: Callable[[Any], Any] | None = None,
    *,
    document: Callable[[Any], Any] | None = None,
) -> View:
    """A view of one table."""
    return View((Table(title, columns, rows),), document)


def with_cluster(columns: Sequence[str]) -> Callable[[Any], Sequence[str]]:
    """``columns``, with ``cluster_name`` first where the rows (mappings or objects) come from more than one cluster."""

    def chosen(rows: Any) -> Sequence[str]:
        seen = {r.get("cluster_name") if isinstance(r, Mapping) else getattr(r, "cluster_name", None) for r in rows or ()}
        return ("cluster_name", *columns) if len(seen) > 1 else columns

    return chosen


PLAIN = View()
"""A result that is its own table: rows of records, or one record."""


class Format:
    """One output format: how a result and its view are written to ``out``."""

    def __init__(self, out: Any) -> None:
        self.out = out

    def write(self, data: Any, view: View) -> None:
        raise NotImplementedError


class JsonFormat(Format):
    def write(self, data: Any, view: View) -> None:
        document = view.document(data) if view.document else data
        # indented for people at a terminal, compact through a pipe (`| jq` indents again)
        encoded = json_bytes(document, indent=self.out.isatty())
        buffer = getattr(self.out, "buffer", None)
        if buffer is not None:
            self.out.flush()  # what was written as text goes first
            buffer.write(encoded)  # not encoded + newline: a copy of tens of megabytes at 2,000 groups
            buffer.write(b"\n")
            buffer.flush()
        else:
            self.out.write(encoded.decode() + "\n")


class YamlFormat(Format):
    def write(self, data: Any, view: View) -> None:
        import yaml

        document = view.document(data) if view.document else data
        self.out.write(yaml.safe_dump(to_jsonable(document), sort_keys=False, allow_unicode=True))


class TableFormat(Format):
    def write(self, data: Any, view: View) -> None:
        for text in tables_text(data, view):
            self.out.write(text)


FORMATS: dict[Output, type[Format]] = {Output.table: TableFormat, Output.json: JsonFormat, Output.yaml: YamlFormat}
"""The format class of each ``--output``."""


def emit(data: Any, output: Output, view: View = PLAIN, *, file: Any = None) -> None:
    """Write ``data`` to stdout (or ``file``) in the chosen format, as ``view`` says it reads."""
    FORMATS[output](file or sys.stdout).write(data, view)


def tables_text(data: Any, view: View = PLAIN) -> list[str]:
    """The text of each of the view's tables of ``data``, one string each (ending in a newline)."""
    texts = []
    for table in view.tables:
        rows = to_jsonable(table.rows(data) if table.rows else data, for_table=True)
        title = table.title(data) if callable(table.title) else table.title
        columns = table.columns(data) if callable(table.columns) else table.columns
        if isinstance(rows, Mapping):
            texts.append(_grid(rows, title))
            continue
        rows = list(rows) if isinstance(rows, Iterable) and not isinstance(rows, str) else [rows]
        if rows or not table.only_with_rows:
            texts.append(_boxed(rows, columns, title))
    return texts


# A table is drawn here rather than by rich: the same box, written in one pass. rich measures every cell twice
# and reads cells as markup; at 3,000 rows it took 6.5 s where this takes a tenth of a second.
def _width(text: str) -> int:
    if text.isascii():
        return len(text)
    from rich.cells import cell_len

    return cell_len(text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


def _lines(text: str, prose: bool) -> list[str]:
    """A cell's lines: free text wraps at ``_PROSE_WIDTH``; other cells keep one line per line of their text."""
    lines = text.splitlines() or [""]
    if not prose or all(len(line) <= _PROSE_WIDTH for line in lines):
        return lines
    import textwrap

    return [part for line in lines for part in (textwrap.wrap(line, _PROSE_WIDTH) or [""])]


def _boxed(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None, title: str | None) -> str:
    if not rows:
        return f"{title + ': ' if title else ''}nothing to show\n"
    names = list(columns) if columns else list(rows[0].keys())
    prose = [name in _PROSE_COLUMNS for name in names]
    cells = [[_lines(_cell(row.get(name), name), p) for name, p in zip(names, prose, strict=True)] for row in rows]
    widths = [_width(name) for name in names]
    for row_cells in cells:
        for i, lines in enumerate(row_cells):
            w = max(map(_width, lines)) if len(lines) > 1 else _width(lines[0])
            if w > widths[i]:
                widths[i] = w
    last = len(widths) - 1

    def rule(left: str, fill: str, middle: str, right: str) -> str:
        return left + middle.join(fill * (w + 2) for w in widths) + right + "\n"

    def line(parts: Sequence[str], edge: str) -> str:
        padded = [p.ljust(w) if p.isascii() else _pad(p, w) for p, w in zip(parts, widths, strict=True)]
        return f"{edge} " + f" {edge} ".join(padded) + f" {edge}\n"

    out = []
    if title:
        out.append(title.center(sum(widths) + 3 * last + 4).rstrip() + "\n")
    out += [rule("┏", "━", "┳", "┓"), line(names, "┃"), rule("┡", "━", "╇", "┩")]
    for row_cells in cells:
        if all(len(lines) == 1 for lines in row_cells):
            out.append(line([lines[0] for lines in row_cells], "│"))
            continue
        for k in range(max(len(lines) for lines in row_cells)):
            out.append(line([lines[k] if k < len(lines) else "" for lines in row_cells], "│"))
    out.append(rule("└", "─", "┴", "┘"))
    return "".join(out)


def _grid(record: Mapping[str, Any], title: str | None) -> str:
    """One record: a name and its value per line."""
    width = max((_width(str(k)) for k in record), default=0)
    out = [f"{title}\n"] if title else []
    for key, value in record.items():
        lines = _cell(value, key).splitlines() or [""]
        out.append(f"{_pad(str(key), width)} {lines[0]}\n")
        out += [f"{' ' * width} {more}\n" for more in lines[1:]]
    return "".join(out)
