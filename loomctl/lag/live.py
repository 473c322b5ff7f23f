"""Live lag: per partition from one cluster snapshot, rolled up per service or topic (`lag show`).

The status of a partition comes from the stored window when the collector has sampled it, else
from what the one snapshot proves; lag in time is carried forward from the newest stored sample.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loomctl.lag.configured import configured_groups, select_services
from loomctl.lag.samples import lost_to_retention, max_known, partition_lag, sum_known
from loomctl.lag.status import ERR, OK, STOP, UNKNOWN, status_rank, stored_status, worst
from loomctl.lag.time_lag import Key, PreviousSample, carry_time_lag_ms, previous_samples

if TYPE_CHECKING:
    import psycopg

    from loomctl.kafka import ClusterSnapshot

BY = ("service", "topic", "partition")
"""What one row of `lag show` stands for."""


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


@dataclass(frozen=True)
class LagView:
    """`lag show`: the partition rows of the chosen groups and, unless ``by`` is "partition", their roll-up."""

    by: str
    group_ids: list[str]
    partitions: list[PartitionLag]
    summaries: list[LagSummary] = field(default_factory=list)

    @property
    def rows(self) -> list[PartitionLag] | list[LagSummary]:
        """One row per ``by``: the partitions, or the summaries per service or topic."""
        return self.partitions if self.by == "partition" else self.summaries


def live_status(committed: int | None, lag: int | None, log_start: int | None, log_end: int | None, group_state: str) -> str:
    """Status from one look at the cluster, used where no stored window exists yet.

    Only what a single snapshot proves: caught up (OK), nothing ever committed on a partition
    with data (ERR), or lag with nobody in the group (STOP). Slow versus stalled needs history ("-").
    """
    if log_end is None:
        return UNKNOWN
    if committed is None:
        return OK if log_start is not None and log_start >= log_end else ERR
    if not lag:
        return OK
    if group_state in ("Empty", "Dead"):
        return STOP
    return UNKNOWN


def live_lag(
    snap: "ClusterSnapshot",
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


def summarize(
    rows: Sequence[PartitionLag],
    by: str,
    *,
    snap: "ClusterSnapshot | None" = None,
    services: dict[str, str] | None = None,
    group_ids: Sequence[str] = (),
) -> list[LagSummary]:
    """Roll partition rows up per service/group (``by="service"``) or per topic (``by="topic"``), worst first.

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
                total_lag=sum_known(r.lag for r in items),
                max_lag=max_known(r.lag for r in items),
                max_time_lag_ms=max_known(r.time_lag_ms for r in items),
                lost_records=sum(r.lost_records for r in items),
                status=worst(r.status for r in items) if items else UNKNOWN,
            )
        )
    return sorted(summaries, key=lambda s: (-status_rank(s.status), -(s.total_lag or 0), s.name))


def default_by(services: Sequence[str], groups: Sequence[str]) -> str:
    """Per partition when services or groups are named (a closer look), else one row per service."""
    return "partition" if services or groups else "service"


def show(
    admin: Any,
    conn: "psycopg.Connection[Any] | None",
    *,
    services: Sequence[str] = (),
    groups: Sequence[str] = (),
    all_groups: bool = False,
    by: str | None = None,
    status_window: dt.timedelta = dt.timedelta(minutes=15),
    concurrency: int | None = None,
) -> LagView:
    """Live lag of the chosen groups, per partition and rolled up ``by`` service, topic or partition
    (default: :func:`default_by`).

    Without a database (``conn`` None) groups are shown by id and lag in time is unknown.
    """
    from loomctl import kafka
    from loomctl.errors import BadInput, NotFound

    by = by or default_by(services, groups)
    if by not in BY:
        raise BadInput(f"--by {by}: choose {', '.join(BY)}")
    from loomctl.validation import check_group_id

    for group in groups:
        check_group_id(group)
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
    summaries = [] if by == "partition" else summarize(rows, by, snap=snap, services=configured, group_ids=wanted)
    return LagView(by=by, group_ids=wanted, partitions=rows, summaries=summaries)
