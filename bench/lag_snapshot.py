"""Live lag of many groups: `loomctl lag show --all-groups` against Kafka's own kafka-consumer-groups.

On the real broker (LOOM_KAFKA_BOOTSTRAP_SERVERS, e.g. from `eval "$(loomctl dev env)"`) it
creates T topics x P partitions (2,000 by default), writes a few records to every partition, and
commits offsets for up to N consumer groups without running a consumer: some partitions at the
log end (lag 0), some at 0, most in between, and some groups leave partitions of a topic they
consume without a commit (lag unknown). Nothing produces or commits while the tools run, so both
see the same figures.

It then runs `loomctl lag show --all-groups --by partition -o json` and `kafka-consumer-groups
--describe --all-groups` (the ConsumerGroupCommand of the same Kafka jars as the local broker,
with the JVM options of Kafka's launcher script) alternately, at a growing number of groups
(--scale), and prints the median time of each, their ratio, and how each grows with the groups.

Target: loomctl 10x faster or better at 200+ groups and 2,000+ partitions, and its cost growing
slower than the number of groups (bounded concurrent offset fetches, one log-end-offset request
for all partitions).

Beside both it times two floors. The old floor: a bare confluent-kafka script (FLOOR_SCRIPT: no loomctl import)
making the same admin calls for the same groups (list, describe of the groups the listing does not call Empty, one
offset fetch per group with the same bound, the metadata, log start and end offsets) and printing the same rows as
JSON. The new floor (BATCHED_FLOOR_SCRIPT): the same, with the groups listed and every group's committed offsets
fetched in one OffsetFetch per coordinator (KIP-709) through kafka-python's public API, which librdkafka cannot do.
Targets at 2,000 groups: loomctl at most 0.5x the old floor and within 1.2x of the new one; kafka-consumer-groups at
least 20x slower than loomctl at 1,000 groups.

Exit status: the benchmark never fails on slowness. It exits 1 when the two tools DISAGREE on a
figure (committed offset, log end offset or lag of a partition both show), or when either
disagrees with the offsets it committed: that is a correctness check. Exit 2: cannot run here.

At --groups it also times `loomctl lag show SERVICE` for one configured service against SERVICE_FLOOR_SCRIPT (the
service's group from PostgreSQL, then the same admin calls for that group; target: within 1.3x). With --collector N,
every group gets a config at each size (taken away again before the next size's `lag show`) and N `lag collect`
cycles run in a process of their own (and N of the --against revision's): each cycle's time
against the floor plus one bare COPY of the same rows, its COPY against that bare COPY, and peak RSS.

At scale (10,000 groups): --topics 250 --partitions 20 --scale 200,1000,10000 --groups 2000 (5,000 partitions). The
broker holds a file or two open per partition: 20,000 partitions (--topics 1000) need an open-files limit well past
20,000, which `loomctl dev` raises where the system lets it (a hard limit of 20,000 stopped the broker mid-setup).

Usage: python bench/lag_snapshot.py [--groups 200] [--scale 50,100,200,400] [--runs 5] [--no-tool] [--collector 3]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loomctl.devstack import kafka_tools as _kafka_tools  # noqa: E402
from loomctl.kafka import quiet_logger  # noqa: E402

Key = tuple[str, str, int]

FLOOR_TEMPLATE = r"""
import json, sys, threading
from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

admin = AdminClient({"bootstrap.servers": sys.argv[1], "log_level": 0})
#LISTING#
described = admin.describe_consumer_groups(busy, request_timeout=30) if busy else {}
#OFFSETS#
owners = {}
for group, future in described.items():
    try:
        d = future.result(timeout=40)
    except Exception:
        continue
    for m in d.members:
        for tp in (m.assignment.topic_partitions if m.assignment else []):
            owners[(group, tp.topic, tp.partition)] = (m.member_id, m.client_id, m.host)
topics = {t for offsets in committed.values() for t, _ in offsets} | {t for _, t, _ in owners}
metadata = admin.list_topics(timeout=30)
counts = {t: len(metadata.topics[t].partitions) for t in topics if t in metadata.topics}
wanted = [TopicPartition(t, p) for t, n in counts.items() for p in range(n)]
ends, starts = {}, {}
if wanted:
    futures = [(admin.list_offsets({tp: spec for tp in wanted}, request_timeout=30), into)
               for spec, into in ((OffsetSpec.latest(), ends), (OffsetSpec.earliest(), starts))]
    for answers, into in futures:
        for tp, future in answers.items():
            into[(tp.topic, tp.partition)] = future.result(timeout=40).offset
rows = []
for group in groups:
    mine = committed.get(group, {})
    for topic in sorted({t for t, _ in mine} | {t for g, t, _ in owners if g == group}):
        for partition in range(counts.get(topic, 0)):
            offset = mine.get((topic, partition))
            offset = offset if offset is not None and offset >= 0 else None
            end = ends.get((topic, partition))
            rows.append({"consumer_group_id": group, "topic_name": topic, "partition": partition, "committed_offset": offset,
                         "log_start_offset": starts.get((topic, partition)), "log_end_offset": end,
                         "lag": None if offset is None or end is None else max(end - offset, 0),
                         "owner": owners.get((group, topic, partition))})
sys.stdout.write(json.dumps(rows))  # dumps: the C encoder (json.dump writes piecemeal in Python)
"""
"""A bare snapshot script (no loomctl import) printing its rows as JSON; #LISTING# and #OFFSETS# are each floor's own."""

