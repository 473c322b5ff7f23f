"""Latency of the monitoring views over a large lag history, in a database of the bench's own.

Builds N services (5-10 partitions each, one sample every 30 s, ~--rows consumer_lag_history rows
spread over daily partitions, plus one processing-metrics batch per service every 30 s), then
times, warm, the median of several runs of:
  - SELECT * FROM v_consumer_performance_monitor           (target: under 100 ms)
  - SELECT * FROM v_consumer_alerts
  - SELECT * FROM lag_partition_status('15 minutes') WHERE consumer_group_id = ...   (target: under 20 ms)
  - the guide's v_consumer_performance_history query (one service, last hour)
each with the statuses a running collector keeps (refresh_lag_partition_status) and computed
from the history (no collector), side by side with their ratio, and prints each one's execution time from EXPLAIN ANALYZE beside the figures (and a "JIT"
mark if a plan ever crossed jit_above_cost). It also prints what keeping the statuses costs once
per cycle, what the processing-metrics rollup costs a writer (record_processing_metrics with its
triggers and without), and whether retention (drop_lag_history_before) still drops whole days at
that size (in a transaction that is rolled back). Never fails on a slow machine.

The bulk of the history is loaded with the tables' indexes dropped and then built again from
their catalog definitions (same schema, much faster than growing them row by row); the last two
hours are written after that, up to the real now, so the status window is full when the timing
starts. What matters to the monitor is the window's density (--services x ~7.5 partitions x 30
samples in 15 minutes: 450,000 rows at 2,000 services), not the total; the total decides the
daily partitions and the indexes, and how long the build takes: about --rows / 200,000 s for the
rows on a 2-core machine, plus the indexes (progress on stderr).

The database is created on the server of LOOM_DATABASE_URL (CREATE DATABASE bench_views_...),
migrated with loomctl.db.migrations.upgrade and dropped at the end (--keep leaves it, and --reuse
NAME times an existing one, for looking at plans, writing the samples and batches it misses up
to now first; --at REV migrates it to REV first, up or down, for a before and after on the same rows).
Usage: python bench/views.py [--rows 10000000] [--services 200] [--runs 9]
       python bench/views.py --rows 100000000 --services 2000 --keep    # then --reuse NAME [--at 0006]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg

SAMPLE_SECONDS = 30


def database_url_named(server_url: str, name: str) -> str:
    return urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))


def _revision_of(url: str) -> str:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]


@contextlib.contextmanager
def bench_database(prefix: str, *, keep: bool = False, reuse: str | None = None, at: str = "head") -> Iterator[str]:
    """A database of the bench's own on LOOM_DATABASE_URL's server, migrated to head, dropped afterwards."""
    from loomctl.db import migrations

    server_url = os.environ.get("LOOM_DATABASE_URL")
    if not server_url:
        sys.exit("LOOM_DATABASE_URL is not set (try: eval \"$(loomctl dev env)\")")
    if reuse:
        url = database_url_named(server_url, reuse)
        if at != "head" and at in {r.revision for r in migrations.history()} and _revision_of(url) > at:
            migrations.downgrade(url, at)
        else:
            migrations.upgrade(url, at)
        yield url
        return
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = database_url_named(server_url, name)
    try:
        migrations.upgrade(url)
        yield url
    finally:
        if keep:
            print(f"kept database {name}", file=sys.stderr)
        else:
            with psycopg.connect(server_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# Sample n of a partition is taken at origin + n * 30 s; offsets grow with n at the topic's rate.
# One service in every 20 of each kind is unhealthy, so the views have alerts and
# recommendations to compute (kinds by i %% 20): 14-15 slow (lag only grows over the last 20
# minutes), 16 stuck with members for 30 minutes, 17 stopped (group Empty) for an hour, 18
# rewound 5 minutes ago, 19 never committed. n_end is the sample index of "now".
_HISTORY_SQL = """
INSERT INTO consumer_lag_history
    (consumer_group_id, topic_name, partition, "timestamp", service_name, committed_offset,
     log_end_offset, log_start_offset, lag, time_lag_ms, group_state, member_count)
