"""`loomctl lag show` gives exactly the figures Kafka's own kafka-consumer-groups prints for the same groups.

kafka-consumer-groups runs from the jars of the session's broker (loomctl.devstack.kafka_tools), so the
test pays one JVM start (a second or two).
"""

from __future__ import annotations

import time

import pytest

from support import Cli, admin_client, commit, create_topic, produce, quiet, unique

from loomctl.devstack import kafka_tools

LOG_END = {0: 12, 1: 7, 2: 20, 3: 5, 4: 9, 5: 15}
PARTLY = {0: 4, 1: 7, 2: 0, 3: 2}  # partitions 4 and 5: never committed
FULL = dict(LOG_END)


def _join(bootstrap: str, group: str, topic: str, partitions: int):
    """A live member of ``group`` that owns every partition of ``topic`` and never commits."""
    from confluent_kafka import Consumer

    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": group, "client.id": f"{group}-client",
        "enable.auto.commit": False, "auto.offset.reset": "latest", "session.timeout.ms": 10000,
    })
    consumer.subscribe([topic])
    deadline = time.monotonic() + 30
    while len(consumer.assignment()) < partitions:
        assert time.monotonic() < deadline, "the consumer got no assignment within 30 s"
        consumer.poll(0.2)
    return consumer


DESCRIBE_OUTPUT = """

GROUP           TOPIC           PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG             CONSUMER-ID                                   HOST            CLIENT-ID
g-a             orders          0          4               12              8               -                                             -               -
g-a             orders          1          -               7               -               rdkafka-0b5c7a1e-9e2f-4f55-8d0a-1f4c7b6b2c11  /127.0.0.1      my client

Consumer group 'g-b' has no active members.

GROUP           TOPIC           PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG             CONSUMER-ID     HOST            CLIENT-ID
g-b             orders          2          20              20              0               -               -               -
Consumer group 'g-c' does not exist.
"""


def test_parse_describe_reads_every_table_and_dashes_as_unknown() -> None:
    tools = kafka_tools
    rows = tools.parse_describe(DESCRIBE_OUTPUT)
    assert [(r.group, r.topic, r.partition, r.current_offset, r.log_end_offset, r.lag) for r in rows] == [
        ("g-a", "orders", 0, 4, 12, 8), ("g-a", "orders", 1, None, 7, None), ("g-b", "orders", 2, 20, 20, 0)]
    assert (rows[1].consumer_id, rows[1].host, rows[1].client_id) == (
        "rdkafka-0b5c7a1e-9e2f-4f55-8d0a-1f4c7b6b2c11", "/127.0.0.1", "my client")
    assert rows[0].consumer_id is None and rows[0].client_id is None


def test_compare_lag_finds_a_differing_figure_and_rows_one_side_lacks() -> None:
    tools = kafka_tools
    described = tools.parse_describe(DESCRIBE_OUTPUT)

    def row(group: str, partition: int, committed: int | None, end: int, lag: int | None) -> dict:
        return {"consumer_group_id": group, "topic_name": "orders", "partition": partition,
                "committed_offset": committed, "log_end_offset": end, "lag": lag}

    same = [row("g-a", 0, 4, 12, 8), row("g-a", 1, None, 7, None), row("g-b", 2, 20, 20, 0), row("g-b", 3, None, 5, None)]
    agreed = tools.compare_lag(same, described, {"g-a", "g-b"})
    assert agreed.agree and (agreed.compared, agreed.loomctl_only_unknown) == (3, 1)

    wrong = [row("g-a", 0, 4, 12, 7), row("g-b", 3, 1, 5, 4)]  # a lag off by one; g-a/1 and g-b/2 missing
    found = tools.compare_lag(wrong, described, {"g-a", "g-b"})
    assert not found.agree
    assert len(found.mismatches) == 1 and "lag loomctl 7 != kafka-consumer-groups 8" in found.mismatches[0]
    assert len(found.loomctl_only_known) == 1 and len(found.tool_only) == 2