FLOOR_SCRIPT = FLOOR_TEMPLATE.replace("#LISTING#", r"""if len(sys.argv) > 2:  # the groups named in a file, described all (as the collector samples its configured groups)
    groups = busy = open(sys.argv[2]).read().split()
else:
    listed = admin.list_consumer_groups(request_timeout=30).result(timeout=40).valid
    groups = [g.group_id for g in listed]
    # as loomctl does: a group the listing calls Empty has no members to describe
    busy = [g.group_id for g in listed if getattr(g.state, "name", "") != "EMPTY"]""").replace("#OFFSETS#", r"""gate = threading.BoundedSemaphore(64)
pending = []
for group in groups:
    gate.acquire()
    future = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)], request_timeout=30)[group]
    future.add_done_callback(lambda _f: gate.release())
    pending.append((group, future))
committed = {}
for group, future in pending:
    try:
        committed[group] = {(tp.topic, tp.partition): tp.offset for tp in future.result(timeout=40).topic_partitions if not tp.error}
    except Exception:
        committed[group] = {}""")
"""The old floor: the admin calls of a snapshot through confluent-kafka alone (one OffsetFetch per group, as librdkafka
asks), its rows as JSON."""

BATCHED_FLOOR_SCRIPT = FLOOR_TEMPLATE.replace("#LISTING#", r"""from kafka import KafkaAdminClient
wire = KafkaAdminClient(bootstrap_servers=sys.argv[1].split(","), client_id="floor", request_timeout_ms=30000)
if len(sys.argv) > 2:
    groups = busy = open(sys.argv[2]).read().split()
else:  # every group with its type, as loomctl lists them for --all-groups (kept: consumer groups of either protocol)
    listed = [g for g in wire.list_groups() if g["protocol_type"] in ("consumer", "")]
    groups = [g["group_id"] for g in listed]
    busy = [g["group_id"] for g in listed if g.get("group_state") != "Empty"]""").replace("#OFFSETS#", r"""# KIP-709: one OffsetFetch per coordinator for all of its groups
fetched = wire.list_group_offsets(groups) if groups else {}
committed = {g: {(tp.topic, tp.partition): o.offset for tp, o in found.items()} for g, found in fetched.items()}""")
"""The new floor: the same calls, with every group listed and its committed offsets fetched in batches (one
OffsetFetch per coordinator) by kafka-python's own public API, as loomctl's snapshot now does; no loomctl import."""

SERVICE_FLOOR_SCRIPT = r"""
import json, sys
import psycopg
from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

database_url, bootstrap, service = sys.argv[1:4]
admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})  # connects while PostgreSQL answers
with psycopg.connect(database_url) as conn:
    (group,) = conn.execute("SELECT consumer_group_id FROM pipeline_consumer_configs WHERE service_name = %s", (service,)).fetchone()
described = admin.describe_consumer_groups([group], request_timeout=30)[group]
offsets = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)], request_timeout=30)[group].result(timeout=40)
committed = {(tp.topic, tp.partition): tp.offset for tp in offsets.topic_partitions if not tp.error}
d = described.result(timeout=40)
owners = {(tp.topic, tp.partition): (m.member_id, m.client_id, m.host)
          for m in d.members for tp in (m.assignment.topic_partitions if m.assignment else [])}
topics = sorted({t for t, _ in committed} | {t for t, _ in owners})
metadata = admin.list_topics(topic=topics[0], timeout=30) if len(topics) == 1 else admin.list_topics(timeout=30)
counts = {t: len(metadata.topics[t].partitions) for t in topics if t in metadata.topics}
wanted = [TopicPartition(t, p) for t, n in counts.items() for p in range(n)]
ends, starts = {}, {}
futures = [(admin.list_offsets({tp: spec for tp in wanted}, request_timeout=30), into)
           for spec, into in ((OffsetSpec.latest(), ends), (OffsetSpec.earliest(), starts))]
for answers, into in futures:
    for tp, future in answers.items():
        into[(tp.topic, tp.partition)] = future.result(timeout=40).offset
rows = []
for topic in topics:
    for partition in range(counts.get(topic, 0)):
        offset = committed.get((topic, partition))
        offset = offset if offset is not None and offset >= 0 else None
        end = ends.get((topic, partition))
        rows.append({"service_name": service, "consumer_group_id": group, "topic_name": topic, "partition": partition,
                     "committed_offset": offset, "log_start_offset": starts.get((topic, partition)), "log_end_offset": end,
                     "lag": None if offset is None or end is None else max(end - offset, 0),
                     "owner": owners.get((topic, partition)), "state": str(d.state)})
sys.stdout.write(json.dumps(rows))
"""
"""The floor of `lag show SERVICE`: the service's group from PostgreSQL, then the same admin calls for that one group."""

