"""Live lag: per partition from one cluster snapshot, rolled up per service or topic (`lag show`).

The status of a partition comes from the stored window when the collector has sampled it, else
from what the one snapshot proves; lag in time is carried forward from the newest stored sample.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from loomctl.lag.configured import configured_groups, group_clusters, select_services
from loomctl.lag.time_lag import Key, PreviousSample, carry_time_lag_ms, previous_samples
from loomctl.lag.verdicts import ERR, OK, STALE_AFTER_INTERVALS, STATUS_WINDOW, STOP, UNKNOWN, status_rank, worst

if TYPE_CHECKING:
    import psycopg

    from loomctl.kafka import ClusterSnapshot
    from loomctl.lag.packed import PartitionTable

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
    group_type: str | None = None
    """``classic`` or ``consumer`` (KIP-848) as the broker reports the group; None where it does not say."""
    cluster_name: str | None = None
    """The cluster the group was read on (`lag show`); None where one cluster is all there is to say (the exporter's
    rows, whose snapshot carries it)."""
    start_offset: int | None = None
    """A share group's start offset on the partition (KIP-932: records before it are all delivered and done); None
    for other groups, or where the broker says the group has not started on the partition."""


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
    group_type: str | None = None
    """The group's type (per service); None per topic, or where the broker does not say."""
    cluster_name: str | None = None
    note: str | None = None
    """Why a listed group is not measured (a Kafka Connect group, a type loomctl does not know); None when it is."""


BROKER_LACKS = "its broker has no"
"""How a :attr:`LagView.limited` reason begins when the broker lacks group types, not the client (all is listed)."""


@dataclass(frozen=True)
class LagView:
    """`lag show`: the partition rows of the chosen groups and, unless ``by`` is "partition", their roll-up."""

    by: str
    group_ids: list[str]
    partitions: list[PartitionLag]
    summaries: list[LagSummary] = field(default_factory=list)
    limited: dict[str, str] = field(default_factory=dict)
    """Cluster -> why only its consumer groups could be listed: no group-types client for its settings, or a broker
    without share or streams groups (Kafka 4.0); said once per cluster, not on each group."""
    unreachable: dict[str, str] = field(default_factory=dict)
    """Cluster -> why it could not be read; its groups are shown with unknown lag (``-``), never as 0."""

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
    if group_state in _NOBODY:
        return STOP
    return UNKNOWN


def share_live_status(lag: int | None, group_state: str) -> str:
    """A share group's status from one look: its lag is the broker's (records neither delivered nor done). Caught up
    is OK, records waiting with no member is STOP; whether members that are there make progress needs history."""
    if lag is None:
        return UNKNOWN
    if lag == 0:
        return OK
    return STOP if group_state in _NOBODY else UNKNOWN


_NOBODY = ("Empty", "Dead")
"""Group states with no member to consume: lag there is a stop. Assigning, Reconciling and Unknown have members."""

_new = object.__new__


def _row(cls: type, values: dict[str, Any]) -> Any:
    """An instance of the frozen dataclass ``cls`` whose fields are ``values`` (every field, in field order).

    `lag show` builds a row per partition of every group, tens of thousands per call, and the generated
    ``__init__`` of a frozen dataclass sets each field through ``object.__setattr__``: that cost more than
    everything else the row needs. Filling the instance's own ``__dict__`` in field order gives the same
    instance (``vars()``, equality, pickling) at a fifth of the cost, its dict sharing the class's key table.
    """
    row: Any = _new(cls)
    row.__dict__.update(values)
    return row


