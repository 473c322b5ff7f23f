"""Statuses: the one vocabulary and its ranking, and the stored window's verdict per partition and group.

The rules (OK, WARN, STALL, STOP, REWIND, ERR per partition) are SQL, in ``lag_partition_status``,
so psql users and loomctl judge alike; ``v_consumer_performance_monitor`` picks a group's worst
partition with the same ranking as :func:`worst` (tests/lag/test_views.py holds the two together).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loomctl.lag.configured import configured_groups
from loomctl.lag.samples import max_known, sum_known

if TYPE_CHECKING:
    import psycopg

OK = "OK"
WARN = "WARN"
REWIND = "REWIND"
ERR = "ERR"
STALL = "STALL"
STOP = "STOP"
UNKNOWN = "-"
"""Lag without history behind it: one look at the cluster cannot tell slow from stalled."""
NO_DATA = "NO_DATA"
"""A configured service with no sample in the window."""

STATUS_ORDER = (OK, UNKNOWN, WARN, REWIND, ERR, STALL, STOP)
"""Least to most severe; a group's status is its worst partition's."""
STORED_STATUSES = tuple(s for s in STATUS_ORDER if s != UNKNOWN)
"""What ``lag_partition_status`` gives a partition, in the same order."""
_RANK = {status: rank for rank, status in enumerate((NO_DATA, *STATUS_ORDER))}


def status_rank(status: str) -> int:
    """How severe ``status`` is: higher is worse; NO_DATA (and anything outside the vocabulary) ranks lowest."""
    return _RANK.get(status, 0)


def worst(statuses: Iterable[str]) -> str:
    """The most severe of the partition statuses, "-" when there are none."""
    ranked = [s for s in statuses if s in STATUS_ORDER]
    return max(ranked, key=status_rank) if ranked else UNKNOWN


@dataclass(frozen=True)
class GroupStatus:
    """One configured service's verdict over the window: its worst partition's status, with the totals."""

    service_name: str
    consumer_group_id: str
    status: str
    partitions: int
    partitions_by_status: dict[str, int]
    total_lag: int | None
    lag_change: int | None
    max_time_lag_ms: int | None
    member_count: int | None
    first_sample_at: dt.datetime | None
    last_sample_at: dt.datetime | None


@dataclass(frozen=True)
class StatusReport:
    """`lag status`: per group (worst first), and per partition the rows of ``lag_partition_status`` with the evidence."""

    groups: list[GroupStatus]
    partitions: list[dict[str, Any]]

    @property
    def flagged_partitions(self) -> list[dict[str, Any]]:
        """The partitions that are not OK."""
        return [p for p in self.partitions if p["status"] != OK]


def stored_status(conn: "psycopg.Connection[Any]", window: dt.timedelta, group_ids: Sequence[str]) -> list[dict[str, Any]]:
    """``lag_partition_status`` over ``window`` for ``group_ids``: per partition, status and evidence."""
    from psycopg.rows import dict_row

    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT * FROM public.lag_partition_status(%s) WHERE consumer_group_id = ANY(%s)"
            " ORDER BY service_name, consumer_group_id, topic_name, partition",
            (window, list(group_ids)),
        ).fetchall()


def _group_status(service: str, group_id: str, rows: Sequence[dict[str, Any]]) -> GroupStatus:
    statuses = [r["status"] for r in rows]
    total_lag = sum_known(r["last_lag"] for r in rows)
    return GroupStatus(
        service_name=service,
        consumer_group_id=group_id,
        status=worst(statuses) if rows else NO_DATA,
        partitions=len(rows),
        partitions_by_status={s: statuses.count(s) for s in STATUS_ORDER if s in statuses},
        total_lag=total_lag,
        lag_change=(total_lag or 0) - (sum_known(r["first_lag"] for r in rows) or 0) if rows else None,
        max_time_lag_ms=max_known(r["time_lag_ms"] for r in rows),
        member_count=max_known(r["member_count"] for r in rows),
        first_sample_at=min((r["first_timestamp"] for r in rows), default=None),
        last_sample_at=max((r["last_timestamp"] for r in rows), default=None),
    )


def status_report(conn: "psycopg.Connection[Any]", window: dt.timedelta, services: Sequence[str] = ()) -> StatusReport:
    """`lag status`: the window's verdict per group (worst partition) and per partition with evidence.

    A configured service with no sample in the window is reported as NO_DATA, so a collector
    that stopped, or a group that was never sampled, shows instead of disappearing.
    """
    groups = configured_groups(conn, services)
    partitions = stored_status(conn, window, list(groups))
    by_group: dict[str, list[dict[str, Any]]] = {}
    for row in partitions:
        by_group.setdefault(row["consumer_group_id"], []).append(row)
    summary = [
        _group_status(service, group_id, by_group.get(group_id, []))
        for group_id, service in sorted(groups.items(), key=lambda item: item[1])
    ]
    summary.sort(key=lambda g: (-status_rank(g.status), g.service_name))
    return StatusReport(groups=summary, partitions=partitions)
