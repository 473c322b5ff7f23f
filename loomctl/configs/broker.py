"""The broker's side of a service's settings: the bounds it enforces on group members, the group
configs it owns for consumer-protocol (KIP-848) and share (KIP-932) groups (`config push`), and what the
cluster shows against the table (`config drift`).

Under the classic protocol the client sends its session timeout and heartbeat when it joins, and
the broker only bounds them (group.min/max.session.timeout.ms). Under the consumer protocol the
broker owns both as group configs (consumer.session.timeout.ms, consumer.heartbeat.interval.ms),
bounded by group.consumer.min/max.*, and assigns the partitions itself: the table's values reach
the group only through `config push`. A share group's broker owns more (share.session.timeout.ms,
share.heartbeat.interval.ms, share.auto.offset.reset, share.isolation.level,
share.record.lock.duration.ms), bounded by group.share.min/max.*.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loomctl.consumer_config import (
    GROUP_CONFIG_NAMES,
    SHARE_GROUP_CONFIGS,
    broker_group_configs,
    broker_owned,
    uses_consumer_protocol,
    uses_share_group,
)
from loomctl.errors import BadInput, LoomError

if TYPE_CHECKING:
    from loomctl.configs.store import ChangeResult, ConsumerConfig, FieldChange
    from loomctl.settings import Settings

SESSION_TIMEOUT_BOUNDS = ("group.min.session.timeout.ms", "group.max.session.timeout.ms")
CLASSIC_BOUNDS: Mapping[str, tuple[str, str]] = {"session_timeout_ms": SESSION_TIMEOUT_BOUNDS}
CONSUMER_BOUNDS: Mapping[str, tuple[str, str]] = {
    "session_timeout_ms": ("group.consumer.min.session.timeout.ms", "group.consumer.max.session.timeout.ms"),
    "heartbeat_interval_ms": ("group.consumer.min.heartbeat.interval.ms", "group.consumer.max.heartbeat.interval.ms"),
}
SHARE_BOUNDS: Mapping[str, tuple[str, str]] = {
    "session_timeout_ms": ("group.share.min.session.timeout.ms", "group.share.max.session.timeout.ms"),
    "heartbeat_interval_ms": ("group.share.min.heartbeat.interval.ms", "group.share.max.heartbeat.interval.ms"),
    "record_lock_duration_ms": ("group.share.min.record.lock.duration.ms", "group.share.max.record.lock.duration.ms"),
}
PROTOCOL_FIELDS = ("group_protocol", *SHARE_GROUP_CONFIGS)
"""A change to any of these may take a consumer-protocol or share-group service out of the broker's bounds."""


def _bounds_of(settings: Mapping[str, Any]) -> Mapping[str, tuple[str, str]]:
    if uses_share_group(settings):
        return SHARE_BOUNDS
    return CONSUMER_BOUNDS if uses_consumer_protocol(settings) else CLASSIC_BOUNDS


def _kind_of(settings: Mapping[str, Any]) -> str:
    return "is a share group" if uses_share_group(settings) else "uses the consumer protocol"


def _bounds(kafka_properties: Mapping[str, str], names: Sequence[str], timeout: float) -> dict[str, str]:
    from loomctl import kafka

    return kafka.broker_configs(kafka.admin_for(kafka_properties, timeout=timeout), names, timeout=timeout)


def out_of_bounds(settings: Mapping[str, Any], broker: Mapping[str, str]) -> list[str]:
    """What the broker's bounds (``broker``: its config) refuse in ``settings``, one sentence each."""
    table = _bounds_of(settings)
    objections = []
    for name, (low_name, high_name) in table.items():
        try:
            low, high = int(broker[low_name]), int(broker[high_name])
        except (KeyError, ValueError):
            continue
        if not low <= settings[name] <= high:
            objections.append(
                f"{name}={settings[name]} is outside the broker's {low_name.replace('.min.', '.min/max.')} ({low}..{high})"
            )
    return objections


@dataclass(frozen=True)
class BrokerCheck:
    """What the broker says of a change: ``error`` refuses it (consumer protocol: a push would fail), ``warning`` is advice."""

    error: str | None = None
    warning: str | None = None
    note: str | None = None
    """What the operator has to do next (push the broker-side part)."""


