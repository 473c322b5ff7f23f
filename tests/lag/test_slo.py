"""The objective's arithmetic (loomctl.lag.slo) on synthetic window rows, with the exact values worked by hand.

Each row is what ``lag_partition_status`` gives a partition: 11 samples over 600 s (one a minute).
"""

from __future__ import annotations

import datetime as dt
import math

import pytest

from loomctl.lag import slo

T0 = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.timezone.utc)
WINDOW = 600.0


def row(first_leo: int, last_leo: int, first_committed: int | None, last_committed: int | None, *,
        time_lag_ms: int | None, samples: int = 11, seconds: int = 600) -> dict:
    last_lag = None if last_committed is None else max(last_leo - last_committed, 0)
    return {
        "samples": samples, "first_timestamp": T0, "last_timestamp": T0 + dt.timedelta(seconds=seconds),
        "first_log_end_offset": first_leo, "log_end_offset": last_leo,
        "first_committed_offset": first_committed, "last_committed_offset": last_committed,
        "last_lag": last_lag, "time_lag_ms": time_lag_ms,
    }


# 10 msg/s produced; the consumer keeps 7 behind (a batch in flight, well under the 600 written a minute)
STEADY = row(1000, 7000, 995, 6993, time_lag_ms=500)
# 10 msg/s produced, 15 consumed: gains 5 msg/s on a lag of 3,000 -> 600 s; 300 s behind in time
GAINING = row(10_000, 16_000, 4000, 13_000, time_lag_ms=300_000)
# 10 msg/s produced, 2 consumed: never catches up; falls 1 - 2/10 = 0.8 s behind every second
FALLING = row(0, 6000, 0, 1200, time_lag_ms=40_000)
# nothing produced, nothing to consume
IDLE = row(500, 500, 500, 500, time_lag_ms=0)
# nothing produced, 100 left unconsumed by a consumer that stopped: ages 1 s a second
IDLE_BEHIND = row(500, 500, 400, 400, time_lag_ms=50_000)
# data, never a commit: lag and lag in time unknown
NO_COMMITS = row(0, 6000, None, None, time_lag_ms=None)
# a consumer that stopped while 10 msg/s keep coming
STOPPED = row(0, 6000, 100, 100, time_lag_ms=700_000)


def test_steady_consumer_is_caught_up_and_meets_its_objective():
    p = slo.predict_partition(STEADY, 30)
    assert (p.produce_rate, p.consume_rate, p.lag, p.time_lag_seconds) == (10.0, 5998 / 600, 7, 0.5)
    assert p.caught_up and p.catch_up_seconds == 0.0 and not p.catch_up_never
    assert p.breach_in_seconds is None  # a batch in flight is no trend
    g = slo.predict_group([("t[0]", p)], 30, WINDOW)
    assert (g.slo_state, g.catch_up_seconds, g.breach_in_seconds, g.time_lag_seconds) == (slo.MET, 0.0, None, 0.5)


def test_gaining_consumer_catches_up_at_lag_over_the_net_rate():
    p = slo.predict_partition(GAINING, 600)
    assert (p.produce_rate, p.consume_rate, p.lag) == (10.0, 15.0, 3000)
    assert p.catch_up_seconds == 600.0 and not p.catch_up_never  # 3000 / (15 - 10)
    assert p.time_lag_growth == -0.5 and p.breach_in_seconds is None  # shrinking: no breach ahead
    assert slo.predict_group([("t[0]", p)], 600, WINDOW).slo_state == slo.MET
    # catching up takes longer than an objective of 500 s: at risk
    assert slo.predict_group([("t[0]", slo.predict_partition(GAINING, 500))], 500, WINDOW).slo_state == slo.AT_RISK
    # 300 s behind against 120: breached, still 600 s from caught up
    breached = slo.predict_group([("t[0]", slo.predict_partition(GAINING, 120))], 120, WINDOW)
    assert (breached.slo_state, breached.breach_in_seconds, breached.catch_up_seconds) == (slo.BREACHED, 0.0, 600.0)


