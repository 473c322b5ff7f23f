"""Every Kafka 4.4 group type through kafka-python, for the group calls librdkafka lacks.

confluent-kafka (librdkafka 2.16) lists classic and consumer groups only, cannot describe share or streams groups,
has no share-group offsets (KIP-932, KIP-1226) and no member type of a consumer group's member (KIP-1099). This
module asks the brokers itself, through kafka-python 3.0.12 (pinned exactly in pyproject.toml):

- ListGroups v5 to every broker at once: every group with its type;
- ConsumerGroupDescribe (KIP-848), ShareGroupDescribe and DescribeShareGroupOffsets (KIP-932, KIP-1226) and
  StreamsGroupDescribe (KIP-1071): kafka-python has no codec for them, so the eight JSON schemas of Kafka 4.4.0
  ride beside this module (``schemas/``, copied from kafka-clients-4.4.0.jar) and kafka-python's own metaclass
  builds the codecs from them;
- OffsetFetch v8: the committed offsets of all the groups of one coordinator in one request;
- DescribeGroups: all the classic groups of one coordinator in one request (librdkafka sends one per group);
- ListOffsets v6+: the log start and end of all the partitions one broker leads, two requests.

The two answers that grow with every partition (OffsetFetch, ListOffsets) are read straight from their bytes by
:mod:`loomctl.kafka.bulk`, not through kafka-python's generic decoding.

Coordinators are found with one batched FindCoordinator, the requests to different coordinators are in flight at
once, and an error of one group is that group's (a field of its result), never the batch's. A coordinator that
moved or is loading is looked up again and asked again, a bounded number of times. Every call is bounded by its
timeout. kafka-python's private names (``_manager``, ``_net``) are used here and nowhere else: the pin keeps them
where this module expects them, and the integration tests run every call against a real broker.
"""

from __future__ import annotations

import contextlib
import logging
import re
import struct
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from sys import intern
from typing import Any, Generic, TypeVar

import kafka.errors as Errors
from kafka.admin import KafkaAdminClient
from kafka.protocol.admin import DescribeGroupsRequest, ListGroupsRequest
from kafka.protocol.api_message import ApiMessage
from kafka.protocol.consumer import ListOffsetsRequest, OffsetFetchRequest
from kafka.protocol.metadata import ApiVersionsRequest, CoordinatorType, FindCoordinatorRequest

from loomctl.errors import BackendUnavailable, BadInput, LoomError, Unsupported
from loomctl.kafka import bulk
from loomctl.kafka.clients import DEFAULT_TIMEOUT_S, TopicPartition
from loomctl.settings import Settings, redact

_SCHEMAS = __package__ + ".schemas"


# kafka-python keeps response classes in a registry held by weak references: these module-level names keep them.
# (mypy sees ApiMessage as Any, so not the keyword its metaclass takes.)
class ConsumerGroupDescribeRequest(ApiMessage, load_json=_SCHEMAS):  # type: ignore[call-arg]  # key 69 (KIP-848), v1 adds MemberType
    pass


class ConsumerGroupDescribeResponse(ApiMessage, load_json=_SCHEMAS):  # type: ignore[call-arg]
    pass


class ShareGroupDescribeRequest(ApiMessage, load_json=_SCHEMAS):  # type: ignore[call-arg]  # key 77 (KIP-932), v1 only (v0 was 4.0's preview)
    pass


class ShareGroupDescribeResponse(ApiMessage, load_json=_SCHEMAS):  # type: ignore[call-arg]
    pass


class StreamsGroupDescribeRequest(ApiMessage, load_json=_SCHEMAS):  # type: ignore[call-arg]  # key 89 (KIP-1071)
    pass


class StreamsGroupDescribeResponse(ApiMessage, load_json=_SCHEMAS):  # type: ignore[call-arg]
    pass


class DescribeShareGroupOffsetsRequest(ApiMessage, load_json=_SCHEMAS):  # type: ignore[call-arg]  # key 90 (KIP-932), v1 adds Lag (KIP-1226)
    pass


class DescribeShareGroupOffsetsResponse(ApiMessage, load_json=_SCHEMAS):  # type: ignore[call-arg]
    pass


RETRIES = 3
"""How many times a group whose coordinator moved, is loading or is not available is looked up and asked again."""
RETRY_BACKOFF_S = 0.1
"""The first pause before asking again; it doubles with each retry, within the call's timeout."""
_RETRIABLE = frozenset({"NOT_COORDINATOR", "COORDINATOR_LOAD_IN_PROGRESS", "COORDINATOR_NOT_AVAILABLE"})
_MEMBER_TYPES = {0: "classic", 1: "consumer"}
_INT16 = struct.Struct(">h")
_INT32 = struct.Struct(">i")
_MAX_IN_FLIGHT = 32
"""Requests in flight on one connection: kafka-python fails a request at once (it does not queue it) past its
limit, whose default of 5 concurrent callers of one client could reach."""
WAVE = 16
"""Requests one call has in flight to one broker at a time (the rest wait for the wave): half of
:data:`_MAX_IN_FLIGHT`, leaving room for another thread's call on the same client."""

# What a share group, a streams group... needs of the broker: (request, lowest version this module reads, feature)
_NEEDS: dict[str, tuple[type[ApiMessage], int, str]] = {
    "consumer": (ConsumerGroupDescribeRequest, 0, "consumer-protocol groups (KIP-848)"),
    "member types": (ConsumerGroupDescribeRequest, 1, "member types of consumer-protocol groups (KIP-1099)"),
    "share": (ShareGroupDescribeRequest, 1, "share groups"),
    "share offsets": (DescribeShareGroupOffsetsRequest, 0, "share groups"),
    "streams": (StreamsGroupDescribeRequest, 0, "streams groups (KIP-1071)"),
    "offsets": (OffsetFetchRequest, 8, "batched committed-offset fetches (KIP-709)"),
    "coordinators": (FindCoordinatorRequest, 4, "batched coordinator lookups (KIP-699)"),
    "log offsets": (ListOffsetsRequest, bulk.LIST_OFFSETS_VERSIONS[0], "flexible ListOffsets (KIP-482)"),
}


# ---------------------------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class GroupListing:
    group_id: str
    group_type: str | None
    """``classic``, ``consumer``, ``share``, ``streams`` (or the broker's own word for a newer type); on a broker
    before ListGroups v5, ``classic`` where the protocol type makes it sure, else None."""
    protocol_type: str
    """``consumer``, ``connect``, ``share``, ``streams``, or ``""`` for a group that only stores offsets."""
    state: str | None
    """The broker's word (Stable, Empty, NotReady...); None from a broker before ListGroups v4."""


@dataclass(frozen=True)
class ShareMember:
    member_id: str
    client_id: str
    host: str
    member_epoch: int
    rack_id: str | None
    subscribed_topics: tuple[str, ...]
    assigned: tuple[TopicPartition, ...]


