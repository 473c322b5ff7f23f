"""The changes table, `topic_partition_changes`: its rows, their statuses, manual changes, the guide's script and view."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from loomctl import kafka
from loomctl.errors import BadInput, NotFound

if TYPE_CHECKING:
    from confluent_kafka.admin import AdminClient
    from sqlalchemy.orm import Session


class Status:
    """A change's ``status``; the table's CHECK constraint (models.py) allows exactly these."""

    PENDING = "pending"
    APPLIED = "applied"
    FAILED = "failed"
    SUPERSEDED = "superseded"


STATUSES = (Status.PENDING, Status.APPLIED, Status.FAILED, Status.SUPERSEDED)


class Source:
    """Who proposed a change (the ``source`` column)."""

    MANUAL = "manual"
    RECOMMEND = "recommend"


@dataclass(frozen=True)
class PartitionChange:
    id: int
    topic_name: str
    current_partitions: int
    recommended_partitions: int
    status: str
    source: str
    reason: str
    error: str | None
    created_at: dt.datetime
    applied_at: dt.datetime | None
    applied_by: str | None

    @classmethod
    def from_row(cls, row: Any) -> PartitionChange:
        return cls(**row._mapping)


SELECT_LIST = ", ".join(f.name for f in fields(PartitionChange))
"""The columns a PartitionChange is read from, for ``SELECT {SELECT_LIST} FROM topic_partition_changes``."""


def insert_change(session: "Session", topic: str, current: int, recommended: int, reason: str, source: str) -> int:
    """A new pending change; its id. The table's trigger supersedes the topic's older pending one."""
    from sqlalchemy import text

    return session.execute(text("""
        INSERT INTO topic_partition_changes (topic_name, current_partitions, recommended_partitions, reason, source)
        VALUES (:t, :c, :r, :reason, :source) RETURNING id"""),
        {"t": topic, "c": current, "r": recommended, "reason": reason, "source": source}).scalar_one()


def add_change(
    session: "Session", admin: "AdminClient", topic: str, partitions: int, reason: str, *, timeout: float = kafka.DEFAULT_TIMEOUT_S
) -> PartitionChange:
    """A manual pending change, checked against the live topic: it must exist and the count must go up."""
    from sqlalchemy import text

    if not reason or not reason.strip():
        raise BadInput("a manual change needs a --reason")
    current = kafka.topic_partition_counts(admin, [topic], timeout=timeout).get(topic)
    if current is None:
        raise NotFound(f"topic {topic} does not exist in the cluster")
    if partitions <= current:
        raise BadInput(
            f"{topic} has {current} partition(s) now: a change must raise the count (Kafka cannot remove partitions)"
        )
    change_id = insert_change(session, topic, current, partitions, reason.strip(), Source.MANUAL)
    row = session.execute(text(f"SELECT {SELECT_LIST} FROM topic_partition_changes WHERE id = :id"), {"id": change_id}).one()
    return PartitionChange.from_row(row)


def list_changes(
    session: "Session", statuses: Sequence[str] | None = (Status.PENDING,), topics: Sequence[str] | None = None
) -> list[PartitionChange]:
    """Changes with one of ``statuses`` (None: all), by topic, oldest first."""
    from sqlalchemy import text

    unknown = set(statuses or ()) - set(STATUSES)
    if unknown:
        raise BadInput(f"unknown status {sorted(unknown)[0]!r}: one of {', '.join(STATUSES)}")
    rows = session.execute(text(f"""
        SELECT {SELECT_LIST} FROM topic_partition_changes
         WHERE (:every_status OR status = ANY(:statuses)) AND (:every_topic OR topic_name = ANY(:topics))
         ORDER BY topic_name, id"""),
        {"every_status": statuses is None, "statuses": list(statuses or []),
         "every_topic": not topics, "topics": list(topics or [])}).all()
    return [PartitionChange.from_row(r) for r in rows]


def update_script(session: "Session") -> str:
    """The guide's kafka-topics lines for every pending change (``generate_partition_update_script()``)."""
    from sqlalchemy import text

    return session.execute(text("SELECT generate_partition_update_script()")).scalar_one()


def efficiency(session: "Session", topics: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """The rows of ``v_partition_efficiency``, by topic."""
    from sqlalchemy import text

    rows = session.execute(text("""
        SELECT * FROM v_partition_efficiency WHERE (:every OR topic_name = ANY(:topics)) ORDER BY topic_name"""),
        {"every": not topics, "topics": list(topics or [])}).all()
    return [dict(r._mapping) for r in rows]
