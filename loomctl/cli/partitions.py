"""`loomctl partitions`: recommend, plan and apply partition increases through the AdminClient."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from loomctl.cli.options import (
    COUNT_MAX,
    ClusterOption,
    OutputOption,
    cluster_settings,
    confirm,
    emit,
    info,
    new_app,
    number,
    preview,
    state,
)
from loomctl.kafka.clients import CHANGE_TIMEOUT_S
from loomctl.partitions import views

if TYPE_CHECKING:
    from loomctl.partitions import Plan, RecommendReport

app = new_app("Partition changes: recommendations from measured load, a plan against the cluster, and apply.")

Topics = Annotated[Optional[list[str]], typer.Argument(help="Topics (default: all).", show_default=False)]
ActorOption = Annotated[
    Optional[str],
    typer.Option("--actor", envvar="LOOM_ACTOR", help="Who applies (default: the OS user); recorded as applied_by."),
]

APPLY_STEPS = {
    "validated": "validated with the broker (validate_only)",
    "altered": "create_partitions sent",
    "verified": "read the new counts back from the cluster metadata",
}
"""What stderr says at each step `apply` reports."""


def _session(ctx: typer.Context) -> Any:
    from loomctl.db import session_scope

    return session_scope(state(ctx).settings)


def _admin(ctx: typer.Context, settings: Any = None) -> Any:
    from loomctl import kafka

    return kafka.admin_client(settings or state(ctx).settings)


def _cluster_of_pending(ctx: typer.Context, session: Any, cluster: str | None, topics: Any) -> tuple[str, Any]:
    """The cluster `plan` and `apply` work on, and its settings: the one named, else the one cluster with pending
    changes (of ``topics``); changes on several clusters need --cluster, so nothing is applied to a cluster unsaid."""
    from loomctl import partitions
    from loomctl.clusters import DEFAULT_CLUSTER
    from loomctl.errors import BadInput

    if cluster is None:
        found = partitions.pending_clusters(session, topics)
        if len(found) > 1:
            raise BadInput(f"pending changes on clusters {', '.join(found)}: pick one with --cluster (or LOOM_CLUSTER)")
        cluster = found[0] if found else DEFAULT_CLUSTER
    return cluster, cluster_settings(ctx, session, cluster)


def _admin_if_configured(ctx: typer.Context, session: Any, cluster: str) -> Any:
    """The cluster's AdminClient, None where it has no brokers configured (counts then come from the history)."""
    from loomctl.errors import BadInput

    try:
        settings = cluster_settings(ctx, session, cluster)
        settings.kafka_properties()
    except BadInput:
        return None
    return _admin(ctx, settings)


@app.command()
def recommend(
    ctx: typer.Context,
    topics: Topics = None,
    write: Annotated[bool, typer.Option("--write", help="Store each increase as the topic's pending change.")] = False,
    window: Annotated[str, typer.Option("--window", help="How far back to measure: 30m, 1h, 1d.")] = "1h",
    headroom: Annotated[
        float,
        typer.Option(
            "--headroom", help="Capacity over the measured produce rate (1.5 = 50% spare).", parser=number(float, 1, 100)
        ),
    ] = 1.5,
    max_partitions: Annotated[
        int, typer.Option("--max-partitions", help="Never recommend more than this.", parser=number(int, 1, COUNT_MAX))
    ] = 64,
    cluster: ClusterOption = None,
    output: OutputOption = None,
) -> None:
    """Recommend partition counts from the produce rate, consumer throughput and group sizes. Example: loomctl partitions recommend --write"""
    from loomctl import clusters, partitions
    from loomctl.validation import parse_duration

    span = parse_duration(window, option="--window")
    with _session(ctx) as session:
        names = [c.cluster_name for c in clusters.selected_clusters(session, cluster)]
        report = partitions.recommend_clusters(
            session, lambda name: _admin_if_configured(ctx, session, name), names, topics, window=span, headroom=headroom,
            max_partitions=max_partitions, write=write,
        )  # fmt: skip
    if report.note:
        info(f"note: {report.note}")
    emit(ctx, report, output, views.recommendations(partitions.describe_window(span), write))
    _recommend_summary(report, write)


