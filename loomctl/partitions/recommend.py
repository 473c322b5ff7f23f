"""Recommendations: the partition count a topic's measured load calls for, and storing them as pending changes.

A recommendation comes from measured data: the produce rate from log-end-offset deltas in the
lag history, the per-consumer throughput from the processing metrics, the member counts of the
consuming groups. It never lowers a topic and carries its numbers in the reason. Where a consuming
service has a lag objective, the count also drains that group's current lag within it at the measured
rates (:func:`loomctl.lag.slo.drain_plan`: the lag already in a partition stays there, so its worst
partition decides).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from loomctl import kafka, validation
from loomctl.errors import BackendUnavailable, BadInput
from loomctl.partitions.changes import Source, insert_change

if TYPE_CHECKING:
    from confluent_kafka.admin import AdminClient
    from sqlalchemy.orm import Session

DEFAULT_WINDOW = dt.timedelta(hours=1)
DEFAULT_HEADROOM = 1.5
DEFAULT_MAX_PARTITIONS = 64


class CountsFrom:
    """Where a current partition count comes from."""

    CLUSTER = "cluster"
    """The cluster's metadata now."""
    HISTORY = "history"
    """The lag samples of the window (the cluster unreachable or not configured)."""


class Written:
    """What ``write_recommendations`` did with an increase (``Recommendation.written``)."""

    WRITTEN = "written"
    """Stored as the topic's new pending change."""
    UNCHANGED = "unchanged"
    """The same change is pending already."""


def describe_window(window: dt.timedelta) -> str:
    """``window`` in its largest whole unit, for reasons and titles: 2d, 1h, 30m, 90s."""
    seconds = window.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


@dataclass(frozen=True)
class ConsumerLoad:
    """One group consuming a topic, with its service's processing totals over the window."""

    consumer_group_id: str | None
    service_name: str | None
    member_count: int | None = None
    messages_processed: int = 0
    processing_time_ms: float = 0.0
    lag_slo_seconds: int | None = None
    """The service's lag objective (its own or its profile's); None: none."""
    partition_lags: tuple[int | None, ...] = ()
    """The group's lag on each partition of the topic at its latest sample."""

    @property
    def per_consumer_rate(self) -> float | None:
        """Messages per second one member processes; None without metrics to tell."""
        if self.processing_time_ms <= 0 or self.messages_processed <= 0:
            return None
        return self.messages_processed * 1000.0 / self.processing_time_ms


@dataclass(frozen=True)
class TopicLoad:
    """What was measured about one topic over the window."""

    topic_name: str
    current_partitions: int | None
    produce_rate: float | None
    """Messages per second into the whole topic (log-end-offset deltas); None: fewer than two samples."""
    window: dt.timedelta = DEFAULT_WINDOW
    consumers: tuple[ConsumerLoad, ...] = ()
    current_from: str = CountsFrom.CLUSTER
    """Where current_partitions came from: ``cluster`` (metadata now) or ``history`` (lag samples)."""
    missing: bool = False
    """The cluster answered and has no such topic."""


@dataclass(frozen=True)
class Recommendation:
    topic_name: str
    current_partitions: int | None
    recommended_partitions: int | None
    change: bool
    produce_rate: float | None
    per_consumer_rate: float | None
    slowest_service: str | None
    consumers_needed: int | None
    max_group_members: int | None
    headroom: float
    max_partitions: int
    capped: bool
    current_from: str
    reason: str
    consumer_groups: list[dict[str, Any]] = field(default_factory=list)
    slo_partitions_needed: int | None = None
    """The partitions (one consumer each) that drain the current lag of the tightest objective in time."""
    slo_service: str | None = None
    """The service whose objective asks for slo_partitions_needed."""
    written: str | None = None
    """With --write: ``written`` (a new pending change), ``unchanged`` (the same one is pending), or None."""
    change_id: int | None = None
    cluster_name: str = "default"
    """The cluster whose topic this is."""


