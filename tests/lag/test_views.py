"""The monitoring views and lag_partition_status over synthetic lag history, in a database of their own.

Every group below has the samples of one kind of consumer over the last 13.5 minutes (one every
30 s), written through the collector's path (loomctl.lag.copy_samples) or record_consumer_lag;
the tests assert the status with its evidence per partition and per group, what the monitor
view computes from the samples and the metrics, the alerts, and the history per minute.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
from psycopg.rows import dict_row
from support import own_database, runner, suffix

from loomctl.db import migrations
from loomctl.lag import (
    NO_DATA, STORED_STATUSES, LagSample, copy_samples, status_rank, status_report, worst,
)

pytestmark = pytest.mark.integration

SAMPLES = 28  # i = 0 (oldest, 13.5 minutes ago) .. 27 (newest); the window is 15 minutes
SUFFIX = suffix(6)


def name(kind: str) -> str:
    return f"{kind}-{SUFFIX}"


def ok_lag(i: int) -> int:
    """A consumer that keeps up: lag between 2 and 7, up and down, never 0."""
    return 2 + i % 6


@dataclass
class World:
    url: str
    base: dt.datetime
    samples: list[LagSample]

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(self.url, row_factory=dict_row)


def sample(kind: str, partition: int, at: dt.datetime, committed: int | None, log_end: int, *,
           state: str | None = "Stable", members: int | None = 2, time_lag_ms: int | None = None,
           service: str | None = None) -> LagSample:
    lag = None if committed is None else max(log_end - committed, 0)
    return LagSample(
        consumer_group_id=f"{service or name(kind)}-group", topic_name=f"topic.{kind}.{SUFFIX}", partition=partition,
        timestamp=at, service_name=service or name(kind), committed_offset=committed, log_end_offset=log_end,
        log_start_offset=0, lag=lag, time_lag_ms=time_lag_ms, group_state=state, member_count=members,
    )


def history(base: dt.datetime) -> list[LagSample]:
    rows: list[LagSample] = []
    for i in range(SAMPLES):
        at = base - dt.timedelta(seconds=30 * (SAMPLES - 1 - i))
        leo = 1000 + 100 * i
        # kept up: committed offsets move, lag goes up and down
        for p in (0, 1):
            rows.append(sample("ok", p, at, leo - ok_lag(i), leo, time_lag_ms=ok_lag(i) * 10))
        # slow: lag never decreases (with equal neighbours, as noisy samples have) on partition 0
        slow = 100 + 50 * (i // 2)
        rows.append(sample("slow", 0, at, leo - slow, leo, time_lag_ms=slow * 10))
        rows.append(sample("slow", 1, at, leo - ok_lag(i), leo, time_lag_ms=ok_lag(i) * 10))
        # stuck with members: committed offset 5000 while data keeps coming
        rows.append(sample("stuck", 0, at, 5000, 5100 + 10 * i, members=3))
        rows.append(sample("stuck", 1, at, leo - ok_lag(i), leo))
        # stopped: the group is Empty and the offset stays
        rows.append(sample("stopped", 0, at, 7000, 7020 + 20 * i, state="Empty", members=0))
        # rewound at i = 20: committed goes back by 5000 and stays behind
        rewound_leo = 10000 + 100 * i
        rows.append(sample("rewound", 0, at, rewound_leo - (10 if i < 20 else 5000), rewound_leo, time_lag_ms=100))
        # reset below its first sample, then consumed past it again: no longer behind its old high
        rows.append(sample("rewound", 1, at, 5000 if i == 0 else 1000 + 200 * i, 8000 + 100 * i, time_lag_ms=100))
        # never committed: data but no offset (lag unknown); an empty partition beside it
        rows.append(sample("never", 0, at, None, 500))
        rows.append(sample("never", 1, at, None, 0))
        # quiet topic: nothing produced, nothing to consume, offset still
        rows.append(sample("quiet", 0, at, 300, 300, time_lag_ms=0))
        # bursty: 100 messages every fifth sample (the last one too), consumed before the next sample
        bursts = (i + 3) // 5
        burst_leo = 1000 + 100 * bursts
        burst_lag = 100 if i % 5 == 2 else 0
        rows.append(sample("bursty", 0, at, burst_leo - burst_lag, burst_leo, time_lag_ms=burst_lag * 10))
        # caught up (lag 0) until i = 20, committing at every sample, then no commit while lag grows:
        # an earlier zero lag does not hide a consumer that stopped making progress
        relapse = 0 if i < 20 else 100 * (i - 19)
        rows.append(sample("relapsed", 0, at, leo - relapse, leo, time_lag_ms=relapse * 10))
        # slow, committing per batch: lag saws up and down, but each trough is higher
        sawtooth = 10 + 40 * (i // 4) + 30 * (i % 4)
        rows.append(sample("sawtooth", 0, at, leo - sawtooth, leo, time_lag_ms=sawtooth))
        # sampled since the middle of the window only, falling behind: two thirds are enough
        if i >= 14:
            rows.append(sample("latecomer", 0, at, leo - 50 * (i - 13), leo, time_lag_ms=10))
        # services that lag fine but batch slowly, fail messages, or are the guide's example
        for kind in ("slowbatch", "failing"):
            rows.append(sample(kind, 0, at, leo - ok_lag(i), leo, time_lag_ms=10))
        for p in (0, 1):
            rows.append(sample("speech", p, at, leo - ok_lag(i) * (p + 1), leo, time_lag_ms=10, service="speech-processor"))
    # a group sampled twice only: too few samples to call it stuck
    for i in range(2):
        rows.append(sample("newcomer", 0, base - dt.timedelta(seconds=30 * i), 50, 90, members=1, time_lag_ms=1000))
    # a group sampled once, with lag: nothing to compare, so unknown rather than OK
    rows.append(sample("firstlook", 0, base, 50, 90, members=1))
    return rows


CONFIGS = {
    # kind: (max_poll_records, max_poll_interval_ms)
    "ok": (500, 300000), "slow": (100, 300000), "stuck": (500, 300000), "stopped": (500, 300000),
    "rewound": (500, 300000), "never": (500, 300000), "quiet": (500, 300000), "bursty": (500, 300000),
    "sawtooth": (500, 300000), "latecomer": (500, 300000), "relapsed": (500, 300000),
    "firstlook": (500, 300000),
    "slowbatch": (500, 300000), "failing": (500, 300000), "newcomer": (500, 300000),
    "reported": (500, 300000), "idle": (500, 300000),
}

# kind: (batch_size, messages_failed, processing_time_ms), ten batches in the last hour
METRICS = {
    "ok": (50, 0, 100.0), "slow": (100, 0, 1000.0), "slowbatch": (50, 0, 260000.0),
    "failing": (100, 10, 100.0), "speech": (20, 0, 400.0),
}


@pytest.fixture(scope="module")
def world(database_factory) -> Iterator[World]:
    with own_database(database_factory, "loomviews") as url:
        with psycopg.connect(url) as conn:
            base = conn.execute("SELECT date_trunc('second', now())").fetchone()[0]
            for kind, (records, interval_ms) in CONFIGS.items():
                conn.execute(
                    "INSERT INTO pipeline_consumer_configs (service_name, consumer_group_id, max_poll_records, max_poll_interval_ms)"
                    " VALUES (%s, %s, %s, %s)", (name(kind), f"{name(kind)}-group", records, interval_ms))
            conn.execute("INSERT INTO pipeline_consumer_configs (service_name, consumer_group_id) VALUES"
                         " ('speech-processor', 'speech-processor-group')")
            rows = history(base)
            copy_samples(conn, rows)
            # a service that reports its own lag (no group membership in the samples), stuck at 400
            for i in range(SAMPLES):
                at = base - dt.timedelta(seconds=30 * (SAMPLES - 1 - i))
                conn.execute("SELECT record_consumer_lag(%s, %s, 0, 400, %s, NULL, %s)",
                             (name("reported"), f"topic.reported.{SUFFIX}", 410 + 3 * i, at))
            for kind, (batch, failed, ms) in METRICS.items():
                service = "speech-processor" if kind == "speech" else name(kind)
                for m in range(10):
                    conn.execute("SELECT record_processing_metrics(%s, %s, %s, %s, %s, NULL, NULL, %s)",
                                 (service, batch, batch - failed, ms, failed, base - dt.timedelta(minutes=5 * m + 1)))
        yield World(url, base, rows)


def partition_status(world: World) -> dict[tuple[str, int], dict]:
    with world.connect() as conn:
        rows = conn.execute("SELECT * FROM lag_partition_status('15 minutes')").fetchall()
    return {(r["consumer_group_id"].removesuffix("-group"), r["partition"]): r for r in rows}


def monitor(world: World) -> dict[str, dict]:
    with world.connect() as conn:
        return {r["service_name"]: r for r in conn.execute("SELECT * FROM v_consumer_performance_monitor")}


def test_partition_status_follows_the_rules_with_the_evidence(world):
    status = partition_status(world)
    expected = {
        ("ok", 0): "OK", ("ok", 1): "OK", ("slow", 0): "WARN", ("slow", 1): "OK",
        ("stuck", 0): "STALL", ("stuck", 1): "OK", ("stopped", 0): "STOP", ("rewound", 0): "REWIND", ("rewound", 1): "OK",
        ("never", 0): "ERR", ("never", 1): "OK", ("quiet", 0): "OK", ("bursty", 0): "OK",
        ("newcomer", 0): "OK", ("reported", 0): "STALL", ("sawtooth", 0): "WARN", ("latecomer", 0): "WARN",
        ("relapsed", 0): "STALL", ("firstlook", 0): "-",
    }
    assert {key: status[(name(kind), p)]["status"] for key in expected for kind, p in [key]} == expected

    stuck = status[(name("stuck"), 0)]
    assert (stuck["samples"], stuck["first_committed_offset"], stuck["last_committed_offset"]) == (SAMPLES, 5000, 5000)
    assert (stuck["first_lag"], stuck["last_lag"]) == (100, 370)
    assert stuck["first_timestamp"] == world.base - dt.timedelta(seconds=30 * (SAMPLES - 1))
    assert stuck["last_timestamp"] == world.base
    assert stuck["evidence"].startswith("no commit for 810 s while lag grew to 370 (committed offset 5000)")
    assert "its pace unknown, past max_poll_interval_ms (300 s)" in stuck["evidence"]
    assert "3 members (Stable)" in stuck["evidence"]

    assert "no members (Empty)" in status[(name("stopped"), 0)]["evidence"]
    assert status[(name("stopped"), 0)]["group_state"] == "Empty"
    assert "went back: 7700 at " in status[(name("rewound"), 0)]["evidence"]
    assert "below the 11890 it had reached" in status[(name("rewound"), 0)]["evidence"]
    assert status[(name("rewound"), 1)]["evidence"].startswith("committed offset 5000 -> 6400, lag 3000 -> 4300")
    assert "lag unknown: no committed offset while the partition holds 500 messages" in status[(name("never"), 0)]["evidence"]
    assert status[(name("never"), 0)]["last_lag"] is None
    assert status[(name("never"), 1)]["evidence"] == "no committed offset and no data: nothing to consume"
    assert status[(name("quiet"), 0)]["evidence"].startswith("lag 0 at ")
    assert status[(name("bursty"), 0)]["evidence"].startswith("committed offset 1000 -> 1500, lag 0 -> 100")
    relapsed = status[(name("relapsed"), 0)]["evidence"]
    assert relapsed.startswith("no commit for 240 s while lag grew to 800 (committed offset 2900); it committed every 30 s")
    assert "lowest lag of each third of the window rose 100 -> 300 -> 550" in status[(name("slow"), 0)]["evidence"]
    assert "rose 10 -> 120 -> 210" in status[(name("sawtooth"), 0)]["evidence"]
    assert status[(name("newcomer"), 0)]["evidence"].startswith("committed offset 50 -> 50, lag 40 -> 40")
    assert status[(name("firstlook"), 0)]["evidence"].startswith("one sample, at ")
    assert "membership unknown" in status[(name("reported"), 0)]["evidence"]


def test_time_lag_is_the_stored_one_or_lag_over_the_produce_rate(world):
    status = partition_status(world)
    assert status[(name("ok"), 0)]["time_lag_ms"] == ok_lag(SAMPLES - 1) * 10  # the collector's
    # no stored figure: 370 behind while producers wrote 270 messages in 810 s
    assert status[(name("stuck"), 0)]["time_lag_ms"] == 370 * 810_000 // 270
    assert status[(name("never"), 0)]["time_lag_ms"] is None


def test_a_filter_on_the_group_reaches_the_history_scan(world):
    """The function is inlined: the caller's WHERE is applied where the rows are read, not after."""
    with world.connect() as conn:
        plan = conn.execute(
            "EXPLAIN (FORMAT JSON) SELECT * FROM lag_partition_status('15 minutes') WHERE consumer_group_id = %s",
            [f"{name('stuck')}-group"]).fetchone()["QUERY PLAN"]
        rows = conn.execute("SELECT * FROM lag_partition_status('15 minutes') WHERE consumer_group_id = %s",
                            [f"{name('stuck')}-group"]).fetchall()
    assert {r["partition"] for r in rows} == {0, 1}

    def nodes(node: dict) -> Iterator[dict]:
        yield node
        for child in node.get("Plans", []):
            yield from nodes(child)

    conditions = [(n.get("Relation Name") or "", n.get(key, ""))
                  for n in nodes(plan[0]["Plan"]) for key in ("Index Cond", "Filter", "Recheck Cond")]
    with_group = [(relation, text) for relation, text in conditions if "consumer_group_id" in text]
    # both branches: the history (computed now) and the copy a collector keeps (lag_status_cache_rows)
    assert any(relation.startswith("consumer_lag_history") for relation, _ in with_group), with_group
    # and the owning service's max_poll_interval_ms, looked up by the group
    assert all(relation.startswith(("consumer_lag_history", "lag_status_cache_rows", "pipeline_consumer_configs"))
               for relation, _ in with_group), with_group


