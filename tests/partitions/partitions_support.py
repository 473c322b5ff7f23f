"""What the `partitions` tests share besides tests/support.py: the rows of `topic_partition_changes`."""

from __future__ import annotations

from typing import Any

import psycopg


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
