"""What a Kafka cluster can do, checked on the cluster with the requests confluent-kafka's AdminClient offers.

Kafka never sends its software version, and librdkafka shows Python neither the API versions a broker
advertises nor its finalized features (``group.version``, ``share.version``, ``streams.version``). So every answer
here is read from what the cluster does say: the broker's configs (``describe_configs`` of a BROKER resource lists
every public config the broker knows, so the names tell which release it runs), whether it serves group configs
(``describe_configs`` of a GROUP resource, Kafka 4.0+), and the groups it lists. Each capability is True, False or
None (unknown), with the evidence that decided it; an answer the cluster does not give is None, never False.

What decides, release by release (from Apache Kafka's sources and documentation):

- KIP-848 (``group.protocol=consumer``): 3.7 and 3.8/3.9 (early access, preview) serve it when
  ``group.coordinator.rebalance.protocols`` names ``consumer`` (default ``classic``); from 4.0 that list names it by
  default and the ``group.version`` feature must be 1 as well (new 4.0 clusters get 1, upgraded ones may not).
- Share groups (KIP-932): none before 4.0; 4.0 (early access) needs ``group.share.enable=true`` or ``share`` in the
  protocol list; 4.1 (preview) and later switch them on with the ``share.version`` feature (on by default for
  clusters created with 4.2+), which librdkafka cannot read.
- Streams groups (KIP-1071): none before 4.0; from 4.1 the protocol list must name ``streams`` (its default) and
  the ``streams.version`` feature must be 1 (4.1 early access: unstable APIs only; 4.2+ on by default for new
  clusters), which librdkafka cannot read.
- Group configs (``consumer.session.timeout.ms`` and the rest as a GROUP resource): 4.0 and later.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loomctl.errors import BackendUnavailable
from loomctl.kafka.clients import error_text, is_unreachable, result_within, unreachable

if TYPE_CHECKING:
    from confluent_kafka.admin import AdminClient

PROBE_GROUP = "loomctl-capability-probe"
"""The group whose configs are described: a describe creates nothing, and an absent group shows the defaults."""

REBALANCE_PROTOCOLS = "group.coordinator.rebalance.protocols"
SHARE_ENABLE = "group.share.enable"
"""An internal config (4.0, 4.1): the broker lists it only where it was set."""

# Config names that first appeared in a release and stayed: (release, where, name). "broker" names are
# in the broker's own config (describe_configs of a BROKER resource), "group" names in a group's (4.0+).
VERSION_MARKERS: tuple[tuple[str, str, str], ...] = (
    ("4.4", "group", "errors.deadletterqueue.topic.name"),  # KIP-1191, share group dead-letter queues
    ("4.3", "group", "consumer.assignment.interval.ms"),
    ("4.0", "group", ""),  # the GROUP config resource itself
    ("3.9", "broker", "group.share.max.size"),
    ("3.8", "broker", "group.consumer.migration.policy"),
    ("3.7", "broker", REBALANCE_PROTOCOLS),
)
_RELEASES = ("3.7", "3.8", "3.9", "4.0", "4.1", "4.2", "4.3", "4.4")
GROUP_CONFIGS_REFUSED = frozenset({"INVALID_REQUEST", "UNSUPPORTED_VERSION"})
"""How a broker older than 4.0 answers a describe of a GROUP config resource: a type it does not know."""


@dataclass(frozen=True)
class Check:
    """One capability: True, False, or None where the cluster did not tell; ``evidence`` says what decided."""

    supported: bool | None
    evidence: str

    def as_dict(self) -> dict[str, Any]:
        return {"supported": self.supported, "evidence": self.evidence}


@dataclass(frozen=True)
class VersionGuess:
    """The broker's release as inferred from the configs it knows: a range of releases (``major.minor``); None
    where a bound is unknown. Never read from the broker, which does not send its version."""

    at_least: str | None
    at_most: str | None
    evidence: str

    @property
    def text(self) -> str:
        if self.at_least is None and self.at_most is None:
            return "unknown"
        if self.at_least is None:
            return f"{self.at_most} or older"
        if self.at_most is None:
            return f"{self.at_least} or later"
        if self.at_least == self.at_most:
            return self.at_least
        return f"{self.at_least} to {self.at_most}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "inferred": True,
            "text": self.text,
            "at_least": self.at_least,
            "at_most": self.at_most,
            "evidence": self.evidence,
        }


@dataclass(frozen=True)
class Evidence:
    """What the cluster answered, the input of :func:`infer`. A mapping is None where it could not be read;
    ``*_error`` then says why."""

    broker_configs: Mapping[str, str | None] | None = None
    broker_error: str | None = None
    group_configs: Mapping[str, str | None] | None = None
    group_error: str | None = None
    group_configs_refused: bool = False
    """The broker refused the GROUP config resource as a type it does not know (a broker older than 4.0)."""
    consumer_groups: tuple[str, ...] | None = None
    """Groups the cluster lists as consumer-protocol (KIP-848) groups; None where the listing failed."""
    consumer_groups_error: str | None = None
    features: Mapping[str, int] | None = None
    """The cluster's finalized features by name (``group.version``: 1...), read with the group-types client (ApiVersions
    v3+); None where they were not read, a feature absent where the cluster has not finalized it (level 0)."""
    features_error: str | None = None


@dataclass(frozen=True)
class Capabilities:
    cluster_id: str | None
    controller_id: int | None
    broker_ids: tuple[int, ...]
    authorized_operations: tuple[str, ...] | None
    """What this client may do on the cluster (DESCRIBE_CONFIGS, ALTER_CONFIGS, ...); None where not told."""
    broker_version: VersionGuess
    rebalance_protocols: tuple[str, ...] | None
    kraft: Check
    consumer_protocol: Check
    """KIP-848: consumers with ``group.protocol=consumer``."""
    share_groups: Check
    """KIP-932."""
    streams_groups: Check
    """KIP-1071."""
    group_configs: Check
    """Group configs (DescribeConfigs / IncrementalAlterConfigs on GROUP resources)."""
    checked_with: str = field(default="")
    """The client library that asked (``librdkafka 2.16.0``)."""

    def as_dict(self) -> dict[str, Any]:
        """Stable snake_case keys, for the registry's JSONB column and ``-o json``."""
        return {
            "cluster_id": self.cluster_id,
            "controller_id": self.controller_id,
            "broker_ids": list(self.broker_ids),
            "broker_count": len(self.broker_ids),
            "authorized_operations": None if self.authorized_operations is None else list(self.authorized_operations),
            "broker_version": self.broker_version.as_dict(),
            "rebalance_protocols": None if self.rebalance_protocols is None else list(self.rebalance_protocols),
            "kraft": self.kraft.as_dict(),
            "consumer_protocol": self.consumer_protocol.as_dict(),
            "share_groups": self.share_groups.as_dict(),
            "streams_groups": self.streams_groups.as_dict(),
            "group_configs": self.group_configs.as_dict(),
            "checked_with": self.checked_with,
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), sort_keys=True)


