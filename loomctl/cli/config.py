"""`loomctl config`: each service's consumer settings, their profiles, history and exports."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from loomctl.cli.completion import complete_service
from loomctl.cli.options import (
    COUNT_MAX,
    ROW_ID_MAX,
    OutputOption,
    ServiceArgument,
    ServicesArgument,
    confirm,
    info,
    new_app,
    number,
    state,
)
from loomctl.configs.formats import FORMAT_NAMES
from loomctl.consumer_config import CLIENTS
from loomctl.kafka.clients import CHANGE_TIMEOUT_S
from loomctl.render import Output, render

app = new_app("Consumer settings per service: validate, change, audit, roll back, export and import.")

LIST_COLUMNS = [
    "service_name",
    "consumer_group_id",
    "profile",
    "max_poll_records",
    "max_poll_interval_ms",
    "session_timeout_ms",
    "enable_auto_commit",
    "version",
    "updated_by",
    "updated_at",
]


Client = Enum("Client", {name: name for name in CLIENTS}, type=str)  # type: ignore[misc]  # consumer_config.CLIENTS


ExportFormat = Enum("ExportFormat", {name: name for name in FORMAT_NAMES}, type=str)  # type: ignore[misc]
DEFAULT_EXPORT_FORMAT = ExportFormat("yaml")


Service = ServiceArgument
ActorOption = Annotated[
    Optional[str], typer.Option("--actor", envvar="LOOM_ACTOR", help="Who makes the change (default: the OS user).")
]
ReasonOption = Annotated[Optional[str], typer.Option("--reason", help="Why; recorded in the audit trail.")]
IfVersionOption = Annotated[
    Optional[int],
    typer.Option("--if-version", help="Refuse (exit 4) unless the service is at this version.", parser=number(int, 1, COUNT_MAX)),
]
DryRunOption = Annotated[bool, typer.Option("--dry-run", help="Validate and show the changes; write nothing.")]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
TimeoutOption = Annotated[
    float, typer.Option("--timeout", help="Seconds to wait for the cluster at each step.", parser=number(float, 0.5, 3600))
]
PUSH_COLUMNS = ["service_name", "consumer_group_id", "group_protocol", "action", "changes", "reason"]
DRIFT_COLUMNS = [
    "service_name",
    "group_protocol",
    "group_type",
    "group_state",
    "members",
    "partitions",
    "assignor_in_use",
    "drift",
]


def _session(ctx: typer.Context) -> Any:
    from loomctl.db import session_scope

    return session_scope(state(ctx).settings)


def _actor(ctx: typer.Context, actor: str | None) -> str:
    return actor or state(ctx).settings.resolved_actor()


def _broker_check(ctx: typer.Context, session: Any, result: Any) -> Any:
    """What the broker says of a change, asked inside the transaction: a consumer-protocol service
    outside the broker's bounds raises BadInput, so nothing is written."""
    return _broker_checks(ctx, session, [result])[0]


def _broker_checks(ctx: typer.Context, session: Any, results: list[Any]) -> list[Any]:
    from loomctl import configs
    from loomctl.consumer_config import DEFAULTS
    from loomctl.errors import BadInput

    pairs = []
    for result in results:
        after = configs.find_config(session, result.service_name)
        settings: dict[str, Any] | None = dict(after.settings) if after else None
        if result.action == configs.Action.DELETE:
            settings = None
        elif result.dry_run:  # nothing was written: the settings it would leave
            settings = (settings or dict(DEFAULTS)) | {c.field: c.new for c in result.changes if c.field in configs.SETTING_NAMES}
        pairs.append((settings, result))
    checks = configs.check_changes(pairs, state(ctx).settings)
    for check, result in zip(checks, results, strict=True):
        if check.error:
            raise BadInput(f"{result.service_name}: {check.error}")
    return checks


