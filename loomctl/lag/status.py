"""Statuses: the one vocabulary and its ranking, and the stored window's verdict per partition and group.

The rules (OK, WARN, STALL, STOP, REWIND, ERR, "-" per partition, each against the partition's own commit
pace) are SQL, in ``lag_partition_status``, so psql users and loomctl judge alike (:mod:`loomctl.lag.rules` is
their Python twin); ``v_consumer_performance_monitor`` picks a group's worst
partition with the same ranking as :func:`worst` (tests/lag/test_views.py holds the two together).
Against each service's lag objective the same rows give catch-up and breach predictions
(:mod:`loomctl.lag.slo`, whose SQL twin is in the monitor view too): :func:`slo_report` is `lag slo`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from loomctl.lag import slo
from loomctl.lag.samples import max_known, sum_known

if TYPE_CHECKING:
    import psycopg

from loomctl.lag.verdicts import (  # noqa: F401 (the vocabulary, re-exported where it always was)
    ERR,
    NO_DATA,
    OK,
    REWIND,
    STALL,
    STATUS_ORDER,
    STATUS_WINDOW,
    STOP,
    STORED_STATUSES,
    UNKNOWN,
    WARN,
    status_rank,
    worst,
)


@dataclass(frozen=True)
class GroupStatus:
    """One configured service's verdict over the window: its worst partition's status, with the totals."""

    service_name: str
    consumer_group_id: str
    status: str
    partitions: int
    partitions_by_status: dict[str, int]
    total_lag: int | None
    lag_change: int | None
    max_time_lag_ms: int | None
    member_count: int | None
    first_sample_at: dt.datetime | None
    last_sample_at: dt.datetime | None
    lag_slo_seconds: int | None = None
    """The service's objective for its lag in time (its own, else its profile's default)."""
    slo_state: str = slo.NO_SLO
    time_lag_seconds: float | None = None
    catch_up_seconds: float | None = None
    catch_up_never: bool = False
    breach_in_seconds: float | None = None
    slowest_partition: str | None = None
    produce_rate: float | None = None
    consume_rate: float | None = None
    group_type: str | None = None
    """classic or consumer (KIP-848) as the broker described the group at the last sample."""
    cluster_name: str = "default"
    """The cluster the service's group lives on."""


@dataclass(frozen=True)
class StatusReport:
    """`lag status`: per group (worst first), and per partition the rows of ``lag_partition_status`` with the evidence."""

    groups: list[GroupStatus]
    partitions: list[dict[str, Any]]

    @property
    def flagged_partitions(self) -> list[dict[str, Any]]:
        """The partitions that are not OK."""
        return [p for p in self.partitions if p["status"] != OK]


def stored_status(conn: "psycopg.Connection[Any]", window: dt.timedelta, group_ids: Sequence[str]) -> list[dict[str, Any]]:
    """``lag_partition_status`` over ``window`` for ``group_ids``: per partition, status and evidence, and the
    objective of the service that owns the group (``lag_slo_seconds``: its own, else its profile's)."""
    return list(iter_stored_status(conn, window, group_ids))


STREAM_ROWS = 2000
"""Rows of the window fetched at a time by :func:`iter_stored_status`."""


def iter_stored_status(
    conn: "psycopg.Connection[Any]", window: dt.timedelta, group_ids: Sequence[str], *, shared: bool = False
) -> Iterator[dict[str, Any]]:
    """:func:`stored_status` one row at a time, never a list of them: the collector's exporter keeps what it needs of
    each (hundreds of thousands at 10,000 groups, a dict of some twenty figures each). ``shared``: the names, statuses
    and times that repeat from row to row (every partition's group and topic, its status, the cycles' times) are one
    object each, so what is kept of the rows does not hold a copy of them per partition."""
    from psycopg.rows import dict_row

    with conn.cursor(row_factory=dict_row) as cur:
        seen: dict[Any, Any] = {}
        one = seen.setdefault
        # streamed a few thousand rows at a time (libpq's chunked mode): a plain execute would hold the whole result
        # in libpq's memory first, about 1 KB per partition, as long again as everything the collector keeps
        for row in cur.stream(
            "SELECT s.*, c.lag_slo_seconds AS own_lag_slo_seconds, c.profile AS service_profile"
            "  FROM public.lag_partition_status(%s) AS s"
            "  LEFT JOIN public.pipeline_consumer_configs AS c ON c.consumer_group_id = s.consumer_group_id"
            " WHERE s.consumer_group_id = ANY(%s)"
            " ORDER BY s.service_name, s.consumer_group_id, s.topic_name, s.partition",
            (window, list(group_ids)),
            size=STREAM_ROWS,
        ):
            own, profile = row.pop("own_lag_slo_seconds"), row.pop("service_profile")
            row["lag_slo_seconds"] = slo.objective(own, profile)
            if shared:
                for name in _SHARED_COLUMNS:
                    value = row.get(name)
                    if value is not None:
                        row[name] = one(value, value)
            yield row


