"""The only module that knows output formats: rich tables, stable JSON and YAML on stdout."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
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


def render(
    data: Any,
    output: Output = Output.table,
    *,
    columns: Sequence[str] | None = None,
    title: str | None = None,
    file: Any = None,
) -> None:
    """Write ``data`` (a record, a list of records, or a mapping) to stdout in the chosen format."""
    out = file or sys.stdout
    if output is Output.json:
        # indented for people at a terminal, compact through a pipe (`| jq` indents again)
        encoded = json_bytes(data, indent=out.isatty())
        buffer = getattr(out, "buffer", None)
        if buffer is not None:
            out.flush()  # what was written as text goes first
            buffer.write(encoded + b"\n")
            buffer.flush()
        else:
            out.write(encoded.decode() + "\n")
        return
    plain = to_jsonable(data, for_table=output is Output.table)
    if output is Output.yaml:
        import yaml

        out.write(yaml.safe_dump(plain, sort_keys=False, allow_unicode=True))
        return
    from rich.console import Console
    from rich.table import Table

    # A pipe or file gets whole rows rather than rich's 80 columns, so `| grep` sees every value.
    width = None if out.isatty() or os.environ.get("COLUMNS") else 10_000
    console = Console(file=out, soft_wrap=False, width=width)
    if isinstance(plain, dict):
        grid = Table(title=title, show_header=False, box=None, pad_edge=False)
        grid.add_column(style="bold")
        grid.add_column()
        for key, value in plain.items():
            grid.add_row(key, _cell(value, key))
        console.print(grid)
        return
    rows: list[dict[str, Any]] = list(plain) if isinstance(plain, Iterable) else [plain]
    if not rows:
        console.print(f"[dim]{title + ': ' if title else ''}nothing to show[/dim]", highlight=False)
        return
    grid = _table(rows, columns, title)
    # rich squeezes short columns to nothing when a table is wider than the terminal; rather
    # than lose a column, print at the table's natural width (prose capped) and let it run over
    natural = Console(width=10_000).measure(grid).maximum
    if natural > console.width:
        console = Console(file=out, soft_wrap=False, width=natural)
    console.print(grid)


def table(data: Any, *, columns: Sequence[str] | None = None, title: str | None = None) -> Any:
    """A rich Table of records, for callers that redraw it (``--watch``) instead of printing once."""
    plain = to_jsonable(data, for_table=True)
    return _table(list(plain), columns, title)


def _table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None, title: str | None) -> Any:
    from rich.table import Table

    names = list(columns) if columns else (list(rows[0].keys()) if rows else [])
    result = Table(title=title)
    for name in names:
        prose = name in _PROSE_COLUMNS
        result.add_column(
            name, overflow="fold" if prose else "ellipsis", no_wrap=not prose, max_width=_PROSE_WIDTH if prose else None
        )
    for row in rows:
        result.add_row(*(_cell(row.get(name), name) for name in names))
    return result
