"""Pure lag arithmetic: unknown is not zero, clamping, retention loss, lag in time, roll-ups."""

from __future__ import annotations

import datetime as dt

import pytest

from loomctl import lag
from loomctl.errors import BadInput
from loomctl.kafka import ClusterSnapshot, Group, LogOffsets, Member
from loomctl.render import duration_text, sparkline
from loomctl.validation import parse_duration

NOW = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.timezone.utc)


def before(seconds_ago: float, committed: int | None, log_end: int, time_lag_ms: int | None) -> lag.PreviousSample:
    return lag.PreviousSample(NOW - dt.timedelta(seconds=seconds_ago), committed, log_end, time_lag_ms)


def test_time_lag_interpolates_between_the_previous_commit_and_log_end() -> None:
    # 30 s ago: offset 100 was 60 s old (produced 90 s ago), the log ended at 200 (produced then).
    # Offset 150 lies halfway: produced 60 s ago.
    assert lag.carry_time_lag_ms(before(30, 100, 200, 60_000), NOW, 150, 300) == 60_000


def test_time_lag_of_a_record_produced_after_the_previous_sample() -> None:
    # the log grew 200 -> 300 over the last 10 s: offset 250 was produced 5 s ago
    assert lag.carry_time_lag_ms(before(10, 100, 200, 1_000), NOW, 250, 300) == 5_000


def test_time_lag_grows_while_the_offset_stands_still() -> None:
    assert lag.carry_time_lag_ms(before(30, 100, 200, 60_000), NOW, 100, 400) == 90_000


def test_time_lag_without_a_known_age_is_a_lower_bound_from_the_first_sample() -> None:
    # lagging when sampling began: counted as 0 old then, so at least 40 s now
    assert lag.carry_time_lag_ms(before(40, 100, 200, None), NOW, 100, 260) == 40_000


def test_time_lag_is_zero_when_caught_up_and_unknown_without_a_sample_or_commit() -> None:
    assert lag.carry_time_lag_ms(None, NOW, 300, 300) == 0
    assert lag.carry_time_lag_ms(None, NOW, 100, 300) is None
    assert lag.carry_time_lag_ms(before(10, 1, 5, 0), NOW, None, 300) is None
    assert lag.carry_time_lag_ms(before(10, None, 5, None), NOW, 3, 300) is None
    # a log end below the previous one: the topic was created again, the old sample says nothing
    assert lag.carry_time_lag_ms(before(10, 900, 1000, 5_000), NOW, 3, 10) is None


@pytest.mark.parametrize(
    ("committed", "lag_", "start", "end", "state", "expected"),
    [
        (100, 0, 0, 100, "Stable", "OK"),
        (None, None, 0, 0, "Stable", "OK"),  # an empty partition with no commit is not an error
        (None, None, 0, 10, "Stable", "ERR"),
        (10, 90, 0, 100, "Empty", "STOP"),
        (10, 90, 0, 100, "Stable", "-"),  # slow or stalled needs history
    ],
)
def test_single_snapshot_status(committed, lag_, start, end, state, expected) -> None:
    assert lag.live_status(committed, lag_, start, end, state) == expected


def test_worst_status_wins() -> None:
    assert lag.worst(["OK", "WARN", "OK"]) == "WARN"
    assert lag.worst(["OK", "STALL", "STOP"]) == "STOP"
    assert lag.worst([]) == "-"


def test_one_ranking_orders_statuses_groups_and_summaries() -> None:
    ranks = [lag.status_rank(s) for s in (lag.NO_DATA, *lag.STATUS_ORDER)]
    assert ranks == sorted(set(ranks))  # strictly rising: NO_DATA lowest, STOP highest
    assert lag.worst([lag.NO_DATA, lag.OK]) == lag.OK  # a partition's status is never NO_DATA
    snap = _snapshot()
    rows = lag.live_lag(snap, {}, ["g-idle", "g-orders"], now=NOW, stored_status={("g-orders", "orders", 0): "STALL"})
    assert [r.status for r in rows] == ["STALL", "OK", "ERR"]
    summaries = lag.summarize(rows, "service", snap=snap, group_ids=["g-idle", "g-orders"])
    assert [(s.name, s.status) for s in summaries] == [("g-orders", "STALL"), ("g-idle", "-")]  # worst first
    caught_up = {("g-orders", "orders", 0): "OK", ("g-orders", "orders", 2): "OK"}
    rows = lag.live_lag(snap, {}, ["g-orders"], now=NOW, stored_status=caught_up)
    summaries = lag.summarize(rows, "service", snap=snap, group_ids=["g-orders", "g-idle"])
    assert [(s.name, s.status) for s in summaries] == [("g-idle", "-"), ("g-orders", "OK")]  # unknown ranks above OK


