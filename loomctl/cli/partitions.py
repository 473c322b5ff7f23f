"""`loomctl partitions`: recommend, plan and apply partition increases through the AdminClient."""

from __future__ import annotations

import sys
from typing import Annotated, Any, Optional

import typer

from loomctl.cli import OutputOption, info, new_app, state
from loomctl.render import Output, render

app = new_app("Partition changes: recommendations from measured load, a plan against the cluster, and apply.")

Topics = Annotated[Optional[list[str]], typer.Argument(help="Topics (default: all).", show_default=False)]
ActorOption = Annotated[
    Optional[str], typer.Option("--actor", envvar="LOOM_ACTOR", help="Who applies (default: the OS user); recorded as applied_by.")
]

RECOMMEND_COLUMNS = ["topic_name", "current_partitions", "recommended_partitions", "produce_rate", "per_consumer_rate",
                     "consumers_needed", "max_group_members", "reason"]
CHANGE_COLUMNS = ["id", "topic_name", "current_partitions", "recommended_partitions", "status", "source", "created_at",
                  "applied_at", "applied_by", "error", "reason"]
PLAN_COLUMNS = ["topic_name", "now", "target", "action", "keyed", "consumers", "risks"]
RESULT_COLUMNS = ["topic_name", "partitions_before", "partitions_after", "outcome", "error"]


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
    headroom: Annotated[float, typer.Option("--headroom", help="Capacity over the measured produce rate (1.5 = 50% spare).")] = 1.5,
    max_partitions: Annotated[int, typer.Option("--max-partitions", help="Never recommend more than this.")] = 64,
    output: OutputOption = None,
) -> None:
    """Recommend partition counts from the produce rate, consumer throughput and group sizes. Example: loomctl partitions recommend --write"""
    from loomctl import partitions
    from loomctl.validation import parse_duration

    span = parse_duration(window, option="--window")
    with _session(ctx) as session:
        report = partitions.recommend(session, _admin_if_configured(ctx), topics, window=span, headroom=headroom,
                                      max_partitions=max_partitions)
        recs = partitions.write_recommendations(session, report.recommendations) if write else report.recommendations
    if report.note:
        info(f"note: {report.note}")
    out = state(ctx).output_for(output)
    render(recs, out, columns=[*RECOMMEND_COLUMNS, *(["written"] if write else [])] if out is Output.table else None,
           title=f"partition recommendations (last {partitions.describe_window(span)})")
    increases = [r for r in recs if r.change]
    if write:
        new = sum(r.written == "written" for r in increases)
        info(f"{len(increases)} increase(s) recommended; {new} written as pending, {len(increases) - new} already pending")
    else:
        info(f"{len(increases)} increase(s) recommended" + (" (--write stores them)" if increases else ""))


@app.command()
def add(
    ctx: typer.Context,
    topic: Annotated[str, typer.Argument(help="The topic.", show_default=False)],
    count: Annotated[int, typer.Argument(help="The partition count it should have.", show_default=False)],
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
    all_: Annotated[bool, typer.Option("--all", help="Every change, superseded ones too.")] = False,
    output: OutputOption = None,
) -> None:
    """List partition changes by status. Example: loomctl partitions list --failed -o json"""
    from loomctl import partitions

    chosen = [name for name, on in (("pending", pending), ("applied", applied), ("failed", failed)) if on]
    statuses = None if all_ else (chosen or ["pending"])
    with _session(ctx) as session:
        changes = partitions.list_changes(session, statuses, topics)
    out = state(ctx).output_for(output)
    render(changes, out, columns=CHANGE_COLUMNS if out is Output.table else None,
           title="partition changes" + ("" if statuses is None else f" ({', '.join(statuses)})"))


def _plan_rows(plan: Any) -> list[dict[str, Any]]:
    """The plan for a table: short cells (the full risk texts go to stderr, and into -o json)."""

    def risks(item: Any) -> str:
        if item.action != "increase":
            return "-"
        flags = ["key ordering"] if item.keyed == "yes" else []
        if item.needs_force:
            flags.append("latest reset (--force)")
        if any(g.service_name is None for g in item.consumer_groups):
            flags.append("unmanaged group")
        if item.current_partitions != item.recorded_partitions:
            flags.append(f"recorded at {item.recorded_partitions}")
        return "; ".join(flags) or "-"

    return [{"topic_name": i.topic_name, "now": i.current_partitions, "target": i.target_partitions, "action": i.action,
             "keyed": i.keyed, "consumers": [g.service_name or g.consumer_group_id for g in i.consumer_groups] or "-",
             "risks": risks(i)} for i in plan.items]


