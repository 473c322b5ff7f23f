"""The snapshot in chunks (issue 22): the same answer as in one go, and a crash of its child process reported with
its stack, after which the collector asks in smaller chunks with a longer timeout."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import psycopg
import pytest

from support import commit, create_topics, own_database, produce, unique

GROUPS = 300
PARTITIONS = 2


@pytest.fixture(scope="module")
def many_groups(services, admin) -> list[str]:
    """GROUPS groups with commits on one or both of two topics, and one group the cluster does not know."""
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition

    prefix = unique("chunked")
    topics = create_topics(admin, [f"{prefix}-a", f"{prefix}-b"], PARTITIONS)
    for topic in topics:
        produce(services.bootstrap_servers, topic, {p: 30 for p in range(PARTITIONS)})
    groups = [f"{prefix}-g{i:03d}" for i in range(GROUPS)]

    def offsets_of(index: int) -> list[Any]:
        mine = topics if index % 3 == 0 else [topics[index % 2]]
        return [TopicPartition(t, p, (index + p) % 29 + 1) for t in mine for p in range(PARTITIONS)]

    # an accepted request may still refuse some partitions (a coordinator loading, a topic it does not know yet):
    # each answer is read partition by partition, and the groups it refused are committed again
    todo = list(range(GROUPS))
    for _attempt in range(10):
        refused: list[int] = []
        for start in range(0, len(todo), 32):
            batch = todo[start : start + 32]
            futures = {i: admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(groups[i], offsets_of(i))])[groups[i]]
                       for i in batch}  # fmt: skip
            for i, future in futures.items():
                try:
                    answer = future.result(timeout=60)
                except Exception:
                    refused.append(i)
                    continue
                if any(tp.error for tp in answer.topic_partitions):
                    refused.append(i)
        todo = refused
        if not todo:
            break
    assert not todo, f"groups {todo} refused their commits ten times"
    return [*groups, f"{prefix}-nobody"]


@pytest.mark.integration
def test_a_snapshot_in_small_chunks_says_what_one_in_a_single_chunk_says(admin, many_groups) -> None:
    from loomctl import kafka

    whole = kafka.snapshot(admin, many_groups, chunk_size=len(many_groups))
    chunked = kafka.snapshot(admin, many_groups, chunk_size=7, concurrency=3)
    assert len(whole.committed) == len(many_groups) and sum(1 for c in whole.committed.values() if c) == GROUPS
    assert chunked.committed == whole.committed
    assert chunked.groups == whole.groups
    assert chunked.missing_groups == whole.missing_groups == {many_groups[-1]}
    assert chunked.partition_counts == whole.partition_counts and len(whole.partition_counts) == 2
    assert chunked.offsets == whole.offsets
    assert kafka.describe_groups(admin, many_groups, chunk_size=11) == kafka.describe_groups(
        admin, many_groups, chunk_size=len(many_groups)
    )
    assert kafka.committed_offsets(admin, many_groups, concurrency=2) == whole.committed


def test_a_request_waits_longer_the_more_requests_are_queued_ahead_of_it() -> None:
    from loomctl.kafka import QUEUED_REQUEST_S, queued_timeout

    assert queued_timeout(2.0, 0) == 2.0
    assert queued_timeout(2.0, 314) == pytest.approx(2.0 + 314 * QUEUED_REQUEST_S)
    assert queued_timeout(2.0, 314) > queued_timeout(2.0, 64) > 2.0


def test_crashes_shrink_the_chunks_and_lengthen_the_timeout_within_bounds() -> None:
    from loomctl.kafka import MIN_CHUNK, SNAPSHOT_CHUNK
    from loomctl.lag.snapshot_worker import MAX_TIMEOUT_FACTOR, RECOVER_AFTER, SnapshotCrashed, SnapshotWorker
    from loomctl.settings import Settings

    worker = SnapshotWorker(Settings(bootstrap_servers="127.0.0.1:9"), 2.0)
    seen = []
    for _ in range(12):
        with pytest.raises(SnapshotCrashed):
            worker._crashed("the Kafka client stopped mid-request", hung=False)
        seen.append((worker.chunk_size, worker.timeout_s))
    assert seen[0] == (SNAPSHOT_CHUNK // 2, 3.0)
    assert [c for c, _ in seen] == sorted((c for c, _ in seen), reverse=True) and seen[-1][0] == MIN_CHUNK
    assert seen[-1][1] == 2.0 * MAX_TIMEOUT_FACTOR and all(t <= 2.0 * MAX_TIMEOUT_FACTOR for _, t in seen)
    assert worker.crashes == 12
    for _ in range(RECOVER_AFTER):
        worker._answered()
    assert worker.chunk_size == 2 * MIN_CHUNK and worker.timeout_s < 2.0 * MAX_TIMEOUT_FACTOR


@pytest.mark.integration
def test_a_crashed_snapshot_child_is_reported_with_its_stack_and_the_next_cycle_asks_in_smaller_chunks(
    database_factory, services, monkeypatch
) -> None:
    from loomctl.lag.collector import Collector
    from loomctl.lag.exporter import Exporter
    from loomctl.lag.snapshot_worker import CRASH_TEST_ENV
    from loomctl.settings import Settings

    topic, group = unique("crashed"), unique("g-crashed")
    create_topics(services.bootstrap_servers, [topic], PARTITIONS)
    produce(services.bootstrap_servers, topic, {p: 10 for p in range(PARTITIONS)})
    commit(services.bootstrap_servers, group, topic, {p: 4 for p in range(PARTITIONS)})
    with own_database(database_factory, "loomcrash") as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO pipeline_consumer_configs (service_name, consumer_group_id) VALUES (%s, %s)",
                (unique("crashed-svc"), group),
            )
        stop = threading.Event()
        events: list[tuple[str, str]] = []

        def on_event(level: str, message: str) -> None:
            events.append((level, message))
            if level == "warning":
                stop.set()  # the failed cycle is reported: end the run instead of waiting for the retry

        exporter = Exporter(interval=dt.timedelta(seconds=1))
        collector = Collector(
            Settings(database_url=url, bootstrap_servers=services.bootstrap_servers),
            interval=dt.timedelta(seconds=1),
            on_event=on_event,
            timeout_s=2.0,
            exporter=exporter,
        )
        try:
            monkeypatch.setenv(CRASH_TEST_ENV, "abort")  # the child started for this cycle calls os.abort()
            assert collector.run(stop) == 0
            monkeypatch.delenv(CRASH_TEST_ENV)
            warnings = [m for level, m in events if level == "warning"]
            assert len(warnings) == 1, events
            first, *stack = warnings[0].splitlines()
            assert "killed by SIGABRT" in first and "Fatal Python error: Aborted" in first
            assert "retrying in" in first
            assert any("Fatal Python error: Aborted" in line for line in stack)
            assert any("snapshot_worker.py" in line and "_worker_main" in line for line in stack), stack
            assert collector.snapshot_crashes == 1 and exporter.health.snapshot_crashes_total == 1
            assert "loomctl_collector_snapshot_crashes_total" in exporter.metrics().decode()
            worker = collector._loops["default"]._worker  # the default cluster's loop keeps its child's state
            assert worker is not None
            smaller, longer = worker.chunk_size, worker.timeout_s
            assert smaller < worker.default_chunk and longer > worker.base_timeout_s == 2.0
            assert f"chunks of {smaller} groups with a {longer:g} s timeout" in first

            result = collector.cycle()  # a fresh child, without the hook
            assert result.written == PARTITIONS
            assert (worker.chunk_size, worker.timeout_s) == (smaller, longer)
            assert collector.snapshot_crashes == 1
        finally:
            collector.close()
