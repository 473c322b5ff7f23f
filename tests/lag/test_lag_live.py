"""`lag show`, `lag status`, `alerts` against the real broker and a database of this module's own."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import psycopg
import pytest

from support import Cli, commit, create_topic, own_database, produce, unique
from loomctl.lag.collector import Collector
from loomctl.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def lag_db(database_factory) -> Iterator[str]:
    """A migrated database of this module's own, so every configured group in it is one of ours."""
    with own_database(database_factory, "loomlag") as url:
        yield url


@pytest.fixture(scope="module")
def cli(lag_db, services) -> Cli:
    return Cli(lag_db, services.bootstrap_servers)


def configure(cli: Cli, service: str, group: str) -> None:
    result = cli("config", "set", service, "--create", "--group", group)
    assert result.exit_code == 0, result.output


def test_a_group_that_consumed_part_of_a_topic_shows_the_exact_lag(cli, services) -> None:
    bootstrap = services.bootstrap_servers
    topic, group, service = unique("orders"), unique("g-orders"), unique("orders-writer")
    create_topic(bootstrap, topic, 3)
    produce(bootstrap, topic, {0: 30, 1: 20, 2: 10})
    commit(bootstrap, group, topic, {0: 12, 1: 20})  # partition 2: never committed
    configure(cli, service, group)

    rows = cli.json("lag", "show", service)
    by_partition = {r["partition"]: r for r in rows}
    assert {p: (r["committed_offset"], r["log_end_offset"], r["lag"]) for p, r in by_partition.items()} == {
        0: (12, 30, 18),
        1: (20, 20, 0),
        2: (None, 10, None),  # unknown, never 0
    }
    assert all(r["service_name"] == service and r["managed"] and r["consumer_group_id"] == group for r in rows)
    assert by_partition[1]["status"] == "OK" and by_partition[1]["time_lag_ms"] == 0
    assert by_partition[2]["status"] == "ERR"

    [summary] = cli.json("lag", "show", service, "--by", "service")
    assert (summary["name"], summary["total_lag"], summary["partitions_unknown"], summary["group_state"]) == (service, 18, 1, "Empty")
    [per_topic] = cli.json("lag", "show", service, "--by", "topic")
    assert (per_topic["name"], per_topic["partitions"], per_topic["total_lag"]) == (topic, 3, 18)


def test_all_groups_marks_the_groups_no_config_owns(cli, services) -> None:
    bootstrap = services.bootstrap_servers
    topic, group = unique("stray"), unique("g-stray")
    create_topic(bootstrap, topic, 1)
    produce(bootstrap, topic, {0: 5})
    commit(bootstrap, group, topic, {0: 2})
    rows = [r for r in cli.json("lag", "show", "--all-groups", "--by", "partition") if r["consumer_group_id"] == group]
    assert [(r["managed"], r["service_name"], r["lag"]) for r in rows] == [(False, None, 3)]


def test_a_member_that_never_committed_shows_unknown_with_its_owner(cli, services) -> None:
    from confluent_kafka import Consumer

    bootstrap = services.bootstrap_servers
    topic, group = unique("fresh"), unique("g-fresh")
    create_topic(bootstrap, topic, 2)
    produce(bootstrap, topic, {0: 4, 1: 4})
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "client.id": "fresh-worker",
                         "enable.auto.commit": False, "auto.offset.reset": "latest"})
    try:
        consumer.subscribe([topic])
        deadline = dt.datetime.now() + dt.timedelta(seconds=30)
        while not consumer.assignment() and dt.datetime.now() < deadline:
            consumer.poll(0.2)
        rows = cli.json("lag", "show", "--group", group)
    finally:
        consumer.close()
    assert sorted((r["partition"], r["committed_offset"], r["lag"], r["client_id"]) for r in rows) == [
        (0, None, None, "fresh-worker"),
        (1, None, None, "fresh-worker"),
    ]
    assert {r["group_state"] for r in rows} == {"Stable"}


def test_bad_input_is_one_line_and_non_zero(cli) -> None:
    result = cli("lag", "show", "no-such-service")
    assert result.exit_code == 3 and "no config for service no-such-service" in result.stderr
    assert cli("lag", "show", "--group", unique("ghost")).exit_code == 3
    result = cli("lag", "status", "--window", "soon")
    assert result.exit_code == 2 and "--window" in result.stderr
    assert cli("lag", "history", "no-such-service").exit_code == 3
    assert cli("lag", "show", "--watch", "1", "-o", "json").exit_code == 2