_SHARED_COLUMNS = (
    "service_name",
    "consumer_group_id",
    "topic_name",
    "status",
    "first_timestamp",
    "last_timestamp",
    "group_type",
    "group_state",
)
"""Columns of ``lag_partition_status`` whose values repeat from partition to partition (see iter_stored_status)."""


def partition_name(row: dict[str, Any]) -> str:
    return f"{row['topic_name']}[{row['partition']}]"


def _with_predictions(row: dict[str, Any], objective: int | None) -> tuple[dict[str, Any], slo.PartitionPrediction]:
    """A window row with its rates and predictions added (rounded as the monitor view rounds them)."""
    p = slo.predict_partition(row, objective)
    return {
        **row,
        "produce_rate": slo.rounded(p.produce_rate, 2),
        "consume_rate": slo.rounded(p.consume_rate, 2),
        "catch_up_seconds": slo.rounded(p.catch_up_seconds),
        "catch_up_never": p.catch_up_never,
        "breach_in_seconds": slo.rounded(p.breach_in_seconds),
    }, p


def _group_status(
    service: str,
    group_id: str,
    rows: Sequence[dict[str, Any]],
    objective: int | None = None,
    predictions: Sequence[slo.PartitionPrediction] = (),
    window_seconds: float = STATUS_WINDOW.total_seconds(),
) -> GroupStatus:
    statuses = [r["status"] for r in rows]
    total_lag = sum_known(r["last_lag"] for r in rows)
    group = slo.predict_group([(partition_name(r), p) for r, p in zip(rows, predictions, strict=True)], objective, window_seconds)
    return GroupStatus(
        service_name=service,
        consumer_group_id=group_id,
        status=worst(statuses) if rows else NO_DATA,
        partitions=len(rows),
        partitions_by_status={s: statuses.count(s) for s in STATUS_ORDER if s in statuses},
        total_lag=total_lag,
        lag_change=(total_lag or 0) - (sum_known(r["first_lag"] for r in rows) or 0) if rows else None,
        max_time_lag_ms=max_known(r["time_lag_ms"] for r in rows),
        member_count=max_known(r["member_count"] for r in rows),
        group_type=max((r["group_type"] for r in rows if r.get("group_type")), default=None),
        first_sample_at=min((r["first_timestamp"] for r in rows), default=None),
        last_sample_at=max((r["last_timestamp"] for r in rows), default=None),
        lag_slo_seconds=objective,
        slo_state=group.slo_state,
        time_lag_seconds=group.time_lag_seconds,
        catch_up_seconds=slo.rounded(group.catch_up_seconds),
        catch_up_never=group.catch_up_never,
        breach_in_seconds=slo.rounded(group.breach_in_seconds),
        slowest_partition=group.slowest_partition,
        produce_rate=slo.rounded(group.produce_rate, 2),
        consume_rate=slo.rounded(group.consume_rate, 2),
    )


@dataclass(frozen=True)
class _Window:
    """What `lag status` and `lag slo` share: the configs, and per group its window rows with predictions."""

    configs: dict[str, Any]
    """group id -> ConsumerConfig"""
    rows: dict[str, list[dict[str, Any]]]
    predictions: dict[str, list[slo.PartitionPrediction]]
    partitions: list[dict[str, Any]]


