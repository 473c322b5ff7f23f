"""`loomctl lag`: live lag from the cluster, the collector, history and status."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from typer.core import TyperCommand

from loomctl.cli.options import (
    BucketOption,
    ClusterOption,
    OutputOption,
    ServiceArgument,
    ServicesArgument,
    SinceOption,
    emit,
    info,
    new_app,
    number,
    read_range,
    state,
    tables_only,
)
from loomctl.cli.signals import stop_on_signals
from loomctl.clusters.store import ENV_CLUSTER
from loomctl.lag import views
from loomctl.lag.live import BROKER_LACKS, BY
from loomctl.lag.verdicts import STATUS_WINDOW_TEXT

if TYPE_CHECKING:
    from loomctl.lag import LagView

app = new_app("Consumer lag: live from Kafka, sampled into PostgreSQL, judged over a time window.")

Services = ServicesArgument

By = Enum("By", {name: name for name in BY}, type=str)  # type: ignore[misc]  # the choices are the core's (lag.live.BY)


@contextlib.contextmanager
def _optional_db(ctx: typer.Context) -> Any:
    """A database connection when one is configured, else None (lag show works from Kafka alone)."""
    settings = state(ctx).settings
    if not settings.database_url:
        yield None
        return
    from loomctl.db import connect

    with connect(settings) as conn:
        yield conn


REGISTRY = "\0registry"
"""Where :func:`_registry` keeps the clusters among the clients kept by name (no cluster name has a NUL)."""


def _registry(conn: Any, kept: dict[str, Any]) -> Callable[[str], Any]:
    """Each registered cluster by name, every one read once now (kept in ``kept``): `lag show` reads its stored samples
    on the connection while the clusters are asked, so nothing may query it then (one that did waited for that
    read: 1.8 s at 2,000 configured groups). A name not registered is NotFound, as before."""
    from loomctl import clusters

    if REGISTRY not in kept:
        kept[REGISTRY] = {c.cluster_name: c for c in clusters.read_clusters(conn)}
    known: dict[str, Any] = kept[REGISTRY]

    def cluster_of(name: str) -> Any:
        return known[name] if name in known else clusters.get_cluster(conn, name)

    return cluster_of


def _admins(ctx: typer.Context, conn: Any, kept: dict[str, Any]) -> Any:
    """The AdminClient of each registered cluster by name, kept in ``kept`` (across --watch's redraws): a
    :class:`~loomctl.kafka.clients.LazyAdmin`, built when first used (`lag show --all-groups` may never use it);
    without a database, the flags' cluster is all there is."""
    from loomctl import clusters, kafka
    from loomctl.kafka.clients import LazyAdmin

    settings = state(ctx).settings

    def lazy(chosen: Any) -> LazyAdmin:
        properties = chosen.kafka_properties()  # read now: a bad properties file is the command's error, as before
        return LazyAdmin(lambda: kafka.admin_for(properties))

    if conn is None:
        if "" not in kept:
            kept[""] = lazy(settings)
        admin = kept[""]
        return lambda _name: admin
    cluster_of = _registry(conn, kept)

    def admin_of(name: str) -> Any:
        if name not in kept:
            kept[name] = lazy(clusters.settings_for(cluster_of(name), settings))
        return kept[name]

    return admin_of


def _wires(ctx: typer.Context, conn: Any, kept: dict[str, Any]) -> Any:
    """The group-types client (:func:`loomctl.kafka.protocol.client`) of each cluster by name, opened when first
    asked for and kept in ``kept`` (closed by the command at its end)."""
    from loomctl import clusters

    settings = state(ctx).settings
    stack = kept.setdefault("", contextlib.ExitStack())
    cluster_of = None if conn is None else _registry(conn, kept)

    def wire_of(name: str) -> Any:
        key = f"wire:{name}"
        if key not in kept:
            from loomctl.kafka import protocol  # kafka-python only when a group needs it (0.4 s to import)

            chosen = settings if cluster_of is None else clusters.settings_for(cluster_of(name), settings)
            kept[key] = protocol.client_or_reason(stack, chosen)
        return kept[key]

    return wire_of


def _read_view(
    ctx: typer.Context,
    services: list[str],
    groups: list[str],
    all_groups: bool,
    by: By | None,
    window: str,
    cluster: str | None,
    kept: dict[str, Any],
) -> LagView:
    from loomctl import lag
    from loomctl.validation import parse_duration

    status_window = parse_duration(window, option="--window")
    with _optional_db(ctx) as conn:
        if cluster is not None and conn is not None:
            from loomctl.clusters import get_cluster

            get_cluster(conn, cluster)  # NotFound for a cluster that is not registered
        return lag.show(
            _admins(ctx, conn, kept.setdefault("admins", {})),
            conn,
            services=services,
            groups=groups,
            all_groups=all_groups,
            by=by.value if by else None,
            status_window=status_window,
            cluster=cluster,
            wire=_wires(ctx, conn, kept.setdefault("wires", {})),
        )


def _watch(read: Callable[[], LagView], every: float) -> None:
    """Redraw the lag of ``read()`` every ``every`` seconds until Ctrl-C."""
    import time

    from rich.console import Console
    from rich.live import Live
    from rich.text import Text

    from loomctl.kafka.clients import enable_faulthandler
    from loomctl.render import tables_text

    enable_faulthandler()  # it runs until Ctrl-C: a crash leaves a stack

    def draw() -> Any:
        heading = f"at {time.strftime('%H:%M:%S')}, every {every:g}s (Ctrl-C to stop)\n"
        return Text(heading + "".join(tables_text(read(), views.SHOW)).rstrip("\n"))

    with Live(draw(), console=Console(), auto_refresh=False, screen=False) as live:
        try:
            while True:
                time.sleep(every)
                live.update(draw(), refresh=True)
        except KeyboardInterrupt:
            pass


@app.command()
def show(
    ctx: typer.Context,
    services: Services = None,
    group: Annotated[Optional[list[str]], typer.Option("--group", "-g", help="A consumer group id (repeatable).")] = None,
    all_groups: Annotated[
        bool, typer.Option("--all-groups", help="Every group on the cluster; those no config owns are marked unmanaged.")
    ] = False,
    by: Annotated[
        Optional[By],
        typer.Option(
            "--by",
            help="Rows per service, topic or partition (default: service, or partition when services or groups are named).",
        ),
    ] = None,
    window: Annotated[
        str, typer.Option("--window", help="Time window of stored samples behind each status.")
    ] = STATUS_WINDOW_TEXT,
    watch: Annotated[
        Optional[float], typer.Option("--watch", help="Redraw every SECONDS until Ctrl-C.", parser=number(float, 0.5, 86_400))
    ] = None,
    cluster: ClusterOption = None,
    output: OutputOption = None,
) -> None:
    """Live lag from each service's cluster: offsets, lag, lag in time, owner and status per partition. Example: loomctl lag show speech-processor --by partition"""
    if watch is not None:
        tables_only(ctx, output, "--watch redraws a table")
    kept: dict[str, Any] = {}

    from loomctl.lag.live import gc_paused

    def read() -> LagView:
        with gc_paused():  # a snapshot's offsets and rows: tens of thousands of objects, no cycles among them
            return _read_view(ctx, services or [], group or [], all_groups, by, window, cluster, kept)

    # Paused from the read to the end (a redraw of --watch resumes it between reads): resuming it set off a collection
    # that walked every object the read had made (30-35 ms at 2,000 groups), all still held and none in a cycle.
    # Frozen once written, as the command ends next (see loomctl.cli.main), so resuming sets off none.
    with gc_paused() if watch is None else contextlib.nullcontext():
        with contextlib.ExitStack() as stack:
            wires = kept.setdefault("wires", {})
            stack.callback(lambda: wires[""].close() if "" in wires else None)
            if watch is not None:
                return _watch(read, watch)
            shown = read()
        emit(ctx, shown, output, views.SHOW)
        import gc

        gc.freeze()
    for name, why in shown.limited.items():
        if why.startswith(BROKER_LACKS):  # every group it has is listed: it cannot have groups of those types
            info(f"cluster {name}: {why}: every group it has is listed")
        else:
            info(f"cluster {name}: only its consumer groups are listed ({why})")
    _unreachable(shown.unreachable)


def _unreachable(failed: dict[str, str]) -> None:
    """After the rows: exit 5 naming each cluster that could not be read (its groups were shown unknown)."""
    from loomctl.errors import BackendUnavailable

    if failed:
        for name, why in failed.items():
            info(f"cluster {name}: {why}")
        raise BackendUnavailable(
            f"could not read cluster{'s' if len(failed) > 1 else ''} {', '.join(failed)}: its groups show unknown lag"
        )


def _event_printer(verbose: bool) -> Callable[[str, str], None]:
    """The collector's events on stderr, stamped in UTC; debug ones only with --verbose."""
    import time

    def event(level: str, message: str) -> None:
        if level != "debug" or verbose:
            info(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {level}: {message}")

    return event


Granularity = Enum("Granularity", {name: name for name in views.GRANULARITIES}, type=str)  # type: ignore[misc]
DEFAULT_GRANULARITY = Granularity(views.GRANULARITIES[0])


class _BareListen(TyperCommand):
    """`--listen` alone (last, or before another option) means the default address: Typer's parser has no
    options with an optional value, so the value is filled in before it parses."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        filled: list[str] = []
        for i, arg in enumerate(args):
            filled.append(arg)
            if arg == "--listen" and (i + 1 == len(args) or args[i + 1].startswith("-")):
                filled.append(views.DEFAULT_LISTEN)
        return super().parse_args(ctx, filled)


@app.command(cls=_BareListen)
def collect(
    ctx: typer.Context,
    interval: Annotated[str, typer.Option("--interval", help="Time between samples.")] = "30s",
    once: Annotated[bool, typer.Option("--once", help="Take one sample and exit (non-zero if it failed).")] = False,
    retention: Annotated[str, typer.Option("--retention", help="Keep this much history; older days are dropped hourly.")] = "7d",
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Report every sample written.")] = False,
    listen: Annotated[
        Optional[str],
        typer.Option(
            "--listen",
            metavar="HOST:PORT",
            help=f"Serve /metrics (Prometheus) and the Burrow API (/v3/kafka) from the last cycle; alone: {views.DEFAULT_LISTEN}.",
        ),
    ] = None,
    cluster_name: Annotated[
        str,
        typer.Option(
            "--cluster-name",
            envvar=views.ENV_CLUSTER_NAME,
            show_envvar=True,
            help="The name the default cluster is exported under (its cluster_name label and Burrow cluster).",
        ),
    ] = views.DEFAULT_CLUSTER_NAME,
    cluster: Annotated[
        Optional[str],
        typer.Option(
            "--cluster", envvar=ENV_CLUSTER, show_envvar=True, help="Sample this registered cluster only (default: every one)."
        ),
    ] = None,
    granularity: Annotated[
        Granularity, typer.Option("--granularity", help="Series per partition, or per topic only (fewer series).")
    ] = DEFAULT_GRANULARITY,
    window: Annotated[
        str, typer.Option("--window", help="Time window of stored samples behind the statuses served with --listen.")
    ] = STATUS_WINDOW_TEXT,
    web_config: Annotated[
        Optional[str],
        typer.Option(
            "--web-config",
            metavar="FILE",
            help="TLS, client certificates, basic auth (bcrypt) and headers for --listen, in the web configuration file format of Prometheus exporters (--web.config.file); re-read when it or its certificates change.",
        ),
    ] = None,
    web_open_health: Annotated[
        bool,
        typer.Option(
            "--web-open-health",
            help="With --web-config's basic_auth_users: leave /healthz, /livez, /readyz and /burrow/admin[/ready] without basic auth (TLS and client certificates still apply).",
        ),
    ] = False,
) -> None:
    """Sample every configured group into consumer_lag_history until stopped; with --listen, serve each cycle to Prometheus and Burrow clients. Example: loomctl lag collect --interval 30s --listen 0.0.0.0:9308"""
    from loomctl.lag.collector import Collector
    from loomctl.lag.http import serving

    on_event = _event_printer(verbose)
    web = _web_config(listen, web_config, web_open_health, on_event)
    collector = Collector.from_options(
        state(ctx).settings, interval=interval, retention=retention, window=window, listen=listen,
        cluster_name=cluster_name, granularity=granularity.value, cluster=cluster, on_event=on_event,
    )  # fmt: skip
    # asked twice: stop now, even in the middle of a cycle
    with collector, stop_on_signals(second_interrupts=True) as stop, serving(collector.exporter, listen, web) as url:
        if not once:
            info(f"collecting every {interval}, keeping {retention}; Ctrl-C to stop")
        if url:
            info(f"serving {url}/metrics and {url}/v3/kafka")
            if web is not None and web.settings.http2_set:
                info(f"--web-config {web_config}: http_server_config.http2 is ignored: the endpoint speaks HTTP/1.1 only")
        wrote = collector.run(stop, once=once)
    if once:
        info(f"sampled {'1 cycle' if wrote else 'nothing: no configured groups'}")


def _web_config(listen: str | None, path: str | None, open_health: bool, on_event: Callable[[str, str], None]) -> Any:
    """The web configuration file read (BadInput, exit 2, when it does not read), or None without one."""
    from loomctl.errors import BadInput

    if path is None:
        if open_health:
            raise BadInput("--web-open-health needs --web-config")
        return None
    if listen is None:
        raise BadInput("--web-config needs --listen")
    from loomctl.lag.webconfig import WebConfig

    web = WebConfig(path, open_health=open_health, on_event=on_event)
    if open_health and not web.settings.users:
        raise BadInput(f"--web-open-health: --web-config {path} has no basic_auth_users, so nothing is closed to open")
    return web


@app.command()
def collectors(ctx: typer.Context, output: OutputOption = None) -> None:
    """The `lag collect` processes sharing this database's groups, and how many of the 256 shares each holds. Example: loomctl lag collectors"""
    from loomctl.db import connect
    from loomctl.lag.shares import shares_report

    with connect(state(ctx).settings) as conn:
        report = shares_report(conn)
    emit(ctx, report, output, views.COLLECTORS)
    if report.unowned:
        info(f"{report.unowned} of {report.shards} shares have no collector: their groups are not sampled")


@app.command()
def status(
    ctx: typer.Context,
    services: Services = None,
    window: Annotated[str, typer.Option("--window", help="How far back the stored samples are judged.")] = STATUS_WINDOW_TEXT,
    all_partitions: Annotated[
        bool, typer.Option("--all-partitions", help="List OK partitions too (default: only the others).")
    ] = False,
    cluster: ClusterOption = None,
    output: OutputOption = None,
) -> None:
    """OK, WARN, STALL, STOP, REWIND or ERR per group and partition, with the evidence. Example: loomctl lag status --window 15m"""
    from loomctl import lag
    from loomctl.db import connect
    from loomctl.validation import parse_duration

    status_window = parse_duration(window, option="--window")
    with connect(state(ctx).settings) as conn:
        report = lag.status_report(conn, status_window, services or [], cluster)
    emit(ctx, report, output, views.status(window, all_partitions))


@app.command()
def slo(
    ctx: typer.Context,
    services: Services = None,
    window: Annotated[str, typer.Option("--window", help="How far back the stored samples are judged.")] = STATUS_WINDOW_TEXT,
    cluster: ClusterOption = None,
    output: OutputOption = None,
) -> None:
    """Each service against its lag objective, worst first: lag in time, catch-up, breach, and the partitions that would meet it. Example: loomctl lag slo --window 15m"""
    from loomctl import lag
    from loomctl.db import connect
    from loomctl.validation import parse_duration

    status_window = parse_duration(window, option="--window")
    with connect(state(ctx).settings) as conn:
        report = lag.slo_report(conn, status_window, services or [], cluster)
    emit(ctx, report, output, views.slo(window))


@app.command()
def history(
    ctx: typer.Context,
    service: ServiceArgument,
    since: SinceOption = "1h",
    bucket: BucketOption = "1m",
    output: OutputOption = None,
) -> None:
    """Lag over time per topic, with a sparkline, from the stored samples. Example: loomctl lag history speech-processor --since 6h --bucket 5m"""
    from loomctl import lag

    topics = read_range(ctx, lag.history, service, since, bucket)
    emit(ctx, topics, output, views.history(service, since, bucket))
    if not topics:
        info(f"no samples for {service} in the last {since}: is `loomctl lag collect` running?")