def test_monitor_rows_come_from_measured_lag_and_metrics(world):
    rows = monitor(world)
    assert {k: rows[name(k)]["status"] for k in CONFIGS} == {
        "ok": "OK", "slow": "WARN", "stuck": "STALL", "stopped": "STOP", "rewound": "REWIND", "never": "ERR",
        "quiet": "OK", "bursty": "OK", "slowbatch": "OK", "failing": "OK", "newcomer": "OK", "reported": "STALL", "relapsed": "STALL", "firstlook": "-",
        "sawtooth": "WARN", "latecomer": "WARN", "idle": "NO_DATA",
    }
    last = ok_lag(SAMPLES - 1)
    ok = rows[name("ok")]
    assert (ok["partitions"], ok["total_lag"], float(ok["avg_lag"]), ok["time_lag_ms"]) == (2, 2 * last, last, last * 10)
    assert float(ok["batch_efficiency"]) == 0.1  # avg batch 50 of max_poll_records 500
    assert ok["recommendation"] is None and ok["flagged_partitions"] is None

    slow = rows[name("slow")]
    assert slow["lag_change"] == (750 + last) - (100 + ok_lag(0))
    assert float(slow["batch_efficiency"]) == 1.0
    assert slow["flagged_partitions"] == f"WARN topic.slow.{SUFFIX}[0]"
    assert f"batches are full (avg 100.0 of max_poll_records 100) while lag grows by {slow['lag_change']}" in slow["recommendation"]

    stuck = rows[name("stuck")]
    assert (stuck["total_lag"], stuck["time_lag_ms"], stuck["member_count"]) == (370 + last, 1_110_000, 3)
    assert "lag is 375 (1110 s behind) with 3 members: the consumer is stuck" in stuck["recommendation"]
    assert stuck["evidence"].startswith(f"topic.stuck.{SUFFIX}[0]: no commit for 810 s while lag grew to 370")
    assert "the consumer is stopped" in rows[name("stopped")]["recommendation"]
    assert "1 of 2 partitions hold messages but have no committed offset" in rows[name("never")]["recommendation"]
    assert "below the 11890 it had reached" in rows[name("rewound")]["recommendation"]

    slowbatch = rows[name("slowbatch")]
    assert float(slowbatch["poll_interval_usage"]) == round(260000 / 300000, 3)
    assert float(slowbatch["ms_per_message"]) == 5200.0
    assert "lower max_poll_records to 28" in slowbatch["recommendation"]  # half of 300000 ms at 5200 ms a message
    assert "slowest batch took 260000.0 ms" in slowbatch["recommendation"]

    failing = rows[name("failing")]
    assert float(failing["error_rate"]) == 0.1
    assert failing["recommendation"].startswith("10.0% of messages failed in the last hour (100 of 1000)")
    assert rows[name("idle")]["recommendation"] is None