def _read_window(
    conn: "psycopg.Connection[Any]", window: dt.timedelta, services: Sequence[str], cluster: str | None = None
) -> _Window:
    from loomctl import configs as store

    found = store.require_configs(conn, services) if services else store.list_configs(conn, cluster=cluster)
    configs = {c.consumer_group_id: c for c in found if cluster is None or c.cluster_name == cluster}
    rows: dict[str, list[dict[str, Any]]] = {}
    predictions: dict[str, list[slo.PartitionPrediction]] = {}
    partitions = []
    for row in stored_status(conn, window, list(configs)):
        group_id = row["consumer_group_id"]
        with_figures, prediction = _with_predictions(row, row["lag_slo_seconds"])
        with_figures["cluster_name"] = configs[group_id].cluster_name
        partitions.append(with_figures)
        rows.setdefault(group_id, []).append(with_figures)
        predictions.setdefault(group_id, []).append(prediction)
    return _Window(configs, rows, predictions, partitions)


def status_report(
    conn: "psycopg.Connection[Any]", window: dt.timedelta, services: Sequence[str] = (), cluster: str | None = None
) -> StatusReport:
    """`lag status`: the window's verdict per group (worst partition) and per partition with evidence,
    and each group against its lag objective.

    A configured service with no sample in the window is reported as NO_DATA, so a collector
    that stopped, or a group that was never sampled, shows instead of disappearing.
    """
    seen = _read_window(conn, window, services, cluster)
    summary = [
        replace(
            _group_status(
                config.service_name,
                group_id,
                seen.rows.get(group_id, []),
                slo.objective_of(config),
                seen.predictions.get(group_id, []),
                window.total_seconds(),
            ),
            cluster_name=config.cluster_name,
        )
        for group_id, config in sorted(seen.configs.items(), key=lambda item: item[1].service_name)
    ]
    summary.sort(key=lambda g: (-status_rank(g.status), g.service_name))
    return StatusReport(groups=summary, partitions=seen.partitions)


@dataclass(frozen=True)
class ServiceSlo:
    """One service against its lag objective (`lag slo`): the state, the predictions, the figures behind them,
    and per lagging topic the partitions that would drain its lag within the objective."""

    service_name: str
    consumer_group_id: str
    slo_state: str
    lag_slo_seconds: int | None
    lag_slo_from: str | None
    """"service" (its own), "profile NAME" (the profile's default) or None."""
    status: str
    time_lag_seconds: float | None
    catch_up_seconds: float | None
    catch_up_never: bool
    breach_in_seconds: float | None
    slowest_partition: str | None
    total_lag: int | None
    produce_rate: float | None
    consume_rate: float | None
    member_count: int | None
    per_consumer_rate: float | None
    """Messages per second one member processes (processing metrics of the last hour), else the measured
    consume rate over the members."""
    partitions_needed: int | None
    """The largest count the fixes call for (None: nothing to fix, or the rates are unknown)."""
    reason: str
    fixes: list[slo.DrainPlan]
    cluster_name: str = "default"


@dataclass(frozen=True)
class SloReport:
    """`lag slo`: the services worst first, over one window."""

    window_seconds: float
    services: list[ServiceSlo]


def _num(value: float | None) -> str:
    if value is None:
        return "unknown"
    return f"{value:,.1f}" if abs(value) < 100 else f"{value:,.0f}"


def per_consumer_rates(conn: "psycopg.Connection[Any]", services: Sequence[str]) -> dict[str, float]:
    """Messages per second one member processes, per service, from the last hour's processing metrics
    (the monitor view's messages_per_second)."""
    rows = conn.execute(
        "SELECT service_name, sum(messages_processed) * 1000.0 / nullif(sum(processing_time_ms), 0)"
        "  FROM public.consumer_processing_metrics"
        " WHERE \"timestamp\" > now() - interval '1 hour' AND service_name = ANY(%s)"
        " GROUP BY service_name",
        (list(services),),
    ).fetchall()
    return {service: float(rate) for service, rate in rows if rate is not None and rate > 0}