COLLECTOR_SCRIPT = r"""
import datetime as dt, json, resource, statistics, sys, threading, time
import psycopg
from loomctl.lag import cluster_loop as module  # where each cluster's cycle writes its samples
from loomctl.lag.collector import Collector
from loomctl.lag.samples import HISTORY_COLUMNS, _HISTORY_TYPES
from loomctl.settings import Settings

cycles = int(sys.argv[1])
copies = []
real_copy = module.copy_samples

def timed_copy(conn, samples, *args, **kwargs):
    start = time.perf_counter()
    count = real_copy(conn, samples, *args, **kwargs)
    copies.append((time.perf_counter() - start, count))
    return count

module.copy_samples = timed_copy
collector = Collector(Settings.from_env(), dt.timedelta(seconds=30), None)
took, kept, written = [], [], 0
try:
    for n in range(cycles + 1):  # the first cycle starts the snapshot child and reads the stored samples: not timed
        start = time.perf_counter()
        result = collector.cycle()
        if n:
            took.append(time.perf_counter() - start)
        written = result.written
        # the statuses are kept after the cycle, in the part of the interval it waits: timed apart, and done
        # before the next cycle as they would be 30 s later
        settled = collector.settle(120)
        if n and settled is not None:
            kept.append(settled)
finally:
    collector.close()
collector_rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # before the bare COPY's rows below
# one bare COPY of the same rows (the last cycle's, read back) into the same table, a second later
with psycopg.connect(Settings.from_env().database_url) as conn:
    (last,) = conn.execute("SELECT max(timestamp) FROM consumer_lag_history").fetchone()
    rows = conn.execute(f"SELECT {', '.join(HISTORY_COLUMNS)} FROM consumer_lag_history WHERE timestamp = %s", (last,)).fetchall()
    later = last + dt.timedelta(seconds=1)
    rows = [(r[0], r[1], r[2], later, *r[4:]) for r in rows]
    bare = []
    for k in range(3):
        rows = [(r[0], r[1], r[2], r[3] + dt.timedelta(seconds=1), *r[4:]) for r in rows]
        start = time.perf_counter()
        with conn.cursor() as cur:
            with cur.copy(f"COPY public.consumer_lag_history ({', '.join(HISTORY_COLUMNS)}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(list(_HISTORY_TYPES))
                for row in rows:
                    copy.write_row(row)
        conn.commit()
        bare.append(time.perf_counter() - start)
print(json.dumps({"cycle_s": took, "kept_s": kept, "rows": written, "copy_s": [c for c, _ in copies[1:]], "bare_copy_s": bare,
                  "rss_kb": collector_rss_kb,
                  "child_rss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""
"""`lag collect` cycles in a process of their own (its peak RSS, and its snapshot child's): per cycle the time, and
the time of its COPY; then one bare COPY of the last cycle's rows into the same table."""


@dataclass
class Workload:
    prefix: str
    topics: list[str]
    partitions: int
    log_end: dict[tuple[str, int], int] = field(default_factory=dict)
    groups: list[str] = field(default_factory=list)
    committed: dict[Key, int | None] = field(default_factory=dict)
    """Every partition of every topic a group consumes: its commit, None where it has none."""
    managed: list[str] = field(default_factory=list)




def _wait(futures: Iterable[Any], what: str, timeout: float = 120.0) -> None:
    for future in futures:
        try:
            future.result(timeout=timeout)
        except Exception as exc:
            raise SystemExit(f"{what} failed: {exc}") from None


def create_topics(admin: Any, work: Workload) -> None:
    """Create the topics, then wait until every partition answers list_offsets.

    A new partition is in the metadata at once but serves requests only once the broker has
    created its log (tens of seconds for 2,000 on a small machine); a producer that starts
    earlier spends that time in retries and metadata refreshes.
    """
    from confluent_kafka import TopicPartition
    from confluent_kafka.admin import NewTopic, OffsetSpec

    # in requests of at most 5,000 partitions: the broker refuses more in one ("Excessively large number of
    # partitions per request")
    step = max(1, 5000 // work.partitions)
    for start in range(0, len(work.topics), step):
        chunk = work.topics[start:start + step]
        _wait(admin.create_topics([NewTopic(t, work.partitions, 1) for t in chunk], operation_timeout=120).values(), "create_topics")
    waiting = [TopicPartition(t, p) for t in work.topics for p in range(work.partitions)]
    patience = max(300.0, 0.08 * len(waiting))  # a small broker creates the logs of 15,000 partitions in many minutes
    deadline = time.monotonic() + patience
    while waiting:
        futures = admin.list_offsets({tp: OffsetSpec.latest() for tp in waiting}, request_timeout=30)
        not_ready = []
        for tp, future in futures.items():
            try:
                future.result(timeout=60)
            except Exception:
                not_ready.append(tp)
        waiting = not_ready
        if waiting and time.monotonic() > deadline:
            raise SystemExit(f"{len(waiting)} partitions still have no leader after {patience:.0f} s")
        if waiting:
            time.sleep(0.5)


def produce(bootstrap: str, work: Workload, rng: random.Random) -> int:
    """A few records into every partition with one producer; the log end offsets come from the delivery reports."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "logger": quiet_logger()})
    errors: list[str] = []

    def delivered(err: Any, msg: Any) -> None:
        if err is not None:
            errors.append(str(err))
            return
        tp = (msg.topic(), msg.partition())
        work.log_end[tp] = max(work.log_end.get(tp, 0), msg.offset() + 1)

    count = 0
    for topic in work.topics:
        for partition in range(work.partitions):
            for _ in range(rng.randint(3, 12)):
                while True:
                    try:
                        producer.produce(topic, value=b"lag-bench", partition=partition, on_delivery=delivered)
                        break
                    except BufferError:  # the local queue is full (100,000 records): let deliveries drain it
                        producer.poll(0.5)
                count += 1
            producer.poll(0)
    if producer.flush(120) != 0 or errors:
        raise SystemExit(f"producing failed: {errors[:3] or 'records still queued after 120 s'}")
    return count


def plan_group(work: Workload, index: int, rng: random.Random) -> dict[tuple[str, int], int | None]:
    """The partitions group ``index`` consumes (1 to 3 topics) and its commit on each (None: no commit)."""
    count = len(work.topics)
    picks = [index % count]
    if index % 3:
        picks.append((index * 37 + 11) % count)
    if index % 5 == 0:
        picks.append((index * 53 + 29) % count)
    topics = [work.topics[i] for i in dict.fromkeys(picks)]
    plan: dict[tuple[str, int], int | None] = {}
    for topic in topics:
        for partition in range(work.partitions):
            end = work.log_end[(topic, partition)]
            if index % 7 == 3 and topic == topics[-1] and partition % 4 == 0:
                plan[(topic, partition)] = None  # a partition this group never committed on
                continue
            roll = rng.random()
            plan[(topic, partition)] = end if roll < 0.2 else 0 if roll < 0.3 else rng.randint(1, end - 1)
    return plan


def commit_groups(admin: Any, work: Workload, count: int, rng: random.Random) -> None:
    """Commit offsets for groups up to ``count`` in total, as `kafka-consumer-groups --reset-offsets` would.

    Each commit's answer is read partition by partition: on a fresh broker the first commits can come back with a
    partition error (the offsets topic's coordinator still loading) rather than fail, and a group committed that way
    was missing from both tools' figures. Such a group is committed again, up to ten times."""
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition

    planned: dict[str, list[Any]] = {}
    for index in range(len(work.groups), count):
        group = f"{work.prefix}-g{index:04d}"
        plan = plan_group(work, index, rng)
        work.groups.append(group)
        work.committed.update({(group, t, p): offset for (t, p), offset in plan.items()})
        planned[group] = [TopicPartition(t, p, offset) for (t, p), offset in plan.items() if offset is not None]
    todo = [g for g, offsets in planned.items() if offsets]
    for attempt in range(10):
        failed: list[str] = []
        for start in range(0, len(todo), 64):
            futures = {
                g: admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(g, planned[g])])[g]
                for g in todo[start : start + 64]
            }
            for group, future in futures.items():
                try:
                    answer = future.result(timeout=120)
                except Exception:
                    failed.append(group)
                    continue
                if any(tp.error for tp in answer.topic_partitions):
                    failed.append(group)
        if not failed:
            return
        todo = failed
        time.sleep(0.5 * (attempt + 1))
    raise SystemExit(f"alter_consumer_group_offsets failed for {len(todo)} groups, e.g. {todo[0]}")


AGAINST: list[Path] = []
"""The checkout of --against REV, when given: its `lag show` runs in the same rotation as this one's."""


def against_command(*args: str) -> list[str]:
    """``loomctl ARGS`` of the --against revision's package, whatever the venv has installed."""
    code = (f"import sys; sys.path.insert(0, {str(AGAINST[0])!r}); sys.argv = ['loomctl', *{list(args)!r}];"
            " from loomctl.cli import main; main()")
    return [sys.executable, "-c", code]


def loomctl_command() -> list[str]:
    script = Path(sys.executable).with_name("loomctl")
    return [str(script) if script.exists() else "loomctl"]


def manage_groups(work: Workload, count: int) -> None:
    """Give the first ``count`` groups a service config (one `config import`), so some rows are managed."""
    services = [{"service_name": f"{group}-svc", "consumer_group_id": group} for group in work.groups[:count]]
    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="lagbench-") as file:
        json.dump({"services": services}, file)
        file.flush()
        result = subprocess.run(
            [*loomctl_command(), "config", "import", file.name, "--yes", "--reason", "lag benchmark"], capture_output=True, text=True
        )
    if result.returncode != 0:
        raise SystemExit(f"loomctl config import failed: {result.stderr.strip()}")
    work.managed.extend(s["service_name"] for s in services)


