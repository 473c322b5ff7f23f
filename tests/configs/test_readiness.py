"""`config readiness`: each classic-protocol service against the consumer protocol (KIP-848) before KIP-1274 takes the
classic one away. First the judgement on its own (what a cluster said, made up), then on the session's broker: a
service the broker's bounds and assignors block, a KafkaJS member, a ready service whose commands move it, a cluster
that does not answer, and bad input."""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer

from support import Cli, create_topic, forget_cluster, free_port, produce_records, quiet, unique, wait_for

from loomctl.configs.readiness import (
    Check,
    ClusterFacts,
    Finding,
    Outcome,
    Verdict,
    assess,
    kafkajs_members,
    offered_assignors,
    within_bounds,
)
from loomctl.configs.store import ConsumerConfig
from loomctl.consumer_config import DEFAULTS
from loomctl.kafka import Group, Member

# What a Kafka 4.4 broker of default settings says (the dev stack widens the session timeout to 1000..1800000).
BROKER_44 = {
    "group.consumer.assignors": "uniform,range",
    "group.consumer.migration.policy": "bidirectional",
    "group.consumer.max.size": "2147483647",
    "group.consumer.min.session.timeout.ms": "45000",
    "group.consumer.max.session.timeout.ms": "60000",
    "group.consumer.min.heartbeat.interval.ms": "5000",
    "group.consumer.max.heartbeat.interval.ms": "15000",
}
SERVES = Finding(Check.BROKER, Outcome.OK, "Kafka 4.4 serves the consumer protocol")


def config(group: str = "g", **settings: Any) -> ConsumerConfig:
    return ConsumerConfig("svc", group, None, None, {**DEFAULTS, "heartbeat_interval_ms": 5_000, **settings}, 3)


def facts(group: Group | None = None, broker: dict[str, str] | None = BROKER_44, serves: Finding = SERVES) -> ClusterFacts:
    groups = None if group is None else {group.consumer_group_id: group}
    return ClusterFacts("default", serves, broker, None if broker else "describe_configs: not authorized", groups,
                        None if groups else "Kafka did not answer describe_consumer_groups")


def classic_group(*client_ids: str, assignor: str = "range", group: str = "g") -> Group:
    members = tuple(Member(f"m{i}", c, "10.0.0.1", ((("t", i),))) for i, c in enumerate(client_ids))
    return Group(group, "Stable", members, "classic", assignor)


def outcomes(result: Any) -> dict[str, str]:
    return {f.check: f.outcome for f in result.checks}


# ---------------------------------------------------------------------------------------------- the judgement


def test_a_librdkafka_service_within_the_bounds_on_an_upgrading_broker_is_ready_with_its_commands() -> None:
    result = assess(config(), facts(classic_group("rdkafka", "rdkafka")))
    assert result.verdict == Verdict.READY and not result.blockers and not result.unknown
    # range has its broker-side twin: the move keeps it rather than the table's default, uniform
    assert result.changes == {"group_protocol": "consumer", "group_remote_assignor": "range"}
    assert result.commands == [
        "loomctl config set svc group_protocol=consumer group_remote_assignor=range --if-version 3 "
        "--reason 'KIP-1274: move to the consumer group protocol (KIP-848)'",
        "loomctl config push svc --yes",
    ]
    assert "restart its 2 member(s) one at a time" in (result.next_step or "")


def test_a_client_side_assignor_and_a_session_timeout_outside_the_bounds_are_both_named_and_fixed_by_the_commands() -> None:
    result = assess(config(partition_assignment_strategy="cooperative-sticky", session_timeout_ms=30_000),
                    facts(classic_group("rdkafka", assignor="cooperative-sticky")))
    assert result.verdict == Verdict.BLOCKED
    assert outcomes(result)[Check.ASSIGNOR] == outcomes(result)[Check.SESSION_TIMEOUT] == Outcome.BLOCKER
    assert any("cooperative-sticky is client-side" in b and "group_remote_assignor=uniform" in b for b in result.blockers)
    assert any("session_timeout_ms=30000 is outside" in b and "(45000..60000)" in b for b in result.blockers)
    # uniform is the table's default already: only the session timeout (and the poll interval under it) change
    assert result.changes == {"group_protocol": "consumer", "session_timeout_ms": 45_000} | (
        {} if DEFAULTS["max_poll_interval_ms"] >= 45_000 else {"max_poll_interval_ms": 45_000})
    assert len(result.commands) == 2


