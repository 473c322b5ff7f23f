"""The Kafka cluster as loomctl sees it: groups, committed offsets, log offsets, topic sizes,
partition increases, broker configs and the keys at the tail of a topic.

Every call loomctl makes to the cluster is here, through clients built by :func:`client_properties`
(quiet librdkafka logging, bounded socket timeouts, no topic auto-creation); the other modules
get answers and LoomErrors, never a confluent-kafka exception. Everything goes through one
confluent-kafka ``AdminClient``, but the key sampling, which must read records. Calls are batched the way the
brokers allow: one ``list_offsets`` request for every partition of interest, one
``describe_consumer_groups`` for all groups, and ``list_consumer_group_offsets`` (one group per
request, a protocol limit) issued concurrently with a bound, so the cost of a snapshot grows
with round trips in flight rather than with the number of groups.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from loomctl.errors import BackendUnavailable, BadInput
from loomctl.settings import Settings, redact

if TYPE_CHECKING:
    import logging

    from confluent_kafka.admin import AdminClient

DEFAULT_TIMEOUT_S = 10.0
OFFSET_FETCH_CONCURRENCY = 64
KEY_SAMPLE_RECORDS = 16
"""Records read from the tail of each partition to tell whether producers set keys."""
KEY_SAMPLE_MAX_PARTITIONS = 32
KEY_SAMPLE_TIMEOUT_S = 5.0


class Keyed:
    """What :func:`sample_keys` says of a topic's records."""

    YES = "yes"
    NO = "no"
    UNKNOWN = "unknown"
    """Nothing to read, or no client properties to read with."""

TopicPartition = tuple[str, int]
T = TypeVar("T")

# librdkafka's enum names, as Kafka itself (and kafka-consumer-groups) spells the states
_GROUP_STATES = {
    "STABLE": "Stable",
    "EMPTY": "Empty",
    "DEAD": "Dead",
    "PREPARING_REBALANCING": "PreparingRebalance",
    "PREPARING_REBALANCE": "PreparingRebalance",
    "COMPLETING_REBALANCING": "CompletingRebalance",
    "COMPLETING_REBALANCE": "CompletingRebalance",
    "ASSIGNING": "Assigning",
    "RECONCILING": "Reconciling",
    "UNKNOWN": "Unknown",
}


@dataclass(frozen=True)
class Member:
    member_id: str
    client_id: str
    host: str
    partitions: tuple[TopicPartition, ...] = ()


@dataclass(frozen=True)
class Group:
    group_id: str
    state: str
    members: tuple[Member, ...] = ()
    group_type: str | None = None
    """``classic`` or ``consumer`` (KIP-848) as the broker describes the group; None when it did not say."""
    assignor: str = ""
    """The assignor in use: the client-side strategy (classic) or the broker's (consumer protocol)."""

    def owner_of(self) -> dict[TopicPartition, Member]:
        """The member that owns each assigned partition; built once per group (callers only read it)."""
        if not self.members:
            return {}
        owners = self.__dict__.get("_owners")
        if owners is None:  # a cache beside the fields: frozen, compared and pickled by its fields alone
            owners = {tp: m for m in self.members for tp in m.partitions}
            self.__dict__["_owners"] = owners
        return owners

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_owners"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


@dataclass(frozen=True)
class LogOffsets:
    start: int
    end: int


@dataclass
class ClusterSnapshot:
    """What one round of requests saw: per group its description and committed offsets."""

    groups: dict[str, Group] = field(default_factory=dict)
    committed: dict[str, dict[TopicPartition, int | None]] = field(default_factory=dict)
    offsets: dict[TopicPartition, LogOffsets] = field(default_factory=dict)
    partition_counts: dict[str, int] = field(default_factory=dict)
    missing_groups: set[str] = field(default_factory=set)
    brokers: list[str] = field(default_factory=list)
    """The brokers ("host:port") named by the metadata the partition counts came from; empty without that request."""


def quiet_logger() -> "logging.Logger":
    """A logger for librdkafka's own lines (broker connects, shutdown), which would go to stderr."""
    import logging

    quiet = logging.getLogger("loomctl.librdkafka")
    if not quiet.handlers:
        quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    return quiet


