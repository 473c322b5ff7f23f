"""Lag history ingest: the collector's binary COPY path beside row-by-row INSERTs, in one run.

Each method writes collector-shaped cycles (one sample of every partition of 200 services,
about 1,500 rows, one transaction per cycle, as `loomctl lag collect` does) into the same
migrated table of a database of the bench's own:
  - loomctl.lag.copy_samples (binary COPY; target: 100,000 rows/s or more)
  - at --cycle-rows (20,000) rows a cycle, copy_samples against one bare COPY of the same rows (ready tuples, the
    same statement and types), alternating; target: within 1.2x
  - executemany of one INSERT per row (psycopg pipelines them)
  - one record_consumer_lag() call per row (what a non-Python service does)
The table is pre-filled first (--prefill rows) so indexes are not empty. Prints rows/s and
the ratios; never fails on a slow machine. The database is created on the server of
LOOM_DATABASE_URL, migrated with loomctl.db.migrations.upgrade and dropped at the end.
Usage: python bench/ingest.py [--cycles 100] [--services 200] [--prefill 1000000] [--cycle-rows 20000] [--bare-cycles 10]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from views import bench_database  # noqa: E402  (the bench folder is not a package)

from loomctl.lag import HISTORY_COLUMNS, LagSample, copy_samples  # noqa: E402
from loomctl.lag.samples import _HISTORY_TYPES  # noqa: E402

_INSERT_SQL = (
    f"INSERT INTO consumer_lag_history ({', '.join(HISTORY_COLUMNS)})"
    f" VALUES ({', '.join(['%s'] * len(HISTORY_COLUMNS))})"
)
_RECORD_SQL = "SELECT record_consumer_lag(%s, %s, %s, %s, %s, %s, %s)"


def cycle(services: int, at: dt.datetime, method: str) -> list[LagSample]:
    """One collector cycle: every partition of every service, sampled at one instant."""
    seconds = int(at.timestamp())
    samples = []
    for i in range(1, services + 1):
        service = f"{method}-svc-{i:03d}"
        for partition in range(5 + i % 6):
            log_end = 1_000 + seconds * (20 + i % 7)
            committed = log_end - (seconds + partition) % 40
            samples.append(LagSample(
                consumer_group_id=f"{service}-group", topic_name=f"ingest.topic.{i}", partition=partition,
                timestamp=at, service_name=service, committed_offset=committed, log_end_offset=log_end,
                log_start_offset=0, lag=log_end - committed, time_lag_ms=(log_end - committed) * 50,
                group_state="Stable", member_count=3,
            ))
    return samples


def write_copy(conn: psycopg.Connection, samples: list[LagSample]) -> None:
    copy_samples(conn, samples)


def write_bare_copy(conn: psycopg.Connection, rows: list[tuple]) -> None:
    """One bare COPY of ready tuples into the same table: the same statement and types as copy_samples, nothing else."""
    with conn.cursor() as cur:
        with cur.copy(f"COPY public.consumer_lag_history ({', '.join(HISTORY_COLUMNS)}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(list(_HISTORY_TYPES))
            for row in rows:
                copy.write_row(row)


def copy_against_bare(conn: psycopg.Connection, rows_per_cycle: int, cycles: int, now: dt.datetime) -> None:
    """copy_samples against one bare COPY of the same rows, alternating per cycle, at ``rows_per_cycle``-row cycles."""
    services = max(int(rows_per_cycle / 7.5), 1)  # 5 to 10 partitions a service
    timings: dict[str, list[float]] = {"copy_samples": [], "bare COPY": []}
    size = 0
    for n in range(cycles):
        at = now + dt.timedelta(hours=1, seconds=30 * n)
        for method in (("copy_samples", "bare COPY") if n % 2 == 0 else ("bare COPY", "copy_samples")):
            samples = cycle(services, at, "c20k" if method == "copy_samples" else "b20k")
            rows = [tuple(s) for s in samples]
            size = len(samples)
            t0 = time.perf_counter()
            if method == "copy_samples":
                copy_samples(conn, samples)
            else:
                write_bare_copy(conn, rows)
            conn.commit()
            timings[method].append(time.perf_counter() - t0)
    ours, bare = statistics.median(timings["copy_samples"]), statistics.median(timings["bare COPY"])
    print(f"{size:,}-row cycles, {cycles} each, alternating: copy_samples {ours * 1000:.1f} ms ({size / ours:,.0f} rows/s),"
          f" bare COPY {bare * 1000:.1f} ms ({size / bare:,.0f} rows/s): {ours / bare:.2f}x (target <= 1.2x)")


def write_executemany(conn: psycopg.Connection, samples: list[LagSample]) -> None:
    with conn.cursor() as cur:
        cur.executemany(_INSERT_SQL, [s.row() for s in samples])


def write_record_function(conn: psycopg.Connection, samples: list[LagSample]) -> None:
    with conn.cursor() as cur:
        for s in samples:
            cur.execute(_RECORD_SQL, (s.service_name, s.topic_name, s.partition, s.committed_offset,
                                      s.log_end_offset, s.consumer_group_id, s.timestamp))


def run(conn: psycopg.Connection, write: Callable[[psycopg.Connection, list[LagSample]], None],
        batches: list[list[LagSample]]) -> tuple[float, float]:
    """Rows per second over all cycles, and the median cycle's rows per second."""
    per_cycle = []
    total_rows = sum(len(b) for b in batches)
    start = time.perf_counter()
    for batch in batches:
        t0 = time.perf_counter()
        write(conn, batch)
        conn.commit()
        per_cycle.append(len(batch) / (time.perf_counter() - t0))
    return total_rows / (time.perf_counter() - start), statistics.median(per_cycle)


