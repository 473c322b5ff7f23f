"""The one exit path for expected failures: a red one-line message on stderr and an exit code (``abort``), and
what is refused before anything runs."""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup

MESSAGE_MAX = 1000
"""An error message longer than this (a value echoed back whole) is cut: one line, readable."""


def one_line(message: str) -> str:
    """``message`` on one line: control characters (a newline in an echoed value) written as escapes."""
    text = "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in message.strip())
    return text if len(text) <= MESSAGE_MAX else text[: MESSAGE_MAX - 3] + "..."


def abort(message: str, code: int) -> None:
    """The one exit path for expected failures: a red one-line message on stderr, then ``code``."""
    from rich.console import Console
    from rich.markup import escape

    Console(stderr=True, highlight=False, soft_wrap=True).print(f"[red]error:[/red] {escape(one_line(message))}", markup=True)
    raise typer.Exit(code)


def check_arguments(args: Any) -> None:
    """Undecodable bytes on the command line reach Python as lone surrogates, which no database, broker
    or terminal can take, and a NUL (which only a caller in Python can pass) ends a C string: refuse
    them before anything else (exit 2)."""
    import sys

    for position, arg in enumerate(sys.argv[1:] if args is None else args, start=1):
        if isinstance(arg, str) and any("\ud800" <= ch <= "\udfff" or ch == "\x00" for ch in arg):
            abort(f"argument {position} is not valid UTF-8 text", 2)


def click_exceptions() -> Any:
    """Click's exceptions module: Typer 0.2x carries its own copy of Click (``typer._click``), earlier
    ones use Click itself; the Group that Typer builds on tells which."""
    import importlib

    package = TyperGroup.__mro__[1].__module__.rsplit(".", 1)[0]
    return importlib.import_module(f"{package}.exceptions")
