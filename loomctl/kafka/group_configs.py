"""Group configs (KIP-848): the settings the broker owns for a consumer-protocol group."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from loomctl.kafka.clients import DEFAULT_TIMEOUT_S, error_text, is_unreachable, result_within, unreachable

if TYPE_CHECKING:
    from confluent_kafka.admin import AdminClient


@dataclass(frozen=True)
class GroupConfig:
    value: str | None
    dynamic: bool
    """Set for this group (by `config push` or kafka-configs), not the broker's default."""


def describe_group_configs(
    admin: "AdminClient",
    group_ids: Sequence[str],
    names: Sequence[str],
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
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
            entries = result_within(futures[resource], timeout + 5, "describe_configs")
            found[group_id] = {
                n: GroupConfig(entries[n].value, entries[n].source == ConfigSource.GROUP_CONFIG.value)
                for n in names
                if n in entries
            }
    except KafkaException as exc:
        raise unreachable(exc, "describe_configs") from None
    return found


def alter_group_configs(
    admin: "AdminClient",
    changes: Mapping[str, Mapping[str, str]],
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> dict[str, str | None]:
    """Set group configs with one incremental_alter_configs request: group -> None where the broker
    took every value, else its refusal in its own words. Raises BackendUnavailable when the
    cluster does not answer at all (then nothing is known to be set)."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

    resources = {
        g: ConfigResource(
            ResourceType.GROUP,
            g,
            incremental_configs=[
                ConfigEntry(name, value, incremental_operation=AlterConfigOpType.SET) for name, value in values.items()
            ],
        )
        for g, values in changes.items()
        if values
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
            result_within(futures[resource], timeout + 5, "incremental_alter_configs")
            outcome[group_id] = None
        except KafkaException as exc:
            if is_unreachable(exc):
                raise unreachable(exc, "incremental_alter_configs") from None
            outcome[group_id] = error_text(exc)
    return outcome
