"""Partition changes: recommendations from measured load, a plan against the live cluster, apply.

The rules (DESIGN.md, "Partition changes"): a recommendation comes from measured data (the
produce rate from log-end-offset deltas in the lag history, the per-consumer throughput from
the processing metrics, the member counts of the consuming groups), never lowers a topic, and
carries its numbers in the reason. `apply` calls ``AdminClient.create_partitions`` itself:
validate first, one request for every selected topic, then read the count back from the
cluster's metadata; only a count the cluster shows marks a change applied.

Two `apply` runs at once alter each topic once: a run locks the pending rows it works on
(``FOR UPDATE SKIP LOCKED``) for its whole transaction and reads the live counts after taking
the locks, so a second run skips what the first holds, and finds applied rows (or topics that
already have their count) afterwards.

An error that may pass (the broker unreachable, a timeout) leaves the change pending with the
error on its row, so running `apply` again finishes it; an error the broker gives for the
change itself (no such topic, an invalid count, a policy) marks it failed.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from loomctl import kafka
from loomctl.errors import BackendUnavailable, BadInput, NotFound

if TYPE_CHECKING:
    from confluent_kafka.admin import AdminClient
    from sqlalchemy.orm import Session

DEFAULT_WINDOW = dt.timedelta(hours=1)
DEFAULT_HEADROOM = 1.5
DEFAULT_MAX_PARTITIONS = 64
DEFAULT_APPLY_TIMEOUT_S = 30.0
STATUSES = ("pending", "applied", "failed", "superseded")
GROUP_HISTORY_WINDOW = dt.timedelta(hours=1)
"""Groups the lag history saw on a topic this recently count as its consumers even when idle now.

The cluster's committed offsets already name every group that ever committed on the topic, idle
ones included; the history adds those whose offsets expired. An hour of it is a time-range scan
of the history's key (a day would read a day of every topic's samples)."""

# Outcomes of `apply`, per change.
APPLIED = "applied"
SATISFIED = "already satisfied"
FAILED = "failed"
RETRY = "pending"
REFUSED = "refused"
WOULD_APPLY = "would apply"

def describe_window(window: dt.timedelta) -> str:
    seconds = window.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


# --- recommendations: the math (pure) ---


@dataclass(frozen=True)
class ConsumerLoad:
    """One group consuming a topic, with its service's processing totals over the window."""

    consumer_group_id: str | None
    service_name: str | None
    member_count: int | None = None
    messages_processed: int = 0
    processing_time_ms: float = 0.0

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
    current_from: str = "cluster"
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
    written: str | None = None
    """With --write: ``written`` (a new pending change), ``unchanged`` (the same one is pending), or None."""
    change_id: int | None = None


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
        {"consumer_group_id": c.consumer_group_id, "service_name": c.service_name, "member_count": c.member_count,
         "per_consumer_rate": None if c.per_consumer_rate is None else round(c.per_consumer_rate, 2)}
        for c in load.consumers
    ]
    rated = [c for c in load.consumers if c.per_consumer_rate is not None]
    slowest = min(rated, key=lambda c: c.per_consumer_rate or 0.0) if rated else None
    per_consumer = slowest.per_consumer_rate if slowest else None
    members = max((c.member_count for c in load.consumers if c.member_count), default=None)
    rate = load.produce_rate

    def result(recommended: int | None, reason: str, *, needed: int | None = None, capped: bool = False) -> Recommendation:
        change = recommended is not None and load.current_partitions is not None and recommended > load.current_partitions
        return Recommendation(
            topic_name=load.topic_name, current_partitions=load.current_partitions, recommended_partitions=recommended,
            change=change, produce_rate=None if rate is None else round(rate, 2),
            per_consumer_rate=None if per_consumer is None else round(per_consumer, 2),
            slowest_service=slowest.service_name if slowest else None, consumers_needed=needed,
            max_group_members=members, headroom=headroom, max_partitions=max_partitions, capped=capped,
            current_from=load.current_from, reason=reason, consumer_groups=groups,
        )

    if load.missing:
        return result(None, "the topic does not exist in the cluster")
    if load.current_partitions is None:
        return result(None, f"no partition count: the cluster did not say and the lag history of the last {window} has no samples")

    current = load.current_partitions
    parts: list[str] = []
    needed: int | None = None
    if rate is None:
        parts.append(f"no produce rate (fewer than two lag samples per partition in the last {window})")
    else:
        parts.append(f"produce rate {_rate(rate)} msg/s over {window}")
    if per_consumer is None:
        parts.append("no processing metrics from the consuming services, so the consumers needed are unknown"
                     if load.consumers else "no consuming group in the lag history")
    else:
        assert slowest is not None
        parts.append(f"slowest consumer {slowest.service_name or slowest.consumer_group_id} does {_rate(per_consumer)} msg/s")
    if rate is not None and per_consumer:
        # a hair below the integer, so 18.000000000000004 is 18 consumers, not 19
        needed = max(1, math.ceil(rate * headroom / per_consumer - 1e-9))
        parts.append(f"{_rate(rate)} x {headroom:g} headroom / {_rate(per_consumer)} = {needed} consumer(s) needed")
    if members:
        parts.append(f"largest consuming group has {members} member(s)")
    wanted = max(current, needed or 0, members or 0)
    capped = wanted > max_partitions
    recommended = max(current, max_partitions) if capped else wanted
    if recommended > current:
        parts.append(f"{current} -> {recommended} partitions" + (f" (capped at the maximum of {max_partitions})" if capped else ""))
    elif capped:
        parts.append(f"stays at {current}: the maximum is {max_partitions}")
    elif needed is None and not members:
        parts.append(f"nothing to base an increase on: stays at {current}")
    else:
        parts.append(f"{current} partition(s) are enough")
    return result(recommended, "; ".join(parts), needed=needed, capped=capped)


