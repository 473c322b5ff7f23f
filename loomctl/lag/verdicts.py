"""The status vocabulary and its ranking: what `lag show`, `lag status`, the views and the exporter call a
partition and a group. Apart from :mod:`loomctl.lag.status` (the stored window's verdicts, objectives and
reports) so that `lag show` ranks its rows without loading those."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

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

STATUS_WINDOW = dt.timedelta(minutes=15)
"""The window of stored samples every verdict is judged over unless one is named: `lag show`, `lag status`, `lag slo`,
`alerts`, `recommend`, the collector's statuses (the SQL functions' own default is the same 15 minutes)."""
STATUS_WINDOW_TEXT = "15m"
""":data:`STATUS_WINDOW` as the CLI's --window takes it (tests/lag/test_verdict_rules.py holds the two equal)."""

STALE_AFTER_INTERVALS = 3
"""A verdict whose newest sample is older than this many sampling intervals is stale: the collector that kept it
stopped, and what it said is not served as today's (the exporter's figures go stale after as many intervals)."""

STATUS_ORDER = (OK, UNKNOWN, WARN, REWIND, ERR, STALL, STOP)
"""Least to most severe; a group's status is its worst partition's."""
STORED_STATUSES = STATUS_ORDER
"""What ``lag_partition_status`` gives a partition, in the same order ("-" for a single sample with lag)."""
_RANK = {status: rank for rank, status in enumerate((NO_DATA, *STATUS_ORDER))}


def status_rank(status: str) -> int:
    """How severe ``status`` is: higher is worse; NO_DATA (and anything outside the vocabulary) ranks lowest."""
    return _RANK.get(status, 0)


def worst(statuses: Iterable[str]) -> str:
    """The most severe of the partition statuses, "-" when there are none."""
    ranked = [s for s in statuses if s in STATUS_ORDER]
    return max(ranked, key=status_rank) if ranked else UNKNOWN
