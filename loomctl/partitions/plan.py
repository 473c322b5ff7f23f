"""The plan: each pending change against the cluster now, with its consuming groups, keys and risks.

A plan taken with ``lock`` holds its pending rows (``FOR UPDATE SKIP LOCKED``) for the rest of
the transaction and reads the live counts after taking the locks, so two `apply` runs at once
never plan the same change.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from loomctl import kafka, validation
from loomctl.partitions.changes import SELECT_LIST, PartitionChange

if TYPE_CHECKING:
    from confluent_kafka.admin import AdminClient
    from sqlalchemy.orm import Session

GROUP_HISTORY_WINDOW = dt.timedelta(hours=1)
"""Groups the lag history saw on a topic this recently count as its consumers even when idle now.

The cluster's committed offsets already name every group that ever committed on the topic, idle
ones included; the history adds those whose offsets expired. An hour of it is a time-range scan
of the history's key (a day would read a day of every topic's samples)."""

SATISFIED = "already satisfied"
"""The topic has the count already: a plan's action and, the same word, an apply's outcome."""


class PlanAction:
    """What the plan does with a change (``PlanItem.action``)."""

    INCREASE = "increase"
    SATISFIED = SATISFIED
    TOPIC_MISSING = "topic missing"


@dataclass(frozen=True)
class ConsumingGroup:
    consumer_group_id: str
    service_name: str | None
    """The service whose config names this group; None for a group loomctl does not manage."""
    auto_offset_reset: str | None
    state: str | None
    """The group's state in the cluster now; None when only the lag history knows it."""
    member_count: int | None


@dataclass(frozen=True)
class PlanItem:
    change_id: int
    topic_name: str
    recorded_partitions: int
    """The count when the change was recommended."""
    current_partitions: int | None
    """The count in the cluster now; None when the topic is missing."""
    target_partitions: int
    action: str
    """An :class:`PlanAction`: ``increase``, ``already satisfied`` or ``topic missing``."""
    keyed: str
    """``yes``, ``no`` or ``unknown``: whether the newest records of the topic carry keys."""
    consumer_groups: list[ConsumingGroup]
    risks: list[str]
    needs_force: bool
    """A consumer with auto_offset_reset=latest would skip records: apply refuses without --force."""
    reason: str
    source: str

    @property
    def warnings(self) -> list[str]:
        """The risks of altering the topic; empty unless it is an increase (the other risks say why not)."""
        return self.risks if self.action == PlanAction.INCREASE else []

    @property
    def risk_flags(self) -> list[str]:
        """The risks of an increase in a few words each, for a table cell."""
        if self.action != PlanAction.INCREASE:
            return []
        flags = ["key ordering"] if self.keyed == kafka.Keyed.YES else []
        if self.needs_force:
            flags.append("latest reset (--force)")
        if any(g.service_name is None for g in self.consumer_groups):
            flags.append("unmanaged group")
        if self.current_partitions != self.recorded_partitions:
            flags.append(f"recorded at {self.recorded_partitions}")
        return flags

    def refused(self, force: bool) -> bool:
        """Apply leaves this increase alone: a consumer would skip records and ``force`` is not given."""
        return self.needs_force and not force


@dataclass(frozen=True)
class Plan:
    items: list[PlanItem]
    locked_elsewhere: list[str] = field(default_factory=list)
    """Topics whose pending change another `apply` is working on right now (skipped)."""
    not_pending: list[str] = field(default_factory=list)
    """Topics asked for that have no pending change."""

    @property
    def nothing_pending(self) -> bool:
        """No pending change at all, not even one another `apply` holds."""
        return not self.items and not self.locked_elsewhere

    def to_alter(self, force: bool = False) -> list[PlanItem]:
        """The items `apply` sends to the cluster: all but those already satisfied and those refused without ``force``.

        A missing topic is sent too: the broker's answer is what marks its change failed.
        """
        return [i for i in self.items if i.action != PlanAction.SATISFIED and not i.refused(force)]


def plan_changes(
    session: "Session",
    admin: "AdminClient",
    topics: Sequence[str] | None = None,
    *,
    lock: bool = False,
    retry_failed: bool = False,
    kafka_properties: Mapping[str, str] | None = None,
    timeout: float = kafka.DEFAULT_TIMEOUT_S,
    cluster: str = "default",
) -> Plan:
    """Each pending change against the cluster now: counts, consuming groups, keys and risks.

    With ``lock`` the pending rows are locked for the rest of the session's transaction
    (``FOR UPDATE SKIP LOCKED``): the plan holds only changes no other `apply` is working on,
    and the live counts are read after the locks are taken. ``retry_failed`` adds each topic's
    failed change when it is the topic's newest one (its cause may have been fixed since).
    """
    from sqlalchemy import text

    for topic in topics or ():
        validation.check_topic(topic)

    params = {"every": not topics, "topics": list(topics or []), "retry": retry_failed, "cluster": cluster}
    query = f"""
        SELECT {SELECT_LIST} FROM topic_partition_changes AS c
         WHERE (c.status = 'pending'
                OR (:retry AND c.status = 'failed' AND NOT EXISTS (
                        SELECT 1 FROM topic_partition_changes AS n
                         WHERE n.topic_name = c.topic_name AND n.cluster_name = c.cluster_name AND n.id > c.id)))
           AND (:every OR c.topic_name = ANY(:topics)) AND c.cluster_name = :cluster
         ORDER BY c.topic_name, c.id"""
    rows = session.execute(text(query + (" FOR UPDATE SKIP LOCKED" if lock else "")), params)
    changes = [PartitionChange.from_row(r) for r in rows]
    locked_elsewhere: list[str] = []
    if lock:
        mine = {c.id for c in changes}
        every = [PartitionChange.from_row(r) for r in session.execute(text(query), params)]
        locked_elsewhere = sorted({c.topic_name for c in every if c.id not in mine})
    not_pending = sorted(set(topics or ()) - {c.topic_name for c in changes} - set(locked_elsewhere))
    if not changes:
        return Plan([], locked_elsewhere, not_pending)

    names = sorted({c.topic_name for c in changes})
    live = kafka.topic_partition_counts(admin, names, timeout=timeout)
    groups = consuming_groups(session, admin, names, timeout=timeout)
    keyed = kafka.sample_keys(admin, kafka_properties, {t: live[t] for t in names if t in live}, timeout=timeout)
    items = [
        _plan_item(c, live.get(c.topic_name), groups.get(c.topic_name, []), keyed.get(c.topic_name, kafka.Keyed.UNKNOWN))
        for c in changes
    ]
    return Plan(items, locked_elsewhere, not_pending)


