"""`config readiness`: what stands between each classic-protocol service and the consumer protocol (KIP-848).

Kafka 4.3 deprecates the classic group protocol (KIP-1274); the consumer protocol becomes the default in 5.0 and the
classic one goes in 6.0. For every service the table keeps on ``group_protocol=classic`` this asks its own cluster
once (its abilities, the broker's config, the live groups) and judges five things, each with its evidence:

- ``broker``: a broker before 4.0, or one that does not serve the consumer protocol (the protocol list, or the
  ``group.version`` feature, which librdkafka cannot read: only a consumer-protocol group on the cluster shows it);
- ``client``: KafkaJS (Node services, loomctl's node/ package) has no KIP-848 protocol; told from the live members;
- ``assignor``: under the consumer protocol the broker assigns, with one of its ``group.consumer.assignors``;
- ``session_timeout_ms`` / ``heartbeat_interval_ms``: the broker owns them, within group.consumer.min/max.*;
- ``members``: a classic group's members move one by one only where the broker upgrades the group online
  (``group.consumer.migration.policy``; the group no larger than ``group.consumer.max.size``).

A service with no blocker is ``ready``; one loomctl cannot judge (a cluster that did not answer, a config it could
not read, a group without members to tell the client by) is ``unknown``, never ready. Each comes with the `config set`
and `config push` commands that move it, where the table can hold what they set.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loomctl.configs.broker import CONSUMER_BOUNDS, out_of_bounds
from loomctl.consumer_config import REMOTE_ASSIGNORS, uses_consumer_protocol, uses_share_group
from loomctl.errors import BackendUnavailable, BadInput, LoomError, NotFound

if TYPE_CHECKING:
    from loomctl.configs.store import ConsumerConfig
    from loomctl.kafka.capabilities import Capabilities
    from loomctl.kafka.groups import Group, Member


class Verdict:
    READY = "ready"
    BLOCKED = "blocked"
    UNKNOWN = "unknown"


class Outcome:
    OK = "ok"
    BLOCKER = "blocker"
    UNKNOWN = "unknown"


class Check:
    """The names of the checks, as `-o json` writes them."""

    BROKER = "broker"
    CLIENT = "client"
    ASSIGNOR = "assignor"
    SESSION_TIMEOUT = "session_timeout_ms"
    HEARTBEAT = "heartbeat_interval_ms"
    MEMBERS = "members"
    CONFIG = "config"


ASSIGNORS_CONFIG = "group.consumer.assignors"
MIGRATION_POLICY = "group.consumer.migration.policy"
MAX_SIZE = "group.consumer.max.size"
BOUND_NAMES = tuple(name for pair in CONSUMER_BOUNDS.values() for name in pair)
BROKER_CONFIGS = (ASSIGNORS_CONFIG, MIGRATION_POLICY, MAX_SIZE, *BOUND_NAMES)
"""What is read of the broker's config (describe_configs of a BROKER resource)."""
UPGRADING_POLICIES = ("upgrade", "bidirectional")
"""Migration policies under which the broker turns a classic group with members into a consumer group when a
consumer-protocol member joins (Kafka's GroupMetadataManager: otherwise that member is refused while any classic one
remains)."""

KAFKAJS_CLIENT_ID = "kafkajs"
"""KafkaJS's default clientId (kafkajs/src/network/connection.js)."""
KAFKAJS_ASSIGNOR = "RoundRobinAssigner"
"""The protocol name of KafkaJS's one assigner, which node/ passes to every consumer it builds (node/src/loader.ts)."""
CLIENT_ASSIGNORS = ("range", "roundrobin", "sticky", "cooperative-sticky")
"""The protocol names librdkafka and the Java client join a classic group with: a group that agreed on one of them
has no member of node/'s, which offers only RoundRobinAssigner."""

NEAREST_REMOTE = {"range": "range", "roundrobin": "uniform", "cooperative-sticky": "uniform"}
"""The broker-side assignor closest to each client-side one: range keeps co-partitioned topics together; uniform is
sticky and spreads partitions evenly, as cooperative-sticky and roundrobin do."""
KAFKA_ASSIGNOR_CLASSES = {"UniformAssignor": "uniform", "RangeAssignor": "range"}
REASON = "KIP-1274: move to the consumer group protocol (KIP-848)"
MIN_RELEASE = (4, 0)
"""The first release where the consumer protocol is generally available (3.7-3.9: early access and preview)."""


