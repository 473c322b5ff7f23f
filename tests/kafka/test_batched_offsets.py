"""A snapshot's committed offsets in batches (KIP-709: one OffsetFetch per coordinator for many groups) through the
group-types client, against librdkafka's one request per group: the same figures for every group and partition,
and the same answer to a group the coordinator cannot serve."""

from __future__ import annotations

from typing import Any

import pytest
from support import admin_client, commit, create_topic, produce, unique

from loomctl import kafka
from loomctl.errors import BackendUnavailable
from loomctl.kafka import groups as groups_module
from loomctl.kafka import protocol

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
