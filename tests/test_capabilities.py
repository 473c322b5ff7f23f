"""What a cluster can do (loomctl.kafka.capabilities): the inference from config values, then the session's broker.

The session's broker runs the devstack's release: 4.4.0 by default, 4.0.1 in `make test-older-broker`
(LOOM_DEV_KAFKA_VERSION). Kafka's own `kafka-features describe`, run from the same release's jars, is the oracle
for what it serves. Kafka 4.0.1 finalizes group.version=1 and neither share.version nor streams.version, and its
rebalance protocol list lacks streams; 4.4.0 finalizes share.version and streams.version too. librdkafka can read
none of those features, so the check must say "unknown" where a feature is on, False or "unknown" where it is off,
never True for share or streams groups without a config that says so, and True for KIP-848 only once a
consumer-protocol group shows it (proven below by a consumer with group.protocol=consumer). The group configs that
4.3 and 4.4 brought must show in the release range the check infers: present on 4.4.0, missing on 4.0.1.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from confluent_kafka.admin import ConfigResource, ResourceType
from support import admin_client, create_topic, delete_topics, free_port, quiet, unique, wait_for

from loomctl.devstack import kafka_tools
from loomctl.errors import BackendUnavailable
from loomctl.kafka.capabilities import (
    PROBE_GROUP,
    REBALANCE_PROTOCOLS,
    VERSION_MARKERS,
    Capabilities,
    Evidence,
    capabilities,
    infer,
    infer_version,
)

# What brokers of each release list (the few names the inference reads; a real broker lists hundreds).
BROKER_36 = {"process.roles": "", "zookeeper.connect": "zk:2181", "group.consumer.max.size": "2147483647"}
BROKER_37 = {**BROKER_36, "process.roles": "broker", "zookeeper.connect": "", REBALANCE_PROTOCOLS: "classic"}
BROKER_38 = {**BROKER_37, "group.consumer.migration.policy": "disabled"}
BROKER_39 = {**BROKER_38, "group.share.max.size": "200"}
BROKER_41 = {**BROKER_39, "process.roles": "broker,controller", REBALANCE_PROTOCOLS: "classic,consumer,streams"}
BROKER_41.pop("zookeeper.connect")
GROUP_41 = {"consumer.session.timeout.ms": "45000", "share.session.timeout.ms": "45000", "streams.session.timeout.ms": "45000"}
GROUP_43 = {**GROUP_41, "consumer.assignment.interval.ms": "1000"}
GROUP_44 = {**GROUP_43, "errors.deadletterqueue.topic.name": ""}
REFUSED = {"group_error": "INVALID_REQUEST: Unsupported resource type", "group_configs_refused": True}


# ---------------------------------------------------------------------------------------------- inference


def supported(evidence: Evidence) -> dict[str, bool | None]:
    return {name: check.supported for name, check in infer(evidence).items()}


def test_a_broker_before_kip_848_can_do_none_of_it() -> None:
    evidence = Evidence(broker_configs=BROKER_36, **REFUSED)
    assert supported(evidence) == {
        "kraft": False,
        "consumer_protocol": False,
        "share_groups": False,
        "streams_groups": False,
        "group_configs": False,
    }
    assert infer_version(evidence).text == "3.6 or older"


@pytest.mark.parametrize(
    ("broker", "release"),
    [(BROKER_37, "3.7"), (BROKER_38, "3.8"), (BROKER_39, "3.9")],
)
def test_3x_brokers_serve_kip_848_only_where_the_protocol_list_names_it(broker: dict[str, str], release: str) -> None:
    off = infer(Evidence(broker_configs=broker, **REFUSED))
    assert off["consumer_protocol"].supported is False
    assert "group.coordinator.rebalance.protocols=classic" in off["consumer_protocol"].evidence
    on = infer(Evidence(broker_configs={**broker, REBALANCE_PROTOCOLS: "classic,consumer"}, **REFUSED))
    # before 4.0 the protocol list alone decides (no group.version feature gates it)
    assert on["consumer_protocol"].supported is True
    assert (on["share_groups"].supported, on["streams_groups"].supported, on["group_configs"].supported) == (False, False, False)
    guess = infer_version(Evidence(broker_configs=broker, **REFUSED))
    assert (guess.at_least, guess.at_most, guess.text) == (release, release, release)


def test_a_4x_broker_leaves_unknown_what_only_its_features_tell() -> None:
    checks = infer(Evidence(broker_configs=BROKER_41, group_configs=GROUP_41))
    assert checks["group_configs"].supported is True
    assert checks["kraft"].supported is True
    # group.version, share.version and streams.version decide, and librdkafka reads none of them
    for name, feature in (
        ("consumer_protocol", "group.version"),
        ("share_groups", "share.version"),
        ("streams_groups", "streams.version"),
    ):
        assert checks[name].supported is None, name
        assert feature in checks[name].evidence
    assert infer_version(Evidence(broker_configs=BROKER_41, group_configs=GROUP_41)).text == "4.0 to 4.2"


def test_finalized_features_decide_what_only_they_tell() -> None:
    on = infer(Evidence(broker_configs=BROKER_41, group_configs=GROUP_41,
                        features={"group.version": 1, "share.version": 2, "streams.version": 1}))  # fmt: skip
    assert (on["consumer_protocol"].supported, on["share_groups"].supported, on["streams_groups"].supported) == (True, True, True)
    assert "group.version=1" in on["consumer_protocol"].evidence and "share.version=2" in on["share_groups"].evidence
    off = infer(Evidence(broker_configs=BROKER_41, group_configs=GROUP_41, features={"metadata.version": 25}))
    for name, feature in (("consumer_protocol", "group.version"), ("share_groups", "share.version"), ("streams_groups", "streams.version")):
        assert off[name].supported is False, name
        assert f"{feature}=0" in off[name].evidence and f"kafka-features.sh upgrade --feature {feature}=1" in off[name].evidence
    # a protocol list without streams still rules streams groups out, whatever the feature says
    no_list = {**BROKER_41, REBALANCE_PROTOCOLS: "classic,consumer"}
    assert infer(Evidence(broker_configs=no_list, group_configs=GROUP_41, features={"streams.version": 1}))["streams_groups"].supported is False
    # features that could not be read leave the answer unknown, and say why
    unread = infer(Evidence(broker_configs=BROKER_41, group_configs=GROUP_41, features_error="Kafka refused loomctl's connection"))
    assert unread["share_groups"].supported is None and "Kafka refused loomctl's connection" in unread["share_groups"].evidence
    # a broker whose release is unknown: its features alone do not make a 3.x broker's group types
    assert infer(Evidence(broker_configs=BROKER_41, features={"group.version": 1}))["share_groups"].supported is None


def test_a_listed_consumer_protocol_group_proves_kip_848() -> None:
    checks = infer(Evidence(broker_configs=BROKER_41, group_configs=GROUP_41, consumer_groups=("orders",)))
    assert checks["consumer_protocol"].supported is True
    assert "orders" in checks["consumer_protocol"].evidence


def test_a_protocol_list_without_consumer_or_streams_says_no() -> None:
    broker = {**BROKER_41, REBALANCE_PROTOCOLS: "classic"}
    checks = infer(Evidence(broker_configs=broker, group_configs=GROUP_41))
    assert checks["consumer_protocol"].supported is False
    assert checks["streams_groups"].supported is False
    assert checks["share_groups"].supported is None  # share.version may still switch them on


def test_share_groups_switched_on_by_config() -> None:
    for broker in ({**BROKER_41, "group.share.enable": "true"}, {**BROKER_41, REBALANCE_PROTOCOLS: "classic,consumer,share"}):
        check = infer(Evidence(broker_configs=broker, group_configs=GROUP_41))["share_groups"]
        assert check.supported is True


@pytest.mark.parametrize(("group", "text"), [(GROUP_43, "4.3"), (GROUP_44, "4.4 or later")])
def test_later_releases_show_in_their_group_configs(group: dict[str, str], text: str) -> None:
    assert infer_version(Evidence(broker_configs=BROKER_41, group_configs=group)).text == text


def test_nothing_readable_is_unknown_never_false() -> None:
    evidence = Evidence(
        broker_error="CLUSTER_AUTHORIZATION_FAILED: denied",
        group_error="GROUP_AUTHORIZATION_FAILED: denied",
        consumer_groups_error="denied",
    )
    assert set(supported(evidence).values()) == {None}
    assert infer_version(evidence).text == "unknown"
    assert "CLUSTER_AUTHORIZATION_FAILED" in infer_version(evidence).evidence


def test_group_configs_alone_tell_a_4x_broker() -> None:
    checks = infer(Evidence(broker_error="CLUSTER_AUTHORIZATION_FAILED: denied", group_configs=GROUP_41))
    assert checks["group_configs"].supported is True
    assert checks["kraft"].supported is True  # 4.0 dropped ZooKeeper
    assert checks["consumer_protocol"].supported is None
    assert infer_version(Evidence(broker_error="denied", group_configs=GROUP_41)).text == "4.0 to 4.2"


# ---------------------------------------------------------------------------------------------- on the broker


def check(admin: Any, timeout: float = 10.0) -> Capabilities:
    return capabilities(admin, timeout=timeout)


def release_of(services: Any) -> tuple[int, int] | None:
    """(major, minor) of the session's broker where the session started it (its stack records it), else None."""
    if services.state_dir is None:
        return None
    from loomctl import devstack

    recorded = devstack.status(services.state_dir).kafka_version
    assert recorded is not None
    major, minor, _ = (int(part) for part in recorded.split("."))
    return major, minor


