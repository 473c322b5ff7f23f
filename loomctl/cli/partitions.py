"""`loomctl partitions`: recommend, plan and apply partition increases through the AdminClient."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from loomctl.cli.options import COUNT_MAX, OutputOption, confirm, info, new_app, number, rendered_as_data, state
from loomctl.kafka.clients import CHANGE_TIMEOUT_S
from loomctl.render import Output, render

if TYPE_CHECKING:
    from loomctl.partitions import ApplyResult, Plan, RecommendReport

app = new_app("Partition changes: recommendations from measured load, a plan against the cluster, and apply.")

Topics = Annotated[Optional[list[str]], typer.Argument(help="Topics (default: all).", show_default=False)]
ActorOption = Annotated[
    Optional[str],
    typer.Option("--actor", envvar="LOOM_ACTOR", help="Who applies (default: the OS user); recorded as applied_by."),
]

RECOMMEND_COLUMNS = [
    "topic_name",
    "current_partitions",
    "recommended_partitions",
    "produce_rate",
    "per_consumer_rate",
    "consumers_needed",
    "max_group_members",
    "slo_partitions_needed",
    "reason",
]
CHANGE_COLUMNS = [
    "id",
    "topic_name",
    "current_partitions",
    "recommended_partitions",
    "status",
    "source",
    "created_at",
    "applied_at",
    "applied_by",
    "error",
    "reason",
]
PLAN_COLUMNS = ["topic_name", "now", "target", "action", "keyed", "consumers", "risks"]
RESULT_COLUMNS = ["topic_name", "partitions_before", "partitions_after", "outcome", "error"]
APPLY_STEPS = {
    "validated": "validated with the broker (validate_only)",
    "altered": "create_partitions sent",
    "verified": "read the new counts back from the cluster metadata",
}
"""What stderr says at each step `apply` reports."""


def _session(ctx: typer.Context) -> Any:
    from loomctl.db import session_scope

    return session_scope(state(ctx).settings)


def _admin(ctx: typer.Context) -> Any:
    from loomctl import kafka

    return kafka.admin_client(state(ctx).settings)


def _admin_if_configured(ctx: typer.Context) -> Any:
    from loomctl.errors import BadInput

    try:
        state(ctx).settings.kafka_properties()
    except BadInput:
        return None
    return _admin(ctx)


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
    output: OutputOption = None,
) -> None:
    """Recommend partition counts from the produce rate, consumer throughput and group sizes. Example: loomctl partitions recommend --write"""
    from loomctl import partitions
    from loomctl.validation import parse_duration

    span = parse_duration(window, option="--window")
    with _session(ctx) as session:
        report = partitions.recommend(
            session, _admin_if_configured(ctx), topics, window=span, headroom=headroom, max_partitions=max_partitions, write=write
        )
    if report.note:
        info(f"note: {report.note}")
    out = state(ctx).output_for(output)
    render(
        report.recommendations,
        out,
        columns=[*RECOMMEND_COLUMNS, *(["written"] if write else [])] if out is Output.table else None,
        title=f"partition recommendations (last {partitions.describe_window(span)})",
    )
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
    output: OutputOption = None,
) -> None:
    """Record a manual pending change, checked against the live topic. Example: loomctl partitions add device.audio.raw 6 --reason "audio backlog" """
    from loomctl import partitions

    with _session(ctx) as session:
        change = partitions.add_change(session, _admin(ctx), topic, count, reason)
    render(change, state(ctx).output_for(output), title=f"pending change {change.id}")
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
    output: OutputOption = None,
) -> None:
    """List partition changes by status. Example: loomctl partitions list --failed -o json"""
    from loomctl import partitions
    from loomctl.partitions import Status

    chosen = [
        name
        for name, on in (
            (Status.PENDING, pending),
            (Status.APPLIED, applied),
            (Status.FAILED, failed),
            (Status.CANCELLED, cancelled),
        )
        if on
    ]
    statuses = None if all_ else (chosen or [Status.PENDING])
    with _session(ctx) as session:
        changes = partitions.list_changes(session, statuses, topics)
    out = state(ctx).output_for(output)
    render(
        changes,
        out,
        columns=CHANGE_COLUMNS if out is Output.table else None,
        title="partition changes" + ("" if statuses is None else f" ({', '.join(statuses)})"),
    )


@app.command()
def cancel(
    ctx: typer.Context,
    change: Annotated[
        str,
        typer.Argument(help="The change's id, or a topic (its pending change, else its newest failed one).", show_default=False),
    ],
    reason: Annotated[str, typer.Option("--reason", help="Why; stored with the change.", show_default=False)],
    actor: ActorOption = None,
    output: OutputOption = None,
) -> None:
    """Cancel a pending or failed partition change, recording who and why. Example: loomctl partitions cancel device.audio.raw --reason "traffic fell back" """
    from loomctl import partitions

    with _session(ctx) as session:
        cancelled = partitions.cancel_change(session, change, reason=reason, actor=actor or state(ctx).settings.resolved_actor())
    render(cancelled, state(ctx).output_for(output), title=f"cancelled change {cancelled.id}")
    info(
        f"{cancelled.topic_name}: change {cancelled.id} ({cancelled.current_partitions} -> "
        f"{cancelled.recommended_partitions}) cancelled"
    )


def _plan_table(plan: Plan, *, file: Any = None) -> None:
    """The plan in short cells: the full risk texts go to stderr, and into -o json."""
    rows = [
        {
            "topic_name": i.topic_name,
            "now": i.current_partitions,
            "target": i.target_partitions,
            "action": i.action,
            "keyed": i.keyed,
            "consumers": [g.service_name or g.consumer_group_id for g in i.consumer_groups] or "-",
            "risks": "; ".join(i.risk_flags) or "-",
        }
        for i in plan.items
    ]
    render(rows, Output.table, columns=PLAN_COLUMNS, title="partition plan", file=file)


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
    output: OutputOption = None,
) -> None:
    """Check each pending change against the cluster now: counts, consuming groups, keys, risks. Example: loomctl partitions plan -o json"""
    from loomctl import partitions

    settings = state(ctx).settings
    with _session(ctx) as session:
        result = partitions.plan_changes(
            session, _admin(ctx), topics, retry_failed=retry_failed, kafka_properties=settings.kafka_properties()
        )
    if not rendered_as_data(ctx, result, output) and result.items:
        _plan_table(result)
    _plan_notes(result)


def _confirm(plan: Plan, out: Output, force: bool) -> None:
    """Ask before altering the topics the plan alters (none: nothing to ask); the plan goes to stderr under -o json."""
    from loomctl.errors import BadInput

    count = len(plan.to_alter(force))
    if not count:
        return
    if out is not Output.table:
        _plan_table(plan, file=sys.stderr)
    if not sys.stdin.isatty():
        raise BadInput("no terminal to ask on: pass --yes to apply without asking (or --dry-run to only look)")
    confirm(f"alter {count} topic(s) in the cluster?")


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
    output: OutputOption = None,
) -> None:
    """Apply pending changes with the AdminClient: validate, alter, verify, record. Example: loomctl partitions apply --yes"""
    from loomctl import partitions

    settings = state(ctx).settings
    out = state(ctx).output_for(output)
    with _session(ctx) as session:
        admin = _admin(ctx)
        planned = partitions.plan_changes(
            session, admin, topics, lock=not dry_run, retry_failed=retry_failed, kafka_properties=settings.kafka_properties()
        )
        _plan_before_apply(planned, out)
        if not planned.items:
            return
        if not dry_run and not yes:
            _confirm(planned, out, force)
        results = partitions.apply_plan(
            session,
            admin,
            planned,
            actor=actor or settings.resolved_actor(),
            force=force,
            dry_run=dry_run,
            timeout=timeout,
            on_step=lambda s: info(APPLY_STEPS.get(s, s)),
        )
    _apply_report(planned, results, out, dry_run)


def _plan_before_apply(plan: Plan, out: Output) -> None:
    """The plan's table and notes; under -o json a plan with nothing to apply is the whole output."""
    if out is Output.table and plan.items:
        _plan_table(plan)
    _plan_notes(plan)
    if not plan.items and out is not Output.table:
        render({"plan": plan, "results": []}, out)


def _apply_report(plan: Plan, results: list[ApplyResult], out: Output, dry_run: bool) -> None:
    """The results on stdout, one line of counts on stderr; a LoomError (exit 1) when a change is not applied."""
    from loomctl import partitions

    if out is Output.table:
        render(results, out, columns=RESULT_COLUMNS, title="dry run: nothing changed" if dry_run else "apply")
    else:
        render({"plan": plan, "results": results}, out)
    report = partitions.summarize(results, dry_run=dry_run)
    info(report.summary)
    error = report.error()
    if error is not None:
        raise error


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
    render(rows, state(ctx).output_for(output), title="partition efficiency (last hour)")
