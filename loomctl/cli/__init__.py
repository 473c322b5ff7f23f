"""The root Typer app: global options, the command groups (loaded when first looked up, :mod:`~loomctl.cli.registry`),
and the one error handler (:mod:`~loomctl.cli.errors`); what the command groups share is in
:mod:`~loomctl.cli.options`, :mod:`~loomctl.cli.completion` and :mod:`~loomctl.cli.signals`."""

from __future__ import annotations

from collections.abc import MutableMapping
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from typer.core import TyperGroup

from loomctl import __version__
from loomctl.cli.coercion import coerce_directly
from loomctl.cli.errors import abort, check_arguments, click_exceptions
from loomctl.cli.options import State, info
from loomctl.cli.registry import LazyCommands, placeholder
from loomctl.errors import LoomError, PermissionRefused
from loomctl.render import Output
from loomctl.settings import ENV_BOOTSTRAP_SERVERS, ENV_DATABASE_URL, ENV_KAFKA_CONFIG, Settings

coerce_directly()


class LoomGroup(TyperGroup):
    """The one error handler: a LoomError raised anywhere below, and Click's usage errors, become one red
    line and their exit code through ``abort``; other exceptions are bugs and propagate.

    Its commands load when first looked up (:data:`COMMANDS`): `loomctl lag show` imports and builds the
    `lag` group alone, `loomctl --help` none of them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands = LazyCommands(self.commands)

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self.commands.names())  # type: ignore[attr-defined]

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        # the help of a command not loaded yet is the table's (tests/test_cli_startup.py holds them equal)
        commands: MutableMapping[str, Any] = self.commands
        rows = [
            (name, commands[name] if commands.is_loaded(name) else placeholder(name))  # type: ignore[attr-defined]
            for name in self.list_commands(ctx)
        ]
        rows = [(name, command) for name, command in rows if not command.hidden]
        if rows:
            limit = formatter.width - 6 - max(len(name) for name, _ in rows)
            with formatter.section("Commands"):
                formatter.write_dl([(name, command.get_short_help_str(limit)) for name, command in rows])

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except PermissionRefused as exc:
            from loomctl.db.roles import needed_by

            needed = "" if exc.named else needed_by(exc.command or ctx.invoked_subcommand or "")
            abort(f"{exc}; {needed}" if needed else str(exc), exc.exit_code)
        except LoomError as exc:
            abort(str(exc), exc.exit_code)
        except KeyboardInterrupt:
            abort("interrupted", 130)

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, **{**kwargs, "standalone_mode": False})
        click = click_exceptions()
        try:
            try:
                check_arguments(kwargs.get("args") if "args" in kwargs else (args[0] if args else None))
                code = super().main(*args, **{**kwargs, "standalone_mode": False})
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
    output: Annotated[Optional[Output], typer.Option("-o", "--output", help="Output format of read commands.")] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """loomctl: tune Kafka consumers, watch their lag, and grow topics safely."""
    ctx.obj = State(
        Settings.from_env(database_url=database_url, bootstrap_servers=bootstrap_servers, kafka_config=kafka_config),
        output,
    )
    if ctx.obj.settings.kafka_config is not None and not ctx.resilient_parsing:
        from loomctl.settings.properties import exposed_secrets

        exposed = exposed_secrets(ctx.obj.settings.kafka_config)
        if exposed:
            info(f"warning: {exposed}")


def main() -> None:
    try:
        app(prog_name="loomctl")
    finally:
        # The process ends next. Frozen, what it built is left out of the interpreter's last collections, and the
        # system takes the memory back at once: the modules' classes (kafka-python's thousands above all) made
        # those collections 60-90 ms of every command's exit, 15 ms so.
        import gc

        gc.freeze()
