"""A service that is a share group (KIP-932) end to end on the real broker: its share settings are the group configs
the broker owns (`config set` checks them against group.share.min/max.*, `config push` sets them, Kafka's own
ConfigCommand reads them back, `config drift` compares them), the Python loader builds confluent-kafka's share
consumer for it, and what that consumer leaves is the share lag Kafka's ShareGroupCommand prints."""

from __future__ import annotations

import time
from typing import Any

import pytest
from group_kinds import CONFIGS, SHARE_GROUPS, table, tool
from support import Cli, create_topic, produce, unique, wait_for

from loomctl.consumer_config import (
    DEFAULTS,
    RULES,
    SHARE_GROUP_CONFIGS,
    broker_group_configs,
    java_properties,
    librdkafka_properties,
)
from loomctl.kafka import protocol
from loomctl.loader import ConsumerConfigLoader

SHARE = {**DEFAULTS, "group_protocol": "share", "heartbeat_interval_ms": 5_000}
SHARE_SETTINGS = {
    "group_protocol": "share",
    "heartbeat_interval_ms": 6_000,
    "session_timeout_ms": 50_000,
    "auto_offset_reset": "earliest",
    "isolation_level": "read_uncommitted",
    "record_lock_duration_ms": 20_000,
    "max_poll_records": 7,
}
PUSHED = {
    "share.session.timeout.ms": "50000",
    "share.heartbeat.interval.ms": "6000",
    "share.auto.offset.reset": "earliest",
    "share.isolation.level": "read_uncommitted",
    "share.record.lock.duration.ms": "20000",
}


# --- the field table's share-group forms (pure) ---


def test_a_share_consumer_gets_only_what_librdkafkas_and_javas_share_consumers_take():
    props = librdkafka_properties(SHARE)
    # both clients refuse each of these for a share consumer ("cannot be set when using a share group")
    refused = {"group.protocol", "group.remote.assignor", "session.timeout.ms", "heartbeat.interval.ms",
               "partition.assignment.strategy", "auto.offset.reset", "isolation.level", "enable.auto.commit"}  # fmt: skip
    assert not refused & set(props), props
    assert props["max.poll.records"] == "500" and props["share.acknowledgement.mode"] == "implicit"
    java = java_properties({**SHARE, "enable_auto_commit": False})
    assert not refused & set(java) and java["share.acknowledgement.mode"] == "explicit", java
    assert java["max.poll.records"] == "500"


def test_librdkafka_builds_a_share_consumer_from_them():
    from confluent_kafka import ShareConsumer

    for settings in (SHARE, {**SHARE, "enable_auto_commit": False, "max_poll_records": 1}):
        consumer = ShareConsumer(
            {"bootstrap.servers": "127.0.0.1:1", "group.id": "g", "log_level": 0, **librdkafka_properties(settings)}
        )
        consumer.close()


def test_the_broker_owns_five_share_settings_and_offset_reset_none_has_no_share_form():
    assert broker_group_configs(SHARE) == {
        "share.session.timeout.ms": "45000",
        "share.heartbeat.interval.ms": "5000",
        "share.auto.offset.reset": "latest",
        "share.isolation.level": "read_committed",
        "share.record.lock.duration.ms": "30000",
    }
    assert set(SHARE_GROUP_CONFIGS) <= set(DEFAULTS)
    rule = next(r for r in RULES if r.name == "share_offset_reset")
    assert not rule.holds({**SHARE, "auto_offset_reset": "none"})
    assert rule.holds({**DEFAULTS, "auto_offset_reset": "none"})  # a consumer group keeps it


# --- on the broker ---


def share_service(cli: Cli, **settings: Any) -> tuple[str, str]:
    service = unique("sharesvc")
    group = f"{service}-group"
    values = {**SHARE_SETTINGS, **settings}
    result = cli("set", service, "--create", "--group", group, *(f"{k}={v}" for k, v in values.items()))
    assert result.exit_code == 0, result.output
    return service, group


def kafkas_own_view(bootstrap: str, group: str) -> dict[str, str]:
    """The group's configs as Kafka's ConfigCommand describes them (the ones set for the group)."""
    text = tool(CONFIGS, "--bootstrap-server", bootstrap, "--describe", "--entity-type", "groups", "--entity-name", group)
    found: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        for name in PUSHED:
            if line.startswith(f"{name}="):
                found[name] = line.split("=", 1)[1].split(" ", 1)[0]
    return found