# ---------------------------------------------------------------------------------------------- inference


def _protocols(broker: Mapping[str, str | None] | None) -> tuple[str, ...] | None:
    if broker is None or broker.get(REBALANCE_PROTOCOLS) is None:
        return None
    return tuple(p.strip().lower() for p in (broker[REBALANCE_PROTOCOLS] or "").split(",") if p.strip())


def _is_true(value: str | None) -> bool:
    return (value or "").strip().lower() == "true"


def infer_version(evidence: Evidence) -> VersionGuess:
    """The range of releases whose config names match what the broker listed."""
    broker, group = evidence.broker_configs, evidence.group_configs
    lower: str | None = None
    upper: str | None = None
    said: list[str] = []

    def present(where: str, name: str) -> bool | None:
        if where == "group":
            if group is not None:
                return not name or name in group
            return False if evidence.group_configs_refused else None
        return None if broker is None else name in broker

    for release, where, name in VERSION_MARKERS:  # newest first
        seen = present(where, name)
        what = "group configs" if not name else f"{where} config {name}"
        if seen:
            lower = release
            said.append(f"has {what}")
            break
        if seen is False:
            upper = _RELEASES[_RELEASES.index(release) - 1] if release != _RELEASES[0] else "3.6"
            said.append(f"lacks {what}")
    if lower is None and upper is None:
        reason = evidence.broker_error or evidence.group_error or "no config could be read"
        return VersionGuess(None, None, f"unknown: {reason}")
    return VersionGuess(lower, upper, "; ".join(said))