# --- recommendations: the measurements ---


@dataclass(frozen=True)
class RecommendReport:
    recommendations: list[Recommendation]
    current_from: str
    note: str | None = None
    """Why current counts come from the history (the cluster unreachable), for the user."""


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
) -> list[TopicLoad]:
    """The measured load of ``topics`` (default: every topic in the lag history of the window)."""
    from sqlalchemy import text

    until = _now(session, now)
    since = until - window
    every = not topics
    params = {"since": since, "until": until, "every": every, "topics": list(topics or [])}
    scope = '"timestamp" > :since AND "timestamp" <= :until AND (:every OR topic_name = ANY(:topics))'
    ranges = session.execute(text(f"""
        SELECT topic_name, partition, count(*) AS samples,
               max(log_end_offset) - min(log_end_offset) AS produced,
               extract(epoch FROM max("timestamp") - min("timestamp")) AS seconds
          FROM consumer_lag_history
         WHERE {scope}
         GROUP BY topic_name, partition"""), params).all()
    latest = session.execute(text(f"""
        SELECT DISTINCT ON (topic_name, consumer_group_id) topic_name, consumer_group_id, service_name, member_count
          FROM consumer_lag_history
         WHERE {scope}
         ORDER BY topic_name, consumer_group_id, "timestamp" DESC"""), params).all()

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
    metrics = session.execute(text("""
        SELECT service_name, topic_name, min(consumer_group_id) AS consumer_group_id,
               sum(messages_processed)::bigint AS processed, sum(processing_time_ms) AS time_ms
          FROM consumer_processing_metrics
         WHERE "timestamp" > :since AND "timestamp" <= :until
           AND (service_name = ANY(:services) OR topic_name = ANY(:topics))
         GROUP BY service_name, topic_name"""), {**params, "services": services, "topics": names}).all()
    # per (service, topic): metrics that name the topic, plus the service's metrics that name none
    totals: dict[tuple[str, str | None], tuple[int, float, str | None]] = {
        (m.service_name, m.topic_name): (int(m.processed or 0), float(m.time_ms or 0), m.consumer_group_id) for m in metrics
    }
    for (service, topic), (_, _, group) in totals.items():
        if topic in consumers and not any(s == service for _, s, _ in consumers[topic]):
            consumers[topic].append((group, service, None))  # reports metrics for the topic, not sampled for lag

    loads = []
    for name in names:
        live = None if live_counts is None else live_counts.get(name)
        missing = live_counts is not None and live is None
        current = live if live_counts is not None else history_counts.get(name)
        loads_of = []
        for group, service, members in consumers.get(name, []):
            own = totals.get((service, name), (0, 0.0, None)) if service else (0, 0.0, None)
            shared = totals.get((service, None), (0, 0.0, None)) if service else (0, 0.0, None)
            loads_of.append(ConsumerLoad(group, service, members, own[0] + shared[0], own[1] + shared[1]))
        loads.append(TopicLoad(
            topic_name=name, current_partitions=current, produce_rate=rates.get(name), window=window,
            consumers=tuple(loads_of), current_from="cluster" if live_counts is not None else "history", missing=missing,
        ))
    return loads