def _plan_notes(plan: Any) -> None:
    # the whole text of each risk on stderr: a table cell may be cut to the terminal's width
    for item in plan.items:
        if item.action == "increase":
            for risk in item.risks:
                info(f"warning: {item.topic_name}: {risk}")
    if plan.locked_elsewhere:
        info(f"skipped {len(plan.locked_elsewhere)} change(s) another apply is working on: {', '.join(plan.locked_elsewhere)}")
    if plan.not_pending:
        info(f"no pending change for: {', '.join(plan.not_pending)}")
    if not plan.items and not plan.locked_elsewhere:
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
        result = partitions.plan_changes(session, _admin(ctx), topics, retry_failed=retry_failed,
                                         kafka_properties=settings.kafka_properties())
    out = state(ctx).output_for(output)
    if out is not Output.table:
        render(result, out)
    elif result.items:
        render(_plan_rows(result), out, columns=PLAN_COLUMNS, title="partition plan")
    _plan_notes(result)


def _confirm(count: int) -> None:
    from loomctl.errors import BadInput

    if not sys.stdin.isatty():
        raise BadInput("no terminal to ask on: pass --yes to apply without asking (or --dry-run to only look)")
    typer.confirm(f"alter {count} topic(s) in the cluster?", abort=True, err=True)


@app.command()
def apply(
    ctx: typer.Context,
    topics: Topics = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the plan and validate it; change nothing.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Apply even where a consumer with auto_offset_reset=latest would skip records.")] = False,
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help="Also retry each topic's newest change that failed.")] = False,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for the cluster at each step.")] = 30.0,
    actor: ActorOption = None,
    output: OutputOption = None,
) -> None:
    """Apply pending changes with the AdminClient: validate, alter, verify, record. Example: loomctl partitions apply --yes"""
    from loomctl import partitions

    settings = state(ctx).settings
    out = state(ctx).output_for(output)
    steps = {"validated": "validated with the broker (validate_only)", "altered": "create_partitions sent",
             "verified": "read the new counts back from the cluster metadata"}
    with _session(ctx) as session:
        admin = _admin(ctx)
        result = partitions.plan_changes(session, admin, topics, lock=not dry_run, retry_failed=retry_failed,
                                         kafka_properties=settings.kafka_properties())
        if out is Output.table and result.items:
            render(_plan_rows(result), out, columns=PLAN_COLUMNS, title="partition plan")
        _plan_notes(result)
        if not result.items:
            if out is not Output.table:
                render({"plan": result, "results": []}, out)
            return
        to_alter = [i for i in result.items if i.action != partitions.SATISFIED and (force or not i.needs_force)]
        if not dry_run and not yes and to_alter:
            if out is not Output.table:
                render(_plan_rows(result), Output.table, columns=PLAN_COLUMNS, title="partition plan", file=sys.stderr)
            _confirm(len(to_alter))
        results = partitions.apply_plan(session, admin, result, actor=actor or settings.resolved_actor(),
                                        force=force, dry_run=dry_run, timeout=timeout, on_step=lambda s: info(steps.get(s, s)))
    if out is Output.table:
        render(results, out, columns=RESULT_COLUMNS, title="dry run: nothing changed" if dry_run else "apply")
    else:
        render({"plan": result, "results": results}, out)
    _summarize(results, dry_run)


def _summarize(results: list[Any], dry_run: bool) -> None:
    """One line of counts on stderr; a LoomError (exit 1) when a change is not applied, saying what to do."""
    from loomctl import partitions
    from loomctl.errors import LoomError

    counts: dict[str, int] = {}
    for r in results:
        counts[r.outcome] = counts.get(r.outcome, 0) + 1
    info(("dry run: " if dry_run else "") + ", ".join(f"{n} {what}" for what, n in counts.items()))
    not_done = [r for r in results if not r.done and r.outcome != partitions.WOULD_APPLY]
    if not_done:
        hints = {partitions.REFUSED: "pass --force to apply refused changes",
                 partitions.RETRY: "run apply again to finish pending ones",
                 partitions.FAILED: "once the cause is fixed, apply --retry-failed"}
        todo = [hint for outcome, hint in hints.items() if any(r.outcome == outcome for r in not_done)]
        raise LoomError(f"{len(not_done)} change(s) not applied: "
                        + ", ".join(f"{r.topic_name} ({r.outcome})" for r in not_done) + "".join(f"; {t}" for t in todo))


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