def test_kept_up_is_ok_stalled_is_stall_stopped_is_stop_and_alerts_fail(cli, lag_db, services) -> None:
    """Three consumers of one topic, judged from the samples a running collector stores every second."""
    import threading
    import time

    from confluent_kafka import Consumer, TopicPartition

    bootstrap = services.bootstrap_servers
    topic = unique("events")
    create_topic(bootstrap, topic, 2)
    names = {kind: (unique(f"{kind}-svc"), unique(f"g-{kind}")) for kind in ("kept", "stalled", "stopped")}
    for service, group in names.values():
        configure(cli, service, group)
    produce(bootstrap, topic, {0: 10, 1: 10})
    commit(bootstrap, names["stopped"][1], topic, {0: 5, 1: 5})  # then it goes away: the group is Empty

    # the stalled consumer commits for a few seconds (its pace), then stays in its group (a live member,
    # heartbeating) but never commits again
    stalled = Consumer({"bootstrap.servers": bootstrap, "group.id": names["stalled"][1], "enable.auto.commit": False})
    stalled.commit(offsets=[TopicPartition(topic, 0, 3), TopicPartition(topic, 1, 3)], asynchronous=False)
    stalled.subscribe([topic])
    expected = {names["kept"][0]: "OK", names["stalled"][0]: "STALL", names["stopped"][0]: "STOP"}
    collector = Collector(Settings(database_url=lag_db, bootstrap_servers=bootstrap), interval=dt.timedelta(seconds=1))
    stop = threading.Event()
    running = threading.Thread(target=collector.run, args=(stop,), daemon=True)
    verdict: dict[str, str] = {}
    try:
        deadline = time.monotonic() + 30
        while not stalled.assignment() and time.monotonic() < deadline:
            stalled.poll(0.2)
        running.start()
        log_end, started = 10, time.monotonic()
        deadline = started + 90
        while verdict != expected and time.monotonic() < deadline:
            produce(bootstrap, topic, {0: 10, 1: 10})
            log_end += 10
            commit(bootstrap, names["kept"][1], topic, {0: log_end, 1: log_end})  # keeps up
            if time.monotonic() - started < 5:
                stalled.commit(offsets=[TopicPartition(topic, p, log_end) for p in (0, 1)], asynchronous=False)
            stalled.poll(0.3)  # alive, heartbeating, not committing after its first seconds
            report = cli.json("lag", "status", *(s for s, _ in names.values()), "--window", "5m")
            verdict = {g["service_name"]: g["status"] for g in report["groups"]}
    finally:
        stop.set()
        running.join(30)
        collector.close()
    stalled.close()
    assert verdict == expected
    stopped = [p for p in report["partitions"] if p["service_name"] == names["stopped"][0]]
    assert sorted((p["partition"], p["status"]) for p in stopped) == [(0, "STOP"), (1, "STOP")]
    # the evidence: the same committed offset at the first and last sample, lag growing between
    assert all(p["first_committed_offset"] == p["last_committed_offset"] == 5 for p in stopped)
    assert all(p["last_lag"] > p["first_lag"] and p["samples"] >= 2 for p in stopped)

    alerts = cli.json("alerts")
    types = {(a["service_name"], a["alert_type"], a["severity"]) for a in alerts}
    assert (names["stopped"][0], "consumer_stopped", "critical") in types
    assert (names["stalled"][0], "consumer_stalled", "critical") in types
    assert not any(a["service_name"] == names["kept"][0] for a in alerts)
    assert cli("alerts", "--fail-on", "critical").exit_code == 1
    assert cli("alerts", "--fail-on", "warn").exit_code == 1


def test_alerts_fail_on_levels(database_factory, services) -> None:
    """--fail-on warn trips on a warning, --fail-on critical does not; no alert exits 0."""
    with own_database(database_factory, "loomalerts") as url:
        cli = Cli(url, services.bootstrap_servers)
        assert cli("alerts", "--fail-on", "warn").exit_code == 0
        configure(cli, "growing-svc", "g-growing")
        now = dt.datetime.now(dt.timezone.utc)
        with psycopg.connect(url, autocommit=True) as conn:
            for i, (offset, log_end) in enumerate([(100, 200), (150, 300), (200, 420), (250, 560)]):
                conn.execute(
                    "SELECT record_consumer_lag('growing-svc', 'topic-a', 0, %s, %s, 'g-growing', %s)",
                    (offset, log_end, now - dt.timedelta(seconds=40 - 10 * i)),
                )
        alerts = cli.json("alerts")
        assert [(a["alert_type"], a["severity"]) for a in alerts] == [("lag_growing", "warning")]
        assert cli("alerts", "--fail-on", "critical").exit_code == 0
        # over a window holding one sample at most, there is no trend to alert on
        assert cli.json("alerts", "--window", "15s") == []
        # and a single sample with lag is not judged: unknown, never OK
        assert cli.json("recommend", "growing-svc", "--window", "15s")[0]["status"] == "-"
        result = cli("alerts", "--fail-on", "warn")
        assert result.exit_code == 1 and "1 alert at warn or above" in result.stderr
        assert cli("alerts", "--fail-on", "sometimes").exit_code == 2


def test_a_verdict_kept_by_a_collector_that_stopped_is_not_shown_as_today(cli, lag_db, services) -> None:
    """A window whose newest sample is minutes old (its collector stopped) says OK; the group is Empty with lag
    now, so `lag show` gives what the snapshot proves (STOP), not that old OK; a fresh window's verdict is shown."""
    from loomctl.lag import LagSample, copy_samples

    bootstrap = services.bootstrap_servers
    topic, group, service = unique("late"), unique("g-late"), unique("late-svc")
    create_topic(bootstrap, topic, 1)
    produce(bootstrap, topic, {0: 10})
    commit(bootstrap, group, topic, {0: 5})
    configure(cli, service, group)

    def history(newest: dt.datetime) -> list[LagSample]:
        return [LagSample(group, topic, 0, newest - dt.timedelta(seconds=30 * i), service, 5 - i, 5 - i, 0, 0, 0,
                          "Stable", 1) for i in range(5)]

    with psycopg.connect(lag_db) as conn:
        now = conn.execute("SELECT now()").fetchone()[0]
        copy_samples(conn, history(now - dt.timedelta(minutes=8)))
    [row] = cli.json("lag", "show", service)
    assert (row["lag"], row["group_state"], row["status"]) == (5, "Empty", "STOP")
    with psycopg.connect(lag_db) as conn:
        conn.execute("DELETE FROM consumer_lag_history WHERE consumer_group_id = %s", [group])
        copy_samples(conn, history(conn.execute("SELECT now()").fetchone()[0]))
    [row] = cli.json("lag", "show", service)
    assert row["status"] == "OK"  # the window's own (lag 0 at its newest sample, a moment ago)
