"""`loomctl dev`: a local PostgreSQL and Apache Kafka on loopback, without Docker."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from loomctl.cli.options import OutputOption, emit, info, new_app, number
from loomctl.cli.signals import stop_on_signals
from loomctl.devstack import kafka, views
from loomctl.devstack.stack import MAX_CLUSTERS
from loomctl.errors import BackendUnavailable, BadInput

app = new_app("A local PostgreSQL and Apache Kafka on loopback, without Docker.")

DirOption = Annotated[
    Optional[Path],
    typer.Option("--dir", file_okay=False, help="State folder of the stack [default: ~/.local/state/loomctl/dev]."),
]


def _dir_flag(state_dir: Path | None) -> str:
    return f" --dir {state_dir}" if state_dir is not None else ""


def _kafka_release(text: str) -> str:
    try:
        return kafka.check_version(text, given_as="")
    except BadInput as exc:
        raise typer.BadParameter(str(exc).strip()) from None


@app.command()
def up(
    ctx: typer.Context,
    state_dir: DirOption = None,
    no_migrate: Annotated[bool, typer.Option("--no-migrate", help="Leave the database empty.")] = False,
    clusters: Annotated[
        Optional[int],
        typer.Option(
            "--clusters",
            metavar="N",
            help=f"Kafka clusters to run, 1 to {MAX_CLUSTERS}, each one broker [default: 1, or as many as the stack has].",
            parser=number(int, 1, MAX_CLUSTERS),
        ),
    ] = None,
    kafka_version: Annotated[
        Optional[str],
        typer.Option(
            "--kafka-version",
            metavar="X.Y.Z",
            help=f"The Apache Kafka release to run, 4.0.0 or later, fetched once from Maven Central "
            f"[default: ${kafka.ENV_VERSION}, else {kafka.default_version()}].",
            parser=_kafka_release,
        ),
    ] = None,
    output: OutputOption = None,
) -> None:
    """Start PostgreSQL and Kafka, then migrate. Example: loomctl dev up

    Starts nothing when the stack is already running. The first run fetches Kafka's jars
    from Maven Central; then point loomctl at the stack with: eval "$(loomctl dev env)"

    With --clusters 2 or 3, more Kafka clusters run beside the first (named dev-2 and dev-3 in
    `loomctl dev status`; LOOM_KAFKA_BOOTSTRAP_SERVERS stays the first's). A running stack gains
    the missing ones; it is never shrunk (exit 4): `loomctl dev down` first.

    --kafka-version 4.0.1 (or LOOM_DEV_KAFKA_VERSION=4.0.1, which Kafka's tools and the tests follow too) runs
    another Kafka release; a stack keeps the release it began with (another is exit 4): `loomctl dev down` first.
    """
    from loomctl import devstack

    stack = devstack.up(state_dir, migrate=not no_migrate, progress=info, clusters=clusters, kafka_version=kafka_version)
    emit(ctx, stack, output, views.STACK)
    verb = "already running" if stack.already_running else "running"
    brokers = (
        f"Kafka {stack.kafka_version}"
        if len(stack.clusters) < 2
        else f"{len(stack.clusters)} Kafka {stack.kafka_version} clusters"
    )
    info(f'PostgreSQL and {brokers} are {verb}; use them with: eval "$(loomctl dev env{_dir_flag(state_dir)})"')


@app.command()
def status(ctx: typer.Context, state_dir: DirOption = None, output: OutputOption = None) -> None:
    """Check the local stack. Example: loomctl dev status -o json

    Exits with 5 when a server is not answering, 3 when there is no stack.
    """
    from loomctl import devstack

    stack = devstack.status(state_dir)
    emit(ctx, stack, output, views.STACK)
    if not stack.healthy:
        raise BackendUnavailable(f"the local stack is not answering: restart it with `loomctl dev up{_dir_flag(state_dir)}`")


@app.command()
def env(state_dir: DirOption = None) -> None:
    """Shell exports for the stack. Example: loomctl dev env (use as eval "$(loomctl dev env)")

    Sets LOOM_DATABASE_URL, LOOM_KAFKA_BOOTSTRAP_SERVERS and LOOM_DEV_KAFKA_VERSION (the stack's Kafka release,
    so Kafka's tools run from the same jars); exits with 3 when no stack runs.
    """
    from loomctl import devstack

    for line in devstack.env_lines(devstack.running(state_dir)):
        typer.echo(line)


@app.command()
def down(
    state_dir: DirOption = None,
    keep: Annotated[bool, typer.Option("--keep", help="Keep the state folder: data and logs.")] = False,
) -> None:
    """Stop the stack and delete its data. Example: loomctl dev down

    With --keep the data and logs stay, and a later `loomctl dev up` starts on them again.
    """
    from loomctl import devstack

    devstack.down(state_dir, keep=keep, progress=info)


@app.command()
def traffic(
    ctx: typer.Context,
    duration: Annotated[str, typer.Option("--duration", help="How long to produce, e.g. 40s or 2m.")] = "40s",
    rate: Annotated[
        float, typer.Option("--rate", help="Messages per second into each demo topic.", parser=number(float, 0, 100_000))
    ] = 200.0,
    prefix: Annotated[str, typer.Option("--prefix", help="Put before each demo topic name.")] = "",
    cluster: Annotated[
        Optional[str],
        typer.Option(
            "--cluster",
            metavar="NAME",
            help="Run on this Kafka cluster of the stack (dev-2 after `dev up --clusters 2`); every service must belong to it.",
        ),
    ] = None,
    service_prefix: Annotated[
        str, typer.Option("--service-prefix", help="Put before each demo service name (dev2-: examples/dev-2-services.yaml).")
    ] = "",
    state_dir: DirOption = None,
    output: OutputOption = None,
) -> None:
    """Demo traffic on the local stack: a producer and three consumers (keeps up, slow, stopped). Example: loomctl dev traffic --duration 40s --rate 200

    Creates the demo topics when missing; the consumers are built by loomctl.loader from the
    configs of timescale-writer, speech-processor and motion-event-filter (load them with
    `loomctl config import examples/pipeline-services.yaml --yes`) and record processing metrics.
    Runs on the local stack only, never on the cluster of LOOM_KAFKA_BOOTSTRAP_SERVERS.
    Stops cleanly after --duration, on Ctrl-C or on SIGTERM.

    On another cluster of the stack, with services of that cluster (a group lives on one cluster):
    `loomctl config import examples/dev-2-services.yaml --yes`, then
    `loomctl dev traffic --cluster dev-2 --service-prefix dev2- --prefix dev2.`
    """
    from loomctl.devstack import traffic as demo
    from loomctl.validation import parse_duration

    plan = demo.demo_plan(
        prefix=prefix,
        rate=rate,
        duration_s=parse_duration(duration, option="--duration").total_seconds(),
        service_prefix=service_prefix,
        cluster=cluster,
    )
    with stop_on_signals() as stop:
        report = demo.run_on_stack(state_dir, plan, stop=stop, progress=info)
    emit(ctx, report, output, views.TRAFFIC)
    failure = report.failure()
    if failure is not None:
        raise failure