def test_the_session_broker(services: Any, admin: Any) -> None:
    found = check(admin)
    assert found.cluster_id and found.broker_ids and found.controller_id in found.broker_ids
    assert found.group_configs.supported is True
    assert found.kraft.supported is True
    assert found.rebalance_protocols is not None and "consumer" in found.rebalance_protocols
    # never True without a config that says so: only features, which librdkafka cannot read, switch them on here
    assert found.share_groups.supported is not True
    assert found.streams_groups.supported is not True
    assert found.broker_version.at_least is not None and found.broker_version.at_least >= "4.0"
    known = release_of(services)
    if known is not None:  # the devstack's broker: its release is known
        release = "%d.%d" % known
        guess = found.broker_version
        assert guess.at_least is not None and guess.at_least <= release
        assert guess.at_most is None or release <= guess.at_most
    as_json = json.loads(found.to_json())
    assert as_json == found.as_dict()
    assert set(as_json) == {
        "cluster_id", "controller_id", "broker_ids", "broker_count", "authorized_operations", "broker_version",
        "rebalance_protocols", "kraft", "consumer_protocol", "share_groups", "streams_groups", "group_configs",
        "checked_with",
    }  # fmt: skip
    assert as_json["broker_version"]["inferred"] is True
    for name in ("kraft", "consumer_protocol", "share_groups", "streams_groups", "group_configs"):
        assert set(as_json[name]) == {"supported", "evidence"} and as_json[name]["evidence"]


