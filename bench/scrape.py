"""How fast `lag collect --listen` answers a Prometheus scrape, with 1,000 groups over 2,000 partitions.

On the real broker (LOOM_KAFKA_BOOTSTRAP_SERVERS) and PostgreSQL server (LOOM_DATABASE_URL) it creates
T topics x P partitions (2,000 by default) with a few records each, commits offsets for N groups (1,000 by
default; each reads 1 to 3 topics, some partitions without a commit, as bench/lag_snapshot.py does), gives
every group a service config in a database of its own on that server (so the collector's writer lock and
history are the benchmark's), starts `loomctl lag collect --listen`, and once a cycle has completed times
--runs scrapes of /metrics (plain and gzip) per granularity: median and fastest time, size, series.

Target: a median scrape under 100 ms, since a scrape copies the last cycle's rendered figures from memory.

Exit status: never fails on slowness; 1 when a scrape's figures disagree with the offsets committed
(a correctness check), 2 when it cannot run here.

Usage: python bench/scrape.py [--groups 1000] [--runs 30]
"""

from __future__ import annotations

import argparse
import gzip
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lag_snapshot import Workload, cleanup, commit_groups, create_topics, produce  # noqa: E402
from loomctl.kafka import quiet_logger  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def own_database(server_url: str) -> str:
    """A fresh, migrated database on the server of ``server_url``."""
    import psycopg

    from loomctl.db import migrations

    name = f"loombench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = server_url.rpartition("/")
    url = f"{base}/{name}"
    migrations.upgrade(url)
    return url


def drop_database(server_url: str, url: str) -> None:
    import psycopg

    name = url.rpartition("/")[2]
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def configure(url: str, groups: list[str]) -> None:
    import psycopg

    with psycopg.connect(url) as conn, conn.cursor() as cur:
        with cur.copy("COPY pipeline_consumer_configs (service_name, consumer_group_id) FROM STDIN") as copy:
            for group in groups:
                copy.write_row((f"{group}-svc", group))


def scrape(address: str, *, compressed: bool) -> tuple[float, int, bytes]:
    request = urllib.request.Request(f"http://{address}/metrics", headers={"Accept-Encoding": "gzip"} if compressed else {})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=30) as response:
        body = response.read()
    elapsed = time.perf_counter() - started
    size = len(body)
    return elapsed, size, gzip.decompress(body) if compressed else body


