"""The recommendation math as a pure function: counts, caps, reasons."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loomctl.errors import BadInput
from loomctl.partitions import ConsumerLoad, TopicLoad, describe_window, recommend_partitions
from loomctl.validation import parse_duration as parse_window


def load(current=4, rate=300.0, consumers=(ConsumerLoad("g-a", "svc-a", 2, 1000, 20_000.0),), **kw) -> TopicLoad:
    return TopicLoad("orders", current, rate, dt.timedelta(hours=1), tuple(consumers), **kw)


def test_consumers_needed_from_rate_headroom_and_the_slowest_consumer():
    slow = ConsumerLoad("g-a", "svc-a", 2, 1000, 20_000.0)  # 50 msg/s
    fast = ConsumerLoad("g-b", "svc-b", 3, 1000, 5_000.0)  # 200 msg/s
    rec = recommend_partitions(load(current=4, rate=300.0, consumers=(fast, slow)), headroom=1.5)
    assert (rec.consumers_needed, rec.recommended_partitions, rec.change) == (9, 9, True)
    assert rec.per_consumer_rate == 50.0 and rec.slowest_service == "svc-a" and rec.max_group_members == 3
    assert "produce rate 300 msg/s over 1h" in rec.reason
    assert "slowest consumer svc-a does 50.0 msg/s" in rec.reason
    assert "300 x 1.5 headroom / 50.0 = 9 consumer(s) needed" in rec.reason
    assert rec.reason.endswith("4 -> 9 partitions")


def test_exact_quotients_do_not_round_up_by_float_noise():
    rec = recommend_partitions(load(current=1, rate=1200.0, consumers=(ConsumerLoad("g", "s", 1, 100, 1000.0),)), headroom=1.5)
    assert rec.consumers_needed == 18


def test_never_lower_than_today():
    rec = recommend_partitions(load(current=12, rate=10.0), headroom=1.5)
    assert rec.recommended_partitions == 12 and not rec.change
    assert "12 partition(s) are enough" in rec.reason


def test_capped_by_the_maximum_but_never_below_today():
    rec = recommend_partitions(load(current=4, rate=10_000.0), max_partitions=16)
    assert (rec.recommended_partitions, rec.capped) == (16, True)
    assert "capped at the maximum of 16" in rec.reason
    over = recommend_partitions(load(current=20, rate=10_000.0), max_partitions=16)
    assert (over.recommended_partitions, over.change) == (20, False)
    assert "the maximum is 16" in over.reason


def test_more_members_than_partitions_asks_for_a_partition_each():
    rec = recommend_partitions(load(current=2, rate=1.0, consumers=(ConsumerLoad("g", "s", 6, 1000, 1000.0),)))
    assert rec.recommended_partitions == 6
    assert "largest consuming group has 6 member(s)" in rec.reason


def test_without_metrics_the_need_is_unknown_and_nothing_changes():
    rec = recommend_partitions(load(current=3, rate=500.0, consumers=(ConsumerLoad("g", "s", None),)))
    assert rec.consumers_needed is None and rec.recommended_partitions == 3 and not rec.change
    assert "no processing metrics" in rec.reason and "nothing to base an increase on" in rec.reason


def test_without_history_the_rate_is_unknown():
    rec = recommend_partitions(load(current=3, rate=None, consumers=()))
    assert rec.produce_rate is None and not rec.change
    assert "no produce rate" in rec.reason and "no consuming group" in rec.reason


def test_missing_topic_has_no_recommendation():
    rec = recommend_partitions(load(current=None, missing=True))
    assert rec.recommended_partitions is None and not rec.change and "does not exist" in rec.reason


@pytest.mark.parametrize(("headroom", "maximum"), [(0.5, 64), (1.5, 0)])
def test_bad_parameters_are_refused(headroom, maximum):
    with pytest.raises(BadInput):
        recommend_partitions(load(), headroom=headroom, max_partitions=maximum)


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("30m", 1800), ("1h", 3600), ("2d", 172800), ("45", 45)])
def test_window_parsing(text, seconds):
    assert parse_window(text).total_seconds() == seconds
    assert parse_window(describe_window(parse_window(text))) == parse_window(text)


@pytest.mark.parametrize("text", ["", "0h", "-1h", "1y", "h"])
def test_bad_windows_are_refused(text):
    with pytest.raises(BadInput):
        parse_window(text)


@given(
    current=st.integers(1, 500),
    rate=st.none() | st.floats(0, 1e7, allow_nan=False),
    members=st.none() | st.integers(0, 1000),
    processed=st.integers(0, 10**6),
    time_ms=st.floats(0, 1e7, allow_nan=False),
    headroom=st.floats(1, 10, allow_nan=False),
    maximum=st.integers(1, 1000),
)
def test_recommendation_never_decreases_and_respects_the_cap(current, rate, members, processed, time_ms, headroom, maximum):
    rec = recommend_partitions(load(current=current, rate=rate, consumers=(ConsumerLoad("g", "s", members, processed, time_ms),)),
                               headroom=headroom, max_partitions=maximum)
    assert rec.recommended_partitions >= current
    assert rec.recommended_partitions <= max(current, maximum)
    assert rec.change == (rec.recommended_partitions > current)
    assert rec.reason