@pytest.mark.parametrize(
    ("settings", "bounds", "changes"),
    [
        ({"session_timeout_ms": 45_000, "heartbeat_interval_ms": 3_000, "max_poll_interval_ms": 300_000},
         {"session_timeout_ms": (45_000, 60_000), "heartbeat_interval_ms": (5_000, 15_000)}, {"heartbeat_interval_ms": 5_000}),
        # a session timeout raised to the bound drags the poll interval along (max_poll_interval_ms >= session)
        ({"session_timeout_ms": 10_000, "heartbeat_interval_ms": 3_000, "max_poll_interval_ms": 20_000},
         {"session_timeout_ms": (45_000, 60_000), "heartbeat_interval_ms": (5_000, 15_000)},
         {"session_timeout_ms": 45_000, "heartbeat_interval_ms": 5_000, "max_poll_interval_ms": 45_000}),
        # a heartbeat the bounds force up takes the session timeout to three heartbeats
        ({"session_timeout_ms": 12_000, "heartbeat_interval_ms": 3_000, "max_poll_interval_ms": 300_000},
         {"session_timeout_ms": (1_000, 1_800_000), "heartbeat_interval_ms": (5_000, 15_000)},
         {"session_timeout_ms": 15_000, "heartbeat_interval_ms": 5_000}),
        ({"session_timeout_ms": 2_000_000, "heartbeat_interval_ms": 5_000, "max_poll_interval_ms": 2_000_000},
         {"session_timeout_ms": (1_000, 1_800_000), "heartbeat_interval_ms": (5_000, 15_000)}, {"session_timeout_ms": 1_800_000}),
    ],
)
def test_the_settings_brought_within_the_bounds_keep_the_tables_rules(settings, bounds, changes) -> None:
    from loomctl.validation import problems

    assert within_bounds(settings, bounds) == changes
    assert problems({**DEFAULTS, **settings, **changes}) == []


def test_kafkajs_is_told_by_its_client_id_its_assigner_or_node_packages_client_id() -> None:
    by_default = classic_group("kafkajs", "rdkafka", assignor="")
    assert [m.client_id for m, _ in kafkajs_members(by_default)] == ["kafkajs"]
    by_assigner = classic_group("pricing", assignor="RoundRobinAssigner")
    assert [m.client_id for m, _ in kafkajs_members(by_assigner)] == ["pricing"]
    by_group_id = classic_group("g", assignor="")
    assert "node/'s default clientId" in kafkajs_members(by_group_id)[0][1]
    # a group that agreed on librdkafka's range has no member of node/'s, whatever its client id
    assert kafkajs_members(classic_group("g", assignor="range")) == []
    # but a consumer-protocol group's range is the broker's, and says nothing of a classic member that stayed
    migrated = Group("g", "Stable", classic_group("g").members, "consumer", "range")
    assert len(kafkajs_members(migrated)) == 1


def test_what_cannot_be_told_is_unknown_never_ready() -> None:
    empty = assess(config(), facts(Group("g", "Empty", (), "classic")))
    assert empty.verdict == Verdict.UNKNOWN and outcomes(empty)[Check.CLIENT] == Outcome.UNKNOWN
    assert empty.commands  # what the move sets is known; only the client is not
    unread = assess(config(), facts(classic_group("rdkafka"), broker=None))
    assert unread.verdict == Verdict.UNKNOWN and unread.commands == []
    assert outcomes(unread)[Check.ASSIGNOR] == outcomes(unread)[Check.SESSION_TIMEOUT] == Outcome.UNKNOWN
    feature = Finding(Check.BROKER, Outcome.UNKNOWN, "group.version unreadable")
    assert assess(config(), facts(classic_group("rdkafka"), serves=feature)).verdict == Verdict.UNKNOWN
    # a blocker known stays a blocker beside what is unknown
    assert assess(config(session_timeout_ms=30_000), facts(Group("g", "Dead"))).verdict == Verdict.BLOCKED


def test_classic_members_block_only_where_the_broker_will_not_upgrade_the_group_online() -> None:
    members = classic_group("rdkafka", "rdkafka")
    disabled = assess(config(), facts(members, {**BROKER_44, "group.consumer.migration.policy": "disabled"}))
    assert disabled.verdict == Verdict.BLOCKED and outcomes(disabled)[Check.MEMBERS] == Outcome.BLOCKER
    assert disabled.commands and "stop all 2 member(s)" in (disabled.next_step or "")
    too_many = assess(config(), facts(members, {**BROKER_44, "group.consumer.max.size": "1"}))
    assert outcomes(too_many)[Check.MEMBERS] == Outcome.BLOCKER


