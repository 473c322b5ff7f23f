"""The monitor's rollups (migration 0007), in databases of their own: the groups' figures kept beside the partitions'
statuses (lag_group_status, refresh_lag_partition_status) and the processing metrics summed at every write
(consumer_processing_metrics_rollup). Whatever is kept, v_consumer_performance_monitor reads the rows that computing
it from the history and the batches gives: the reference below is the monitor of migration 0005 (version 4), which
hashes the window's samples and the hour's batches on every read, over lag_partition_status_live."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator

import psycopg
import pytest
from psycopg.rows import dict_row
from support import own_database

from loomctl.db import migrations
from loomctl.lag import LagSample, copy_samples, status_report
from loomctl.db.entities import sql_text

pytestmark = pytest.mark.integration

WINDOW = dt.timedelta(minutes=15)
TIERS = (60, 300, 1800)


def reference_view_sql() -> str:
    """Version 4 of the monitor, computing everything from the rows, as a view of another name."""
    sql = sql_text("v_consumer_performance_monitor", 4)
    sql = sql.replace("VIEW public.v_consumer_performance_monitor AS", "VIEW public.reference_monitor AS", 1)
    return sql.replace("public.lag_partition_status(", "public.lag_partition_status_live(")


def reference_alerts_sql() -> str:
    """Version 3 of the alerts (every message formatted, then filtered) over the reference monitor."""
    sql = sql_text("v_consumer_alerts", 3)
    sql = sql.replace("VIEW public.v_consumer_alerts AS", "VIEW public.reference_alerts AS", 1)
    return sql.replace("public.v_consumer_performance_monitor", "public.reference_monitor")


@pytest.fixture
def url(database_factory) -> Iterator[str]:
    with own_database(database_factory, "loomroll") as url:
        with psycopg.connect(url) as conn:
            conn.execute(reference_view_sql())
            conn.execute(reference_alerts_sql())
        yield url


def samples(now: dt.datetime, groups: int = 8, partitions: int = 3, count: int = 28, since: int = 0) -> list[LagSample]:
    """Groups of different kinds over the last 13.5 minutes: keeping up, falling behind (lag in time grows, so an
    objective is at risk or breached), stuck, stopped, never committed, rewound; samples ``since``..``count``-1."""
    rows = []
    for g in range(groups):
        kind = g % 6
        for p in range(partitions):
            for i in range(since, count):
                at = now - dt.timedelta(seconds=30 * (count - 1 - i))
                leo = 1000 + 120 * i + 7 * p
                committed = [leo - 3 - (i + p) % 4, 1000 + 60 * i, 900, 900, None, leo - (5000 if i > 20 else 10)][kind]
                lag = None if committed is None else max(leo - committed, 0)
                rows.append(LagSample(
                    consumer_group_id=f"svc{g}-group", topic_name=f"topic{g}", partition=p, timestamp=at, service_name=f"svc{g}",
                    committed_offset=committed, log_end_offset=leo, log_start_offset=0, lag=lag,
                    time_lag_ms=None if lag is None else lag * 250, group_state="Empty" if kind == 3 else "Stable",
                    member_count=0 if kind == 3 else 2, group_type="consumer" if g % 2 else "classic"))
    return rows


def configure(conn: psycopg.Connection, groups: int = 8) -> None:
    for g in range(groups):
        profile = ["ai-model", "fast", "io-bound", "database-writer", None, "fast"][g % 6]
        conn.execute("INSERT INTO pipeline_consumer_configs (service_name, consumer_group_id, profile, lag_slo_seconds,"
                     " max_poll_records, max_poll_interval_ms) VALUES (%s, %s, %s, %s, %s, %s)",
                     [f"svc{g}", f"svc{g}-group", profile, 45 if g == 1 else None, [100, 500][g % 2], 300000])
    # a service with no samples and no batches
    conn.execute("INSERT INTO pipeline_consumer_configs (service_name, consumer_group_id) VALUES ('idle', 'idle-group')")


def batches(conn: psycopg.Connection, groups: int = 8, minutes: int = 70) -> None:
    """A batch per service every 30 s over ``minutes`` (some outside the hour), with failures and a slow batch;
    times are multiples of 1/4 ms, so float sums are exact in any order."""
    for g in range(groups):
        for k in range(minutes * 2):
            ms = 20.25 + 13.5 * (k % 7) + (240000.0 if g == 2 and k == 5 else 0)
            conn.execute("SELECT record_processing_metrics(%s, %s, %s, %s, %s, NULL, NULL, now() - %s * interval '30 s')",
                         [f"svc{g}", 50 + k % 40, 50 + k % 40 - (k % 3 if g == 3 else 0), ms, k % 3 if g == 3 else 0, k])


def world(url: str) -> psycopg.Connection:
    conn = psycopg.connect(url, row_factory=dict_row)
    now = conn.execute("SELECT date_trunc('second', now()) AS n").fetchone()["n"]
    configure(conn)
    copy_samples(conn, samples(now))
    batches(conn)
    conn.commit()
    conn.autocommit = True  # each read below in a transaction (and a now()) of its own
    return conn


def monitor(conn: psycopg.Connection, view: str = "v_consumer_performance_monitor") -> list[dict]:
    return conn.execute(f"SELECT * FROM {view} ORDER BY service_name").fetchall()


def assert_monitor_is_the_reference(conn: psycopg.Connection) -> list[dict]:
    """The monitor against the reference, in one transaction (one now() and one snapshot for both)."""
    alerts_sql = "SELECT * FROM {} ORDER BY service_name, alert_type"
    with conn.transaction():
        rows, expected = monitor(conn), monitor(conn, "reference_monitor")
        alerts = conn.execute(alerts_sql.format("v_consumer_alerts")).fetchall()
        expected_alerts = conn.execute(alerts_sql.format("reference_alerts")).fetchall()
    # the views of 0010 append the service's cluster, which the reference (older) views do not have
    assert {r.pop("cluster_name", "default") for r in [*rows, *alerts]} <= {"default"}
    assert alerts == expected_alerts
    assert [r["service_name"] for r in rows] == [r["service_name"] for r in expected]
    for row, want in zip(rows, expected, strict=True):
        assert row == want, {k: (row[k], want[k]) for k in row if row[k] != want[k]}
    return rows


def kept(conn: psycopg.Connection) -> bool:
    """Whether the monitor reads the kept groups now: a mark put in them shows (and is taken out again)."""
    marked = False
    with conn.transaction():
        conn.execute("UPDATE lag_status_cache_groups SET evidence = 'kept copy' WHERE consumer_group_id = 'svc2-group'")
        [row] = conn.execute("SELECT evidence FROM v_consumer_performance_monitor WHERE service_name = 'svc2'").fetchall()
        marked = row["evidence"] == "kept copy"
        raise psycopg.Rollback
    return marked


def refresh(conn: psycopg.Connection) -> int:
    kept_partitions = conn.execute("SELECT refresh_lag_partition_status(%s) AS n", [WINDOW]).fetchone()["n"]
    conn.commit()
    return kept_partitions


def test_the_monitor_reads_the_reference_rows_with_and_without_the_kept_copy(url):
    with world(url) as conn:
        computed = assert_monitor_is_the_reference(conn)
        assert not kept(conn)
        statuses = {r["service_name"]: r["status"] for r in computed}
        assert set(statuses.values()) == {"OK", "WARN", "STALL", "STOP", "ERR", "REWIND", "NO_DATA"}, statuses
        assert {r["slo_state"] for r in computed} >= {"met", "breached", "no_slo"}
        assert len(conn.execute("SELECT * FROM v_consumer_alerts").fetchall()) >= 6
        assert all(r["batches"] == 120 for r in computed if r["service_name"] != "idle")  # the hour's, not the 70 minutes'

        assert refresh(conn) == 24
        assert kept(conn)
        assert assert_monitor_is_the_reference(conn) == computed

        # new samples, written without a refresh (a service's record_consumer_lag, or a cycle not yet kept): computed
        now = conn.execute("SELECT date_trunc('second', now()) AS n").fetchone()["n"]
        copy_samples(conn, [s._replace(timestamp=now + dt.timedelta(seconds=1)) for s in samples(now, count=1)])
        conn.commit()
        assert not kept(conn)
        after = assert_monitor_is_the_reference(conn)
        assert after != computed

        # refreshed again: served, and still the reference
        refresh(conn)
        assert kept(conn)
        assert assert_monitor_is_the_reference(conn) == after


def test_new_batches_reach_the_monitor_without_a_refresh(url):
    with world(url) as conn:
        refresh(conn)
        before = {r["service_name"]: r for r in assert_monitor_is_the_reference(conn)}
        conn.execute("SELECT record_processing_metrics('svc0', 400, 300, 250000.0, 100)")
        conn.execute("INSERT INTO consumer_processing_metrics (service_name, batch_size, messages_processed, messages_failed,"
                     " processing_time_ms) VALUES ('idle', 10, 10, 0, 5.5), ('idle', 30, 29, 1, 7.25)")
        conn.commit()
        assert kept(conn)  # the groups' copy still holds: batches are not samples
        after = {r["service_name"]: r for r in assert_monitor_is_the_reference(conn)}
        assert after["svc0"]["batches"] == before["svc0"]["batches"] + 1
        assert float(after["svc0"]["max_processing_time_ms"]) == 250000.0
        assert after["svc0"]["recommendation"].startswith("slowest batch took 250000.0 ms")
        assert (after["idle"]["batches"], after["idle"]["messages_received"], after["idle"]["messages_failed"]) == (2, 40, 1)
        assert before["idle"]["batches"] is None


def test_an_objective_changed_since_the_refresh_is_never_judged_by_the_old_one(url):
    with world(url) as conn:
        refresh(conn)
        assert kept(conn)
        before = {r["service_name"]: r for r in assert_monitor_is_the_reference(conn)}
        conn.execute("UPDATE pipeline_consumer_configs SET lag_slo_seconds = 100000 WHERE service_name = 'svc1'")
        conn.commit()
        assert not kept(conn)  # breach_in_seconds was computed against the old objective
        after = {r["service_name"]: r for r in assert_monitor_is_the_reference(conn)}
        assert (before["svc1"]["lag_slo_seconds"], after["svc1"]["lag_slo_seconds"]) == (45, 100000)
        assert before["svc1"]["slo_state"] != after["svc1"]["slo_state"]
        # a change that is no objective (the guide's UPDATE of max_poll_records) keeps the copy
        refresh(conn)
        conn.execute("UPDATE pipeline_consumer_configs SET max_poll_records = 50 WHERE service_name = 'svc4'")
        conn.commit()
        assert kept(conn)
        assert assert_monitor_is_the_reference(conn)
        # a profile whose default objective applies changes it too
        conn.execute("UPDATE pipeline_consumer_configs SET profile = 'ai-model' WHERE service_name = 'svc5'")
        conn.commit()
        assert not kept(conn)
        assert assert_monitor_is_the_reference(conn)


def test_the_python_status_report_agrees_with_the_kept_monitor(url):
    with world(url) as conn:
        refresh(conn)
        assert kept(conn)
        report = status_report(conn, WINDOW)
        rows = {r["service_name"]: r for r in monitor(conn)}
    assert {g.service_name: g.status for g in report.groups} == {s: r["status"] for s, r in rows.items()}


def test_the_kept_groups_are_what_computing_them_gives(url):
    with world(url) as conn:
        live = conn.execute("SELECT * FROM lag_group_status_live(%s) ORDER BY consumer_group_id", [WINDOW]).fetchall()
        assert conn.execute("SELECT * FROM lag_group_status(%s) ORDER BY consumer_group_id", [WINDOW]).fetchall() == live
        refresh(conn)
        assert conn.execute("SELECT * FROM lag_status_cache_groups ORDER BY consumer_group_id").fetchall() == live
        assert conn.execute("SELECT * FROM lag_group_status(%s) ORDER BY consumer_group_id", [WINDOW]).fetchall() == live
        assert len(live) == 8
        # another window is computed, not served
        conn.execute("UPDATE lag_status_cache_groups SET evidence = 'kept copy'")
        conn.commit()
        other = conn.execute("SELECT evidence FROM lag_group_status(%s)", [dt.timedelta(minutes=10)]).fetchall()
        assert "kept copy" not in {r["evidence"] for r in other}
        # the same window set for the session (loomctl.status_window) is served
        conn.execute("SET loomctl.status_window = '15 minutes'")
        assert {r["evidence"] for r in monitor(conn) if r["service_name"] != "idle"} == {"kept copy"}
        conn.execute("SET loomctl.status_window = '10 minutes'")
        assert "kept copy" not in {r["evidence"] for r in monitor(conn)}
        conn.execute("RESET loomctl.status_window")
        conn.rollback()


def test_a_copy_without_groups_serves_the_partitions_but_never_empty_groups(url):
    """A copy kept by 0006's refresh has no objectives digest (NULL) and no groups: the groups are computed."""
    with world(url) as conn:
        refresh(conn)
        conn.execute("DELETE FROM lag_status_cache_groups")
        conn.execute("UPDATE lag_status_cache SET objectives = NULL")
        conn.commit()
        assert conn.execute("SELECT count(*) AS n FROM lag_partition_status(%s)", [WINDOW]).fetchone()["n"] == 24
        assert assert_monitor_is_the_reference(conn)
        assert {r["status"] for r in monitor(conn)} != {"NO_DATA"}


