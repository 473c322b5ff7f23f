"""How each result of `loomctl lag` reads as a table (title, columns, cells), and what JSON and YAML write of it.
Declared once here; the commands hand their result and its view to :func:`loomctl.render.emit`."""

from __future__ import annotations

from typing import Any

from loomctl.render import Table, View, sparkline, view, with_cluster

# What `lag collect` serves, named here so that the CLI offers them without loading the exporter.
GRANULARITIES = ("partition", "topic")
"""How finely the exporter's series are cut: per partition, or per topic only (fewer series)."""
DEFAULT_LISTEN = "127.0.0.1:9308"
"""Where `--listen` alone serves (KMinion's and kafka-lag-exporter's neighbourhood: 9308 is Kafka exporters' port)."""
DEFAULT_CLUSTER_NAME = "default"
"""The ``cluster_name`` label, and the cluster of the Burrow API, unless named."""
ENV_CLUSTER_NAME = "LOOM_CLUSTER_NAME"

PARTITION_COLUMNS = (
    "service",
    "topic_name",
    "partition",
    "group_state",
    "group_type",
    "committed_offset",
    "log_end_offset",
    "lag",
    "time_lag_ms",
    "status",
    "client_id",
    "host",
)
SUMMARY_COLUMNS = {
    "service": (
        "name",
        "consumer_group_id",
        "group_state",
        "group_type",
        "members",
        "topics",
        "partitions",
        "partitions_unknown",
        "total_lag",
        "max_lag",
        "max_time_lag_ms",
        "status",
    ),
    "topic": ("name", "partitions", "partitions_unknown", "total_lag", "max_lag", "max_time_lag_ms", "status"),
}


def _show_rows(lag: Any) -> list[dict[str, Any]]:
    """The rows of a :class:`~loomctl.lag.live.LagView`, groups no config owns marked unmanaged."""
    if lag.by == "partition":
        return [{"service": r.service_name or f"{r.consumer_group_id} (unmanaged)", **vars(r)} for r in lag.partitions]
    rows = [vars(s) for s in lag.summaries]
    if lag.by == "service":
        rows = [{**d, "name": d["name"] if d["managed"] else f"{d['name']} (unmanaged)"} for d in rows]
    return rows


def _show_title(lag: Any) -> str:
    count = len(lag.group_ids)
    return f"lag per {lag.by}, {count} group{'s' if count != 1 else ''}"


def _show_columns(lag: Any) -> tuple[str, ...]:
    """The table's columns: with rows of more than one cluster, the cluster first."""
    columns = PARTITION_COLUMNS if lag.by == "partition" else SUMMARY_COLUMNS[lag.by]
    if lag.by == "partition" and any(r.start_offset is not None for r in lag.partitions):
        at = columns.index("committed_offset")  # a share group's place in the partition is its start offset
        columns = (*columns[:at], "start_offset", *columns[at:])
    if lag.by == "service" and any(s.note for s in lag.summaries):
        columns = (*columns, "note")
    several = len({r.cluster_name for r in lag.rows}) > 1
    return ("cluster_name", *columns) if several else columns


SHOW = View(
    (Table(_show_title, _show_columns, _show_rows),),
    document=lambda lag: [vars(r) for r in lag.rows],
)
"""A :class:`~loomctl.lag.live.LagView` (`lag show`)."""


def _catch_up(row: dict[str, Any]) -> dict[str, Any]:
    """A table row with catch-up as people read it: seconds, "never", or "-" where unknown (JSON keeps both keys)."""
    return {**row, "catch_up": "never" if row.get("catch_up_never") else row.get("catch_up_seconds")}


STATUS_GROUP_COLUMNS = (
    "service_name",
    "consumer_group_id",
    "status",
    "partitions",
    "partitions_by_status",
    "total_lag",
    "lag_change",
    "max_time_lag_ms",
    "lag_slo_seconds",
    "catch_up",
    "breach_in_seconds",
    "slo_state",
    "member_count",
    "group_type",
    "first_sample_at",
    "last_sample_at",
)
STATUS_PARTITION_COLUMNS = (
    "service_name",
    "topic_name",
    "partition",
    "status",
    "samples",
    "first_committed_offset",
    "last_committed_offset",
    "first_lag",
    "last_lag",
    "time_lag_ms",
    "produce_rate",
    "consume_rate",
    "catch_up",
    "breach_in_seconds",
    "first_timestamp",
    "last_timestamp",
)


def status(window: str, all_partitions: bool) -> View:
    """A :class:`~loomctl.lag.status.StatusReport` over ``window``: the groups, then the partitions that are not OK
    (every partition with ``all_partitions``)."""
    return View(
        (
            Table(
                f"status per group over {window}",
                lambda r: with_cluster(STATUS_GROUP_COLUMNS)(r.groups),
                lambda r: [_catch_up(vars(g)) for g in r.groups],
            ),
            Table(
                "partitions (evidence: first and last sample of the window)",
                STATUS_PARTITION_COLUMNS,
                lambda r: [_catch_up(p) for p in (r.partitions if all_partitions else r.flagged_partitions)],
                only_with_rows=True,
            ),
        )
    )


SLO_COLUMNS = (
    "service_name",
    "slo_state",
    "lag_slo_seconds",
    "lag_slo_from",
    "time_lag_seconds",
    "catch_up",
    "breach_in_seconds",
    "slowest_partition",
    "total_lag",
    "produce_rate",
    "consume_rate",
    "per_consumer_rate",
    "partitions_needed",
    "reason",
)
FIX_COLUMNS = (
    "service_name",
    "topic_name",
    "current_partitions",
    "recommended_partitions",
    "meets_objective",
    "drain_seconds",
    "reason",
)


def slo(window: str) -> View:
    """A :class:`~loomctl.lag.slo.SloReport` over ``window``: each service, then the partition counts that would meet
    the objectives."""
    return View(
        (
            Table(
                f"lag objectives over {window} (worst first)",
                lambda r: with_cluster(SLO_COLUMNS)(r.services),
                lambda r: [_catch_up(vars(s)) for s in r.services],
            ),
            Table(
                "partitions (one consumer each) that drain the current lag within the objective",
                FIX_COLUMNS,
                lambda r: [{"service_name": s.service_name, **vars(f)} for s in r.services for f in s.fixes],
                only_with_rows=True,
            ),
        )
    )


def _trend_rows(topics: list[Any]) -> list[dict[str, Any]]:
    """One row per topic, its last 120 buckets drawn as a sparkline."""
    return [
        {**{k: v for k, v in vars(t).items() if k != "buckets"}, "trend": sparkline([b.lag for b in t.buckets][-120:])}
        for t in topics
    ]


def history(service: str, since: str, bucket: str) -> View:
    """A service's :class:`~loomctl.lag.history.TopicLagHistory` list."""
    return view(
        f"{service}: lag over {since} in {bucket} buckets (oldest left)",
        ("topic_name", "min_lag", "max_lag", "last_lag", "trend"),
        rows=_trend_rows,
    )


COLLECTORS = view(
    lambda report: f"collectors sharing the groups ({report.owned} of {report.shards} shares held)",
    ("pid", "application_name", "client_addr", "backend_start", "member", "shards"),
    rows=lambda report: report.collectors,
)
"""A :class:`~loomctl.lag.shares.SharesReport` (`lag collectors`)."""
