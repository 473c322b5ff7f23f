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
    ClusterOption,
    OutputOption,
    ServiceArgument,
    ServicesArgument,
    confirm,
    emit,
    info,
    new_app,
    number,
    preview,
    state,
)
from loomctl.configs import views
from loomctl.configs.formats import FORMAT_NAMES
from loomctl.consumer_config import CLIENTS
from loomctl.kafka.clients import CHANGE_TIMEOUT_S, DEFAULT_TIMEOUT_S
from loomctl.render import Output

app = new_app("Consumer settings per service: validate, change, audit, roll back, export and import.")

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
ReadTimeoutOption = Annotated[
    float, typer.Option("--timeout", help="Seconds to wait for the cluster's answers.", parser=number(float, 0.5, 3600))
]


def _session(ctx: typer.Context) -> Any:
    from loomctl.db import session_scope

    return session_scope(state(ctx).settings)


def _actor(ctx: typer.Context, actor: str | None) -> str:
    return actor or state(ctx).settings.resolved_actor()


def _show_changes(ctx: typer.Context, result: Any, output: Output | None, check: Any) -> None:
    """The changes on stdout (old and new), the one-line outcome on stderr, and where a broker is
    configured its objection to a new session timeout, or what to push to it."""
    from loomctl import configs

    emit(ctx, result, output, views.CHANGES)
    if result.action == configs.Action.UNCHANGED:
        info(f"{result.service_name}: nothing to change (version {result.version_before})")
    elif result.dry_run:
        info(f"dry run, nothing written: would {result.action} {result.service_name} ({len(result.changes)} field(s))")
    else:
        versions = f"version {result.version_before or '-'} -> {result.version_after or '-'}"
        info(f"{result.action} {result.service_name}: {len(result.changes)} field(s), {versions}")
    reaching = configs.reload_summary(result)
    if reaching:
        info(f"running services: {reaching}")
    for line in (check.warning and f"warning: {check.warning}", check.note):
        if line:
            info(line)


def _checked(ctx: typer.Context, session: Any, result: Any) -> Any:
    from loomctl import configs

    return configs.broker_checks(session, [result], state(ctx).settings)[0]


@app.command("list")
def list_(
    ctx: typer.Context,
    profile: Annotated[Optional[str], typer.Option("--profile", help="Only services with this profile.")] = None,
    cluster: ClusterOption = None,
    output: OutputOption = None,
) -> None:
    """List every service's consumer config. Example: loomctl config list --profile ai-model -o json"""
    from loomctl import configs

    with _session(ctx) as session:
        found = configs.list_configs(session, profile=profile, cluster=cluster)
    emit(ctx, found, output, views.LIST)


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
        running = configs.running_instances(session, [service]).get(service, [])
    data = configs.client_config(config, client.value) if client else config.record()
    emit(ctx, data, output, views.record(service))
    if running:
        behind = configs.instances_behind(running, config.version)
        info(f"running: {len(running)} instance(s), {len(running) - len(behind)} on version {config.version} (the newest)")
        for instance in behind:
            info(f"  not on version {config.version} yet: {instance.describe()}")
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
    cluster: Annotated[
        Optional[str], typer.Option("--cluster", help="The registered Kafka cluster its group lives on (default: default).")
    ] = None,
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

    values = parse_service_assignments(assignments or [])
    options = dict(
        reason=reason,
        description=description,
        group=group,
        create=create,
        if_version=if_version,
        dry_run=dry_run,
        cluster=cluster,
    )
    with _session(ctx) as session:
        done = configs.set_checked(
            session, service, values, state(ctx).settings, push=push_after, actor=_actor(ctx, actor), **options
        )
    _show_changes(ctx, done.result, output, done.check)
    if done.push_next:
        _push(ctx, [service], dry_run=False, yes=True, reason=reason, actor=actor, timeout=CHANGE_TIMEOUT_S, output=None)


@app.command()
def profiles(ctx: typer.Context, output: OutputOption = None) -> None:
    """List the named profiles from the guide's configuration guidelines, with each one's default lag objective. Example: loomctl config profiles -o yaml"""
    emit(ctx, views.profile_records(), output, views.PROFILES)


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
        check = _checked(ctx, session, result)
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
    emit(ctx, entries, output, views.history(service))


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
    emit(ctx, result, output, views.diff(all_fields))
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
            _checked(ctx, session, plan.result)  # one the broker would refuse is refused before asking
            preview(ctx, plan.result, output, views.CHANGES)
            confirm("roll back?")
        result = configs.rollback(session, plan, actor=_actor(ctx, actor), reason=reason)
        check = _checked(ctx, session, result)
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
    ask = None if yes else (lambda plan: confirm("apply these changes?"))
    with _session(ctx) as session:
        report = configs.import_specs(
            session, items, state(ctx).settings, prune=prune, dry_run=dry_run, show=_import_plan(ctx, output), confirm=ask,
            actor=_actor(ctx, actor), reason=reason,
        )  # fmt: skip
    for line in [f"applied {len(report.results)} change(s)", *report.notes()] if report.applied else []:
        info(line)


