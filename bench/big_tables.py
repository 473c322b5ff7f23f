"""Every table command at 10,000 services against its own `-o json`, side by side in one run (issue 22).

On the PostgreSQL server of LOOM_DATABASE_URL it makes a database of its own with N service configs (10,000 by
default) and, for every service, two lag samples a minute apart on one partition (so `lag status` and `lag slo`
judge each one), then runs each read command as a user does (a fresh process, stdout to a pipe) with the table
and with -o json, alternately, --runs times each, and prints the medians and the table / json ratio.

Target: every ratio at most 2x. Never fails on slowness; exit 2 when it cannot run here.

Usage: python bench/big_tables.py [--services 10000] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scrape import drop_database, own_database  # noqa: E402

COMMANDS = (
    ("config", "list"),
    ("lag", "status"),
    ("lag", "slo"),
    ("alerts",),
    ("recommend",),
    ("config", "fields"),
)


def fill(url: str, services: int) -> None:
    import psycopg

    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO pipeline_consumer_configs (service_name, consumer_group_id, profile)"
            " SELECT 'svc-' || i, 'grp-' || i, (ARRAY['fast', 'ai-model', 'io-bound', NULL])[1 + i %% 4]"
            " FROM generate_series(1, %s) AS i",
            [services],
        )
        conn.execute("SELECT ensure_lag_history_partitions()")
        conn.execute(
            "INSERT INTO consumer_lag_history (consumer_group_id, topic_name, partition, \"timestamp\", service_name,"
            " committed_offset, log_end_offset, lag)"
            " SELECT 'grp-' || i, 'topic-' || (i %% 50), 0, now() - make_interval(mins => m), 'svc-' || i,"
            " 100 * (2 - m) + i %% 7, 300, 300 - (100 * (2 - m) + i %% 7)"
            " FROM generate_series(1, %s) AS i, generate_series(0, 1) AS m",
            [services],
        )


def timed(url: str, args: tuple[str, ...]) -> tuple[float, int]:
    env = {**os.environ, "LOOM_DATABASE_URL": url}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "loomctl", *args], env=env, capture_output=True, timeout=600)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed: {done.stderr.decode()[-300:]}")
    return elapsed, len(done.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()
    server = os.environ.get("LOOM_DATABASE_URL")
    if not server:
        print("set LOOM_DATABASE_URL (e.g. eval \"$(loomctl dev env)\")", file=sys.stderr)
        return 2
    url = own_database(server)
    try:
        fill(url, options.services)
        print(f"{options.services:,} services; median of {options.runs} runs each, stdout to a pipe")
        print(f"{'command':<18} {'table s':>8} {'json s':>8} {'ratio':>6} {'table bytes':>12} {'json bytes':>11}")
        worst = 0.0
        for command in COMMANDS:
            table, json_ = [], []
            for _ in range(options.runs):  # alternately, so the machine's load falls on both alike
                table.append(timed(url, command))
                json_.append(timed(url, (*command, "-o", "json")))
            t, j = statistics.median(x for x, _ in table), statistics.median(x for x, _ in json_)
            worst = max(worst, t / j)
            print(f"{' '.join(command):<18} {t:8.2f} {j:8.2f} {t / j:5.2f}x {table[0][1]:12,} {json_[0][1]:11,}")
        print(f"worst ratio table / json: {worst:.2f}x (target <= 2x)")
    finally:
        drop_database(server, url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
