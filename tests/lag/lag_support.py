"""What the lag tests share: topics with known contents, groups at known offsets, the CLI."""

from __future__ import annotations

import json
import uuid
from typing import Any

from typer.testing import CliRunner


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(timeout=30)


def produce(bootstrap: str, topic: str, per_partition: dict[int, int]) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for partition, count in per_partition.items():
        for i in range(count):
            producer.produce(topic, value=f"m{i}".encode(), key=f"k{i}".encode(), partition=partition)
    assert producer.flush(30) == 0


def commit(bootstrap: str, group: str, topic: str, offsets: dict[int, int]) -> None:
    """Commit as a real member of ``group`` would after consuming up to ``offsets`` (exclusive)."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        consumer.commit(offsets=[TopicPartition(topic, p, o) for p, o in offsets.items()], asynchronous=False)
    finally:
        consumer.close()


class LagCli:
    """The real root app (every group registered), pointed at one database and the session's broker."""

    def __init__(self, database_url: str | None, bootstrap: str) -> None:
        from loomctl.cli import app

        self.app = app
        self.base = ["--bootstrap-servers", bootstrap] + (["--database-url", database_url] if database_url else [])
        env = {"NO_COLOR": "1", "COLUMNS": "200", "LOOM_ACTOR": "tester", "LOOM_DATABASE_URL": None,
               "LOOM_KAFKA_BOOTSTRAP_SERVERS": None, "LOOM_KAFKA_CONFIG": None}
        self.runner = CliRunner(env=env)

    def __call__(self, *args: str) -> Any:
        return self.runner.invoke(self.app, [*self.base, *args], catch_exceptions=False)

    def json(self, *args: str) -> Any:
        result = self(*args, "-o", "json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)