def test_what_the_broker_lacks_is_reported_missing_or_unknown_as_kafkas_own_tool_says(services: Any, admin: Any) -> None:
    """Share and streams groups (feature-gated since 4.1) and the group configs of 4.3 and 4.4, on whatever release
    runs: where Kafka's kafka-features says a feature is off, or the broker lacks a config, the check says so."""
    known = release_of(services)
    if known is None:
        pytest.skip("the services come from LOOM_* variables: their release and jars are not the session's")
    features = kafka_tools.describe_features(services.bootstrap_servers)
    found = check(admin)
    assert features["group.version"] == "1"  # KIP-848 on, on every release the devstack runs

    for capability, feature in ((found.streams_groups, "streams.version"), (found.share_groups, "share.version")):
        if int(features.get(feature, "0")) >= 1:
            # served, but librdkafka cannot read the feature: unknown, never False
            assert capability.supported is None and feature in capability.evidence, (feature, capability)
        else:
            assert capability.supported is not True, (feature, capability)
    protocols = found.rebalance_protocols or ()
    if "streams" not in protocols:  # 4.0: the list alone rules streams groups out
        assert found.streams_groups.supported is False and REBALANCE_PROTOCOLS in found.streams_groups.evidence
    if known >= (4, 4):
        assert {"share.version", "streams.version"} <= features.keys()
    if known < (4, 1):
        assert "share.version" not in features and "streams.version" not in features and "streams" not in protocols

    resource = ConfigResource(ResourceType.GROUP, PROBE_GROUP)
    group_configs = admin.describe_configs([resource])[resource].result(timeout=30)
    guess = found.broker_version
    for marker, where, name in VERSION_MARKERS:
        if where != "group" or not name or marker < "4.3":
            continue
        have = known >= tuple(int(part) for part in marker.split("."))
        assert (name in group_configs) is have, (marker, name)
        if not have:  # a release before the marker: the inferred range ends before it, and says why
            assert guess.at_most is not None and guess.at_most < marker and f"lacks group config {name}" in guess.evidence
    if known >= (4, 4):
        assert guess.text == "4.4 or later"