def _kafka_properties(settings: "Settings") -> Mapping[str, str] | None:
    if not (settings.bootstrap_servers or settings.kafka_config):
        return None
    try:
        return settings.kafka_properties()
    except BadInput:
        return None


def check_changes(
    changes: Sequence[tuple[Mapping[str, Any] | None, "ChangeResult"]],
    settings: "Settings",
    *,
    timeout: float = 5.0,
) -> list[BrokerCheck]:
    """The broker's view of each change, whose settings afterwards are the pair's first (None: deleted),
    asking the broker at most once.

    Classic: a session timeout outside group.min/max.session.timeout.ms is refused (the broker
    refuses its members' JoinGroup), whether the change set the session timeout or switched
    the service to classic with it. Consumer protocol and share groups: a group config outside the broker's
    group.consumer.min/max.* or group.share.min/max.* is an error, since `config push` could never set it; a
    broker that cannot be asked is a warning that nothing was checked.
    """
    asked: list[dict[str, str] | LoomError] = []

    def bounds() -> dict[str, str]:
        if not asked:
            names = [n for table in (CONSUMER_BOUNDS, CLASSIC_BOUNDS, SHARE_BOUNDS) for pair in table.values() for n in pair]
            try:
                asked.append(_bounds(kafka_properties, names, timeout))  # type: ignore[arg-type]
            except LoomError as exc:
                asked.append(exc)
        if isinstance(asked[0], LoomError):
            raise asked[0]
        return asked[0]

    kafka_properties = _kafka_properties(settings)
    return [_check(after, result, None if kafka_properties is None else bounds) for after, result in changes]


def _check(after: Mapping[str, Any] | None, result: "ChangeResult", bounds: Any) -> BrokerCheck:
    changed = {c.field for c in result.changes}
    if after is None or not changed & set(PROTOCOL_FIELDS):
        return BrokerCheck()
    owned = list(broker_owned(after))
    consumer = bool(owned)
    if consumer and not changed & {"group_protocol", *owned}:
        return BrokerCheck()
    note = None
    if consumer and not result.dry_run:
        note = (
            f"{result.service_name} {_kind_of(after)}: the broker-side part ({', '.join(owned)}) "
            f"takes effect after `loomctl config push {result.service_name}`"
        )
    # classic bounds only the session timeout, which a switch back to classic brings under them too
    if (not consumer and not changed & {"session_timeout_ms", "group_protocol"}) or bounds is None:
        return BrokerCheck(note=note)
    try:
        broker = bounds()
    except LoomError as exc:
        if consumer:
            return BrokerCheck(warning=f"could not check {', '.join(owned)} against the broker's bounds: {exc}", note=note)
        return BrokerCheck(note=note)
    objections = out_of_bounds(after, broker)
    if not objections:
        return BrokerCheck(note=note)
    if consumer:
        return BrokerCheck(error="; ".join(objections) + ": the broker would refuse these group configs, nothing changed")
    # classic: the broker refuses the JoinGroup itself (INVALID_SESSION_TIMEOUT) and the consumer gets nothing
    return BrokerCheck(error=f"{objections[0]}: the broker would refuse its consumers' JoinGroup, nothing changed")


# --- config push ---


class PushAction:
    SET = "set"
    WOULD_SET = "would set"
    UNCHANGED = "unchanged"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(frozen=True)
class GroupConfigChange:
    field: str
    name: str
    """The broker's name for it (consumer.session.timeout.ms)."""
    old: str | None
    new: str
    old_is_default: bool
    """The broker's default applied before (no value set for this group)."""


@dataclass(frozen=True)
class PushItem:
    service_name: str
    consumer_group_id: str
    group_protocol: str
    action: str
    """One of :class:`PushAction`."""
    changes: list[GroupConfigChange]
    reason: str | None = None
    """Why it was skipped, or the broker's refusal."""
    broker_after: dict[str, str | None] = field(default_factory=dict)
    """The group configs as describe_configs read them back after the push."""