@dataclass(frozen=True)
class Finding:
    check: str
    """One of :class:`Check`."""
    outcome: str
    """One of :class:`Outcome`."""
    evidence: str
    """What was seen, and what to do about a blocker, in one line that names what it is about."""


@dataclass(frozen=True)
class ClusterFacts:
    """What one cluster said, asked once for all its services. A mapping is None where it could not be read; the
    matching ``*_error`` says why."""

    cluster_name: str
    broker: Finding
    """The cluster's own check (:data:`Check.BROKER`), the same for every service on it."""
    broker_configs: Mapping[str, str] | None
    broker_error: str | None
    groups: Mapping[str, "Group"] | None
    groups_error: str | None


@dataclass(frozen=True)
class ServiceReadiness:
    """One classic-protocol service: its verdict, every check with its evidence, and the commands that move it."""

    service_name: str
    cluster_name: str
    consumer_group_id: str
    config_version: int
    group_type: str | None
    """What the broker reports the group runs (None: no group, or not told)."""
    group_state: str | None
    members: int | None
    """Live members (None: the group could not be described)."""
    verdict: str
    """One of :class:`Verdict`."""
    checks: list[Finding]
    changes: dict[str, Any]
    """The settings the move sets (group_protocol and what the broker's bounds and assignors need); empty when no
    command can move the service yet."""
    commands: list[str]
    next_step: str | None
    """What to do once the commands ran (restart the members), None without commands."""

    @property
    def blockers(self) -> list[str]:
        return [f.evidence for f in self.checks if f.outcome == Outcome.BLOCKER]

    @property
    def unknown(self) -> list[str]:
        """What could not be told, one line each."""
        return [f.evidence for f in self.checks if f.outcome == Outcome.UNKNOWN]


@dataclass(frozen=True)
class ClusterProblem:
    """A cluster that could not be asked: its services are unknown, and the command ends with ``exit_code``."""

    cluster_name: str
    error: str
    exit_code: int


@dataclass(frozen=True)
class ReadinessReport:
    services: list[ServiceReadiness]
    already_consumer: list[str] = field(default_factory=list)
    """Services whose table already says group_protocol=consumer (`config drift` compares them with the cluster)."""
    cluster_problems: list[ClusterProblem] = field(default_factory=list)
    share_groups: list[str] = field(default_factory=list)
    """Share-group services: their protocol is neither classic nor consumer, and KIP-1274 does not touch it."""

    def counts(self) -> dict[str, int]:
        counts = {Verdict.READY: 0, Verdict.BLOCKED: 0, Verdict.UNKNOWN: 0}
        for s in self.services:
            counts[s.verdict] += 1
        return counts

    def summary(self) -> str:
        counts = ", ".join(f"{n} {verdict}" for verdict, n in self.counts().items())
        line = f"readiness: {counts} of {len(self.services)} classic-protocol service(s)"
        if self.already_consumer:
            line += f"; {len(self.already_consumer)} already on the consumer protocol ({', '.join(self.already_consumer)})"
        if self.share_groups:
            line += f"; {len(self.share_groups)} share group(s), not affected ({', '.join(self.share_groups)})"
        return line

    def failure(self, *, fail_on_blockers: bool) -> LoomError | None:
        """The error the command ends with: a cluster that could not be asked (its error's class: exit 5 when it did
        not answer), else with ``fail_on_blockers`` any service not ready (exit 1); None when the report stands."""
        if self.cluster_problems:
            first = self.cluster_problems[0]
            named = ", ".join(p.cluster_name for p in self.cluster_problems)
            kind = next((k for k in (BackendUnavailable, BadInput, NotFound) if k.exit_code == first.exit_code), LoomError)
            return kind(f"could not ask cluster(s) {named}: {first.error}")
        if fail_on_blockers:
            waiting = [s.service_name for s in self.services if s.verdict != Verdict.READY]
            if waiting:
                return LoomError(f"{len(waiting)} service(s) not ready for the consumer protocol: {', '.join(waiting)}")
        return None


# --- what a cluster says ---