def manage_all(work: Workload) -> None:
    """Give every group of the benchmark a service config (for the collector, which samples configured groups only)."""
    todo = [g for g in work.groups if f"{g}-svc" not in set(work.managed)]
    for start in range(0, len(todo), 2000):
        chunk = todo[start:start + 2000]
        services = [{"service_name": f"{group}-svc", "consumer_group_id": group} for group in chunk]
        with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="lagbench-") as file:
            json.dump({"services": services}, file)
            file.flush()
            result = subprocess.run(
                [*loomctl_command(), "config", "import", file.name, "--yes", "--reason", "lag benchmark"], capture_output=True, text=True
            )
        if result.returncode != 0:
            raise SystemExit(f"loomctl config import failed: {result.stderr.strip()}")
        work.managed.extend(s["service_name"] for s in services)


def delete_configs(services: list[str], reason: str) -> None:
    """The benchmark's configs of ``services`` in one transaction, through the call `config delete` makes (one process
    per service would start thousands at once)."""
    from loomctl import configs
    from loomctl.db import session_scope
    from loomctl.settings import Settings

    with session_scope(Settings.from_env()) as session:
        for service in services:
            configs.delete_config(session, service, actor="lag-benchmark", reason=reason)


def unmanage_beyond(work: Workload, keep: int) -> None:
    """Delete the configs `manage_all` added past the first ``keep``: the next size's `lag show` then reads stored
    samples of as many configured groups as the first one did, not of every group the collector sampled before
    (whose window, with no collector keeping it, is computed from the history: seconds at 2,000 groups)."""
    delete_configs(work.managed[keep:], "lag benchmark: next size")
    del work.managed[keep:]


def cleanup(admin: Any, work: Workload) -> None:
    if work.managed:
        try:
            delete_configs(work.managed, "lag benchmark done")
        except Exception as exc:  # the broker's leftovers still go below
            print(f"warning: the benchmark's service configs were not deleted: {exc}", file=sys.stderr)
    # in chunks, with room: one request deleting 10,000 groups (or 250 topics) outlasts a minute on a busy broker
    failed = 0
    for start in range(0, len(work.groups), 500):
        for future in admin.delete_consumer_groups(work.groups[start:start + 500], request_timeout=120).values():
            try:
                future.result(timeout=150)
            except Exception:
                failed += 1
    for start in range(0, len(work.topics), 50):
        for future in admin.delete_topics(work.topics[start:start + 50], operation_timeout=120, request_timeout=150).values():
            try:
                future.result(timeout=180)
            except Exception:
                failed += 1
    if failed:
        print(f"warning: {failed} consumer groups or topics of {work.prefix} were not deleted", file=sys.stderr)


def timed(argv: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-10:])
        raise SystemExit(f"{' '.join(argv[:6])} ... exited {result.returncode}:\n{tail}")
    return elapsed, result.stdout