@dataclass(frozen=True)
class PushReport:
    items: list[PushItem]
    dry_run: bool

    @property
    def failed(self) -> list[PushItem]:
        return [i for i in self.items if i.action == PushAction.FAILED]

    def failure(self) -> str | None:
        """One line for the services the broker refused (the first one's refusal in its words), None when none."""
        if not self.failed:
            return None
        first = self.failed[0]
        return f"the broker refused the group configs of {len(self.failed)} service(s); {first.service_name}: {first.reason}"

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for item in self.items:
            counts[item.action] = counts.get(item.action, 0) + 1
        return counts


def history_changes(item: PushItem) -> list["FieldChange"]:
    """A pushed service's changes as the audit trail records them: per setting, the broker's value before and after."""
    from loomctl.configs.store import FieldChange

    def number(value: str | None) -> Any:
        return int(value) if value is not None and value.isascii() and value.isdigit() else value

    return [FieldChange(c.field, number(c.old), number(c.new)) for c in item.changes]


def _changes(config: "ConsumerConfig", current: Mapping[str, Any]) -> list[GroupConfigChange]:
    """What the broker must be told so the group's configs are the table's and are set for the
    group (not merely equal to a broker default that may change under it)."""
    wanted = broker_group_configs(config.settings)
    by_name = {name: f for f, name in broker_owned(config.settings).items()}
    changes = []
    for name, value in wanted.items():
        now = current.get(name)
        if now is not None and now.dynamic and now.value == value:
            continue
        changes.append(GroupConfigChange(by_name[name], name, now.value if now else None, value, not (now and now.dynamic)))
    return changes


def _names(configs: Sequence["ConsumerConfig"]) -> list[str]:
    """The group configs the broker owns for any of ``configs``."""
    return sorted({n for c in configs for n in broker_owned(c.settings).values()})


def plan_push(configs: Sequence["ConsumerConfig"], admin: Any, *, timeout: float = 10.0) -> list[PushItem]:
    """Per service what `config push` would set, from one describe_configs of the consumer-protocol and share groups."""
    from loomctl import kafka

    owned = [c for c in configs if broker_owned(c.settings)]
    current = kafka.describe_group_configs(admin, [c.consumer_group_id for c in owned], _names(owned), timeout=timeout)
    items = []
    for c in configs:
        protocol = c.settings["group_protocol"]
        if not broker_owned(c.settings):
            items.append(
                PushItem(
                    c.service_name,
                    c.consumer_group_id,
                    protocol,
                    PushAction.SKIPPED,
                    [],
                    "classic protocol: its members send their own session timeout and heartbeat",
                )
            )
            continue
        changes = _changes(c, current.get(c.consumer_group_id, {}))
        action = PushAction.WOULD_SET if changes else PushAction.UNCHANGED
        mine = set(broker_owned(c.settings).values())
        after = {n: v.value for n, v in current.get(c.consumer_group_id, {}).items() if n in mine}
        items.append(PushItem(c.service_name, c.consumer_group_id, protocol, action, changes, broker_after=after))
    return items


def push(plan: Sequence[PushItem], admin: Any, *, timeout: float = 10.0) -> list[PushItem]:
    """Carry out a plan with one incremental_alter_configs request, then read every pushed group
    back with one describe_configs: a group is ``set`` only when the broker then reports the
    table's values; a refusal is ``failed`` with the broker's words, and the others still go through."""
    from dataclasses import replace

    from loomctl import kafka

    wanted = {i.consumer_group_id: {c.name: c.new for c in i.changes} for i in plan if i.action == PushAction.WOULD_SET}
    refused = kafka.alter_group_configs(admin, wanted, timeout=timeout)
    readback = _read_back(admin, list(wanted), {g: v for g, v in wanted.items() if refused.get(g) is None}, timeout)
    done = []
    for item in plan:
        if item.action != PushAction.WOULD_SET:
            done.append(item)
            continue
        mine = set(broker_owned({"group_protocol": item.group_protocol}).values())
        after = {n: v.value for n, v in readback.get(item.consumer_group_id, {}).items() if n in mine}
        error = refused.get(item.consumer_group_id)
        if error is None:
            wrong = [f"{c.name} is {after.get(c.name)}" for c in item.changes if after.get(c.name) != c.new]
            if wrong:
                error = "the broker took the request but reports " + ", ".join(wrong)
        action = PushAction.FAILED if error else PushAction.SET
        done.append(replace(item, action=action, reason=error, broker_after=after))
    return done