@app.command()
def fields(ctx: typer.Context, output: OutputOption = None) -> None:
    """List every consumer setting with its range, default and per-client names. Example: loomctl config fields -o json"""
    emit(ctx, views.field_records(), output, views.FIELDS)


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

    def ask(plan: list[Any], count: int) -> None:
        preview(ctx, plan, output, views.PUSH_PLAN)
        confirm(f"set the group configs of {count} group(s) on the broker?")

    with _session(ctx) as session:
        report = configs.push_configs(
            session,
            services,
            configs.admins(session, state(ctx).settings, timeout=kafka.DEFAULT_TIMEOUT_S),
            dry_run=dry_run,
            confirm=None if yes else ask,
            actor=_actor(ctx, actor),
            reason=reason,
            timeout=timeout,
        )
    emit(ctx, report, output, views.PUSH)
    info("push: " + (", ".join(f"{n} {a}" for a, n in report.counts().items()) or "no services"))
    if failure := report.failure():
        raise LoomError(failure)


@app.command()
def drift(
    ctx: typer.Context,
    services: ServicesArgument = None,
    fail: Annotated[bool, typer.Option("--fail", help="Exit 1 when any service drifts (for CI and cron).")] = False,
    timeout: ReadTimeoutOption = DEFAULT_TIMEOUT_S,
    output: OutputOption = None,
) -> None:
    """Compare the table with the cluster: protocol, broker-side group configs, assignor, idle members. Example: loomctl config drift --fail"""
    import contextlib

    from loomctl import configs
    from loomctl.errors import LoomError

    with contextlib.ExitStack() as stack:
        with _session(ctx) as session:
            found = configs.chosen_configs(session, services or [])
            admin_of = configs.admins(session, state(ctx).settings, timeout=timeout)
            wire_of = configs.wires(session, state(ctx).settings, stack, timeout=timeout)
            for name in configs.by_cluster(found):
                admin_of(name)  # every cluster's clients built while the registry is at hand
                wire_of(name)
            running = configs.running_instances(session, [c.service_name for c in found])
        report = configs.drift_by_cluster(found, admin_of, timeout=timeout, wire_of=wire_of)
        report.with_instances({c.service_name: c.version for c in found}, running)
    emit(ctx, report, output, views.DRIFT)
    info(report.summary())
    if fail and (failure := report.failure()):
        raise LoomError(failure)


@app.command()
def readiness(
    ctx: typer.Context,
    services: ServicesArgument = None,
    cluster: ClusterOption = None,
    fail_on_blockers: Annotated[
        bool, typer.Option("--fail-on-blockers", help="Exit 1 when a service is blocked or cannot be told ready (for CI).")
    ] = False,
    timeout: ReadTimeoutOption = DEFAULT_TIMEOUT_S,
    output: OutputOption = None,
) -> None:
    """What stands between each classic-protocol service and the consumer protocol (KIP-848, KIP-1274), and the commands that move it. Example: loomctl config readiness --cluster default"""
    from loomctl import configs
    from loomctl.configs import readiness as ready

    base = state(ctx).settings
    with _session(ctx) as session:
        found = configs.list_configs(session, services=services or [], cluster=cluster)
        clients = ready.cluster_clients(found, configs.admins(session, base, timeout=timeout))
        properties = ready.cluster_properties(found, configs.kafka_properties_of(session, base))
    report = ready.readiness(found, clients, timeout=timeout, properties=properties)
    emit(ctx, report, output, views.READINESS)
    info(report.summary())
    if failure := report.failure(fail_on_blockers=fail_on_blockers):
        raise failure


def _import_plan(ctx: typer.Context, output: Output | None) -> Any:
    """How `config import` shows its plan: the plan on stdout, its counts on stderr."""

    def show(plan: Any) -> None:
        emit(ctx, plan, output, views.IMPORT_PLAN)
        info("plan: " + ", ".join(f"{n} {a}" for a, n in plan.counts().items()))

    return show
