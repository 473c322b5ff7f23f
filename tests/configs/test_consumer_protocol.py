"""Kafka 4's consumer group protocol (KIP-848) end to end, on the real broker: the loader's consumer
joins with it, `config push` sets the group configs the broker owns, `config drift` sees what
differs, and the guide's Rebalancing advice reaches the broker through a push."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from confluent_kafka import Consumer
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

from support import Cli, create_topic, produce_records, quiet, unique

from loomctl.loader import ConsumerConfigLoader

pytestmark = pytest.mark.integration

SESSION = "consumer.session.timeout.ms"
HEARTBEAT = "consumer.heartbeat.interval.ms"


@pytest.fixture
def topic(services, admin) -> Iterator[str]:
    name = create_topic(admin, unique("k4.test", 8), 3)
    produce_records(services.bootstrap_servers, name, ({"value": f"message {i}".encode(), "partition": i % 3} for i in range(30)))
    yield name
    admin.delete_topics([name])[name].result(timeout=30)


def consumer_service(cli: Cli, **settings: Any) -> tuple[str, str]:
    """A configured consumer-protocol service (heartbeat within the broker's default 5..15 s bounds)."""
    service = unique("k4svc")
    group = f"{service}-group"
    values = {"group_protocol": "consumer", "heartbeat_interval_ms": 5000, "auto_offset_reset": "earliest", **settings}
    result = cli("set", service, "--create", "--group", group, *(f"{k}={v}" for k, v in values.items()))
    assert result.exit_code == 0, result.output
    return service, group


def group_configs(admin: Any, group: str) -> dict[str, tuple[str, bool]]:
    resource = ConfigResource(ResourceType.GROUP, group)
    entries = admin.describe_configs([resource])[resource].result(timeout=30)
    return {name: (entries[name].value, entries[name].source == 8) for name in (SESSION, HEARTBEAT)}


def set_by_hand(admin: Any, group: str, name: str, value: str) -> None:
    """What an operator does with kafka-configs --alter --entity-type groups."""
    resource = ConfigResource(ResourceType.GROUP, group, incremental_configs=[
        ConfigEntry(name, value, incremental_operation=AlterConfigOpType.SET)])
    admin.incremental_alter_configs([resource])[resource].result(timeout=30)
    deadline = time.monotonic() + 10  # the broker applies the metadata record a moment later
    while group_configs(admin, group)[name][0] != value and time.monotonic() < deadline:
        time.sleep(0.1)


def consume_until(consumer: Consumer, count: int, seconds: float = 60) -> int:
    seen, deadline = 0, time.monotonic() + seconds
    while seen < count and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is not None and not message.error():
            seen += 1
            consumer.commit(message, asynchronous=False)
    return seen


def joined(admin: Any, group: str, seconds: float = 30) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        description = admin.describe_consumer_groups([group])[group].result(timeout=30)
        assigned = sum(len(m.assignment.topic_partitions) for m in description.members if m.assignment)
        if (description.members and assigned) or time.monotonic() > deadline:
            return description
        time.sleep(0.3)


def test_the_loaders_consumer_joins_with_the_consumer_protocol_and_consumes(kafka_cli, database_url, services, admin, topic, tmp_path):
    service, group = consumer_service(kafka_cli, group_remote_assignor="range")
    with psycopg.connect(database_url) as conn:
        loader = ConsumerConfigLoader(conn, cache_dir=tmp_path)
        props = loader.load_config(service).librdkafka()
        assert props["group.protocol"] == "consumer" and props["group.remote.assignor"] == "range"
        assert not {"session.timeout.ms", "heartbeat.interval.ms", "partition.assignment.strategy"} & props.keys()
        consumer = loader.create_consumer(service, [topic], bootstrap_servers=services.bootstrap_servers)
    try:
        assert consume_until(consumer, 30) == 30
        description = joined(admin, group)
        assert description.type.name == "CONSUMER" and description.partition_assignor == "range"
        assert len(description.members) == 1 and len(description.members[0].assignment.topic_partitions) == 3
        drift = kafka_cli.json("drift", service)
        # the broker's defaults (45 s, 5 s) equal the table's: the group runs what it should
        assert drift[0]["group_type"] == "consumer" and drift[0]["members"] == 1 and drift[0]["partitions"] == 3
        assert drift[0]["assignor_in_use"] == "range" and drift[0]["in_sync"], drift
        # lag, the collector's history and the status carry the group's type
        lag = Cli(database_url, services.bootstrap_servers, group=["lag"])
        (shown,) = lag.json("show", service, "--by", "service")
        assert shown["group_type"] == "consumer" and shown["members"] == 1 and shown["group_state"] == "Stable"
        for _ in range(2):
            assert lag("collect", "--once").exit_code == 0
        status = lag.json("status", service)
        assert [g["group_type"] for g in status["groups"]] == ["consumer"]
        assert {p["group_type"] for p in status["partitions"]} == {"consumer"}
    finally:
        consumer.close()


def test_push_sets_the_group_configs_reads_them_back_and_records_the_push(kafka_cli, admin, database_url):
    service, group = consumer_service(kafka_cli, session_timeout_ms=50_000, heartbeat_interval_ms=6_000)
    classic = unique("classic")
    assert kafka_cli("set", classic, "--create").exit_code == 0
    plan = kafka_cli.json("push", service, classic, "--dry-run")
    by_service = {i["service_name"]: i for i in plan["items"]}
    assert by_service[service]["action"] == "would set" and by_service[classic]["action"] == "skipped"
    assert group_configs(admin, group)[SESSION] == ("45000", False)  # a dry run sets nothing

    report = kafka_cli.json("push", service, classic, "--yes")
    item = {i["service_name"]: i for i in report["items"]}[service]
    assert item["action"] == "set" and item["broker_after"] == {SESSION: "50000", HEARTBEAT: "6000"}
    assert group_configs(admin, group) == {SESSION: ("50000", True), HEARTBEAT: ("6000", True)}
    history = kafka_cli.json("history", service)
    push = history[0]
    assert push["change_type"] == "push" and push["config_version"] == 1
    assert {c["field"]: (c["old"], c["new"]) for c in push["changes"]} == {
        "session_timeout_ms": (45_000, 50_000), "heartbeat_interval_ms": (5_000, 6_000)}
    # pushed again: nothing to set; a rollback undoes the last config change, never a push
    again = kafka_cli.json("push", service, "--yes")
    assert again["items"][0]["action"] == "unchanged"
    assert len(kafka_cli.json("history", service)) == 2
    refused = kafka_cli("diff", service, "--against", str(push["id"]))
    assert refused.exit_code == 2 and "push of group configs" in refused.stderr


def test_a_value_changed_on_the_broker_by_hand_is_drift_and_fail_exits_1(kafka_cli, admin):
    service, group = consumer_service(kafka_cli)
    assert kafka_cli("push", service, "--yes").exit_code == 0
    clean = kafka_cli("drift", service, "--fail")
    assert clean.exit_code == 0, clean.output
    set_by_hand(admin, group, SESSION, "55000")
    result = kafka_cli("drift", service, "--fail", "-o", "json")
    assert result.exit_code == 1
    import json

    (row,) = json.loads(result.stdout)
    assert not row["in_sync"] and row["group_configs"][SESSION] == {"table": "45000", "broker": "55000", "set_for_group": True}
    assert any("consumer.session.timeout.ms is 55000 on the broker" in d and f"config push {service}" in d for d in row["drift"])
    assert "drift from their config" in result.stderr
    # pushing mends it
    assert kafka_cli("push", service, "--yes").exit_code == 0
    assert kafka_cli("drift", service, "--fail").exit_code == 0


def test_members_on_the_classic_protocol_while_the_config_says_consumer_are_drift(kafka_cli, services, admin, topic):
    service, group = consumer_service(kafka_cli)
    classic = Consumer({"bootstrap.servers": services.bootstrap_servers, "group.id": group, "auto.offset.reset": "earliest",
                        "session.timeout.ms": 6000, "heartbeat.interval.ms": 1000, "logger": quiet()})
    classic.subscribe([topic])
    try:
        assert consume_until(classic, 5) == 5
        assert joined(admin, group).type.name == "CLASSIC"
        result = kafka_cli("drift", service, "--fail", "-o", "json")
        assert result.exit_code == 1
        import json

        (row,) = json.loads(result.stdout)
        assert row["group_type"] == "classic" and row["group_protocol"] == "consumer"
        assert any("runs the classic protocol" in d for d in row["drift"]), row["drift"]
    finally:
        classic.close()


def test_the_guides_rebalancing_update_in_psql_then_push_lands_on_the_broker(kafka_cli, pg, admin):
    service, group = consumer_service(kafka_cli)
    # "Rebalancing Issues: increase timeouts", as the guide writes it
    pg.execute(
        "UPDATE pipeline_consumer_configs SET session_timeout_ms = 120000, max_poll_interval_ms = 900000"
        " WHERE service_name = %s", [service])
    drift = kafka_cli.json("drift", service)
    assert not drift[0]["in_sync"]
    report = kafka_cli.json("push", service, "--yes")
    assert report["items"][0]["action"] == "set"
    assert group_configs(admin, group)[SESSION] == ("120000", True)
    assert kafka_cli("drift", service, "--fail").exit_code == 0


def test_a_value_the_broker_refuses_fails_with_its_words_while_the_others_go_through(kafka_cli, pg, admin):
    good, good_group = consumer_service(kafka_cli, session_timeout_ms=48_000)
    bad, bad_group = consumer_service(kafka_cli)
    # within the table's CHECKs (so psql takes it) but above the broker's group.consumer.max.session.timeout.ms
    pg.execute("UPDATE pipeline_consumer_configs SET session_timeout_ms = 3600000, max_poll_interval_ms = 3600000"
               " WHERE service_name = %s", [bad])
    result = kafka_cli("push", good, bad, "--yes", "-o", "json")
    assert result.exit_code == 1
    import json

    items = {i["service_name"]: i for i in json.loads(result.stdout)["items"]}
    assert items[good]["action"] == "set" and items[bad]["action"] == "failed"
    # the broker's own words: 4.0.1 and 4.1.2 name group.consumer.max.session.timeout.ms, 4.4.0 gives the range
    # ("consumer.session.timeout.ms must be in the range 1000 to 1800000 inclusive.")
    reason = items[bad]["reason"]
    assert "INVALID_CONFIG" in reason and ("max.session.timeout.ms" in reason or "to 1800000" in reason), reason
    assert "the broker refused the group configs of 1 service(s)" in result.stderr
    assert group_configs(admin, good_group)[SESSION] == ("48000", True)
    assert group_configs(admin, bad_group)[SESSION][1] is False  # nothing set for the refused group
    assert [e["change_type"] for e in kafka_cli.json("history", bad)] == ["update", "create"]


def test_config_set_refuses_a_consumer_protocol_service_outside_the_brokers_bounds(kafka_cli, pg):
    service = unique("k4svc")
    assert kafka_cli("set", service, "--create").exit_code == 0
    result = kafka_cli("set", service, "group_protocol=consumer")  # the default heartbeat, 3 s, is below 5 s
    assert result.exit_code == 2
    assert "heartbeat_interval_ms=3000 is outside the broker's group.consumer.min/max.heartbeat.interval.ms (5000..15000)" in result.stderr
    assert "Traceback" not in result.output
    row = pg.execute("SELECT group_protocol, version FROM pipeline_consumer_configs WHERE service_name = %s", [service]).fetchone()
    assert row == ("classic", 1)
    ok = kafka_cli("set", service, "group_protocol=consumer", "heartbeat_interval_ms=5000")
    assert ok.exit_code == 0 and f"takes effect after `loomctl config push {service}`" in ok.stderr


def test_config_set_push_sets_the_broker_side_at_once(kafka_cli, admin):
    service, group = consumer_service(kafka_cli)
    result = kafka_cli("set", service, "session_timeout_ms=52000", "--push")
    assert result.exit_code == 0, result.output
    assert "push: 1 set" in result.stderr
    assert group_configs(admin, group)[SESSION] == ("52000", True)


def test_kafkajs_export_says_it_has_no_consumer_protocol(kafka_cli):
    service, _ = consumer_service(kafka_cli)
    import json

    exported = json.loads(kafka_cli("export", service, "--format", "kafkajs").stdout)
    assert "KafkaJS has no consumer group protocol" in exported[service]["note"]
    # it still gets what it needs to join as a classic member
    assert exported[service]["consumer"]["sessionTimeout"] == 45_000