def start(url: str, bootstrap: str, granularity: str, log: Path) -> tuple[subprocess.Popen, str]:
    address = f"127.0.0.1:{free_port()}"
    script = Path(sys.executable).with_name("loomctl")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOM_")}
    process = subprocess.Popen(
        [str(script) if script.exists() else "loomctl", "--database-url", url, "--bootstrap-servers", bootstrap,
         "lag", "collect", "--interval", "10m", "--listen", address, "--granularity", granularity],
        stdout=subprocess.DEVNULL, stderr=log.open("w"), env=env,
    )
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the collector exited {process.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://{address}/readyz", timeout=2) as response:
                if response.status == 200:
                    return process, address
        except OSError:
            pass
        time.sleep(0.5)
    process.kill()
    raise SystemExit("no completed cycle within 10 minutes")


def check(text: str, work: Workload, granularity: str) -> list[str]:
    """The scraped lag of every committed partition (or topic) against the offsets committed."""
    from prometheus_client.parser import text_string_to_metric_families

    problems: list[str] = []
    if granularity == "partition":
        seen = {}
        for family in text_string_to_metric_families(text):
            if family.name == "kafka_consumergroup_group_offset":
                seen.update({(s.labels["group"], s.labels["topic"], int(s.labels["partition"])): s.value for s in family.samples})
        for key, offset in work.committed.items():
            if seen.get(key) != (None if offset is None else float(offset)):
                problems.append(f"{key}: committed {offset}, scraped {seen.get(key)}")
    else:
        sums: dict[tuple[str, str], float] = {}
        for family in text_string_to_metric_families(text):
            if family.name == "kafka_consumergroup_group_topic_sum_lag":
                sums.update({(s.labels["group"], s.labels["topic"]): s.value for s in family.samples})
        expected: dict[tuple[str, str], int] = {}
        for (group, topic, partition), offset in work.committed.items():
            if offset is not None:
                expected[(group, topic)] = expected.get((group, topic), 0) + work.log_end[(topic, partition)] - offset
        problems.extend(f"{key}: lag {lag}, scraped {sums.get(key)}" for key, lag in expected.items() if sums.get(key) != lag)
    return problems


def measure(url: str, bootstrap: str, work: Workload, granularity: str, runs: int, log: Path) -> list[str]:
    process, address = start(url, bootstrap, granularity, log)
    try:
        _, _, text = scrape(address, compressed=False)
        problems = check(text.decode(), work, granularity)
        series = sum(1 for line in text.splitlines() if line and not line.startswith(b"#"))
        cycle = next((float(line.split()[-1]) for line in text.decode().splitlines()
                      if line.startswith("loomctl_collector_cycle_duration_seconds{")), float("nan"))
        for compressed in (False, True):
            times, sizes = [], []
            for _ in range(runs):
                elapsed, size, _ = scrape(address, compressed=compressed)
                times.append(elapsed)
                sizes.append(size)
            print(f"{granularity:>9}  {'gzip' if compressed else 'plain':>5}  {statistics.median(times) * 1000:8.1f} ms"
                  f"  ({min(times) * 1000:6.1f})  {statistics.median(sizes) / 1e6:7.2f} MB  {series:>8} series"
                  f"  cycle {cycle:.2f} s", flush=True)
        return problems
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=1000)
    parser.add_argument("--topics", type=int, default=100)
    parser.add_argument("--partitions", type=int, default=20, help="partitions per topic (default 20: 2,000 in all)")
    parser.add_argument("--runs", type=int, default=30, help="scrapes per granularity and encoding (default 30)")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()

    bootstrap, server_url = os.environ.get("LOOM_KAFKA_BOOTSTRAP_SERVERS"), os.environ.get("LOOM_DATABASE_URL")
    if not bootstrap or not server_url:
        print('LOOM_KAFKA_BOOTSTRAP_SERVERS and LOOM_DATABASE_URL must be set: eval "$(loomctl dev env)" first', file=sys.stderr)
        return 2

    from confluent_kafka.admin import AdminClient

    admin: Any = AdminClient({"bootstrap.servers": bootstrap, "logger": quiet_logger()})
    rng = random.Random(args.seed)
    prefix = f"scrapebench-{uuid.uuid4().hex[:8]}"
    work = Workload(prefix, [f"{prefix}-t{i:03d}" for i in range(args.topics)], args.partitions)
    url = own_database(server_url)
    problems: list[str] = []
    logs = Path(os.environ.get("TMPDIR", "/tmp"))
    try:
        started = time.perf_counter()
        create_topics(admin, work)
        records = produce(bootstrap, work, rng)
        commit_groups(admin, work, args.groups, rng)
        configure(url, work.groups)
        rows = sum(1 for v in work.committed.values() if v is not None)
        print(f"setup: {len(work.log_end)} partitions, {records} records, {len(work.groups)} groups reading "
              f"{len(work.committed)} group-partitions ({rows} committed) in {time.perf_counter() - started:.1f} s\n", flush=True)
        print(f"{'':>9}  {'':>5}  {'median':>11}  {'(min)':>8}  {'size':>10}  {'series':>8}")
        for granularity in ("partition", "topic"):
            problems.extend(measure(url, bootstrap, work, granularity, args.runs, logs / f"{prefix}-{granularity}.log"))
    finally:
        cleanup(admin, work)
        drop_database(server_url, url)
    print("\ntarget: a median scrape under 100 ms (served from memory)")
    if problems:
        print(f"\nDISAGREEMENT: {len(problems)} figures differ from the offsets committed:", file=sys.stderr)
        for line in problems[:20]:
            print(f"  {line}", file=sys.stderr)
        return 1
    print("agreement: every scraped committed offset (per partition) and lag (per topic) matches what was committed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
