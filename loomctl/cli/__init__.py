"""The root Typer app: global options, the command groups, and the one error handler."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, MutableMapping
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
    line and their exit code through ``abort``; other exceptions are bugs and propagate.

    Its commands load when first looked up (:data:`COMMANDS`): `loomctl lag show` imports and builds the
    `lag` group alone, `loomctl --help` none of them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands = _LazyCommands(self.commands)

    def list_commands(self, ctx: typer.Context) -> list[str]:
        return list(self.commands.names())  # type: ignore[attr-defined]

    def format_commands(self, ctx: typer.Context, formatter: Any) -> None:
        # the help of a command not loaded yet is the table's (tests/test_cli_startup.py holds them equal)
        commands: MutableMapping[str, Any] = self.commands
        rows = [(name, commands[name] if commands.is_loaded(name) else _placeholder(name))  # type: ignore[attr-defined]
                for name in self.list_commands(ctx)]
        rows = [(name, command) for name, command in rows if not command.hidden]
        if rows:
            limit = formatter.width - 6 - max(len(name) for name, _ in rows)
            with formatter.section("Commands"):
                formatter.write_dl([(name, command.get_short_help_str(limit)) for name, command in rows])

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


def _coerce_directly() -> None:
    """Typer 0.2x coerces every parameter value through a pydantic TypeAdapter: each command paid a pydantic
    import and a schema per parameter (about 0.2 s, as much as the rest of `loomctl lag show SERVICE`
    together). For the kinds loomctl declares (str, list[str], an Enum's choices, a Path, a ``parser=``)
    the adapter only runs Typer's own conversion, so this runs that conversion directly. Anything else,
    and any value the conversion refuses, still goes through Typer's adapter, so values and error
    messages are Typer's. A Typer without these internals keeps its own coercion."""
    try:
        from dataclasses import dataclass
        from enum import Enum

        from typer import _coercion, _param_types, core

        base, build = _coercion.RuntimeParam, _coercion.build_runtime_param
        choice, path, routes_to_path = _param_types.coerce_cli_choice, _param_types.coerce_cli_path, _param_types.routes_to_path
        parameter = core._TyperParameter
        parameter.get_runtime_param  # noqa: B018  (present, or this Typer is another)
    except (ImportError, AttributeError):
        return

    def flag(value: Any) -> bool:
        if type(value) is not bool:
            raise TypeError(value)  # "yes", "0" from an environment variable: pydantic's bool rules
        return value

    def text(value: Any) -> str:
        if type(value) is not str:
            raise TypeError(value)
        value.encode("utf-8")  # lone surrogates: pydantic refuses them, with its own message
        return value

    @dataclass(frozen=True)
    class Direct(base):  # type: ignore[misc, valid-type]
        convert: Callable[[Any, Any, Any], Any]
        descriptor: Any

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            try:
                return self.convert(value, param, ctx)
            except (ValueError, TypeError, AssertionError):  # what the adapter reports in its words
                return build(self.descriptor)._coerce_value(value, param=param, ctx=ctx)

    def converter(descriptor: Any) -> Callable[[Any, Any, Any], Any] | None:
        annotation, info = descriptor.annotation, descriptor.parameter_info
        if descriptor.file_annotation is not None:
            return None
        if info.parser is not None:
            parser = info.parser
            return lambda value, param, ctx: parser(value)
        if annotation is str:
            return lambda value, param, ctx: text(value)
        if annotation is bool:
            return lambda value, param, ctx: flag(value)
        if annotation == list[str]:
            return lambda value, param, ctx: [text(v) for v in (value if isinstance(value, (list, tuple)) else [value])]
        if isinstance(annotation, type) and issubclass(annotation, Enum):
            choices, case_sensitive = tuple(annotation), info.case_sensitive
            return lambda value, param, ctx: choice(value, choices=choices, case_sensitive=case_sensitive, ctx=ctx)
        if isinstance(annotation, type) and issubclass(annotation, Path) and routes_to_path(annotation, info):
            path_type = info.path_type or annotation
            return lambda value, param, ctx: path(value, info, path_type=path_type, param=param, ctx=ctx)
        return None

    def get_runtime_param(self: Any) -> Any:
        if self._runtime_param is None:
            convert = converter(self.type_descriptor)
            descriptor = self.type_descriptor
            self._runtime_param = (
                build(descriptor) if convert is None
                else Direct(parameter_info=descriptor.parameter_info, annotation=descriptor.annotation, convert=convert,
                            descriptor=descriptor)
            )
        return self._runtime_param

    parameter.get_runtime_param = get_runtime_param


_coerce_directly()


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
        from loomctl import configs
        from loomctl.db import open_connection

        with open_connection(url, connect_timeout=COMPLETION_TIMEOUT_S, application_name="loomctl completion") as conn:
            conn.execute("SET statement_timeout = 1000")
            names = list(configs.group_services(conn).values())
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


COMMANDS: dict[str, tuple[str, str, str]] = {
    # name: (module, attribute, its help), in the order `loomctl --help` lists them. The help is the group's
    # Typer help or the command's docstring, repeated here so that --help imports none of them
    # (tests/test_cli_startup.py fails when one differs).
    "alerts": ("loomctl.cli.monitor", "alerts",
               "Active alerts from measured lag and processing (v_consumer_alerts). Example: loomctl alerts --fail-on critical"),
    "recommend": ("loomctl.cli.monitor", "recommend",
                  "Processing recommendations with the numbers behind them. Example: loomctl recommend speech-processor"),
    "config": ("loomctl.cli.config", "app",
               "Consumer settings per service: validate, change, audit, roll back, export and import."),
    "lag": ("loomctl.cli.lag", "app", "Consumer lag: live from Kafka, sampled into PostgreSQL, judged over a time window."),
    "metrics": ("loomctl.cli.monitor", "metrics_app", "Processing metrics that services report per batch (consumer_processing_metrics)."),
    "partitions": ("loomctl.cli.partitions", "app",
                   "Partition changes: recommendations from measured load, a plan against the cluster, and apply."),
    "db": ("loomctl.cli.db", "app", "Schema migrations (Alembic), drift checks and offline SQL."),
    "dev": ("loomctl.cli.dev", "app", "A local PostgreSQL and Apache Kafka on loopback, without Docker."),
}
"""The root's commands, each imported and built when first looked up."""


def _load(name: str) -> Any:
    """The Click command of the root's command ``name``, built as ``add_typer`` / ``command`` register it."""
    import importlib

    module, attribute, _ = COMMANDS[name]
    target = getattr(importlib.import_module(module), attribute)
    holder = typer.Typer(add_completion=False, rich_markup_mode=None)
    if isinstance(target, typer.Typer):
        holder.add_typer(target, name=name, no_args_is_help=True)
    else:
        holder.command(name)(target)
    holder.callback()(lambda: None)  # always a group, whose command is the one wanted
    return typer.main.get_command(holder).commands[name]  # type: ignore[attr-defined]


def _placeholder(name: str) -> Any:
    """A stand-in with the help of ``name``, for `loomctl --help` to list it without loading it."""
    from typer.core import TyperCommand

    return TyperCommand(name, help=COMMANDS[name][2])


class _LazyCommands(MutableMapping):  # type: ignore[type-arg]
    """The root's commands: each built on first lookup; iterating (a walk over every command) builds them all."""

    def __init__(self, loaded: MutableMapping[str, Any]) -> None:
        self._loaded: dict[str, Any] = dict(loaded)

    def names(self) -> list[str]:
        return [*COMMANDS, *(n for n in self._loaded if n not in COMMANDS)]

    def is_loaded(self, name: str) -> bool:
        return name in self._loaded

    def __getitem__(self, name: str) -> Any:
        if name not in self._loaded:
            if name not in COMMANDS:
                raise KeyError(name)
            self._loaded[name] = _load(name)
        return self._loaded[name]

    def __contains__(self, name: object) -> bool:
        return name in self._loaded or name in COMMANDS

    def __iter__(self) -> Iterator[str]:
        return iter([n for n in self.names() if self[n] is not None])

    def __len__(self) -> int:
        return len(self.names())

    def __setitem__(self, name: str, command: Any) -> None:
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        del self._loaded[name]


def main() -> None:
    app(prog_name="loomctl")
