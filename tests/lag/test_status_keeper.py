"""The collector keeps the window's statuses after its cycle, off the cycle's path (StatusKeeper): the
samples are committed before the refresh starts, a refresh runs once at a time, and one that fails or
outgrows its budget never costs a sample and is said once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import psycopg
import pytest
from support import own_database

pytestmark = pytest.mark.integration

WINDOW = dt.timedelta(minutes=15)
KEEPER = "loomctl lag collect (statuses)"


@pytest.fixture
def url(database_factory) -> Iterator[str]:
    with own_database(database_factory, "loomkeep") as url:
        yield url


def configured_group(url: str, services, name: str, partitions: dict[int, tuple[int, int]]) -> str:
    """A topic with ``partitions`` {partition: (records, committed)}, a group committed on it, its service config."""
    from support import admin_client, commit, create_topic, produce, unique

    topic = create_topic(admin_client(services.bootstrap_servers), unique(f"keep.{name}", 8), len(partitions))
    group = unique(f"keep-{name}")
    produce(services.bootstrap_servers, topic, {p: records for p, (records, _) in partitions.items()})
    commit(services.bootstrap_servers, group, topic, {p: committed for p, (_, committed) in partitions.items()})
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO pipeline_consumer_configs (service_name, consumer_group_id) VALUES (%s, %s)", [name, group])
    return group


def collector_for(url: str, services, interval_s: float, events: list[tuple[str, str]]):
    from loomctl.lag.collector import Collector
    from loomctl.settings import Settings

    return Collector(Settings(database_url=url, bootstrap_servers=services.bootstrap_servers), dt.timedelta(seconds=interval_s),
                     on_event=lambda level, text: events.append((level, text)))


def samples_of(url: str, group: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM consumer_lag_history WHERE consumer_group_id = %s", [group]).fetchone()[0]


def keeper_waiting(url: str) -> bool:
    """Whether the collector's refresh waits on the lock held by the test (polled: its thread starts it)."""
    import time

    deadline = time.monotonic() + 20
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            if conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND wait_event_type = 'Lock'",
                            [KEEPER]).fetchone()[0]:
                return True
            time.sleep(0.05)
    return False


def warnings(events: list[tuple[str, str]]) -> list[str]:
    return [text for level, text in events if level == "warning"]


def test_the_samples_are_committed_before_the_statuses_are_kept(url, services):
    """While the refresh runs (held on a lock here), the cycle has returned and its samples are visible; once it
    is done, the views serve the kept copy."""
    group = configured_group(url, services, "first", {0: (5, 2), 1: (5, 5)})
    events: list[tuple[str, str]] = []
    collector = collector_for(url, services, 30, events)
    with psycopg.connect(url) as holder:
        # the refresh takes this lock first (one refresh at a time): holding it holds the refresh
        holder.execute("SELECT pg_advisory_xact_lock(hashtext('loomctl.lag_status_cache'))")
        try:
            assert collector.cycle().written == 2
            assert samples_of(url, group) == 2  # committed, while the refresh waits
            assert keeper_waiting(url)
            with psycopg.connect(url, autocommit=True) as conn:
                assert conn.execute("SELECT count(*) FROM lag_status_cache").fetchone()[0] == 0
            holder.rollback()  # the refresh goes on
            took = collector.settle(30)
            assert took is not None
            with psycopg.connect(url, autocommit=True) as conn:
                assert conn.execute("SELECT computed_window, partitions FROM lag_status_cache").fetchall() == [(WINDOW, 2)]
                served = conn.execute(
                    "SELECT partition, status FROM lag_partition_status(%s) WHERE consumer_group_id = %s ORDER BY 1", [WINDOW, group]
                ).fetchall()
                computed = conn.execute(
                    "SELECT partition, status FROM lag_partition_status_live(%s) WHERE consumer_group_id = %s ORDER BY 1",
                    [WINDOW, group],
                ).fetchall()
            assert served == computed == [(0, "-"), (1, "OK")]  # a single sample with lag is not judged yet
        finally:
            collector.close()
    assert warnings(events) == []


def test_a_refresh_still_running_is_not_started_again(url, services):
    group = configured_group(url, services, "busy", {0: (5, 2)})
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE keeper_calls (at timestamptz DEFAULT clock_timestamp())")
        conn.execute(
            "CREATE OR REPLACE FUNCTION refresh_lag_partition_status(status_window interval DEFAULT '15 min') RETURNS integer"
            " LANGUAGE plpgsql AS $$ BEGIN INSERT INTO keeper_calls DEFAULT VALUES;"
            " PERFORM pg_advisory_xact_lock(hashtext('loomctl.lag_status_cache')); RETURN 0; END $$"
        )
    events: list[tuple[str, str]] = []
    collector = collector_for(url, services, 30, events)
    with psycopg.connect(url) as holder:
        holder.execute("SELECT pg_advisory_xact_lock(hashtext('loomctl.lag_status_cache'))")
        try:
            assert collector.cycle().written == 1
            assert keeper_waiting(url)
            assert collector.cycle().written == 1  # the first refresh still waits on the lock: not started twice
            holder.rollback()
            collector.settle(30)
            assert collector.cycle().written == 1  # that one is done: the third cycle's refresh runs
            collector.settle(30)
        finally:
            collector.close()
    assert samples_of(url, group) == 3
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM keeper_calls").fetchone()[0] == 2
    assert warnings(events) == []


def test_a_failing_refresh_keeps_the_cycles_samples_and_is_said_once(url, services):
    """A schema without the function: the samples still land, one warning, no retry within the hour."""
    group = configured_group(url, services, "cached", {0: (5, 2), 1: (5, 5)})
    events: list[tuple[str, str]] = []
    collector = collector_for(url, services, 2, events)
    try:
        assert collector.cycle().written == 2
        collector.settle(30)
        with psycopg.connect(url, autocommit=True) as conn:
            assert conn.execute("SELECT computed_window, partitions FROM lag_status_cache").fetchall() == [(WINDOW, 2)]
            conn.execute("DROP FUNCTION refresh_lag_partition_status(interval)")
        assert collector.cycle().written == 2
        collector.settle(30)
        assert warnings(events) == [
            "not keeping the window's statuses for the next hour (the views compute them): "
            "function public.refresh_lag_partition_status(interval) does not exist"]
        assert collector.cycle().written == 2  # not tried again within the hour: no second warning
        collector.settle(30)
    finally:
        collector.close()
    assert len(warnings(events)) == 1
    assert samples_of(url, group) == 6


def test_keeping_the_statuses_never_takes_more_than_a_fifth_of_the_interval(url, services):
    """A window too large to compute each cycle: the refresh is cut off at its budget, the samples land."""
    group = configured_group(url, services, "slow", {0: (5, 2)})
    with psycopg.connect(url, autocommit=True) as conn:
        # a refresh that would take 30 s
        conn.execute("CREATE OR REPLACE FUNCTION refresh_lag_partition_status(status_window interval DEFAULT '15 min')"
                     " RETURNS integer LANGUAGE sql AS 'SELECT pg_sleep(30)::text::integer'")
    events: list[tuple[str, str]] = []
    collector = collector_for(url, services, 2, events)
    try:
        assert collector.cycle().written == 1
        assert samples_of(url, group) == 1  # before the refresh is cut off
        assert collector.settle(30) is None  # cut off: no refresh completed
    finally:
        collector.close()
    assert warnings(events) == [
        "not keeping the window's statuses for the next hour (the views compute them): "
        "computing them took longer than 1 s, a fifth of the interval"]
    assert samples_of(url, group) == 1