@pytest.mark.integration
def test_lag_show_gives_the_lags_kafka_consumer_groups_prints(services, database_url) -> None:
    tools = kafka_tools
    try:
        tools.tool_argv(tools.CONSUMER_GROUP_COMMAND)
    except tools.ToolUnavailable as exc:
        pytest.skip(str(exc))
    bootstrap = services.bootstrap_servers
    topic = unique("agree")
    partly, fresh, full = unique("g-partly"), unique("g-fresh"), unique("g-full")
    create_topic(bootstrap, topic, len(LOG_END))
    produce(bootstrap, topic, LOG_END)
    commit(bootstrap, partly, topic, PARTLY)
    commit(bootstrap, full, topic, FULL)
    consumer = _join(bootstrap, fresh, topic, len(LOG_END))
    try:
        rows = Cli(database_url, bootstrap).json("lag", "show", "--all-groups", "--by", "partition")
        described = tools.describe_groups(bootstrap, [partly, fresh, full], timeout=120)
    finally:
        consumer.close()

    groups = {partly, fresh, full}
    comparison = tools.compare_lag(rows, described, groups)
    assert comparison.problems() == []
    assert comparison.compared == 6 + 4 + 6
    assert comparison.loomctl_only_unknown == 2  # the partly group's partitions 4 and 5

    tool_lag = {(d.group, d.partition): d.lag for d in described}
    loomctl_lag = {(r["consumer_group_id"], r["partition"]): r["lag"] for r in rows if r["consumer_group_id"] in groups}
    expected = {
        **{(partly, p): LOG_END[p] - PARTLY[p] for p in PARTLY},
        **{(full, p): 0 for p in LOG_END},
        **{(fresh, p): None for p in LOG_END},  # a group that never committed: unknown, never 0
    }
    assert tool_lag == expected
    assert loomctl_lag == {**expected, (partly, 4): None, (partly, 5): None}

    # the live member: the same owner in both
    owners = {d.partition: (d.consumer_id, d.client_id, (d.host or "").lstrip("/")) for d in described if d.group == fresh}
    ours = {r["partition"]: (r["member_id"], r["client_id"], r["host"]) for r in rows if r["consumer_group_id"] == fresh}
    assert ours == owners and all(member_id for member_id, _, _ in ours.values())


def _consumer_protocol_member(bootstrap: str, group: str, topic: str, partitions: int, commits: dict[int, int]):
    """A live member of ``group`` on the consumer protocol (KIP-848): only the settings that protocol takes, no
    session.timeout.ms, heartbeat.interval.ms or partition.assignment.strategy (librdkafka refuses them). It
    owns every partition of ``topic`` and commits ``commits`` (partition -> offset) once it does."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": group, "client.id": f"{group}-client", "group.protocol": "consumer",
        "enable.auto.commit": False, "auto.offset.reset": "latest", "logger": quiet(),
    })
    consumer.subscribe([topic])
    deadline = time.monotonic() + 30
    while len(consumer.assignment()) < partitions:
        assert time.monotonic() < deadline, "the consumer-protocol member got no assignment within 30 s"
        consumer.poll(0.2)
    consumer.commit(offsets=[TopicPartition(topic, p, o) for p, o in commits.items()], asynchronous=False)
    return consumer


@pytest.mark.integration
def test_a_consumer_protocol_groups_lag_equals_kafka_consumer_groups(services, database_url) -> None:
    """KIP-848: the group's lag, owners and members as kafka-consumer-groups gives them; its type is consumer, its
    state the broker's (never Dead, so a lagging partition with a member is not STOP)."""
    tools = kafka_tools
    try:
        tools.tool_argv(tools.CONSUMER_GROUP_COMMAND)
    except tools.ToolUnavailable as exc:
        pytest.skip(str(exc))
    bootstrap = services.bootstrap_servers
    topic, group = unique("agree848"), unique("g-848")
    create_topic(bootstrap, topic, len(LOG_END))
    produce(bootstrap, topic, LOG_END)
    consumer = _consumer_protocol_member(bootstrap, group, topic, len(LOG_END), PARTLY)
    try:
        cli = Cli(database_url, bootstrap)
        rows = cli.json("lag", "show", "--group", group, "--by", "partition")
        summary = cli.json("lag", "show", "--group", group, "--by", "service")
        listed = cli.json("lag", "show", "--all-groups", "--by", "service")
        described = tools.describe_groups(bootstrap, [group], timeout=120)
        consumer.poll(0.1)
    finally:
        consumer.close()

    comparison = tools.compare_lag(rows, described, {group})
    assert comparison.problems() == []
    assert comparison.compared == len(LOG_END)  # a group with a member: the tool lists every assigned partition
    assert {r["partition"]: r["lag"] for r in rows} == {
        **{p: LOG_END[p] - PARTLY[p] for p in PARTLY}, **{p: None for p in LOG_END if p not in PARTLY}}
    owners = {d.partition: (d.consumer_id, d.client_id, (d.host or "").lstrip("/")) for d in described}
    assert {r["partition"]: (r["member_id"], r["client_id"], r["host"]) for r in rows} == owners
    assert all(member_id for member_id, _, _ in owners.values())
    assert {r["group_type"] for r in rows} == {"consumer"}
    assert all(r["group_state"] not in ("Dead", "Empty") for r in rows)
    assert all(r["status"] != "STOP" for r in rows)
    (mine,) = summary
    assert (mine["group_type"], mine["members"], mine["partitions"]) == ("consumer", 1, len(LOG_END))
    assert mine["group_state"] not in ("Dead", "Empty")
    (seen,) = [s for s in listed if s["consumer_group_id"] == group]
    assert (seen["group_type"], seen["members"]) == ("consumer", 1)


