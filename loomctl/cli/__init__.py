"""The root Typer app: global options, the command groups, and the one error handler."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from typer.core import TyperGroup

from loomctl import __version__
from loomctl.errors import LoomError
from loomctl.render import Output
from loomctl.settings import ENV_BOOTSTRAP_SERVERS, ENV_DATABASE_URL, ENV_KAFKA_CONFIG, Settings


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


class LoomGroup(TyperGroup):
    """The one error handler: a LoomError raised anywhere below, and Click's usage errors, become one red
    line and their exit code through ``abort``; other exceptions are bugs and propagate."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LoomError as exc:
            abort(str(exc), exc.exit_code)
        except KeyboardInterrupt:
            abort("interrupted", 130)

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        click = _click_exceptions()
        try:
            try:
                _check_arguments(kwargs.get("args") if "args" in kwargs else (args[0] if args else None))
                code = super().main(*args, standalone_mode=False, **kwargs)
            except click.UsageError as exc:
                if exc.ctx is not None and type(exc).__name__ == "NoArgsIsHelpError":
                    exc.show()  # a group named alone: its help, as Click prints it
                    raise typer.Exit(exc.exit_code) from None
                # Click's own form is three lines (usage, a hint, the error); ours is one
                where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
                abort(exc.format_message() + where, exc.exit_code)
            except click.ClickException as exc:
                abort(exc.format_message(), exc.exit_code)
            except typer.Abort:
                abort("aborted", 1)
        except typer.Exit as exc:
            raise SystemExit(exc.exit_code) from None
        raise SystemExit(code if isinstance(code, int) else 0)


def _check_arguments(args: Any) -> None:
    """Undecodable bytes on the command line reach Python as lone surrogates, which no database, broker
    or terminal can take, and a NUL (which only a caller in Python can pass) ends a C string: refuse
    them before anything else (exit 2)."""
    import sys

    for position, arg in enumerate(sys.argv[1:] if args is None else args, start=1):
        if isinstance(arg, str) and any("\ud800" <= ch <= "\udfff" or ch == "\x00" for ch in arg):
            abort(f"argument {position} is not valid UTF-8 text", 2)


def _click_exceptions() -> Any:
    """Click's exceptions module: Typer 0.2x carries its own copy of Click (``typer._click``), earlier
    ones use Click itself; the Group that Typer builds on tells which."""
    import importlib

    package = TyperGroup.__mro__[1].__module__.rsplit(".", 1)[0]
    return importlib.import_module(f"{package}.exceptions")


def new_app(help_text: str) -> typer.Typer:
    """One Typer app per command group, with the project's defaults."""
    return typer.Typer(help=help_text, no_args_is_help=True, add_completion=False, rich_markup_mode=None)