def infer(evidence: Evidence) -> dict[str, Check]:
    """The capabilities (``kraft``, ``consumer_protocol``, ``share_groups``, ``streams_groups``, ``group_configs``)
    that the answers in ``evidence`` establish; a pure function."""
    broker, group = evidence.broker_configs, evidence.group_configs
    protocols = _protocols(broker)
    shown = ",".join(protocols) if protocols is not None else ""
    # True: 4.0+; False: older than 4.0; None: could not tell
    modern: bool | None = True if group is not None else (False if evidence.group_configs_refused else None)
    broker_unread = f"broker configs unreadable: {evidence.broker_error or 'no answer'}"
    features = evidence.features if modern else None  # only 4.0+ gates the group types on features
    features_unread = f" (nor could the features be read: {evidence.features_error})" if evidence.features_error else ""

    # group configs
    if group is not None:
        group_configs = Check(True, "describe_configs of a GROUP resource answered")
    elif evidence.group_configs_refused:
        group_configs = Check(False, f"the broker refused the GROUP config resource ({evidence.group_error}): older than 4.0")
    else:
        group_configs = Check(None, f"describe_configs of a GROUP resource failed: {evidence.group_error or 'no answer'}")

    # KRaft
    roles = (broker or {}).get("process.roles")
    if roles:
        kraft = Check(True, f"process.roles={roles}")
    elif broker is not None and (broker.get("zookeeper.connect") or ""):
        kraft = Check(False, "process.roles is empty and zookeeper.connect is set (ZooKeeper mode)")
    elif modern:
        kraft = Check(True, "group configs answered: Kafka 4.0+, which runs only in KRaft mode")
    else:
        kraft = Check(None, broker_unread if broker is None else "neither process.roles nor zookeeper.connect listed")

    # KIP-848
    listed = evidence.consumer_groups or ()
    if listed:
        consumer = Check(True, f"the cluster lists consumer-protocol groups ({', '.join(sorted(listed)[:3])})")
    elif protocols is None:
        if broker is None:
            consumer = Check(None, broker_unread)
        else:
            consumer = Check(False, f"the broker has no {REBALANCE_PROTOCOLS} config: older than 3.7, before KIP-848")
    elif "consumer" not in protocols:
        consumer = Check(False, f"{REBALANCE_PROTOCOLS}={shown}")
    elif modern is False:
        consumer = Check(True, f"{REBALANCE_PROTOCOLS}={shown} on a broker older than 4.0 (early access or preview)")
    elif features is not None:
        consumer = _by_feature(features, "group.version", f"{REBALANCE_PROTOCOLS}={shown}; ")
    else:
        consumer = Check(
            None,
            f"{REBALANCE_PROTOCOLS}={shown}; Kafka 4.0+ also needs the group.version feature at 1, "
            f"which librdkafka cannot read{features_unread}, and no consumer-protocol group is listed",
        )

    # KIP-932
    if broker is not None and _is_true(broker.get(SHARE_ENABLE)):
        share = Check(True, f"{SHARE_ENABLE}=true")
    elif protocols is not None and "share" in protocols:
        share = Check(True, f"{REBALANCE_PROTOCOLS}={shown}")
    elif modern is False:
        share = Check(False, "the broker is older than 4.0, which brought share groups")
    elif modern is None:
        share = Check(None, f"the broker's release is unknown: {evidence.group_error or 'no answer'}")
    elif features is not None:
        share = _by_feature(features, "share.version", f"{SHARE_ENABLE} is not set; ")
    else:
        share = Check(
            None,
            f"Kafka 4.1+ switches share groups on with the share.version feature, which librdkafka cannot read{features_unread}",
        )

    # KIP-1071
    if modern is False:
        streams = Check(False, "the broker is older than 4.0; streams groups came with 4.1")
    elif protocols is not None and "streams" not in protocols and modern:
        streams = Check(False, f"{REBALANCE_PROTOCOLS}={shown}")
    elif modern is None:
        streams = Check(None, f"the broker's release is unknown: {evidence.group_error or 'no answer'}")
    elif protocols is None:
        streams = Check(None, broker_unread)
    elif features is not None:
        streams = _by_feature(features, "streams.version", f"{REBALANCE_PROTOCOLS}={shown}; ")
    else:
        streams = Check(
            None,
            f"{REBALANCE_PROTOCOLS}={shown}; streams groups also need the streams.version feature at 1, "
            f"which librdkafka cannot read{features_unread}",
        )
    return {
        "kraft": kraft,
        "consumer_protocol": consumer,
        "share_groups": share,
        "streams_groups": streams,
        "group_configs": group_configs,
    }


def _by_feature(features: Mapping[str, int], feature: str, said: str) -> Check:
    """On where the cluster finalized ``feature`` at 1 or more, off (with the command that switches it on) at 0."""
    level = features.get(feature, 0)
    if level >= 1:
        return Check(True, f"{said}the finalized feature {feature}={level}")
    return Check(False, f"{said}{feature}={level}: off until `kafka-features.sh upgrade --feature {feature}=1`")


# ---------------------------------------------------------------------------------------------- on the cluster


def _code(exc: BaseException) -> str | None:
    error: Any = exc.args[0] if exc.args else None
    return error.name() if hasattr(error, "name") and hasattr(error, "code") else None