def _rate(value: float) -> str:
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def recommend_partitions(
    load: TopicLoad, *, headroom: float = DEFAULT_HEADROOM, max_partitions: int = DEFAULT_MAX_PARTITIONS
) -> Recommendation:
    """The partition count ``load`` calls for: enough members to keep up with headroom, never fewer than today.

    consumers needed = ceil(produce rate x headroom / per-consumer rate of the slowest consuming
    service); recommended = max(current, consumers needed, largest group's member count),
    capped at ``max_partitions`` but never below the current count.
    """
    if headroom < 1:
        raise BadInput(f"headroom must be at least 1 (got {headroom:g})")
    if max_partitions < 1:
        raise BadInput(f"the maximum partition count must be at least 1 (got {max_partitions})")
    window = describe_window(load.window)
    groups = [
        {
            "consumer_group_id": c.consumer_group_id,
            "service_name": c.service_name,
            "member_count": c.member_count,
            "per_consumer_rate": None if c.per_consumer_rate is None else round(c.per_consumer_rate, 2),
        }
        for c in load.consumers
    ]
    rated = [c for c in load.consumers if c.per_consumer_rate is not None]
    slowest = min(rated, key=lambda c: c.per_consumer_rate or 0.0) if rated else None
    per_consumer = slowest.per_consumer_rate if slowest else None
    members = max((c.member_count for c in load.consumers if c.member_count), default=None)
    rate = load.produce_rate
    drains = _drain_plans(load)
    tightest = max(drains, key=lambda d: d[1].recommended_partitions or 0) if drains else None

    def result(recommended: int | None, reason: str, *, needed: int | None = None, capped: bool = False) -> Recommendation:
        change = recommended is not None and load.current_partitions is not None and recommended > load.current_partitions
        return Recommendation(
            topic_name=load.topic_name,
            current_partitions=load.current_partitions,
            recommended_partitions=recommended,
            change=change,
            produce_rate=None if rate is None else round(rate, 2),
            per_consumer_rate=None if per_consumer is None else round(per_consumer, 2),
            slowest_service=slowest.service_name if slowest else None,
            consumers_needed=needed,
            max_group_members=members,
            headroom=headroom,
            max_partitions=max_partitions,
            capped=capped,
            current_from=load.current_from,
            reason=reason,
            consumer_groups=groups,
            slo_partitions_needed=tightest[1].recommended_partitions if tightest else None,
            slo_service=tightest[0] if tightest else None,
        )

    if load.missing:
        return result(None, "the topic does not exist in the cluster")
    if load.current_partitions is None:
        return result(
            None, f"no partition count: the cluster did not say and the lag history of the last {window} has no samples"
        )

    current = load.current_partitions
    parts: list[str] = []
    needed: int | None = None
    if rate is None:
        parts.append(f"no produce rate (fewer than two lag samples per partition in the last {window})")
    else:
        parts.append(f"produce rate {_rate(rate)} msg/s over {window}")
    if per_consumer is None:
        parts.append(
            "no processing metrics from the consuming services, so the consumers needed are unknown"
            if load.consumers
            else "no consuming group in the lag history"
        )
    else:
        assert slowest is not None
        parts.append(f"slowest consumer {slowest.service_name or slowest.consumer_group_id} does {_rate(per_consumer)} msg/s")
    if rate is not None and per_consumer:
        # a hair below the integer, so 18.000000000000004 is 18 consumers, not 19
        needed = max(1, math.ceil(rate * headroom / per_consumer - 1e-9))
        parts.append(f"{_rate(rate)} x {headroom:g} headroom / {_rate(per_consumer)} = {needed} consumer(s) needed")
    if members:
        parts.append(f"largest consuming group has {members} member(s)")
    for service, plan in drains:
        # a group that drains in time with today's count needs no words here
        if not plan.meets_objective or (plan.recommended_partitions or 0) > current:
            parts.append(f"objective of {service}: {plan.reason.removeprefix(load.topic_name + ': ')}")
    slo_needed = tightest[1].recommended_partitions if tightest else None
    wanted = max(current, needed or 0, members or 0, slo_needed or 0)
    capped = wanted > max_partitions
    recommended = max(current, max_partitions) if capped else wanted
    if recommended > current:
        parts.append(
            f"{current} -> {recommended} partitions" + (f" (capped at the maximum of {max_partitions})" if capped else "")
        )
    elif capped:
        parts.append(f"stays at {current}: the maximum is {max_partitions}")
    elif needed is None and not members and slo_needed is None:
        parts.append(f"nothing to base an increase on: stays at {current}")
    else:
        parts.append(f"{current} partition(s) are enough")
    return result(recommended, "; ".join(parts), needed=needed, capped=capped)