def test_falling_behind_never_catches_up_and_breaches_at_the_trend():
    p = slo.predict_partition(FALLING, 60)
    assert (p.produce_rate, p.consume_rate, p.lag) == (10.0, 2.0, 4800)
    assert p.catch_up_seconds is None and p.catch_up_never
    assert p.time_lag_growth == pytest.approx(0.8)
    assert p.breach_in_seconds == pytest.approx(25.0)  # (60 - 40) / 0.8
    g = slo.predict_group([("t[0]", p)], 60, WINDOW)
    assert (g.slo_state, g.catch_up_never, g.slowest_partition) == (slo.AT_RISK, True, "t[0]")
    far = slo.predict_group([("t[0]", slo.predict_partition(FALLING, 1000))], 1000, WINDOW)
    assert far.breach_in_seconds == pytest.approx(1200.0)  # (1000 - 40) / 0.8: beyond the window,
    assert far.slo_state == slo.AT_RISK  # but it never catches up


def test_a_skewed_group_follows_its_slowest_partition_not_the_sum():
    # partition 0: lag 7,000 -> 1,000 over 600 s while 10 msg/s come in: consumes 20, gains 10, done in 100 s
    p0 = slo.predict_partition(row(20_000, 26_000, 13_000, 25_000, time_lag_ms=5000), 900)
    assert (p0.consume_rate, p0.lag, p0.catch_up_seconds) == (20.0, 1000, 100.0)
    p1 = slo.predict_partition(GAINING, 900)  # 600 s
    g = slo.predict_group([("t[0]", p0), ("t[1]", p1)], 900, WINDOW)
    assert (g.catch_up_seconds, g.slowest_partition) == (600.0, "t[1]")
    # the sum would say (1000 + 3000) / (10 + 5) = 266.7 s: the group is not caught up until t[1] is
    assert (p0.lag + p1.lag) / ((20 - 10) + (15 - 10)) == pytest.approx(266.67, abs=0.01)
    assert (g.time_lag_seconds, g.produce_rate, g.consume_rate) == (300.0, 20.0, 35.0)
    # one partition that never catches up makes the group never catch up
    g = slo.predict_group([("t[0]", p0), ("t[1]", slo.predict_partition(FALLING, 900))], 900, WINDOW)
    assert (g.catch_up_seconds, g.catch_up_never, g.slowest_partition, g.slo_state) == (None, True, "t[1]", slo.AT_RISK)


def test_an_idle_topic_is_caught_up_unless_a_stopped_consumer_left_records():
    p = slo.predict_partition(IDLE, 10)
    assert (p.produce_rate, p.consume_rate, p.catch_up_seconds, p.time_lag_growth, p.breach_in_seconds) == (
        0.0, 0.0, 0.0, 0.0, None)
    assert slo.predict_group([("t[0]", p)], 10, WINDOW).slo_state == slo.MET

    behind = slo.predict_partition(IDLE_BEHIND, 60)
    assert (behind.lag, behind.caught_up, behind.catch_up_never, behind.time_lag_growth) == (100, False, True, 1.0)
    assert behind.breach_in_seconds == 10.0  # (60 - 50) / 1
    assert slo.predict_group([("t[0]", behind)], 60, WINDOW).slo_state == slo.AT_RISK
    over = slo.predict_group([("t[0]", slo.predict_partition(IDLE_BEHIND, 30))], 30, WINDOW)
    assert (over.slo_state, over.breach_in_seconds) == (slo.BREACHED, 0.0)


def test_no_commits_is_no_data_and_no_objective_is_no_slo():
    p = slo.predict_partition(NO_COMMITS, 60)
    assert (p.produce_rate, p.consume_rate, p.lag, p.time_lag_seconds) == (10.0, None, None, None)
    assert (p.catch_up_seconds, p.catch_up_never, p.breach_in_seconds) == (None, False, None)  # unknown, not never
    assert slo.predict_group([("t[0]", p)], 60, WINDOW).slo_state == slo.NO_DATA
    assert slo.predict_group([], 60, WINDOW).slo_state == slo.NO_DATA
    g = slo.predict_group([("t[0]", slo.predict_partition(FALLING, None))], None, WINDOW)
    assert (g.slo_state, g.catch_up_never, g.breach_in_seconds) == (slo.NO_SLO, True, None)