def rollup_of_the_rows(conn: psycopg.Connection) -> list[tuple]:
    return [tuple(r.values()) for r in conn.execute(
        "SELECT w.s AS bucket_seconds, date_bin(w.s * interval '1 second', pm.\"timestamp\", '2000-01-01 00:00:00+00') AS bucket_start,"
        "       pm.service_name, count(*) AS batches, sum(pm.batch_size) AS batch_size,"
        "       sum(pm.messages_processed) AS messages_processed, sum(pm.messages_failed) AS messages_failed,"
        "       sum(pm.processing_time_ms) AS processing_time_ms, max(pm.processing_time_ms) AS max_processing_time_ms"
        "  FROM consumer_processing_metrics AS pm CROSS JOIN unnest(%s::integer[]) AS w(s)"
        " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3", [list(TIERS)]).fetchall()]


def rollup(conn: psycopg.Connection) -> list[tuple]:
    return [tuple(r.values()) for r in conn.execute(
        "SELECT bucket_seconds, bucket_start, service_name, batches, batch_size, messages_processed, messages_failed,"
        "       processing_time_ms, max_processing_time_ms FROM consumer_processing_metrics_rollup ORDER BY 1, 2, 3").fetchall()]


def test_the_rollup_follows_every_write_of_the_batches(url):
    with psycopg.connect(url, row_factory=dict_row) as conn:
        batches(conn, groups=3, minutes=40)
        conn.commit()
        assert rollup(conn) == rollup_of_the_rows(conn) and len(rollup(conn)) > 3 * 40
        # COPY, as a bulk writer might
        with conn.cursor().copy("COPY consumer_processing_metrics (\"timestamp\", service_name, batch_size, messages_processed,"
                                " messages_failed, processing_time_ms) FROM STDIN") as copy:
            for k in range(50):
                copy.write_row((f"2026-01-01 00:{k % 60:02d}:{k % 7:02d}+00", f"svc{k % 4}", k, k, 0, 1.5 * k))
        conn.commit()
        assert rollup(conn) == rollup_of_the_rows(conn)
        # an update that lowers the maximum, one that moves batches to another minute and another service
        conn.execute("UPDATE consumer_processing_metrics SET processing_time_ms = 1.25 WHERE processing_time_ms > 90")
        conn.execute("UPDATE consumer_processing_metrics SET \"timestamp\" = \"timestamp\" + interval '7 minutes',"
                     " service_name = 'moved' WHERE batch_size % 5 = 0")
        conn.commit()
        assert rollup(conn) == rollup_of_the_rows(conn)
        # deletes: the slowest batch of a bucket, a whole service, a whole half hour
        conn.execute("DELETE FROM consumer_processing_metrics WHERE id = (SELECT id FROM consumer_processing_metrics"
                     " ORDER BY processing_time_ms DESC, id LIMIT 1)")
        conn.execute("DELETE FROM consumer_processing_metrics WHERE service_name = 'svc1'")
        conn.execute("DELETE FROM consumer_processing_metrics WHERE \"timestamp\" < '2026-01-01 00:30:00+00'")
        conn.commit()
        assert rollup(conn) == rollup_of_the_rows(conn)
        assert not any(r[3] == 0 for r in rollup(conn))  # no empty bucket left behind
        # a statement that changes nothing, and one in a transaction that is rolled back
        conn.execute("DELETE FROM consumer_processing_metrics WHERE false")
        conn.execute("SELECT record_processing_metrics('svc0', 1, 1, 1.0)")
        conn.rollback()
        assert rollup(conn) == rollup_of_the_rows(conn)
        conn.execute("TRUNCATE consumer_processing_metrics")
        conn.commit()
        assert rollup(conn) == [] == rollup_of_the_rows(conn)