def _show_changes(ctx: typer.Context, result: Any, output: Output | None, check: Any) -> None:
    """The changes on stdout (old and new), the one-line outcome on stderr, and where a broker is
    configured its objection to a new session timeout, or what to push to it."""
    from loomctl import configs

    out = state(ctx).output_for(output)
    if out is Output.table:
        render(
            [{"field": c.field, "old": c.old, "new": c.new} for c in result.changes],
            out,
            columns=["field", "old", "new"],
            title=f"{result.service_name}: {result.action}",
        )
    else:
        render(result, out)
    if result.action == configs.Action.UNCHANGED:
        info(f"{result.service_name}: nothing to change (version {result.version_before})")
    elif result.dry_run:
        info(f"dry run, nothing written: would {result.action} {result.service_name} ({len(result.changes)} field(s))")
    else:
        versions = f"version {result.version_before or '-'} -> {result.version_after or '-'}"
        info(f"{result.action} {result.service_name}: {len(result.changes)} field(s), {versions}")
    if check.warning:
        info(f"warning: {check.warning}")
    if check.note:
        info(check.note)


@app.command("list")
def list_(
    ctx: typer.Context,
    profile: Annotated[Optional[str], typer.Option("--profile", help="Only services with this profile.")] = None,
    output: OutputOption = None,
) -> None:
    """List every service's consumer config. Example: loomctl config list --profile ai-model -o json"""
    from loomctl import configs

    with _session(ctx) as session:
        rows = [c.record() for c in configs.list_configs(session, profile=profile)]
    out = state(ctx).output_for(output)
    render(rows, out, columns=LIST_COLUMNS if out is Output.table else None, title="consumer configs")


@app.command()
def show(
    ctx: typer.Context,
    service: Service,
    client: Annotated[Optional[Client], typer.Option("--client", help="Show what this client receives instead.")] = None,
    output: OutputOption = None,
) -> None:
    """Show one service's config, or the exact properties a client gets. Example: loomctl config show url-scraper --client librdkafka"""
    from loomctl import configs

    with _session(ctx) as session:
        config = configs.get_config(session, service)
    data = configs.client_config(config, client.value) if client else config.record()
    render(data, state(ctx).output_for(output), title=service)
    if client is not None and client.value == "kafkajs" and config.settings["group_protocol"] == "consumer":
        from loomctl.configs.formats import KAFKAJS_CONSUMER_PROTOCOL_NOTE

        info(f"note: {KAFKAJS_CONSUMER_PROTOCOL_NOTE}")


@app.command("set")
def set_(
    ctx: typer.Context,
    service: Service,
    assignments: Annotated[
        Optional[list[str]],
        typer.Argument(
            help="key=value settings, e.g. max_poll_records=50; lag_slo_seconds=N sets the service's lag objective.",
            show_default=False,
        ),
    ] = None,
    create: Annotated[bool, typer.Option("--create", help="Create the service (with defaults for unset fields).")] = False,
    group: Annotated[
        Optional[str], typer.Option("--group", help="Consumer group id (with --create: default the service name).")
    ] = None,
    description: Annotated[Optional[str], typer.Option("--description", help="What this config is for and why.")] = None,
    reason: ReasonOption = None,
    if_version: IfVersionOption = None,
    dry_run: DryRunOption = False,
    push_after: Annotated[
        bool, typer.Option("--push", help="Consumer protocol: then push the broker-side settings (config push).")
    ] = False,
    actor: ActorOption = None,
    output: OutputOption = None,
) -> None:
    """Change settings of a service, validated as a whole; prints old and new values. Example: loomctl config set speech-processor max_poll_records=5 --reason "slow batches" """
    from loomctl import configs
    from loomctl.configs.store import parse_service_assignments

    settings = parse_service_assignments(assignments or [])
    with _session(ctx) as session:
        result = configs.set_config(
            session,
            service,
            settings,
            actor=_actor(ctx, actor),
            reason=reason,
            description=description,
            group=group,
            create=create,
            if_version=if_version,
            dry_run=dry_run,
        )
        check = _broker_check(ctx, session, result)
    if push_after and check.note and not dry_run:
        check = configs.BrokerCheck(warning=check.warning)
        _show_changes(ctx, result, output, check)
        _push(ctx, [service], dry_run=False, yes=True, reason=reason, actor=actor, timeout=CHANGE_TIMEOUT_S, output=None)
        return
    _show_changes(ctx, result, output, check)