def _reason(group: GroupStatus, slowest: dict[str, Any] | None, service: str) -> str:
    state, objective = group.slo_state, group.lag_slo_seconds
    if state == slo.NO_SLO:
        return f"no objective: set one with `loomctl config set {service} lag_slo_seconds=N` (or give it a profile)"
    if state == slo.NO_DATA:
        return "no lag in time known in the window (no samples, or no committed offset)"
    parts = [
        f"{_num(group.time_lag_seconds)} s behind, {'over' if state == slo.BREACHED else 'within'} the objective {objective:,} s"
    ]
    if slowest is not None and group.catch_up_never:
        parts.append(
            f"never catches up: {group.slowest_partition} consumes {_num(slowest['consume_rate'])} msg/s of "
            f"{_num(slowest['produce_rate'])} produced, lag {slowest['last_lag']:,}"
        )
    elif slowest is not None and group.catch_up_seconds:
        net = (slowest["consume_rate"] or 0) - (slowest["produce_rate"] or 0)
        parts.append(
            f"catches up in {_num(group.catch_up_seconds)} s: {group.slowest_partition} lag "
            f"{slowest['last_lag']:,} / {_num(net)} msg/s net"
        )
    elif group.catch_up_seconds == 0:
        parts.append("caught up (lag within one sampling interval's production)")
    if group.breach_in_seconds and state != slo.BREACHED:
        parts.append(f"breaches in {_num(group.breach_in_seconds)} s at the current trend")
    if group.member_count == 0 and group.total_lag:
        parts.append("the group has no members: nothing consumes until the consumer is started")
    return "; ".join(parts)


def slo_report(
    conn: "psycopg.Connection[Any]", window: dt.timedelta, services: Sequence[str] = (), cluster: str | None = None
) -> SloReport:
    """`lag slo`: every (or each named) service against its objective over ``window``, worst first; for a
    service breached or at risk, per lagging topic the partitions (one consumer each) that drain the lag in time."""
    seen = _read_window(conn, window, services, cluster)
    rates = per_consumer_rates(conn, [c.service_name for c in seen.configs.values()])
    result = []
    for group_id, config in seen.configs.items():
        rows, predictions = seen.rows.get(group_id, []), seen.predictions.get(group_id, [])
        objective = slo.objective_of(config)
        group = _group_status(config.service_name, group_id, rows, objective, predictions, window.total_seconds())
        rate = rates.get(config.service_name)
        if rate is None and group.consume_rate and group.member_count:
            rate = group.consume_rate / group.member_count
        fixes: list[slo.DrainPlan] = []
        if objective is not None and group.slo_state in (slo.BREACHED, slo.AT_RISK):
            by_topic: dict[str, list[tuple[dict[str, Any], slo.PartitionPrediction]]] = {}
            for row, prediction in zip(rows, predictions, strict=True):
                by_topic.setdefault(row["topic_name"], []).append((row, prediction))
            for topic, items in sorted(by_topic.items()):
                if any(r["last_lag"] for r, _ in items):
                    produced = sum(p.produce_rate or 0.0 for _, p in items)
                    fixes.append(slo.drain_plan(topic, [r["last_lag"] for r, _ in items], produced, rate, objective))
        slowest = next((r for r in rows if partition_name(r) == group.slowest_partition), None)
        needed = [f.recommended_partitions for f in fixes if f.recommended_partitions is not None]
        result.append(
            ServiceSlo(
                service_name=config.service_name,
                consumer_group_id=group_id,
                slo_state=group.slo_state,
                lag_slo_seconds=objective,
                lag_slo_from=slo.objective_source(config),
                status=group.status,
                time_lag_seconds=group.time_lag_seconds,
                catch_up_seconds=group.catch_up_seconds,
                catch_up_never=group.catch_up_never,
                breach_in_seconds=group.breach_in_seconds,
                slowest_partition=group.slowest_partition,
                total_lag=group.total_lag,
                produce_rate=group.produce_rate,
                consume_rate=group.consume_rate,
                member_count=group.member_count,
                per_consumer_rate=None if rate is None else round(rate, 2),
                partitions_needed=max(needed) if needed else None,
                reason=_reason(group, slowest, config.service_name),
                fixes=fixes,
                cluster_name=config.cluster_name,
            )
        )
    result.sort(key=lambda s: (-slo.slo_rank(s.slo_state), -(s.time_lag_seconds or 0.0), s.service_name))
    return SloReport(window_seconds=window.total_seconds(), services=result)