def prefill(conn: psycopg.Connection, rows: int, services: int, end: dt.datetime) -> int:
    """Older history for the same partitions, so the indexes the methods write into are not empty."""
    per_cycle = len(cycle(services, end, "prefill"))
    cycles = max(rows // per_cycle, 1)
    written = 0
    for n in range(cycles, 0, -1):
        written += copy_samples(conn, cycle(services, end - dt.timedelta(seconds=30 * n), "copy"))
        conn.commit()
    conn.autocommit = True
    conn.execute("VACUUM ANALYZE consumer_lag_history")
    conn.autocommit = False
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=100, help="collector cycles written with COPY")
    parser.add_argument("--services", type=int, default=200)
    parser.add_argument("--prefill", type=int, default=1_000_000, help="history rows written before timing")
    parser.add_argument("--cycle-rows", type=int, default=20_000, help="rows per cycle of the copy_samples / bare COPY comparison")
    parser.add_argument("--bare-cycles", type=int, default=10, help="cycles of each in that comparison")
    args = parser.parse_args()

    with bench_database("bench_ingest") as url, psycopg.connect(url) as conn:
        now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        if args.prefill:
            start = time.perf_counter()
            rows = prefill(conn, args.prefill, args.services, now - dt.timedelta(hours=1))
            print(f"pre-filled {rows:,} rows in {time.perf_counter() - start:.1f} s")
        # Fewer cycles for the slow methods: the figure is a rate, and a few thousand rows fix it.
        plans = {
            "copy_samples (binary COPY)": (write_copy, args.cycles, "copy"),
            "executemany INSERT per row": (write_executemany, max(args.cycles // 10, 2), "many"),
            "record_consumer_lag() per row": (write_record_function, max(args.cycles // 50, 1), "record"),
        }
        results = {}
        for name, (write, cycles, method) in plans.items():
            batches = [cycle(args.services, now + dt.timedelta(seconds=30 * n), method) for n in range(cycles)]
            overall, median_cycle = run(conn, write, batches)
            results[name] = overall
            print(f"{name:32} {overall:>10,.0f} rows/s  (median cycle {median_cycle:,.0f} rows/s,"
                  f" {cycles} cycles of {len(batches[0]):,} rows)")
        if args.bare_cycles:
            copy_against_bare(conn, args.cycle_rows, args.bare_cycles, now)
        copy_rate = results["copy_samples (binary COPY)"]
        for name, rate in results.items():
            if not name.startswith("copy_samples"):
                print(f"ratio copy_samples / {name}: {copy_rate / rate:.1f}x")
        print(f"copy_samples: {copy_rate:,.0f} rows/s (target >= 100,000);"
              f" load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs;"
              f" peak RSS of this process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