def _drain_plans(load: TopicLoad) -> list[tuple[str, Any]]:
    """Per consuming service with an objective, a lag and a per-consumer rate: what draining its lag in time takes."""
    from loomctl.lag.slo import drain_plan

    plans = []
    for c in load.consumers:
        if c.lag_slo_seconds is None or not any(c.partition_lags) or c.per_consumer_rate is None:
            continue
        plans.append(
            (
                c.service_name or c.consumer_group_id or "?",
                drain_plan(
                    load.topic_name,
                    c.partition_lags,
                    load.produce_rate or 0.0,
                    c.per_consumer_rate,
                    c.lag_slo_seconds,
                    current_partitions=load.current_partitions,
                ),
            )
        )
    return plans


@dataclass(frozen=True)
class RecommendReport:
    recommendations: list[Recommendation]
    current_from: str
    note: str | None = None
    """Why current counts come from the history (the cluster unreachable), for the user."""

    @property
    def increases(self) -> list[Recommendation]:
        return [r for r in self.recommendations if r.change]


def _now(session: "Session", now: dt.datetime | None) -> dt.datetime:
    from sqlalchemy import text

    return now if now is not None else session.execute(text("SELECT now()")).scalar_one()


def topic_loads(
    session: "Session",
    topics: Sequence[str] | None,
    *,
    window: dt.timedelta = DEFAULT_WINDOW,
    live_counts: Mapping[str, int] | None = None,
    now: dt.datetime | None = None,
    cluster: str = "default",
) -> list[TopicLoad]:
    """The measured load of ``topics`` of ``cluster`` (default: every topic in its lag history of the window)."""
    from sqlalchemy import text

    until = _now(session, now)
    since = until - window
    every = not topics
    params = {"since": since, "until": until, "every": every, "topics": list(topics or []), "cluster": cluster}
    scope = '"timestamp" > :since AND "timestamp" <= :until AND (:every OR topic_name = ANY(:topics)) AND cluster_name = :cluster'
    ranges = session.execute(
        text(f"""
        SELECT topic_name, partition, count(*) AS samples,
               max(log_end_offset) - min(log_end_offset) AS produced,
               extract(epoch FROM max("timestamp") - min("timestamp")) AS seconds
          FROM consumer_lag_history
         WHERE {scope}
         GROUP BY topic_name, partition"""),
        params,
    ).all()
    latest = session.execute(
        text(f"""
        SELECT DISTINCT ON (topic_name, consumer_group_id) topic_name, consumer_group_id, service_name, member_count
          FROM consumer_lag_history
         WHERE {scope}
         ORDER BY topic_name, consumer_group_id, "timestamp" DESC"""),
        params,
    ).all()
    lags = session.execute(
        text(f"""
        SELECT DISTINCT ON (topic_name, consumer_group_id, partition) topic_name, consumer_group_id, partition, lag
          FROM consumer_lag_history
         WHERE {scope}
         ORDER BY topic_name, consumer_group_id, partition, "timestamp" DESC"""),
        params,
    ).all()
    partition_lags: dict[tuple[str, str], list[int | None]] = {}
    for r in lags:
        partition_lags.setdefault((r.topic_name, r.consumer_group_id), []).append(r.lag)

    names = list(dict.fromkeys(topics)) if topics else sorted({r.topic_name for r in ranges})
    rates: dict[str, float] = {}
    history_counts: dict[str, int] = {}
    for r in ranges:
        history_counts[r.topic_name] = max(history_counts.get(r.topic_name, 0), r.partition + 1)
        if r.samples >= 2 and r.seconds and float(r.seconds) > 0:
            rates[r.topic_name] = rates.get(r.topic_name, 0.0) + float(r.produced) / float(r.seconds)

    consumers: dict[str, list[tuple[str | None, str | None, int | None]]] = {n: [] for n in names}
    for r in latest:
        consumers.setdefault(r.topic_name, []).append((r.consumer_group_id, r.service_name, r.member_count))
    services = sorted({s for rows in consumers.values() for _, s, _ in rows if s})
    from loomctl.configs.store import read_configs
    from loomctl.lag.slo import objective_of

    objectives = {c.service_name: objective_of(c) for c in read_configs(session, services=services)} if services else {}
    metrics = session.execute(
        text("""
        SELECT service_name, topic_name, min(consumer_group_id) AS consumer_group_id,
               sum(messages_processed)::bigint AS processed, sum(processing_time_ms) AS time_ms
          FROM consumer_processing_metrics
         WHERE "timestamp" > :since AND "timestamp" <= :until
           AND (service_name = ANY(:services) OR topic_name = ANY(:topics))
         GROUP BY service_name, topic_name"""),
        {**params, "services": services, "topics": names},
    ).all()
    # per (service, topic): metrics that name the topic, plus the service's metrics that name none
    totals: dict[tuple[str, str | None], tuple[int, float, str | None]] = {
        (m.service_name, m.topic_name): (int(m.processed or 0), float(m.time_ms or 0), m.consumer_group_id) for m in metrics
    }
    for (service, topic), (_, _, group) in totals.items():
        if topic in consumers and not any(s == service for _, s, _ in consumers[topic]):
            consumers[topic].append((group, service, None))  # reports metrics for the topic, not sampled for lag

    counts_from = CountsFrom.CLUSTER if live_counts is not None else CountsFrom.HISTORY
    loads = []
    for name in names:
        live = None if live_counts is None else live_counts.get(name)
        missing = live_counts is not None and live is None
        current = live if live_counts is not None else history_counts.get(name)
        loads_of = []
        for consumer_group, consumer_service, members in consumers.get(name, []):
            own = totals.get((consumer_service, name), (0, 0.0, None)) if consumer_service else (0, 0.0, None)
            shared = totals.get((consumer_service, None), (0, 0.0, None)) if consumer_service else (0, 0.0, None)
            loads_of.append(
                ConsumerLoad(
                    consumer_group,
                    consumer_service,
                    members,
                    own[0] + shared[0],
                    own[1] + shared[1],
                    objectives.get(consumer_service) if consumer_service else None,
                    tuple(partition_lags.get((name, consumer_group), ())) if consumer_group else (),
                )
            )
        loads.append(
            TopicLoad(
                topic_name=name,
                current_partitions=current,
                produce_rate=rates.get(name),
                window=window,
                consumers=tuple(loads_of),
                current_from=counts_from,
                missing=missing,
            )
        )
    return loads