def check_against_commits(work: Workload, loomctl_rows: list[dict[str, Any]], tool_rows: list[_kafka_tools.DescribedOffset] | None) -> list[str]:
    """Both tools against the offsets this benchmark committed and the log end offsets it produced."""
    problems: list[str] = []
    mine = set(work.groups)
    expected = {k: v for k, v in work.committed.items() if k[0] in mine}
    seen: dict[Key, dict[str, Any]] = {
        (r["consumer_group_id"], r["topic_name"], int(r["partition"])): r for r in loomctl_rows if r["consumer_group_id"] in mine
    }
    for key in sorted(expected.keys() - seen.keys()):
        problems.append(f"{key}: loomctl does not show it (committed {expected[key]})")
    for key in sorted(seen.keys() - expected.keys()):
        problems.append(f"{key}: loomctl shows a partition the group does not consume")
    for key in sorted(expected.keys() & seen.keys()):
        committed, end = expected[key], work.log_end[key[1:]]
        lag = None if committed is None else end - committed
        row = seen[key]
        service = f"{key[0]}-svc" if f"{key[0]}-svc" in work.managed else None
        if (row["service_name"], row["managed"]) != (service, service is not None):
            problems.append(f"{key}: loomctl service {row['service_name']!r} managed={row['managed']}, expected {service!r}")
        if (row["committed_offset"], row["log_end_offset"], row["lag"]) != (committed, end, lag):
            problems.append(
                f"{key}: loomctl committed/end/lag {row['committed_offset']}/{row['log_end_offset']}/{row['lag']}, "
                f"expected {committed}/{end}/{lag}"
            )
    if tool_rows is None:
        return problems
    shown = {r.key: r for r in tool_rows if r.group in mine}
    committed_keys = {k for k, v in expected.items() if v is not None}
    for key in sorted(committed_keys ^ shown.keys()):
        problems.append(f"{key}: kafka-consumer-groups {'misses' if key in committed_keys else 'adds'} it")
    for key in sorted(committed_keys & shown.keys()):
        committed, end = expected[key], work.log_end[key[1:]]
        row = shown[key]
        if (row.current_offset, row.log_end_offset, row.lag) != (committed, end, end - committed):  # type: ignore[operator]
            problems.append(f"{key}: kafka-consumer-groups {row.current_offset}/{row.log_end_offset}/{row.lag}, expected {committed}/{end}")
    return problems


@dataclass
class Stage:
    groups: int
    loomctl: list[float] = field(default_factory=list)
    tool: list[float] = field(default_factory=list)
    loomctl_start: list[float] = field(default_factory=list)
    """``loomctl --version``: the process start that every command pays (main stage only)."""
    tool_start: list[float] = field(default_factory=list)
    """``kafka-consumer-groups --version``: the JVM start and class loading."""
    floor: list[float] = field(default_factory=list)
    """FLOOR_SCRIPT: the same admin calls from a bare confluent-kafka script (the old floor)."""
    batched: list[float] = field(default_factory=list)
    """BATCHED_FLOOR_SCRIPT: the same calls with every group's offsets in one OffsetFetch per coordinator (the new floor)."""
    before: list[float] = field(default_factory=list)
    """The --against revision's `lag show --all-groups`."""
    service_before: list[float] = field(default_factory=list)
    service: list[float] = field(default_factory=list)
    """``loomctl lag show SERVICE -o json`` for one configured service (main stage only)."""
    service_floor: list[float] = field(default_factory=list)
    """SERVICE_FLOOR_SCRIPT for the same service."""
    collector: dict[str, Any] = field(default_factory=dict)
    """What COLLECTOR_SCRIPT reported (with --collector)."""

    @property
    def ratio(self) -> float:
        return statistics.median(self.tool) / statistics.median(self.loomctl) if self.tool else float("nan")

    @property
    def over_floor(self) -> float:
        return statistics.median(self.loomctl) / statistics.median(self.floor)

    @property
    def over_batched(self) -> float:
        return statistics.median(self.loomctl) / statistics.median(self.batched)


def measure(stage: Stage, runs: int, bootstrap: str, work: Workload, *, start_up: bool = False, tool: bool = True) -> list[str]:
    """Alternate the two commands ``runs`` times (swapping which goes first); check every pair of outputs.

    With ``start_up``, each tool's ``--version`` is timed in the same rotation, to show how much
    of each figure is the cost of starting the process.
    """
    ours = [*loomctl_command(), "lag", "show", "--all-groups", "--by", "partition", "-o", "json"]
    theirs = _kafka_tools.describe_groups_argv(bootstrap)
    problems: list[str] = []
    for run in range(runs):
        order = [
            ("loomctl", ours),
            ("floor", [sys.executable, "-c", FLOOR_SCRIPT, bootstrap]),
            ("batched", [sys.executable, "-c", BATCHED_FLOOR_SCRIPT, bootstrap]),
        ]
        if AGAINST:
            order.append(("before", against_command("lag", "show", "--all-groups", "--by", "partition", "-o", "json")))
        if tool:
            order.append(("tool", theirs))
        if start_up and tool:
            order += [
                ("loomctl_start", [*loomctl_command(), "--version"]),
                ("tool_start", _kafka_tools.tool_argv(_kafka_tools.CONSUMER_GROUP_COMMAND, "--version")),
            ]
        outputs: dict[str, str] = {}
        for name, argv in order if run % 2 == 0 else reversed(order):
            elapsed, outputs[name] = timed(argv)
            getattr(stage, name).append(elapsed)
        loomctl_rows = json.loads(outputs["loomctl"])
        ours_rows = {(r["consumer_group_id"], r["topic_name"], r["partition"]): r["lag"] for r in loomctl_rows}
        for floor in ("floor", "batched"):
            floor_rows = {(r["consumer_group_id"], r["topic_name"], r["partition"]): r["lag"] for r in json.loads(outputs[floor])}
            problems.extend(f"{k}: loomctl lag {ours_rows.get(k)}, {floor} {floor_rows.get(k)}"
                            for k in set(floor_rows) | set(ours_rows) if k[0] in work.groups and ours_rows.get(k) != floor_rows.get(k))
        if not tool:
            problems.extend(check_against_commits(work, loomctl_rows, None))
            continue
        tool_rows = _kafka_tools.parse_describe(outputs["tool"])
        comparison = _kafka_tools.compare_lag(loomctl_rows, tool_rows, set(work.groups))
        problems.extend(comparison.problems())
        problems.extend(check_against_commits(work, loomctl_rows, tool_rows))
        if run == 0:
            print(
                f"  {stage.groups} groups: {comparison.compared} partition rows compared, the same figures in both: "
                f"{'yes' if comparison.agree else 'NO'}; {comparison.loomctl_only_unknown} more rows only in loomctl, "
                "all without a commit (kafka-consumer-groups lists only committed partitions of a group without members)",
                flush=True,
            )
    return problems