def _recommend_summary(report: RecommendReport, write: bool) -> None:
    from loomctl.partitions import Written

    increases = report.increases
    if write:
        new = sum(r.written == Written.WRITTEN for r in increases)
        info(f"{len(increases)} increase(s) recommended; {new} written as pending, {len(increases) - new} already pending")
    else:
        info(f"{len(increases)} increase(s) recommended" + (" (--write stores them)" if increases else ""))


@app.command()
def add(
    ctx: typer.Context,
    topic: Annotated[str, typer.Argument(help="The topic.", show_default=False)],
    count: Annotated[
        int, typer.Argument(help="The partition count it should have.", show_default=False, parser=number(int, 1, COUNT_MAX))
    ],
    reason: Annotated[str, typer.Option("--reason", help="Why; stored with the change.", show_default=False)],
    cluster: ClusterOption = None,
    output: OutputOption = None,
) -> None:
    """Record a manual pending change, checked against the live topic. Example: loomctl partitions add device.audio.raw 6 --reason "audio backlog" """
    from loomctl import partitions
    from loomctl.clusters import DEFAULT_CLUSTER

    name = cluster or DEFAULT_CLUSTER
    with _session(ctx) as session:
        admin = _admin(ctx, cluster_settings(ctx, session, name))
        change = partitions.add_change(session, admin, topic, count, reason, cluster=name)
    emit(ctx, change, output, views.change(f"pending change {change.id}"))
    info(f"{topic}: {change.current_partitions} -> {change.recommended_partitions} pending (loomctl partitions apply)")


@app.command("list")
def list_(
    ctx: typer.Context,
    topics: Topics = None,
    pending: Annotated[bool, typer.Option("--pending", help="Pending changes (the default).")] = False,
    applied: Annotated[bool, typer.Option("--applied", help="Applied changes.")] = False,
    failed: Annotated[bool, typer.Option("--failed", help="Failed changes.")] = False,
    cancelled: Annotated[bool, typer.Option("--cancelled", help="Cancelled changes.")] = False,
    all_: Annotated[bool, typer.Option("--all", help="Every change, superseded ones too.")] = False,
    cluster: ClusterOption = None,
    output: OutputOption = None,
) -> None:
    """List partition changes by status. Example: loomctl partitions list --failed -o json"""
    from loomctl import partitions

    statuses = partitions.chosen_statuses((pending, applied, failed, cancelled), every=all_)
    with _session(ctx) as session:
        changes = partitions.list_changes(session, statuses, topics, cluster)
    emit(ctx, changes, output, views.changes(statuses))


@app.command()
def cancel(
    ctx: typer.Context,
    change: Annotated[
        str,
        typer.Argument(help="The change's id, or a topic (its pending change, else its newest failed one).", show_default=False),
    ],
    reason: Annotated[str, typer.Option("--reason", help="Why; stored with the change.", show_default=False)],
    actor: ActorOption = None,
    cluster: ClusterOption = None,
    output: OutputOption = None,
) -> None:
    """Cancel a pending or failed partition change, recording who and why. Example: loomctl partitions cancel device.audio.raw --reason "traffic fell back" """
    from loomctl import partitions

    with _session(ctx) as session:
        cancelled = partitions.cancel_change(
            session, change, reason=reason, actor=actor or state(ctx).settings.resolved_actor(), cluster=cluster
        )
    emit(ctx, cancelled, output, views.change(f"cancelled change {cancelled.id}"))
    info(
        f"{cancelled.topic_name}: change {cancelled.id} ({cancelled.current_partitions} -> "
        f"{cancelled.recommended_partitions}) cancelled"
    )