def carry_out_push(
    session: Any,
    configs: Sequence["ConsumerConfig"],
    plan: Sequence[PushItem],
    admin: Any,
    *,
    dry_run: bool,
    actor: str,
    reason: str | None,
    timeout: float = 10.0,
) -> PushReport:
    """`config push` once its plan is confirmed: on a dry run, or with nothing to set, the plan as it is; else the
    push (:func:`push`) and, for each service the broker took, its row in the audit trail."""
    from loomctl.configs.store import record_push

    if dry_run or not any(i.action == PushAction.WOULD_SET for i in plan):
        return PushReport(list(plan), dry_run)
    done = push(plan, admin, timeout=timeout)
    by_name = {c.service_name: c for c in configs}
    for item in done:
        if item.action == PushAction.SET:
            record_push(session, by_name[item.service_name], history_changes(item), actor=actor, reason=reason)
    return PushReport(done, dry_run)


READ_BACK_S = 10.0
"""How long a push waits for the broker to report what it took: a group config is a record in the
cluster's metadata log, and the broker answering describe_configs may apply it a moment after the
controller accepted it."""


def _read_back(
    admin: Any, groups: Sequence[str], wanted: Mapping[str, Mapping[str, str]], timeout: float
) -> dict[str, dict[str, Any]]:
    """The configs of ``groups``, read again (with a growing pause) until each of ``wanted`` reports
    what it was given or READ_BACK_S passes; then as they are."""
    import time

    from loomctl import kafka

    names = list(GROUP_CONFIG_NAMES)
    deadline = time.monotonic() + min(READ_BACK_S, timeout)
    pause = 0.05
    readback = kafka.describe_group_configs(admin, list(groups), names, timeout=timeout)
    while True:
        pending = [
            g
            for g, values in wanted.items()
            if any(getattr(readback.get(g, {}).get(n), "value", None) != v for n, v in values.items())
        ]
        if not pending or time.monotonic() + pause > deadline:
            return readback
        time.sleep(pause)
        pause = min(pause * 2, 1.0)
        readback |= kafka.describe_group_configs(admin, pending, names, timeout=timeout)


# --- config drift ---


@dataclass(frozen=True)
class GroupConfigValue:
    table: str
    broker: str | None
    set_for_group: bool


@dataclass(frozen=True)
class Drift:
    """One service: what the table says against what the cluster shows."""

    service_name: str
    consumer_group_id: str
    group_protocol: str
    """What the table says."""
    group_type: str | None
    """What the broker reports the group runs (None: the group does not exist)."""
    group_state: str
    members: int
    partitions: int
    """Partitions of the topics the group's members are assigned."""
    idle_members: int
    assignor_configured: str
    assignor_in_use: str | None
    group_configs: dict[str, GroupConfigValue]
    drift: list[str]
    classic_members: list[str] = field(default_factory=list)
    """Members that joined a consumer-protocol group with the classic protocol (KIP-848's upgrade path), as
    "member id (client id)"; empty where there are none or the broker cannot tell (see ``member_types``)."""
    member_types: str = "unchecked"
    """Whether the members' protocols were read: "checked", "unchecked" (not a consumer-protocol group, or no
    member) or "unknown" (the broker or the client cannot say: the group's members are not known to be uniform)."""
    instances_behind: list[str] = field(default_factory=list)
    """The running instances (consumer_instances) that do not run the newest config version yet."""

    @property
    def in_sync(self) -> bool:
        return not self.drift


def _assignor_configured(settings: Mapping[str, Any]) -> str:
    if uses_share_group(settings):
        return "simple"  # the broker's only share assignor; not a setting of the service
    return settings["group_remote_assignor" if uses_consumer_protocol(settings) else "partition_assignment_strategy"]