def test_the_hours_edges_are_the_rows_own(url):
    """Batches just inside and outside the hour and at each bucket boundary of the monitor's decomposition
    (its first partial minute, then minutes, five minutes and half hours), and in the future."""
    with psycopg.connect(url, row_factory=dict_row) as conn:
        configure(conn, groups=2)
        with conn.transaction():  # one now() for the batches and both views
            edges = conn.execute(
                "WITH t AS (SELECT now() - interval '1 hour' AS since,"
                "                  date_bin('1 minute', now() - interval '1 hour', '2000-01-01 00:00:00+00') + interval '1 minute' AS m)"
                " SELECT since, m, date_bin('5 minutes', m - interval '1 microsecond', '2000-01-01 00:00:00+00') + interval '5 minutes' AS f"
                "   FROM t").fetchone()
            halves = conn.execute("SELECT date_bin('30 minutes', %s::timestamptz - interval '1 microsecond',"
                                  " '2000-01-01 00:00:00+00') + interval '30 minutes' AS h", [edges["f"]]).fetchone()["h"]
            now = conn.execute("SELECT now() AS n").fetchone()["n"]
            tick = dt.timedelta(microseconds=1)
            times = [now + dt.timedelta(days=1), now, now - dt.timedelta(minutes=90)]
            for edge in (edges["since"], edges["m"], edges["f"], halves):
                times += [edge - tick, edge, edge + tick]
            for k, at in enumerate(times):
                for service in ("svc0", "svc1"):
                    conn.execute("SELECT record_processing_metrics(%s, %s, %s, %s, %s, NULL, NULL, %s)",
                                 [service, 10 + k, 10 + k - k % 2, 1000.5 + 250 * k * (service == "svc1"), k % 2, at])
            assert_monitor_is_the_reference(conn)
            rows = {r["service_name"]: r for r in monitor(conn)}
            assert rows["svc0"]["batches"] == len(times) - 3  # neither 90 minutes ago, nor at or just before the hour's start


