"""Processing metrics, alerts and recommendations: what services report about their batches, and what the views
conclude from it and the lag.

Read-only queries over ``consumer_processing_metrics``, ``v_consumer_performance_monitor`` and
``v_consumer_alerts``; the SQL views hold the rules, so psql users and loomctl see the same.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, make_dataclass
from typing import TYPE_CHECKING, Any

from loomctl.errors import BadInput
from loomctl.lag.verdicts import STATUS_WINDOW

if TYPE_CHECKING:
    import psycopg

SEVERITIES = ("warning", "critical")


BATCH_TOTALS: dict[str, tuple[str, str]] = {
    "batches": ("count(*)::int", "int"),
    "messages_received": ("sum(batch_size)::bigint", "int | None"),
    "messages_processed": ("sum(messages_processed)::bigint", "int | None"),
    "messages_failed": ("sum(messages_failed)::bigint", "int | None"),
    "avg_batch_size": ("round(avg(batch_size)::numeric, 1)", "Decimal | None"),
    "avg_processing_time_ms": ("round(avg(processing_time_ms)::numeric, 1)", "Decimal | None"),
    "p95_processing_time_ms": (
        "round((percentile_cont(0.95) WITHIN GROUP (ORDER BY processing_time_ms))::numeric, 1)",
        "Decimal | None",
    ),
    "max_processing_time_ms": ("round(max(processing_time_ms)::numeric, 1)", "Decimal | None"),
    "messages_per_second": (
        "round((sum(messages_processed) * 1000.0 / nullif(sum(processing_time_ms), 0))::numeric, 1)",
        "Decimal | None",
    ),
    "error_rate": ("round(sum(messages_failed)::numeric / nullif(sum(batch_size), 0), 4)", "Decimal | None"),
}
"""What `metrics show` adds up over a set of batches: per figure its SQL over ``consumer_processing_metrics``
and its type. The query and both result rows are built from this one table."""
_AGGREGATES = ", ".join(f"{sql} AS {name}" for name, (sql, _) in BATCH_TOTALS.items())
_TOTAL_FIELDS = [(name, kind) for name, (_, kind) in BATCH_TOTALS.items()]

ProcessingBucket = make_dataclass("ProcessingBucket", [("timestamp", "dt.datetime"), *_TOTAL_FIELDS], frozen=True)
ProcessingBucket.__doc__ = "The batches of one time bucket."

ProcessingSummary = make_dataclass(
    "ProcessingSummary",
    [
        ("service_name", "str"),
        ("consumer_group_id", "str"),
        ("since", "dt.datetime"),
        *_TOTAL_FIELDS,
        ("first_at", "dt.datetime | None"),
        ("last_at", "dt.datetime | None"),
        ("max_poll_records", "int"),
        ("batch_fill", "float | None"),
        ("max_poll_interval_ms", "int"),
        ("poll_interval_usage", "float | None"),
    ],
    frozen=True,
)
ProcessingSummary.__doc__ = "All batches of the range, and how full and how long they were against the service's settings."


@dataclass(frozen=True)
class ProcessingReport:
    """`metrics show`: one service's batches over a time range, in total and per bucket."""

    summary: Any
    """A :data:`ProcessingSummary`."""
    buckets: list[Any]
    """:data:`ProcessingBucket` rows, oldest first."""


def _dicts(conn: "psycopg.Connection[Any]", sql: str, params: Any = None) -> list[dict[str, Any]]:
    from psycopg.rows import dict_row

    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(sql, params).fetchall()


def _require_service(conn: "psycopg.Connection[Any]", service: str) -> dict[str, Any]:
    from loomctl import configs

    return configs.require_configs(conn, [service])[0].values()


def use_status_window(conn: "psycopg.Connection[Any]", window: dt.timedelta | None) -> None:
    """Judge lag over ``window`` instead of the views' 15 minutes, for this transaction only."""
    if window is not None:
        conn.execute("SELECT set_config('loomctl.status_window', %s, true)", (f"{window.total_seconds()} seconds",))


def alerts(
    conn: "psycopg.Connection[Any]", window: dt.timedelta | None = None, cluster: str | None = None
) -> list[dict[str, Any]]:
    """Every active alert (``v_consumer_alerts``) of every cluster, or of ``cluster``, critical first."""
    use_status_window(conn, window)
    _require_cluster(conn, cluster)
    return _dicts(
        conn,
        "SELECT * FROM public.v_consumer_alerts WHERE %s::text IS NULL OR cluster_name = %s"
        " ORDER BY CASE severity WHEN 'critical' THEN 0 ELSE 1 END, service_name, alert_type",
        (cluster, cluster),
    )


