"""Lag in time: when was the record at the committed offset produced?

Interpolated between stored samples, each carrying it forward from the one before, so it
survives restarts of the collector.
"""

from __future__ import annotations

import datetime as dt
from array import array
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    import psycopg

Key = tuple[str, str, int]
"""(consumer_group_id, topic_name, partition)"""
PREVIOUS_SAMPLE_HORIZON = dt.timedelta(hours=1)


class PreviousSample(NamedTuple):
    """What the last stored sample of a partition knew: enough to carry its lag in time forward (a tuple:
    the collector keeps one per partition of every group between cycles)."""

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


_NONE = -(1 << 63)
"""A slot of :class:`PreviousSamples` holding None (or, in the timestamp's slot, no sample of that partition)."""
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_MICROSECOND = dt.timedelta(microseconds=1)


def epoch_us(moment: dt.datetime) -> int:
    """An aware datetime as whole microseconds since the epoch (exact: datetimes have no finer unit)."""
    return (moment - _EPOCH) // _MICROSECOND


class PreviousSamples(Mapping[Key, PreviousSample]):
    """The previous sample of every partition the collector keeps between cycles, compactly: per (group, topic)
    one ``array('q')`` of four slots per partition number (the time in microseconds since the epoch, the committed
    offset, the log end offset, the lag in time; :data:`_NONE` for None), about 40 bytes a partition where a dict of
    tuples of :class:`PreviousSample` took about 300. A read gives the :class:`PreviousSample` (its time in UTC,
    the same instant), so it stands wherever a ``dict[Key, PreviousSample]`` did."""

    __slots__ = ("_by", "_count", "_at")

    def __init__(self) -> None:
        self._by: dict[tuple[str, str], array[int]] = {}
        self._count = 0
        self._at: tuple[int, dt.datetime] = (_NONE, _EPOCH)
        """The last time read and its datetime: a cycle's samples share one time, so it is made once."""

    def slots(self, group_id: str, topic: str, partitions: int) -> "array[int]":
        """The (new, empty) slots of ``group_id``'s partitions 0 .. ``partitions`` - 1 of ``topic``, to fill with
        :meth:`put`; those left empty hold no sample."""
        old = self._by.get((group_id, topic))
        if old is not None:  # replaced whole
            self._count -= sum(1 for i in range(0, len(old), 4) if old[i] != _NONE)
        slots = self._by[(group_id, topic)] = array("q", (_NONE,)) * (4 * partitions)
        return slots

    def put(
        self, slots: "array[int]", partition: int, at_us: int, committed: int | None, log_end: int, time_lag_ms: int | None
    ) -> None:
        i = 4 * partition
        if slots[i] == _NONE:
            self._count += 1
        slots[i] = at_us
        slots[i + 1] = _NONE if committed is None else committed
        slots[i + 2] = log_end
        slots[i + 3] = _NONE if time_lag_ms is None else time_lag_ms

    def get(self, key: Key, default: Any = None) -> Any:
        slots = self._by.get((key[0], key[1]))
        i = 4 * key[2]
        if slots is None or i < 0 or i >= len(slots) or slots[i] == _NONE:
            return default
        at_us, committed, time_lag = slots[i], slots[i + 1], slots[i + 3]
        at = self._at
        if at[0] != at_us:
            at = self._at = (at_us, _EPOCH + dt.timedelta(microseconds=at_us))
        return PreviousSample(
            at[1],
            None if committed == _NONE else committed,
            slots[i + 2],
            None if time_lag == _NONE else time_lag,
        )

    def __getitem__(self, key: Key) -> PreviousSample:
        found: PreviousSample | None = self.get(key)
        if found is None:
            raise KeyError(key)
        return found

    def __contains__(self, key: object) -> bool:
        return isinstance(key, tuple) and len(key) == 3 and self.get(key) is not None

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[Key]:
        for (group_id, topic), slots in self._by.items():
            for i in range(0, len(slots), 4):
                if slots[i] != _NONE:
                    yield (group_id, topic, i // 4)

    @classmethod
    def of(cls, samples: Mapping[Key, PreviousSample]) -> "PreviousSamples":
        """The compact form of a mapping of previous samples."""
        kept = cls()
        by_topic: dict[tuple[str, str], list[tuple[int, PreviousSample]]] = {}
        for (group_id, topic, partition), sample in samples.items():
            by_topic.setdefault((group_id, topic), []).append((partition, sample))
        for (group_id, topic), items in by_topic.items():
            slots = kept.slots(group_id, topic, max(p for p, _ in items) + 1)
            for p, s in items:
                kept.put(slots, p, epoch_us(s.timestamp), s.committed_offset, s.log_end_offset, s.time_lag_ms)
        return kept


def previous_samples(conn: "psycopg.Connection[Any]", services: dict[str, str], now: dt.datetime) -> PreviousSamples:
    """The newest stored sample of each partition of the given groups (group id -> service name).

    Read through (service_name, timestamp) over the last hour: the history's primary key leads
    with the time so that the collector's inserts append, so there is no per-partition index.
    Kept as it is read, (group, topic) by (group, topic), rather than as a list of rows first.
    """
    kept = PreviousSamples()
    if not services:
        return kept
    with conn.cursor() as cur:
        rows = cur.stream(  # a few thousand rows at a time: never the whole result in libpq's memory
            """
            SELECT DISTINCT ON (h.consumer_group_id, h.topic_name, h.partition)
                   h.consumer_group_id, h.topic_name, h.partition, h."timestamp", h.committed_offset, h.log_end_offset, h.time_lag_ms
              FROM public.consumer_lag_history AS h
             WHERE h.service_name = ANY(%(services)s) AND h.consumer_group_id = ANY(%(groups)s)
               AND h."timestamp" > %(since)s AND h."timestamp" <= %(now)s
             ORDER BY h.consumer_group_id, h.topic_name, h.partition, h."timestamp" DESC
            """,
            {
                "services": sorted(set(services.values())),
                "groups": sorted(services),
                "since": now - PREVIOUS_SAMPLE_HORIZON,
                "now": now,
            },
            size=5000,
        )
        # ordered by group, topic, partition: each (group, topic)'s partitions arrive together, in order
        current: tuple[str, str] | None = None
        run: list[tuple[int, int, int | None, int, int | None]] = []

        def keep() -> None:
            if current is not None and run:
                slots = kept.slots(current[0], current[1], max(r[0] for r in run) + 1)
                for partition, at_us, committed, log_end, time_lag in run:
                    kept.put(slots, partition, at_us, committed, log_end, time_lag)

        for group_id, topic, partition, at, committed, log_end, time_lag in rows:
            if current is None or current[1] != topic or current[0] != group_id:
                keep()
                current, run = (group_id, topic), []
            run.append((partition, epoch_us(at), committed, log_end, time_lag))
        keep()
    return kept