@dataclass(frozen=True)
class ShareGroup:
    group_id: str
    state: str
    group_epoch: int
    assignment_epoch: int
    assignor: str
    members: tuple[ShareMember, ...] = ()
    error: str | None = None
    """Why the broker could not describe this group (``GROUP_ID_NOT_FOUND: ...``); None when it did."""


@dataclass(frozen=True)
class ShareOffset:
    start_offset: int | None
    """The share-partition start offset; None where the group has not initialised the partition (Kafka shows -)."""
    lag: int | None
    """The broker's own lag (KIP-1226): acquired and acknowledged records excluded; None where unknown or the
    broker answers DescribeShareGroupOffsets v0."""
    leader_epoch: int | None = None
    error: str | None = None


@dataclass(frozen=True)
class ClassicMember:
    member_id: str
    client_id: str
    host: str
    instance_id: str | None
    assignment: tuple[TopicPartition, ...]
    """The partitions of its consumer-protocol assignment (``()`` for another protocol type, or none yet)."""


@dataclass(frozen=True)
class ClassicGroup:
    group_id: str
    state: str
    """The broker's word: Stable, Empty, PreparingRebalance, CompletingRebalance, Dead."""
    protocol_type: str
    """``consumer``, ``connect``... or ``""`` for a group that only stores offsets."""
    assignor: str
    """The protocol the group chose (for consumers, the assignor: range, cooperative-sticky...)."""
    members: tuple[ClassicMember, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class ConsumerMember:
    member_id: str
    member_type: str | None
    """``classic`` (a classic-protocol member in a consumer group) or ``consumer``; None where the broker cannot say."""
    client_id: str
    host: str
    member_epoch: int
    instance_id: str | None
    rack_id: str | None
    subscribed_topics: tuple[str, ...]
    subscribed_regex: str | None
    assignment: tuple[TopicPartition, ...]
    target_assignment: tuple[TopicPartition, ...]


@dataclass(frozen=True)
class ConsumerProtocolGroup:
    group_id: str
    state: str
    group_epoch: int
    assignment_epoch: int
    assignor: str
    members: tuple[ConsumerMember, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class Subtopology:
    subtopology_id: str
    source_topics: tuple[str, ...]
    repartition_source_topics: tuple[str, ...] = ()

    @property
    def input_topics(self) -> tuple[str, ...]:
        """Every topic the subtopology reads: its tasks own these topics' partitions."""
        return self.source_topics + self.repartition_source_topics


@dataclass(frozen=True)
class Tasks:
    subtopology_id: str
    partitions: tuple[int, ...]


@dataclass(frozen=True)
class StreamsMember:
    member_id: str
    client_id: str
    host: str
    process_id: str
    member_epoch: int
    topology_epoch: int
    instance_id: str | None
    rack_id: str | None
    is_classic: bool
    active_tasks: tuple[Tasks, ...]
    standby_tasks: tuple[Tasks, ...]
    warmup_tasks: tuple[Tasks, ...]
    partitions: tuple[TopicPartition, ...]
    """The (topic, partition) the member's active tasks own: each task's partition of its subtopology's inputs."""


@dataclass(frozen=True)
class StreamsGroup:
    group_id: str
    state: str
    group_epoch: int
    assignment_epoch: int
    topology_epoch: int | None
    """None while the group has no topology yet."""
    subtopologies: tuple[Subtopology, ...] = ()
    members: tuple[StreamsMember, ...] = ()
    assignor: str | None = None
    """From StreamsGroupDescribe v1 (KIP-1357); None on v0."""
    error: str | None = None


V = TypeVar("V")


@dataclass(frozen=True, eq=False)
class GroupOffsets(Mapping[TopicPartition, V], Generic[V]):
    """One group's offsets by (topic, partition), read as a mapping; ``error`` says why the broker gave none for the
    group (it is then empty), ``partition_errors`` why a partition's value is None."""

    group_id: str
    offsets: dict[TopicPartition, V] = field(default_factory=dict)
    error: str | None = None
    partition_errors: dict[TopicPartition, str] = field(default_factory=dict)

    def __getitem__(self, key: TopicPartition) -> V:
        return self.offsets[key]

    def __iter__(self) -> Iterator[TopicPartition]:
        return iter(self.offsets)

    def __len__(self) -> int:
        return len(self.offsets)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, GroupOffsets):
            mine = (self.group_id, self.offsets, self.error, self.partition_errors)
            return mine == (other.group_id, other.offsets, other.error, other.partition_errors)
        return dict(self.offsets) == other if isinstance(other, Mapping) else NotImplemented

    __hash__ = None  # type: ignore[assignment]  # a mapping, like dict


# ----------------------------------------------------------------------------------------------------------- client


class Client:
    """A connected kafka-python admin client of one cluster; from :func:`client`."""

    def __init__(self, admin: KafkaAdminClient, properties: Mapping[str, str]) -> None:
        self._admin = admin
        self._properties = dict(properties)

    def broker_versions(self, api: type[ApiMessage]) -> tuple[int, int] | None:
        """The (lowest, highest) version of ``api`` the bootstrap broker offers; None when it offers none."""
        data = self._admin._manager.broker_version_data
        found = data.api_versions.get(api.API_KEY) if data is not None and data.api_versions else None
        return (int(found[0]), int(found[1])) if found else None

    def _require(self, need: str) -> int:
        """The highest version of the request ``need`` names that the broker and this module share; Unsupported
        when the broker offers none this module can read."""
        api, lowest, feature = _NEEDS[need]
        offered = self.broker_versions(api)
        if offered is not None and offered[1] >= lowest:
            return min(offered[1], api.max_version)
        has = f"v{offered[0]}-{offered[1]}" if offered else "none"
        raise Unsupported(
            f"the Kafka cluster has no {feature}: its broker offers {api.__name__.removesuffix('Request')} {has}, "
            f"loomctl needs v{lowest} or later",
            feature=feature,
            api=api.__name__.removesuffix("Request"),
            broker_versions=offered,
        )

    def _run(self, what: str, timeout: float, work: Callable[[float], Awaitable[Any]]) -> Any:
        """Run ``work(deadline)`` on the client's IO thread, bounded by ``timeout``; kafka-python's errors become
        LoomErrors."""
        manager = self._admin._manager
        deadline = time.monotonic() + timeout

        async def bounded() -> Any:
            return await manager.wait_for(manager.call_soon(work, deadline), int(timeout * 1000) + 50)

        try:
            return manager.run(bounded)
        except LoomError:
            raise
        except Errors.KafkaTimeoutError:
            raise BackendUnavailable(f"Kafka did not answer {what} within {timeout:g} s") from None
        except Errors.KafkaError as exc:
            raise BackendUnavailable(f"Kafka did not answer {what}: {self._text(exc)}") from None

    def _text(self, exc: BaseException) -> str:
        """An exception's first line, with every secret property's value masked."""
        text = (str(exc) or type(exc).__name__).strip().splitlines()[0]
        return redact(text, self._properties)

    async def _sleep(self, seconds: float) -> None:
        await self._admin._net.sleep(seconds)

    async def _send_all(self, pairs: Sequence[tuple[Any, ApiMessage]], deadline: float) -> list[tuple[Any, BaseException | None]]:
        """Send every (node, request) and wait for all: (response, None) or (None, the failure) each, in order.
        Requests to different nodes are all in flight at once; to one node, :data:`WAVE` at a time."""
        manager = self._admin._manager
        answers: list[tuple[Any, BaseException | None]] = [(None, None)] * len(pairs)
        queues: dict[Any, list[int]] = defaultdict(list)
        for index, (node, _) in enumerate(pairs):
            queues[node].append(index)
        while any(queues.values()):
            wave = [i for node in queues for i in queues[node][:WAVE]]
            for node in queues:
                del queues[node][:WAVE]
            futures: list[tuple[int, Any]] = []
            for index in wave:
                node, request = pairs[index]
                try:
                    futures.append((index, manager.send(request, node_id=node, request_timeout_ms=_remaining_ms(deadline))))
                except Exception as exc:  # a node the metadata no longer has, a cached authentication failure
                    futures.append((index, exc))
            for index, future in futures:
                if isinstance(future, BaseException):
                    answers[index] = (None, future)
                    continue
                try:
                    answers[index] = (await future, None)
                except Exception as exc:
                    answers[index] = (None, exc)
        return answers

    async def _coordinators(self, group_ids: Sequence[str], deadline: float) -> tuple[dict[str, Any], dict[str, tuple[str, str]]]:
        """One FindCoordinator (v4+, every group in it): node by group, and (error name, message) by group."""
        request = FindCoordinatorRequest(key_type=CoordinatorType.GROUP.value, coordinator_keys=list(group_ids), min_version=4)
        ((response, failure),) = await self._send_all([(None, request)], deadline)
        if failure is not None:
            raise failure
        nodes: dict[str, Any] = {}
        errors: dict[str, tuple[str, str]] = {}
        cluster = self._admin._manager.cluster
        for row in response.coordinators:
            if row.error_code:
                errors[row.key] = (_error_name(row.error_code), row.error_message or "")
            else:
                # the coordinator's address becomes known to the connection manager (a broker newer than our metadata)
                nodes[row.key] = cluster.add_coordinator(row, CoordinatorType.GROUP, row.key, synthesize_node_id=False)
        return nodes, errors

    async def _per_group(
        self,
        group_ids: Sequence[str],
        deadline: float,
        what: str,
        request_for: Callable[[list[str]], ApiMessage],
        groups_of: Callable[[Any], Iterable[tuple[str, int, str | None, Any]]],
        per_request: int | None = None,
    ) -> dict[str, tuple[Any, str | None]]:
        """Ask each group's coordinator about its groups, one request per coordinator, all in flight at once.

        ``per_request`` splits a coordinator's groups into requests of at most that many groups (all still in flight
        together). ``groups_of(response)`` gives (group id, error code, error message, the group's part of the answer). By group:
        (its part, None), or (its part or None, why the broker had no answer for it). A group whose coordinator moved,
        is loading or is not available is looked up and asked again, up to :data:`RETRIES` times; a coordinator that
        cannot be reached on the last attempt is the cluster not answering (BackendUnavailable).
        """
        results: dict[str, tuple[Any, str | None]] = {}
        pending = list(dict.fromkeys(group_ids))
        unreachable: BaseException | None = None
        last: dict[str, str] = {}
        for attempt in range(RETRIES + 1):
            if attempt:
                await self._sleep(min(RETRY_BACKOFF_S * 2 ** (attempt - 1), max(deadline - time.monotonic(), 0)))
            unreachable = None
            nodes, errors = await self._coordinators(pending, deadline)
            retry: list[str] = []
            for group_id, (name, message) in errors.items():
                if name in _RETRIABLE:
                    retry.append(group_id)
                    last[group_id] = _reason(name, message)
                else:
                    results[group_id] = (None, _reason(name, message))
            by_node: dict[Any, list[str]] = defaultdict(list)
            for group_id in pending:
                if group_id in nodes:
                    by_node[nodes[group_id]].append(group_id)
            size = per_request or max(len(pending), 1)
            batches = [(node, ids[i : i + size]) for node, ids in by_node.items() for i in range(0, len(ids), size)]
            answers = await self._send_all([(node, request_for(ids)) for node, ids in batches], deadline)
            for (node, ids), (response, failure) in zip(batches, answers, strict=True):
                if failure is not None:
                    if isinstance(failure, Errors.IncompatibleBrokerVersion | Errors.UnsupportedVersionError):
                        raise Unsupported(f"Kafka cannot answer {what}: {self._text(failure)}", api=what) from None
                    if isinstance(failure, Errors.KafkaTimeoutError):
                        raise failure
                    unreachable = failure  # the coordinator's connection failed: look it up again
                    retry.extend(ids)
                    continue
                answered: set[str] = set()
                for group_id, code, text, part in groups_of(response):
                    if group_id not in ids or group_id in answered:
                        continue
                    answered.add(group_id)
                    error = _reason(_error_name(code), text or "") if code else None
                    if code and _error_name(code) in _RETRIABLE:
                        retry.append(group_id)
                        last[group_id] = error or ""
                    else:
                        results[group_id] = (part, error)
                for group_id in ids:
                    if group_id not in answered:
                        results[group_id] = (None, f"the coordinator (broker {node}) did not answer for this group")
            pending = retry
            if not pending:
                return results
        if unreachable is not None:
            raise BackendUnavailable(
                f"Kafka did not answer {what}: a group coordinator cannot be reached ({self._text(unreachable)})"
            )
        for group_id in pending:
            results[group_id] = (None, f"{last.get(group_id, 'no coordinator')} (asked {RETRIES + 1} times)")
        return results


@contextlib.contextmanager
def client(settings_or_config: Settings | Mapping[str, str], *, timeout: float = DEFAULT_TIMEOUT_S) -> Iterator[Client]:
    """A kafka-python client of the cluster loomctl's confluent-kafka clients use: the same bootstrap servers and
    librdkafka properties file (LOOM_KAFKA_CONFIG), translated by :func:`kafka_python_config`. BadInput for a
    property it cannot honour, BackendUnavailable when no broker answers within ``timeout``."""
    properties = settings_or_config.kafka_properties() if isinstance(settings_or_config, Settings) else dict(settings_or_config)
    config = kafka_python_config(properties, timeout=timeout)
    _quiet_kafka_python()
    # Built in two steps so that a failed bootstrap leaves no IO thread behind: the constructor starts the
    # client's thread, then bootstraps, and raises without returning the object that could stop it.
    admin = KafkaAdminClient.__new__(KafkaAdminClient)
    watch = _RefusalWatch(admin)
    try:
        with watch:
            admin.__init__(**config)
    except Exception as exc:
        refused = _auth_failure(admin) or watch.refused
        _close(admin)
        if refused is not None:
            raise BackendUnavailable(f"Kafka refused loomctl's connection: {redact(_refusal(refused), properties)}") from None
        if isinstance(exc, Errors.KafkaTimeoutError | Errors.KafkaConnectionError | Errors.NodeNotReadyError):
            raise BackendUnavailable(f"Kafka did not answer within {timeout:g} s: no bootstrap server could be reached") from None
        raise BadInput(f"invalid Kafka client configuration: {redact(_first_line(exc), properties)}") from None
    try:
        yield Client(admin, properties)
    finally:
        _close(admin)


def _close(admin: KafkaAdminClient) -> None:
    if getattr(admin, "_net", None) is None:
        return
    admin._closed = False  # set only once the constructor got through; close() stops the IO thread either way
    with contextlib.suppress(Exception):
        admin.close()


class _RefusalWatch(logging.Handler):
    """While ``admin`` bootstraps: the broker's refusal of its credentials. kafka-python records one only for a
    broker it knows by id; a bootstrap server that refuses is logged and tried again until the timeout, which read as
    "no bootstrap server could be reached" after 10 s. Seen here (on the client's own IO thread), the refusal ends the
    bootstrap at once and is the error the command gives."""

    _AUTH = (Errors.SaslAuthenticationFailedError, Errors.AuthorizationError)

    def __init__(self, admin: KafkaAdminClient) -> None:
        super().__init__(logging.WARNING)
        self._admin = admin
        self.refused: BaseException | None = None
        self._logger = logging.getLogger("kafka.net.manager")

    def __enter__(self) -> _RefusalWatch:
        self._level = self._logger.level
        if not self._logger.isEnabledFor(logging.WARNING):
            self._logger.setLevel(logging.WARNING)
        self._logger.addHandler(self)
        return self

    def __exit__(self, *_: object) -> None:
        self._logger.removeHandler(self)
        self._logger.setLevel(self._level)

    def emit(self, record: logging.LogRecord) -> None:
        net = getattr(self._admin, "_net", None)
        thread = getattr(net, "_io_thread", None)
        if thread is None or record.thread != thread.ident or self.refused is not None:
            return  # another client's
        args = record.args if isinstance(record.args, tuple) else ()
        refused = next((a for a in args if isinstance(a, self._AUTH)), None)
        if refused is not None:
            self.refused = refused
            manager = getattr(self._admin, "_manager", None)
            if manager is not None:
                manager.closed = True  # the bootstrap loop ends at its next turn


def _auth_failure(admin: KafkaAdminClient) -> BaseException | None:
    manager = getattr(admin, "_manager", None)
    failures = getattr(manager, "_auth_failures", None) or {}
    return next(iter(failures.values()), None)


def _refusal(exc: BaseException) -> str:
    """``[Error 58] SaslAuthenticationFailedError: SaslAuthenticationFailedError: Authentication failed: ...`` as
    ``SaslAuthenticationFailedError: Authentication failed: ...``."""
    name = type(exc).__name__
    return f"{name}: {_first_line(exc).rsplit(f'{name}: ', 1)[-1]}"


def _first_line(exc: BaseException) -> str:
    text = (str(exc) or type(exc).__name__).strip()
    return text.splitlines()[0] if text else type(exc).__name__


_quieted = False


def _quiet_kafka_python() -> None:
    """kafka-python logs connection failures at ERROR: with no handler anywhere, Python's last resort prints them on
    stderr, where a command's one-line error is meant to be alone. And its admin client logs its whole
    configuration (SASL password included) at DEBUG: that logger stays at INFO and above."""
    global _quieted
    if _quieted:
        return
    logging.getLogger("kafka").addHandler(logging.NullHandler())
    logging.getLogger("kafka.admin.client").setLevel(logging.INFO)
    _deliver_before_eof()
    _quieted = True


def _deliver_before_eof() -> None:
    """kafka-python's transports read a socket until it would block, and when that read ends at the peer's close they
    drop what came before it. A broker that refuses SASL credentials answers, then closes: on a busy machine both are
    there at one read, the answer was lost, and the refusal read as "socket disconnected" (then retried until the
    timeout). Here the bytes are handed on first; the closed socket stays readable, so the next read reports the
    close as before."""
    from kafka.net import transport

    for cls in (transport.KafkaTCPTransport, transport.KafkaSSLTransport):
        original = cls.__dict__.get("_sock_recv")
        if original is None or getattr(original, "_loomctl", False):
            continue

        def _sock_recv(self: Any, _original: Any = original) -> tuple[bytes, BaseException | None]:
            data, err = _original(self)
            return (data, None) if data and err is not None else (data, err)

        _sock_recv._loomctl = True  # type: ignore[attr-defined]
        cls._sock_recv = _sock_recv


# ------------------------------------------------------------------------------------------ librdkafka -> kafka-python

_SECURITY_PROTOCOLS = frozenset({"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"})
_SASL_MECHANISMS = frozenset({"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "GSSAPI"})
_TEXT = {
    "client.id": "client_id",
    "sasl.username": "sasl_plain_username",
    "sasl.password": "sasl_plain_password",
    "ssl.key.password": "ssl_password",
    "sasl.kerberos.service.name": "sasl_kerberos_service_name",
}
_FILES = {
    "ssl.ca.location": "ssl_cafile",
    "ssl.certificate.location": "ssl_certfile",
    "ssl.key.location": "ssl_keyfile",
    "ssl.crl.location": "ssl_crlfile",
}
_NUMBERS = {
    "request.timeout.ms": "request_timeout_ms",
    "socket.timeout.ms": "request_timeout_ms",
    "reconnect.backoff.ms": "reconnect_backoff_ms",
    "reconnect.backoff.max.ms": "reconnect_backoff_max_ms",
    "retry.backoff.ms": "retry_backoff_ms",
    "connections.max.idle.ms": "connections_max_idle_ms",
    "metadata.max.age.ms": "metadata_max_age_ms",
    "receive.message.max.bytes": "receive_message_max_bytes",
    "socket.send.buffer.bytes": "send_buffer_bytes",
    "socket.receive.buffer.bytes": "receive_buffer_bytes",
}
_SECURITY_PREFIXES = ("ssl.", "ssl_", "sasl.", "security.", "enable.ssl", "enable.sasl", "https.")
_PROPERTY_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")


def client_or_reason(stack: Any, settings_or_config: Any, *, timeout: float = DEFAULT_TIMEOUT_S) -> "Client | str":
    """:func:`client` entered on ``stack`` (a contextlib.ExitStack), or why it cannot be made from these settings (a
    librdkafka property kafka-python cannot honour, such as an OAUTHBEARER login): callers then read what librdkafka
    can, and say what is missing. A cluster that does not answer is still BackendUnavailable."""
    try:
        return stack.enter_context(client(settings_or_config, timeout=timeout))
    except BadInput as exc:
        return str(exc)


def kafka_python_config(properties: Mapping[str, str], *, timeout: float = DEFAULT_TIMEOUT_S) -> dict[str, Any]:
    """KafkaAdminClient's keywords for librdkafka client ``properties`` (a LOOM_KAFKA_CONFIG file's, plus
    bootstrap.servers).

    The address, security (SSL, SASL PLAIN/SCRAM/GSSAPI) and connection timings are translated. A security property
    kafka-python cannot honour (OAUTHBEARER, inline PEM, a CA directory, no certificate verification, keystores) is
    a one-line BadInput that names the property, never its value. Other properties tune librdkafka's consumers and
    producers, which these admin requests do not use: they are left out. Requests wait at most ``timeout`` unless
    the file's request.timeout.ms / socket.timeout.ms says otherwise.
    """
    servers = (properties.get("bootstrap.servers") or "").strip()
    if not servers:
        raise BadInput("no Kafka bootstrap servers (bootstrap.servers)")
    config: dict[str, Any] = {
        "bootstrap_servers": [s.strip() for s in servers.split(",") if s.strip()],
        "client_id": "loomctl",
        "request_timeout_ms": max(int(timeout * 1000), 1),
        "bootstrap_timeout_ms": max(int(timeout * 1000), 1),
        "max_in_flight_requests_per_connection": _MAX_IN_FLIGHT,
    }
    for name, value in properties.items():
        if name == "bootstrap.servers":
            continue
        shown = name if _PROPERTY_NAME.fullmatch(name) else "(a property)"
        if name in _TEXT:
            config[_TEXT[name]] = value
        elif name in _FILES:
            config[_FILES[name]] = _file(shown, value, allow_probe=name == "ssl.ca.location")
        elif name in _NUMBERS:
            number = _number(shown, value)
            if _NUMBERS[name].endswith("buffer_bytes") and number == 0:
                continue  # librdkafka's 0: the system's default, kafka-python's None
            config[_NUMBERS[name]] = number
        elif name == "security.protocol":
            protocol = value.strip().upper()  # kafka-python compares exactly: 'sasl_ssl' would silently be PLAINTEXT
            if protocol not in _SECURITY_PROTOCOLS:
                raise BadInput(f"Kafka property {shown}: expected one of {', '.join(sorted(_SECURITY_PROTOCOLS))}")
            config["security_protocol"] = protocol
        elif name in ("sasl.mechanism", "sasl.mechanisms"):
            config["sasl_mechanism"] = _mechanism(shown, value)
        elif name == "ssl.endpoint.identification.algorithm":
            algorithm = value.strip().lower()
            if algorithm not in ("none", "https"):
                raise BadInput(f"Kafka property {shown}: expected none or https")
            config["ssl_check_hostname"] = algorithm == "https"
        elif name == "enable.ssl.certificate.verification":
            if value.strip().lower() not in ("true", "1"):
                raise BadInput(
                    f"Kafka property {shown}: loomctl's group calls (kafka-python) always verify the broker's certificate"
                )
        elif name == "client.dns.lookup":
            if value.strip() not in ("use_all_dns_ips", "resolve_canonical_bootstrap_servers_only"):
                raise BadInput(f"Kafka property {shown}: expected use_all_dns_ips or resolve_canonical_bootstrap_servers_only")
            config["client_dns_lookup"] = value.strip()
        elif name.startswith(_SECURITY_PREFIXES):
            raise BadInput(f"Kafka property {shown}: loomctl's group calls (kafka-python) cannot honour it")
    if config.get("security_protocol", "PLAINTEXT").startswith("SASL") and "sasl_mechanism" not in config:
        config["sasl_mechanism"] = _mechanism("sasl.mechanism", "GSSAPI")  # librdkafka's default
    return config


def _mechanism(shown: str, value: str) -> str:
    mechanism = value.strip().upper()
    if mechanism not in _SASL_MECHANISMS:
        raise BadInput(
            f"Kafka property {shown}: loomctl's group calls (kafka-python) support PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 and GSSAPI"
        )
    if mechanism == "GSSAPI":
        import importlib.util

        if importlib.util.find_spec("gssapi") is None:
            raise BadInput(f"Kafka property {shown}: that mechanism needs the Python package gssapi (pip install gssapi)")
    return mechanism


def _file(shown: str, value: str, *, allow_probe: bool) -> str | None:
    path = value.strip()
    if allow_probe and path == "probe":
        return None  # librdkafka's "the system's CA certificates": kafka-python's default
    if Path(path).is_dir():
        raise BadInput(f"Kafka property {shown}: a directory; loomctl's group calls (kafka-python) need a PEM file")
    if not Path(path).is_file():
        raise BadInput(f"Kafka property {shown}: no such file")
    return path


def _number(shown: str, value: str) -> int:
    text = value.strip()
    if not (text.isascii() and text.isdigit()):
        raise BadInput(f"Kafka property {shown}: expected a whole number")
    return int(text)


# ------------------------------------------------------------------------------------------------------------ calls


def finalized_features(c: Client, timeout: float = DEFAULT_TIMEOUT_S) -> dict[str, int] | None:
    """The cluster's finalized features (KIP-584) by name, each at its finalized level: ``group.version``,
    ``share.version``, ``streams.version``..., as ApiVersions v3+ answers them and ``kafka-features.sh describe`` shows
    them (librdkafka shows Python neither). A feature the cluster has not finalized is absent (level 0). None when the
    broker does not know them yet (epoch -1); Unsupported from a broker before ApiVersions v3 (Kafka 2.4)."""
    offered = c.broker_versions(ApiVersionsRequest)
    if offered is None or offered[1] < 3:
        raise Unsupported("the Kafka cluster has no finalized features (ApiVersions v3, Kafka 2.4+)", api="ApiVersions")
    from loomctl import __version__

    request = ApiVersionsRequest(
        client_software_name="loomctl",
        client_software_version=__version__,
        min_version=3,
        max_version=min(offered[1], ApiVersionsRequest.max_version),
    )

    async def work(deadline: float) -> list[tuple[Any, BaseException | None]]:
        return await c._send_all([(None, request)], deadline)

    ((response, failure),) = c._run("ApiVersions", timeout, work)
    if failure is not None:
        raise BackendUnavailable(f"Kafka did not answer ApiVersions: {c._text(failure)}")
    if response.error_code:
        raise BackendUnavailable(f"Kafka did not answer ApiVersions: {_error_name(response.error_code)}")
    if response.finalized_features_epoch < 0:
        return None
    return {f.name: int(f.max_version_level) for f in response.finalized_features or ()}


def list_every_group(c: Client, timeout: float = DEFAULT_TIMEOUT_S) -> dict[str, GroupListing]:
    """Every group of the cluster, of every type (ListGroups to every broker at once)."""

    async def work(deadline: float) -> dict[str, GroupListing]:
        listings: dict[str, GroupListing] = {}
        pending = [broker.node_id for broker in c._admin._manager.cluster.brokers()]
        if not pending:
            raise BackendUnavailable("Kafka's metadata names no broker to list groups on")
        for attempt in range(RETRIES + 1):
            if attempt:
                await c._sleep(min(RETRY_BACKOFF_S * 2 ** (attempt - 1), max(deadline - time.monotonic(), 0)))
            answers = await c._send_all(
                [(node, ListGroupsRequest(states_filter=[], types_filter=[])) for node in pending], deadline
            )
            retry: list[Any] = []
            for node, (response, failure) in zip(pending, answers, strict=True):
                if failure is not None:
                    if isinstance(failure, Errors.KafkaTimeoutError):
                        raise failure
                    if attempt == RETRIES:
                        raise BackendUnavailable(
                            f"Kafka did not answer ListGroups: broker {node} cannot be reached ({c._text(failure)})"
                        )
                    retry.append(node)
                    continue
                if response.error_code:
                    name = _error_name(response.error_code)
                    if name in _RETRIABLE and attempt < RETRIES:
                        retry.append(node)
                        continue
                    # a broker that cannot list its groups: the listing would silently lack them
                    raise LoomError(f"Kafka broker {node} could not list its groups: {name}")
                for g in response.groups:
                    listings[g.group_id] = _listing(g, response.API_VERSION)
            pending = retry
            if not pending:
                break
        return listings

    return dict(sorted(c._run("ListGroups", timeout, work).items()))


def _listing(g: Any, version: int) -> GroupListing:
    protocol_type = g.protocol_type or ""
    if version >= 5:
        group_type = g.group_type or None
    else:  # no types before v5 (Kafka 3.8): a consumer-protocol or offsets-only group is classic there
        group_type = "classic" if protocol_type in ("consumer", "") else None
    return GroupListing(g.group_id, group_type, protocol_type, (g.group_state or None) if version >= 4 else None)


def describe_share_groups(c: Client, ids: Sequence[str], timeout: float = DEFAULT_TIMEOUT_S) -> dict[str, ShareGroup]:
    """Share groups (KIP-932): state, epochs, members and the partitions assigned to each. Unsupported when the
    cluster has no share groups."""
    if not ids:
        return {}
    c._require("coordinators")
    version = c._require("share")

    def request(group_ids: list[str]) -> ApiMessage:
        return ShareGroupDescribeRequest(
            group_ids=group_ids, include_authorized_operations=False, min_version=_NEEDS["share"][1], max_version=version
        )

    async def work(deadline: float) -> dict[str, tuple[Any, str | None]]:
        return await c._per_group(ids, deadline, "ShareGroupDescribe", request, _described_groups)

    return {g: _share_group(g, part, error) for g, (part, error) in c._run("ShareGroupDescribe", timeout, work).items()}


def _described_groups(response: Any) -> Iterator[tuple[str, int, str | None, Any]]:
    for g in response.groups:
        yield g.group_id, g.error_code, g.error_message, g


def _share_group(group_id: str, g: Any, error: str | None) -> ShareGroup:
    if g is None or error is not None:
        return ShareGroup(group_id, (g.group_state if g is not None else "") or "Unknown", -1, -1, "", (), error)
    members = tuple(
        ShareMember(
            m.member_id,
            m.client_id,
            _host(m.client_host),
            m.member_epoch,
            m.rack_id,
            tuple(sorted(m.subscribed_topic_names or ())),
            _partitions(m.assignment),
        )
        for m in g.members
    )
    return ShareGroup(group_id, g.group_state, g.group_epoch, g.assignment_epoch, g.assignor_name or "", members)


def share_group_offsets(
    c: Client, ids: Sequence[str], timeout: float = DEFAULT_TIMEOUT_S
) -> dict[str, GroupOffsets[ShareOffset]]:
    """Each share group's start offset and lag of every partition it reads, as the broker gives them
    (DescribeShareGroupOffsets; the lag from v1, KIP-1226). One request per group, all in flight together: a 4.4.0
    broker answers a request for one group in 5-15 ms but one for 9 groups mostly in 1.8-2.4 s (so does Kafka's
    own Admin, which batches them), while 9 one-group requests take 35-145 ms in all."""
    if not ids:
        return {}
    c._require("coordinators")
    version = c._require("share offsets")
    group = DescribeShareGroupOffsetsRequest.DescribeShareGroupOffsetsRequestGroup

    def request(group_ids: list[str]) -> ApiMessage:
        return DescribeShareGroupOffsetsRequest(groups=[group(group_id=g, topics=None) for g in group_ids], max_version=version)

    async def work(deadline: float) -> dict[str, tuple[Any, str | None]]:
        return await c._per_group(ids, deadline, "DescribeShareGroupOffsets", request, _offset_groups, per_request=1)

    answers = c._run("DescribeShareGroupOffsets", timeout, work)
    return {g: _share_offsets(g, part, error) for g, (part, error) in answers.items()}


def _offset_groups(response: Any) -> Iterator[tuple[str, int, str | None, Any]]:
    for g in response.groups:
        yield g.group_id, g.error_code, g.error_message, (g, response.API_VERSION)


def _share_offsets(group_id: str, part: Any, error: str | None) -> GroupOffsets[ShareOffset]:
    if part is None or error is not None:
        return GroupOffsets(group_id, {}, error)
    g, version = part
    offsets: dict[TopicPartition, ShareOffset] = {}
    errors: dict[TopicPartition, str] = {}
    for t in g.topics:
        topic = intern(t.topic_name)
        for p in t.partitions:
            tp = (topic, p.partition_index)
            why = _reason(_error_name(p.error_code), p.error_message or "") if p.error_code else None
            lag = p.lag if version >= 1 and p.lag >= 0 else None
            offsets[tp] = ShareOffset(
                p.start_offset if p.start_offset >= 0 else None, lag, p.leader_epoch if p.leader_epoch >= 0 else None, why
            )
            if why:
                errors[tp] = why
    return GroupOffsets(group_id, dict(sorted(offsets.items())), None, errors)


def describe_classic_groups(
    c: Client, ids: Sequence[str], timeout: float = DEFAULT_TIMEOUT_S, *, per_request: int | None = None
) -> dict[str, ClassicGroup]:
    """Classic groups: state, protocol, members and each consumer member's assignment, from one DescribeGroups per
    coordinator (or per ``per_request`` groups), every coordinator asked at once; librdkafka asks one group per
    request. A group the broker does not know, or that is not a classic group (a consumer-protocol group, on Kafka
    4), has the error ``GROUP_ID_NOT_FOUND``."""
    if not ids:
        return {}
    c._require("coordinators")

    def request(group_ids: list[str]) -> ApiMessage:
        return DescribeGroupsRequest(groups=group_ids, include_authorized_operations=False)

    async def work(deadline: float) -> dict[str, tuple[Any, str | None]]:
        return await c._per_group(ids, deadline, "DescribeGroups", request, _described_classic, per_request)

    answers = c._run("DescribeGroups", timeout, work)
    return {g: _classic_group(g, part, error) for g, (part, error) in answers.items()}


def _described_classic(response: Any) -> Iterator[tuple[str, int, str | None, Any]]:
    for g in response.groups:
        yield g.group_id, g.error_code, getattr(g, "error_message", None), g


def _classic_group(group_id: str, g: Any, error: str | None) -> ClassicGroup:
    if g is None or error is not None:
        return ClassicGroup(group_id, (g.group_state if g is not None else "") or "Unknown", "", "", (), error)
    consumer = g.protocol_type == "consumer"
    members = tuple(
        ClassicMember(
            m.member_id,
            m.client_id,
            _host(m.client_host),
            getattr(m, "group_instance_id", None),
            assigned_partitions(m.member_assignment) if consumer else (),
        )
        for m in g.members
    )
    return ClassicGroup(group_id, g.group_state, g.protocol_type, g.protocol_data or "", members)


def assigned_partitions(assignment: bytes | None) -> tuple[TopicPartition, ...]:
    """The partitions of a consumer's classic-protocol assignment (Kafka's ``ConsumerProtocolAssignment``, any version:
    int16 version, then [topic string, [partition int32]], then user data); ``()`` for none or bytes that are not
    one (a client's own protocol, a truncated answer), as librdkafka and Kafka's tools show such a member."""
    if not assignment or len(assignment) < 6:
        return ()
    try:
        (topics,) = _INT32.unpack_from(assignment, 2)
        pos, found = 6, []
        for _ in range(topics):
            (size,) = _INT16.unpack_from(assignment, pos)
            topic = intern(bytes(assignment[pos + 2 : pos + 2 + size]).decode())
            pos += 2 + size
            (count,) = _INT32.unpack_from(assignment, pos)
            if count < 0 or count > (len(assignment) - pos) // 4:
                return ()
            found += [(topic, p) for p in struct.unpack_from(f">{count}i", assignment, pos + 4)]
            pos += 4 + 4 * count
        return tuple(sorted(found))
    except (struct.error, UnicodeDecodeError, ValueError):
        return ()


def describe_consumer_groups(
    c: Client, ids: Sequence[str], timeout: float = DEFAULT_TIMEOUT_S, *, require_member_types: bool = False
) -> dict[str, ConsumerProtocolGroup]:
    """Consumer-protocol groups (KIP-848): state, assignor and members, each with its type (a classic-protocol member
    that joined a consumer group is ``classic``) where the broker can say (ConsumerGroupDescribe v1).
    ``require_member_types``: Unsupported, rather than None types, from a broker that cannot say."""
    if not ids:
        return {}
    c._require("coordinators")
    version = c._require("member types" if require_member_types else "consumer")

    def request(group_ids: list[str]) -> ApiMessage:
        return ConsumerGroupDescribeRequest(group_ids=group_ids, include_authorized_operations=False, max_version=version)

    async def work(deadline: float) -> dict[str, tuple[Any, str | None]]:
        return await c._per_group(ids, deadline, "ConsumerGroupDescribe", request, _versioned_groups)

    answers = c._run("ConsumerGroupDescribe", timeout, work)
    return {g: _consumer_group(g, part, error) for g, (part, error) in answers.items()}


def _versioned_groups(response: Any) -> Iterator[tuple[str, int, str | None, Any]]:
    for g in response.groups:
        yield g.group_id, g.error_code, g.error_message, (g, response.API_VERSION)


def _consumer_group(group_id: str, part: Any, error: str | None) -> ConsumerProtocolGroup:
    if part is None or error is not None:
        state = (part[0].group_state if part is not None else "") or "Unknown"
        return ConsumerProtocolGroup(group_id, state, -1, -1, "", (), error)
    g, version = part
    members = tuple(
        ConsumerMember(
            m.member_id,
            _MEMBER_TYPES.get(m.member_type) if version >= 1 else None,
            m.client_id,
            _host(m.client_host),
            m.member_epoch,
            m.instance_id,
            m.rack_id,
            tuple(sorted(m.subscribed_topic_names or ())),
            m.subscribed_topic_regex or None,
            _partitions(m.assignment),
            _partitions(m.target_assignment),
        )
        for m in g.members
    )
    return ConsumerProtocolGroup(group_id, g.group_state, g.group_epoch, g.assignment_epoch, g.assignor_name or "", members)


def describe_streams_groups(c: Client, ids: Sequence[str], timeout: float = DEFAULT_TIMEOUT_S) -> dict[str, StreamsGroup]:
    """Streams groups (KIP-1071): state, epochs, topology (subtopologies and the topics they read) and members with
    their tasks and the partitions their active tasks own. Unsupported when the cluster has no streams groups."""
    if not ids:
        return {}
    c._require("coordinators")
    version = c._require("streams")

    def request(group_ids: list[str]) -> ApiMessage:
        return StreamsGroupDescribeRequest(group_ids=group_ids, include_authorized_operations=False, max_version=version)

    async def work(deadline: float) -> dict[str, tuple[Any, str | None]]:
        return await c._per_group(ids, deadline, "StreamsGroupDescribe", request, _versioned_groups)

    answers = c._run("StreamsGroupDescribe", timeout, work)
    return {g: _streams_group(g, part, error) for g, (part, error) in answers.items()}


def _streams_group(group_id: str, part: Any, error: str | None) -> StreamsGroup:
    if part is None or error is not None:
        state = (part[0].group_state if part is not None else "") or "Unknown"
        return StreamsGroup(group_id, state, -1, -1, None, (), (), None, error)
    g, version = part
    topology = g.topology
    subtopologies = tuple(
        sorted(
            (
                Subtopology(
                    s.subtopology_id,
                    tuple(intern(t) for t in s.source_topics or ()),
                    tuple(intern(t.name) for t in s.repartition_source_topics or ()),
                )
                for s in ((topology.subtopologies or ()) if topology is not None else ())
            ),
            key=lambda s: s.subtopology_id,
        )
    )
    inputs = {s.subtopology_id: s.input_topics for s in subtopologies}
    members = []
    for m in g.members:
        active = _tasks(m.assignment.active_tasks if m.assignment else ())
        owned = sorted({(topic, p) for task in active for topic in inputs.get(task.subtopology_id, ()) for p in task.partitions})
        members.append(
            StreamsMember(
                m.member_id,
                m.client_id,
                _host(m.client_host),
                m.process_id,
                m.member_epoch,
                m.topology_epoch,
                m.instance_id,
                m.rack_id,
                bool(m.is_classic),
                active,
                _tasks(m.assignment.standby_tasks if m.assignment else ()),
                _tasks(m.assignment.warmup_tasks if m.assignment else ()),
                tuple(owned),
            )
        )
    return StreamsGroup(
        group_id,
        g.group_state,
        g.group_epoch,
        g.assignment_epoch,
        topology.epoch if topology is not None else None,
        subtopologies,
        tuple(members),
        (g.assignor_name or None) if version >= 1 else None,
    )


def committed_offsets(
    c: Client, ids: Sequence[str], timeout: float = DEFAULT_TIMEOUT_S, *, per_request: int | None = None
) -> dict[str, GroupOffsets[int | None]]:
    """Each group's committed offset of every partition it has one for (None: none stored), for any group type
    that commits (classic, consumer, streams): one OffsetFetch v8 per coordinator for all its groups (or per
    ``per_request`` of them), every coordinator asked at once. A group the broker does not know has no offsets (an
    empty mapping, no error)."""
    if not ids:
        return {}
    c._require("coordinators")
    c._require("offsets")

    async def work(deadline: float) -> dict[str, tuple[Any, str | None]]:
        return await c._per_group(ids, deadline, "OffsetFetch", bulk.offset_fetch, _fetched_groups, per_request)

    answers = c._run("OffsetFetch", timeout, work)
    return {g: _committed(g, part, error) for g, (part, error) in answers.items()}


def _fetched_groups(response: bulk.FetchedOffsets) -> Iterator[tuple[str, int, str | None, Any]]:
    for g in response.groups:
        yield g.group_id, g.error_code, None, g


def _committed(group_id: str, g: bulk.FetchedGroup | None, error: str | None) -> GroupOffsets[int | None]:
    """One group's part of an OffsetFetch answer, in the broker's order (sorting 20,000 groups' partitions cost a
    quarter of the call: callers look offsets up, they do not walk them in order)."""
    if g is None or error is not None:
        return GroupOffsets(group_id, {}, error)
    errors = {tp: _error_name(code) for tp, code in g.partition_errors.items()} if g.partition_errors else {}
    return GroupOffsets(group_id, g.offsets, None, errors)


def log_offsets(
    c: Client, leaders: Mapping[TopicPartition, int], timeout: float = DEFAULT_TIMEOUT_S
) -> tuple[dict[TopicPartition, tuple[int, int]], list[TopicPartition]]:
    """Log start and end of every partition of ``leaders`` (its leader's node id, from a metadata answer): two
    ListOffsets per leader (the end, read uncommitted as Kafka's tools read it, and the start), every leader asked at
    once. Returns (start, end) by partition, and the partitions with no answer (an error such as a leader that moved,
    a leader that cannot be reached): the caller asks those another way."""
    if not leaders:
        return {}, []
    version = min(c._require("log offsets"), bulk.LIST_OFFSETS_VERSIONS[-1])
    by_node: dict[int, list[TopicPartition]] = defaultdict(list)
    for tp, node in leaders.items():
        by_node[node].append(tp)
    ends: dict[TopicPartition, int] = {}
    starts: dict[TopicPartition, int] = {}
    asked = [
        (node, tps, at, into) for node, tps in by_node.items() for at, into in ((bulk.LATEST, ends), (bulk.EARLIEST, starts))
    ]
    pairs = [(node, bulk.list_offsets(tps, at, version)) for node, tps, at, _ in asked]

    async def work(deadline: float) -> list[tuple[Any, BaseException | None]]:
        return await c._send_all(pairs, deadline)

    answers = c._run("ListOffsets", timeout, work)
    for (_, _, _, into), (response, failure) in zip(asked, answers, strict=True):
        if failure is None:
            into.update(response.offsets)
    found = {tp: (starts[tp], ends[tp]) for tp in leaders if tp in ends and tp in starts}
    return found, [tp for tp in leaders if tp not in found]


def topic_metadata(
    c: Client, topics: Iterable[str], timeout: float = DEFAULT_TIMEOUT_S
) -> tuple[dict[str, int], list[str], dict[TopicPartition, int]]:
    """What :func:`loomctl.kafka.topics.topic_metadata` answers, from one Metadata request (v4+: no topic is ever
    created by asking) for ``topics`` alone: the partition count of each that exists and may be described, the
    brokers the answer names ("host:port" by node id) and each partition's leader (-1: none). librdkafka's client asks
    for every topic of the cluster and costs the command its import and its start (35-50 ms)."""
    from kafka.protocol.metadata import MetadataRequest

    from loomctl.kafka.topics import broker_address
    from loomctl.names import is_topic_name

    wanted = sorted({t for t in topics if is_topic_name(t)})
    if not wanted:
        return {}, [], {}
    request = MetadataRequest(
        topics=[MetadataRequest.MetadataRequestTopic(name=t) for t in wanted],
        allow_auto_topic_creation=False,
        include_topic_authorized_operations=False,
        min_version=4,
    )

    async def work(deadline: float) -> list[tuple[Any, BaseException | None]]:
        return await c._send_all([(None, request)], deadline)

    ((response, failure),) = c._run("Metadata", timeout, work)
    if failure is not None:
        if isinstance(failure, Errors.IncompatibleBrokerVersion | Errors.UnsupportedVersionError):
            raise Unsupported(f"Kafka cannot answer Metadata: {c._text(failure)}", api="Metadata")
        raise BackendUnavailable(f"Kafka did not answer a metadata request: {c._text(failure)}")
    counts: dict[str, int] = {}
    leaders: dict[TopicPartition, int] = {}
    asked = set(wanted)
    for topic in response.topics:
        name = topic.name
        if topic.error_code or not topic.partitions or name not in asked:
            continue  # unknown, not authorized: no partitions to show, as librdkafka's answer has none
        name = intern(name)
        counts[name] = len(topic.partitions)
        for p in topic.partitions:
            leaders[(name, p.partition_index)] = p.leader_id
    brokers = [broker_address(b.host, b.port) for b in sorted(response.brokers, key=lambda b: b.node_id)]
    return {t: counts[t] for t in wanted if t in counts}, brokers, leaders


# ---------------------------------------------------------------------------------------------------------- helpers


def _error_name(code: int) -> str:
    return str(Errors.for_code(code).message)


def _reason(name: str, message: str) -> str:
    return f"{name}: {message}" if message else name


def _remaining_ms(deadline: float) -> int:
    return max(int((deadline - time.monotonic()) * 1000), 1)


def _host(host: str | None) -> str:
    return (host or "").lstrip("/")


def _partitions(assignment: Any) -> tuple[TopicPartition, ...]:
    if assignment is None:
        return ()
    return tuple(sorted((intern(t.topic_name), p) for t in assignment.topic_partitions or () for p in t.partitions or ()))


def _tasks(tasks: Iterable[Any]) -> tuple[Tasks, ...]:
    return tuple(
        sorted((Tasks(t.subtopology_id, tuple(sorted(t.partitions or ()))) for t in tasks or ()), key=lambda t: t.subtopology_id)
    )