def partitions_of(
    committed: dict[tuple[str, int], Any], owners: dict[tuple[str, int], Any], counts: dict[str, int]
) -> list[tuple[str, list[int]]]:
    """Per topic (sorted) the partitions of one group (sorted): every partition of each topic it committed
    on or owns, plus any it committed on or owns beyond the topic's count (a deleted topic has none)."""
    topics = {t for t, _ in committed}
    if owners:
        topics.update(t for t, _ in owners)
    result = []
    for topic in sorted(topics):
        count = counts.get(topic, 0)
        result.append((topic, list(range(count))))
    # partitions past the metadata's count: a topic deleted since the commit, or metadata behind
    beyond = [(t, p) for t, p in committed if p >= counts.get(t, 0)]
    if owners:
        beyond += [(t, p) for t, p in owners if p >= counts.get(t, 0)]
    if beyond:
        extra: dict[str, set[int]] = {}
        for t, p in beyond:
            extra.setdefault(t, set()).add(p)
        result = [(t, sorted(set(ps) | extra.get(t, set()))) for t, ps in result]
    return result


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a bulk of rows is built: rows hold no reference cycles, and at 10,000
    groups (hundreds of thousands of rows) the collections it set off took a third of the time. The
    collector's state is left as it was."""
    import gc

    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def live_lag(
    snap: "ClusterSnapshot",
    services: dict[str, str],
    group_ids: Sequence[str],
    *,
    now: dt.datetime,
    previous: Mapping[Key, PreviousSample] | None = None,
    stored_status: Mapping[Key, str] | None = None,
    into: "PartitionTable | None" = None,
    cluster_name: str | None = None,
) -> list[PartitionLag]:
    """Per-partition lag of ``group_ids`` from a :class:`loomctl.kafka.ClusterSnapshot`.

    ``services`` maps configured group ids to service names; other groups are unmanaged.
    ``stored_status`` (from the history window) wins over the single-snapshot status.

    The figures are those of :func:`~loomctl.lag.samples.partition_lag`, :func:`~loomctl.lag.samples.lost_to_retention`,
    :func:`~loomctl.lag.time_lag.carry_time_lag_ms` and :func:`live_status`, computed inline: this loop runs once
    per partition of every group (tests/lag/test_lag_live.py holds it to those functions).

    ``into``: the rows go into this table (packed, as the collector's exporter keeps them), not into the list returned.
    ``cluster_name``: the cluster each row names (set as the row is made: a copy of each row afterwards cost
    ``lag show`` half its time at 2,000 groups).
    """
    with gc_paused():
        return _live_lag(snap, services, group_ids, now, previous or {}, stored_status or {}, into, cluster_name)


def _live_lag(
    snap: "ClusterSnapshot",
    services: dict[str, str],
    group_ids: Sequence[str],
    now: dt.datetime,
    previous: Mapping[Key, PreviousSample],
    stored: Mapping[Key, str],
    table: "PartitionTable | None",
    cluster_name: str | None = None,
) -> list[PartitionLag]:
    from loomctl.kafka import Group

    offsets = snap.offsets
    counts = snap.partition_counts
    rows: list[PartitionLag] = []
    append = rows.append
    for group_id in group_ids:
        group = snap.groups.get(group_id) or Group(group_id, "Dead")
        committed = snap.committed.get(group_id) or {}
        owners = group.owner_of()
        service = services.get(group_id)
        managed = group_id in services
        state = group.group_state
        group_type = group.group_type
        nobody = state in _NOBODY
        if table is not None:
            table.begin(service, group_id, managed, state, group_type)
        shared = snap.share_offsets.get(group_id) if snap.share_offsets else None
        if shared is not None:
            found = _share_rows(
                group_id, service, managed, state, group_type, shared, owners, counts, offsets, stored, cluster_name
            )
            if table is None:
                rows += found
            else:
                for r in found:
                    table.add(r.topic_name, r.partition, None, r.log_start_offset, r.log_end_offset, r.lag, None, 0,
                              (r.member_id, r.client_id, r.host), r.status, r.start_offset)  # fmt: skip
            continue
        for topic, partitions in partitions_of(committed, owners, counts):
            for partition in partitions:
                tp = (topic, partition)
                offset = committed.get(tp)
                log = offsets.get(tp)
                lost = 0
                if log is None:
                    log_start = log_end = lag = time_lag = None
                    status = UNKNOWN
                else:
                    log_start, log_end = log.start, log.end
                    if offset is None:
                        lag = time_lag = None
                        status = OK if log_start >= log_end else ERR
                    elif offset >= log_end:
                        lag = time_lag = 0
                        status = OK
                        if offset < log_start:
                            lost = log_start - offset
                    else:
                        lag = log_end - offset
                        if offset < log_start:
                            lost = log_start - offset
                        before = previous.get((group_id, topic, partition)) if previous else None
                        time_lag = carry_time_lag_ms(before, now, offset, log_end) if before is not None else None
                        status = STOP if nobody else UNKNOWN
                if stored:
                    status = stored.get((group_id, topic, partition)) or status
                owner = owners.get(tp) if owners else None
                if table is not None:
                    table.add(topic, partition, offset, log_start, log_end, lag, time_lag, lost,
                              None if owner is None else (owner.member_id, owner.client_id, owner.host), status)  # fmt: skip
                    continue
                row = _new(PartitionLag)
                values = row.__dict__  # filled in field order, so rows share one key table (see _row)
                values["service_name"] = service
                values["consumer_group_id"] = group_id
                values["managed"] = managed
                values["group_state"] = state
                values["topic_name"] = topic
                values["partition"] = partition
                values["committed_offset"] = offset
                values["log_start_offset"] = log_start
                values["log_end_offset"] = log_end
                values["lag"] = lag
                values["time_lag_ms"] = time_lag
                values["lost_records"] = lost
                if owner is None:
                    values["member_id"] = values["client_id"] = values["host"] = None
                else:
                    values["member_id"] = owner.member_id
                    values["client_id"] = owner.client_id
                    values["host"] = owner.host
                values["status"] = status
                values["group_type"] = group_type
                values["cluster_name"] = cluster_name
                values["start_offset"] = None
                append(row)
    return rows


