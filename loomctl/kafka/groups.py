"""Consumer groups: their listing, descriptions, committed offsets, and the snapshot `lag show` and the collector read.

librdkafka sends one request per group for both ``describe_consumer_groups`` (a fan-out of one DescribeGroups per
group) and ``list_consumer_group_offsets`` (one group per call), all to the group's coordinator, which answers the
requests of a connection one after the other. A request's timeout runs from when it is queued, so the last of many
waits behind all the others: 5,016 groups described at once with a 2 s timeout time out, and a request timing out
while others are in flight makes librdkafka abort the whole process (``rd_kafka_enq_once_del_source_return:
Assertion 'eonce->refcnt > 0'``, confluentinc/librdkafka#4605, unfixed in 2.16). So groups go in chunks of
:data:`SNAPSHOT_CHUNK`, with a bounded number of requests in flight, and each request's timeout is the caller's
plus :data:`QUEUED_REQUEST_S` for every request that may be queued ahead of it (:func:`queued_timeout`): a timeout
is reached only when the coordinator is really not answering, never because of the amount of work asked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from sys import intern
from typing import TYPE_CHECKING, Any

from loomctl.errors import BackendUnavailable, Unsupported
from loomctl.kafka.clients import (
    DEFAULT_TIMEOUT_S,
    TopicPartition,
    _error_name,
    bounded,
    error_text,
    in_background,
    is_transient,
    is_unreachable,
    result_within,
    unreachable,
)
from loomctl.kafka.topics import LogOffsets, log_offsets, topic_metadata

if TYPE_CHECKING:
    from confluent_kafka.admin import AdminClient

OFFSET_FETCH_CONCURRENCY = 64
"""Offset requests in flight at once (one group each)."""
SNAPSHOT_CHUNK = 250
"""Groups per chunk of a snapshot: their descriptions and offset requests are in flight together, and all are
answered before the next chunk is sent. Measured at 5,016 groups on a one-broker dev stack (bench/many_groups.py)."""
MIN_CHUNK = 25
"""The smallest chunk the collector shrinks to after its snapshot's client crashed."""
QUEUED_REQUEST_S = 0.02
"""What one single-group request queued ahead may add to a request's wait: a dev broker answers one in 0.7 ms
(describe) to 1 ms (offsets) when idle; this leaves a margin of 20 for a loaded or remote coordinator."""


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
    consumer_group_id: str
    group_state: str
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
    share_offsets: dict[str, dict[TopicPartition, tuple[int | None, int | None]]] = field(default_factory=dict)
    """Share groups (KIP-932): per partition the broker's start offset and lag (KIP-1226); None where the broker
    says it does not know (a partition the group has not started on, or a lag it cannot count)."""
    unmeasured: dict[str, str] = field(default_factory=dict)
    """Groups listed but not measured, with the reason (a Kafka Connect group, a type loomctl does not know)."""


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
        result = result_within(admin.list_consumer_groups(request_timeout=timeout), timeout + 5, "list_consumer_groups")
    except KafkaException as exc:
        raise unreachable(exc, "list_consumer_groups") from None
    return {
        g.group_id: (_GROUP_STATES.get(getattr(getattr(g, "state", None), "name", ""), "Unknown"), _group_type(g))
        for g in result.valid
    }


def queued_timeout(timeout: float, queued: int) -> float:
    """The timeout of a request behind at most ``queued`` single-group requests on the coordinator's connection:
    ``timeout`` for the request itself, and :data:`QUEUED_REQUEST_S` for each one ahead."""
    return timeout + max(queued, 0) * QUEUED_REQUEST_S


def chunks(items: Sequence[str], size: int) -> list[Sequence[str]]:
    size = max(int(size), 1)
    return [items[start : start + size] for start in range(0, len(items), size)]