def _plan_notes(plan: Plan) -> None:
    # the whole text of each risk on stderr: a table cell may be cut to the terminal's width
    for item in plan.items:
        for risk in item.warnings:
            info(f"warning: {item.topic_name}: {risk}")
    if plan.locked_elsewhere:
        info(f"skipped {len(plan.locked_elsewhere)} change(s) another apply is working on: {', '.join(plan.locked_elsewhere)}")
    if plan.not_pending:
        info(f"no pending change for: {', '.join(plan.not_pending)}")
    if plan.nothing_pending:
        info("no pending partition changes")


@app.command()
def plan(
    ctx: typer.Context,
    topics: Topics = None,
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help="Include each topic's newest change that failed.")] = False,
    cluster: ClusterOption = None,
    output: OutputOption = None,
) -> None:
    """Check each pending change against the cluster now: counts, consuming groups, keys, risks. Example: loomctl partitions plan -o json"""
    from loomctl import partitions

    with _session(ctx) as session:
        name, settings = _cluster_of_pending(ctx, session, cluster, topics)
        result = partitions.plan_changes(
            session, _admin(ctx, settings), topics, retry_failed=retry_failed, kafka_properties=settings.kafka_properties(),
            cluster=name,
        )  # fmt: skip
    emit(ctx, result, output, views.PLAN)
    _plan_notes(result)


@app.command()
def apply(
    ctx: typer.Context,
    topics: Topics = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the plan and validate it; change nothing.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Apply even where a consumer with auto_offset_reset=latest would skip records.")
    ] = False,
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="Also retry each topic's newest change that failed.")
    ] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait for the cluster at each step.", parser=number(float, 0.5, 3600))
    ] = CHANGE_TIMEOUT_S,
    actor: ActorOption = None,
    cluster: ClusterOption = None,
    output: OutputOption = None,
) -> None:
    """Apply pending changes with the AdminClient: validate, alter, verify, record. Example: loomctl partitions apply --yes"""
    from loomctl import partitions

    def show(plan: Plan) -> None:
        preview(ctx, plan, output, views.PLAN)
        _plan_notes(plan)

    with _session(ctx) as session:
        name, settings = _cluster_of_pending(ctx, session, cluster, topics)
        done = partitions.apply_pending(
            session, _admin(ctx, settings), topics, actor=actor or settings.resolved_actor(), kafka_properties=settings.kafka_properties(),
            show=show, confirm=None if yes else _ask, retry_failed=retry_failed, force=force, dry_run=dry_run, timeout=timeout,
            on_step=lambda s: info(APPLY_STEPS.get(s, s)), cluster=name,
        )  # fmt: skip
    emit(ctx, done, output, views.APPLIED)
    _apply_summary(done)


@app.command()
def script(ctx: typer.Context) -> None:
    """Print kafka-topics commands for the pending changes, to run where the cluster is reachable. Example: loomctl partitions script > grow.sh"""
    from loomctl import partitions

    with _session(ctx) as session:
        text = partitions.update_script(session)
    typer.echo(text)


@app.command()
def efficiency(ctx: typer.Context, topics: Topics = None, output: OutputOption = None) -> None:
    """Show v_partition_efficiency: produce rate, consumers needed and utilization per topic. Example: loomctl partitions efficiency -o json"""
    from loomctl import partitions

    with _session(ctx) as session:
        rows = partitions.efficiency(session, topics)
    emit(ctx, rows, output, views.EFFICIENCY)


def _ask(plan: Plan, count: int) -> None:
    """Ask before altering ``count`` topics; with no terminal to ask on, refuse (the plan was shown)."""
    from loomctl.errors import BadInput

    if not sys.stdin.isatty():
        raise BadInput("no terminal to ask on: pass --yes to apply without asking (or --dry-run to only look)")
    confirm(f"alter {count} topic(s) in the cluster?")


def _apply_summary(done: Any) -> None:
    """One line of counts on stderr; a LoomError (exit 1, or 5 when the cluster did not answer) when a change is not
    applied."""
    if not done.results:
        return
    report = done.report
    info(report.summary)
    error = report.error()
    if error is not None:
        raise error