def client_properties(kafka_properties: Mapping[str, str], *, timeout: float = DEFAULT_TIMEOUT_S, **extra: Any) -> dict[str, Any]:
    """The properties of every client loomctl builds: the cluster's (address, security), bounded
    socket timeouts, quiet librdkafka logging and no topic auto-creation, then ``extra``."""
    props: dict[str, Any] = dict(kafka_properties)
    props.setdefault("socket.timeout.ms", int(timeout * 1000))
    props.setdefault("socket.connection.setup.timeout.ms", int(timeout * 1000))
    props["logger"] = quiet_logger()
    # The AdminClient runs on a producer handle, whose metadata request for a missing topic
    # would create it on brokers with auto.create.topics.enable: a lookup must not do that.
    props.setdefault("allow.auto.create.topics", False)
    props.setdefault("log_level", 4)  # warnings and worse; info lines (BGQUEUE at exit) are noise here
    props.update(extra)
    return props


def admin_client(settings: Settings, *, timeout: float = DEFAULT_TIMEOUT_S) -> "AdminClient":
    """An AdminClient for the configured cluster; librdkafka's own log lines are kept quiet."""
    return admin_for(settings.kafka_properties(), timeout=timeout)


def admin_for(kafka_properties: Mapping[str, str], *, timeout: float = DEFAULT_TIMEOUT_S) -> "AdminClient":
    """An AdminClient from client properties (a properties file's, or the address alone)."""
    from confluent_kafka.admin import AdminClient

    try:
        return AdminClient(client_properties(kafka_properties, timeout=timeout))
    except Exception as exc:  # KafkaException for a bad property in the properties file
        # librdkafka may quote a property's value in its message: a secret one is masked
        raise BadInput(f"invalid Kafka client configuration: {redact(error_message(exc), dict(kafka_properties))}") from None


def error_message(exc: BaseException) -> str:
    """The first line of a confluent-kafka error's own text (or of any exception's)."""
    error = exc.args[0] if exc.args else None
    text = error.str() if hasattr(error, "str") else str(exc)
    return text.strip().splitlines()[0] if text and text.strip() else type(exc).__name__


def unreachable(exc: BaseException, what: str) -> BackendUnavailable:
    return BackendUnavailable(f"Kafka did not answer {what}: {error_message(exc)}")


def _result(future: Any, timeout: float, what: str) -> Any:
    import concurrent.futures

    try:
        return future.result(timeout=timeout)
    except concurrent.futures.TimeoutError:
        raise BackendUnavailable(f"Kafka did not answer {what} within {timeout:g} s") from None


def list_group_ids(admin: "AdminClient", *, timeout: float = DEFAULT_TIMEOUT_S) -> list[str]:
    """Every group id the cluster knows (consumer groups and offset-only 'simple' groups)."""
    return sorted(list_groups(admin, timeout=timeout))


def list_groups(admin: "AdminClient", *, timeout: float = DEFAULT_TIMEOUT_S) -> dict[str, str]:
    """Every group the cluster knows, with its state as the listing reports it."""
    return {group_id: state for group_id, (state, _) in list_group_listings(admin, timeout=timeout).items()}


def list_group_listings(admin: "AdminClient", *, timeout: float = DEFAULT_TIMEOUT_S) -> dict[str, tuple[str, str | None]]:
    """Every group the cluster knows: (state, type) as the listing reports them. The type is ``classic`` or
    ``consumer`` (KIP-848), None where the broker does not say (before Kafka 3.8)."""
    from confluent_kafka import KafkaException

    try:
        result = _result(admin.list_consumer_groups(request_timeout=timeout), timeout + 5, "list_consumer_groups")
    except KafkaException as exc:
        raise unreachable(exc, "list_consumer_groups") from None
    return {g.group_id: (_GROUP_STATES.get(getattr(getattr(g, "state", None), "name", ""), "Unknown"), _group_type(g))
            for g in result.valid}


def describe_groups(admin: "AdminClient", group_ids: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT_S) -> dict[str, Group]:
    """Every group's state and members with their assigned partitions, in one request."""
    return _described(_describe(admin, group_ids, timeout), timeout)


def _describe(admin: "AdminClient", group_ids: Sequence[str], timeout: float) -> dict[str, Any]:
    """Send the describe request; its futures are collected later by :func:`_described`."""
    from confluent_kafka import KafkaException

    if not group_ids:
        return {}
    try:
        return admin.describe_consumer_groups(list(group_ids), request_timeout=timeout)
    except KafkaException as exc:
        raise unreachable(exc, "describe_consumer_groups") from None