def _share_rows(
    group_id: str,
    service: str | None,
    managed: bool,
    state: str,
    group_type: str | None,
    shared: Mapping[tuple[str, int], tuple[int | None, int | None]],
    owners: Mapping[tuple[str, int], Any],
    counts: Mapping[str, int],
    offsets: Mapping[tuple[str, int], Any],
    stored: Mapping[Key, str],
    cluster_name: str | None = None,
) -> list[PartitionLag]:
    """A share group's rows: the broker's start offset and lag per partition (KIP-1226), every partition of its
    topics (one it has not started on is unknown, never 0); no committed offset, lag in time or lost records."""
    rows = []
    for topic, partitions in partitions_of(dict(shared), dict(owners), dict(counts)):
        for partition in partitions:
            start, lag = shared.get((topic, partition), (None, None))
            log = offsets.get((topic, partition))
            owner = owners.get((topic, partition))
            status = stored.get((group_id, topic, partition)) if stored else None
            rows.append(
                PartitionLag(
                    service,
                    group_id,
                    managed,
                    state,
                    topic,
                    partition,
                    None,
                    log.start if log else None,
                    log.end if log else None,
                    lag,
                    None,
                    0,
                    owner.member_id if owner else None,
                    owner.client_id if owner else None,
                    owner.host if owner else None,
                    status or share_live_status(lag, state),
                    group_type,
                    cluster_name,
                    start,
                )  # fmt: skip
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
        lags = [r.lag for r in items if r.lag is not None]
        time_lags = [r.time_lag_ms for r in items if r.time_lag_ms is not None]
        summaries.append(
            _row(
                LagSummary,
                {
                    "name": key if per_topic else services.get(key, key),
                    "consumer_group_id": None if per_topic else key,
                    "managed": None if per_topic else key in services,
                    "group_state": None if per_topic else (group.group_state if group else "Dead"),
                    "topics": len({r.topic_name for r in items}),
                    "partitions": len(items),
                    "partitions_unknown": len(items) - len(lags),
                    "members": None if per_topic else (len(group.members) if group else 0),
                    "total_lag": sum(lags) if lags else None,
                    "max_lag": max(lags) if lags else None,
                    "max_time_lag_ms": max(time_lags) if time_lags else None,
                    "lost_records": sum(r.lost_records for r in items),
                    "status": worst(r.status for r in items) if items else UNKNOWN,
                    "group_type": None if per_topic else (group.group_type if group else None),
                    "cluster_name": None,
                    "note": None if per_topic or snap is None else snap.unmeasured.get(key),
                },
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
    status_window: dt.timedelta = STATUS_WINDOW,
    concurrency: int | None = None,
    cluster: str | None = None,
    wire: Callable[[str], Any] | None = None,
) -> LagView:
    """Live lag of the chosen groups, per partition and rolled up ``by`` service, topic or partition
    (default: :func:`default_by`).

    ``admin`` is an AdminClient, or a callable giving the AdminClient of a registered cluster by name: each
    configured group is read on its own service's cluster, every cluster at once; a group no config owns on
    ``cluster`` (None: the default cluster). With ``cluster`` only that cluster's groups are shown.
    Without a database (``conn`` None) groups are shown by id and lag in time is unknown.

    ``wire`` gives a cluster's :func:`loomctl.kafka.protocol.client` by name: with it every group of the cluster is
    listed with its type (share, streams and Kafka Connect groups too, which librdkafka's listing drops), share and
    streams groups are measured, and a group loomctl cannot measure is shown with the reason.
    """
    from loomctl import kafka
    from loomctl.errors import BadInput, NotFound
    from loomctl.kafka.clients import in_background

    by = by or default_by(services, groups)
    if by not in BY:
        raise BadInput(f"--by {by}: choose {', '.join(BY)}")
    if groups:
        from loomctl.validation import check_group_id

        for group in groups:
            check_group_id(group)
    configured = configured_groups(conn) if conn is not None else {}
    if services and conn is None:
        raise BadInput("naming services needs the database: pass --database-url or set LOOM_DATABASE_URL")
    home = cluster or "default"
    cluster_of = group_clusters(conn) if conn is not None else {}
    if cluster is not None:
        configured = {g: s for g, s in configured.items() if cluster_of.get(g) == cluster}
    selected = select_services(configured, services) if services else {}
    wanted: list[str] = list(selected) + [g for g in groups if g not in selected]
    admin_of: Callable[[str], Any] = admin if not hasattr(admin, "list_topics") else (lambda _: admin)
    listings: dict[str, dict[str, tuple[str, str | None]]] = {}
    protocols: dict[str, dict[str, str]] = {}

    limited: dict[str, str] = {}

    def wire_of(name: str) -> Any:
        found = None if wire is None else wire(name)
        if isinstance(found, str):
            limited[name] = found
            return None
        return found

    def listing(name: str) -> None:
        w = wire_of(name)
        if w is None:
            listings[name] = kafka.list_group_listings(admin_of(name))
            return
        from loomctl.kafka import protocol

        every = protocol.list_every_group(w)
        listings[name] = {g.group_id: (g.state or "Unknown", g.group_type) for g in every.values()}
        protocols[name] = {g.group_id: g.protocol_type for g in every.values()}
        if all_groups:
            from loomctl.kafka.groups import missing_group_types

            lacking = missing_group_types(w)
            if lacking:  # every group of the cluster is listed, but it cannot have groups of these types
                limited[name] = f"{BROKER_LACKS} {' nor '.join(lacking)}"

    if all_groups:
        for name in sorted({cluster_of.get(g, home) for g in configured} | {home}):
            listing(name)
        wanted = sorted(set(wanted) | {g for listed in listings.values() for g in listed} | set(configured))
    elif not wanted:
        if not configured:
            raise NotFound(
                "no configured services: name a --group, use --all-groups, or add configs (`loomctl config set --create`)"
            )
        wanted = sorted(configured)
    per_cluster: dict[str, list[str]] = {}
    for group in wanted:
        per_cluster.setdefault(cluster_of.get(group, home) if group in configured else home, []).append(group)
    options = {} if concurrency is None else {"concurrency": concurrency}
    # only configured groups are collected, so only they have stored samples: those are read while the
    # clusters answer (the database and the brokers wait in parallel), on this connection, which nothing
    # else uses until the read is joined
    sampled = {g: configured[g] for g in wanted if g in configured}
    stored = (
        in_background(lambda: _stored(conn, sampled, status_window), "loomctl-stored-lag")
        if conn is not None and sampled
        else None
    )

    def read(name: str) -> "ClusterSnapshot":
        if wire is not None and name not in listings:
            # librdkafka's listing first (no kafka-python to import): when it has every group asked for, they are all
            # groups it reads; one it lacks may be a share, streams or Connect group, which the types route
            plain = kafka.list_group_listings(admin_of(name))
            if all(g in plain for g in per_cluster[name]):
                listings[name] = plain
            else:
                listing(name)
        listed = listings.get(name, {})
        return kafka.snapshot(
            admin_of(name),
            per_cluster[name],
            known_states={g: state for g, (state, _) in listed.items()},
            known_types={g: group_type for g, (_, group_type) in listed.items()},
            known_protocols=protocols.get(name),
            wire=wire_of(name) if name in protocols else None,  # a typed listing routed some group
            **options,
        )

    try:
        snaps, failed = _each(read, sorted(per_cluster))
    except BaseException:
        if stored is not None:
            stored(raising=False)
        raise
    previous, statuses = stored() if stored is not None else ({}, {})
    unknown = [g for g in groups if g not in configured and g in snaps[home].missing_groups] if home in snaps else []
    if unknown:
        raise NotFound(f"no consumer group {', '.join(unknown)} on the cluster")
    now = dt.datetime.now(dt.timezone.utc)
    rows: list[PartitionLag] = []
    summaries: list[LagSummary] = []
    for name in failed:  # what cannot be read is unknown: a row per group, no partition, no lag
        from loomctl.kafka import ClusterSnapshot, Group

        snaps[name] = ClusterSnapshot(groups={g: Group(g, "Unknown") for g in per_cluster[name]})
    for name in sorted(snaps):
        snap, ids = snaps[name], per_cluster[name]
        found = live_lag(snap, configured, ids, now=now, previous=previous, stored_status=statuses, cluster_name=name)
        rows += found
        if by != "partition":
            summaries += [
                replace(s, cluster_name=name) for s in summarize(found, by, snap=snap, services=configured, group_ids=ids)
            ]
    if len(snaps) > 1 and by != "partition":
        summaries.sort(key=_worst_first)
    return LagView(by=by, group_ids=wanted, partitions=rows, summaries=summaries, limited=limited, unreachable=failed)


def _worst_first(summary: LagSummary) -> Any:
    return (-status_rank(summary.status), -(summary.total_lag or 0), summary.name)


def _each(read: Callable[[str], Any], names: Sequence[str]) -> tuple[dict[str, Any], dict[str, str]]:
    """``read(name)`` of every cluster at once: a slow cluster costs its own timeout, not the others' in turn. With
    more than one cluster, one that fails (a LoomError) is left out with its error; one cluster's failure raises."""
    from loomctl.errors import LoomError

    if len(names) <= 1:
        return {name: read(name) for name in names}, {}
    from concurrent.futures import ThreadPoolExecutor

    done: dict[str, Any] = {}
    errors: dict[str, LoomError] = {}
    with ThreadPoolExecutor(max_workers=min(8, len(names)), thread_name_prefix="loomctl-lag-show") as pool:
        futures = {name: pool.submit(read, name) for name in names}
        for name, future in futures.items():
            try:
                done[name] = future.result()
            except LoomError as exc:
                errors[name] = exc
    if not done:  # nothing could be read: the command fails as with one cluster
        raise next(iter(errors.values()))
    return done, {name: str(exc) for name, exc in errors.items()}


_ONE_SAMPLE_INTERVAL = dt.timedelta(seconds=30)
"""The sampling interval assumed where the window holds a single sample: `lag collect`'s default."""


def _stored(
    conn: "psycopg.Connection[Any]",
    sampled: dict[str, str],
    window: dt.timedelta,
) -> tuple[dict[Key, PreviousSample], dict[Key, str]]:
    """The newest stored sample of each partition (lag in time is carried from it) and the window's status (the
    one `lag status`, the alerts and the exporter give: "-" where a single sample cannot be judged yet), unless
    it is stale: a verdict whose newest sample is older than a few sampling intervals was kept by a collector that
    has stopped since, and the snapshot's own look (:func:`live_status`) is shown rather than that old verdict.

    Both from one read of ``lag_partition_status``, whose last sample of each partition in the window is the
    newest one stored: served from the copy a running collector keeps, that is a read of one row per
    partition, where the newest sample per partition from the history sorts an hour of samples (0.8 s at
    75,000 partitions sampled ten times; every sample of the hour at 120). Only what the window cannot tell
    is read from the history as before (:func:`previous_samples`): groups without a sample in the window
    (their newest may be up to an hour old), and partitions whose last sample a service reported itself
    (``record_consumer_lag``: the window's lag in time there is an estimate, not the sample's own)."""
    rows = conn.execute(
        "SELECT s.consumer_group_id, s.topic_name, s.partition, s.status, s.samples, s.first_timestamp, s.last_timestamp,"
        "       s.last_committed_offset, s.log_end_offset, s.time_lag_ms, s.member_count IS NULL AND s.group_state IS NULL"
        "  FROM public.lag_partition_status(%s) AS s"
        " WHERE s.consumer_group_id = ANY(%s)",
        (window, sorted(sampled)),
    ).fetchall()
    previous: dict[Key, PreviousSample] = {}
    statuses: dict[Key, str] = {}
    in_window: set[str] = set()
    reported: set[str] = set()
    now = dt.datetime.now(dt.timezone.utc)
    for group, topic, partition, status, samples, first_at, last_at, committed, log_end, time_lag_ms, by_service in rows:
        key = (group, topic, partition)
        every = (last_at - first_at) / (samples - 1) if samples >= 2 else _ONE_SAMPLE_INTERVAL
        if now - last_at <= STALE_AFTER_INTERVALS * max(every, dt.timedelta(seconds=1)):
            statuses[key] = status
        if by_service:
            reported.add(group)
        else:
            in_window.add(group)
            previous[key] = PreviousSample(last_at, committed, log_end, time_lag_ms)
    reread = (set(sampled) - in_window) | reported
    if reread:
        fresh = previous_samples(conn, {g: sampled[g] for g in reread}, dt.datetime.now(dt.timezone.utc))
        previous = {k: v for k, v in previous.items() if k[0] not in reread}
        previous.update(fresh)
    return previous, statuses