def test_alerts_carry_severities_and_numbers(world):
    with world.connect() as conn:
        rows = conn.execute("SELECT * FROM v_consumer_alerts").fetchall()
    alerts: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for r in rows:
        alerts[r["service_name"]].add((r["alert_type"], r["severity"]))
    assert alerts[name("stuck")] == {("consumer_stalled", "critical"), ("high_time_lag", "critical")}
    assert alerts[name("stopped")] == {("consumer_stopped", "critical"), ("high_time_lag", "critical")}
    assert alerts[name("slow")] == {("lag_growing", "warning")}
    assert alerts[name("rewound")] == {("offset_rewind", "warning")}
    assert alerts[name("relapsed")] == {("consumer_stalled", "critical")}
    assert alerts[name("never")] == {("no_committed_offset", "warning")}
    assert alerts[name("slowbatch")] == {("rebalance_risk", "critical")}
    assert alerts[name("failing")] == {("high_error_rate", "warning")}
    for quiet in ("ok", "quiet", "bursty", "newcomer", "idle", "firstlook"):
        assert name(quiet) not in alerts, alerts[name(quiet)]
    stalled = next(r for r in rows if r["service_name"] == name("stuck") and r["alert_type"] == "consumer_stalled")
    assert (stalled["value"], stalled["threshold"], stalled["status"]) == (375, 0, "STALL")
    assert "lag is 375 with 3 members" in stalled["message"]


