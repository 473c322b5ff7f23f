"""partitions recommend with lag objectives: the count that drains a group's current lag in time, in the
arithmetic the reason quotes; never a decrease."""

from __future__ import annotations

import datetime as dt

from loomctl.partitions import ConsumerLoad, TopicLoad, recommend_partitions


def load(lags, *, current=3, objective=400, rate=200.0) -> TopicLoad:
    # 16,000 messages in 1,000 s of processing: 16 msg/s a member
    consumer = ConsumerLoad("g-speech", "speech", 3, 16_000, 1_000_000.0, objective, tuple(lags))
    return TopicLoad("audio", current, rate, dt.timedelta(hours=1), (consumer,))


def test_the_objective_asks_for_the_partitions_that_drain_the_lag_in_time():
    rec = recommend_partitions(load((2400, 1800, 2000)), headroom=1.5)
    # keeping up: ceil(200 x 1.5 / 16) = 19; the objective: the worst partition's 2,400 within 400 s means
    # gaining 6 msg/s, so each partition may take 16 - 6 = 10 of the 200 msg/s: 20 partitions
    assert (rec.consumers_needed, rec.slo_partitions_needed, rec.slo_service) == (19, 20, "speech")
    assert (rec.recommended_partitions, rec.change) == (20, True)
    assert "objective of speech: worst partition lag 2,400; within 400 s its consumer must gain 6.0 msg/s" in rec.reason
    assert "200 / 10.0 = 20 partition(s) and consumer(s)" in rec.reason
    assert rec.reason.endswith("3 -> 20 partitions")
    # the arithmetic it quotes meets the objective: the worst lag over what one consumer gains with 20 partitions
    assert 2400 / (rec.per_consumer_rate - rec.produce_rate / rec.recommended_partitions) <= 400


def test_an_objective_no_count_can_meet_says_so_and_keeps_the_throughput_count():
    rec = recommend_partitions(load((8000, 100, 100)), headroom=1.5)
    assert rec.slo_partitions_needed == 13  # the fewest at which the worst partition gains at all
    assert rec.recommended_partitions == 19  # the throughput count is higher
    assert "no partition count meets the objective (8,000 / 16.0 = 500 s even with nothing produced)" in rec.reason


def test_the_objective_never_lowers_a_topic_and_needs_a_lag_and_a_rate():
    rec = recommend_partitions(load((10, 10, 10), current=30), headroom=1.5)
    assert (rec.recommended_partitions, rec.change, rec.slo_partitions_needed) == (30, False, 30)
    assert "objective of" not in rec.reason  # drains in time with today's count: nothing to quote
    none = recommend_partitions(load((0, 0, 0)), headroom=1.5)
    assert none.slo_partitions_needed is None and "objective of" not in none.reason
    unmeasured = TopicLoad("audio", 3, 200.0, dt.timedelta(hours=1), (ConsumerLoad("g", "s", 3, 0, 0.0, 60, (900,)),))
    assert recommend_partitions(unmeasured).slo_partitions_needed is None