def history_topics(session: "Session", *, window: dt.timedelta = DEFAULT_WINDOW, now: dt.datetime | None = None) -> list[str]:
    """Every topic with lag samples in the window."""
    from sqlalchemy import text

    until = _now(session, now)
    return list(session.execute(text("""
        SELECT DISTINCT topic_name FROM consumer_lag_history
         WHERE "timestamp" > :since AND "timestamp" <= :until ORDER BY topic_name"""),
        {"since": until - window, "until": until}).scalars())


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
) -> RecommendReport:
    """A recommendation per topic; current counts from the cluster when it answers, else from the history."""
    live: dict[str, int] | None = None
    note = None
    if admin is not None:
        wanted = list(topics or history_topics(session, window=window, now=now))
        try:
            live = kafka.topic_partition_counts(admin, wanted, timeout=cluster_timeout) if wanted else {}
        except BackendUnavailable as exc:
            note = f"current partition counts from the lag history: {exc}"
    else:
        note = "no Kafka cluster configured: current partition counts from the lag history"
    loads = topic_loads(session, topics, window=window, live_counts=live, now=now)
    recs = [recommend_partitions(l, headroom=headroom, max_partitions=max_partitions) for l in loads]
    return RecommendReport(recs, "cluster" if live is not None else "history", note)


def write_recommendations(session: "Session", recommendations: Iterable[Recommendation]) -> list[Recommendation]:
    """Store each increase as the topic's pending change (a newer one supersedes the older); unchanged ones stay."""
    from sqlalchemy import text

    out = []
    for rec in recommendations:
        if not rec.change:
            out.append(rec)
            continue
        same = session.execute(text("""
            SELECT id FROM topic_partition_changes
             WHERE topic_name = :t AND status = 'pending' AND current_partitions = :c AND recommended_partitions = :r"""),
            {"t": rec.topic_name, "c": rec.current_partitions, "r": rec.recommended_partitions}).scalar_one_or_none()
        if same is not None:
            out.append(replace(rec, written="unchanged", change_id=same))
            continue
        change_id = _insert_change(session, rec.topic_name, rec.current_partitions or 1, rec.recommended_partitions or 1,
                                   rec.reason, "recommend")
        out.append(replace(rec, written="written", change_id=change_id))
    return out


def _insert_change(session: "Session", topic: str, current: int, recommended: int, reason: str, source: str) -> int:
    from sqlalchemy import text

    return session.execute(text("""
        INSERT INTO topic_partition_changes (topic_name, current_partitions, recommended_partitions, reason, source)
        VALUES (:t, :c, :r, :reason, :source) RETURNING id"""),
        {"t": topic, "c": current, "r": recommended, "reason": reason, "source": source}).scalar_one()


# --- the changes table ---


@dataclass(frozen=True)
class PartitionChange:
    id: int
    topic_name: str
    current_partitions: int
    recommended_partitions: int
    status: str
    source: str
    reason: str
    error: str | None
    created_at: dt.datetime
    applied_at: dt.datetime | None
    applied_by: str | None


_CHANGE_COLUMNS = ("id, topic_name, current_partitions, recommended_partitions, status, source, reason, error, "
                   "created_at, applied_at, applied_by")


