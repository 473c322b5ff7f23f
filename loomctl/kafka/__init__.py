"""The Kafka cluster as loomctl sees it: every call loomctl makes to a cluster, by concern.

- :mod:`~loomctl.kafka.clients`: the clients loomctl builds and the one vocabulary of their errors;
- :mod:`~loomctl.kafka.groups`: groups, their members and committed offsets, and the snapshot of many groups;
- :mod:`~loomctl.kafka.topics`: partition counts, log offsets, partition increases, broker configs, key sampling;
- :mod:`~loomctl.kafka.group_configs`: the group configs of consumer-protocol groups (KIP-848).

The other modules get answers and LoomErrors, never a confluent-kafka exception; everything goes through one
confluent-kafka ``AdminClient`` but the key sampling, which must read records. Nothing here imports confluent-kafka
until a call needs it. The names below are the package's API.
"""

from __future__ import annotations

from loomctl.kafka.clients import (  # noqa: F401
    DEFAULT_TIMEOUT_S, TopicPartition, quiet_logger, client_properties, admin_client, admin_for, error_message,
    unreachable, result_within, UNREACHABLE_ERRORS, TRANSIENT_ERRORS, is_unreachable, is_transient, error_text,
    bounded,
)
from loomctl.kafka.groups import (  # noqa: F401
    OFFSET_FETCH_CONCURRENCY, Member, Group, ClusterSnapshot, list_group_ids, list_groups, list_group_listings,
    describe_groups, committed_offsets, snapshot,
)
from loomctl.kafka.topics import (  # noqa: F401
    KEY_SAMPLE_RECORDS, KEY_SAMPLE_MAX_PARTITIONS, KEY_SAMPLE_TIMEOUT_S, Keyed, LogOffsets,
    topic_partition_counts, topic_metadata, log_offsets, create_partitions, broker_configs, sample_keys,
)
from loomctl.kafka.group_configs import (  # noqa: F401
    GroupConfig, describe_group_configs, alter_group_configs,
)

__all__ = [
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
    "OFFSET_FETCH_CONCURRENCY",
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
    "error_message",
    "error_text",
    "is_transient",
    "is_unreachable",
    "list_group_ids",
    "list_group_listings",
    "list_groups",
    "log_offsets",
    "quiet_logger",
    "result_within",
    "sample_keys",
    "snapshot",
    "topic_metadata",
    "topic_partition_counts",
    "unreachable",
]