def capabilities(admin: "AdminClient", *, timeout: float, properties: Mapping[str, str] | None = None) -> Capabilities:
    """What the cluster behind ``admin`` can do, each answer with its evidence. Every request is bounded by
    ``timeout``: three go out at once, the broker's configs (which need a broker id) after them, so the whole check
    takes at most about twice ``timeout``. With the cluster's client ``properties``, its finalized features are read
    too (through :mod:`loomctl.kafka.protocol`, which librdkafka cannot do), and decide what only they can tell.
    Raises BackendUnavailable when the cluster does not answer."""
    import confluent_kafka
    from confluent_kafka import ConsumerGroupType, KafkaException
    from confluent_kafka.admin import ConfigResource, ResourceType

    group_resource = ConfigResource(ResourceType.GROUP, PROBE_GROUP)
    try:  # the three that need no broker id go out together
        cluster_future = admin.describe_cluster(include_authorized_operations=True, request_timeout=timeout)
        group_future = admin.describe_configs([group_resource], request_timeout=timeout)[group_resource]
        listing_future = admin.list_consumer_groups(types={ConsumerGroupType.CONSUMER}, request_timeout=timeout)
    except KafkaException as exc:
        raise unreachable(exc, "describe_cluster") from None

    try:
        cluster = result_within(cluster_future, timeout + 1, "describe_cluster")
    except KafkaException as exc:
        raise unreachable(exc, "describe_cluster") from None
    broker_ids = tuple(sorted(node.id for node in cluster.nodes))
    if not broker_ids:
        raise BackendUnavailable("Kafka's describe_cluster names no broker")
    operations = cluster.authorized_operations
    authorized = None if operations is None else tuple(sorted(op.name for op in operations))

    broker_configs: dict[str, str | None] | None = None
    broker_error: str | None = None
    broker_resource = ConfigResource(ResourceType.BROKER, str(broker_ids[0]))
    try:
        future = admin.describe_configs([broker_resource], request_timeout=timeout)[broker_resource]
        entries = result_within(future, timeout + 1, "describe_configs")
        broker_configs = {name: entry.value for name, entry in entries.items()}
    except KafkaException as exc:
        if is_unreachable(exc):
            raise unreachable(exc, "describe_configs") from None
        broker_error = error_text(exc)
    except BackendUnavailable as exc:
        broker_error = str(exc)

    group_configs: dict[str, str | None] | None = None
    group_error: str | None = None
    refused = False
    try:
        entries = result_within(group_future, timeout + 1, "describe_configs")
        group_configs = {name: entry.value for name, entry in entries.items()}
    except KafkaException as exc:
        group_error = error_text(exc)
        refused = _code(exc) in GROUP_CONFIGS_REFUSED
    except BackendUnavailable as exc:
        group_error = str(exc)

    consumer_groups: tuple[str, ...] | None = None
    listing_error: str | None = None
    try:
        listing = result_within(listing_future, timeout + 1, "list_consumer_groups")
        # a filter the broker cannot apply (ListGroups before v5) would list every group: keep the typed ones
        consumer_groups = tuple(g.group_id for g in listing.valid if g.type == ConsumerGroupType.CONSUMER)
    except KafkaException as exc:
        listing_error = error_text(exc)
    except BackendUnavailable as exc:
        listing_error = str(exc)

    features, features_error = _features(properties, timeout) if properties is not None else (None, None)
    evidence = Evidence(
        features=features,
        features_error=features_error,
        broker_configs=broker_configs,
        broker_error=broker_error,
        group_configs=group_configs,
        group_error=group_error,
        group_configs_refused=refused,
        consumer_groups=consumer_groups,
        consumer_groups_error=listing_error,
    )
    checks = infer(evidence)
    controller = cluster.controller
    return Capabilities(
        cluster_id=cluster.cluster_id,
        controller_id=None if controller is None or controller.id < 0 else controller.id,
        broker_ids=broker_ids,
        authorized_operations=authorized,
        broker_version=infer_version(evidence),
        rebalance_protocols=_protocols(broker_configs),
        checked_with=f"librdkafka {confluent_kafka.libversion()[0]}"
        + (", features by kafka-python" if features is not None else ""),
        **checks,
    )


def _features(properties: Mapping[str, str], timeout: float) -> tuple[dict[str, int] | None, str | None]:
    """(the finalized features, None) or (None, why they could not be read)."""
    from loomctl.errors import LoomError
    from loomctl.kafka import protocol

    try:
        with protocol.client(properties, timeout=timeout) as wire:
            found = protocol.finalized_features(wire, timeout)
    except LoomError as exc:
        return None, str(exc)
    return (found, None) if found is not None else (None, "the broker does not know its finalized features yet")