def _described(futures: dict[str, Any], timeout: float, known_types: Mapping[str, str | None] | None = None) -> dict[str, Group]:
    from confluent_kafka import KafkaException

    groups: dict[str, Group] = {}
    for group_id, future in futures.items():
        try:
            d = _result(future, timeout + 5, "describe_consumer_groups")
        except KafkaException as exc:
            if _is_transport(exc):
                raise unreachable(exc, "describe_consumer_groups") from None
            groups[group_id] = Group(group_id, "Unknown", group_type=(known_types or {}).get(group_id))
            continue
        state = _GROUP_STATES.get(getattr(d.state, "name", str(d.state)), str(d.state))
        members = tuple(
            Member(
                m.member_id,
                m.client_id,
                (m.host or "").lstrip("/"),
                tuple(sorted((tp.topic, tp.partition) for tp in (m.assignment.topic_partitions if m.assignment else []))),
            )
            for m in d.members
        )
        # a group the broker does not know is described as a Dead classic group: it has no type; an older
        # broker's describe says UNKNOWN, where the listing (when there was one) may still tell
        group_type = None if state == "Dead" else (_group_type(d) or (known_types or {}).get(group_id))
        if state == "Unknown" and group_type == "consumer" and _reconciling(d.members):
            # librdkafka has no code for the consumer protocol's Assigning and Reconciling states (both reach
            # us as UNKNOWN); a member whose partitions differ from its target assignment proves the group is
            # reconciling. Otherwise the client's own word, Unknown, stands: never Dead.
            state = "Reconciling"
        groups[group_id] = Group(group_id, state, members, group_type, d.partition_assignor or "")
    return groups


def _reconciling(members: Sequence[Any]) -> bool:
    """Whether a consumer-protocol member's current partitions differ from its target assignment."""
    def partitions(assignment: Any) -> set[TopicPartition]:
        return {(tp.topic, tp.partition) for tp in (assignment.topic_partitions if assignment else [])}

    return any(
        getattr(m, "target_assignment", None) is not None and partitions(m.assignment) != partitions(m.target_assignment)
        for m in members
    )


def _group_type(description: Any) -> str | None:
    """The group's protocol type in Kafka's own words (classic, consumer); None for UNKNOWN (an older broker)."""
    name = getattr(getattr(description, "type", None), "name", None)
    return name.lower() if name and name != "UNKNOWN" else None


# The one vocabulary of Kafka errors that are not about the request itself:
# UNREACHABLE_ERRORS say the cluster (or the group's coordinator) did not answer, so a snapshot
# built without that answer would be wrong and fails as a whole; TRANSIENT_ERRORS add the ones
# that may pass on a retry (a leader or controller moving), so a change they hit stays pending.
UNREACHABLE_ERRORS = frozenset({
    "_TRANSPORT", "_TIMED_OUT", "_ALL_BROKERS_DOWN", "_MSG_TIMED_OUT", "REQUEST_TIMED_OUT",
    "COORDINATOR_NOT_AVAILABLE", "NOT_COORDINATOR", "COORDINATOR_LOAD_IN_PROGRESS",
})
TRANSIENT_ERRORS = UNREACHABLE_ERRORS | {"_WAIT_COORD", "_DESTROY", "NOT_CONTROLLER", "LEADER_NOT_AVAILABLE", "NETWORK_EXCEPTION"}


def _error_name(exc: BaseException) -> str | None:
    """The KafkaError's code as confluent_kafka.KafkaError names it (``_TRANSPORT``, ``NOT_CONTROLLER``)."""
    error = exc.args[0] if exc.args else None
    return error.name() if hasattr(error, "name") and hasattr(error, "code") else None


def _is_transport(exc: BaseException) -> bool:
    return _error_name(exc) in UNREACHABLE_ERRORS


def is_transient(exc: BaseException) -> bool:
    """Whether an error may pass on a retry: the cluster unreachable, a leader moving, or what
    librdkafka calls retriable. An exception that carries no KafkaError counts as transient."""
    error = exc.args[0] if exc.args else None
    if not hasattr(error, "retriable"):
        return True
    return _error_name(exc) in TRANSIENT_ERRORS or bool(error.retriable())


def error_text(exc: BaseException) -> str:
    """``NAME: message`` of a KafkaError (the broker's words), else the exception's own text."""
    error = exc.args[0] if exc.args else None
    if hasattr(error, "name") and hasattr(error, "str"):
        return f"{error.name()}: {error.str()}"
    return str(exc) or type(exc).__name__


