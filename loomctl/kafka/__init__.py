"""The Kafka cluster as loomctl sees it: every call loomctl makes to a cluster, by concern.

- :mod:`~loomctl.kafka.clients`: the clients loomctl builds and the one vocabulary of their errors;
- :mod:`~loomctl.kafka.groups`: groups, their members and committed offsets, and the snapshot of many groups;
- :mod:`~loomctl.kafka.topics`: partition counts, log offsets, partition increases, broker configs, key sampling;
- :mod:`~loomctl.kafka.group_configs`: the group configs of consumer-protocol groups (KIP-848);
- :mod:`~loomctl.kafka.protocol`: what librdkafka cannot do for Kafka 4.4's groups (every group type listed, share
  and streams groups, member types, batched offsets), through kafka-python. Not re-exported here: importing it
  costs about 0.3 s, so only the commands that use it import it.

The other modules get answers and LoomErrors, never a confluent-kafka or kafka-python exception; everything but
protocol goes through one confluent-kafka ``AdminClient``, but the key sampling, which must read records. Nothing
here imports confluent-kafka until a call needs it. The names below are the package's API.
"""

from __future__ import annotations

from loomctl.kafka.clients import (  # noqa: F401
    CHANGE_TIMEOUT_S,
    DEFAULT_TIMEOUT_S,
    TRANSIENT_ERRORS,
    UNREACHABLE_ERRORS,
    TopicPartition,
    admin_client,
    admin_for,
    bounded,
    client_properties,
    enable_faulthandler,
    error_message,
    error_text,
    is_transient,
    is_unreachable,
    quiet_logger,
    result_within,
    unreachable,
)
from loomctl.kafka.group_configs import (  # noqa: F401
    GroupConfig,
    alter_group_configs,
    describe_group_configs,
)
from loomctl.kafka.groups import (  # noqa: F401
    MEASURED_PROTOCOLS,
    MIN_CHUNK,
    OFFSET_FETCH_CONCURRENCY,
    QUEUED_REQUEST_S,
    SNAPSHOT_CHUNK,
    ClusterSnapshot,
    Group,
    Member,
    committed_offsets,
    describe_groups,
    list_group_ids,
    list_group_listings,
    list_groups,
    queued_timeout,
    snapshot,
)
from loomctl.kafka.topics import (  # noqa: F401
    KEY_SAMPLE_MAX_PARTITIONS,
    KEY_SAMPLE_RECORDS,
    KEY_SAMPLE_TIMEOUT_S,
    Keyed,
    LogOffsets,
    broker_configs,
    create_partitions,
    log_offsets,
    sample_keys,
    topic_metadata,
    topic_partition_counts,
)

__all__ = [
    "CHANGE_TIMEOUT_S",
    "ClusterSnapshot",
    "DEFAULT_TIMEOUT_S",
    "Group",
    "GroupConfig",
    "KEY_SAMPLE_MAX_PARTITIONS",
    "KEY_SAMPLE_RECORDS",
    "KEY_SAMPLE_TIMEOUT_S",
    "Keyed",
    "LogOffsets",
    "Member",
    "MEASURED_PROTOCOLS",
    "MIN_CHUNK",
    "OFFSET_FETCH_CONCURRENCY",
    "QUEUED_REQUEST_S",
    "SNAPSHOT_CHUNK",
    "TRANSIENT_ERRORS",
    "TopicPartition",
    "UNREACHABLE_ERRORS",
    "admin_client",
    "admin_for",
    "alter_group_configs",
    "bounded",
    "broker_configs",
    "client_properties",
    "committed_offsets",
    "create_partitions",
    "describe_group_configs",
    "describe_groups",
    "enable_faulthandler",
    "error_message",
    "error_text",
    "is_transient",
    "is_unreachable",
    "list_group_ids",
    "list_group_listings",
    "list_groups",
    "log_offsets",
    "queued_timeout",
    "quiet_logger",
    "result_within",
    "sample_keys",
    "snapshot",
    "topic_metadata",
    "topic_partition_counts",
    "unreachable",
]
