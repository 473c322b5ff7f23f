"""A broker that lacks a group type loomctl reads (Kafka 4.0: no share groups as KIP-932 shipped them, no streams
groups): the types it lacks are named for one line per cluster, and groups it lists but cannot describe are listed
unmeasured with the reason, never a failed read of the whole cluster."""

from __future__ import annotations

from typing import Any

import pytest

from loomctl.errors import Unsupported
from loomctl.kafka import groups, protocol


class Offered:
    """A group-types client that only answers which versions of each request its broker offers."""

    def __init__(self, versions: dict[type, tuple[int, int]]) -> None:
        self.versions = versions

    def broker_versions(self, api: type) -> tuple[int, int] | None:
        return self.versions.get(api)


def test_the_group_types_a_broker_lacks_are_named_from_its_offered_versions() -> None:
    kafka_4_0 = Offered({protocol.ShareGroupDescribeRequest: (0, 0)})  # 4.0's early share groups: v0 only
    kafka_4_4 = Offered({protocol.ShareGroupDescribeRequest: (1, 1), protocol.StreamsGroupDescribeRequest: (0, 0)})
    assert groups.missing_group_types(kafka_4_0) == ["share groups (KIP-932)", "streams groups (KIP-1071)"]
    assert groups.missing_group_types(Offered({})) == ["share groups (KIP-932)", "streams groups (KIP-1071)"]
    assert groups.missing_group_types(kafka_4_4) == []


def test_listed_groups_of_a_type_the_broker_cannot_describe_are_unmeasured_and_the_rest_still_routed(monkeypatch) -> None:
    def lacking(c: Any, ids: Any, timeout: float = 0) -> Any:
        raise Unsupported("the Kafka cluster has no share groups: its broker offers ShareGroupDescribe v0-0, loomctl needs v1 or later",
                          feature="share groups")  # fmt: skip

    monkeypatch.setattr(protocol, "describe_share_groups", lacking)
    monkeypatch.setattr(protocol, "describe_streams_groups", lacking)
    snap = groups.ClusterSnapshot()
    types = {"s1": "share", "s2": "share", "t1": "streams", "c1": "classic"}
    states = {"s1": "Empty", "s2": "Stable", "t1": "Stable", "c1": "Stable"}
    left = groups._other_kinds(snap, sorted(types), types, {}, states, object(), 5.0)
    assert left == ["c1"]  # the classic group goes on to librdkafka as before
    assert {g: (snap.groups[g].group_type, snap.groups[g].group_state) for g in ("s1", "s2", "t1")} == {
        "s1": ("share", "Empty"),
        "s2": ("share", "Stable"),
        "t1": ("streams", "Stable"),
    }
    assert snap.unmeasured["s1"].startswith("a share group: the Kafka cluster has no share groups")
    assert snap.share_offsets == {} and snap.committed == {}  # no lag made up for them


@pytest.mark.parametrize("kind", ["share", "streams"])
def test_other_failures_of_the_group_types_client_still_fail_the_read(monkeypatch, kind: str) -> None:
    from loomctl.errors import BackendUnavailable

    def unreachable(c: Any, ids: Any, timeout: float = 0) -> Any:
        raise BackendUnavailable("Kafka did not answer")

    monkeypatch.setattr(protocol, f"describe_{kind}_groups", unreachable)
    with pytest.raises(BackendUnavailable):
        groups._other_kinds(groups.ClusterSnapshot(), ["g"], {"g": kind}, {}, {"g": "Stable"}, object(), 5.0)