def _bounded(submit: Callable[[T], Any], items: Iterable[T], limit: int, timeout: float, what: str) -> list[tuple[T, Any]]:
    """Submit ``items`` with at most ``limit`` futures in flight; (item, future) pairs in order, all done."""
    gate = threading.BoundedSemaphore(limit)
    pairs: list[tuple[T, Any]] = []
    for item in items:
        if not gate.acquire(timeout=timeout):
            raise BackendUnavailable(f"Kafka did not answer {what} within {timeout:g} s")
        try:
            future = submit(item)
        except BaseException:
            gate.release()
            raise
        future.add_done_callback(lambda _f: gate.release())
        pairs.append((item, future))
    return pairs


def committed_offsets(
    admin: "AdminClient",
    group_ids: Sequence[str],
    *,
    concurrency: int = OFFSET_FETCH_CONCURRENCY,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> dict[str, dict[TopicPartition, int | None]]:
    """Per group, its committed offset of every partition it has one for (None: none stored)."""
    from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException

    def submit(group_id: str) -> Any:
        return admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group_id)], request_timeout=timeout)[group_id]

    try:
        pairs = _bounded(submit, group_ids, concurrency, timeout + 5, "list_consumer_group_offsets")
    except KafkaException as exc:
        raise unreachable(exc, "list_consumer_group_offsets") from None
    result: dict[str, dict[TopicPartition, int | None]] = {}
    for group_id, future in pairs:
        try:
            answer = _result(future, timeout + 5, "list_consumer_group_offsets")
        except KafkaException as exc:
            if _is_transport(exc):
                raise unreachable(exc, "list_consumer_group_offsets") from None
            result[group_id] = {}
            continue
        result[group_id] = {
            (tp.topic, tp.partition): (tp.offset if tp.offset >= 0 else None)
            for tp in answer.topic_partitions
            if not tp.error
        }
    return result


def topic_partition_counts(admin: "AdminClient", topics: Iterable[str] | None = None, *, timeout: float = DEFAULT_TIMEOUT_S) -> dict[str, int]:
    """Partition count per topic from the cluster metadata (one request); absent topics are left out."""
    return _topic_metadata(admin, topics, timeout)[0]


def _topic_metadata(admin: "AdminClient", topics: Iterable[str] | None, timeout: float) -> tuple[dict[str, int], list[str]]:
    """The partition counts of :func:`topic_partition_counts` and the brokers ("host:port") the same answer names."""
    from confluent_kafka import KafkaException

    from loomctl.names import is_topic_name

    # a name Kafka cannot give a topic has none; librdkafka would raise on it instead of answering
    wanted = None if topics is None else sorted({t for t in topics if is_topic_name(t)})
    if wanted == []:
        return {}, []
    try:
        if wanted is not None and len(wanted) == 1:
            metadata = admin.list_topics(topic=wanted[0], timeout=timeout)
        else:
            metadata = admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        raise unreachable(exc, "a metadata request") from None
    counts = {name: len(t.partitions) for name, t in metadata.topics.items() if t.error is None and t.partitions}
    if wanted is not None:
        counts = {name: counts[name] for name in wanted if name in counts}
    brokers = [f"[{b.host}]:{b.port}" if ":" in b.host else f"{b.host}:{b.port}" for _, b in sorted(metadata.brokers.items())]
    return counts, brokers


def log_offsets(admin: "AdminClient", partitions: Iterable[TopicPartition], *, timeout: float = DEFAULT_TIMEOUT_S) -> dict[TopicPartition, LogOffsets]:
    """Log start and end offset of every partition: one ``list_offsets`` request for each bound, together."""
    from confluent_kafka import KafkaException
    from confluent_kafka import TopicPartition as KafkaTopicPartition
    from confluent_kafka.admin import OffsetSpec

    wanted = sorted(set(partitions))
    if not wanted:
        return {}
    ends: dict[TopicPartition, int] = {}
    starts: dict[TopicPartition, int] = {}
    requests = []
    for spec, into in ((OffsetSpec.latest(), ends), (OffsetSpec.earliest(), starts)):
        try:  # both requests in flight at once
            requests.append((admin.list_offsets({KafkaTopicPartition(t, p): spec for t, p in wanted}, request_timeout=timeout), into))
        except KafkaException as exc:
            raise unreachable(exc, "list_offsets") from None
    for futures, into in requests:
        for tp, future in futures.items():
            try:
                into[(tp.topic, tp.partition)] = _result(future, timeout + 5, "list_offsets").offset
            except KafkaException as exc:
                if _is_transport(exc):
                    raise unreachable(exc, "list_offsets") from None
                # a partition that is gone or leaderless: left out, its lag is unknown
    return {tp: LogOffsets(starts.get(tp, 0), ends[tp]) for tp in wanted if tp in ends}


