"""`lag collect` as operators run it: a long-lived process that survives outages and never doubles a sample."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from support import clean_env, commit, create_topic, own_database, produce, unique, wait_for

pytestmark = pytest.mark.integration

PARTITIONS = 3


def start_collector(database_url: str, bootstrap: str, log: Path, interval: str = "1s") -> subprocess.Popen:
    env = clean_env()
    return subprocess.Popen(
        [sys.executable, "-m", "loomctl", "--database-url", database_url, "--bootstrap-servers", bootstrap,
         "lag", "collect", "--interval", interval, "--verbose"],
        stdout=subprocess.DEVNULL, stderr=log.open("w"), env=env,
    )


def rows(database_url: str) -> int:
    try:
        with psycopg.connect(database_url, connect_timeout=2) as conn:
            return conn.execute("SELECT count(*) FROM consumer_lag_history").fetchone()[0]
    except psycopg.OperationalError:
        return -1


def sample_sizes(database_url: str) -> dict[int, int]:
    """How many rows each sample instant has: a whole sample has one row per partition."""
    with psycopg.connect(database_url) as conn:
        found = conn.execute(
            "SELECT n, count(*) FROM (SELECT count(*) AS n FROM consumer_lag_history GROUP BY \"timestamp\") s GROUP BY n"
        ).fetchall()
    return dict(found)


def distinct_samples(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT count(DISTINCT \"timestamp\") FROM consumer_lag_history").fetchone()[0]


def stop_collector(process: subprocess.Popen, log: Path) -> str:
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    text = log.read_text()
    assert "Traceback" not in text, text
    return text


def setup_group(database_url: str, bootstrap: str) -> None:
    topic, group = unique("collected"), unique("g-collected")
    create_topic(bootstrap, topic, PARTITIONS)
    produce(bootstrap, topic, {p: 20 for p in range(PARTITIONS)})
    commit(bootstrap, group, topic, {p: 5 for p in range(PARTITIONS)})
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO pipeline_consumer_configs (service_name, consumer_group_id) VALUES (%s, %s)",
                     (unique("collected-svc"), group))


@pytest.fixture
def private_stack(tmp_path_factory) -> Iterator[Path]:
    """A PostgreSQL and a Kafka of this test's own, so they can be stopped and started again."""
    from loomctl import devstack

    state_dir = tmp_path_factory.mktemp("outage") / "stack"
    devstack.up(state_dir)
    try:
        yield state_dir
    finally:
        devstack.down(state_dir)


@pytest.mark.slow
def test_the_collector_survives_a_broker_and_a_database_restart(private_stack, tmp_path) -> None:
    from loomctl import devstack
    from loomctl.devstack import kafka, postgres

    info = devstack.status(private_stack)
    url, bootstrap = info.database_url, info.bootstrap_servers
    setup_group(url, bootstrap)
    log = tmp_path / "collector.log"
    collector = start_collector(url, bootstrap, log)
    try:
        wait_for("the first samples", lambda: rows(url) >= 2 * PARTITIONS)

        assert kafka.stop(info.kafka.pid, private_stack)
        wait_for("a warning about Kafka", lambda: "warning: Kafka" in log.read_text())
        before = rows(url)
        time.sleep(2)
        assert collector.poll() is None, log.read_text()
        assert rows(url) == before  # nothing written without the broker, and nothing half-written
        assert devstack.up(private_stack).bootstrap_servers == bootstrap  # the same address again
        wait_for("samples after the broker came back", lambda: rows(url) >= before + 2 * PARTITIONS)

        assert postgres.stop(info.postgres.pid, info.postgres.data_dir.parent)
        wait_for("a warning about PostgreSQL", lambda: "PostgreSQL" in log.read_text().split("warning: Kafka")[-1])
        assert collector.poll() is None, log.read_text()
        assert devstack.up(private_stack).database_url == url
        after_restart = rows(url)
        wait_for("samples after the database came back", lambda: rows(url) >= after_restart + 2 * PARTITIONS)
    finally:
        text = stop_collector(collector, log)
    assert "recovered after" in text
    assert set(sample_sizes(url)) == {PARTITIONS}, "every sample is whole: one row per partition"


def group_samples(database_url: str) -> dict[str, list[int]]:
    """Per group, how many rows each of its sample instants has (a whole sample: one row per partition)."""
    with psycopg.connect(database_url) as conn:
        found = conn.execute(
            "SELECT consumer_group_id, count(*) FROM consumer_lag_history GROUP BY consumer_group_id, \"timestamp\""
        ).fetchall()
    sizes: dict[str, list[int]] = {}
    for group, n in found:
        sizes.setdefault(group, []).append(n)
    return sizes