def test_a_broker_without_the_tables_assignors_or_before_4_0_blocks() -> None:
    custom = assess(config(), facts(classic_group("rdkafka"), {**BROKER_44, "group.consumer.assignors": "com.example.Sticky"}))
    assert custom.verdict == Verdict.BLOCKED and custom.commands == []
    assert offered_assignors("org.apache.kafka.coordinator.group.assignor.UniformAssignor, range") == ["uniform", "range"]
    old = Finding(Check.BROKER, Outcome.BLOCKER, "the broker runs Kafka 3.9")
    assert assess(config(), facts(classic_group("rdkafka"), serves=old)).commands == []


# ---------------------------------------------------------------------------------------------- on the broker


@pytest.fixture
def topic(services, admin) -> Iterator[str]:
    name = create_topic(admin, unique("ready.t", 8), 2)
    produce_records(services.bootstrap_servers, name, ({"value": b"m", "partition": i % 2} for i in range(20)))
    yield name
    admin.delete_topics([name])[name].result(timeout=30)


def readiness(cli: Cli, *args: str, expect: int = 0) -> dict[str, Any]:
    result = cli("readiness", *args, "-o", "json")
    assert result.exit_code == expect, result.output
    return json.loads(result.stdout)


def only(report: dict[str, Any]) -> dict[str, Any]:
    (service,) = report["services"]
    return service