@app.command()
def profiles(ctx: typer.Context, output: OutputOption = None) -> None:
    """List the named profiles from the guide's configuration guidelines, with each one's default lag objective. Example: loomctl config profiles -o yaml"""
    from loomctl import configs
    from loomctl.lag.slo import PROFILE_LAG_SLO_SECONDS

    rows = [{**vars(p), "lag_slo_seconds": PROFILE_LAG_SLO_SECONDS.get(p.name)} for p in configs.profiles()]
    render(rows, state(ctx).output_for(output), columns=["name", "title", "settings", "lag_slo_seconds", "examples"])


@app.command("apply-profile")
def apply_profile(
    ctx: typer.Context,
    service: Service,
    profile: Annotated[str, typer.Argument(help="ai-model, fast, io-bound or database-writer.", show_default=False)],
    reason: ReasonOption = None,
    if_version: IfVersionOption = None,
    dry_run: DryRunOption = False,
    actor: ActorOption = None,
    output: OutputOption = None,
) -> None:
    """Set all of a service's settings to a profile's values. Example: loomctl config apply-profile url-scraper io-bound"""
    from loomctl import configs

    with _session(ctx) as session:
        result = configs.apply_profile(
            session, service, profile, actor=_actor(ctx, actor), reason=reason, if_version=if_version, dry_run=dry_run
        )
        check = _broker_check(ctx, session, result)
    _show_changes(ctx, result, output, check)


@app.command()
def history(
    ctx: typer.Context,
    service: Service,
    limit: Annotated[
        Optional[int], typer.Option("--limit", "-n", help="Only the newest N changes.", parser=number(int, 1, COUNT_MAX))
    ] = None,
    output: OutputOption = None,
) -> None:
    """Every change of a service from the audit trail, raw SQL updates included. Example: loomctl config history speech-processor"""
    from loomctl import configs

    with _session(ctx) as session:
        entries = configs.history(session, service, limit)
    out = state(ctx).output_for(output)
    if out is Output.table:
        rows = [
            {**vars(e), "changes": _changes_cell(e.changes, e.change_type in (configs.Action.UPDATE, configs.Action.PUSH))}
            for e in entries
        ]
        render(
            rows,
            out,
            columns=["id", "changed_at", "change_type", "changed_by", "config_version", "reason", "changes"],
            title=f"{service}: history",
        )
    else:
        render(entries, out)


@app.command()
def diff(
    ctx: typer.Context,
    service: Service,
    against: Annotated[
        Optional[str],
        typer.Option("--against", help="A profile name or a change id (default: the service's profile, else the defaults)."),
    ] = None,
    all_fields: Annotated[bool, typer.Option("--all", help="Show equal fields too.")] = False,
    output: OutputOption = None,
) -> None:
    """Compare a service's settings with a profile or an earlier change. Example: loomctl config diff speech-processor --against ai-model"""
    from loomctl import configs

    with _session(ctx) as session:
        result = configs.diff(session, service, against)
    out = state(ctx).output_for(output)
    rows = result.fields if all_fields else result.differences
    if out is Output.table:
        render(rows, out, columns=["field", "current", "other", "differs"], title=f"{service} vs {result.against}")
    else:
        render({"service_name": service, "against": result.against, "fields": rows}, out)
    info(f"{len(result.differences)} difference(s) between {service} and {result.against}")


@app.command()
def rollback(
    ctx: typer.Context,
    service: Service,
    to: Annotated[
        Optional[int],
        typer.Option("--to", help="Restore the state right after this change id.", parser=number(int, 1, ROW_ID_MAX)),
    ] = None,
    yes: YesOption = False,
    reason: ReasonOption = None,
    actor: ActorOption = None,
    output: OutputOption = None,
) -> None:
    """Undo the last change of a service, or go back to an earlier change. Example: loomctl config rollback speech-processor --to 42 --yes"""
    from loomctl import configs

    with _session(ctx) as session:
        plan = configs.plan_rollback(session, service, to)
        info(f"{plan.description}: {plan.result.action} {service}, {len(plan.result.changes)} field(s)")
        if plan.result.action != configs.Action.UNCHANGED and not yes:
            _show_changes(ctx, plan.result, Output.table, _broker_check(ctx, session, plan.result))
            confirm("roll back?")
        result = configs.rollback(session, plan, actor=_actor(ctx, actor), reason=reason)
        check = _broker_check(ctx, session, result)
    _show_changes(ctx, result, output, check)