def test_history_has_one_row_per_minute_with_lag_and_processing(world):
    expected: dict[dt.datetime, int] = defaultdict(int)
    per_partition: dict[tuple[dt.datetime, int], int] = {}
    for s in world.samples:
        if s.service_name == "speech-processor":
            minute = s.timestamp.replace(second=0, microsecond=0)
            per_partition[(minute, s.partition)] = max(per_partition.get((minute, s.partition), 0), s.lag or 0)
    for (minute, _), lag in per_partition.items():
        expected[minute] += lag
    with world.connect() as conn:
        rows = conn.execute(
            "SELECT * FROM v_consumer_performance_history WHERE service_name = 'speech-processor'"
            " AND timestamp >= %s ORDER BY timestamp", [min(expected)]).fetchall()
    lag_rows = {r["timestamp"]: r["total_lag"] for r in rows if r["partitions"]}
    assert lag_rows == dict(expected)
    assert all(r["partitions"] == 2 for r in rows if r["partitions"])
    # one batch every 5 minutes, the last a minute ago: three of them since the oldest sample
    batch_minutes = [(world.base - dt.timedelta(minutes=5 * m + 1)).replace(second=0) for m in range(3)]
    batches = {r["timestamp"]: (r["batches"], r["messages_per_second"]) for r in rows if r["batches"]}
    assert batches == {minute: (1, 50.0) for minute in batch_minutes}  # 20 messages in 400 ms


