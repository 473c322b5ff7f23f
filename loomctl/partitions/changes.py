"""The changes table, `topic_partition_changes`: its rows, their statuses, manual changes, the guide's script and view."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from loomctl import kafka, validation
from loomctl.errors import BadInput, Conflict, NotFound

if TYPE_CHECKING:
    from confluent_kafka.admin import AdminClient
    from sqlalchemy.orm import Session


class Status:
    """A change's ``status``; the table's CHECK constraint (models.py) allows exactly these."""

    PENDING = "pending"
    APPLIED = "applied"
    FAILED = "failed"
    SUPERSEDED = "superseded"
    CANCELLED = "cancelled"


STATUSES = (Status.PENDING, Status.APPLIED, Status.FAILED, Status.SUPERSEDED, Status.CANCELLED)
CANCELLABLE = (Status.PENDING, Status.FAILED)
MAX_PARTITIONS = 100_000
"""The most partitions a topic can be given through the client: librdkafka refuses a larger count in NewPartitions
(``new_total_cnt out of expected range 1..100000``) before anything is sent."""


def over_client_limit(topic: str, partitions: int) -> str | None:
    """Why ``partitions`` cannot be asked for (more than :data:`MAX_PARTITIONS`), or None."""
    if partitions > MAX_PARTITIONS:
        return f"{topic}: {partitions:,} partitions is more than a topic can be given through the client ({MAX_PARTITIONS:,})"
    return None


LISTED = (Status.PENDING, Status.APPLIED, Status.FAILED, Status.CANCELLED)
"""The statuses `partitions list` has a flag for (superseded changes show only with --all)."""


def chosen_statuses(flags: Sequence[bool], every: bool = False) -> list[str] | None:
    """The statuses whose flag is set (``flags`` in the order of :data:`LISTED`), pending when none is, and None
    (every status, superseded too) with ``every``."""
    if every:
        return None
    return [status for status, on in zip(LISTED, flags, strict=True) if on] or [Status.PENDING]


"""A change not yet applied: pending, or failed (which `apply --retry-failed` would try again)."""


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
    cancelled_at: dt.datetime | None = None
    cancelled_by: str | None = None
    cancel_reason: str | None = None
    cluster_name: str = "default"
    """The cluster whose topic this is."""

    @classmethod
    def from_row(cls, row: Any) -> PartitionChange:
        return cls(**row._mapping)


SELECT_LIST = ", ".join(f.name for f in fields(PartitionChange))
"""The columns a PartitionChange is read from, for ``SELECT {SELECT_LIST} FROM topic_partition_changes``."""


def insert_change(
    session: "Session", topic: str, current: int, recommended: int, reason: str, source: str, cluster: str = "default"
) -> int:
    """A new pending change; its id. The table's trigger supersedes the topic's older pending one (of its cluster)."""
    from sqlalchemy import text

    return session.execute(
        text("""
        INSERT INTO topic_partition_changes (topic_name, current_partitions, recommended_partitions, reason, source,
                                             cluster_name)
        VALUES (:t, :c, :r, :reason, :source, :cluster) RETURNING id"""),
        {"t": topic, "c": current, "r": recommended, "reason": reason, "source": source, "cluster": cluster},
    ).scalar_one()


def pending_clusters(session: "Session", topics: Sequence[str] | None = None) -> list[str]:
    """The clusters with pending (or failed) changes of ``topics`` (None: any), by name."""
    from sqlalchemy import text

    return list(
        session.execute(
            text("""
            SELECT DISTINCT cluster_name FROM topic_partition_changes
             WHERE status IN ('pending', 'failed') AND (:every OR topic_name = ANY(:topics)) ORDER BY 1"""),
            {"every": not topics, "topics": list(topics or [])},
        ).scalars()
    )


def add_change(
    session: "Session",
    admin: "AdminClient",
    topic: str,
    partitions: int,
    reason: str,
    *,
    timeout: float = kafka.DEFAULT_TIMEOUT_S,
    cluster: str = "default",
) -> PartitionChange:
    """A manual pending change of a topic of ``cluster`` (``admin`` is that cluster's), checked against the live
    topic: it must exist and the count must go up."""
    from sqlalchemy import text

    validation.check_topic(topic)
    if not reason or not reason.strip():
        raise BadInput("a manual change needs a --reason")
    current = kafka.topic_partition_counts(admin, [topic], timeout=timeout).get(topic)
    if current is None:
        raise NotFound(f"topic {topic} does not exist in the cluster" + ("" if cluster == "default" else f" {cluster}"))
    if partitions <= current:
        raise BadInput(f"{topic} has {current} partition(s) now: a change must raise the count (Kafka cannot remove partitions)")
    too_many = over_client_limit(topic, partitions)
    if too_many:
        raise BadInput(too_many)
    # the broker's own limits and policies, asked without changing anything (validate_only)
    refusal = kafka.create_partitions(admin, {topic: partitions}, validate_only=True, timeout=timeout).get(topic)
    if refusal is not None and not refusal[1]:
        raise BadInput(f"{topic}: the broker refuses {partitions:,} partitions: {refusal[0]}")
    change_id = insert_change(session, topic, current, partitions, reason.strip(), Source.MANUAL, cluster)
    row = session.execute(text(f"SELECT {SELECT_LIST} FROM topic_partition_changes WHERE id = :id"), {"id": change_id}).one()
    return PartitionChange.from_row(row)


def list_changes(
    session: "Session",
    statuses: Sequence[str] | None = (Status.PENDING,),
    topics: Sequence[str] | None = None,
    cluster: str | None = None,
) -> list[PartitionChange]:
    """Changes with one of ``statuses`` (None: all) of ``cluster`` (None: every one), by topic, oldest first."""
    from sqlalchemy import text

    unknown = set(statuses or ()) - set(STATUSES)
    if unknown:
        raise BadInput(f"unknown status {sorted(unknown)[0]!r}: one of {', '.join(STATUSES)}")
    rows = session.execute(
        text(f"""
        SELECT {SELECT_LIST} FROM topic_partition_changes
         WHERE (:every_status OR status = ANY(:statuses)) AND (:every_topic OR topic_name = ANY(:topics))
           AND (CAST(:cluster AS text) IS NULL OR cluster_name = :cluster)
         ORDER BY topic_name, cluster_name, id"""),
        {
            "cluster": cluster,
            "every_status": statuses is None,
            "statuses": list(statuses or []),
            "every_topic": not topics,
            "topics": list(topics or []),
        },
    ).all()
    return [PartitionChange.from_row(r) for r in rows]


def cancel_change(session: "Session", change: str, *, reason: str, actor: str, cluster: str | None = None) -> PartitionChange:
    """Cancel a change that is not applied yet: ``change`` is its id, or a topic (its pending change, else
    its newest failed one). Recorded on the row: who, when and why. A change an `apply` is working on
    right now is a Conflict; an applied, superseded or cancelled one cannot be cancelled (BadInput)."""
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    validation.check_text("--reason", reason.strip(), limit=validation.DESCRIPTION_MAX, multiline=True)
    if not reason.strip():
        raise BadInput("cancelling a change needs a --reason")
    validation.check_text("--actor", actor, limit=validation.ACTOR_MAX)
    by_id = re.fullmatch(r"[0-9]{1,30}", change, re.ASCII) is not None
    if by_id and int(change) > 2**63 - 1:
        raise NotFound(f"no partition change {change}")
    if not by_id:
        validation.check_text("topic", change, limit=249)
    if not by_id and cluster is None:
        clusters = pending_clusters(session, [change])
        if len(clusters) > 1:
            raise BadInput(f"topic {change} has changes on clusters {', '.join(clusters)}: pick one with --cluster")
    where = "id = :id" if by_id else "topic_name = :topic AND status = ANY(:cancellable)"
    if cluster is not None:
        where += " AND cluster_name = :cluster"
    params = {"id": int(change) if by_id else None, "topic": change, "cancellable": list(CANCELLABLE), "cluster": cluster}
    try:
        row = session.execute(
            text(f"""
            SELECT {SELECT_LIST} FROM topic_partition_changes WHERE {where}
             ORDER BY status = 'pending' DESC, id DESC LIMIT 1 FOR UPDATE NOWAIT"""),
            params,
        ).first()
    except OperationalError as exc:
        if getattr(exc.orig, "sqlstate", None) == "55P03":  # lock_not_available: an apply holds the row
            raise Conflict(f"partition change {change} is being applied right now; cancel it after that run") from None
        raise
    if row is None:
        raise NotFound(f"no partition change {change}" if by_id else f"no pending or failed partition change for topic {change}")
    found = PartitionChange.from_row(row)
    if found.status not in CANCELLABLE:
        raise BadInput(
            f"partition change {found.id} ({found.topic_name}) is {found.status}: only a pending or failed "
            "change can be cancelled"
        )
    updated = session.execute(
        text(f"""
        UPDATE topic_partition_changes
           SET status = 'cancelled', cancelled_at = now(), cancelled_by = :actor, cancel_reason = :reason
         WHERE id = :id RETURNING {SELECT_LIST}"""),
        {"id": found.id, "actor": actor, "reason": reason.strip()},
    ).one()
    return PartitionChange.from_row(updated)


def update_script(session: "Session") -> str:
    """The guide's kafka-topics lines for every pending change (``generate_partition_update_script()``)."""
    from sqlalchemy import text

    return session.execute(text("SELECT generate_partition_update_script()")).scalar_one()


def efficiency(session: "Session", topics: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """The rows of ``v_partition_efficiency``, by topic."""
    from sqlalchemy import text

    rows = session.execute(
        text("""
        SELECT * FROM v_partition_efficiency WHERE (:every OR topic_name = ANY(:topics)) ORDER BY topic_name"""),
        {"every": not topics, "topics": list(topics or [])},
    ).all()
    return [dict(r._mapping) for r in rows]