def needs_share_groups(bootstrap: str) -> None:
    with protocol.client({"bootstrap.servers": bootstrap}) as c:
        offered = c.broker_versions(protocol.ShareGroupDescribeRequest)
    if offered is None or offered[1] < 1:
        pytest.skip(f"the session's broker offers ShareGroupDescribe {offered}: no share groups")


@pytest.mark.integration
def test_config_set_refuses_share_settings_outside_the_brokers_bounds_and_changes_nothing(kafka_cli, services):
    needs_share_groups(services.bootstrap_servers)
    service, _ = share_service(kafka_cli)
    before = kafka_cli.json("show", service)
    # the broker's group.share.max.record.lock.duration.ms is 60000, its min heartbeat 5000
    for assignment, bound in (("record_lock_duration_ms=90000", "group.share.min/max.record.lock.duration.ms"),
                              ("heartbeat_interval_ms=4000", "group.share.min/max.heartbeat.interval.ms")):  # fmt: skip
        refused = kafka_cli("set", service, assignment)
        assert refused.exit_code != 0 and bound in refused.stderr, refused.output
        assert len(refused.stderr.strip().splitlines()) == 1 and "Traceback" not in refused.output
    none = kafka_cli("set", service, "auto_offset_reset=none")
    assert none.exit_code != 0 and "share" in none.stderr, none.output
    assert kafka_cli.json("show", service) == before


@pytest.mark.integration
def test_push_sets_the_share_group_configs_as_kafkas_config_command_reads_them(kafka_cli, services):
    bootstrap = services.bootstrap_servers
    needs_share_groups(bootstrap)
    service, group = share_service(kafka_cli)
    classic = unique("classic")
    assert kafka_cli("set", classic, "--create").exit_code == 0
    plan = {i["service_name"]: i for i in kafka_cli.json("push", service, classic, "--dry-run")["items"]}
    assert plan[service]["action"] == "would set" and plan[service]["group_protocol"] == "share"
    assert plan[classic]["action"] == "skipped"
    assert kafkas_own_view(bootstrap, group) == {}  # a dry run sets nothing

    report = kafka_cli.json("push", service, "--yes")
    item = report["items"][0]
    assert item["action"] == "set" and item["broker_after"] == PUSHED, item
    assert kafkas_own_view(bootstrap, group) == PUSHED
    history = kafka_cli.json("history", service)
    assert history[0]["change_type"] == "push"
    assert {c["field"] for c in history[0]["changes"]} == set(SHARE_GROUP_CONFIGS)
    assert kafka_cli.json("push", service, "--yes")["items"][0]["action"] == "unchanged"

    # changed by hand with Kafka's own tool: drift names it and the push that mends it
    tool(CONFIGS, "--bootstrap-server", bootstrap, "--alter", "--entity-type", "groups", "--entity-name", group,
         "--add-config", "share.record.lock.duration.ms=25000")  # fmt: skip
    drift = wait_for(
        "drift of the value set by hand",
        lambda: next((d for d in kafka_cli.json("drift", service) if not d["in_sync"]), None),
        timeout=30,
    )
    assert any("share.record.lock.duration.ms is 25000" in line and "config push" in line for line in drift["drift"]), drift
    assert kafka_cli("drift", service, "--fail").exit_code == 1
    assert kafka_cli.json("push", service, "--yes")["items"][0]["action"] == "set"
    assert kafkas_own_view(bootstrap, group)["share.record.lock.duration.ms"] == "20000"