def test_the_cli_offers_the_cores_by_values() -> None:
    from loomctl.cli.lag import By

    assert [b.value for b in By] == list(lag.BY)
    assert lag.default_by([], []) == "service" and lag.default_by(["svc"], []) == "partition"
    assert lag.default_by([], ["g"]) == "partition"


def test_the_lag_package_loads_without_sqlalchemy_or_the_collector() -> None:
    """`lag show` reads configs on a plain psycopg connection; the collector loads only for `lag collect`."""
    import subprocess
    import sys

    code = ("import sys, loomctl.lag, loomctl.cli.lag; "
            "print(sorted(m for m in ('sqlalchemy', 'multiprocessing', 'loomctl.lag.collector') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def _snapshot() -> ClusterSnapshot:
    snap = ClusterSnapshot()
    member = Member("m-1", "worker-1", "10.0.0.7", (("orders", 0), ("orders", 1)))
    snap.groups = {"g-orders": Group("g-orders", "Stable", (member,)), "g-idle": Group("g-idle", "Empty")}
    snap.committed = {"g-orders": {("orders", 0): 40, ("orders", 1): 100}, "g-idle": {}}
    snap.partition_counts = {"orders": 3}
    snap.offsets = {("orders", 0): LogOffsets(0, 100), ("orders", 1): LogOffsets(0, 100), ("orders", 2): LogOffsets(0, 7)}
    return snap


def test_live_rows_cover_every_partition_of_a_consumed_topic() -> None:
    rows = lag.live_lag(_snapshot(), {"g-orders": "orders-service"}, ["g-orders"], now=NOW)
    by_partition = {r.partition: r for r in rows}
    assert sorted(by_partition) == [0, 1, 2]
    assert by_partition[0].lag == 60 and by_partition[0].client_id == "worker-1" and by_partition[0].host == "10.0.0.7"
    assert by_partition[1].lag == 0 and by_partition[1].status == "OK"
    assert by_partition[2].committed_offset is None and by_partition[2].lag is None and by_partition[2].member_id is None
    assert all(r.service_name == "orders-service" and r.managed for r in rows)


def test_stored_status_wins_over_the_single_snapshot() -> None:
    rows = lag.live_lag(_snapshot(), {}, ["g-orders"], now=NOW, stored_status={("g-orders", "orders", 0): "STALL"})
    assert {r.partition: r.status for r in rows}[0] == "STALL"
    assert not rows[0].managed and rows[0].service_name is None


def test_summaries_keep_a_group_with_no_partitions() -> None:
    snap = _snapshot()
    rows = lag.live_lag(snap, {"g-orders": "orders-service"}, ["g-orders", "g-idle"], now=NOW)
    summaries = {s.consumer_group_id: s for s in lag.summarize(rows, "service", snap=snap, services={"g-orders": "orders-service"}, group_ids=["g-orders", "g-idle"])}
    assert summaries["g-orders"].name == "orders-service"
    assert summaries["g-orders"].total_lag == 60 and summaries["g-orders"].partitions_unknown == 1
    assert summaries["g-orders"].members == 1
    assert summaries["g-idle"].partitions == 0 and summaries["g-idle"].total_lag is None
    by_topic = lag.summarize(rows, "topic")
    assert [(s.name, s.partitions, s.total_lag) for s in by_topic] == [("orders", 3, 60)]


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("15m", 900), ("1h30m", 5400), ("7d", 604800), ("2", 2), ("500ms", 0.5)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "abc", "10x", "0s", "-5m", "1h 30m", "0.0000001s", "999999d", "9" * 400])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(BadInput):
        parse_duration(text, option="--since")


def test_sparkline_scales_from_zero_and_leaves_gaps() -> None:
    assert sparkline([0, 50, 100, None]) == "▁▅█ "
    assert sparkline([None, None]) == "  "
    assert duration_text(65_000) == "1m 05s" and duration_text(2_500) == "2.5s"