def test_a_stopped_consumer_is_breached_and_never_catches_up():
    p = slo.predict_partition(STOPPED, 300)
    assert (p.consume_rate, p.lag, p.catch_up_never, p.time_lag_growth, p.breach_in_seconds) == (0.0, 5900, True, 1.0, 0.0)
    g = slo.predict_group([("t[0]", p)], 300, WINDOW)
    assert (g.slo_state, g.catch_up_seconds, g.catch_up_never, g.breach_in_seconds) == (slo.BREACHED, None, True, 0.0)


def test_one_sample_has_no_rates_and_judges_the_lag_in_time_only():
    single = row(1000, 1000, 400, 400, time_lag_ms=20_000, samples=1, seconds=0)
    p = slo.predict_partition(single, 10)
    assert (p.produce_rate, p.consume_rate, p.catch_up_seconds, p.catch_up_never) == (None, None, None, False)
    assert p.breach_in_seconds == 0.0
    assert slo.predict_group([("t[0]", p)], 10, WINDOW).slo_state == slo.BREACHED
    assert slo.predict_group([("t[0]", slo.predict_partition(single, 60))], 60, WINDOW).slo_state == slo.MET


def test_states_rank_worst_first():
    assert sorted(slo.SLO_STATES, key=slo.slo_rank, reverse=True) == [
        slo.BREACHED, slo.AT_RISK, slo.NO_DATA, slo.MET, slo.NO_SLO]


@pytest.mark.parametrize(("value", "expected"), [(2.25, 2.3), (-2.25, -2.3), (0.05, 0.1), (None, None), (600.0, 600.0)])
def test_rounding_is_half_away_from_zero_as_in_sql(value, expected):
    assert slo.rounded(value) == expected


def test_drain_plan_meets_the_objective_in_the_arithmetic_it_quotes():
    # worst lag 2,400 within 400 s: its consumer must gain 6 msg/s; at 16 msg/s a partition may take 10 of the 200
    plan = slo.drain_plan("audio", [2400, 1800, 2000], 200.0, 16.0, 400)
    assert (plan.current_partitions, plan.recommended_partitions, plan.meets_objective) == (3, 20, True)
    assert plan.drain_seconds == 400.0  # 2400 / (16 - 200 / 20)
    assert plan.max_partition_lag / (plan.per_consumer_rate - plan.produce_rate / plan.recommended_partitions) <= 400
    assert "200 / 10.0 = 20 partition(s)" in plan.reason and "3 -> 20 partitions" in plan.reason
    assert "2,400 / (16.0 - 200 / 20) = 400 s" in plan.reason


def test_drain_plan_never_lowers_a_topic_and_says_when_no_count_is_enough():
    assert slo.drain_plan("t", [10, 10], 10.0, 100.0, 60, current_partitions=12).recommended_partitions == 12
    # 8,000 at 16 msg/s is 500 s even with nothing produced: over 400 s whatever the count
    plan = slo.drain_plan("audio", [8000, 100, 100], 200.0, 16.0, 400)
    assert not plan.meets_objective
    assert plan.recommended_partitions == 13  # floor(200 / 16) + 1: the fewest at which it gains
    assert plan.drain_seconds == slo.rounded(8000 / (16 - 200 / 13))
    assert "no partition count meets the objective (8,000 / 16.0 = 500 s" in plan.reason
    unknown = slo.drain_plan("t", [100], 10.0, None, 60)
    assert unknown.recommended_partitions is None and "unknown" in unknown.reason
    assert math.isclose(slo.drain_plan("t", [0, 0], 0.0, 5.0, 60).drain_seconds, 0.0)