def test_concurrent_writers_of_one_bucket_keep_the_rollup_exact(url):
    """Writers of the same service and minute, and a deleter of that minute, at the same time."""
    at = "2026-03-01 12:00:30+00"
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                for k in range(n):
                    conn.execute("SELECT record_processing_metrics('busy', %s, %s, %s, 0, NULL, NULL, %s)", [k, k, 1.0 + k, at])
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    def delete() -> None:
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                for _ in range(20):
                    conn.execute("DELETE FROM consumer_processing_metrics WHERE id IN"
                                 " (SELECT id FROM consumer_processing_metrics ORDER BY processing_time_ms DESC LIMIT 2)")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(60,)) for _ in range(3)] + [threading.Thread(target=delete)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with psycopg.connect(url, row_factory=dict_row) as conn:
        assert rollup(conn) == rollup_of_the_rows(conn)
        assert rollup(conn)


def copy_before_clusters(conn: psycopg.Connection, rows: list[LagSample]) -> None:
    """The samples as a database before 0010 takes them: without cluster_name (the last column)."""
    from loomctl.lag import HISTORY_COLUMNS

    with conn.cursor() as cur, cur.copy(f"COPY consumer_lag_history ({', '.join(HISTORY_COLUMNS[:-1])}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(tuple(row)[:-1])


def test_the_migration_sums_the_batches_already_there_and_goes_back_to_0006(empty_database_url):
    url = empty_database_url
    migrations.upgrade(url, "0006")
    with psycopg.connect(url, row_factory=dict_row) as conn:
        configure(conn, groups=3)
        batches(conn, groups=3, minutes=20)
        now = conn.execute("SELECT date_trunc('second', now()) AS n").fetchone()["n"]
        copy_before_clusters(conn, samples(now, groups=3))
        conn.execute("SELECT refresh_lag_partition_status(%s)", [WINDOW])
        before = monitor(conn)
    migrations.upgrade(url, "0007")  # 0008 drops the copy: it was judged by the rules it replaces
    with psycopg.connect(url, row_factory=dict_row) as conn:
        assert rollup(conn) == rollup_of_the_rows(conn) and rollup(conn)
        conn.execute(reference_view_sql())
        conn.execute(reference_alerts_sql())
        # the copy 0006's refresh kept still serves the partitions, the groups are computed until a refresh
        assert conn.execute("SELECT objectives FROM lag_status_cache").fetchall() == [{"objectives": None}]
        assert assert_monitor_is_the_reference(conn) == before
        conn.execute("DROP VIEW reference_alerts")
        conn.execute("DROP VIEW reference_monitor")
        conn.commit()
    migrations.downgrade(url, "0006")
    with psycopg.connect(url, row_factory=dict_row) as conn:
        assert conn.execute("SELECT to_regclass('consumer_processing_metrics_rollup') AS t").fetchone()["t"] is None
        assert monitor(conn) == before
        conn.execute("SELECT refresh_lag_partition_status(%s)", [WINDOW])
        assert monitor(conn) == before
    migrations.upgrade(url)
    assert migrations.check(url).clean
