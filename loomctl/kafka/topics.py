"""Topics: partition counts from the metadata, log offsets (one ``list_offsets`` request for every partition of
interest), partition increases, broker configs and the keys at the tail of a topic.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from loomctl.errors import BackendUnavailable
from loomctl.kafka.clients import (
    DEFAULT_TIMEOUT_S,
    TopicPartition,
    client_properties,
    error_text,
    is_transient,
    is_unreachable,
    result_within,
    unreachable,
)

if TYPE_CHECKING:
    from confluent_kafka.admin import AdminClient

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


@dataclass(frozen=True)
class LogOffsets:
    start: int
    end: int


def topic_partition_counts(
    admin: "AdminClient", topics: Iterable[str] | None = None, *, timeout: float = DEFAULT_TIMEOUT_S
) -> dict[str, int]:
    """Partition count per topic from the cluster metadata (one request); absent topics are left out."""
    return topic_metadata(admin, topics, timeout)[0]


def topic_metadata(
    admin: "AdminClient", topics: Iterable[str] | None, timeout: float, *, leaders: dict[TopicPartition, int] | None = None
) -> tuple[dict[str, int], list[str]]:
    """The partition counts of :func:`topic_partition_counts` and the brokers ("host:port") the same answer names;
    ``leaders`` gets the node id of each partition's leader (-1: none)."""
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
    if leaders is not None:
        for name in counts:
            leaders.update(((name, p), m.leader) for p, m in metadata.topics[name].partitions.items())
    brokers = [broker_address(b.host, b.port) for _, b in sorted(metadata.brokers.items())]
    return counts, brokers


def broker_address(host: str | None, port: int) -> str:
    """A broker as a metadata answer names it, "host:port" ("[v6]:port" for an IPv6 host)."""
    return f"[{host}]:{port}" if ":" in (host or "") else f"{host}:{port}"


def log_offsets(
    admin: "AdminClient", partitions: Iterable[TopicPartition], *, timeout: float = DEFAULT_TIMEOUT_S
) -> dict[TopicPartition, LogOffsets]:
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
            requests.append(
                (admin.list_offsets({KafkaTopicPartition(t, p): spec for t, p in wanted}, request_timeout=timeout), into)
            )
        except KafkaException as exc:
            raise unreachable(exc, "list_offsets") from None
    for futures, into in requests:
        for tp, future in futures.items():
            try:
                into[(tp.topic, tp.partition)] = result_within(future, timeout + 5, "list_offsets").offset
            except KafkaException as exc:
                if is_unreachable(exc):
                    raise unreachable(exc, "list_offsets") from None
                # a partition that is gone or leaderless: left out, its lag is unknown
    return {tp: LogOffsets(starts.get(tp, 0), ends[tp]) for tp in wanted if tp in ends}


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
            validate_only=validate_only,
            request_timeout=timeout,
            operation_timeout=timeout,
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
        entries = result_within(
            admin.describe_configs([resource], request_timeout=timeout)[resource], timeout + 5, "describe_configs"
        )
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

    config = client_properties(
        kafka_properties,
        timeout=timeout,
        **{
            "group.id": "loomctl-key-sample",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "enable.partition.eof": True,
        },
    )
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
                topic, partition, error = message.topic(), message.partition(), message.error()
                if topic is None or partition is None:
                    continue
                tp = (topic, partition)
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        remaining.discard(tp)
                    continue
                seen[tp[0]] = seen.get(tp[0], False) or message.key() is not None
                if (message.offset() or 0) + 1 >= ends.get(tp, 0):
                    remaining.discard(tp)
    except KafkaException:
        pass
    finally:
        consumer.close()
    for topic, has_key in seen.items():
        result[topic] = Keyed.YES if has_key else Keyed.NO
    return result
