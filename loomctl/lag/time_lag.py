"""Lag in time: when was the record at the committed offset produced?

Interpolated between stored samples, each carrying it forward from the one before, so it
survives restarts of the collector.
"""

from __future__ import annotations

import datetime as dt
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


def previous_samples(conn: "psycopg.Connection[Any]", services: dict[str, str], now: dt.datetime) -> dict[Key, PreviousSample]:
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
        {
            "services": sorted(set(services.values())),
            "groups": sorted(services),
            "since": now - PREVIOUS_SAMPLE_HORIZON,
            "now": now,
        },
    ).fetchall()
    return {(g, t, p): PreviousSample(ts, committed, log_end, time_lag) for g, t, p, ts, committed, log_end, time_lag in rows}
