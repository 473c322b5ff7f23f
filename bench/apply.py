"""Growing many topics: one `loomctl partitions apply --yes` against one `kafka-topics --alter` per topic.

On the real broker and database (LOOM_KAFKA_BOOTSTRAP_SERVERS and LOOM_DATABASE_URL, e.g. from
`eval "$(loomctl dev env)"`) it creates 2 x N fresh topics of one partition (N = 100 by
default). For the first N it stores a pending change 1 -> 2 and times one `loomctl partitions
apply --yes` for all of them: the plan (counts, consuming groups, keys), validate_only, one
create_partitions request, and the read-back of every new count from the metadata. For the
other N it times N runs of `kafka-topics --alter --topic T --partitions 2` (TopicCommand from
the same Kafka jars as the local broker, with the JVM options of Kafka's launcher script), one
after the other, as the guide's generated script runs them. Both sides run in this one run, and
each side's result is checked in the cluster afterwards.

Target: loomctl 20x faster or better. The benchmark never fails on slowness; it exits 1 when a
side left a topic without its new count, 2 when it cannot run here.

Usage: python bench/apply.py [--topics 100]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loomctl.devstack import kafka_tools as _kafka_tools  # noqa: E402
from loomctl.kafka import quiet_logger  # noqa: E402

TOPIC_COMMAND = "org.apache.kafka.tools.TopicCommand"




def create_topics(admin, names: list[str]) -> None:
    from confluent_kafka.admin import NewTopic

    for future in admin.create_topics([NewTopic(n, 1, 1) for n in names], operation_timeout=60).values():
        future.result(timeout=120)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # every topic visible in the metadata before the clocks start
        if counts(admin, names).keys() >= set(names):
            return
        time.sleep(0.2)
    raise RuntimeError("created topics did not show in the metadata within 60 s")


def counts(admin, names: list[str]) -> dict[str, int]:
    metadata = admin.list_topics(timeout=30)
    return {n: len(metadata.topics[n].partitions) for n in names if n in metadata.topics}


def store_changes(database_url: str, names: list[str]) -> None:
    import psycopg

    with psycopg.connect(database_url) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO topic_partition_changes (topic_name, current_partitions, recommended_partitions, reason, source)"
            " VALUES (%s, 1, 2, 'bench/apply.py', 'manual')",
            [(n,) for n in names],
        )


def remove_changes(database_url: str, names: list[str]) -> None:
    import psycopg

    with psycopg.connect(database_url) as conn:
        conn.execute("DELETE FROM topic_partition_changes WHERE topic_name = ANY(%s)", [names])


def time_loomctl(names: list[str], env: dict[str, str]) -> tuple[float, dict[str, str]]:
    script = Path(sys.executable).with_name("loomctl")
    command = [str(script), "partitions", "apply", "--yes", "-o", "json", *names]
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"loomctl partitions apply exited {result.returncode}:\n{result.stderr[-2000:]}")
    return elapsed, {r["topic_name"]: r["outcome"] for r in json.loads(result.stdout)["results"]}


def time_kafka_topics(bootstrap: str, names: list[str]) -> float:
    started = time.perf_counter()
    for name in names:
        _kafka_tools.run_tool(TOPIC_COMMAND, "--bootstrap-server", bootstrap, "--alter", "--topic", name, "--partitions", "2")
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topics", type=int, default=100, help="topics grown by each side (default 100)")
    args = parser.parse_args()

    bootstrap = os.environ.get("LOOM_KAFKA_BOOTSTRAP_SERVERS")
    database_url = os.environ.get("LOOM_DATABASE_URL")
    if not bootstrap or not database_url:
        print('LOOM_DATABASE_URL and LOOM_KAFKA_BOOTSTRAP_SERVERS must be set: eval "$(loomctl dev env)" first', file=sys.stderr)
        return 2
    try:
        _kafka_tools.tool_argv(TOPIC_COMMAND)
    except _kafka_tools.ToolUnavailable as exc:
        print(f"cannot run kafka-topics: {exc}", file=sys.stderr)
        return 2

    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap, "logger": quiet_logger()})
    prefix = f"applybench-{uuid.uuid4().hex[:8]}"
    ours = [f"{prefix}-loomctl-{i:03d}" for i in range(args.topics)]
    theirs = [f"{prefix}-kafka-topics-{i:03d}" for i in range(args.topics)]
    env = {**os.environ, "LOOM_ACTOR": "bench", "NO_COLOR": "1"}
    problems: list[str] = []
    try:
        started = time.perf_counter()
        create_topics(admin, ours + theirs)
        store_changes(database_url, ours)
        groups = len(admin.list_consumer_groups(request_timeout=30).result(timeout=40).valid)
        print(f"setup: {2 * args.topics} topics of 1 partition, {args.topics} pending changes, "
              f"in {time.perf_counter() - started:.1f} s; {groups} consumer groups on the broker", flush=True)

        loomctl_s, outcomes = time_loomctl(ours, env)
        print(f"loomctl partitions apply --yes ({args.topics} topics, one run): {loomctl_s:8.2f} s", flush=True)
        kafka_s = time_kafka_topics(bootstrap, theirs)
        print(f"kafka-topics --alter x {args.topics} (one after the other):   {kafka_s:8.2f} s "
              f"({kafka_s / args.topics * 1000:.0f} ms per topic)", flush=True)

        after = counts(admin, ours + theirs)
        wrong = [n for n in ours + theirs if after.get(n) != 2]
        if wrong:
            problems.append(f"{len(wrong)} topic(s) without 2 partitions afterwards, e.g. {wrong[0]}")
        not_applied = [n for n in ours if outcomes.get(n) != "applied"]
        if not_applied:
            problems.append(f"loomctl did not report {len(not_applied)} change(s) applied, e.g. {not_applied[0]}")
        ratio = kafka_s / loomctl_s
        print(f"ratio kafka-topics / loomctl: {ratio:.1f}x (target >= 20x)")
    finally:
        for future in admin.delete_topics(ours + theirs, operation_timeout=60).values():
            try:
                future.result(timeout=120)
            except Exception:  # a topic that was never created: nothing to remove
                pass
        remove_changes(database_url, ours)
    for problem in problems:
        print(f"PROBLEM: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
