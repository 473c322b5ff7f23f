"""The status rules: the SQL (lag_partition_status_live) against its Python twin (loomctl.lag.rules) row by row,
over hundreds of random partition histories, and the rules' promises on the consumers they are about."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from collections.abc import Iterator

import psycopg
import pytest
from support import own_database

from loomctl.lag import copy_samples
from loomctl.lag.rules import WindowSample, judge, pace
from loomctl.lag.samples import LagSample
from loomctl.lag.verdicts import OK, REWIND, STALL, STOP, STORED_STATUSES

SPAN_S = 840
"""Every history lies within the last SPAN_S seconds of the 15-minute window; a sentinel spans all of it, so the
window's thirds fall on whole seconds (280 and 560 s after the first sample)."""
BASE = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def at(second: int) -> dt.datetime:
    return BASE + dt.timedelta(seconds=second)


def thirds(base: dt.datetime = BASE) -> dict[str, dt.datetime]:
    return {"second_third": base + dt.timedelta(seconds=SPAN_S // 3),
            "last_third": base + dt.timedelta(seconds=2 * SPAN_S // 3)}


def history(rng: random.Random) -> list[WindowSample]:
    """A random partition: sampled every few seconds, its producer steady, bursty or quiet, its consumer
    keeping up, slow, stopping, rewinding or never committing, its members coming and going."""
    every = rng.choice((2, 5, 5, 10, 30))
    count = rng.randint(1, min(40, SPAN_S // every + 1))
    start = rng.randint(0, SPAN_S - every * (count - 1))
    produce = rng.choice((0, 1, 5, 20, 100))
    log_end = rng.randint(0, 1000)
    committed: int | None = None if rng.random() < 0.2 else log_end - rng.randint(0, 50)
    behaviour = rng.choice(("keeps_up", "slow", "stops", "stops", "leaves", "rewinds", "commits_rarely"))
    change_at = rng.randint(0, count)
    pace_samples = rng.choice((1, 1, 2, 3, 5))  # it commits every so many samples while it runs
    members, state = rng.choice(((2, "Stable"), (1, "Stable"), (None, None)))
    samples = []
    for i in range(count):
        log_end += rng.choice((0, produce, produce, 2 * produce)) if rng.random() < 0.8 else 0
        after = i >= change_at
        if committed is None and rng.random() < 0.15:
            committed = max(log_end - rng.randint(0, 20), 0)
        elif committed is not None:
            if not after or behaviour == "keeps_up":
                if i % pace_samples == 0:
                    committed = max(committed, log_end - rng.choice((0, 0, 1, produce)))
            elif behaviour == "slow":
                committed += rng.randint(0, max(produce // 2, 1))
            elif behaviour == "rewinds" and i == change_at:
                committed = max(committed - rng.randint(1, 500), 0)
            elif behaviour == "rewinds":
                committed += rng.randint(0, 2 * produce + 1)
            elif behaviour == "commits_rarely" and i % (3 * pace_samples + 1) == 0:
                committed = log_end
            committed = min(committed, log_end)
        if after and behaviour == "leaves" and members is not None:
            members, state = 0, rng.choice(("Empty", "Dead", "Empty"))
        lag = None if committed is None else max(log_end - committed, 0)
        samples.append(WindowSample(at(start + i * every), committed, log_end, lag, 0, members, state))
    return samples


@pytest.fixture(scope="module")
def window_db(database_factory) -> Iterator[str]:
    with own_database(database_factory, "loomrules") as url:
        yield url


def test_the_sql_and_the_python_rules_agree_row_by_row(window_db):
    rng = random.Random(20261207)
    histories = {f"g{g}": [history(rng) for _ in range(rng.randint(1, 4))] for g in range(300)}
    max_poll = {g: rng.choice((None, 60_000, 300_000, 900_000)) for g in histories}
    with psycopg.connect(window_db) as conn:
        now = conn.execute("SELECT date_trunc('second', now())").fetchone()[0]
        shift = now - dt.timedelta(seconds=SPAN_S + 1) - BASE  # every sample inside the last 15 minutes
        for group, poll in max_poll.items():
            if poll is not None:
                conn.execute("INSERT INTO pipeline_consumer_configs (service_name, consumer_group_id,"
                             " max_poll_interval_ms) VALUES (%s, %s, %s)", (f"svc-{group}", group, poll))
        rows = [LagSample(group, "t", partition, s.timestamp + shift, f"svc-{group}", s.committed_offset, s.log_end_offset,
                          s.log_start_offset, s.lag, None, s.group_state, s.member_count)
                for group, partitions in histories.items() for partition, samples in enumerate(partitions)
                for s in samples]
        # the sentinel: the first and last sample of the window, so its thirds are known here
        rows += [LagSample("sentinel", "t", 0, at(second) + shift, "sentinel", 5, 5, 0, 0) for second in (0, SPAN_S)]
        copy_samples(conn, rows)
        stored = {(g, p): status for g, p, status in conn.execute(
            "SELECT consumer_group_id, partition, status FROM lag_partition_status_live('15 minutes')"
            " WHERE consumer_group_id <> 'sentinel'")}
    expected = {}
    for group, partitions in histories.items():
        for partition, samples in enumerate(partitions):
            shifted = [WindowSample(s.timestamp + shift, s.committed_offset, s.log_end_offset, s.lag, s.log_start_offset,
                                    s.member_count, s.group_state) for s in samples]
            expected[(group, partition)] = judge(shifted, **thirds(BASE + shift), max_poll_ms=max_poll[group])
    assert stored == expected
    # the histories reach every rule
    assert set(Counter(expected.values())) == set(STORED_STATUSES), Counter(expected.values())


def steady(seconds: int, *, every: int = 5, produce: int = 50, members: int = 1, state: str = "Stable",
           commit_every: int = 1, start: int = 0, log_end: int = 1000, behind: int = 3) -> list[WindowSample]:
    """A consumer that keeps up (``behind`` at its commits), committing every ``commit_every`` samples, for ``seconds``."""
    samples, committed = [], log_end
    for i in range(seconds // every + 1):
        log_end += produce
        if i % commit_every == 0:
            committed = log_end - behind
        samples.append(WindowSample(at(start + i * every), committed, log_end, log_end - committed, 0, members, state))
    return samples


def then(samples: list[WindowSample], seconds: int, *, every: int = 5, produce: int = 50, members: int = 1,
         state: str = "Stable", rewind_to: int | None = None, consume: int = 0) -> list[WindowSample]:
    """``samples`` followed by ``seconds`` more in which the consumer commits nothing new (or rewinds to
    ``rewind_to`` and then consumes ``consume`` a sample)."""
    last = samples[-1]
    out, log_end, committed = list(samples), last.log_end_offset, last.committed_offset or 0
    if rewind_to is not None:
        committed = rewind_to
    for i in range(1, seconds // every + 1):
        log_end += produce
        committed = min(committed + consume, log_end) if i > 1 or rewind_to is None else committed
        out.append(WindowSample(last.timestamp + dt.timedelta(seconds=i * every), committed, log_end,
                                log_end - committed, 0, members, state))
    return out


def verdict(samples: list[WindowSample], max_poll_ms: int | None = None) -> str:
    return judge(samples, **thirds(), max_poll_ms=max_poll_ms)


def test_a_consumer_that_caught_up_and_left_is_stop_one_commit_interval_later():
    caught_up = steady(600)  # ten minutes of a consumer committing at every sample, lag 3
    caught_up[-1] = WindowSample(caught_up[-1].timestamp, caught_up[-1].log_end_offset, caught_up[-1].log_end_offset, 0, 0, 1,
                                 "Stable")  # and lag 0 at its last commit
    gone = then(caught_up, 5, members=0, state="Empty")
    assert verdict(gone) == STOP
    assert pace(gone).waiting_ms == 5000 and pace(gone).normal_ms == 5000
    # one sample of no members with nothing produced since: nothing to consume, not stopped
    assert verdict(then(caught_up, 5, members=0, state="Empty", produce=0)) == OK


def test_a_member_that_stops_committing_is_stall_after_three_of_its_commit_intervals():
    running = steady(300, commit_every=2)  # commits every 10 s, sampled every 5 s
    # three commit intervals after its last commit, which fell in the sampling interval before the wait began
    assert [verdict(then(running, s)) for s in (10, 20, 25)] == [OK, OK, STALL]
    assert pace(then(running, 30)).normal_ms == 10_000


def test_a_slow_consumer_that_commits_every_few_minutes_is_not_stalled():
    slow = steady(840, every=30, produce=20, commit_every=6)  # a commit every 3 minutes
    assert verdict(slow) == OK
    assert verdict(then(slow, 150, every=30, produce=20)) == OK  # 5 minutes since its last: within 3 x 3
    assert verdict(then(slow, 540, every=30, produce=20)) == STALL  # 9 minutes and more
    # its pace unknown (a single commit seen): its max.poll.interval.ms decides
    once = then(steady(30, every=30, produce=20), 240, every=30, produce=20)
    assert (verdict(once, 600_000), verdict(once, 120_000)) == (OK, STALL)


def test_a_rewind_holds_until_the_consumer_reads_past_its_old_high():
    before = steady(300)
    high = before[-1].committed_offset
    assert high is not None
    rewound = then(before, 30, rewind_to=high - 400, consume=120)  # 400 back, then 120 a sample
    assert verdict(rewound[:-3]) == REWIND
    assert [s.committed_offset > high for s in rewound[-3:]] == [False, True, True]
    assert verdict(rewound[:-1]) == OK and verdict(rewound) == OK


def test_quiet_and_caught_up_partitions_are_never_flagged():
    quiet = steady(600, produce=0, behind=0)
    assert verdict(quiet) == OK
    assert verdict(then(quiet, 300, produce=0, members=0, state="Empty")) == OK  # gone, nothing to consume


def test_the_window_default_is_one_figure():
    from loomctl.lag.verdicts import STATUS_WINDOW, STATUS_WINDOW_TEXT
    from loomctl.validation import parse_duration

    assert parse_duration(STATUS_WINDOW_TEXT) == STATUS_WINDOW