def _plan_item(change: PartitionChange, live: int | None, groups: list[ConsumingGroup], keyed: str) -> PlanItem:
    risks: list[str] = []
    needs_force = False
    if live is None:
        action = PlanAction.TOPIC_MISSING
        risks.append(f"topic missing: the cluster has no topic {change.topic_name}")
    elif live >= change.recommended_partitions:
        action = PlanAction.SATISFIED
        risks.append(f"already satisfied: the topic has {live} partition(s), the change asks for {change.recommended_partitions}")
    else:
        action = PlanAction.INCREASE
        if live != change.current_partitions:
            risks.append(f"the topic has {live} partition(s) now; the change was recorded at {change.current_partitions}")
        if keyed == kafka.Keyed.YES:
            risks.append(
                "keyed messages: a key's new records go to a different partition than its old ones, "
                "so per-key ordering breaks across the change"
            )
        for g in groups:
            who = f"{g.service_name} ({g.consumer_group_id})" if g.service_name else g.consumer_group_id
            if g.auto_offset_reset == "latest":
                needs_force = True
                risks.append(
                    f"{who} has auto_offset_reset=latest: records produced to the new partitions before it "
                    "is assigned them are skipped (set it to earliest first, or pass --force)"
                )
            elif g.service_name is None:
                risks.append(f"group {g.consumer_group_id} has no service config: its auto_offset_reset is unknown")
    return PlanItem(
        change_id=change.id,
        topic_name=change.topic_name,
        recorded_partitions=change.current_partitions,
        current_partitions=live,
        target_partitions=change.recommended_partitions,
        action=action,
        keyed=keyed,
        consumer_groups=groups,
        risks=risks,
        needs_force=needs_force,
        reason=change.reason,
        source=change.source,
    )


def consuming_groups(
    session: "Session", admin: "AdminClient", topics: Sequence[str], *, timeout: float = kafka.DEFAULT_TIMEOUT_S
) -> dict[str, list[ConsumingGroup]]:
    """Per topic, the groups that consume it: committed offsets or assigned members in the cluster
    now, or lag samples within GROUP_HISTORY_WINDOW; each mapped to its service through the config table."""
    from sqlalchemy import text

    from loomctl import configs as config_store

    wanted = set(topics)
    group_ids = kafka.list_group_ids(admin, timeout=timeout)
    committed = kafka.committed_offsets(admin, group_ids, timeout=timeout)
    described = kafka.describe_groups(admin, group_ids, timeout=timeout)
    by_topic: dict[str, dict[str, tuple[str | None, int | None, str | None]]] = {t: {} for t in topics}
    for group_id in group_ids:
        group = described.get(group_id)
        seen = {t for t, _ in committed.get(group_id, {})} | {t for t, _ in (group.owner_of() if group else {})}
        for topic in seen & wanted:
            by_topic[topic][group_id] = (group.group_state if group else None, len(group.members) if group else None, None)
    history = session.execute(
        text("""
        SELECT DISTINCT ON (topic_name, consumer_group_id) topic_name, consumer_group_id, service_name
          FROM consumer_lag_history
         WHERE topic_name = ANY(:topics) AND "timestamp" > now() - :recent
         ORDER BY topic_name, consumer_group_id, "timestamp" DESC"""),
        {"topics": list(wanted), "recent": GROUP_HISTORY_WINDOW},
    ).all()
    for r in history:
        by_topic[r.topic_name].setdefault(r.consumer_group_id, (None, None, r.service_name))
    all_groups = sorted({g for groups in by_topic.values() for g in groups})
    configs = {
        c.consumer_group_id: (c.service_name, c.settings["auto_offset_reset"])
        for c in config_store.read_configs(session, groups=all_groups)
    }
    result: dict[str, list[ConsumingGroup]] = {}
    for topic, groups in by_topic.items():
        result[topic] = [
            ConsumingGroup(
                group_id, configs.get(group_id, (None, None))[0], configs.get(group_id, (None, None))[1], state, members
            )
            for group_id, (state, members, _history_service) in sorted(groups.items())
        ]
    return result
