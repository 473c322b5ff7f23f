"""A snapshot's committed offsets in batches (KIP-709: one OffsetFetch per coordinator for many groups) through the
group-types client, against librdkafka's one request per group: the same figures for every group and partition,
and the same answer to a group the coordinator cannot serve."""

from __future__ import annotations

from typing import Any

import pytest
from support import admin_client, commit, create_topic, produce, quiet, unique, wait_for

from loomctl import kafka
from loomctl.errors import BackendUnavailable
from loomctl.kafka import groups as groups_module
from loomctl.kafka import protocol
from loomctl.kafka.clients import LazyAdmin

# ------------------------------------------------------------------------------------------------------------ unit


def _fetched(answers: dict[str, protocol.GroupOffsets[int | None]], monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []

    def committed_offsets(wire: Any, ids: Any, timeout: float, per_request: int | None = None) -> Any:
        calls.append({"ids": list(ids), "per_request": per_request, "timeout": timeout})
        return answers

    monkeypatch.setattr(protocol, "committed_offsets", committed_offsets)
    return calls


def test_a_group_error_leaves_the_group_without_commits_and_a_partition_error_leaves_the_partition_out(monkeypatch) -> None:
    answers = {
        "ok": protocol.GroupOffsets("ok", {("t", 0): 5, ("t", 1): None}),
        "denied": protocol.GroupOffsets("denied", {}, "GROUP_AUTHORIZATION_FAILED"),
        "partly": protocol.GroupOffsets("partly", {("t", 0): 3, ("t", 1): None}, None, {("t", 1): "UNSTABLE_OFFSET_COMMIT"}),
    }
    calls = _fetched(answers, monkeypatch)
    found = groups_module.batched_offsets(object(), ["ok", "denied", "partly"], timeout=5)
    assert found == {"ok": {("t", 0): 5, ("t", 1): None}, "denied": {}, "partly": {("t", 0): 3}}
    assert calls[0]["per_request"] == groups_module.BATCH_GROUPS and calls[0]["timeout"] >= 5


def test_a_coordinator_still_loading_after_the_retries_fails_the_snapshot_rather_than_show_no_commits(monkeypatch) -> None:
    _fetched({"g": protocol.GroupOffsets("g", {}, "COORDINATOR_LOAD_IN_PROGRESS: loading")}, monkeypatch)
    with pytest.raises(BackendUnavailable, match="committed offsets of group g: COORDINATOR_LOAD_IN_PROGRESS"):
        groups_module.batched_offsets(object(), ["g"], timeout=5)


# ----------------------------------------------------------------------------------------------------- integration


@pytest.mark.integration
def test_the_batched_snapshot_equals_librdkafkas_per_group_one_on_every_group_and_partition(services, monkeypatch) -> None:
    bootstrap = services.bootstrap_servers
    topics = [create_topic(bootstrap, unique("batched"), 4) for _ in range(3)]
    for topic in topics:
        produce(bootstrap, topic, dict.fromkeys(range(4), 9))
    ids = [unique(f"g-batched-{i}") for i in range(40)]
    for i, group in enumerate(ids):
        if i % 5 == 4:
            continue  # never committed: no offsets, as the broker has no such group
        # each group commits on some partitions of one or two topics, at offsets that differ by group
        for topic in topics[i % 3 : i % 3 + 1 + i % 2]:
            commit(bootstrap, group, topic, {p: (i + p) % 10 for p in range(4) if (i + p) % 4})
    admin = admin_client(bootstrap)
    monkeypatch.setattr(groups_module, "BATCH_GROUPS", 7)  # several OffsetFetch requests per coordinator
    with protocol.client({"bootstrap.servers": bootstrap}) as wire:
        batched = kafka.snapshot(admin, ids, wire=wire, chunk_size=10)
    per_group = kafka.snapshot(admin, ids, chunk_size=10)
    assert batched.committed == per_group.committed
    assert sum(len(c) for c in batched.committed.values()) > 100
    assert batched.missing_groups == per_group.missing_groups == {g for i, g in enumerate(ids) if i % 5 == 4}
    assert batched.offsets == per_group.offsets and batched.partition_counts == per_group.partition_counts
    assert batched.brokers == per_group.brokers and batched.brokers
    # with the group-types client every part comes through it: librdkafka's client is never built
    lazy = LazyAdmin(lambda: admin_client(bootstrap))
    with protocol.client({"bootstrap.servers": bootstrap}) as wire:
        alone = kafka.snapshot(lazy, ids, wire=wire, chunk_size=10)
    assert not lazy.built and alone.committed == per_group.committed and alone.offsets == per_group.offsets
    assert alone.partition_counts == per_group.partition_counts and alone.brokers == per_group.brokers


def test_topic_metadata_through_the_group_types_client_equals_librdkafkas(services) -> None:
    """Partition counts, leaders and brokers as librdkafka gives them; a topic that does not exist, a name no topic
    can have and an empty list have none, and asking creates nothing."""
    bootstrap = services.bootstrap_servers
    topics = [create_topic(bootstrap, unique("meta"), n) for n in (1, 3, 7)]
    missing = unique("meta-missing")
    asked = [*topics, missing, "bad name!", ""]
    admin = admin_client(bootstrap)
    theirs: dict[Any, int] = {}
    counts, brokers = kafka.topic_metadata(admin, asked, 10, leaders=theirs)
    with protocol.client({"bootstrap.servers": bootstrap}) as wire:
        assert protocol.topic_metadata(wire, asked) == (counts, brokers, theirs)
        assert counts == dict(zip(topics, (1, 3, 7), strict=True)) and len(theirs) == 11 and brokers
        assert protocol.topic_metadata(wire, []) == ({}, [], {})
        assert protocol.topic_metadata(wire, [missing]) == ({}, brokers, {})
    assert missing not in kafka.topic_metadata(admin, [missing], 10)[0]  # still none: asking created nothing


def _member(bootstrap: str, group: str, topic: str, protocol_name: str, client_id: str) -> Any:
    from confluent_kafka import Consumer

    settings = {"bootstrap.servers": bootstrap, "group.id": group, "client.id": client_id, "group.protocol": protocol_name,
                "enable.auto.commit": False, "auto.offset.reset": "earliest", "logger": quiet()}
    if protocol_name == "classic":
        settings["partition.assignment.strategy"] = "range"
    consumer = Consumer(settings)
    consumer.subscribe([topic])
    return consumer


def _seen(group: Any) -> tuple[Any, ...]:
    return (group.group_state, group.group_type, group.assignor,
            sorted((m.member_id, m.client_id, m.host, m.partitions) for m in group.members))


@pytest.mark.integration
def test_batched_descriptions_equal_librdkafkas_for_live_groups_of_both_protocols(services) -> None:
    """DescribeGroups and ConsumerGroupDescribe in batches, against librdkafka's one request per group: the same
    state, type, assignor, members and partitions for a classic group of two members, a consumer-protocol group, an
    Empty group and a group the broker does not know."""
    bootstrap = services.bootstrap_servers
    topic = create_topic(bootstrap, unique("described"), 4)
    produce(bootstrap, topic, dict.fromkeys(range(4), 3))
    classic, modern, empty, unknown = (unique(f"g-{kind}") for kind in ("classic", "modern", "empty", "unknown"))
    commit(bootstrap, empty, topic, {0: 1})
    members = [_member(bootstrap, classic, topic, "classic", f"classic-{i}") for i in range(2)]
    members.append(_member(bootstrap, modern, topic, "consumer", "modern-0"))
    admin = admin_client(bootstrap)
    ids = [classic, modern, empty, unknown]
    try:
        def settled() -> bool:
            for consumer in members:
                consumer.poll(0.1)
            described = kafka.describe_groups(admin, [classic, modern])
            return all(
                described[g].group_state == "Stable" and sum(len(m.partitions) for m in described[g].members) == 4
                for g in (classic, modern)
            ) and len(described[classic].members) == 2

        wait_for("both groups stable with every partition assigned", settled, timeout=60)
        with protocol.client({"bootstrap.servers": bootstrap}) as wire:
            listed = protocol.list_every_group(wire)
            types = {g: listed[g].group_type for g in ids if g in listed}
            batched = groups_module.batched_descriptions(wire, ids, types)
            untyped = groups_module.batched_descriptions(wire, ids, {})  # no listing: classic first, then consumer
            snap = kafka.snapshot(admin, ids, wire=wire, known_types=types)
        per_group = kafka.describe_groups(admin, ids)
    finally:
        for consumer in members:
            consumer.close()
    assert types[classic] == "classic" and types[modern] == "consumer"
    assert {g: _seen(batched[g]) for g in ids} == {g: _seen(per_group[g]) for g in ids}
    assert {g: _seen(untyped[g]) for g in ids} == {g: _seen(per_group[g]) for g in ids}
    assert {g: _seen(snap.groups[g]) for g in ids} == {g: _seen(per_group[g]) for g in ids}
    assert _seen(batched[classic])[3][0][3] and batched[classic].assignor == "range"
    assert batched[unknown].group_state == "Dead" and batched[empty].group_state == "Empty"


@pytest.mark.integration
def test_log_offsets_a_leader_cannot_give_are_asked_through_librdkafka(services) -> None:
    """The leaders' ListOffsets read from the bytes equal librdkafka's; a partition whose leader named is wrong (it
    moved, a node no longer there) or has none is asked again through librdkafka, never left out."""
    bootstrap = services.bootstrap_servers
    topic = create_topic(bootstrap, unique("leaders"), 6)
    produce(bootstrap, topic, {p: p + 2 for p in range(6)})
    admin = admin_client(bootstrap)
    leaders: dict[Any, int] = {}
    kafka.topic_metadata(admin, [topic], 10, leaders=leaders)
    partitions = sorted(leaders)
    expected = kafka.log_offsets(admin, partitions)
    assert len(partitions) == 6 and all(node >= 0 for node in leaders.values())
    assert {tp: (o.start, o.end) for tp, o in expected.items()} == {(topic, p): (0, p + 2) for p in range(6)}
    with protocol.client({"bootstrap.servers": bootstrap}) as wire:
        found, rest = protocol.log_offsets(wire, leaders)
        assert found == {tp: (o.start, o.end) for tp, o in expected.items()} and rest == []
        wrong = {tp: (4242 if tp[1] % 3 == 0 else -1 if tp[1] % 3 == 1 else node) for tp, node in leaders.items()}
        assert groups_module._log_offsets(admin, wire, partitions, wrong, 10) == expected
        assert groups_module._log_offsets(admin, wire, partitions, {}, 10) == expected
