"""Consumer lag: live from the cluster, sampled into history, and judged over a time window.

Semantics (DESIGN.md, "Lag"): no committed offset is *unknown*, never 0; a negative lag is
clamped to 0; a committed offset below the log start offset means records were lost to
retention before the group read them. Lag in time is interpolated between stored samples
(each carries it forward from the one before), so it survives restarts of the collector.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

HISTORY_COLUMNS = (
    "consumer_group_id", "topic_name", "partition", "timestamp", "service_name", "committed_offset",
    "log_end_offset", "log_start_offset", "lag", "time_lag_ms", "group_state", "member_count",
)
_HISTORY_TYPES = ("text", "text", "int4", "timestamptz", "text", "int8", "int8", "int8", "int8", "int8", "text", "int4")


@dataclass(frozen=True)
class LagSample:
    """One partition of one group at one instant: a row of ``consumer_lag_history``."""

    consumer_group_id: str
    topic_name: str
    partition: int
    timestamp: dt.datetime
    service_name: str
    committed_offset: int | None
    log_end_offset: int
    log_start_offset: int | None = None
    lag: int | None = None
    time_lag_ms: int | None = None
    group_state: str | None = None
    member_count: int | None = None

    def row(self) -> tuple[Any, ...]:
        return (
            self.consumer_group_id, self.topic_name, self.partition, self.timestamp, self.service_name,
            self.committed_offset, self.log_end_offset, self.log_start_offset, self.lag, self.time_lag_ms,
            self.group_state, self.member_count,
        )


def partition_lag(committed: int | None, log_end: int) -> int | None:
    """Lag of one partition: None when the group has no committed offset, never negative."""
    if committed is None:
        return None
    return max(log_end - committed, 0)


def copy_samples(conn: "psycopg.Connection[Any]", samples: Iterable[LagSample]) -> int:
    """Write samples with one binary COPY (the collector's bulk path); the caller owns the transaction."""
    count = 0
    with conn.cursor() as cur:
        with cur.copy(f"COPY public.consumer_lag_history ({', '.join(HISTORY_COLUMNS)}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(list(_HISTORY_TYPES))
            for sample in samples:
                copy.write_row(sample.row())
                count += 1
    return count


def lost_to_retention(committed: int | None, log_start: int | None) -> int:
    """Records the group never read because retention deleted them first."""
    if committed is None or log_start is None or committed >= log_start:
        return 0
    return log_start - committed


# ---------------------------------------------------------------------------------------------
# Lag in time: when was the record at the committed offset produced?


@dataclass(frozen=True)
class PreviousSample:
    """What the last stored sample of a partition knew: enough to carry its lag in time forward."""

    timestamp: dt.datetime
    committed_offset: int | None
    log_end_offset: int
    time_lag_ms: int | None


def carry_time_lag_ms(previous: PreviousSample | None, now: dt.datetime, committed: int | None, log_end: int) -> int | None:
    """How long ago the next record to consume (offset ``committed``) was produced, in ms.

    Carried forward from the partition's previous sample, which bounds the record's production
    time: the previous sample's committed offset was produced ``time_lag_ms`` before it, and its
    log end offset at its own time. A record between the two is placed by linear interpolation;
    one past the previous log end was produced between the previous sample and now. Each
    sample needs only the one before it, so this costs one lookup of the latest sample (no scan
    of the history) and survives restarts. A partition that lagged when sampling began has no
    known age: it counts as 0 old at its first sample, so later values are lower bounds until
    the group reads past that sample's log end. None when the lag is unknown.
    """
    if committed is None:
        return None
    if committed >= log_end:
        return 0
    if previous is None or log_end < previous.log_end_offset:
        return None  # nothing stored, or the topic was deleted and created again since
    if committed > previous.log_end_offset:
        produced_span = log_end - previous.log_end_offset
        fraction = (committed - previous.log_end_offset) / produced_span if produced_span > 0 else 1.0
        produced = previous.timestamp + (now - previous.timestamp) * min(fraction, 1.0)
        return max(int((now - produced).total_seconds() * 1000), 0)
    if previous.committed_offset is None:
        return None
    age_then = previous.time_lag_ms or 0
    produced_then = previous.timestamp - dt.timedelta(milliseconds=age_then)
    if committed > previous.committed_offset and previous.log_end_offset > previous.committed_offset:
        fraction = (committed - previous.committed_offset) / (previous.log_end_offset - previous.committed_offset)
        produced_then = produced_then + (previous.timestamp - produced_then) * fraction
    return max(int((now - produced_then).total_seconds() * 1000), 0)


Key = tuple[str, str, int]
PREVIOUS_SAMPLE_HORIZON = dt.timedelta(hours=1)


def previous_samples(
    conn: "psycopg.Connection[Any]", services: dict[str, str], now: dt.datetime
) -> dict[Key, PreviousSample]:
    """The newest stored sample of each partition of the given groups (group id -> service name).

    Read through (service_name, timestamp) over the last hour: the history's primary key leads
    with the time so that the collector's inserts append, so there is no per-partition index.
    """
    if not services:
        return {}
    rows = conn.execute(
        """
        SELECT DISTINCT ON (h.consumer_group_id, h.topic_name, h.partition)
               h.consumer_group_id, h.topic_name, h.partition, h."timestamp", h.committed_offset,
               h.log_end_offset, h.time_lag_ms
          FROM public.consumer_lag_history AS h
         WHERE h.service_name = ANY(%(services)s) AND h.consumer_group_id = ANY(%(groups)s)
           AND h."timestamp" > %(since)s AND h."timestamp" <= %(now)s
         ORDER BY h.consumer_group_id, h.topic_name, h.partition, h."timestamp" DESC
        """,
        {"services": sorted(set(services.values())), "groups": sorted(services), "since": now - PREVIOUS_SAMPLE_HORIZON,
         "now": now},
    ).fetchall()
    return {(g, t, p): PreviousSample(ts, committed, log_end, time_lag) for g, t, p, ts, committed, log_end, time_lag in rows}


# ---------------------------------------------------------------------------------------------
# Live lag


@dataclass(frozen=True)
class PartitionLag:
    """One partition of one group, live from the cluster (the row of `lag show --by partition`)."""

    service_name: str | None
    consumer_group_id: str
    managed: bool
    group_state: str
    topic_name: str
    partition: int
    committed_offset: int | None
    log_start_offset: int | None
    log_end_offset: int | None
    lag: int | None
    time_lag_ms: int | None
    lost_records: int
    member_id: str | None
    client_id: str | None
    host: str | None
    status: str


@dataclass(frozen=True)
class LagSummary:
    """Partitions rolled up by service (group) or by topic: `lag show --by service|topic`."""

    name: str
    consumer_group_id: str | None
    managed: bool | None
    group_state: str | None
    topics: int
    partitions: int
    partitions_unknown: int
    members: int | None
    total_lag: int | None
    max_lag: int | None
    max_time_lag_ms: int | None
    lost_records: int
    status: str


# worst last: a group's status is its worst partition's
STATUS_ORDER = ("OK", "-", "WARN", "REWIND", "ERR", "STALL", "STOP")


def worst(statuses: Iterable[str]) -> str:
    ranked = [s for s in statuses if s in STATUS_ORDER]
    return max(ranked, key=STATUS_ORDER.index) if ranked else "-"


def live_status(committed: int | None, lag: int | None, log_start: int | None, log_end: int | None, group_state: str) -> str:
    """Status from one look at the cluster, used where no stored window exists yet.

    Only what a single snapshot proves: caught up (OK), nothing ever committed on a partition
    with data (ERR), or lag with nobody in the group (STOP). Slow versus stalled needs history ("-").
    """
    if log_end is None:
        return "-"
    if committed is None:
        return "OK" if log_start is not None and log_start >= log_end else "ERR"
    if not lag:
        return "OK"
    if group_state in ("Empty", "Dead"):
        return "STOP"
    return "-"


def live_lag(
    snap: Any,
    services: dict[str, str],
    group_ids: Sequence[str],
    *,
    now: dt.datetime,
    previous: dict[Key, PreviousSample] | None = None,
    stored_status: dict[Key, str] | None = None,
) -> list[PartitionLag]:
    """Per-partition lag of ``group_ids`` from a :class:`loomctl.kafka.ClusterSnapshot`.

    ``services`` maps configured group ids to service names; other groups are unmanaged.
    ``stored_status`` (from the history window) wins over the single-snapshot status.
    """
    from loomctl.kafka import Group

    previous = previous or {}
    stored_status = stored_status or {}
    rows: list[PartitionLag] = []
    for group_id in group_ids:
        group = snap.groups.get(group_id) or Group(group_id, "Dead")
        committed = snap.committed.get(group_id, {})
        owners = group.owner_of()
        topics = {t for t, _ in committed} | {t for t, _ in owners}
        partitions = sorted(set(committed) | set(owners) | {(t, p) for t in topics for p in range(snap.partition_counts.get(t, 0))})
        for topic, partition in partitions:
            offsets = snap.offsets.get((topic, partition))
            log_start = offsets.start if offsets else None
            log_end = offsets.end if offsets else None
            offset = committed.get((topic, partition))
            lag = partition_lag(offset, log_end) if log_end is not None else None
            key = (group_id, topic, partition)
            time_lag = carry_time_lag_ms(previous.get(key), now, offset, log_end) if log_end is not None else None
            owner = owners.get((topic, partition))
            rows.append(
                PartitionLag(
                    service_name=services.get(group_id),
                    consumer_group_id=group_id,
                    managed=group_id in services,
                    group_state=group.state,
                    topic_name=topic,
                    partition=partition,
                    committed_offset=offset,
                    log_start_offset=log_start,
                    log_end_offset=log_end,
                    lag=lag,
                    time_lag_ms=time_lag,
                    lost_records=lost_to_retention(offset, log_start),
                    member_id=owner.member_id if owner else None,
                    client_id=owner.client_id if owner else None,
                    host=owner.host if owner else None,
                    status=stored_status.get(key) or live_status(offset, lag, log_start, log_end, group.state),
                )
            )
    return rows


def _sum(values: Iterable[int | None]) -> int | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def _max(values: Iterable[int | None]) -> int | None:
    known = [v for v in values if v is not None]
    return max(known) if known else None


def summarize(
    rows: Sequence[PartitionLag],
    by: str,
    *,
    snap: Any = None,
    services: dict[str, str] | None = None,
    group_ids: Sequence[str] = (),
) -> list[LagSummary]:
    """Roll partition rows up per service/group (``by="service"``) or per topic (``by="topic"``).

    A group with no partitions at all (it never committed and has no assignment) still gets a
    row when ``group_ids`` names it, so a configured service never silently disappears.
    """
    services = services or {}
    per_topic = by == "topic"
    buckets: dict[str, list[PartitionLag]] = {}
    for row in rows:
        buckets.setdefault(row.topic_name if per_topic else row.consumer_group_id, []).append(row)
    if not per_topic:
        for group_id in group_ids:
            buckets.setdefault(group_id, [])
    summaries: list[LagSummary] = []
    for key, items in buckets.items():
        group = snap.groups.get(key) if (snap is not None and not per_topic) else None
        summaries.append(
            LagSummary(
                name=key if per_topic else services.get(key, key),
                consumer_group_id=None if per_topic else key,
                managed=None if per_topic else key in services,
                group_state=None if per_topic else (group.state if group else "Dead"),
                topics=len({r.topic_name for r in items}),
                partitions=len(items),
                partitions_unknown=sum(1 for r in items if r.lag is None),
                members=None if per_topic else (len(group.members) if group else 0),
                total_lag=_sum(r.lag for r in items),
                max_lag=_max(r.lag for r in items),
                max_time_lag_ms=_max(r.time_lag_ms for r in items),
                lost_records=sum(r.lost_records for r in items),
                status=worst(r.status for r in items) if items else "-",
            )
        )
    return sorted(summaries, key=lambda s: (-STATUS_ORDER.index(s.status) if s.status in STATUS_ORDER else 0, -(s.total_lag or 0), s.name))


# ---------------------------------------------------------------------------------------------
# What the database knows: configured groups, the stored window


def configured_groups(conn: "psycopg.Connection[Any]", services: Sequence[str] = ()) -> dict[str, str]:
    """Group id -> service name of the configured services (all, or the ones named)."""
    from loomctl import configs

    return configs.group_services(conn, services)


def select_services(configured: dict[str, str], services: Sequence[str]) -> dict[str, str]:
    """The named services' part of ``configured`` (all of it when none is named); NotFound for a stranger."""
    from loomctl import configs

    if not services:
        return configured
    by_service = {service: group for group, service in configured.items()}
    missing = [s for s in services if s not in by_service]
    if missing:
        raise configs.missing_services(missing)
    return {by_service[s]: s for s in services}


def stored_status(conn: "psycopg.Connection[Any]", window: dt.timedelta, group_ids: Sequence[str]) -> list[dict[str, Any]]:
    """``lag_partition_status`` over ``window`` for ``group_ids``: per partition, status and evidence."""
    from psycopg.rows import dict_row

    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT * FROM public.lag_partition_status(%s) WHERE consumer_group_id = ANY(%s)"
            " ORDER BY service_name, consumer_group_id, topic_name, partition",
            (window, list(group_ids)),
        ).fetchall()


def status_report(conn: "psycopg.Connection[Any]", window: dt.timedelta, services: Sequence[str] = ()) -> dict[str, list[dict[str, Any]]]:
    """`lag status`: the window's verdict per group (worst partition) and per partition with evidence.

    A configured service with no sample in the window is reported as NO_DATA, so a collector
    that stopped, or a group that was never sampled, shows instead of disappearing.
    """
    groups = configured_groups(conn, services)
    partitions = stored_status(conn, window, list(groups))
    by_group: dict[str, list[dict[str, Any]]] = {}
    for row in partitions:
        by_group.setdefault(row["consumer_group_id"], []).append(row)
    summary = []
    for group_id, service in sorted(groups.items(), key=lambda item: item[1]):
        rows = by_group.get(group_id, [])
        statuses = [r["status"] for r in rows]
        summary.append(
            {
                "service_name": service,
                "consumer_group_id": group_id,
                "status": worst(statuses) if rows else "NO_DATA",
                "partitions": len(rows),
                "partitions_by_status": {s: statuses.count(s) for s in STATUS_ORDER if s in statuses},
                "total_lag": _sum(r["last_lag"] for r in rows),
                "lag_change": (_sum(r["last_lag"] for r in rows) or 0) - (_sum(r["first_lag"] for r in rows) or 0) if rows else None,
                "max_time_lag_ms": _max(r["time_lag_ms"] for r in rows),
                "member_count": _max(r["member_count"] for r in rows),
                "first_sample_at": min((r["first_timestamp"] for r in rows), default=None),
                "last_sample_at": max((r["last_timestamp"] for r in rows), default=None),
            }
        )
    rank = {s: i for i, s in enumerate(("NO_DATA",) + STATUS_ORDER)}
    summary.sort(key=lambda g: (-rank.get(g["status"], 0), g["service_name"]))
    return {"groups": summary, "partitions": partitions}


def show(
    admin: Any,
    conn: "psycopg.Connection[Any] | None",
    *,
    services: Sequence[str] = (),
    groups: Sequence[str] = (),
    all_groups: bool = False,
    status_window: dt.timedelta = dt.timedelta(minutes=15),
    concurrency: int | None = None,
) -> tuple[list[PartitionLag], Any, dict[str, str], list[str]]:
    """Live lag of the chosen groups: (partition rows, the snapshot, group -> service, group ids).

    Without a database (``conn`` None) groups are shown by id and lag in time is unknown.
    """
    from loomctl import kafka
    from loomctl.errors import BadInput, NotFound

    configured = configured_groups(conn) if conn is not None else {}
    if services and conn is None:
        raise BadInput("naming services needs the database: pass --database-url or set LOOM_DATABASE_URL")
    selected = select_services(configured, services) if services else {}
    wanted: list[str] = list(selected) + [g for g in groups if g not in selected]
    states: dict[str, str] = {}
    if all_groups:
        states = kafka.list_groups(admin)
        wanted = sorted(set(wanted) | set(states) | set(configured))
    elif not wanted:
        if not configured:
            raise NotFound("no configured services: name a --group, use --all-groups, or add configs (`loomctl config set --create`)")
        wanted = sorted(configured)
    options = {} if concurrency is None else {"concurrency": concurrency}
    snap = kafka.snapshot(admin, wanted, known_states=states, **options)
    unknown = [g for g in groups if g in snap.missing_groups and g not in configured]
    if unknown:
        raise NotFound(f"no consumer group {', '.join(unknown)} on the cluster")
    now = dt.datetime.now(dt.timezone.utc)
    previous: dict[Key, PreviousSample] = {}
    statuses: dict[Key, str] = {}
    if conn is not None:
        # only configured groups are collected, so only they have stored samples
        sampled = {g: configured[g] for g in wanted if g in configured}
        previous = previous_samples(conn, sampled, now)
        statuses = {
            (r["consumer_group_id"], r["topic_name"], r["partition"]): r["status"]
            for r in (stored_status(conn, status_window, list(sampled)) if sampled else [])
            if r["samples"] >= 2
        }
    rows = live_lag(snap, configured, wanted, now=now, previous=previous, stored_status=statuses)
    return rows, snap, configured, wanted


def history(
    conn: "psycopg.Connection[Any]", service: str, *, since: dt.timedelta, bucket: dt.timedelta, now: dt.datetime | None = None
) -> list[dict[str, Any]]:
    """`lag history`: per topic, the service's total lag per time bucket (each partition's highest
    sample in the bucket, summed), with every bucket of the range present (None where no sample)."""
    configured_groups(conn, [service])  # NotFound for a service with no config
    now = now or dt.datetime.now(dt.timezone.utc)
    origin = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)
    start = now - since
    rows = conn.execute(
        """
        SELECT p.topic_name, p.bucket, sum(p.lag)::bigint, max(p.time_lag_ms)::bigint, count(*)::int,
               count(*) FILTER (WHERE p.lag IS NULL)::int
          FROM (SELECT h.topic_name, h.partition, date_bin(%(bucket)s, h."timestamp", %(origin)s) AS bucket,
                       max(h.lag) AS lag, max(h.time_lag_ms) AS time_lag_ms
                  FROM public.consumer_lag_history AS h
                 WHERE h.service_name = %(service)s AND h."timestamp" > %(start)s AND h."timestamp" <= %(now)s
                 GROUP BY 1, 2, 3) AS p
         GROUP BY p.topic_name, p.bucket
         ORDER BY p.topic_name, p.bucket
        """,
        {"bucket": bucket, "origin": origin, "service": service, "start": start, "now": now},
    ).fetchall()
    first = origin + ((start - origin) // bucket) * bucket
    slots = []
    t = first
    while t <= now:
        slots.append(t)
        t += bucket
    per_topic: dict[str, dict[dt.datetime, tuple[Any, ...]]] = {}
    for topic, at, total, time_lag, partitions, unknown in rows:
        per_topic.setdefault(topic, {})[at] = (total, time_lag, partitions, unknown)
    result = []
    for topic, by_slot in per_topic.items():
        buckets = [
            {"timestamp": at, "lag": by_slot[at][0], "max_time_lag_ms": by_slot[at][1], "partitions": by_slot[at][2],
             "partitions_unknown": by_slot[at][3]} if at in by_slot else
            {"timestamp": at, "lag": None, "max_time_lag_ms": None, "partitions": 0, "partitions_unknown": 0}
            for at in slots
        ]
        known = [b["lag"] for b in buckets if b["lag"] is not None]
        result.append(
            {
                "service_name": service,
                "topic_name": topic,
                "since": start,
                "bucket_seconds": bucket.total_seconds(),
                "buckets_with_data": len(known),
                "min_lag": min(known, default=None),
                "max_lag": max(known, default=None),
                "last_lag": known[-1] if known else None,
                "buckets": buckets,
            }
        )
    return result