app = typer.Typer(
    cls=LoomGroup,
    help="Consumer configs, lag and partition changes for a Kafka pipeline, kept in PostgreSQL.",
    no_args_is_help=True,
    add_completion=True,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"loomctl {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    database_url: Annotated[
        Optional[str], typer.Option("--database-url", envvar=ENV_DATABASE_URL, show_envvar=True, help="PostgreSQL URL.")
    ] = None,
    bootstrap_servers: Annotated[
        Optional[str],
        typer.Option("--bootstrap-servers", envvar=ENV_BOOTSTRAP_SERVERS, show_envvar=True, help="Kafka brokers, host:port,..."),
    ] = None,
    kafka_config: Annotated[
        Optional[Path],
        typer.Option("--kafka-config", envvar=ENV_KAFKA_CONFIG, show_envvar=True, help="librdkafka properties file (SASL/SSL)."),
    ] = None,
    output: Annotated[
        Optional[Output], typer.Option("-o", "--output", help="Output format of read commands.")
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """loomctl: tune Kafka consumers, watch their lag, and grow topics safely."""
    ctx.obj = State(
        Settings.from_env(database_url=database_url, bootstrap_servers=bootstrap_servers, kafka_config=kafka_config),
        output,
    )


class State:
    """What the root callback hands to every command through ``ctx.obj``."""

    def __init__(self, settings: Settings, output: Output | None) -> None:
        self.settings = settings
        self.output = output

    def output_for(self, command_output: Output | None) -> Output:
        return command_output or self.output or Output.table


OutputOption = Annotated[Optional[Output], typer.Option("-o", "--output", help="table, json or yaml.")]


def state(ctx: typer.Context) -> State:
    obj = ctx.find_root().obj
    if not isinstance(obj, State):  # a group invoked on its own, as some tests do
        obj = State(Settings.from_env(), None)
        ctx.find_root().obj = obj
    return obj


COMPLETION_TIMEOUT_S = 1
"""A shell waits on a completion: a database that does not answer within this gets none."""


def complete_service(ctx: typer.Context, incomplete: str) -> list[str]:
    """Service names from the database of --database-url or LOOM_DATABASE_URL, for shell completion;
    nothing (never an error) when none is configured or it does not answer."""
    url = (ctx.find_root().params or {}).get("database_url") or Settings.from_env().database_url
    if not url:
        return []
    try:
        import psycopg

        from loomctl import configs
        from loomctl.settings import libpq_url

        with psycopg.connect(libpq_url(url), connect_timeout=COMPLETION_TIMEOUT_S, application_name="loomctl completion") as conn:
            conn.execute("SET statement_timeout = 1000")
            names = [c.service_name for c in configs.read_configs(conn)]
    except Exception:  # a completion must never print a traceback into the user's shell
        return []
    return [name for name in names if name.startswith(incomplete)]


ROW_ID_MAX = 2**63 - 1
"""The largest id a bigint identity column holds."""
COUNT_MAX = 2**31 - 1
"""The largest count an integer column (and Kafka's int32 partition count) holds."""


def number(kind: type[int] | type[float], minimum: float, maximum: float) -> Callable[[str], Any]:
    """A parser for a numeric option or argument, bounded where it is parsed: ASCII digits only
    (``int()`` and ``float()`` take ``١٢`` as 12), no nan or inf, and ``minimum..maximum``, so no value
    out of range reaches the core or PostgreSQL."""
    import re

    pattern = re.compile(r"[+-]?[0-9]{1,30}" if kind is int else r"[+-]?(?:[0-9]{1,15}(?:\.[0-9]{0,9})?|\.[0-9]{1,9})", re.ASCII)
    noun = "a whole number" if kind is int else "a number"

    def written(value: float) -> str:
        return f"{value:,}" if kind is int else f"{value:g}"

    bounds = f"{written(minimum)}..{written(maximum)}"

    def parse(text: Any) -> Any:
        if isinstance(text, kind) and not isinstance(text, bool):
            value = text  # a default, already a number
        else:
            raw = str(text).strip()
            if not pattern.fullmatch(raw):
                from loomctl.validation import shown

                raise typer.BadParameter(f"{shown(text)!r} is not {noun}")
            value = kind(raw)
        if not minimum <= value <= maximum:
            raise typer.BadParameter(f"{written(value)} is out of range: {bounds}")
        return value

    return parse


ServiceArgument = Annotated[
    str, typer.Argument(help="The service's name (service_name).", show_default=False, autocompletion=complete_service)
]
ServicesArgument = Annotated[
    Optional[list[str]],
    typer.Argument(help="Configured services (default: all).", show_default=False, autocompletion=complete_service),
]
SinceOption = Annotated[str, typer.Option("--since", help="How far back, e.g. 1h or 7d.")]
BucketOption = Annotated[str, typer.Option("--bucket", help="Width of one time bucket, e.g. 1m.")]


def read_range(ctx: typer.Context, read: Callable[..., Any], service: str, since: str, bucket: str) -> Any:
    """``read(conn, service, since=, bucket=)`` for a service's figures over a time range, in buckets:
    --since and --bucket parsed and bounded once (`lag history`, `metrics show`)."""
    from loomctl import lag
    from loomctl.db import connect

    buckets = lag.time_buckets(since, bucket)
    with connect(state(ctx).settings) as conn:
        return read(conn, service, since=buckets.since, bucket=buckets.bucket)


def rendered_as_data(ctx: typer.Context, data: Any, output: Output | None) -> bool:
    """Write ``data`` to stdout when the chosen output is JSON or YAML, and say whether it was; a table
    is the command's own layout, which it then draws itself."""
    from loomctl.render import render

    out = state(ctx).output_for(output)
    if out is Output.table:
        return False
    render(data, out)
    return True


def confirm(question: str) -> None:
    """Ask ``question`` on stderr; anything but yes ends the command (exit 1) with nothing changed. Closed
    input (no one to answer) is a no, and the prompt's line is ended so the error stands on its own."""
    import sys

    try:
        answer = typer.confirm(question, err=True)
    except typer.Abort:  # end of input, or Ctrl-C at the prompt
        answer = None
    if answer is None or not sys.stdin.isatty():  # no Enter of a person at a terminal ended the line
        info("")
    if not answer:
        raise LoomError("aborted: nothing changed")


def info(message: str) -> None:
    """A message for the human (progress, summaries): stderr, so stdout stays data."""
    typer.echo(message, err=True)


@contextlib.contextmanager
def stop_on_signals(*, second_interrupts: bool = False) -> Iterator[threading.Event]:
    """An event that SIGINT and SIGTERM set, for the long-running commands to stop cleanly at;
    with ``second_interrupts`` a second signal raises KeyboardInterrupt (stop now, mid-step).
    The previous handlers are back when the block ends."""
    import signal

    stop = threading.Event()

    def request_stop(*_: Any) -> None:
        if second_interrupts and stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    previous = {signum: signal.signal(signum, request_stop) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _register() -> None:
    from loomctl.cli import config, db, dev, lag, monitor, partitions

    app.add_typer(config.app, name="config", no_args_is_help=True)
    app.add_typer(lag.app, name="lag", no_args_is_help=True)
    app.command("alerts")(monitor.alerts)
    app.command("recommend")(monitor.recommend)
    app.add_typer(monitor.metrics_app, name="metrics", no_args_is_help=True)
    app.add_typer(partitions.app, name="partitions", no_args_is_help=True)
    app.add_typer(db.app, name="db", no_args_is_help=True)
    app.add_typer(dev.app, name="dev", no_args_is_help=True)


_register()


def main() -> None:
    app(prog_name="loomctl")