def describe_groups(
    admin: "AdminClient", group_ids: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT_S, chunk_size: int = SNAPSHOT_CHUNK
) -> dict[str, Group]:
    """Every group's state and members with their assigned partitions, ``chunk_size`` groups at a time."""
    import time

    groups: dict[str, Group] = {}
    for chunk in chunks(group_ids, chunk_size):
        within = queued_timeout(timeout, len(chunk))
        try:
            groups.update(_described(_describe(admin, chunk, within), within))
        except CoordinatorBusy:
            # a coordinator still loading its partition of __consumer_offsets (a broker that just started, or a
            # partition that just moved) answers in a moment: once more, then its error stands
            time.sleep(COORDINATOR_RETRY_S)
            groups.update(_described(_describe(admin, chunk, within), within))
    return groups


COORDINATOR_ERRORS = frozenset({"COORDINATOR_LOAD_IN_PROGRESS", "COORDINATOR_NOT_AVAILABLE", "NOT_COORDINATOR"})
COORDINATOR_RETRY_S = 1.0


class CoordinatorBusy(BackendUnavailable):
    """A group's coordinator did not answer yet (:data:`COORDINATOR_ERRORS`)."""


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
            d = result_within(future, timeout + 5, "describe_consumer_groups")
        except KafkaException as exc:
            if _error_name(exc) in COORDINATOR_ERRORS:
                raise CoordinatorBusy(str(unreachable(exc, "describe_consumer_groups"))) from None
            if is_unreachable(exc):
                raise unreachable(exc, "describe_consumer_groups") from None
            groups[group_id] = Group(group_id, "Unknown", group_type=(known_types or {}).get(group_id))
            continue
        state = _GROUP_STATES.get(getattr(d.state, "name", str(d.state)), str(d.state))
        members = tuple(
            Member(
                m.member_id,
                m.client_id,
                (m.host or "").lstrip("/"),
                tuple(sorted((intern(tp.topic), tp.partition) for tp in (m.assignment.topic_partitions if m.assignment else []))),
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


def batched_descriptions(
    wire: Any, group_ids: Sequence[str], types: Mapping[str, str | None], *, timeout: float = DEFAULT_TIMEOUT_S
) -> dict[str, Group]:
    """:func:`describe_groups` through the group-types client (``wire``): one DescribeGroups per coordinator per
    :data:`BATCH_GROUPS` classic groups, one ConsumerGroupDescribe per coordinator for the consumer-protocol ones
    (``types``, from the listing, routes them; a group the listing did not type is asked as a classic group first).
    librdkafka asks one group per request: 2,000 groups took it 1.2-1.6 s, these 0.1 s.

    The same Groups as librdkafka's: a group the broker does not know is Dead with no type; one whose coordinator
    still has no answer after the client's retries fails the snapshot (CoordinatorBusy); another group error (not
    authorized) leaves it Unknown. A consumer-protocol group's state is the broker's own word (Assigning,
    Reconciling), which librdkafka reads as Unknown."""
    from loomctl.kafka import protocol

    consumer = [g for g in group_ids if types.get(g) == "consumer"]
    classic = [g for g in group_ids if types.get(g) != "consumer"]
    within = queued_timeout(timeout, len(group_ids) // BATCH_GROUPS)
    groups: dict[str, Group] = {}
    for g, d in protocol.describe_classic_groups(wire, classic, timeout=within, per_request=BATCH_GROUPS).items():
        if d.error is None:
            members = tuple(Member(m.member_id, m.client_id, m.host, m.assignment) for m in d.members)
            kind = None if d.state == "Dead" else "classic"
            groups[g] = Group(g, d.state, members, kind, d.assignor)
        elif _error_of(d.error) == "GROUP_ID_NOT_FOUND" and g not in types:
            consumer.append(g)  # not a classic group: it may be a consumer-protocol group the listing did not type
        else:
            groups[g] = _unanswered(g, d.error, types)
    if consumer:
        try:
            described = protocol.describe_consumer_groups(wire, consumer, timeout=within)
        except Unsupported:  # a broker before KIP-848 has no such group
            described = {}
        for g in consumer:
            c = described.get(g)
            if c is None:
                groups[g] = Group(g, "Dead")
            elif c.error is None:
                members = tuple(Member(m.member_id, m.client_id, m.host, m.assignment) for m in c.members)
                groups[g] = Group(g, c.state, members, None if c.state == "Dead" else "consumer", c.assignor)
            else:
                groups[g] = _unanswered(g, c.error, types)
    return groups


def _error_of(error: str) -> str:
    return error.split(":", 1)[0].split(" ", 1)[0]


def _unanswered(group_id: str, error: str, types: Mapping[str, str | None]) -> Group:
    name = _error_of(error)
    if name in COORDINATOR_ERRORS:
        raise CoordinatorBusy(f"describe of group {group_id}: {error}")
    if name == "GROUP_ID_NOT_FOUND":
        return Group(group_id, "Dead")
    return Group(group_id, "Unknown", group_type=types.get(group_id))


MEASURED_PROTOCOLS = ("consumer", "")
"""Protocol types of the groups librdkafka reads (consumer groups of either protocol, and offset-only groups)."""


def _other_kinds(
    snap: ClusterSnapshot,
    group_ids: Sequence[str],
    types: Mapping[str, str | None],
    protocols: Mapping[str, str],
    states: Mapping[str, str],
    wire: Any,
    timeout: float,
) -> list[str]:
    """Share and streams groups read through ``wire`` into ``snap``, other kinds listed as unmeasured; the groups
    left for librdkafka (classic and consumer-protocol groups) are returned."""
    share = [g for g in group_ids if types.get(g) == "share"]
    streams = [g for g in group_ids if types.get(g) == "streams"]
    other = [
        g
        for g in group_ids
        if types.get(g) not in ("share", "streams") and protocols.get(g, "consumer") not in MEASURED_PROTOCOLS
    ]
    for g in other:
        kind = protocols[g]
        snap.groups[g] = Group(g, states.get(g, "Unknown"), group_type=kind)  # "connect": more than its "classic"
        snap.unmeasured[g] = (
            "a Kafka Connect group: its workers share connectors, not partitions; no offsets to measure"
            if kind == "connect"
            else f"a group of protocol type {kind!r}: loomctl does not measure it"
        )
    if (share or streams) and wire is None:
        for g in share + streams:
            snap.groups[g] = Group(g, states.get(g, "Unknown"), group_type=types.get(g))
            snap.unmeasured[g] = f"a {types.get(g)} group: not read here"
    elif share or streams:
        from loomctl.kafka import protocol

        # a broker that lists groups of a type but cannot describe them as loomctl reads them (Kafka 4.0's early
        # share groups): those groups are listed unmeasured with the reason, the others are still read
        if share:
            try:
                described = protocol.describe_share_groups(wire, share, timeout=timeout)
                offsets = protocol.share_group_offsets(wire, share, timeout=timeout)
            except Unsupported as exc:
                _unread(snap, share, "share", states, exc)
            else:
                for g in share:
                    d = described.get(g)
                    snap.groups[g] = _wire_group(g, d, "share", states)
                    snap.share_offsets[g] = {
                        (intern(t), p): (o.start_offset, o.lag) for (t, p), o in sorted((offsets.get(g) or {}).items())
                    }
        if streams:
            try:
                running = protocol.describe_streams_groups(wire, streams, timeout=timeout)
                fetched = protocol.committed_offsets(wire, streams, timeout=timeout)
            except Unsupported as exc:
                _unread(snap, streams, "streams", states, exc)
            else:
                for g, committed in fetched.items():
                    snap.committed[g] = dict(committed.offsets)
                for g in streams:
                    snap.groups[g] = _wire_group(g, running.get(g), "streams", states)
    skipped = set(share) | set(streams) | set(other)
    return [g for g in group_ids if g not in skipped] if skipped else list(group_ids)


def _unread(snap: ClusterSnapshot, group_ids: Sequence[str], kind: str, states: Mapping[str, str], why: Exception) -> None:
    for g in group_ids:
        snap.groups[g] = Group(g, states.get(g, "Unknown"), group_type=kind)
        snap.unmeasured[g] = f"a {kind} group: {why}"


def missing_group_types(wire: Any) -> list[str]:
    """The group types a listing of every group cannot show because the cluster's broker lacks them, in words
    (Kafka 4.0 has neither share groups nor streams groups): said once per cluster, never as a note on each group.
    ``wire`` is a :func:`loomctl.kafka.protocol.client`; the versions are those loomctl reads the groups with."""
    from loomctl.kafka import protocol

    lacking = []
    for api, lowest, words in (
        (protocol.ShareGroupDescribeRequest, 1, "share groups (KIP-932)"),
        (protocol.StreamsGroupDescribeRequest, 0, "streams groups (KIP-1071)"),
    ):
        offered = wire.broker_versions(api)
        if offered is None or offered[1] < lowest:
            lacking.append(words)
    return lacking


def _wire_group(group_id: str, described: Any, kind: str, states: Mapping[str, str]) -> Group:
    """A share or streams group as loomctl's Group: its members and the partitions each holds (in a share group
    several members may hold one partition: the first, by member id, is named its owner)."""
    if described is None or described.error:
        return Group(group_id, states.get(group_id, "Dead"), group_type=kind)

    def held(m: Any) -> Sequence[TopicPartition]:
        return m.assigned if kind == "share" else m.partitions

    members = tuple(
        Member(m.member_id, m.client_id, (m.host or "").lstrip("/"), tuple(sorted((intern(t), p) for t, p in held(m))))
        for m in sorted(described.members, key=lambda m: m.member_id, reverse=True)
    )
    return Group(group_id, described.state, members, kind, getattr(described, "assignor", "") or "")


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


def committed_offsets(
    admin: "AdminClient",
    group_ids: Sequence[str],
    *,
    concurrency: int = OFFSET_FETCH_CONCURRENCY,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> dict[str, dict[TopicPartition, int | None]]:
    """Per group, its committed offset of every partition it has one for (None: none stored); at most
    ``concurrency`` requests in flight, each with the time the others in flight may take ahead of it."""
    concurrency = max(1, min(concurrency, len(group_ids)))
    return _fetch_offsets(admin, group_ids, concurrency, queued_timeout(timeout, concurrency))


def _fetch_offsets(
    admin: "AdminClient", group_ids: Sequence[str], concurrency: int, within: float, *, again: bool = True
) -> dict[str, dict[TopicPartition, int | None]]:
    """:func:`committed_offsets` with each request's timeout ``within`` as the caller worked it out. A group whose
    request failed with an error that may pass (its coordinator loading or moving, a request timed out on a busy
    broker) is asked once more, alone; failing again it fails the snapshot rather than show it without commits."""
    from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException

    if not group_ids:
        return {}

    def submit(group_id: str) -> Any:
        return admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group_id)], request_timeout=within)[group_id]

    try:
        pairs = bounded(submit, group_ids, concurrency, within + 5, "list_consumer_group_offsets")
    except KafkaException as exc:
        raise unreachable(exc, "list_consumer_group_offsets") from None
    result: dict[str, dict[TopicPartition, int | None]] = {}
    retry: list[str] = []
    for group_id, future in pairs:
        try:
            answer = result_within(future, within + 5, "list_consumer_group_offsets")
        except KafkaException as exc:
            if is_unreachable(exc):
                raise unreachable(exc, "list_consumer_group_offsets") from None
            if is_transient(exc):
                if not again:
                    raise BackendUnavailable(f"committed offsets of group {group_id}: {error_text(exc)}") from None
                retry.append(group_id)
            result[group_id] = {}
            continue
        # each topic's name one object (the client gives a new one per partition): the snapshot crosses a pipe to
        # the collector, pickled, and a name is sent (and kept) once where it is one object
        result[group_id] = {
            (intern(tp.topic), tp.partition): (tp.offset if tp.offset >= 0 else None)
            for tp in answer.topic_partitions
            if not tp.error
        }
    if retry:
        result.update(_fetch_offsets(admin, retry, min(concurrency, len(retry)), within, again=False))
    return result


BATCH_GROUPS = 250
"""Groups per OffsetFetch (one request per coordinator unless it has more): the broker answers the requests of one
connection in turn, so a coordinator with many groups gets several requests in flight and the reading of one answer
overlaps the broker's building of the next. At 2,000 groups x 37 partitions, all of them fetched (min of 8 runs each):
one request 161 ms, 1,000 groups a request 126 ms, 500 94 ms, 250 94 ms, 125 97 ms."""


def batched_offsets(
    wire: Any, group_ids: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT_S
) -> dict[str, dict[TopicPartition, int | None]]:
    """:func:`committed_offsets` through the group-types client (``wire``, :func:`loomctl.kafka.protocol.client`):
    :data:`BATCH_GROUPS` groups per OffsetFetch, every coordinator asked at once. A group its coordinator still has no
    answer for after the client's retries (loading, moving) fails the snapshot, as on the per-group path; another
    group error (not authorized) leaves the group without commits; a partition with an error is left out."""
    from loomctl.kafka import protocol

    fetched = protocol.committed_offsets(
        wire, group_ids, timeout=queued_timeout(timeout, len(group_ids) // BATCH_GROUPS), per_request=BATCH_GROUPS
    )
    result: dict[str, dict[TopicPartition, int | None]] = {}
    for group_id, answer in fetched.items():
        if answer.error is not None:
            if answer.error.split(":", 1)[0] in COORDINATOR_ERRORS:
                raise BackendUnavailable(f"committed offsets of group {group_id}: {answer.error}")
            result[group_id] = {}
            continue
        errors = answer.partition_errors
        # the answer's own mapping, not a copy: nothing else holds it (73,000 entries at 2,000 groups)
        result[group_id] = answer.offsets if not errors else {tp: o for tp, o in answer.offsets.items() if tp not in errors}
    return result


def snapshot(
    admin: "AdminClient",
    group_ids: Sequence[str],
    *,
    concurrency: int = OFFSET_FETCH_CONCURRENCY,
    timeout: float = DEFAULT_TIMEOUT_S,
    chunk_size: int = SNAPSHOT_CHUNK,
    known_states: dict[str, str] | None = None,
    known_types: dict[str, str | None] | None = None,
    known_protocols: Mapping[str, str] | None = None,
    wire: Any = None,
) -> ClusterSnapshot:
    """One consistent-as-possible look at ``group_ids``: states, members, commits, log offsets.

    A group's partitions are those it has committed on or has assigned, widened to every
    partition of those topics, so a partition added since the last commit shows as unknown.
    ``known_states`` and ``known_types`` are what a listing said (:func:`list_group_listings`, or
    :func:`loomctl.kafka.protocol.list_every_group` with ``known_protocols``). Share and streams groups are read
    through ``wire`` (a :func:`loomctl.kafka.protocol.client`), which librdkafka cannot do; a group of another kind
    (Kafka Connect's workers, a type loomctl does not know) is listed with its state and the reason it is not measured.
    The groups go ``chunk_size`` at a time: a chunk's descriptions and (at most ``concurrency``)
    offset requests are in flight together, each request's timeout ``timeout`` plus the time
    all those may take ahead of it, and nothing of a chunk is in flight when the next is sent.
    """
    snap = ClusterSnapshot()
    types = known_types or {}
    every = group_ids
    group_ids = _other_kinds(snap, group_ids, types, known_protocols or {}, known_states or {}, wire, timeout)
    # An Empty group has no members to describe: when the listing already says so, skip it.
    empty = {g for g in group_ids if (known_states or {}).get(g) == "Empty"}
    snap.groups.update({g: Group(g, "Empty", group_type=types.get(g)) for g in empty})
    # With the group-types client, every group's committed offsets come in one OffsetFetch per coordinator (KIP-709),
    # fetched on its own thread while librdkafka describes the groups; librdkafka asks one group per request.
    batched = (
        in_background(lambda: batched_offsets(wire, group_ids, timeout=timeout), "loomctl-offsets")
        if wire and group_ids
        else None
    )
    try:
        if batched is not None:  # the descriptions batched too, while the offsets are fetched
            snap.groups.update(batched_descriptions(wire, [g for g in group_ids if g not in empty], types, timeout=timeout))
        for chunk in chunks(group_ids, chunk_size) if batched is None else ():
            to_describe = [g for g in chunk if g not in empty]
            in_flight = max(1, min(concurrency, len(chunk)))
            within = queued_timeout(timeout, len(to_describe) + in_flight)
            described = _describe(admin, to_describe, within)  # in flight during the chunk's offset fetches
            snap.committed.update(_fetch_offsets(admin, chunk, in_flight, within))
            snap.groups.update(_described(described, within, types))
    finally:
        if batched is not None:
            batched(raising=False)  # never left running: a failed describe waits for the fetch before it is raised
    if batched is not None:
        snap.committed.update(batched())
    topics: set[str] = set()
    for shared in snap.share_offsets.values():
        topics.update(t for t, _ in shared)
    for group_id in snap.share_offsets:
        topics.update(t for t, _ in snap.groups[group_id].owner_of())
    for group_id in every:
        committed = snap.committed.get(group_id) or {}
        group = snap.groups.get(group_id)
        owners = group.owner_of() if group is not None else {}
        topics.update(t for t, _ in committed)
        topics.update(t for t, _ in owners)
        # a group with members (a consumer-protocol group mid-rebalance reads as Unknown) is never missing
        if not committed and not owners and (group is None or (group.group_state in ("Dead", "Unknown") and not group.members)):
            snap.missing_groups.add(group_id)
    leaders: dict[TopicPartition, int] = {}
    if topics:
        snap.partition_counts, snap.brokers = _topic_metadata(admin, wire, topics, timeout, leaders)
    partitions = [(t, p) for t, n in snap.partition_counts.items() for p in range(n)]
    snap.offsets = (
        _log_offsets(admin, wire, partitions, leaders, timeout) if wire else log_offsets(admin, partitions, timeout=timeout)
    )
    return snap


def _topic_metadata(
    admin: "AdminClient", wire: Any, topics: set[str], timeout: float, leaders: dict[TopicPartition, int]
) -> tuple[dict[str, int], list[str]]:
    """:func:`topic_metadata` through the group-types client where there is one (``admin``, which may not be built yet,
    is then not needed); through librdkafka where there is none or its broker cannot answer that way."""
    if wire:
        from loomctl.kafka import protocol

        try:
            counts, brokers, found = protocol.topic_metadata(wire, topics, timeout)
        except Unsupported:
            pass
        else:
            leaders.update(found)
            return counts, brokers
    return topic_metadata(admin, topics, timeout, leaders=leaders)


def _log_offsets(
    admin: "AdminClient", wire: Any, partitions: list[TopicPartition], leaders: Mapping[TopicPartition, int], timeout: float
) -> dict[TopicPartition, LogOffsets]:
    """:func:`log_offsets` from each partition's leader through the group-types client: two ListOffsets per leader,
    read straight from the bytes (librdkafka's binding makes a future of each partition and bound: 0.14 s for 2,000
    partitions, where this takes about 0.05 s). What it has no answer for (no leader, a leader that moved, an error, a
    broker without flexible ListOffsets) is asked through librdkafka, which finds the new leaders itself."""
    from loomctl.kafka import protocol

    led = {tp: leaders[tp] for tp in partitions if leaders.get(tp, -1) >= 0}
    try:
        found, rest = protocol.log_offsets(wire, led, timeout)
        rest += [tp for tp in partitions if tp not in led]
    except Unsupported:
        found, rest = {}, list(partitions)
    more = log_offsets(admin, rest, timeout=timeout) if rest else {}
    return {tp: more[tp] if tp in more else LogOffsets(*found[tp]) for tp in sorted(partitions) if tp in found or tp in more}