def _change(row: Any) -> PartitionChange:
    return PartitionChange(**row._mapping)


def add_change(
    session: "Session", admin: "AdminClient", topic: str, partitions: int, reason: str, *, timeout: float = kafka.DEFAULT_TIMEOUT_S
) -> PartitionChange:
    """A manual pending change, checked against the live topic: it must exist and the count must go up."""
    from sqlalchemy import text

    if not reason or not reason.strip():
        raise BadInput("a manual change needs a --reason")
    current = kafka.topic_partition_counts(admin, [topic], timeout=timeout).get(topic)
    if current is None:
        raise NotFound(f"topic {topic} does not exist in the cluster")
    if partitions <= current:
        raise BadInput(
            f"{topic} has {current} partition(s) now: a change must raise the count (Kafka cannot remove partitions)"
        )
    change_id = _insert_change(session, topic, current, partitions, reason.strip(), "manual")
    row = session.execute(text(f"SELECT {_CHANGE_COLUMNS} FROM topic_partition_changes WHERE id = :id"), {"id": change_id}).one()
    return _change(row)


def list_changes(
    session: "Session", statuses: Sequence[str] | None = ("pending",), topics: Sequence[str] | None = None
) -> list[PartitionChange]:
    """Changes with one of ``statuses`` (None: all), by topic, oldest first."""
    from sqlalchemy import text

    unknown = set(statuses or ()) - set(STATUSES)
    if unknown:
        raise BadInput(f"unknown status {sorted(unknown)[0]!r}: one of {', '.join(STATUSES)}")
    rows = session.execute(text(f"""
        SELECT {_CHANGE_COLUMNS} FROM topic_partition_changes
         WHERE (:every_status OR status = ANY(:statuses)) AND (:every_topic OR topic_name = ANY(:topics))
         ORDER BY topic_name, id"""),
        {"every_status": statuses is None, "statuses": list(statuses or []),
         "every_topic": not topics, "topics": list(topics or [])}).all()
    return [_change(r) for r in rows]


def update_script(session: "Session") -> str:
    """The guide's kafka-topics lines for every pending change (``generate_partition_update_script()``)."""
    from sqlalchemy import text

    return session.execute(text("SELECT generate_partition_update_script()")).scalar_one()