SELECT x.service_name || '-group', 'bench.topic.' || x.i, x.p, x.ts, x.service_name, x.committed,
       x.leo, 0, x.leo - x.committed, ((x.leo - x.committed) * 1000 / x.rate)::bigint,
       CASE WHEN x.i %% 20 = 17 THEN 'Empty' ELSE 'Stable' END,
       CASE WHEN x.i %% 20 = 17 THEN 0 ELSE 3 END
  FROM (
    SELECT v.*,
           CASE v.i %% 20
               WHEN 14 THEN v.leo - greatest(1200 - v.age, 0) * 5 - 1
               WHEN 15 THEN v.leo - greatest(1200 - v.age, 0) * 5 - 1
               WHEN 16 THEN v.rate * 30 * least(v.n, %(n_end)s::integer - 60)
               WHEN 17 THEN v.rate * 30 * least(v.n, %(n_end)s::integer - 120)
               WHEN 18 THEN CASE WHEN v.age < 300 THEN v.leo - 100000 ELSE v.leo - 10 END
               WHEN 19 THEN NULL
               ELSE v.leo - (v.n * 13 + v.p * 7) %% 40
           END AS committed
      FROM (
        SELECT s.i, s.service_name, s.rate, p.p, k.n,
               %(origin)s::timestamptz + k.n * interval '30 s' AS ts,
               (%(n_end)s::integer - k.n) * 30 AS age,
               s.rate * k.n * 30 + 1000 AS leo
          FROM generate_series(%(n_lo)s::integer, %(n_hi)s::integer) AS k(n)
         CROSS JOIN (SELECT i, format('bench-svc-%%s', lpad(i::text, 4, '0')) AS service_name, 20 + (i %% 7) * 10 AS rate
                       FROM generate_series(1, %(services)s) AS i) AS s
         CROSS JOIN LATERAL generate_series(0, 4 + s.i %% 6) AS p(p)
      ) AS v
  ) AS x
"""

# One batch report per service every 30 s; one service in 25 fails 12 messages a batch, and
# batch times differ per service (20-360 ms), so poll-interval usage and error rate vary.
_METRICS_SQL = """
INSERT INTO consumer_processing_metrics
    ("timestamp", service_name, consumer_group_id, topic_name, batch_size, messages_processed,
     messages_failed, processing_time_ms, messages_per_second)
SELECT y.ts, y.service_name, y.service_name || '-group', 'bench.topic.' || y.i, y.batch, y.batch - y.failed,
       y.failed, y.ms, (y.batch - y.failed) * 1000.0 / y.ms
  FROM (
    SELECT s.i, s.service_name, %(origin)s::timestamptz + k.n * interval '30 s' + interval '15 s' AS ts,
           100 + (k.n + s.i) %% 300 AS batch,
           CASE WHEN s.i %% 25 = 3 THEN 12 ELSE (k.n %% 50 = 0)::int END AS failed,
           20.0 + (s.i %% 9) * 40 + (k.n %% 17) AS ms
      FROM generate_series(%(n_lo)s::integer, %(n_hi)s::integer) AS k(n)
     CROSS JOIN (SELECT i, format('bench-svc-%%s', lpad(i::text, 4, '0')) AS service_name
                   FROM generate_series(1, %(services)s) AS i) AS s
  ) AS y