def history_topics(
    session: "Session", *, window: dt.timedelta = DEFAULT_WINDOW, now: dt.datetime | None = None, cluster: str = "default"
) -> list[str]:
    """Every topic of ``cluster`` with lag samples in the window."""
    from sqlalchemy import text

    until = _now(session, now)
    return list(
        session.execute(
            text("""
        SELECT DISTINCT topic_name FROM consumer_lag_history
         WHERE "timestamp" > :since AND "timestamp" <= :until AND cluster_name = :cluster ORDER BY topic_name"""),
            {"since": until - window, "until": until, "cluster": cluster},
        ).scalars()
    )


def recommend(
    session: "Session",
    admin: "AdminClient | None",
    topics: Sequence[str] | None = None,
    *,
    window: dt.timedelta = DEFAULT_WINDOW,
    headroom: float = DEFAULT_HEADROOM,
    max_partitions: int = DEFAULT_MAX_PARTITIONS,
    now: dt.datetime | None = None,
    cluster_timeout: float = 5.0,
    write: bool = False,
    cluster: str = "default",
) -> RecommendReport:
    """A recommendation per topic; current counts from the cluster when it answers, else from the history.
    A topic name Kafka cannot have is BadInput.

    With ``write`` each increase is stored as the topic's pending change (:func:`write_recommendations`).
    """
    for topic in topics or ():
        validation.check_topic(topic)
    live: dict[str, int] | None = None
    note = None
    if admin is not None:
        wanted = list(topics or history_topics(session, window=window, now=now, cluster=cluster))
        try:
            live = kafka.topic_partition_counts(admin, wanted, timeout=cluster_timeout) if wanted else {}
        except BackendUnavailable as exc:
            note = f"current partition counts from the lag history: {exc}"
    else:
        note = "no Kafka cluster configured: current partition counts from the lag history"
    loads = topic_loads(session, topics, window=window, live_counts=live, now=now, cluster=cluster)
    recs = [
        replace(recommend_partitions(load, headroom=headroom, max_partitions=max_partitions), cluster_name=cluster)
        for load in loads
    ]
    if write:
        recs = write_recommendations(session, recs)
    return RecommendReport(recs, CountsFrom.CLUSTER if live is not None else CountsFrom.HISTORY, note)


