"""The status rules of one partition over the stored window: the Python twin of ``lag_partition_status_live``.

The SQL is what every surface reads (`lag status`, `lag show`, the views, alerts, the exporter and the Burrow
API); this is the same rules written again over a partition's samples in time order, so the two can be held
equal row by row (tests/lag/test_verdict_rules.py), and so a reader can follow them in Python. The comment at
the top of loomctl/db/sql/lag_partition_status_live.2.sql explains each rule and why.

Each partition is judged against its own pace: it has been *waiting* since the later of its last commit seen
(a sample whose committed offset differs from the one before) and its last sample with lag 0; its *normal*
wait is the time its recent commits lie apart, never less than the sampling interval. Nobody left to commit
and a wait past normal is STOP; members present and three normal waits (the service's max.poll.interval.ms
where the pace is unknown) is STALL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from loomctl.lag.verdicts import ERR, OK, REWIND, STALL, STOP, UNKNOWN, WARN

STALL_AFTER_NORMAL_WAITS = 3
DEFAULT_MAX_POLL_MS = 300_000
"""max.poll.interval.ms's default, for a group without a config."""
NOBODY = ("Empty", "Dead")
_MS = dt.timedelta(milliseconds=1)


@dataclass(frozen=True)
class WindowSample:
    """What the rules read of one stored sample (a row of ``consumer_lag_history``)."""

    timestamp: dt.datetime
    committed_offset: int | None
    log_end_offset: int
    lag: int | None
    log_start_offset: int | None = None
    member_count: int | None = None
    group_state: str | None = None


@dataclass(frozen=True)
class Pace:
    """How long a partition has waited for a commit, against how long it usually waits, in whole milliseconds
    (floored, as the SQL computes them, so the two compare equal)."""

    waiting_ms: int
    normal_ms: int | None
    """The usual time between its commits, at least the sampling interval (None with a single sample)."""
    stall_ms: int | None
    commit_ms: int | None
    """The time its commits seen in the window lie apart, on average (None below two)."""
    lag_grew: bool
    sample_ms: int | None = None
    """The sampling interval (None with a single sample)."""


def pace(samples: Sequence[WindowSample], max_poll_ms: int | None = None) -> Pace:
    """The wait of the last sample of ``samples`` (one partition's, oldest first) and its thresholds."""
    first_at, last = samples[0].timestamp, samples[-1]
    commits = [
        s
        for before, s in zip(samples, samples[1:], strict=False)
        if s.committed_offset is not None and s.committed_offset != before.committed_offset
    ]
    zero = [s for s in samples if s.lag == 0]
    marks = [s for s in (commits[-1] if commits else None, zero[-1] if zero else None) if s is not None]
    began = max(marks, key=lambda s: s.timestamp) if marks else None
    waiting = (last.timestamp - (began.timestamp if began else first_at)) // _MS
    sample_ms = (last.timestamp - first_at) // _MS // (len(samples) - 1) if len(samples) >= 2 else None
    commit_ms = (commits[-1].timestamp - commits[0].timestamp) // _MS // (len(commits) - 1) if len(commits) >= 2 else None
    normal = max((v for v in (commit_ms, sample_ms) if v is not None), default=None)
    if sample_ms is None:
        stall = None
    elif commit_ms is not None:
        stall = STALL_AFTER_NORMAL_WAITS * max(commit_ms, sample_ms)
    else:
        stall = max(STALL_AFTER_NORMAL_WAITS * sample_ms, DEFAULT_MAX_POLL_MS if max_poll_ms is None else max_poll_ms)
    grew = began is None or last.log_end_offset > began.log_end_offset
    return Pace(waiting, normal, stall, commit_ms, grew, sample_ms)


def _lowest(lags: list[int | None]) -> int | None:
    known = [lag for lag in lags if lag is not None]
    return min(known) if known else None


def judge(
    samples: Sequence[WindowSample],
    *,
    second_third: dt.datetime,
    last_third: dt.datetime,
    max_poll_ms: int | None = None,
) -> str:
    """The status of one partition from its samples in the window, oldest first.

    ``second_third`` and ``last_third`` split the sampled part of the window (of every partition) in thirds;
    ``max_poll_ms`` is the owning service's max.poll.interval.ms (its default when None).
    """
    last = samples[-1]
    if last.committed_offset is None:
        return ERR if last.log_end_offset > (last.log_start_offset or 0) else OK
    if last.lag == 0:
        return OK
    if len(samples) < 2:
        return UNKNOWN
    waited = pace(samples, max_poll_ms)
    nobody = last.member_count == 0 or last.group_state in NOBODY
    assert waited.normal_ms is not None and waited.stall_ms is not None and waited.sample_ms is not None
    if waited.lag_grew and nobody and waited.waiting_ms >= waited.normal_ms:
        return STOP
    # the last commit fell in the sampling interval before the wait began: it counts toward the stall
    if waited.lag_grew and not nobody and waited.waiting_ms + waited.sample_ms >= waited.stall_ms:
        return STALL
    if last.committed_offset < max(s.committed_offset for s in samples if s.committed_offset is not None):
        return REWIND
    thirds = [
        _lowest([s.lag for s in samples if s.timestamp < second_third]),
        _lowest([s.lag for s in samples if second_third <= s.timestamp < last_third]),
        _lowest([s.lag for s in samples if s.timestamp >= last_third]),
    ]
    known = [t for t in thirds if t is not None]
    first_log_end = next((s.log_end_offset for s in samples if s.committed_offset is not None), samples[0].log_end_offset)
    # grew by more than half of what is produced between two samples (compared in integers: exactly)
    if len(known) >= 2 and all(a < b for a, b in zip(known, known[1:], strict=False)):
        if 2 * max(len(samples) - 1, 1) * (known[-1] - known[0]) > last.log_end_offset - first_log_end:
            return WARN
    return OK