"""


def partitions_of(services: int) -> int:
    return sum(5 + i % 6 for i in range(1, services + 1))


@contextlib.contextmanager
def indexes_built_after(conn: psycopg.Connection, tables: list[str]) -> Iterator[None]:
    """Drop the tables' indexes (the history's primary key too) for a bulk load, then build them again.

    The definitions are read from the catalog and replayed as they were, so the schema after
    the load is the migrated one (`loomctl db check` agrees); building an index once is much
    faster than growing it row by row, and the bench times reads, not this load.
    """
    saved = conn.execute(
        "SELECT t.relname, i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid), con.conname,"
        "       pg_get_constraintdef(con.oid)"
        "  FROM pg_index AS i JOIN pg_class AS t ON t.oid = i.indrelid"
        "  LEFT JOIN pg_constraint AS con ON con.conindid = i.indexrelid AND con.conrelid = t.oid"
        " WHERE t.relname = ANY(%s) AND (con.conname IS NULL OR t.relname = 'consumer_lag_history')",
        [tables],
    ).fetchall()
    for table, index, _, constraint, _ in saved:
        if constraint:
            conn.execute(f'ALTER TABLE "{table}" DROP CONSTRAINT "{constraint}"')
        else:
            conn.execute(f"DROP INDEX {index}")
    yield
    print("\nbuilding the indexes", end="", file=sys.stderr, flush=True)
    for table, _, definition, constraint, constraint_definition in saved:
        if constraint:
            conn.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT "{constraint}" {constraint_definition}')
        else:  # the parent's definition reads ON ONLY, which would leave the daily partitions bare
            conn.execute(definition.replace(" ON ONLY ", " ON ", 1))


def _configs(conn: psycopg.Connection, services: int) -> None:
    conn.execute(
        "INSERT INTO pipeline_consumer_configs (service_name, consumer_group_id, max_poll_records, max_poll_interval_ms, profile)"
        " SELECT format('bench-svc-%%s', lpad(i::text, 4, '0')), format('bench-svc-%%s-group', lpad(i::text, 4, '0')),"
        "        (ARRAY[100, 500, 1000, 250])[1 + i %% 4], (ARRAY[300000, 60000, 900000])[1 + i %% 3], 'bench'"
        "   FROM generate_series(1, %s) AS i",
        [services],
    )


def _write(conn: psycopg.Connection, origin, services: int, n_lo: int, n_hi: int, n_end: int, of: int) -> None:
    """Samples n_lo..n_hi of every partition and the batches beside them, in chunks, with progress and an estimate."""
    chunk = max(1, 6_000_000 // partitions_of(services))  # ~6 million rows a statement
    started = time.perf_counter()
    for lo in range(n_lo, n_hi + 1, chunk):
        hi = min(lo + chunk - 1, n_hi)
        params = {"origin": origin, "n_lo": lo, "n_hi": hi, "n_end": n_end, "services": services}
        conn.execute(_HISTORY_SQL, params)
        conn.execute(_METRICS_SQL, params)
        done = (hi - n_lo + 1) / (n_hi - n_lo + 1)
        took = time.perf_counter() - started
        print(f"\rhistory: sample {hi + 1} of ~{of} per partition, {took:.0f} s, ~{took / done - took:.0f} s to go  ",
              end="", file=sys.stderr, flush=True)


def populate(url: str, rows: int, services: int) -> tuple[int, int, dict[str, float]]:
    """Configs, ~``rows`` history rows in time order (as a collector writes them) and metrics.

    The bulk is written first with "now" fixed at the start; the last two hours are written
    after it, up to the real now, so the 15-minute window is full however long the bulk took.
    Returns the row counts and how long each step took.
    """
    samples = max(rows // partitions_of(services), 300)
    steps: dict[str, float] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        # the bulk load's own session: bigger sorts for the index builds, no wait for each commit's flush
        conn.execute("SET maintenance_work_mem = '512MB'")
        conn.execute("SET synchronous_commit = off")
        origin = conn.execute("SELECT date_trunc('second', now()) - %s * interval '30 s'", [samples - 1]).fetchone()[0]
        conn.execute("SELECT ensure_lag_history_partitions(%s, 1)", [samples * SAMPLE_SECONDS // 86400 + 2])
        _configs(conn, services)
        bulk_end = samples - 1 - 240
        start = time.perf_counter()
        with indexes_built_after(conn, ["consumer_lag_history", "consumer_processing_metrics"]):
            _write(conn, origin, services, 0, bulk_end, samples - 1, samples)
            steps["rows"] = time.perf_counter() - start
            start = time.perf_counter()
        steps["indexes"] = time.perf_counter() - start
        start = time.perf_counter()
        now_index = int(conn.execute("SELECT extract(epoch FROM now() - %s::timestamptz)", [origin]).fetchone()[0]) // 30
        _write(conn, origin, services, bulk_end + 1, now_index, now_index, samples)
        steps["last two hours"] = time.perf_counter() - start
        print(file=sys.stderr)
        start = time.perf_counter()
        conn.execute("VACUUM ANALYZE consumer_lag_history")
        conn.execute("VACUUM ANALYZE consumer_processing_metrics")
        conn.execute("VACUUM ANALYZE consumer_processing_metrics_rollup")
        conn.execute("ANALYZE pipeline_consumer_configs")
        steps["vacuum analyze"] = time.perf_counter() - start
        history = conn.execute("SELECT count(*) FROM consumer_lag_history").fetchone()[0]
        metrics = conn.execute("SELECT count(*) FROM consumer_processing_metrics").fetchone()[0]
    return history, metrics, steps


def top_up(url: str) -> None:
    """A kept database timed again later: the samples and batches it misses, from its last up to now."""
    with psycopg.connect(url, autocommit=True) as conn:
        origin, last = conn.execute('SELECT min("timestamp"), max("timestamp") FROM consumer_lag_history').fetchone()
        services = conn.execute("SELECT count(*) FROM pipeline_consumer_configs").fetchone()[0]
        conn.execute("SELECT ensure_lag_history_partitions(1, 1)")
        n_last = int((last - origin).total_seconds()) // SAMPLE_SECONDS
        now_index = int(conn.execute("SELECT extract(epoch FROM now() - %s::timestamptz)", [origin]).fetchone()[0]) // 30
        if now_index > n_last:
            _write(conn, origin, services, n_last + 1, now_index, now_index, now_index + 1)
            print(file=sys.stderr)
            conn.execute("ANALYZE consumer_lag_history")
            conn.execute("ANALYZE consumer_processing_metrics")
            if conn.execute("SELECT to_regclass('consumer_processing_metrics_rollup') IS NOT NULL").fetchone()[0]:
                conn.execute("ANALYZE consumer_processing_metrics_rollup")


def retention(conn: psycopg.Connection) -> str:
    """drop_lag_history_before(today's midnight, UTC) as a collector's retention would run it, rolled back:
    does it still drop whole days (DROP TABLE of each daily partition) and delete no row one by one?"""
    cutoff = conn.execute("SELECT date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'").fetchone()[0]
    days, rows = conn.execute(
        "SELECT count(*), coalesce(sum(c.reltuples), 0)::bigint FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'consumer_lag_history'::regclass AND c.relname ~ '^consumer_lag_history_p[0-9]{8}$'"
        "   AND to_date(right(c.relname, 8), 'YYYYMMDD') < %s::date", [cutoff]).fetchone()
    with conn.transaction():  # psycopg.Rollback ends it rolled back, without an error
        start = time.perf_counter()
        dropped, deleted = conn.execute("SELECT * FROM drop_lag_history_before(%s)", [cutoff]).fetchone()
        took = (time.perf_counter() - start) * 1000
        raise psycopg.Rollback
    whole = "yes" if dropped == days and deleted == 0 else "NO"
    return (f"retention: drop_lag_history_before({cutoff:%Y-%m-%d %H:%M}Z) dropped {dropped} of the {days} daily partitions"
            f" before it whole (~{rows:,} rows) and deleted {deleted:,} rows one by one in {took:.0f} ms (rolled back);"
            f" whole days: {whole}")


def writer_cost(conn: psycopg.Connection, service: str, calls: int = 2000) -> str:
    """record_processing_metrics, a call per batch as the loaders make it, with the rollup's triggers and without
    (each in a transaction that is rolled back, so the commit, the same for both, is left out)."""
    def run(disabled: bool) -> float:
        with conn.transaction():
            if disabled:
                conn.execute("ALTER TABLE consumer_processing_metrics DISABLE TRIGGER consumer_processing_metrics_rollup_insert")
            start = time.perf_counter()
            for _ in range(calls):
                conn.execute("SELECT record_processing_metrics(%s, 100, 100, 250.0)", [service])
            took = time.perf_counter() - start
            raise psycopg.Rollback
        return took / calls * 1000

    run(False)  # warm
    without, with_ = run(True), run(False)
    return (f"record_processing_metrics per batch: {with_:.3f} ms with the rollup's trigger, {without:.3f} ms without"
            f" ({with_ - without:+.3f} ms a batch, {calls} calls in one transaction)")


def timed(conn: psycopg.Connection, sql: str, params: list | None, runs: int) -> tuple[float, float, int]:
    conn.execute(sql, params).fetchall()  # warm
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        rows = conn.execute(sql, params).fetchall()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000, min(times) * 1000, len(rows)


def top_of_plan(conn: psycopg.Connection, sql: str, params: list | None) -> str:
    plan = conn.execute("EXPLAIN (ANALYZE, BUFFERS, TIMING OFF) " + sql, params).fetchall()
    return " | ".join(line[0].strip() for line in plan if "Execution Time" in line[0] or "JIT" in line[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="consumer_lag_history rows to generate")
    parser.add_argument("--services", type=int, default=200)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--keep", action="store_true", help="leave the database for a look at the plans")
    parser.add_argument("--reuse", metavar="NAME", help="time an existing bench database instead of building one")
    parser.add_argument("--at", metavar="REV", default="head",
                        help="with --reuse: migrate it to REV first (up or down), e.g. 0006 for the schema before 0007")
    parser.add_argument("--explain", action="store_true", help="print the full plans")
    args = parser.parse_args()

    with bench_database("bench_views", keep=args.keep, reuse=args.reuse, at=args.at) as url:
        if not args.reuse:
            start = time.perf_counter()
            history, metrics, steps = populate(url, args.rows, args.services)
            print(f"built {history:,} history rows and {metrics:,} metrics rows for {args.services} services"
                  f" in {time.perf_counter() - start:.0f} s ({', '.join(f'{k} {v:.0f} s' for k, v in steps.items())})")
        else:
            top_up(url)
        with psycopg.connect(url, autocommit=True) as conn:
            def has(table: str) -> bool:
                return conn.execute("SELECT to_regclass(%s) IS NOT NULL", [table]).fetchone()[0]

            print(f"schema at {_revision_of(url)}")
            group = conn.execute("SELECT consumer_group_id FROM pipeline_consumer_configs ORDER BY service_name LIMIT 1 OFFSET 16").fetchone()[0]
            service = group.removesuffix("-group")
            queries = {
                "v_consumer_performance_monitor": ("SELECT * FROM v_consumer_performance_monitor", None),
                "guide: monitor ORDER BY avg_lag": ("SELECT * FROM v_consumer_performance_monitor ORDER BY avg_lag DESC", None),
                "v_consumer_alerts": ("SELECT * FROM v_consumer_alerts", None),
                "lag_partition_status, one group": (
                    "SELECT * FROM lag_partition_status('15 minutes') WHERE consumer_group_id = %s", [group]),
                "lag_partition_status, all": ("SELECT * FROM lag_partition_status('15 minutes')", None),
                "guide: history, 1 service, 1 hour": (
                    "SELECT * FROM v_consumer_performance_history WHERE service_name = %s"
                    " AND timestamp > NOW() - INTERVAL '1 hour'", [service]),
            }
            # Each query twice, side by side: with the statuses a running collector keeps
            # (refresh_lag_partition_status after its COPY, as `lag collect` does each cycle) and
            # computed from the history (no collector keeping them: the copy emptied).
            def keep() -> float:
                start = time.perf_counter()
                conn.execute("SELECT refresh_lag_partition_status('15 minutes')")
                conn.execute("ANALYZE lag_status_cache_rows")
                if has("lag_status_cache_groups"):
                    conn.execute("ANALYZE lag_status_cache_groups")
                return (time.perf_counter() - start) * 1000

            def drop() -> None:
                conn.execute("DELETE FROM lag_status_cache")

            print(f"keeping the statuses (refresh_lag_partition_status, once per collector cycle): {keep():.0f} ms")
            print(f"{'query':36} {'kept':>9} {'computed':>9} {'ratio':>6} {'rows':>6}   plan (kept)")
            for name, (sql, params) in queries.items():
                keep()
                kept, _, count = timed(conn, sql, params, args.runs)
                plan = top_of_plan(conn, sql, params)
                drop()
                computed = timed(conn, sql, params, args.runs)[0]
                print(f"{name:36} {kept:7.1f}ms {computed:7.1f}ms {computed / kept:5.1f}x {count:6}   {plan}")
                if args.explain:
                    keep()
                    for (line,) in conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params).fetchall():
                        print("    " + line)
            keep()
            median = timed(conn, "SELECT * FROM v_consumer_performance_monitor", None, args.runs)[0]
            print(f"v_consumer_performance_monitor with the kept statuses: median {median:.1f} ms (target < 100 ms);"
                  f" load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
            size = conn.execute("SELECT pg_size_pretty(sum(pg_total_relation_size(i.inhrelid))) FROM pg_inherits AS i"
                                " WHERE i.inhparent = 'consumer_lag_history'::regclass").fetchone()[0]
            history = conn.execute("SELECT sum(c.reltuples)::bigint FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid"
                                   " WHERE i.inhparent = 'consumer_lag_history'::regclass").fetchone()[0]
            print(f"history: ~{history:,} rows, {size} with its indexes")
            if has("consumer_processing_metrics_rollup"):
                print(writer_cost(conn, service))
            print(retention(conn))


if __name__ == "__main__":
    main()
