"""One partition of one group at one instant: the row of ``consumer_lag_history``, its lag, the COPY.

No committed offset is *unknown* (None), never 0; a negative lag is clamped to 0; a committed
offset below the log start offset means records were lost to retention before the group read them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    import psycopg

    from loomctl.lag.time_lag import Key, PreviousSample, PreviousSamples

HISTORY_COLUMNS = (
    "consumer_group_id",
    "topic_name",
    "partition",
    "timestamp",
    "service_name",
    "committed_offset",
    "log_end_offset",
    "log_start_offset",
    "lag",
    "time_lag_ms",
    "group_state",
    "member_count",
    "group_type",
    "cluster_name",
)
_HISTORY_TYPES = ("text", "text", "int4", "timestamptz", "text", "int8", "int8", "int8", "int8", "int8", "text", "int4", "text", "text")  # fmt: skip


class LagSample(NamedTuple):
    """One partition of one group at one instant: a row of ``consumer_lag_history``, its fields in
    :data:`HISTORY_COLUMNS` order. A tuple, so the collector's COPY writes it as it is: a cycle holds one
    per partition of every configured group (hundreds of thousands at 10,000 groups)."""

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
    group_type: str | None = None
    """``classic`` or ``consumer`` as the broker reported the group."""
    cluster_name: str = "default"
    """The cluster the group was sampled on."""

    def row(self) -> tuple[Any, ...]:
        return tuple(self)


def partition_lag(committed: int | None, log_end: int) -> int | None:
    """Lag of one partition: None when the group has no committed offset, never negative."""
    if committed is None:
        return None
    return max(log_end - committed, 0)


def lost_to_retention(committed: int | None, log_start: int | None) -> int:
    """Records the group never read because retention deleted them first."""
    if committed is None or log_start is None or committed >= log_start:
        return 0
    return log_start - committed


def copy_samples(conn: "psycopg.Connection[Any]", samples: Iterable[LagSample]) -> int:
    """Write samples with one binary COPY (the collector's bulk path); the caller owns the transaction."""
    count = 0
    with conn.cursor() as cur:
        with cur.copy(f"COPY public.consumer_lag_history ({', '.join(HISTORY_COLUMNS)}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(list(_HISTORY_TYPES))
            write = copy.write_row
            for sample in samples:
                write(sample)  # a LagSample is the row itself
                count += 1
    return count


def sum_known(values: Iterable[int | None]) -> int | None:
    """The sum of the known values; None when none is known (unknown lag is not 0)."""
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def max_known(values: Iterable[int | None]) -> int | None:
    known = [v for v in values if v is not None]
    return max(known) if known else None


def samples_from(
    snap: Any,
    services: dict[str, str],
    now: dt.datetime,
    previous: Mapping[Key, PreviousSample] | None = None,
    cluster_name: str = "default",
) -> list[LagSample]:
    """The history rows of one snapshot: every partition with a known log end, unknown lag kept as NULL, lag
    in time carried forward from ``previous`` (the partition's last stored sample)."""
    from loomctl.lag.live import gc_paused

    samples: list[LagSample] = []
    with gc_paused():
        for _ in iter_samples(snap, services, now, previous, into=samples, cluster_name=cluster_name):
            pass
    return samples


def iter_samples(
    snap: Any,
    services: dict[str, str],
    now: dt.datetime,
    previous: Mapping[Key, PreviousSample] | None,
    *,
    into: list[LagSample] | None = None,
    record: PreviousSamples | None = None,
    cluster_name: str = "default",
) -> Iterator[LagSample]:
    """:func:`samples_from` one at a time, each also appended to ``into`` when given: the cycle's COPY writes them
    as they are built, so PostgreSQL ingests the first groups while the last are built (two processes working at
    once, rather than one after the other). With ``record`` each is also kept there as the partition's previous
    sample for the next cycle, so the collector holds no list of the cycle's rows.

    The figures are those of :func:`~loomctl.lag.live.live_lag` for the same snapshot (the partitions of
    ``partitions_of``, the lag of ``partition_lag``, the lag in time of ``carry_time_lag_ms``), built
    straight into the history's tuples: this runs once per partition of every configured group, and
    tests/lag/test_live_rows.py holds it to those functions and to live_lag's rows.
    """
    from loomctl.kafka import Group
    from loomctl.lag.live import partitions_of
    from loomctl.lag.time_lag import carry_time_lag_ms, epoch_us

    offsets = snap.offsets
    counts = snap.partition_counts
    previous = previous or {}
    keep = into.append if into is not None else None
    put = record.put if record is not None else None
    now_us = epoch_us(now)
    new = tuple.__new__
    for group_id in sorted(services):
        group = snap.groups.get(group_id) or Group(group_id, "Dead")
        committed = snap.committed.get(group_id) or {}
        service = services[group_id] or group_id
        state, group_type, members = group.group_state, group.group_type, len(group.members)
        shared = snap.share_offsets.get(group_id) if getattr(snap, "share_offsets", None) else None
        if shared is not None:
            # a share group's place in a partition is its start offset, its lag the broker's (KIP-1226): kept as the
            # sample's committed offset and lag, so the window's rules read it as they read a commit (a start offset
            # that stays while the lag grows is a stall, nobody left while records wait a stop). A partition the group
            # has not started on has no sample: unknown, not "never committed".
            for topic, partitions in partitions_of(shared, group.owner_of(), counts):
                for partition in partitions:
                    log = offsets.get((topic, partition))
                    start, lag = shared.get((topic, partition), (None, None))
                    if log is None or start is None:
                        continue
                    sample = new(LagSample, (group_id, topic, partition, now, service, start, log.end, log.start, lag,
                                             None, state, members, group_type, cluster_name))  # fmt: skip
                    if keep is not None:
                        keep(sample)
                    yield sample
            continue
        for topic, partitions in partitions_of(committed, group.owner_of(), counts):
            slots = record.slots(group_id, topic, max(partitions) + 1) if record is not None and partitions else None
            for partition in partitions:
                log = offsets.get((topic, partition))
                if log is None:
                    continue  # no log end known: nothing to store
                offset = committed.get((topic, partition))
                end = log.end
                if offset is None:
                    lag = time_lag = None
                elif offset >= end:
                    lag = time_lag = 0
                else:
                    lag = end - offset
                    before = previous.get((group_id, topic, partition))
                    time_lag = carry_time_lag_ms(before, now, offset, end) if before is not None else None
                sample = new(
                    LagSample,
                    (
                        group_id,
                        topic,
                        partition,
                        now,
                        service,
                        offset,
                        end,
                        log.start,
                        lag,
                        time_lag,
                        state,
                        members,
                        group_type,
                        cluster_name,
                    ),  # fmt: skip
                )
                if keep is not None:
                    keep(sample)
                if put is not None and slots is not None:
                    put(slots, partition, now_us, offset, end, time_lag)
                yield sample
