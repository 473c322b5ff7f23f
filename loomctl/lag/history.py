"""Lag over time from the stored samples, in time buckets (`lag history`), and the bucket limit
that `lag history` and `metrics show` share."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loomctl.lag.configured import configured_groups

if TYPE_CHECKING:
    import psycopg

MAX_BUCKETS = 2000
"""More buckets than this are refused: no chart shows them, and each is a row to build."""
BUCKET_ORIGIN = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)


@dataclass(frozen=True)
class TimeBuckets:
    """A time range back from now, cut into buckets of one width."""

    since: dt.timedelta
    bucket: dt.timedelta


def time_buckets(since: str, bucket: str) -> TimeBuckets:
    """``--since`` and ``--bucket`` as durations; BadInput when they make more than MAX_BUCKETS buckets."""
    from loomctl.errors import BadInput
    from loomctl.validation import parse_duration

    span, width = parse_duration(since, option="--since"), parse_duration(bucket, option="--bucket")
    if span / width > MAX_BUCKETS:
        raise BadInput(f"--since {since} / --bucket {bucket} makes more than {MAX_BUCKETS} buckets: choose a wider bucket")
    return TimeBuckets(span, width)


@dataclass(frozen=True)
class LagBucket:
    """One time bucket of one topic: each partition's highest lag in it, summed (None: no sample)."""

    timestamp: dt.datetime
    lag: int | None
    max_time_lag_ms: int | None
    partitions: int
    partitions_unknown: int


@dataclass(frozen=True)
class TopicLagHistory:
    """One topic of a service over the range: every bucket, and the lowest, highest and last lag."""

    service_name: str
    topic_name: str
    since: dt.datetime
    bucket_seconds: float
    buckets_with_data: int
    min_lag: int | None
    max_lag: int | None
    last_lag: int | None
    buckets: list[LagBucket]


def history(
    conn: "psycopg.Connection[Any]", service: str, *, since: dt.timedelta, bucket: dt.timedelta, now: dt.datetime | None = None
) -> list[TopicLagHistory]:
    """`lag history`: per topic, the service's total lag per time bucket (each partition's highest
    sample in the bucket, summed), with every bucket of the range present (None where no sample)."""
    configured_groups(conn, [service])  # NotFound for a service with no config
    now = now or dt.datetime.now(dt.timezone.utc)
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
        {"bucket": bucket, "origin": BUCKET_ORIGIN, "service": service, "start": start, "now": now},
    ).fetchall()
    first = BUCKET_ORIGIN + ((start - BUCKET_ORIGIN) // bucket) * bucket
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
        # stamped with the slot, in UTC, whatever the session's time zone
        buckets = [LagBucket(at, *by_slot[at]) if at in by_slot else LagBucket(at, None, None, 0, 0) for at in slots]
        known = [b.lag for b in buckets if b.lag is not None]
        result.append(
            TopicLagHistory(
                service_name=service,
                topic_name=topic,
                since=start,
                bucket_seconds=bucket.total_seconds(),
                buckets_with_data=len(known),
                min_lag=min(known, default=None),
                max_lag=max(known, default=None),
                last_lag=known[-1] if known else None,
                buckets=buckets,
            )
        )
    return result