GUIDE_MONITORING = [
    "SELECT * FROM v_consumer_performance_monitor\nORDER BY avg_lag DESC",
    "SELECT * FROM v_consumer_alerts",
    "SELECT * FROM v_consumer_performance_history\nWHERE service_name = 'speech-processor'\n"
    "AND timestamp > NOW() - INTERVAL '1 hour'",
    "SELECT * FROM v_consumer_alerts\nWHERE service_name = 'speech-processor'",
    "SELECT * FROM v_consumer_performance_monitor\nWHERE service_name = 'speech-processor'",
]


def test_one_status_ranking_in_python_and_in_the_monitor_view(world):
    """The monitor view's own expressions, run on the database, rank the statuses as loomctl.lag does:
    the group's status is the worst partition's (lag.worst), flagged partitions come worst first. The
    monitor takes each group's status from lag_group_status, which serves lag_group_status_live's
    (computed now, or the copy refresh_lag_partition_status kept of it): the ranking is written there."""
    with world.connect() as conn:
        view = conn.execute("SELECT pg_get_viewdef('public.v_consumer_performance_monitor'::regclass) AS d").fetchone()["d"]
        assert "lag_group_status(" in view and "array_position" not in view
        definition = conn.execute("SELECT pg_get_functiondef('public.lag_group_status_live(interval)'::regprocedure) AS d"
                                  ).fetchone()["d"]
        [worst_of_group] = re.findall(
            r"(\(ARRAY\[[^\]]*\]\)\[\s*max\(array_position\(ARRAY\[[^\]]*\], st\.status\)\)\]) AS status", definition)
        [ranking] = set(re.findall(r"array_position\(ARRAY\[[^\]]*\], st\.status\)", definition))  # one array throughout
        for pair in itertools.product(STORED_STATUSES, repeat=2):
            picked = conn.execute(f"SELECT {worst_of_group} AS worst FROM unnest(%s::text[]) AS st(status)",
                                  [list(pair)]).fetchone()["worst"]
            assert picked == worst(pair), pair
        ordered = conn.execute(f"SELECT array_agg(st.status ORDER BY {ranking} DESC) AS o FROM unnest(%s::text[]) AS st(status)",
                               [list(STORED_STATUSES)]).fetchone()["o"]
    assert ordered == sorted(STORED_STATUSES, key=status_rank, reverse=True)