@app.command()
def delete(
    ctx: typer.Context,
    service: Service,
    yes: YesOption = False,
    reason: ReasonOption = None,
    if_version: IfVersionOption = None,
    actor: ActorOption = None,
) -> None:
    """Delete a service's config (the audit trail keeps it for rollback). Example: loomctl config delete old-service --yes"""
    from loomctl import configs

    with _session(ctx) as session:
        config = configs.get_config(session, service)
        if not yes:
            confirm(f"delete the consumer config of {service} (version {config.version})?")
        configs.delete_config(session, service, actor=_actor(ctx, actor), reason=reason, if_version=if_version)
    info(f"deleted {service} (was version {config.version}; `loomctl config rollback {service}` restores it)")


@app.command()
def export(
    ctx: typer.Context,
    services: Annotated[
        Optional[list[str]],
        typer.Argument(help="Services to export (default: all).", show_default=False, autocompletion=complete_service),
    ] = None,
    fmt: Annotated[
        ExportFormat, typer.Option("--format", "-f", help="yaml/json (re-importable) or a client's properties.")
    ] = DEFAULT_EXPORT_FORMAT,
) -> None:
    """Write services' configs as a file to import, or as client properties. Example: loomctl config export --format yaml > services.yaml"""
    from loomctl import configs

    with _session(ctx) as session:
        items = configs.specs(session, services or [])
    typer.echo(configs.format_export(items, fmt.value), nl=False)


@app.command("import")
def import_(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="YAML or JSON file of services, as `config export` writes.", show_default=False)],
    dry_run: DryRunOption = False,
    prune: Annotated[bool, typer.Option("--prune", help="Delete services that are not in the file.")] = False,
    yes: YesOption = False,
    reason: ReasonOption = None,
    actor: ActorOption = None,
    output: OutputOption = None,
) -> None:
    """Make the database match a file of services, in one transaction. Example: loomctl config import examples/pipeline-services.yaml --yes"""
    from loomctl import configs

    items = configs.read_specs(file)
    with _session(ctx) as session:
        plan = configs.plan_import(session, items, prune=prune)
        _show_plan(ctx, plan, output)
        if dry_run or not plan.has_changes:
            return
        if not yes:
            confirm("apply these changes?")
        results = configs.apply_import(session, plan, actor=_actor(ctx, actor), reason=reason)
        checks = _broker_checks(ctx, session, results)
    info(f"applied {len(results)} change(s)")
    for check in checks:
        for line in (check.warning and f"warning: {check.warning}", check.note):
            if line:
                info(line)


def _changes_cell(changes: list[Any], updated: bool) -> Any:
    """An update's fields as ``old -> new``; a create or a delete touches every field, so only their count."""
    return {c.field: f"{c.old} -> {c.new}" for c in changes} if updated else f"{len(changes)} fields (-o json shows them)"


def _show_plan(ctx: typer.Context, plan: Any, output: Output | None) -> None:
    from loomctl.configs import IMPORT_PLAN_LABELS, Action

    out = state(ctx).output_for(output)
    if out is Output.table:
        rows = [
            {
                "service_name": i.service_name,
                "action": i.action,
                "changes": _changes_cell(i.changes, i.action == IMPORT_PLAN_LABELS[Action.UPDATE]),
            }
            for i in plan.items
        ]
        render(rows, out, columns=["service_name", "action", "changes"], title="import plan")
    else:
        render(
            {
                "counts": plan.counts(),
                "items": [{"service_name": i.service_name, "action": i.action, "changes": i.changes} for i in plan.items],
            },
            out,
        )
    info("plan: " + ", ".join(f"{n} {a}" for a, n in plan.counts().items()))


