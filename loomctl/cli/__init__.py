"""The root Typer app: global options, the command groups, and the one error handler."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from typer.core import TyperGroup

from loomctl import __version__
from loomctl.errors import LoomError
from loomctl.render import Output
from loomctl.settings import ENV_BOOTSTRAP_SERVERS, ENV_DATABASE_URL, ENV_KAFKA_CONFIG, Settings


def abort(message: str, code: int) -> None:
    """The one exit path for expected failures: a red one-line message on stderr, then ``code``."""
    from rich.console import Console

    Console(stderr=True, highlight=False, soft_wrap=True).print(f"[red]error:[/red] {message}", markup=True)
    raise typer.Exit(code)


class LoomGroup(TyperGroup):
    """Turns a LoomError raised anywhere below into ``abort``; other exceptions are bugs and propagate."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LoomError as exc:
            from rich.markup import escape

            abort(escape(str(exc)), exc.exit_code)
        except KeyboardInterrupt:
            abort("interrupted", 130)


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