def drift_of(
    config: "ConsumerConfig",
    group: Any,
    group_configs: Mapping[str, Any],
    partition_counts: Mapping[str, int],
    members_read: Any = None,
) -> Drift:
    """The drift of one service, from its group's description, its group configs and the partition counts;
    ``members_read``: the group as ConsumerGroupDescribe gives it (:func:`loomctl.kafka.protocol.describe_consumer_groups`,
    each member's type), or a reason (str) it could not be read, or None when it was not asked; for a share-group
    service ``group`` is the share group as :func:`share_group_as_group` gives it, and ``members_read`` the reason it
    could not be read, if any."""
    settings = config.settings
    protocol = settings["group_protocol"]
    members = len(group.members)
    topics = {tp[0] for m in group.members for tp in m.partitions}
    partitions = sum(partition_counts.get(t, 0) for t in topics)
    # members beyond the partition count can never get one (a member without partitions while
    # there are enough is only between assignments)
    idle = max(members - partitions, 0) if topics else 0
    found: list[str] = []
    running = members > 0
    if running and group.group_type and group.group_type != protocol:
        if group.group_type == "share":
            fix = "set group_protocol=share, or move its members to a consumer group"
        elif protocol == "share":
            fix = "restart them as share consumers (the loader builds one for this config)"
        elif protocol == "consumer":
            fix = "restart them with this config"
        else:
            fix = "restart them with group.protocol=classic"
        what = "is a share group" if group.group_type == "share" else f"runs the {group.group_type} protocol"
        found.append(
            f"configured {protocol}, but the group {what} (its {members} member(s) joined with {group.group_type}): {fix}"
        )
    if protocol == "share" and isinstance(members_read, str):
        found.append(f"the share group could not be read: {members_read}")
    values: dict[str, GroupConfigValue] = {}
    if broker_owned(settings):
        for name, wanted in broker_group_configs(settings).items():
            now = group_configs.get(name)
            value = GroupConfigValue(wanted, now.value if now else None, bool(now and now.dynamic))
            values[name] = value
            if value.broker != wanted:
                where = "set for the group" if value.set_for_group else "the broker's default"
                found.append(
                    f"{name} is {value.broker} on the broker ({where}), {wanted} in the table: "
                    f"run `loomctl config push {config.service_name}`"
                )
    configured = _assignor_configured(settings)
    in_use = group.assignor or None
    same_type = group.group_type == protocol or group.group_type is None
    # a share group's assignor is the broker's own (group.share.assignors), and its members share partitions
    if running and in_use and in_use != configured and same_type and protocol != "share":
        found.append(f"assignor {in_use} in use, {configured} configured")
    if protocol == "share" or group.group_type == "share":
        idle = 0
    if running and idle:
        found.append(f"{idle} of {members} members have no partition ({partitions} partition(s)): idle members")
    classic: list[str] = []
    checked = "unchecked"
    if running and group.group_type == "consumer":
        if members_read is None or isinstance(members_read, str) or members_read.error:
            checked = "unknown"
        else:
            typed = [m for m in members_read.members if m.member_type is not None]
            checked = "checked" if len(typed) == len(members_read.members) else "unknown"
            for m in members_read.members:
                if m.member_type == "classic":
                    who = f"{m.member_id} ({m.client_id or 'no client id'})"
                    classic.append(who)
                    found.append(
                        f"member {who} joined with the classic protocol inside the consumer-protocol group: "
                        "restart it with group.protocol=consumer"
                    )
    return Drift(
        config.service_name,
        config.consumer_group_id,
        protocol,
        group.group_type,
        group.group_state,
        members,
        partitions,
        idle,
        configured,
        in_use,
        values,
        found,
        classic,
        checked,
    )


@dataclass(frozen=True)
class DriftReport:
    """`config drift`: every service's drift, and what it adds up to."""

    services: list[Drift]

    @property
    def drifting(self) -> list[Drift]:
        return [d for d in self.services if not d.in_sync]

    def with_instances(self, versions: Mapping[str, int], running: Mapping[str, Sequence[Any]]) -> None:
        """Each service's running instances that are not on its newest version: a drift of their own."""
        from loomctl.configs.store import instances_behind

        for d in self.services:
            newest = versions.get(d.service_name)
            behind = instances_behind(running.get(d.service_name, ()), newest) if newest is not None else []
            d.instances_behind.extend(i.describe() for i in behind)
            if behind:
                d.drift.append(f"{len(behind)} running instance(s) not on version {newest} yet")

    def summary(self) -> str:
        names = ", ".join(d.service_name for d in self.drifting)
        return f"{len(self.drifting)} of {len(self.services)} service(s) drift" + (f": {names}" if names else "")

    def failure(self) -> str | None:
        """One line for the services that drift, None when every one is in sync."""
        if not self.drifting:
            return None
        return f"{len(self.drifting)} service(s) drift from their config: {', '.join(d.service_name for d in self.drifting)}"