@app.command()
def fields(ctx: typer.Context, output: OutputOption = None) -> None:
    """List every consumer setting with its range, default and per-client names. Example: loomctl config fields -o json"""
    from loomctl.consumer_config import FIELDS

    rows = [
        {
            "name": f.name,
            "default": f.default,
            "allowed": f.describe_range(),
            "java": f.java,
            "librdkafka": f.librdkafka,
            "kafkajs": f.kafkajs,
            "description": f.description,
        }
        for f in FIELDS
    ]
    render(rows, state(ctx).output_for(output), title="consumer settings")


@app.command()
def push(
    ctx: typer.Context,
    services: ServicesArgument = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be set on the broker; set nothing.")] = False,
    yes: YesOption = False,
    reason: ReasonOption = None,
    timeout: TimeoutOption = CHANGE_TIMEOUT_S,
    actor: ActorOption = None,
    output: OutputOption = None,
) -> None:
    """Set consumer-protocol services' session timeout and heartbeat on the broker, as group configs. Example: loomctl config push timescale-writer --yes"""
    _push(ctx, services or [], dry_run=dry_run, yes=yes, reason=reason, actor=actor, timeout=timeout, output=output)


def _push_rows(items: list[Any]) -> list[dict[str, Any]]:
    return [
        {
            "service_name": i.service_name,
            "consumer_group_id": i.consumer_group_id,
            "group_protocol": i.group_protocol,
            "action": i.action,
            "changes": {c.name: f"{c.old}{' (default)' if c.old_is_default else ''} -> {c.new}" for c in i.changes},
            "reason": i.reason,
        }
        for i in items
    ]


def _push(
    ctx: typer.Context,
    services: list[str],
    *,
    dry_run: bool,
    yes: bool,
    reason: str | None,
    actor: str | None,
    timeout: float,
    output: Output | None,
) -> None:
    """Plan, confirm, push in one request, read back, record each pushed service in its history."""
    from loomctl import configs, kafka
    from loomctl.errors import LoomError

    out = state(ctx).output_for(output)
    with _session(ctx) as session:
        found = configs.require_configs(session, services) if services else configs.read_configs(session)
        admin = kafka.admin_client(state(ctx).settings, timeout=timeout)
        plan = configs.plan_push(found, admin, timeout=timeout)
        pending = [i for i in plan if i.action == configs.PushAction.WOULD_SET]
        if pending and not dry_run and not yes:
            render(_push_rows(plan), Output.table, columns=PUSH_COLUMNS, title="push plan")
            confirm(f"set the group configs of {len(pending)} group(s) on the broker?")
        report = configs.carry_out_push(
            session, found, plan, admin, dry_run=dry_run, actor=_actor(ctx, actor), reason=reason, timeout=timeout
        )
    if out is Output.table:
        render(_push_rows(report.items), out, columns=PUSH_COLUMNS, title="dry run: nothing set" if dry_run else "config push")
    else:
        render(report, out)
    info("push: " + (", ".join(f"{n} {a}" for a, n in report.counts().items()) or "no services"))
    failure = report.failure()
    if failure:
        raise LoomError(failure)


@app.command()
def drift(
    ctx: typer.Context,
    services: ServicesArgument = None,
    fail: Annotated[bool, typer.Option("--fail", help="Exit 1 when any service drifts (for CI and cron).")] = False,
    timeout: TimeoutOption = CHANGE_TIMEOUT_S,
    output: OutputOption = None,
) -> None:
    """Compare the table with the cluster: protocol, broker-side group configs, assignor, idle members. Example: loomctl config drift --fail"""
    from dataclasses import asdict

    from loomctl import configs, kafka
    from loomctl.errors import LoomError

    with _session(ctx) as session:
        found = configs.require_configs(session, services) if services else configs.read_configs(session)
    report = configs.drift(found, kafka.admin_client(state(ctx).settings, timeout=timeout), timeout=timeout)
    out = state(ctx).output_for(output)
    if out is Output.table:
        rows = [{**asdict(d), "drift": "; ".join(d.drift) or "in sync"} for d in report.services]
        render(rows, out, columns=DRIFT_COLUMNS, title="config drift")
    else:
        render([{**asdict(d), "in_sync": d.in_sync} for d in report.services], out)
    info(report.summary())
    failure = report.failure()
    if fail and failure:
        raise LoomError(failure)
