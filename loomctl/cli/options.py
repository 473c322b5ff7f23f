"""What every command group shares: its Typer app, the state the root hands down, the common options and arguments
(bounded where they are parsed), and the human's side of a command (messages, confirmation)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Optional

import typer
from typer.core import TyperGroup

from loomctl.cli.completion import complete_service
from loomctl.errors import LoomError, PermissionRefused
from loomctl.render import PLAIN, Output, View
from loomctl.settings import Settings


def new_app(help_text: str) -> typer.Typer:
    """One Typer app per command group, with the project's defaults."""
    return typer.Typer(cls=CommandGroup, help=help_text, no_args_is_help=True, add_completion=False, rich_markup_mode=None)


class CommandGroup(TyperGroup):
    """A command group that names its command in PostgreSQL's refusals, for the handler to say which role it needs."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except PermissionRefused as exc:
            exc.command = exc.command or f"{ctx.info_name} {ctx.invoked_subcommand}"
            raise


class State:
    """What the root callback hands to every command through ``ctx.obj``."""

    def __init__(self, settings: Settings, output: Output | None) -> None:
        self.settings = settings
        self.output = output

    def output_for(self, command_output: Output | None) -> Output:
        return command_output or self.output or Output.table


OutputOption = Annotated[Optional[Output], typer.Option("-o", "--output", help="table, json or yaml.")]
ClusterOption = Annotated[
    Optional[str],
    typer.Option(
        "--cluster", envvar="LOOM_CLUSTER", show_envvar=True, help="A registered Kafka cluster (see `loomctl cluster list`)."
    ),
]


def cluster_settings(ctx: typer.Context, session: Any, name: str) -> Settings:
    """The client settings of a registered cluster (its brokers and properties; the flags' for the default one)."""
    from loomctl import clusters

    return clusters.settings_for(clusters.get_cluster(session, name), state(ctx).settings)


def state(ctx: typer.Context) -> State:
    obj = ctx.find_root().obj
    if not isinstance(obj, State):  # a group invoked on its own, as some tests do
        obj = State(Settings.from_env(), None)
        ctx.find_root().obj = obj
    return obj


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


def emit(ctx: typer.Context, data: Any, output: Output | None, view: View = PLAIN, *, file: Any = None) -> None:
    """``data`` on stdout as the command's ``-o`` (else the root's, else a table) says, read through ``view``."""
    from loomctl import render

    render.emit(data, state(ctx).output_for(output), view, file=file)


def preview(ctx: typer.Context, data: Any, output: Output | None, view: View) -> None:
    """What a command is about to do, for the person to confirm: the command's table on stdout when the output is
    a table, else a table on stderr, so that stdout keeps the one JSON or YAML document."""
    import sys

    from loomctl import render

    table = state(ctx).output_for(output) is Output.table
    render.emit(data, Output.table, view, file=None if table else sys.stderr)


def tables_only(ctx: typer.Context, output: Output | None, why: str) -> None:
    """Refuse (exit 2) an option that only a table can have, under -o json or yaml."""
    if state(ctx).output_for(output) is not Output.table:
        from loomctl.errors import BadInput

        raise BadInput(f"{why}; it cannot be combined with -o json or yaml")


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