def test_two_collectors_share_the_groups_and_write_each_sample_once(database_factory, services, tmp_path) -> None:
    with own_database(database_factory, "loomcollect") as url:
        for _ in range(6):
            setup_group(url, services.bootstrap_servers)
        logs = [tmp_path / "first.log", tmp_path / "second.log"]
        first = start_collector(url, services.bootstrap_servers, logs[0], interval="0.5s")
        wait_for("the first collector to own every share", lambda: "samples 256 of 256 shares" in logs[0].read_text())
        second = start_collector(url, services.bootstrap_servers, logs[1], interval="0.5s")
        try:
            wait_for("the shares split between the two", lambda: "samples 128 of 256 shares of the groups (2 collector(s))" in logs[0].read_text()
                     and "samples 128 of 256 shares of the groups (2 collector(s))" in logs[1].read_text())
            split = rows(url)
            wait_for("a few samples of both", lambda: rows(url) >= split + 6 * 6 * PARTITIONS)
            first_log = stop_collector(first, logs[0])  # one goes away: the other takes its share over
            wait_for("the second to own every share", lambda: "samples 256 of 256 shares of the groups (1 collector(s))" in logs[1].read_text())
            taken_over = rows(url)
            wait_for("samples of every group from the second", lambda: rows(url) >= taken_over + 2 * 6 * PARTITIONS)
        finally:
            if first.poll() is None:
                first_log = stop_collector(first, logs[0])
            second_log = stop_collector(second, logs[1])
        # every row in the table is one a collector reported writing (none twice, none half), and every sample whole
        reported = sum(int(line.rsplit("wrote ", 1)[1].split()[0]) for text in (first_log, second_log)
                       for line in text.splitlines() if " wrote " in line or line.startswith("wrote "))
        assert rows(url) == reported
        sizes = group_samples(url)
        assert len(sizes) == 6 and all(set(n) == {PARTITIONS} for n in sizes.values()), sizes


def test_a_cycle_removes_samples_past_the_retention(database_factory, services) -> None:
    import datetime as dt

    from loomctl.lag.collector import Collector
    from loomctl.settings import Settings

    with own_database(database_factory, "loomretain") as url:
        setup_group(url, services.bootstrap_servers)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SELECT ensure_lag_history_partitions(12, 1)")
            for days in (10, 9, 1):
                conn.execute(
                    "SELECT record_consumer_lag('old-svc', 'old-topic', 0, 1, 2, 'g-old', now() - make_interval(days => %s))",
                    (days,),
                )
        collector = Collector(Settings(database_url=url, bootstrap_servers=services.bootstrap_servers),
                              interval=dt.timedelta(seconds=1), retention=dt.timedelta(days=7))
        try:
            result = collector.cycle()
        finally:
            collector.close()
        assert result.written == PARTITIONS
        assert result.retention_dropped >= 2  # the days of the 10- and 9-day-old samples, whole
        with psycopg.connect(url) as conn:
            kept = conn.execute("SELECT count(*) FROM consumer_lag_history WHERE service_name = 'old-svc'").fetchone()[0]
        assert kept == 1


def test_once_while_other_collectors_hold_every_share_is_exit_4_and_writes_nothing(database_factory, services) -> None:
    from loomctl.lag.shares import MEMBER_NAMESPACE, SHARD_NAMESPACE, SHARDS

    with own_database(database_factory, "loomonce") as url:
        setup_group(url, services.bootstrap_servers)
        env = clean_env(LOOM_DATABASE_URL=url, LOOM_KAFKA_BOOTSTRAP_SERVERS=services.bootstrap_servers)
        command = [sys.executable, "-m", "loomctl", "lag", "collect", "--once"]
        with psycopg.connect(url, autocommit=True) as holder:  # every share, as a running collector holds them
            holder.execute("SELECT pg_advisory_lock(%s, pg_backend_pid())", (MEMBER_NAMESPACE,))
            holder.execute("SELECT pg_advisory_lock(%s, s) FROM generate_series(0, %s) AS s", (SHARD_NAMESPACE, SHARDS - 1))
            held = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
            assert held.returncode == 4, held.stderr
            assert held.stderr.strip().splitlines()[-1] == (
                "error: other collectors hold the shares of every configured group: this one sampled nothing"
            )
            assert rows(url) == 0
        free = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert free.returncode == 0 and "sampled 1 cycle" in free.stderr, free.stderr
        assert rows(url) == PARTITIONS


def test_a_crash_of_the_collector_leaves_the_stack_of_every_thread(database_factory, services, tmp_path) -> None:
    """A C-library crash in the collector's own process (SIGSEGV, as librdkafka's would be) is not silent."""
    with own_database(database_factory, "loomcrash") as url:
        setup_group(url, services.bootstrap_servers)
        log = tmp_path / "collector.log"
        process = start_collector(url, services.bootstrap_servers, log)
        try:
            wait_for("the collector to write", lambda: "wrote" in log.read_text())
            process.send_signal(signal.SIGSEGV)
            assert process.wait(timeout=30) == -signal.SIGSEGV
        finally:
            if process.poll() is None:
                process.kill()
        text = log.read_text()
        assert "Fatal Python error: Segmentation fault" in text
        assert "Current thread 0x" in text and "most recent call first" in text
        assert "loomctl/lag/collector.py" in text  # where it was: in the collector's loop