def efficiency(session: "Session", topics: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """The rows of ``v_partition_efficiency``, by topic."""
    from sqlalchemy import text

    rows = session.execute(text("""
        SELECT * FROM v_partition_efficiency WHERE (:every OR topic_name = ANY(:topics)) ORDER BY topic_name"""),
        {"every": not topics, "topics": list(topics or [])}).all()
    return [dict(r._mapping) for r in rows]


# --- the plan ---


@dataclass(frozen=True)
class ConsumingGroup:
    consumer_group_id: str
    service_name: str | None
    """The service whose config names this group; None for a group loomctl does not manage."""
    auto_offset_reset: str | None
    state: str | None
    """The group's state in the cluster now; None when only the lag history knows it."""
    member_count: int | None


@dataclass(frozen=True)
class PlanItem:
    change_id: int
    topic_name: str
    recorded_partitions: int
    """The count when the change was recommended."""
    current_partitions: int | None
    """The count in the cluster now; None when the topic is missing."""
    target_partitions: int
    action: str
    """``increase``, ``already satisfied`` or ``topic missing``."""
    keyed: str
    """``yes``, ``no`` or ``unknown``: whether the newest records of the topic carry keys."""
    consumer_groups: list[ConsumingGroup]
    risks: list[str]
    needs_force: bool
    """A consumer with auto_offset_reset=latest would skip records: apply refuses without --force."""
    reason: str
    source: str


@dataclass(frozen=True)
class Plan:
    items: list[PlanItem]
    locked_elsewhere: list[str] = field(default_factory=list)
    """Topics whose pending change another `apply` is working on right now (skipped)."""
    not_pending: list[str] = field(default_factory=list)
    """Topics asked for that have no pending change."""


def plan_changes(
    session: "Session",
    admin: "AdminClient",
    topics: Sequence[str] | None = None,
    *,
    lock: bool = False,
    retry_failed: bool = False,
    kafka_properties: Mapping[str, str] | None = None,
    timeout: float = kafka.DEFAULT_TIMEOUT_S,
) -> Plan:
    """Each pending change against the cluster now: counts, consuming groups, keys and risks.

    With ``lock`` the pending rows are locked for the rest of the session's transaction
    (``FOR UPDATE SKIP LOCKED``): the plan holds only changes no other `apply` is working on,
    and the live counts are read after the locks are taken. ``retry_failed`` adds each topic's
    failed change when it is the topic's newest one (its cause may have been fixed since).
    """
    from sqlalchemy import text

    params = {"every": not topics, "topics": list(topics or []), "retry": retry_failed}
    query = f"""
        SELECT {_CHANGE_COLUMNS} FROM topic_partition_changes AS c
         WHERE (c.status = 'pending'
                OR (:retry AND c.status = 'failed' AND NOT EXISTS (
                        SELECT 1 FROM topic_partition_changes AS n WHERE n.topic_name = c.topic_name AND n.id > c.id)))
           AND (:every OR c.topic_name = ANY(:topics))
         ORDER BY c.topic_name, c.id"""
    changes = [_change(r) for r in session.execute(text(query + (" FOR UPDATE SKIP LOCKED" if lock else "")), params)]
    locked_elsewhere: list[str] = []
    if lock:
        mine = {c.id for c in changes}
        locked_elsewhere = sorted({c.topic_name for c in map(_change, session.execute(text(query), params)) if c.id not in mine})
    not_pending = sorted(set(topics or ()) - {c.topic_name for c in changes} - set(locked_elsewhere))
    if not changes:
        return Plan([], locked_elsewhere, not_pending)

    names = sorted({c.topic_name for c in changes})
    live = kafka.topic_partition_counts(admin, names, timeout=timeout)
    groups = consuming_groups(session, admin, names, timeout=timeout)
    keyed = kafka.sample_keys(admin, kafka_properties, {t: live[t] for t in names if t in live}, timeout=timeout)
    items = [_plan_item(c, live.get(c.topic_name), groups.get(c.topic_name, []), keyed.get(c.topic_name, "unknown"))
             for c in changes]
    return Plan(items, locked_elsewhere, not_pending)


def _plan_item(change: PartitionChange, live: int | None, groups: list[ConsumingGroup], keyed: str) -> PlanItem:
    risks: list[str] = []
    needs_force = False
    if live is None:
        action = "topic missing"
        risks.append(f"topic missing: the cluster has no topic {change.topic_name}")
    elif live >= change.recommended_partitions:
        action = SATISFIED
        risks.append(f"already satisfied: the topic has {live} partition(s), the change asks for {change.recommended_partitions}")
    else:
        action = "increase"
        if live != change.current_partitions:
            risks.append(f"the topic has {live} partition(s) now; the change was recorded at {change.current_partitions}")
        if keyed == "yes":
            risks.append("keyed messages: a key's new records go to a different partition than its old ones, "
                         "so per-key ordering breaks across the change")
        for g in groups:
            who = f"{g.service_name} ({g.consumer_group_id})" if g.service_name else g.consumer_group_id
            if g.auto_offset_reset == "latest":
                needs_force = True
                risks.append(f"{who} has auto_offset_reset=latest: records produced to the new partitions before it "
                             "is assigned them are skipped (set it to earliest first, or pass --force)")
            elif g.service_name is None:
                risks.append(f"group {g.consumer_group_id} has no service config: its auto_offset_reset is unknown")
    return PlanItem(
        change_id=change.id, topic_name=change.topic_name, recorded_partitions=change.current_partitions,
        current_partitions=live, target_partitions=change.recommended_partitions, action=action, keyed=keyed,
        consumer_groups=groups, risks=risks, needs_force=needs_force, reason=change.reason, source=change.source,
    )


def consuming_groups(
    session: "Session", admin: "AdminClient", topics: Sequence[str], *, timeout: float = kafka.DEFAULT_TIMEOUT_S
) -> dict[str, list[ConsumingGroup]]:
    """Per topic, the groups that consume it: committed offsets or assigned members in the cluster
    now, or lag samples in the last day; each mapped to its service through the config table."""
    from sqlalchemy import text

    wanted = set(topics)
    group_ids = kafka.list_group_ids(admin, timeout=timeout)
    committed = kafka.committed_offsets(admin, group_ids, timeout=timeout)
    described = kafka.describe_groups(admin, group_ids, timeout=timeout)
    by_topic: dict[str, dict[str, tuple[str | None, int | None, str | None]]] = {t: {} for t in topics}
    for group_id in group_ids:
        group = described.get(group_id)
        seen = {t for t, _ in committed.get(group_id, {})} | {t for t, _ in (group.owner_of() if group else {})}
        for topic in seen & wanted:
            by_topic[topic][group_id] = (group.state if group else None, len(group.members) if group else None, None)
    history = session.execute(text("""
        SELECT DISTINCT ON (topic_name, consumer_group_id) topic_name, consumer_group_id, service_name
          FROM consumer_lag_history
         WHERE topic_name = ANY(:topics) AND "timestamp" > now() - :recent
         ORDER BY topic_name, consumer_group_id, "timestamp" DESC"""),
        {"topics": list(wanted), "recent": GROUP_HISTORY_WINDOW}).all()
    for r in history:
        by_topic[r.topic_name].setdefault(r.consumer_group_id, (None, None, r.service_name))
    all_groups = sorted({g for groups in by_topic.values() for g in groups})
    from loomctl import configs as config_store

    configs = {
        c.consumer_group_id: (c.service_name, c.settings["auto_offset_reset"])
        for c in config_store.read_configs(session, groups=all_groups)
    }
    result: dict[str, list[ConsumingGroup]] = {}
    for topic, groups in by_topic.items():
        result[topic] = [
            ConsumingGroup(group_id, configs.get(group_id, (None, None))[0], configs.get(group_id, (None, None))[1], state, members)
            for group_id, (state, members, _history_service) in sorted(groups.items())
        ]
    return result


# --- apply ---


@dataclass(frozen=True)
class ApplyResult:
    change_id: int
    topic_name: str
    outcome: str
    """applied, already satisfied, failed, pending (an error that may pass: run apply again), refused,
    or with ``dry_run`` would apply (the broker validated it)."""
    partitions_before: int | None
    partitions_after: int | None
    target_partitions: int
    altered: bool
    """This run's create_partitions request for the topic succeeded."""
    error: str | None = None
    dry_run: bool = False

    @property
    def done(self) -> bool:
        return self.outcome in (APPLIED, SATISFIED)


def _counts_now(admin: "AdminClient", topics: Sequence[str], timeout: float) -> dict[str, int] | None:
    try:
        return kafka.topic_partition_counts(admin, topics, timeout=timeout)
    except BackendUnavailable:
        return None


def _wait_for_counts(
    admin: "AdminClient", targets: Mapping[str, int], *, timeout: float
) -> tuple[dict[str, int], str | None]:
    """Poll the metadata until every topic shows at least its target count or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    seen: dict[str, int] = {}
    problem = None
    while True:
        counts = _counts_now(admin, list(targets), timeout=max(1.0, min(5.0, deadline - time.monotonic())))
        if counts is None:
            problem = "the cluster did not answer the metadata request that verifies the new count"
        else:
            seen.update(counts)
            problem = None
            if all(seen.get(t, 0) >= n for t, n in targets.items()):
                return seen, None
        if time.monotonic() >= deadline:
            return seen, problem
        time.sleep(0.2)


def apply_plan(
    session: "Session",
    admin: "AdminClient",
    plan: Plan,
    *,
    actor: str,
    force: bool = False,
    dry_run: bool = False,
    timeout: float = DEFAULT_APPLY_TIMEOUT_S,
    on_step: Callable[[str], None] | None = None,
) -> list[ApplyResult]:
    """Validate, alter every accepted topic in one request, verify from metadata, record each outcome.

    ``plan`` should come from :func:`plan_changes` with ``lock=True`` in the same session, so
    that no other run works on its changes. ``on_step`` hears ``validated``, ``altered`` and
    ``verified``. With ``dry_run`` nothing is altered or written: the results say what would be.
    """
    step = on_step or (lambda _name: None)
    results: dict[int, ApplyResult] = {}

    def outcome(item: PlanItem, what: str, *, after: int | None = None, altered: bool = False, error: str | None = None) -> None:
        results[item.change_id] = ApplyResult(
            item.change_id, item.topic_name, what, item.current_partitions, after, item.target_partitions,
            altered, error, dry_run,
        )

    candidates: list[PlanItem] = []
    for item in plan.items:
        if item.action == SATISFIED:
            outcome(item, SATISFIED, after=item.current_partitions)
        elif item.needs_force and not force:
            outcome(item, REFUSED, after=item.current_partitions,
                    error="a consumer with auto_offset_reset=latest would skip records: pass --force to apply anyway")
        else:
            candidates.append(item)

    verdicts = kafka.create_partitions(admin, {i.topic_name: i.target_partitions for i in candidates},
                                  validate_only=True, timeout=timeout)
    accepted: list[PlanItem] = []
    for item in candidates:
        verdict = verdicts.get(item.topic_name)
        if verdict is None:
            accepted.append(item)
        else:
            outcome(item, RETRY if verdict[1] else FAILED, after=item.current_partitions, error=verdict[0])
    if candidates:
        step("validated")

    if dry_run:
        for item in accepted:
            outcome(item, WOULD_APPLY, after=item.target_partitions)
        return [results[i.change_id] for i in plan.items]

    answers = kafka.create_partitions(admin, {i.topic_name: i.target_partitions for i in accepted},
                                 validate_only=False, timeout=timeout)
    if accepted:
        step("altered")
    targets = {i.topic_name: i.target_partitions for i in accepted}
    succeeded = {t: n for t, n in targets.items() if answers.get(t) is None}
    counts, problem = _wait_for_counts(admin, succeeded, timeout=timeout) if succeeded else ({}, None)
    if len(succeeded) < len(targets):
        # a refused request may still mean the count is there (someone else grew the topic meanwhile)
        counts.update(_counts_now(admin, [t for t in targets if t not in succeeded], timeout=min(timeout, 5.0)) or {})
    if accepted:
        step("verified")
    for item in accepted:
        after = counts.get(item.topic_name)
        answer = answers.get(item.topic_name)
        if after is not None and after >= item.target_partitions:
            outcome(item, APPLIED if answer is None else SATISFIED, after=after, altered=answer is None)
        elif answer is None:
            outcome(item, RETRY, after=after, altered=True,
                    error=f"the cluster accepted the change but its metadata did not show {item.target_partitions} "
                          f"partition(s) within {timeout:g} s ({problem or f'it shows {after}'}); run apply again to verify")
        else:
            outcome(item, RETRY if answer[1] else FAILED, after=after, error=answer[0])
    ordered = [results[i.change_id] for i in plan.items]
    _record(session, ordered, actor)
    return ordered


def _record(session: "Session", results: Sequence[ApplyResult], actor: str) -> None:
    from sqlalchemy import text

    # `failed` too: apply --retry-failed works on a topic's newest failed change
    for r in results:
        if r.done:
            session.execute(text("""
                UPDATE topic_partition_changes
                   SET status = 'applied', applied_at = now(), applied_by = :actor, error = NULL
                 WHERE id = :id AND status IN ('pending', 'failed')"""), {"id": r.change_id, "actor": actor})
        elif r.outcome == FAILED:
            session.execute(text("""
                UPDATE topic_partition_changes SET status = 'failed', error = :error
                 WHERE id = :id AND status IN ('pending', 'failed')"""), {"id": r.change_id, "error": r.error})
        elif r.outcome == RETRY:
            session.execute(text("""
                UPDATE topic_partition_changes SET error = :error
                 WHERE id = :id AND status IN ('pending', 'failed')"""), {"id": r.change_id, "error": r.error})