def _release(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def broker_finding(capabilities: "Capabilities") -> Finding:
    """Whether the cluster serves the consumer protocol, from :func:`loomctl.kafka.capabilities.capabilities`."""
    version = capabilities.broker_version
    check = capabilities.consumer_protocol
    if version.at_most is not None and _release(version.at_most) < MIN_RELEASE:
        return Finding(
            Check.BROKER,
            Outcome.BLOCKER,
            f"the broker runs Kafka {version.text} ({version.evidence}): the consumer protocol is generally available "
            "from 4.0; upgrade the cluster first",
        )
    if check.supported is True:
        return Finding(Check.BROKER, Outcome.OK, f"Kafka {version.text} serves the consumer protocol: {check.evidence}")
    if check.supported is False:
        return Finding(Check.BROKER, Outcome.BLOCKER, f"the cluster does not serve the consumer protocol: {check.evidence}")
    if version.at_least is not None and _release(version.at_least) >= MIN_RELEASE:
        # what capabilities says at length: the one thing left unknown is the feature, and who can tell it
        return Finding(
            Check.BROKER,
            Outcome.UNKNOWN,
            f"Kafka {version.text}: group.version (1 needed) is unreadable by librdkafka and no consumer-protocol group "
            "is listed; `kafka-features.sh describe` shows it",
        )
    return Finding(Check.BROKER, Outcome.UNKNOWN, f"the consumer protocol on Kafka {version.text}: {check.evidence}")


def cluster_facts(
    cluster_name: str, admin: Any, group_ids: Sequence[str], *, timeout: float, properties: Mapping[str, str] | None = None
) -> ClusterFacts:
    """Ask a cluster once: its abilities (its finalized features too, with its client ``properties``), its broker's
    config, the groups. Raises BackendUnavailable when the cluster does not answer at all; a part it does not give is
    kept as that part's error."""
    from loomctl import kafka
    from loomctl.kafka.capabilities import capabilities

    broker = broker_finding(capabilities(admin, timeout=timeout, properties=properties))
    configs: dict[str, str] | None = None
    broker_error = groups_error = None
    try:
        configs = kafka.broker_configs(admin, BROKER_CONFIGS, timeout=timeout)
    except LoomError as exc:
        broker_error = str(exc)
    groups: dict[str, Group] | None = None
    try:
        groups = kafka.describe_groups(admin, list(group_ids), timeout=timeout)
    except LoomError as exc:
        groups_error = str(exc)
    return ClusterFacts(cluster_name, broker, configs, broker_error, groups, groups_error)


# --- the checks of one service ---


def _unread(what: str, error: str | None) -> str:
    return f"the broker's {what} could not be read" + (f": {error}" if error else "")


def kafkajs_members(group: "Group") -> list[tuple["Member", str]]:
    """The members that are KafkaJS, each with the sign that gave it away."""
    # a consumer-protocol group's assignor is the broker's: it tells nothing of the clients of its (classic) members
    agreed = "" if group.group_type == "consumer" else group.assignor
    found = []
    for member in group.members:
        client_id = member.client_id or ""
        if client_id.lower().startswith(KAFKAJS_CLIENT_ID):
            found.append((member, f"client id {client_id} (KafkaJS's default)"))
        elif agreed == KAFKAJS_ASSIGNOR:
            found.append((member, f"client id {client_id}, the group on KafkaJS's {KAFKAJS_ASSIGNOR}"))
        elif client_id == group.consumer_group_id and agreed not in CLIENT_ASSIGNORS:
            found.append((member, f"client id {client_id} (the group id: node/'s default clientId)"))
    return found


def client_finding(group: "Group | None", groups_error: str | None) -> Finding:
    if group is None:
        return Finding(Check.CLIENT, Outcome.UNKNOWN, f"its client: the group could not be described: {groups_error}")
    if not group.members:
        return Finding(
            Check.CLIENT,
            Outcome.UNKNOWN,
            f"the group has no members ({group.group_state}): whether its client is KafkaJS cannot be told",
        )
    kafkajs = kafkajs_members(group)
    if kafkajs:
        signs = "; ".join(sorted({sign for _, sign in kafkajs}))
        return Finding(
            Check.CLIENT,
            Outcome.BLOCKER,
            f"KafkaJS has no consumer protocol: {len(kafkajs)} of {len(group.members)} member(s) are KafkaJS ({signs}); "
            "it stays classic until it runs on librdkafka or Java",
        )
    ids = ", ".join(sorted({m.client_id or "-" for m in group.members}))
    return Finding(Check.CLIENT, Outcome.OK, f"{len(group.members)} member(s), client ids {ids}: none is KafkaJS")


def offered_assignors(value: str) -> list[str]:
    """``group.consumer.assignors`` as assignor names: Kafka's own classes by the names clients ask for."""
    names = []
    for item in value.split(","):
        item = item.strip()
        if item:
            simple = item.rsplit(".", 1)[-1]
            names.append(KAFKA_ASSIGNOR_CLASSES.get(simple, item) if item.startswith("org.apache.kafka.") else item)
    return names


def assignor_finding(
    settings: Mapping[str, Any], broker: Mapping[str, str] | None, broker_error: str | None
) -> tuple[Finding, str | None]:
    """The check of the assignor and the ``group_remote_assignor`` the move sets (None: none the table can hold)."""
    strategy = settings["partition_assignment_strategy"]
    if broker is None or ASSIGNORS_CONFIG not in broker:
        return Finding(Check.ASSIGNOR, Outcome.UNKNOWN, _unread(ASSIGNORS_CONFIG, broker_error)), None
    offered = offered_assignors(broker[ASSIGNORS_CONFIG])
    shown = ", ".join(offered) or "none"
    if strategy in offered and strategy in REMOTE_ASSIGNORS:
        return Finding(
            Check.ASSIGNOR,
            Outcome.OK,
            f"partition_assignment_strategy={strategy} is offered by the broker ({ASSIGNORS_CONFIG}: {shown}): "
            f"the move sets group_remote_assignor={strategy}",
        ), strategy
    nearest = NEAREST_REMOTE.get(strategy, REMOTE_ASSIGNORS[0])
    remote = next((a for a in (nearest, *REMOTE_ASSIGNORS) if a in offered), None)
    if remote is None:
        return Finding(
            Check.ASSIGNOR,
            Outcome.BLOCKER,
            f"the broker offers none of the assignors the table can name ({', '.join(REMOTE_ASSIGNORS)}): "
            f"{ASSIGNORS_CONFIG}={broker[ASSIGNORS_CONFIG]}",
        ), None
    return Finding(
        Check.ASSIGNOR,
        Outcome.BLOCKER,
        f"partition_assignment_strategy={strategy} is client-side and the broker does not offer it ({ASSIGNORS_CONFIG}: "
        f"{shown}): the move needs group_remote_assignor={remote}",
    ), remote


def consumer_bounds(broker: Mapping[str, str] | None) -> dict[str, tuple[int, int]] | None:
    """The broker's consumer-protocol bounds of each broker-owned setting; None when one is missing or not a number."""
    try:
        return {name: (int(broker[low]), int(broker[high])) for name, (low, high) in CONSUMER_BOUNDS.items()}  # type: ignore[index]
    except (TypeError, KeyError, ValueError):
        return None


def bounds_findings(
    settings: Mapping[str, Any], broker: Mapping[str, str] | None, broker_error: str | None
) -> tuple[list[Finding], dict[str, Any] | None]:
    """The session timeout and heartbeat against the broker's consumer-protocol bounds, and the settings that bring
    them within (None: the bounds are unknown)."""
    bounds = consumer_bounds(broker)
    if broker is None or bounds is None:
        return [
            Finding(
                Check.SESSION_TIMEOUT,
                Outcome.UNKNOWN,
                _unread("consumer-protocol bounds (group.consumer.min/max.*)", broker_error),
            )
        ], None
    after = {**settings, "group_protocol": "consumer"}
    refused = [name for name, (low, high) in bounds.items() if not low <= settings[name] <= high]
    objections = dict(zip(refused, out_of_bounds(after, broker), strict=True))
    changes = within_bounds(settings, bounds)
    findings = []
    for name, (low, high) in bounds.items():
        check = Check.SESSION_TIMEOUT if name == "session_timeout_ms" else Check.HEARTBEAT
        if name in objections:
            fix = f": the move needs {name}={changes[name]}" if name in changes else ""
            findings.append(Finding(check, Outcome.BLOCKER, objections[name] + fix))
        else:
            findings.append(Finding(check, Outcome.OK, f"{name}={settings[name]} is within the broker's {low}..{high}"))
    return findings, changes


def within_bounds(settings: Mapping[str, Any], bounds: Mapping[str, tuple[int, int]]) -> dict[str, Any]:
    """The least change that brings the session timeout and heartbeat within ``bounds`` (the broker's, per setting)
    and keeps the table's rules: a heartbeat at most a third of the session timeout, a poll interval no shorter."""
    (s_low, s_high), (h_low, h_high) = bounds["session_timeout_ms"], bounds["heartbeat_interval_ms"]
    session = min(max(settings["session_timeout_ms"], s_low), s_high)
    heartbeat = min(max(settings["heartbeat_interval_ms"], h_low), h_high)
    if heartbeat * 3 > session:
        if heartbeat * 3 <= s_high:
            session = heartbeat * 3
        elif session // 3 >= h_low:
            heartbeat = session // 3
    changes: dict[str, Any] = {}
    if session != settings["session_timeout_ms"]:
        changes["session_timeout_ms"] = session
    if heartbeat != settings["heartbeat_interval_ms"]:
        changes["heartbeat_interval_ms"] = heartbeat
    if settings["max_poll_interval_ms"] < session:
        changes["max_poll_interval_ms"] = session
    return changes


def members_finding(group: "Group | None", broker: Mapping[str, str] | None, groups_error: str | None) -> Finding:
    """The group's live members, and whether the broker lets them move one at a time."""
    if group is None:
        return Finding(Check.MEMBERS, Outcome.UNKNOWN, f"its members: the group could not be described: {groups_error}")
    count = len(group.members)
    if group.group_type == "consumer":
        return Finding(
            Check.MEMBERS,
            Outcome.OK,
            f"the group already runs the consumer protocol ({count} member(s), {group.group_state}); only the table says classic",
        )
    if not count:
        if group.group_state == "Unknown":
            return Finding(Check.MEMBERS, Outcome.UNKNOWN, "its members: the broker did not describe the group")
        return Finding(Check.MEMBERS, Outcome.OK, f"no live members ({group.group_state}): nothing to roll")
    ids = ", ".join(sorted({m.client_id or "-" for m in group.members}))
    policy = (broker or {}).get(MIGRATION_POLICY)
    if policy is None:
        return Finding(Check.MEMBERS, Outcome.UNKNOWN, f"{count} classic member(s) ({ids}); " + _unread(MIGRATION_POLICY, None))
    if policy.strip().lower() not in UPGRADING_POLICIES:
        return Finding(
            Check.MEMBERS,
            Outcome.BLOCKER,
            f"{count} classic member(s) ({ids}) and {MIGRATION_POLICY}={policy}: no consumer-protocol member can join while "
            "one of them remains: stop every member, then start them with the new config",
        )
    size = (broker or {}).get(MAX_SIZE)
    if size is not None and size.isdigit() and count > int(size):
        return Finding(
            Check.MEMBERS,
            Outcome.BLOCKER,
            f"{count} classic member(s), more than {MAX_SIZE}={size}: the broker will not upgrade the group",
        )
    return Finding(
        Check.MEMBERS,
        Outcome.OK,
        f"{count} classic member(s) ({ids}); {MIGRATION_POLICY}={policy} upgrades the group as the first one rejoins "
        "with the new config, so they move one at a time",
    )


def _verdict(checks: Sequence[Finding]) -> str:
    outcomes = {f.outcome for f in checks}
    if Outcome.BLOCKER in outcomes:
        return Verdict.BLOCKED
    if Outcome.UNKNOWN in outcomes:
        return Verdict.UNKNOWN
    return Verdict.READY


def commands(service_name: str, version: int, changes: Mapping[str, Any]) -> list[str]:
    """The `config set` that writes ``changes`` (only at ``version``, so a change since the report is refused) and the
    `config push` that sets the broker's part."""
    service = shlex.quote(service_name)
    values = " ".join(f"{name}={value}" for name, value in changes.items())
    return [
        f"loomctl config set {service} {values} --if-version {version} --reason {shlex.quote(REASON)}",
        f"loomctl config push {service} --yes",
    ]


def assess(config: "ConsumerConfig", facts: ClusterFacts) -> ServiceReadiness:
    """One classic-protocol service against what its cluster said."""
    from loomctl.validation import problems

    group = None if facts.groups is None else facts.groups.get(config.consumer_group_id)
    settings = config.settings
    assignor, remote = assignor_finding(settings, facts.broker_configs, facts.broker_error)
    bounds, fixes = bounds_findings(settings, facts.broker_configs, facts.broker_error)
    members = members_finding(group, facts.broker_configs, facts.groups_error)
    checks = [facts.broker, client_finding(group, facts.groups_error), assignor, *bounds, members]
    changes: dict[str, Any] = {}
    movable = (
        remote is not None
        and fixes is not None
        and not any(f.outcome == Outcome.BLOCKER and f.check in (Check.BROKER, Check.CLIENT) for f in checks)
    )
    if movable:
        wanted: dict[str, Any] = {"group_protocol": "consumer"}
        if remote != settings["group_remote_assignor"]:
            wanted["group_remote_assignor"] = remote
        wanted |= fixes or {}
        refused = problems({**settings, **wanted})
        if refused:
            checks.append(
                Finding(
                    Check.CONFIG, Outcome.BLOCKER, "the table's rules refuse the move: " + "; ".join(p.message for p in refused)
                )
            )
        else:
            changes = wanted
    live = 0 if group is None else len(group.members)
    next_step = None
    if changes:
        if group is not None and group.group_type == "consumer":
            next_step = "its members already join with group.protocol=consumer"
        elif members.outcome == Outcome.BLOCKER:
            next_step = f"stop all {live} member(s), then start them again: they join with group.protocol=consumer"
        elif live:
            next_step = f"restart its {live} member(s) one at a time: each rejoins with group.protocol=consumer"
        else:
            next_step = "start its members: they join with group.protocol=consumer"
    return ServiceReadiness(
        config.service_name,
        config.cluster_name,
        config.consumer_group_id,
        config.version,
        None if group is None else group.group_type,
        None if group is None else group.group_state,
        None if group is None else live,
        _verdict(checks),
        checks,
        changes,
        commands(config.service_name, config.version, changes) if changes else [],
        next_step,
    )


def unreachable(config: "ConsumerConfig", error: str) -> ServiceReadiness:
    """A service whose cluster could not be asked: unknown, with the cluster's error."""
    finding = Finding(Check.BROKER, Outcome.UNKNOWN, f"cluster {config.cluster_name} could not be asked: {error}")
    return ServiceReadiness(
        config.service_name,
        config.cluster_name,
        config.consumer_group_id,
        config.version,
        None,
        None,
        None,
        Verdict.UNKNOWN,
        [finding],
        {},
        [],
        None,
    )


# --- the report ---


def cluster_properties(configs: Sequence["ConsumerConfig"], properties_of: Callable[[str], Mapping[str, str]]) -> dict[str, Any]:
    """The client properties of each cluster the services belong to, where they can be had (for its features)."""
    from loomctl.configs.commands import by_cluster

    found: dict[str, Any] = {}
    for name in by_cluster(configs):
        try:
            found[name] = properties_of(name)
        except LoomError:
            continue  # the cluster's client cannot be built either: cluster_clients keeps why
    return found


def cluster_clients(configs: Sequence["ConsumerConfig"], admin_of: Callable[[str], Any]) -> dict[str, Any]:
    """The AdminClient of each cluster the services belong to, or the LoomError that building it raised (a cluster
    without brokers or with a bad properties file): called while the registry is at hand."""
    from loomctl.configs.commands import by_cluster

    clients: dict[str, Any] = {}
    for name in by_cluster(configs):
        try:
            clients[name] = admin_of(name)
        except LoomError as exc:
            clients[name] = exc
    return clients


def readiness(
    configs: Sequence["ConsumerConfig"],
    clients: Mapping[str, Any],
    *,
    timeout: float,
    properties: Mapping[str, Mapping[str, str]] | None = None,
) -> ReadinessReport:
    """Every classic-protocol service of ``configs`` judged against its own cluster (``clients``: its AdminClient, or
    the error building it; ``properties``: its client properties, to read its finalized features); each cluster asked
    once. A cluster that cannot be asked leaves its services unknown."""
    from loomctl.configs.commands import by_cluster

    classic = [c for c in configs if c.settings["group_protocol"] == "classic"]
    found: dict[str, ServiceReadiness] = {}
    cluster_problems: list[ClusterProblem] = []
    for name, on_cluster in by_cluster(classic).items():
        client = clients.get(name)
        try:
            if isinstance(client, LoomError):
                raise client
            if client is None:
                raise BackendUnavailable(f"no client for cluster {name}")
            facts = cluster_facts(
                name, client, [c.consumer_group_id for c in on_cluster], timeout=timeout, properties=(properties or {}).get(name)
            )
        except LoomError as exc:
            cluster_problems.append(ClusterProblem(name, str(exc), exc.exit_code))
            found |= {c.service_name: unreachable(c, str(exc)) for c in on_cluster}
            continue
        found |= {c.service_name: assess(c, facts) for c in on_cluster}
    return ReadinessReport(
        [found[c.service_name] for c in classic],
        [c.service_name for c in configs if uses_consumer_protocol(c.settings)],
        cluster_problems,
        [c.service_name for c in configs if uses_share_group(c.settings)],
    )