@pytest.mark.integration
def test_lag_show_agrees_with_kafka_consumer_groups_at_a_few_hundred_groups(services, database_url) -> None:
    """300 groups on one topic, committed as `kafka-consumer-groups --reset-offsets` would: every figure of every
    group equals the tool's and the offsets committed (#15: the speed work keeps the figures)."""
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition

    tools = kafka_tools
    try:
        tools.tool_argv(tools.CONSUMER_GROUP_COMMAND)
    except tools.ToolUnavailable as exc:
        pytest.skip(str(exc))
    bootstrap = services.bootstrap_servers
    topic = unique("agree300")
    create_topic(bootstrap, topic, len(LOG_END))
    produce(bootstrap, topic, LOG_END)
    admin = admin_client(bootstrap)
    prefix = unique("g300", 6)
    groups = [f"{prefix}-{i:03d}" for i in range(300)]
    # group i commits (i + p) % (end + 1) on partition p, and nothing on partition i % 6 when i % 5 == 0
    expected = {
        (g, p): None if i % 5 == 0 and p == i % 6 else (i + p) % (end + 1)
        for i, g in enumerate(groups) for p, end in LOG_END.items()
    }
    try:
        for start in range(0, len(groups), 50):
            futures = []
            for g in groups[start:start + 50]:
                offsets = [TopicPartition(topic, p, o) for (group, p), o in expected.items() if group == g and o is not None]
                futures.extend(admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(g, offsets)]).values())
            for future in futures:
                future.result(timeout=60)
        rows = Cli(database_url, bootstrap).json("lag", "show", *[a for g in groups for a in ("--group", g)], "--by", "partition")
        described = tools.describe_groups(bootstrap, groups, timeout=300)
    finally:
        for future in admin.delete_consumer_groups(groups, request_timeout=60).values():
            try:
                future.result(timeout=90)
            except Exception:  # best effort: a leftover group harms nobody
                pass

    comparison = tools.compare_lag(rows, described, set(groups))
    assert comparison.problems() == []
    assert comparison.compared == sum(1 for o in expected.values() if o is not None)
    assert comparison.loomctl_only_unknown == sum(1 for o in expected.values() if o is None)
    assert {(r["consumer_group_id"], r["partition"]): r["lag"] for r in rows} == {
        k: None if o is None else LOG_END[k[1]] - o for k, o in expected.items()}
    assert {r["group_type"] for r in rows} == {"classic"}