@pytest.mark.integration
def test_the_loader_builds_a_share_consumer_whose_lag_is_what_share_group_command_prints(kafka_cli, services, database_url):
    import psycopg_pool

    bootstrap = services.bootstrap_servers
    needs_share_groups(bootstrap)
    service, group = share_service(kafka_cli)
    assert kafka_cli("push", service, "--yes").exit_code == 0  # share.auto.offset.reset=earliest before it joins
    topic = create_topic(bootstrap, unique("share-loader"), 2)
    produce(bootstrap, topic, {0: 30, 1: 30})

    with psycopg_pool.ConnectionPool(database_url, min_size=1, max_size=2) as pool:
        loader = ConsumerConfigLoader(pool)
        consumer = loader.create_consumer(service, [topic], bootstrap_servers=bootstrap)
        try:
            assert type(consumer.client).__name__ == "ShareConsumer"  # behind the loader's ManagedConsumer
            taken: list[Any] = []
            batches = loader.poll_with_limit(consumer, service, timeout=1.0, yield_empty=True)
            deadline = time.monotonic() + 90
            while len(taken) < 20 and time.monotonic() < deadline:
                batch = next(batches)
                assert len(batch) <= SHARE_SETTINGS["max_poll_records"]  # the loader's slices, librdkafka's limit is soft
                taken += batch
            assert len(taken) >= 20, len(taken)
            drift = kafka_cli.json("drift", service)[0]
            assert (drift["group_type"], drift["members"], drift["in_sync"]) == ("share", 1, True), drift
        finally:
            consumer.close()  # sends what was accepted, releases the rest and leaves the group

    def agreed() -> Any:
        described = tool(SHARE_GROUPS, "--bootstrap-server", bootstrap, "--describe", "--offsets", "--group", group)
        theirs = {(r["TOPIC"], int(r["PARTITION"])): (r["START-OFFSET"], r["LAG"]) for r in table(described)}
        rows = Cli(database_url, bootstrap, group=["lag"]).json("show", "--group", group, "--by", "partition")
        ours = {(r["topic_name"], r["partition"]): (shown(r["start_offset"]), shown(r["lag"])) for r in rows}
        return (rows, theirs) if ours == theirs and theirs else None

    rows, theirs = wait_for("loomctl and ShareGroupCommand agree", agreed, timeout=60)
    assert {r["group_type"] for r in rows} == {"share"}
    # a slice is accepted when the next is asked for: the last one handed out was never asked past, so close()
    # released it with the records never handed out, to be delivered again (at least once, never lost)
    accepted = len(taken) - len(batch)
    started = [r for r in rows if r["start_offset"] is not None]
    assert accepted > 0 and sum(r["start_offset"] for r in started) == accepted, (rows, len(taken), len(batch))
    assert sum(r["lag"] for r in started) == 30 * len(started) - accepted, rows


def shown(value: int | None) -> str:
    return "-" if value is None else str(value)


@pytest.mark.integration
def test_a_classic_service_whose_group_is_a_share_group_is_drift(kafka_cli, services):
    bootstrap = services.bootstrap_servers
    needs_share_groups(bootstrap)
    from confluent_kafka import ShareConsumer

    service = unique("notshare")
    group = f"{service}-group"
    assert kafka_cli("set", service, "--create", "--group", group).exit_code == 0
    topic = create_topic(bootstrap, unique("share-misfit"), 1)
    consumer = ShareConsumer({"bootstrap.servers": bootstrap, "group.id": group, "log_level": 0})
    consumer.subscribe([topic])
    try:
        drift = wait_for("the share consumer joined", lambda: _joined(kafka_cli, service, consumer), timeout=60)
    finally:
        consumer.close()
    assert drift["group_type"] == "share" and not drift["in_sync"]
    assert any("configured classic, but the group is a share group" in line for line in drift["drift"]), drift


def _joined(cli: Cli, service: str, consumer: Any) -> Any:
    consumer.poll(0.2)
    drift = cli.json("drift", service)[0]
    return drift if drift["members"] else None


@pytest.mark.integration
def test_exports_say_which_share_consumer_each_client_gets(kafka_cli, services):
    needs_share_groups(services.bootstrap_servers)
    service, _ = share_service(kafka_cli, enable_auto_commit="false")
    librdkafka = kafka_cli("export", service, "--format", "librdkafka")
    assert librdkafka.exit_code == 0 and "share consumer, a preview" in librdkafka.stdout
    assert "share.acknowledgement.mode=explicit" in librdkafka.stdout and "max.poll.records=7" in librdkafka.stdout
    assert "auto.offset.reset" not in librdkafka.stdout and "session.timeout.ms" not in librdkafka.stdout
    java = kafka_cli("export", service, "--format", "java")
    assert "KafkaShareConsumer" in java.stdout and "share.acknowledgement.mode=explicit" in java.stdout
    kafkajs = kafka_cli("export", service, "--format", "kafkajs")
    assert "KafkaJS has no share consumer" in kafkajs.stdout