def measure_service(stage: Stage, runs: int, work: Workload) -> list[str]:
    """`loomctl lag show SERVICE -o json` against SERVICE_FLOOR_SCRIPT, alternately; both must show the same lags."""
    service = work.managed[0]
    ours = [*loomctl_command(), "lag", "show", service, "-o", "json"]
    floor = [sys.executable, "-c", SERVICE_FLOOR_SCRIPT, os.environ["LOOM_DATABASE_URL"], os.environ["LOOM_KAFKA_BOOTSTRAP_SERVERS"], service]
    problems: list[str] = []
    timed(ours)  # warm
    for run in range(runs):
        outputs = {}
        order = [("service", ours), ("service_floor", floor)]
        if AGAINST:
            order.append(("service_before", against_command("lag", "show", service, "-o", "json")))
        for name, argv in order if run % 2 == 0 else reversed(order):
            elapsed, outputs[name] = timed(argv)
            getattr(stage, name).append(elapsed)
        mine = {(r["topic_name"], r["partition"]): r["lag"] for r in json.loads(outputs["service"])}
        bare = {(r["topic_name"], r["partition"]): r["lag"] for r in json.loads(outputs["service_floor"])}
        if mine != bare:
            problems.append(f"lag show {service}: {len(set(mine.items()) ^ set(bare.items()))} partitions differ from the bare script")
    return problems


def measure_collector(stage: Stage, work: Workload, cycles: int) -> None:
    """Every group configured, then COLLECTOR_SCRIPT's cycles in a process of their own."""
    started = time.perf_counter()
    manage_all(work)
    print(f"  {stage.groups} groups: every group configured for the collector (+{time.perf_counter() - started:.1f} s)", flush=True)
    _, output = timed([sys.executable, "-c", COLLECTOR_SCRIPT, str(cycles)])
    stage.collector = json.loads(output.strip().splitlines()[-1])
    if AGAINST:  # the --against revision's collector on the same groups, in a process of its own
        code = f"import sys; sys.path.insert(0, {str(AGAINST[0])!r}); sys.argv = ['-c', {str(cycles)!r}]\n" + COLLECTOR_SCRIPT
        _, output = timed([sys.executable, "-c", code])
        before = json.loads(output.strip().splitlines()[-1])
        stage.collector["before_cycle_s"] = before["cycle_s"]
        stage.collector["before_rss_kb"] = (before["rss_kb"], before["child_rss_kb"])
    # the floor of a cycle: the same calls for the configured groups (the collector's, not the listing's)
    import psycopg

    with psycopg.connect(os.environ["LOOM_DATABASE_URL"]) as conn:
        groups = [g for (g,) in conn.execute("SELECT consumer_group_id FROM pipeline_consumer_configs ORDER BY 1")]
    with tempfile.NamedTemporaryFile("w", suffix=".txt", prefix="lagbench-groups-") as file:
        file.write("\n".join(groups))
        file.flush()
        for key, script in (("floor_s", FLOOR_SCRIPT), ("batched_s", BATCHED_FLOOR_SCRIPT)):
            stage.collector[key] = []
            for _ in range(max(cycles, 3)):
                try:
                    stage.collector[key].append(timed([sys.executable, "-c", script, os.environ["LOOM_KAFKA_BOOTSTRAP_SERVERS"], file.name])[0])
                except SystemExit as exc:  # a floor that crashes (librdkafka aborted at 10,000 describes here) is said, not fatal
                    print(f"  {stage.groups} groups: the {key.removesuffix('_s')} script failed: {str(exc).splitlines()[-1]}", flush=True)
            if not stage.collector[key]:
                stage.collector[key] = [float("nan")]
    stage.collector["groups"] = len(groups)
    c = stage.collector
    cycle, floor = statistics.median(c["cycle_s"]), statistics.median(c["floor_s"])
    copy, bare = statistics.median(c["copy_s"]), statistics.median(c["bare_copy_s"])
    batched = statistics.median(c["batched_s"])
    if "before_cycle_s" in c:
        earlier = statistics.median(c["before_cycle_s"])
        print(f"  {stage.groups} groups: collector cycle {cycle:.3f} s, the --against revision's {earlier:.3f} s ({cycle / earlier:.2f}x);"
              f" its peak RSS {c['before_rss_kb'][0] / 1024:.0f} MB, snapshot child {c['before_rss_kb'][1] / 1024:.0f} MB", flush=True)
    print(f"  {stage.groups} groups: collector cycle {cycle:.3f} s for {c['rows']} rows, floor {floor:.3f} s + bare COPY {bare:.3f} s"
          f" ({cycle / (floor + bare):.2f}x), new floor {batched:.3f} s + bare COPY ({cycle / (batched + bare):.2f}x); its COPY {copy:.3f} s ({copy / bare:.2f}x the bare one); statuses kept after it: {_kept(c)}; peak RSS {c['rss_kb'] / 1024:.0f} MB,"
          f" snapshot child {c['child_rss_kb'] / 1024:.0f} MB", flush=True)


def _kept(c: dict[str, Any]) -> str:
    return f"{statistics.median(c['kept_s']):.3f} s" if c.get("kept_s") else "not kept"