def snapshot(
    admin: "AdminClient",
    group_ids: Sequence[str],
    *,
    concurrency: int = OFFSET_FETCH_CONCURRENCY,
    timeout: float = DEFAULT_TIMEOUT_S,
    known_states: dict[str, str] | None = None,
    known_types: dict[str, str | None] | None = None,
) -> ClusterSnapshot:
    """One consistent-as-possible look at ``group_ids``: states, members, commits, log offsets.

    A group's partitions are those it has committed on or has assigned, widened to every
    partition of those topics, so a partition added since the last commit shows as unknown.
    ``known_states`` and ``known_types`` are what a listing said (:func:`list_group_listings`).
    """
    snap = ClusterSnapshot()
    types = known_types or {}
    # An Empty group has no members to describe: when the listing already says so, skip it.
    empty = {g for g in group_ids if (known_states or {}).get(g) == "Empty"}
    described = _describe(admin, [g for g in group_ids if g not in empty], timeout)  # in flight during the offset fetches
    snap.committed = committed_offsets(admin, group_ids, concurrency=concurrency, timeout=timeout)
    snap.groups = {g: Group(g, "Empty", group_type=types.get(g)) for g in empty}
    snap.groups.update(_described(described, timeout, types))
    topics: set[str] = set()
    for group_id in group_ids:
        committed = snap.committed.get(group_id) or {}
        group = snap.groups.get(group_id)
        owners = group.owner_of() if group is not None else {}
        topics.update(t for t, _ in committed)
        topics.update(t for t, _ in owners)
        # a group with members (a consumer-protocol group mid-rebalance reads as Unknown) is never missing
        if not committed and not owners and (group is None or (group.state in ("Dead", "Unknown") and not group.members)):
            snap.missing_groups.add(group_id)
    if topics:
        snap.partition_counts, snap.brokers = _topic_metadata(admin, topics, timeout)
    partitions = [(t, p) for t, n in snap.partition_counts.items() for p in range(n)]
    snap.offsets = log_offsets(admin, partitions, timeout=timeout)
    return snap


def create_partitions(
    admin: "AdminClient", targets: Mapping[str, int], *, validate_only: bool, timeout: float
) -> dict[str, tuple[str, bool] | None]:
    """One create_partitions request for every topic: per topic None (accepted) or (the broker's
    error, whether it may pass)."""
    import concurrent.futures

    from confluent_kafka import KafkaException
    from confluent_kafka.admin import NewPartitions

    if not targets:
        return {}
    try:
        futures = admin.create_partitions(
            [NewPartitions(t, n) for t, n in targets.items()],
            validate_only=validate_only, request_timeout=timeout, operation_timeout=timeout,
        )
    except KafkaException as exc:
        failure = (error_text(exc), is_transient(exc))
        return {t: failure for t in targets}
    outcome: dict[str, tuple[str, bool] | None] = {}
    for topic, future in futures.items():
        try:
            future.result(timeout=timeout + 5)
            outcome[topic] = None
        except concurrent.futures.TimeoutError:
            outcome[topic] = (f"no answer within {timeout:g} s", True)
        except KafkaException as exc:
            outcome[topic] = (error_text(exc), is_transient(exc))
    return outcome