def test_status_report_and_the_monitor_view_agree_on_every_group(world):
    """The same verdict per service from Python (lag.status_report) and SQL (the monitor view), worst first."""
    with world.connect() as conn:
        report = status_report(conn, dt.timedelta(minutes=15))
    by_service = {g.service_name: g.status for g in report.groups}
    assert by_service == {service: row["status"] for service, row in monitor(world).items()}
    assert by_service[name("idle")] == NO_DATA
    ranks = [status_rank(g.status) for g in report.groups]
    assert ranks == sorted(ranks, reverse=True)
    assert {p["status"] for p in report.partitions} == set(STORED_STATUSES)  # the world has each one
    for group in report.groups:
        statuses = [p["status"] for p in report.partitions if p["consumer_group_id"] == group.consumer_group_id]
        assert group.status == (worst(statuses) if statuses else NO_DATA)


@pytest.mark.parametrize("statement", GUIDE_MONITORING, ids=lambda s: " ".join(s.split())[:50])
def test_the_guides_monitoring_queries_return_rows(world, statement):
    with world.connect() as conn:
        rows = conn.execute(statement).fetchall()
    if "v_consumer_alerts" in statement and "speech-processor" in statement:
        assert rows == []  # the guide's example service is healthy here
    elif "v_consumer_alerts" in statement:
        alerts = {(r["service_name"], r["alert_type"], r["severity"]) for r in rows}
        assert {(name("stuck"), "consumer_stalled", "critical"), (name("stopped"), "consumer_stopped", "critical"),
                (name("slow"), "lag_growing", "warning"), (name("failing"), "high_error_rate", "warning")} <= alerts
        assert not {r["service_name"] for r in rows} & {name(k) for k in ("ok", "quiet", "bursty", "newcomer", "idle")}
    elif "v_consumer_performance_history" in statement:
        assert {r["service_name"] for r in rows} == {"speech-processor"}
        assert sum(r["batches"] or 0 for r in rows) == 10  # every batch of the hour
        assert {r["partitions"] for r in rows} == {0, 2}  # minutes with batches only, and with both partitions
    elif "WHERE service_name = 'speech-processor'" in statement:
        [row] = rows
        assert (row["service_name"], row["status"], row["partitions"]) == ("speech-processor", "OK", 2)
        assert row["total_lag"] == ok_lag(SAMPLES - 1) * (1 + 2)
    else:
        assert {r["service_name"] for r in rows} == {name(k) for k in CONFIGS} | {"speech-processor"}
        lags = [r["avg_lag"] for r in rows]
        known = [v for v in lags if v is not None]
        assert lags == [None] * (len(lags) - len(known)) + sorted(known, reverse=True)  # DESC puts NULLs first


def test_the_loaders_recommendations_query_reads_the_monitor(world):
    from loomctl.loader import _RECOMMENDATIONS_SQL

    with world.connect() as conn:
        rows = conn.execute(_RECOMMENDATIONS_SQL).fetchall()
    services = {r["service_name"] for r in rows}
    assert {name("slow"), name("stuck"), name("slowbatch"), name("failing")} <= services
    assert name("ok") not in services


def test_db_check_is_clean_at_head(world):
    from loomctl.cli import app

    result = runner().invoke(app, ["--database-url", world.url, "db", "check", "-o", "json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["clean"] is True


def test_v1_rows_survive_the_upgrade_and_the_downgrade(empty_database_url):
    url = empty_database_url
    migrations.upgrade(url, "0001")
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO pipeline_consumer_configs (service_name, consumer_group_id) VALUES ('v1-svc', 'v1-group')")
        for i in range(10):
            conn.execute("SELECT record_consumer_lag('v1-svc', 'v1.topic', 0, 100, %s, 'v1-group', now() - %s * interval '1 minute')",
                         (110 + i, 9 - i))
    migrations.upgrade(url)
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT status FROM v_consumer_performance_monitor").fetchall() == [("STALL",)]
    migrations.downgrade(url, "0001")
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM v_consumer_performance_monitor").fetchone() == (1,)
        assert conn.execute("SELECT count(*) FROM lag_partition_status()").fetchone() == (1,)
    migrations.upgrade(url)
    assert migrations.check(url).clean
