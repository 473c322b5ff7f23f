"""The Kafka cluster as loomctl sees it: groups, committed offsets, log offsets, topic sizes.

Everything goes through one confluent-kafka ``AdminClient``. Calls are batched the way the
brokers allow: one ``list_offsets`` request for every partition of interest, one
``describe_consumer_groups`` for all groups, and ``list_consumer_group_offsets`` (one group per
request, a protocol limit) issued concurrently with a bound, so the cost of a snapshot grows
with round trips in flight rather than with the number of groups.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from loomctl.errors import BackendUnavailable, BadInput, NotFound
from loomctl.settings import Settings

if TYPE_CHECKING:
    import logging

    from confluent_kafka.admin import AdminClient

DEFAULT_TIMEOUT_S = 10.0
OFFSET_FETCH_CONCURRENCY = 64

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

    def owner_of(self) -> dict[TopicPartition, Member]:
        return {tp: m for m in self.members for tp in m.partitions}


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


def quiet_logger() -> "logging.Logger":
    """A logger for librdkafka's own lines (broker connects, shutdown), which would go to stderr."""
    import logging

    quiet = logging.getLogger("loomctl.librdkafka")
    if not quiet.handlers:
        quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    return quiet


def admin_client(settings: Settings, *, timeout: float = DEFAULT_TIMEOUT_S) -> "AdminClient":
    """An AdminClient for the configured cluster; librdkafka's own log lines are kept quiet."""
    from confluent_kafka.admin import AdminClient

    props: dict[str, Any] = dict(settings.kafka_properties())
    props.setdefault("socket.timeout.ms", int(timeout * 1000))
    props.setdefault("socket.connection.setup.timeout.ms", int(timeout * 1000))
    props["logger"] = quiet_logger()
    # The AdminClient runs on a producer handle, whose metadata request for a missing topic
    # would create it on brokers with auto.create.topics.enable: a lookup must not do that.
    props.setdefault("allow.auto.create.topics", False)
    props.setdefault("log_level", 4)  # warnings and worse; info lines (BGQUEUE at exit) are noise here
    try:
        return AdminClient(props)
    except Exception as exc:  # KafkaException for a bad property in the properties file
        raise BadInput(f"invalid Kafka client configuration: {error_message(exc)}") from None


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
    from confluent_kafka import KafkaException

    try:
        result = _result(admin.list_consumer_groups(request_timeout=timeout), timeout + 5, "list_consumer_groups")
    except KafkaException as exc:
        raise unreachable(exc, "list_consumer_groups") from None
    return {g.group_id: _GROUP_STATES.get(getattr(g.state, "name", ""), "Unknown") for g in result.valid}


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


def _described(futures: dict[str, Any], timeout: float) -> dict[str, Group]:
    from confluent_kafka import KafkaException

    groups: dict[str, Group] = {}
    for group_id, future in futures.items():
        try:
            d = _result(future, timeout + 5, "describe_consumer_groups")
        except KafkaException as exc:
            if _is_transport(exc):
                raise unreachable(exc, "describe_consumer_groups") from None
            groups[group_id] = Group(group_id, "Unknown")
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
        groups[group_id] = Group(group_id, state, members)
    return groups


def _is_transport(exc: BaseException) -> bool:
    from confluent_kafka import KafkaError

    error = exc.args[0] if exc.args else None
    code = error.code() if hasattr(error, "code") else None
    return code in {
        KafkaError._TRANSPORT, KafkaError._TIMED_OUT, KafkaError._ALL_BROKERS_DOWN,
        KafkaError._MSG_TIMED_OUT, KafkaError.REQUEST_TIMED_OUT, KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    }


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
    from confluent_kafka import KafkaException

    wanted = None if topics is None else sorted(set(topics))
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
    return counts


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
) -> ClusterSnapshot:
    """One consistent-as-possible look at ``group_ids``: states, members, commits, log offsets.

    A group's partitions are those it has committed on or has assigned, widened to every
    partition of those topics, so a partition added since the last commit shows as unknown.
    """
    snap = ClusterSnapshot()
    # An Empty group has no members to describe: when the listing already says so, skip it.
    empty = {g for g in group_ids if (known_states or {}).get(g) == "Empty"}
    described = _describe(admin, [g for g in group_ids if g not in empty], timeout)  # in flight during the offset fetches
    snap.committed = committed_offsets(admin, group_ids, concurrency=concurrency, timeout=timeout)
    snap.groups = {g: Group(g, "Empty") for g in empty}
    snap.groups.update(_described(described, timeout))
    topics: set[str] = set()
    for group_id in group_ids:
        known = set(snap.committed.get(group_id, {}))
        known.update(snap.groups[group_id].owner_of() if group_id in snap.groups else {})
        topics.update(t for t, _ in known)
        if not known and snap.groups.get(group_id, Group(group_id, "Dead")).state in ("Dead", "Unknown"):
            snap.missing_groups.add(group_id)
    snap.partition_counts = topic_partition_counts(admin, topics, timeout=timeout) if topics else {}
    partitions = [(t, p) for t, n in snap.partition_counts.items() for p in range(n)]
    snap.offsets = log_offsets(admin, partitions, timeout=timeout)
    return snap
