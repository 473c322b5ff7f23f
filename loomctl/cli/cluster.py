"""`loomctl cluster`: the Kafka clusters loomctl watches, where their brokers are, and what each can do."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from loomctl.cli.config import ActorOption, DryRunOption, IfVersionOption, ReadTimeoutOption, ReasonOption, YesOption
from loomctl.cli.options import COUNT_MAX, OutputOption, confirm, emit, info, new_app, number, state
from loomctl.clusters import views

app = new_app("Kafka clusters: register, change and remove them, and check what each can do.")

ClusterArgument = Annotated[str, typer.Argument(help="The cluster's name (see `loomctl cluster list`).", show_default=False)]
BootstrapOption = Annotated[Optional[str], typer.Option("--bootstrap-servers", help="host:port[,host:port] of its brokers.")]
PropertiesFileOption = Annotated[
    Optional[str],
    typer.Option(
        "--properties-file", help="A librdkafka properties file (SASL, SSL) on the machines that run loomctl; '' clears."
    ),
]
PropertiesEnvOption = Annotated[
    Optional[str],
    typer.Option(
        "--properties-env", help="An environment variable holding that file's path, read where loomctl runs; '' clears."
    ),
]
LabelOption = Annotated[
    Optional[list[str]], typer.Option("--label", help="key=value, repeatable (on `set`, key= removes the label).")
]
DescriptionOption = Annotated[Optional[str], typer.Option("--description", help="What the cluster is; '' clears.")]


def _session(ctx: typer.Context) -> Any:
    from loomctl.db import session_scope

    return session_scope(state(ctx).settings)


def _actor(ctx: typer.Context, actor: str | None) -> str:
    return actor or state(ctx).settings.resolved_actor()


def _changed(ctx: typer.Context, result: Any, output: Any) -> None:
    emit(ctx, result, output, views.CHANGES)
    if result.action == "unchanged":
        info(f"cluster {result.cluster_name}: nothing to change (version {result.version_before})")
    elif result.dry_run:
        info(f"dry run, nothing written: would {result.action} cluster {result.cluster_name}")
    else:
        info(f"cluster {result.cluster_name}: {result.action}d (version {result.version_after or result.version_before})")


@app.command("list")
def list_clusters(ctx: typer.Context, output: OutputOption = None) -> None:
    """Every registered cluster, its brokers, labels and services. Example: loomctl cluster list -o json"""
    from loomctl import clusters

    with _session(ctx) as session:
        found = clusters.read_clusters(session)
    emit(ctx, found, output, views.LIST)


@app.command()
def show(ctx: typer.Context, cluster: ClusterArgument, output: OutputOption = None) -> None:
    """One cluster and what its last check found. Example: loomctl cluster show eu-prod"""
    from loomctl import clusters

    with _session(ctx) as session:
        found = clusters.get_cluster(session, cluster)
    emit(ctx, found.record(), output, views.SHOW)


@app.command()
def add(
    ctx: typer.Context,
    cluster: ClusterArgument,
    bootstrap_servers: BootstrapOption = None,
    properties_file: PropertiesFileOption = None,
    properties_env: PropertiesEnvOption = None,
    label: LabelOption = None,
    description: DescriptionOption = None,
    reason: ReasonOption = None,
    dry_run: DryRunOption = False,
    actor: ActorOption = None,
    output: OutputOption = None,
) -> None:
    """Register a cluster (its secrets stay in its properties file). Example: loomctl cluster add eu-prod --bootstrap-servers k1:9092 --label region=eu"""
    from loomctl import clusters

    labels = clusters.parse_labels(label or [])
    with _session(ctx) as session:
        result = clusters.add_cluster(
            session, cluster, bootstrap_servers=bootstrap_servers, properties_file=properties_file,
            properties_env=properties_env, labels=labels, description=description, actor=_actor(ctx, actor),
            reason=reason, dry_run=dry_run,
        )  # fmt: skip
    _changed(ctx, result, output)


@app.command("set")
def set_(
    ctx: typer.Context,
    cluster: ClusterArgument,
    bootstrap_servers: BootstrapOption = None,
    properties_file: PropertiesFileOption = None,
    properties_env: PropertiesEnvOption = None,
    label: LabelOption = None,
    description: DescriptionOption = None,
    reason: ReasonOption = None,
    if_version: IfVersionOption = None,
    dry_run: DryRunOption = False,
    actor: ActorOption = None,
    output: OutputOption = None,
) -> None:
    """Change a cluster's brokers, properties source, labels or description. Example: loomctl cluster set default --bootstrap-servers k1:9092"""
    from loomctl import clusters

    given = {"bootstrap_servers": bootstrap_servers, "properties_file": properties_file, "properties_env": properties_env}
    fields = {k: v for k, v in (given | {"description": description}).items() if v is not None}
    with _session(ctx) as session:
        result = clusters.set_cluster(
            session, cluster, labels=clusters.parse_labels(label or []), actor=_actor(ctx, actor), reason=reason,
            if_version=if_version, dry_run=dry_run, **fields,
        )  # fmt: skip
    _changed(ctx, result, output)


@app.command()
def remove(
    ctx: typer.Context,
    cluster: ClusterArgument,
    yes: YesOption = False,
    reason: ReasonOption = None,
    if_version: IfVersionOption = None,
    dry_run: DryRunOption = False,
    actor: ActorOption = None,
) -> None:
    """Unregister a cluster that no service and no partition change names. Example: loomctl cluster remove old-dc --yes"""
    from loomctl import clusters

    with _session(ctx) as session:
        plan = clusters.remove_cluster(session, cluster, actor=_actor(ctx, actor), if_version=if_version, dry_run=True)
        if not (yes or dry_run):
            confirm(f"remove cluster {cluster} (version {plan.version_before}) from the registry?")
        if not dry_run:
            clusters.remove_cluster(session, cluster, actor=_actor(ctx, actor), reason=reason, if_version=if_version)
    info(f"{'dry run, nothing written: would remove' if dry_run else 'removed'} cluster {cluster}")


@app.command()
def check(
    ctx: typer.Context,
    names: Annotated[Optional[list[str]], typer.Argument(help="Clusters to check (default: all).", show_default=False)] = None,
    timeout: ReadTimeoutOption = 10.0,
    output: OutputOption = None,
) -> None:
    """Ask each cluster what it can do (KIP-848, share and streams groups, group configs) and keep the answer. Example: loomctl cluster check"""
    from loomctl import clusters
    from loomctl.clusters.check import check_clusters, unreachable_error

    settings = state(ctx).settings
    with _session(ctx) as session:
        found = clusters.read_clusters(session, names or [])
    results = check_clusters(found, settings, timeout)
    with _session(ctx) as session:
        for result in results:
            if result.capabilities is not None:
                clusters.record_check(session, result.cluster_name, result.capabilities, actor=settings.resolved_actor())
    emit(ctx, results, output, views.CHECKS)
    unreachable_error(results)


@app.command()
def history(
    ctx: typer.Context,
    cluster: ClusterArgument,
    limit: Annotated[
        Optional[int], typer.Option("--limit", "-n", help="Only the newest N changes.", parser=number(int, 1, COUNT_MAX))
    ] = None,
    output: OutputOption = None,
) -> None:
    """Every change of a cluster's registration, raw SQL included. Example: loomctl cluster history eu-prod"""
    from loomctl import clusters

    with _session(ctx) as session:
        entries = clusters.cluster_history(session, cluster, limit)
    emit(ctx, entries, output, views.history(cluster))