def test_the_finalized_features_read_as_kafkas_own_tool_reads_them(services: Any, admin: Any) -> None:
    """With the cluster's properties the check reads the finalized features itself (ApiVersions v3+, which
    librdkafka cannot): each group type is on exactly where kafka-features says its feature is (and the protocol
    list names it), no longer unknown."""
    known = release_of(services)
    if known is None:
        pytest.skip("the services come from LOOM_* variables: their release and jars are not the session's")
    features = kafka_tools.describe_features(services.bootstrap_servers)
    found = capabilities(admin, timeout=10.0, properties={"bootstrap.servers": services.bootstrap_servers})
    protocols = found.rebalance_protocols or ()
    assert found.consumer_protocol.supported is (int(features.get("group.version", "0")) >= 1)
    assert found.share_groups.supported is (int(features.get("share.version", "0")) >= 1)
    assert found.streams_groups.supported is (int(features.get("streams.version", "0")) >= 1 and "streams" in protocols)
    assert "features by kafka-python" in found.checked_with
    if known >= (4, 4):
        assert (found.consumer_protocol.supported, found.share_groups.supported, found.streams_groups.supported) == (True, True, True)
    # a cluster whose features cannot be read (no broker answers that client) keeps the unknowns, and says why
    unread = capabilities(admin, timeout=2.0, properties={"bootstrap.servers": f"127.0.0.1:{free_port()}"})
    assert unread.share_groups.supported is not True and "nor could the features be read" in unread.share_groups.evidence


def test_a_consumer_protocol_group_makes_kip_848_certain(services: Any, admin: Any) -> None:
    from confluent_kafka import Consumer

    topic = create_topic(admin, unique("caps"))
    group = unique("caps-kip848")
    consumer = Consumer(
        {"bootstrap.servers": services.bootstrap_servers, "group.id": group, "group.protocol": "consumer", "logger": quiet()}
    )
    try:
        consumer.subscribe([topic])

        def proven() -> Capabilities | None:
            consumer.poll(0.2)  # heartbeats: the broker forms the group
            found = check(admin)
            return found if found.consumer_protocol.supported is True else None

        found = wait_for("the consumer-protocol group to be listed", proven)
        assert group in found.consumer_protocol.evidence or "consumer-protocol groups" in found.consumer_protocol.evidence
    finally:
        consumer.close()
        delete_topics(admin, [topic])


def test_an_unreachable_cluster_is_backend_unavailable_within_the_timeout() -> None:
    closed = f"127.0.0.1:{free_port()}"
    unreachable_admin = admin_client(closed)
    started = time.monotonic()
    with pytest.raises(BackendUnavailable, match="Kafka did not answer"):
        check(unreachable_admin, timeout=2.0)
    assert time.monotonic() - started < 2.0 + 3.0