def _require_cluster(conn: "psycopg.Connection[Any]", cluster: str | None) -> None:
    if cluster is not None:
        from loomctl.clusters import get_cluster

        get_cluster(conn, cluster)  # NotFound for a cluster that is not registered


def alerts_at_or_above(rows: list[dict[str, Any]], level: str) -> list[dict[str, Any]]:
    """The alerts that reach ``level`` ("warn" counts warnings and criticals, "critical" only criticals)."""
    floor = {"warn": 0, "warning": 0, "critical": 1}.get(level)
    if floor is None:
        raise BadInput(f"--fail-on {level!r}: choose warn or critical")
    return [r for r in rows if SEVERITIES.index(r["severity"]) >= floor] if rows else []


def recommendations(
    conn: "psycopg.Connection[Any]",
    service: str | None = None,
    window: dt.timedelta | None = None,
    cluster: str | None = None,
) -> list[dict[str, Any]]:
    """The monitor view's rows that carry a recommendation (for one service: its row either way).

    A service breached or at risk against its lag objective also gets ``consumers_needed`` and
    ``slo_recommendation``: the partitions (one consumer each) that drain its current lag within the objective
    at the measured rates, per lagging topic with the arithmetic (never fewer than today).
    """
    from loomctl.lag.status import slo_report

    use_status_window(conn, window)
    if service is not None:
        _require_service(conn, service)
        rows = _dicts(conn, "SELECT * FROM public.v_consumer_performance_monitor WHERE service_name = %s", (service,))
    else:
        _require_cluster(conn, cluster)
        rows = _dicts(
            conn,
            "SELECT * FROM public.v_consumer_performance_monitor WHERE recommendation IS NOT NULL"
            " AND (%s::text IS NULL OR cluster_name = %s) ORDER BY service_name",
            (cluster, cluster),
        )
    late = [r["service_name"] for r in rows if r.get("slo_state") in ("breached", "at_risk")]
    fixes = {s.service_name: s for s in slo_report(conn, window or STATUS_WINDOW, late).services} if late else {}
    for row in rows:
        fix = fixes.get(row["service_name"])
        row["consumers_needed"] = fix.partitions_needed if fix else None
        row["slo_recommendation"] = "; ".join(f.reason for f in fix.fixes) if fix and fix.fixes else None
    return rows


def processing(conn: "psycopg.Connection[Any]", service: str, *, since: dt.timedelta, bucket: dt.timedelta) -> ProcessingReport:
    """`metrics show`: one service's batches over ``since``: a summary and one row per bucket."""
    from psycopg.rows import class_row

    config = _require_service(conn, service)
    start = dt.datetime.now(dt.timezone.utc) - since
    summary = _dicts(
        conn,
        f'SELECT {_AGGREGATES}, min("timestamp") AS first_at, max("timestamp") AS last_at'
        ' FROM public.consumer_processing_metrics WHERE service_name = %s AND "timestamp" > %s',
        (service, start),
    )[0]
    cursor: "psycopg.Cursor[Any]" = conn.cursor(row_factory=class_row(ProcessingBucket))
    with cursor as cur:
        buckets = cur.execute(
            f'SELECT date_bin(%s, "timestamp", \'2000-01-01\'::timestamptz) AS "timestamp", {_AGGREGATES}'
            ' FROM public.consumer_processing_metrics WHERE service_name = %s AND "timestamp" > %s'
            " GROUP BY 1 ORDER BY 1",
            (bucket, service, start),
        ).fetchall()
    avg_batch = summary["avg_batch_size"]
    longest = summary["max_processing_time_ms"]
    return ProcessingReport(
        summary=ProcessingSummary(
            service_name=service,
            consumer_group_id=config["consumer_group_id"],
            since=start,
            **summary,
            max_poll_records=config["max_poll_records"],
            batch_fill=round(float(avg_batch) / config["max_poll_records"], 3) if avg_batch is not None else None,
            max_poll_interval_ms=config["max_poll_interval_ms"],
            poll_interval_usage=round(float(longest) / config["max_poll_interval_ms"], 3) if longest is not None else None,
        ),
        buckets=buckets,
    )