def recommend_clusters(
    session: "Session",
    admin_of: "Callable[[str], AdminClient | None]",
    clusters: Sequence[str],
    topics: Sequence[str] | None = None,
    **options: Any,
) -> RecommendReport:
    """:func:`recommend` over each of ``clusters`` (``admin_of(name)``: its AdminClient, None where none is
    configured), one report: every topic of each cluster's history, or the named topics on the clusters whose
    history has them (the first cluster when none has)."""
    window, now = options.get("window", DEFAULT_WINDOW), options.get("now")
    known = {name: set(history_topics(session, window=window, now=now, cluster=name)) for name in clusters}
    wanted: dict[str, list[str] | None] = {}
    if topics:
        for topic in topics:  # a topic no history has is asked of the first cluster, as one cluster always was
            homes = [name for name in clusters if topic in known[name]] or list(clusters[:1])
            for name in homes:
                wanted.setdefault(name, []).append(topic)  # type: ignore[union-attr]  # a list for named topics
    else:
        wanted = {name: None for name in clusters if known[name] or len(clusters) == 1}
    reports = [recommend(session, admin_of(name), wanted[name], cluster=name, **options) for name in clusters if name in wanted]
    if not reports:
        return RecommendReport([], CountsFrom.HISTORY, None)
    notes = [r.note for r in reports if r.note]
    counts = CountsFrom.CLUSTER if all(r.current_from == CountsFrom.CLUSTER for r in reports) else CountsFrom.HISTORY
    return RecommendReport([rec for r in reports for rec in r.recommendations], counts, "; ".join(notes) or None)


def write_recommendations(session: "Session", recommendations: Iterable[Recommendation]) -> list[Recommendation]:
    """Store each increase as the topic's pending change (a newer one supersedes the older); unchanged ones stay."""
    from sqlalchemy import text

    out = []
    for rec in recommendations:
        if not rec.change:
            out.append(rec)
            continue
        same = session.execute(
            text("""
            SELECT id FROM topic_partition_changes
             WHERE topic_name = :t AND cluster_name = :cluster AND status = 'pending' AND current_partitions = :c
               AND recommended_partitions = :r"""),
            {"t": rec.topic_name, "c": rec.current_partitions, "r": rec.recommended_partitions, "cluster": rec.cluster_name},
        ).scalar_one_or_none()
        if same is not None:
            out.append(replace(rec, written=Written.UNCHANGED, change_id=same))
            continue
        change_id = insert_change(
            session,
            rec.topic_name,
            rec.current_partitions or 1,
            rec.recommended_partitions or 1,
            rec.reason,
            Source.RECOMMEND,
            rec.cluster_name,
        )
        out.append(replace(rec, written=Written.WRITTEN, change_id=change_id))
    return out
