"""One partition of one group at one instant: the row of ``consumer_lag_history``, its lag, the COPY.

No committed offset is *unknown* (None), never 0; a negative lag is clamped to 0; a committed
offset below the log start offset means records were lost to retention before the group read them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    import psycopg

HISTORY_COLUMNS = (
    "consumer_group_id", "topic_name", "partition", "timestamp", "service_name", "committed_offset",
    "log_end_offset", "log_start_offset", "lag", "time_lag_ms", "group_state", "member_count", "group_type",
)
_HISTORY_TYPES = ("text", "text", "int4", "timestamptz", "text", "int8", "int8", "int8", "int8", "int8", "text", "int4", "text")


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
