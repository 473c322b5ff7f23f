"""What the `partitions` tests share: a CLI runner on the real database and broker, topics, rows."""

from __future__ import annotations

import json
import uuid
from typing import Any

import psycopg
from typer.testing import CliRunner

from loomctl.cli import app


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class Cli:
    """`loomctl --database-url ... --bootstrap-servers ... partitions ...` through CliRunner."""

    def __init__(self, database_url: str, bootstrap_servers: str | None) -> None:
        self.database_url = database_url
        self.bootstrap_servers = bootstrap_servers
        self.runner = CliRunner(env={"NO_COLOR": "1", "COLUMNS": "200", "LOOM_ACTOR": "tester",
                                     "LOOM_KAFKA_BOOTSTRAP_SERVERS": None, "LOOM_KAFKA_CONFIG": None})

    def __call__(self, *args: str, input: str | None = None) -> Any:
        base = ["--database-url", self.database_url]
        if self.bootstrap_servers:
            base += ["--bootstrap-servers", self.bootstrap_servers]
        return self.runner.invoke(app, [*base, "partitions", *args], input=input, catch_exceptions=False)

    def json(self, *args: str, expect: int = 0) -> Any:
        result = self(*args, "-o", "json")
        assert result.exit_code == expect, result.output
        return json.loads(result.stdout)


def rows(conn: psycopg.Connection, topic: str) -> list[dict[str, Any]]:
    """Every change of ``topic``, oldest first."""
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        cur.execute("SELECT * FROM topic_partition_changes WHERE topic_name = %s ORDER BY id", [topic])
        return cur.fetchall()


def insert_change(conn: psycopg.Connection, topic: str, current: int, recommended: int, reason: str = "test") -> int:
    """A pending change written as the guide's SQL does, bypassing the live checks of `partitions add`."""
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO topic_partition_changes (topic_name, current_partitions, recommended_partitions, reason)"
            " VALUES (%s, %s, %s, %s) RETURNING id", [topic, current, recommended, reason])
        return cur.fetchone()[0]


def partition_count(admin: Any, topic: str) -> int | None:
    metadata = admin.list_topics(topic=topic, timeout=10)
    found = metadata.topics.get(topic)
    return len(found.partitions) if found is not None and found.error is None else None