def print_collector(stages: list[Stage]) -> None:
    print("\nlag collect at each size, every group configured:")
    print(f"{'groups':>6}  {'rows':>8}  {'cycle':>9}  {'floor':>8}  {'new floor':>9}  {'bare COPY':>9}  {'cycle/(floor+COPY)':>18}  {'cycle/(new+COPY)':>16}"
          f"  {'its COPY':>9}  {'COPY/bare':>9}  {'statuses kept':>13}  {'peak RSS (collector, snapshot child)':>36}")
    for stage in stages:
        c = stage.collector
        if not c:
            continue
        cycle, floor = statistics.median(c["cycle_s"]), statistics.median(c["floor_s"])
        copy, bare = statistics.median(c["copy_s"]), statistics.median(c["bare_copy_s"])
        batched = statistics.median(c["batched_s"])
        print(f"{stage.groups:>6}  {c['rows']:>8}  {cycle:7.3f} s  {floor:6.3f} s  {batched:7.3f} s  {bare:7.3f} s  {cycle / (floor + bare):17.2f}x  {cycle / (batched + bare):15.2f}x"
              f"  {copy:7.3f} s  {copy / bare:8.2f}x  {_kept(c):>13}  {c['rss_kb'] / 1024:14.0f} MB, {c['child_rss_kb'] / 1024:.0f} MB")
        if "before_cycle_s" in c:
            earlier = statistics.median(c["before_cycle_s"])
            print(f"{'':>6}  {'':>8}  --against revision: cycle {earlier:.3f} s (this one {cycle / earlier:.2f}x of it),"
                  f" peak RSS {c['before_rss_kb'][0] / 1024:.0f} MB, {c['before_rss_kb'][1] / 1024:.0f} MB")
    print("(cycle: snapshot in the collector's child, samples, COPY, commit; statuses kept: the refresh after it, off the cycle's path; floor: the bare script's calls for the configured groups, as a process of its own;"
          " target: cycle within 1.3x of floor + bare COPY, its COPY within 1.2x of the bare one)")


def print_stage(stage: Stage, tool: bool, against: str | None) -> None:
    med = statistics.median
    print(f"  {stage.groups} groups: loomctl {med(stage.loomctl):.3f} s, old floor {med(stage.floor):.3f} s ({stage.over_floor:.2f}x),"
          f" new floor {med(stage.batched):.3f} s ({stage.over_batched:.2f}x)"
          + (f", kafka-consumer-groups {med(stage.tool):.3f} s ({stage.ratio:.1f}x loomctl's)" if tool else "")
          + (f", {against} {med(stage.before):.3f} s" if stage.before else "") + f"; {len(stage.loomctl)} runs each", flush=True)