def member(bootstrap: str, group: str, topic: str, **props: Any) -> Consumer:
    """A classic librdkafka member of ``group`` (``props`` add to or override its properties), subscribed to ``topic``."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                         "enable.auto.commit": False, "logger": quiet(), **props})
    consumer.subscribe([topic])
    return consumer


def described(admin: Any, group: str) -> Any:
    return admin.describe_consumer_groups([group])[group].result(timeout=30)


def in_group(admin: Any, group: str, consumers: list[Consumer], count: int, group_type: str) -> Any:
    """Poll ``consumers`` until the broker describes ``group`` of ``group_type`` with ``count`` members, all assigned."""

    def settled() -> Any:
        for c in consumers:
            c.poll(0.2)
        d = described(admin, group)
        assigned = sum(1 for m in d.members if m.assignment and m.assignment.topic_partitions)
        return d if d.type.name == group_type.upper() and len(d.members) == count and assigned else None

    return wait_for(f"{count} {group_type} member(s) in {group}", settled, timeout=90)


@pytest.mark.integration
def test_cooperative_sticky_and_a_session_timeout_past_the_brokers_bound_block_and_the_commands_mend_them(cli, kafka_cli) -> None:
    service = unique("rd-blocked")
    # the dev broker bounds the consumer protocol's session timeout at 1800000 ms; the table takes up to an hour
    assert cli("set", service, "--create", "partition_assignment_strategy=cooperative-sticky", "heartbeat_interval_ms=5000",
               "session_timeout_ms=2000000", "max_poll_interval_ms=2000000").exit_code == 0
    row = only(readiness(kafka_cli, service))
    assert row["verdict"] == "blocked" and len(row["blockers"]) == 2, row
    assert any("partition_assignment_strategy=cooperative-sticky is client-side" in b for b in row["blockers"])
    assert any("session_timeout_ms=2000000 is outside the broker's group.consumer.min/max.session.timeout.ms (1000..1800000)" in b
               for b in row["blockers"])
    assert row["changes"] == {"group_protocol": "consumer", "session_timeout_ms": 1_800_000}
    assert [c.split()[:3] for c in row["commands"]] == [["loomctl", "config", "set"], ["loomctl", "config", "push"]]
    # the commands as printed: `config set` (which checks the broker's bounds itself) and `config push` take them
    for command in row["commands"]:
        result = kafka_cli(*shlex.split(command)[2:])
        assert result.exit_code == 0, (command, result.output)
    report = readiness(kafka_cli, service)
    assert report["services"] == [] and report["already_consumer"] == [service]
    assert kafka_cli("drift", service, "--fail").exit_code == 0


@pytest.mark.integration
def test_a_kafkajs_member_blocks_and_gets_no_commands(cli, kafka_cli, services, admin, topic) -> None:
    service = unique("rd-node")
    group = f"{service}-group"
    assert cli("set", service, "--create", "--group", group, "heartbeat_interval_ms=5000").exit_code == 0
    node = member(services.bootstrap_servers, group, topic, **{"client.id": "kafkajs"})
    try:
        in_group(admin, group, [node], 1, "classic")
        row = only(readiness(kafka_cli, service))
    finally:
        node.close()
    assert row["verdict"] == "blocked" and row["group_type"] == "classic" and row["members"] == 1
    (blocker,) = row["blockers"]
    assert blocker.startswith("KafkaJS has no consumer protocol:") and "client id kafkajs (KafkaJS's default)" in blocker
    assert row["commands"] == [] and row["changes"] == {}
    strict = kafka_cli("readiness", service, "--fail-on-blockers")
    assert strict.exit_code == 1 and "not ready for the consumer protocol" in strict.stderr


@pytest.mark.integration
def test_a_ready_service_moves_with_its_commands_and_its_group_turns_consumer_as_a_member_rejoins(
    cli, kafka_cli, database_url, services, admin, topic, tmp_path
) -> None:
    # no consumer-protocol group needs to be on the broker: its group.version feature is read (ApiVersions v3+)
    import psycopg

    from loomctl.loader import ConsumerConfigLoader

    service = unique("rd-ready")
    group = f"{service}-group"
    assert cli("set", service, "--create", "--group", group, "heartbeat_interval_ms=5000").exit_code == 0

    def start() -> Consumer:
        with psycopg.connect(database_url) as conn:
            return ConsumerConfigLoader(conn, cache_dir=tmp_path).create_consumer(
                service, [topic], bootstrap_servers=services.bootstrap_servers)

    first = start()
    consumers = [first]
    try:
        in_group(admin, group, consumers, 1, "classic")
        row = only(readiness(kafka_cli, service, "--fail-on-blockers"))
        assert row["verdict"] == "ready" and row["blockers"] == [] and row["unknown"] == [], row
        assert row["group_type"] == "classic" and row["members"] == 1
        assert row["changes"] == {"group_protocol": "consumer", "group_remote_assignor": "range"}
        for command in row["commands"]:
            result = kafka_cli(*shlex.split(command)[2:])
            assert result.exit_code == 0, (command, result.output)
        # a member started now joins with the consumer protocol beside the classic one: the broker upgrades the group
        second = start()
        consumers.append(second)
        upgraded = in_group(admin, group, consumers, 2, "consumer")
        assert upgraded.partition_assignor == "range"
        first.close()
        consumers.remove(first)
        in_group(admin, group, consumers, 1, "consumer")
        drift = kafka_cli("drift", service, "--fail")
        assert drift.exit_code == 0, drift.output
    finally:
        for c in consumers:
            c.close()


@pytest.mark.integration
def test_a_service_on_a_cluster_that_does_not_answer_is_unknown_and_exit_5(database_url, cli, kafka_cli) -> None:
    root = Cli(database_url)
    name = f"c-{unique('gone', 6)}"
    assert root("cluster", "add", name, "--bootstrap-servers", f"127.0.0.1:{free_port()}").exit_code == 0
    try:
        service = unique("rd-away")
        assert cli("set", service, "--create", "--cluster", name).exit_code == 0
        result = kafka_cli("readiness", "--cluster", name, "--timeout", "1", "-o", "json")
        assert result.exit_code == 5, result.output
        row = only(json.loads(result.stdout))
        assert row["verdict"] == "unknown" and row["commands"] == [] and row["cluster_name"] == name
        assert f"cluster {name} could not be asked" in row["unknown"][0]
        assert f"error: could not ask cluster(s) {name}: Kafka did not answer" in result.stderr.strip().splitlines()[-1]
    finally:
        forget_cluster(database_url, name)


@pytest.mark.integration
@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["no-such-service-x1"], 3, "no config for service no-such-service-x1"),
        (["--cluster", "nowhere-x1"], 3, "nowhere-x1"),
        (["--cluster", "bad name"], 2, "cluster name bad name"),
    ],
)
def test_bad_input_is_one_line_and_asks_no_cluster(kafka_cli, args, code, message) -> None:
    result = kafka_cli("readiness", *args)
    assert result.exit_code == code, result.output
    assert message in result.stderr and "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1 and result.stdout == ""


def test_a_bad_timeout_is_a_usage_error(cli) -> None:
    result = cli("readiness", "--timeout", "0")
    assert result.exit_code == 2 and "out of range" in result.stderr