NO_SUCH_SHARE_GROUP = "GROUP_ID_NOT_FOUND"
"""The broker's answer for an id that is no share group (none by that id, or a group of another type)."""


def share_group_as_group(share: Any) -> Any:
    """A share group (:class:`loomctl.kafka.protocol.ShareGroup`) as drift compares groups: no such share group is a
    group that does not exist; another error (not authorized) is why it could not be read (a str), never a group."""
    from loomctl import kafka

    if share.error is not None:
        if share.error.startswith(NO_SUCH_SHARE_GROUP):
            return kafka.Group(share.group_id, "Dead")
        return share.error
    members = tuple(kafka.Member(m.member_id, m.client_id, m.host, m.assigned) for m in share.members)
    return kafka.Group(share.group_id, share.state, members, "share", share.assignor)


def _share_groups(wire: Any, ids: Sequence[str], timeout: float) -> dict[str, Any]:
    """Each of ``ids`` as a share group (see :func:`share_group_as_group`), or why none could be read (a str)."""
    from loomctl.errors import LoomError
    from loomctl.kafka import protocol

    if not ids:
        return {}
    if wire is None:
        return dict.fromkeys(ids, "the group-types client cannot connect with this cluster's settings (see `lag show`)")
    try:
        return {g: share_group_as_group(d) for g, d in protocol.describe_share_groups(wire, ids, timeout=timeout).items()}
    except LoomError as exc:  # a broker without share groups, or one that did not answer: said for each share service
        return dict.fromkeys(ids, str(exc))


def drift(configs: Sequence["ConsumerConfig"], admin: Any, *, timeout: float = 10.0, wire: Any = None) -> DriftReport:
    """Every service's drift, from one describe of the groups, one describe_configs of the
    consumer-protocol and share groups and one metadata request for the topics their members are assigned;
    with ``wire`` (:func:`loomctl.kafka.protocol.client`), each member of a consumer-protocol group by its protocol,
    and the share groups (which librdkafka describes as dead classic groups): those of share services, and any
    other service's group that librdkafka found dead."""
    from loomctl import kafka

    groups = kafka.describe_groups(admin, [c.consumer_group_id for c in configs], timeout=timeout)
    running = [g for g, d in groups.items() if d.group_type == "consumer" and d.members]
    members_read: dict[str, Any] = {}
    if running and wire is not None:
        from loomctl.errors import LoomError
        from loomctl.kafka import protocol

        try:
            members_read = dict(protocol.describe_consumer_groups(wire, running, timeout=timeout))
        except LoomError as exc:  # an older broker (no member types) or one that did not answer: unknown, said once
            members_read = dict.fromkeys(running, str(exc))
    share_ids = {c.consumer_group_id for c in configs if uses_share_group(c.settings)}
    dead = {g for g, d in groups.items() if d.group_state == "Dead" and not d.members} - share_ids
    shares = _share_groups(wire, sorted(share_ids), timeout)
    if dead and wire is not None:  # a classic or consumer service whose group is in fact a share group
        shares |= {g: d for g, d in _share_groups(wire, sorted(dead), timeout).items() if not isinstance(d, str)}
    for g, share in shares.items():
        if g in share_ids:
            if isinstance(share, str):
                members_read[g] = share
                groups[g] = kafka.Group(g, "Unknown")
            elif groups.get(g) is None or groups[g].group_state == "Dead":
                groups[g] = share
        elif share.group_state != "Dead":
            groups[g] = share
    owned = [c for c in configs if broker_owned(c.settings)]
    group_configs = kafka.describe_group_configs(admin, [c.consumer_group_id for c in owned], _names(owned), timeout=timeout)
    topics = sorted({tp[0] for g in groups.values() for m in g.members for tp in m.partitions})
    counts = kafka.topic_partition_counts(admin, topics, timeout=timeout) if topics else {}
    missing = kafka.Group("", "Dead")
    return DriftReport(
        [
            drift_of(
                c,
                groups.get(c.consumer_group_id, missing),
                group_configs.get(c.consumer_group_id, {}),
                counts,
                members_read.get(c.consumer_group_id),
            )
            for c in configs
        ]
    )