def broker_configs(admin: "AdminClient", names: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT_S) -> dict[str, str]:
    """The values of ``names`` in the config of one broker of the cluster (the lowest id); a name
    the broker does not report is left out."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import ConfigResource

    try:
        brokers = admin.list_topics(timeout=timeout).brokers
        if not brokers:
            raise BackendUnavailable("Kafka's metadata names no broker")
        resource = ConfigResource(ConfigResource.Type.BROKER, str(min(brokers)))
        entries = _result(admin.describe_configs([resource], request_timeout=timeout)[resource], timeout + 5, "describe_configs")
    except KafkaException as exc:
        raise unreachable(exc, "describe_configs") from None
    return {name: entries[name].value for name in names if name in entries and entries[name].value is not None}


def sample_keys(
    admin: "AdminClient",
    kafka_properties: Mapping[str, str] | None,
    partition_counts: Mapping[str, int],
    *,
    records: int = KEY_SAMPLE_RECORDS,
    timeout: float = KEY_SAMPLE_TIMEOUT_S,
) -> dict[str, str]:
    """Per topic ``yes`` when a record at the tail of a partition has a key, ``no`` when none
    does, ``unknown`` when there is nothing to read (or no client properties to read with)."""
    result = {t: Keyed.UNKNOWN for t in partition_counts}
    if kafka_properties is None or not partition_counts:
        return result
    wanted = [(t, p) for t, n in partition_counts.items() for p in range(min(n, KEY_SAMPLE_MAX_PARTITIONS))]
    try:
        offsets = log_offsets(admin, wanted, timeout=timeout)
    except BackendUnavailable:
        return result
    starts = {tp: max(o.start, o.end - records) for tp, o in offsets.items() if o.end > o.start}
    if not starts:
        return result
    ends = {tp: offsets[tp].end for tp in starts}
    from confluent_kafka import Consumer, KafkaError, KafkaException
    from confluent_kafka import TopicPartition as KafkaTopicPartition

    config = client_properties(kafka_properties, timeout=timeout, **{
        "group.id": "loomctl-key-sample", "enable.auto.commit": False, "enable.auto.offset.store": False,
        "enable.partition.eof": True,
    })
    seen: dict[str, bool] = {}
    try:
        consumer = Consumer(config)
    except KafkaException:
        return result
    try:
        # assign() never joins the group, so the sample leaves no group and no offsets behind
        consumer.assign([KafkaTopicPartition(t, p, o) for (t, p), o in starts.items()])
        remaining = set(starts)
        deadline = time.monotonic() + timeout
        while remaining and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=500, timeout=0.2):
                tp = (message.topic(), message.partition())
                if message.error():
                    if message.error().code() == KafkaError._PARTITION_EOF:
                        remaining.discard(tp)
                    continue
                seen[tp[0]] = seen.get(tp[0], False) or message.key() is not None
                if message.offset() + 1 >= ends.get(tp, 0):
                    remaining.discard(tp)
    except KafkaException:
        pass
    finally:
        consumer.close()
    for topic, has_key in seen.items():
        result[topic] = Keyed.YES if has_key else Keyed.NO
    return result


# --- group configs (KIP-848): the settings the broker owns for a consumer-protocol group ---


@dataclass(frozen=True)
class GroupConfig:
    value: str | None
    dynamic: bool
    """Set for this group (by `config push` or kafka-configs), not the broker's default."""


def describe_group_configs(
    admin: "AdminClient", group_ids: Sequence[str], names: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT_S,
) -> dict[str, dict[str, GroupConfig]]:
    """The group configs ``names`` of each group, in one describe_configs request."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import ConfigResource, ConfigSource, ResourceType

    if not group_ids:
        return {}
    resources = {g: ConfigResource(ResourceType.GROUP, g) for g in group_ids}
    try:
        futures = admin.describe_configs(list(resources.values()), request_timeout=timeout)
        found: dict[str, dict[str, GroupConfig]] = {}
        for group_id, resource in resources.items():
            entries = _result(futures[resource], timeout + 5, "describe_configs")
            found[group_id] = {
                n: GroupConfig(entries[n].value, entries[n].source == ConfigSource.GROUP_CONFIG.value)
                for n in names if n in entries
            }
    except KafkaException as exc:
        raise unreachable(exc, "describe_configs") from None
    return found


def alter_group_configs(
    admin: "AdminClient", changes: Mapping[str, Mapping[str, str]], *, timeout: float = DEFAULT_TIMEOUT_S,
) -> dict[str, str | None]:
    """Set group configs with one incremental_alter_configs request: group -> None where the broker
    took every value, else its refusal in its own words. Raises BackendUnavailable when the
    cluster does not answer at all (then nothing is known to be set)."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

    resources = {
        g: ConfigResource(ResourceType.GROUP, g, incremental_configs=[
            ConfigEntry(name, value, incremental_operation=AlterConfigOpType.SET) for name, value in values.items()])
        for g, values in changes.items() if values
    }
    if not resources:
        return {}
    try:
        futures = admin.incremental_alter_configs(list(resources.values()), request_timeout=timeout)
    except KafkaException as exc:
        raise unreachable(exc, "incremental_alter_configs") from None
    outcome: dict[str, str | None] = {}
    for group_id, resource in resources.items():
        try:
            _result(futures[resource], timeout + 5, "incremental_alter_configs")
            outcome[group_id] = None
        except KafkaException as exc:
            if _is_transport(exc):
                raise unreachable(exc, "incremental_alter_configs") from None
            outcome[group_id] = error_text(exc)
    return outcome
