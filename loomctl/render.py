"""The only module that knows output formats: rich tables, stable JSON and YAML on stdout."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any


class Output(str, enum.Enum):
    table = "table"
    json = "json"
    yaml = "yaml"


def to_jsonable(value: Any) -> Any:
    """Plain JSON types from dataclasses, datetimes, decimals, enums and paths (keys keep their order)."""
    import decimal  # here, not at the top: `loomctl --help` must start fast
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in value]
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


# Identifiers, not quantities: no thousands separators (`port=35777`, not `port=35,777`).
_PLAIN_INT_NAMES = ("port", "pid", "partition", "version", "id", "revision")


def _cell(value: Any, name: str = "") -> str:
    if value is None:
        return "-"
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
    plain = to_jsonable(data)
    if output is Output.json:
        import json

        out.write(json.dumps(plain, indent=2, ensure_ascii=False) + "\n")
        return
    if output is Output.yaml:
        import yaml

        out.write(yaml.safe_dump(plain, sort_keys=False, allow_unicode=True))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console(file=out, soft_wrap=False)
    if isinstance(plain, dict):
        table = Table(title=title, show_header=False, box=None, pad_edge=False)
        table.add_column(style="bold")
        table.add_column()
        for key, value in plain.items():
            table.add_row(key, _cell(value, key))
        console.print(table)
        return
    rows: list[dict[str, Any]] = list(plain) if isinstance(plain, Iterable) else [plain]
    names = list(columns) if columns else (list(rows[0].keys()) if rows else [])
    table = Table(title=title)
    for name in names:
        table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(*(_cell(row.get(name), name) for name in names))
    if not rows:
        console.print(f"[dim]{title + ': ' if title else ''}nothing to show[/dim]", highlight=False)
        return
    console.print(table)