def growth(stages: list[Stage]) -> None:
    first, last = stages[0], stages[-1]
    factor = last.groups / first.groups
    print(f"\nscaling ({first.groups} -> {last.groups} groups, {factor:g}x):")
    for label, attr in (("loomctl lag show", "loomctl"), ("old floor (per group)", "floor"), ("new floor (batched)", "batched"),
                        ("kafka-consumer-groups", "tool")):
        if not getattr(first, attr):
            continue
        t0, t1 = statistics.median(getattr(first, attr)), statistics.median(getattr(last, attr))
        per_group = (t1 - t0) / (last.groups - first.groups) * 1000
        print(f"  {label:22} {t0:6.2f} s -> {t1:6.2f} s: {t1 / t0:4.2f}x the time for {factor:g}x the groups ({per_group:5.2f} ms per added group)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=200, help="groups of the main comparison (default 200)")
    parser.add_argument("--scale", default="50,100,200,400", help="group counts to time for scaling (default 50,100,200,400)")
    parser.add_argument("--topics", type=int, default=100)
    parser.add_argument("--partitions", type=int, default=20, help="partitions per topic (default 20: 2,000 in all)")
    parser.add_argument("--runs", type=int, default=5, help="alternating runs at --groups (default 5)")
    parser.add_argument("--scale-runs", type=int, default=3, help="alternating runs at the other counts (default 3)")
    parser.add_argument("--managed", type=int, default=10, help="groups given a service config (needs LOOM_DATABASE_URL)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-tool", action="store_true", help="time loomctl against the floor only, not kafka-consumer-groups")
    parser.add_argument("--service-runs", type=int, default=10, help="alternating runs of `lag show SERVICE` at --groups (0: none)")
    parser.add_argument("--against", metavar="REV", help="also time `lag show` of this git revision in the same rotation")
    parser.add_argument("--collector", type=int, default=0, metavar="CYCLES",
                        help="also configure every group and time this many collector cycles at each size (default 0: not)")
    args = parser.parse_args()
    tool = not args.no_tool

    bootstrap = os.environ.get("LOOM_KAFKA_BOOTSTRAP_SERVERS")
    if not bootstrap:
        print('LOOM_KAFKA_BOOTSTRAP_SERVERS is not set: eval "$(loomctl dev env)" first', file=sys.stderr)
        return 2
    try:
        if tool:
            _kafka_tools.tool_argv(_kafka_tools.CONSUMER_GROUP_COMMAND)
    except _kafka_tools.ToolUnavailable as exc:
        print(f"cannot run kafka-consumer-groups: {exc} (--no-tool times loomctl against the floor alone)", file=sys.stderr)
        return 2
    sizes = sorted({int(s) for s in args.scale.split(",") if s.strip()} | {args.groups})
    managed = args.managed if os.environ.get("LOOM_DATABASE_URL") else 0
    if args.against:
        checkout = Path(tempfile.mkdtemp(prefix="lagbench-against-")) / "tree"
        root = Path(__file__).resolve().parent.parent
        subprocess.run(["git", "-C", str(root), "worktree", "add", "--detach", "-q", str(checkout), args.against], check=True)
        AGAINST.append(checkout)
    try:
        return run(args, bootstrap, tool, sizes, managed)
    finally:
        if AGAINST:
            subprocess.run(["git", "-C", str(Path(__file__).resolve().parent.parent), "worktree", "remove", "--force", str(AGAINST[0])],
                           check=False)


def compile_bytecode() -> None:
    """loomctl's bytecode (and the --against checkout's), as an installed wheel has it: where PYTHONDONTWRITEBYTECODE is
    set, an editable install compiles its modules on every start (about 50 ms of each `lag show`), which the bare
    scripts it is timed against never pay."""
    import compileall

    import loomctl

    for tree in (Path(loomctl.__file__).parent, *(checkout / "loomctl" for checkout in AGAINST)):
        compileall.compile_dir(str(tree), quiet=1)


def run(args: argparse.Namespace, bootstrap: str, tool: bool, sizes: list[int], managed: int) -> int:
    from confluent_kafka.admin import AdminClient

    compile_bytecode()

    admin = AdminClient({"bootstrap.servers": bootstrap, "logger": quiet_logger()})
    rng = random.Random(args.seed)
    prefix = f"lagbench-{uuid.uuid4().hex[:8]}"
    work = Workload(prefix, [f"{prefix}-t{i:03d}" for i in range(args.topics)], args.partitions)
    others = len(admin.list_consumer_groups(request_timeout=30).result(timeout=40).valid)
    stages: list[Stage] = []
    problems: list[str] = []
    try:
        started = time.perf_counter()
        create_topics(admin, work)
        records = produce(bootstrap, work, rng)
        print(
            f"setup: {len(work.topics)} topics x {work.partitions} partitions = {len(work.log_end)} partitions, "
            f"{records} records in {time.perf_counter() - started:.1f} s; {others} other groups already on the broker",
            flush=True,
        )
        for size in sizes:
            started = time.perf_counter()
            commit_groups(admin, work, size, rng)
            if len(work.managed) < managed and len(work.groups) >= managed:
                manage_groups(work, managed)
            rows = sum(1 for k, v in work.committed.items() if v is not None)
            print(f"{size} groups: {rows} committed partitions (+{time.perf_counter() - started:.1f} s setup)", flush=True)
            if not stages:  # warm the page cache, .pyc files and the JVM's class data once
                timed([*loomctl_command(), "lag", "show", "--all-groups", "-o", "json"])
                if tool:
                    timed(_kafka_tools.describe_groups_argv(bootstrap))
            stage = Stage(size)
            main_stage = size == args.groups
            problems.extend(measure(stage, args.runs if main_stage else args.scale_runs, bootstrap, work, start_up=main_stage, tool=tool))
            print_stage(stage, tool, args.against)  # now, as well as in the table at the end: a later failure loses nothing
            if main_stage and args.service_runs and work.managed:
                problems.extend(measure_service(stage, args.service_runs, work))
            if args.collector and managed:
                measure_collector(stage, work, args.collector)
                unmanage_beyond(work, managed)
            stages.append(stage)
    finally:
        cleanup(admin, work)

    print(f"\n{'groups':>6}  {'loomctl lag show':>17}  {'old floor (per group)':>21}  {'loomctl/old':>11}  {'new floor (batched)':>20}  {'loomctl/new':>11}"
          + (f"  {'kafka-consumer-groups':>22}  {'ratio':>6}" if tool else "") + "   (median; min in brackets)")
    for stage in stages:
        print(
            f"{stage.groups:>6}  {statistics.median(stage.loomctl):6.3f} s ({min(stage.loomctl):5.3f})  "
            f"{statistics.median(stage.floor):10.3f} s ({min(stage.floor):5.3f})  {stage.over_floor:10.2f}x"
            f"  {statistics.median(stage.batched):9.3f} s ({min(stage.batched):5.3f})  {stage.over_batched:10.2f}x"
            + (f"  {statistics.median(stage.tool):11.3f} s ({min(stage.tool):6.3f})  {stage.ratio:5.1f}x" if tool else "")
            + (f"  before ({args.against}) {statistics.median(stage.before):6.3f} s, {statistics.median(stage.before) / statistics.median(stage.floor):.2f}x floor"
               + (f", {statistics.median(stage.tool) / statistics.median(stage.before):.1f}x faster than the tool" if tool else "")
               if stage.before else "")
            + f"  {len(stage.loomctl)} runs each, alternating"
        )
    main_stage = next(s for s in stages if s.groups == args.groups)
    print(f"\nloomctl at {args.groups} groups x {len(work.log_end)} partitions: {main_stage.over_floor:.2f}x the old floor (target <= 0.5x),"
          f" {main_stage.over_batched:.2f}x the new one (target <= 1.2x)")
    if tool:
        print(
            f"median ratio at {args.groups} groups x {len(work.log_end)} partitions, kafka-consumer-groups / loomctl: "
            f"{main_stage.ratio:.1f}x (target >= 20x)"
        )
    if main_stage.loomctl_start:
        ours_net = statistics.median(main_stage.loomctl) - statistics.median(main_stage.loomctl_start)
        theirs_net = statistics.median(main_stage.tool) - statistics.median(main_stage.tool_start)
        print(
            f"process start (--version): loomctl {statistics.median(main_stage.loomctl_start):.3f} s, "
            f"kafka-consumer-groups {statistics.median(main_stage.tool_start):.3f} s; net of it: loomctl {ours_net:.3f} s, "
            f"kafka-consumer-groups {theirs_net:.3f} s, {theirs_net / ours_net if ours_net > 0 else float('inf'):.1f}x"
        )
    if main_stage.service:
        ours, bare = statistics.median(main_stage.service), statistics.median(main_stage.service_floor)
        print(f"lag show SERVICE (one service, {len(main_stage.service)} runs each, alternating): loomctl {ours:.3f} s"
              f" (min {min(main_stage.service):.3f}), bare script (PostgreSQL + Kafka) {bare:.3f} s (min {min(main_stage.service_floor):.3f}):"
              f" {ours / bare:.2f}x (target <= 1.3x)"
              + (f"; before ({args.against}) {statistics.median(main_stage.service_before):.3f} s,"
                 f" {statistics.median(main_stage.service_before) / bare:.2f}x" if main_stage.service_before else ""))
    if any(stage.collector for stage in stages):
        print_collector(stages)
    if len(stages) > 1:
        growth(stages)
    unique = list(dict.fromkeys(problems))
    if unique:
        print(f"\nDISAGREEMENT: {len(unique)} figures differ (correctness, not speed):", file=sys.stderr)
        for line in unique[:20]:
            print(f"  {line}", file=sys.stderr)
        return 1
    if tool:
        print("\nagreement: both tools show the same committed offset, log end offset and lag on every partition both list,"
              " and both match the offsets committed; the floor shows the same lag as loomctl")
    else:
        print("\nagreement: loomctl matches the offsets committed, and the floor shows the same lag on every partition")
    return 0


if __name__ == "__main__":
    sys.exit(main())
