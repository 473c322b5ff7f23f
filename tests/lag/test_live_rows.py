"""The per-partition rows of `lag show` and of the collector: built in one pass for speed, held here to the
reference functions they inline (partition_lag, lost_to_retention, carry_time_lag_ms, live_status), and the
group type and states of consumer-protocol groups."""

from __future__ import annotations

import datetime as dt
import pickle
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loomctl import lag
from loomctl.kafka import groups as kafka_groups
from loomctl.kafka import ClusterSnapshot, Group, LogOffsets, Member
from loomctl.lag.samples import samples_from
from loomctl.lag.time_lag import PreviousSample

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.timezone.utc)
TOPICS = ("orders", "payments")


def reference_rows(snap: ClusterSnapshot, services: dict[str, str], group_ids: list[str], previous: dict, stored: dict) -> list[dict]:
    """What live_lag must give, written with the reference functions one partition at a time."""
    rows = []
    for group_id in group_ids:
        group = snap.groups.get(group_id) or Group(group_id, "Dead")
        committed = snap.committed.get(group_id, {})
        owners = {tp: m for m in group.members for tp in m.partitions}
        topics = {t for t, _ in committed} | {t for t, _ in owners}
        keys = sorted(set(committed) | set(owners) | {(t, p) for t in topics for p in range(snap.partition_counts.get(t, 0))})
        for topic, partition in keys:
            offsets = snap.offsets.get((topic, partition))
            start, end = (offsets.start, offsets.end) if offsets else (None, None)
            offset = committed.get((topic, partition))
            lag_ = lag.partition_lag(offset, end) if end is not None else None
            key = (group_id, topic, partition)
            owner = owners.get((topic, partition))
            rows.append({
                "service_name": services.get(group_id), "consumer_group_id": group_id, "managed": group_id in services,
                "group_state": group.group_state, "topic_name": topic, "partition": partition, "committed_offset": offset,
                "log_start_offset": start, "log_end_offset": end, "lag": lag_,
                "time_lag_ms": lag.carry_time_lag_ms(previous.get(key), NOW, offset, end) if end is not None else None,
                "lost_records": lag.lost_to_retention(offset, start),
                "member_id": owner.member_id if owner else None, "client_id": owner.client_id if owner else None,
                "host": owner.host if owner else None,
                "status": stored.get(key) or lag.live_status(offset, lag_, start, end, group.group_state),
                "group_type": group.group_type, "cluster_name": None, "start_offset": None,
            })
    return rows


offsets_ = st.one_of(st.none(), st.integers(0, 30))


@st.composite
def snapshots(draw):
    snap = ClusterSnapshot()
    snap.partition_counts = {t: draw(st.integers(0, 4)) for t in TOPICS if draw(st.booleans())}
    for topic, count in snap.partition_counts.items():
        for p in range(count):
            if draw(st.integers(0, 9)):  # now and then a partition without offsets (leaderless)
                start = draw(st.integers(0, 10))
                snap.offsets[(topic, p)] = LogOffsets(start, start + draw(st.integers(0, 20)))
    groups = [f"g{i}" for i in range(draw(st.integers(1, 4)))]
    previous, stored = {}, {}
    for g in groups:
        committed = {}
        for topic in TOPICS:
            for p in range(draw(st.integers(0, 6))):  # past the partition count too: a topic shrunk or deleted
                if draw(st.booleans()):
                    committed[(topic, p)] = draw(offsets_)
                if draw(st.integers(0, 3)) == 0:
                    previous[(g, topic, p)] = PreviousSample(NOW - dt.timedelta(seconds=draw(st.integers(1, 600))),
                                                             draw(offsets_), draw(st.integers(0, 30)), draw(st.one_of(st.none(), st.integers(0, 10**6))))
                if draw(st.integers(0, 4)) == 0:
                    stored[(g, topic, p)] = draw(st.sampled_from(["OK", "WARN", "STALL", "REWIND"]))
        snap.committed[g] = committed
        kind = draw(st.sampled_from(["absent", "Empty", "Stable", "Unknown", "Reconciling", "Dead"]))
        if kind != "absent":
            assigned = tuple(sorted({(draw(st.sampled_from(TOPICS)), draw(st.integers(0, 5))) for _ in range(draw(st.integers(0, 3)))}))
            members = (Member(f"{g}-m", f"{g}-c", "10.0.0.1", assigned),) if kind not in ("Empty", "Dead") else ()
            snap.groups[g] = Group(g, kind, members, draw(st.sampled_from([None, "classic", "consumer"])))
    return snap, groups, previous, stored


@settings(max_examples=300, deadline=None)
@given(snapshots(), st.booleans())
def test_live_rows_equal_the_reference_functions(case, with_history) -> None:
    snap, groups, previous, stored = case
    if not with_history:
        previous, stored = {}, {}
    services = {groups[0]: "svc-0"}
    rows = lag.live_lag(snap, services, groups, now=NOW, previous=previous, stored_status=stored)
    expected = reference_rows(snap, services, groups, previous, stored)
    assert [vars(r) for r in rows] == expected
    assert all(list(vars(r)) == list(e) for r, e in zip(rows, expected))  # the JSON keys, in their order
    assert rows == [lag.PartitionLag(**e) for e in expected]  # the same instances as the dataclass builds
    assert pickle.loads(pickle.dumps(rows)) == rows


@settings(max_examples=100, deadline=None)
@given(snapshots())
def test_collector_samples_are_the_live_rows_with_a_log_end(case) -> None:
    snap, groups, previous, _ = case
    services = {g: f"svc-{g}" for g in groups}
    samples = samples_from(snap, services, NOW, previous)
    rows = [r for r in lag.live_lag(snap, services, sorted(services), now=NOW, previous=previous) if r.log_end_offset is not None]
    members = {g: len(snap.groups[g].members) if g in snap.groups else 0 for g in groups}
    assert [(s.consumer_group_id, s.topic_name, s.partition, s.service_name, s.committed_offset, s.log_end_offset,
             s.log_start_offset, s.lag, s.time_lag_ms, s.group_state, s.member_count, s.group_type) for s in samples] == [
        (r.consumer_group_id, r.topic_name, r.partition, r.service_name, r.committed_offset, r.log_end_offset,
         r.log_start_offset, r.lag, r.time_lag_ms, r.group_state, members[r.consumer_group_id], r.group_type) for r in rows]
    assert all(len(s) == len(lag.HISTORY_COLUMNS) and s.timestamp == NOW for s in samples)


def test_summaries_carry_the_group_type() -> None:
    snap = ClusterSnapshot()
    snap.partition_counts = {"orders": 1}
    snap.offsets = {("orders", 0): LogOffsets(0, 10)}
    snap.committed = {"g-new": {("orders", 0): 4}, "g-old": {("orders", 0): 10}}
    snap.groups = {"g-new": Group("g-new", "Reconciling", (Member("m", "c", "h", (("orders", 0),)),), "consumer"),
                   "g-old": Group("g-old", "Empty", (), "classic")}
    rows = lag.live_lag(snap, {}, ["g-new", "g-old"], now=NOW)
    by_group = {s.consumer_group_id: s for s in lag.summarize(rows, "service", snap=snap, group_ids=["g-new", "g-old", "g-gone"])}
    assert {g: s.group_type for g, s in by_group.items()} == {"g-new": "consumer", "g-old": "classic", "g-gone": None}
    assert by_group["g-new"].status == "-"  # lag with a member mid-rebalance: slow or stalled needs history, not STOP
    assert [s.group_type for s in lag.summarize(rows, "topic")] == [None]


def _member(assigned, target):
    def tps(pairs):
        return SimpleNamespace(topic_partitions=[SimpleNamespace(topic=t, partition=p) for t, p in pairs])

    return SimpleNamespace(assignment=tps(assigned), target_assignment=None if target is None else tps(target))


def test_a_member_off_its_target_assignment_means_reconciling() -> None:
    assert kafka_groups._reconciling([_member([("t", 0), ("t", 1)], [("t", 0)]), _member([], [("t", 1)])])
    assert not kafka_groups._reconciling([_member([("t", 0)], [("t", 0)])])
    assert not kafka_groups._reconciling([_member([("t", 0)], None)])  # a classic member has no target


class _Done:
    def __init__(self, value):
        self.value = value

    def result(self, timeout=None):
        return self.value


def _description(state: str, type_: str, members) -> SimpleNamespace:
    return SimpleNamespace(state=SimpleNamespace(name=state), type=SimpleNamespace(name=type_), partition_assignor="uniform",
                           members=[SimpleNamespace(member_id=f"m{i}", client_id=f"c{i}", host="/10.0.0.1", **vars(m))
                                    for i, m in enumerate(members)])


@pytest.mark.parametrize(("state", "type_", "members", "listed", "expected"), [
    ("STABLE", "CONSUMER", [_member([("t", 0)], [("t", 0)])], None, ("Stable", "consumer")),
    # librdkafka has no code for Assigning/Reconciling: UNKNOWN, with a member off its target, is Reconciling
    ("UNKNOWN", "CONSUMER", [_member([("t", 0), ("t", 1)], [("t", 0)]), _member([], [("t", 1)])], None, ("Reconciling", "consumer")),
    ("UNKNOWN", "CONSUMER", [_member([("t", 0)], [("t", 0)])], None, ("Unknown", "consumer")),
    ("DEAD", "CLASSIC", [], "classic", ("Dead", None)),  # the broker describes a group it does not know as Dead classic
    ("STABLE", "UNKNOWN", [_member([("t", 0)], None)], "classic", ("Stable", "classic")),  # an older describe: the listing's type
    ("EMPTY", "UNKNOWN", [], None, ("Empty", None)),
])
def test_described_states_and_types(state, type_, members, listed, expected) -> None:
    groups = kafka_groups._described({"g": _Done(_description(state, type_, members))}, 1.0, {"g": listed})
    assert (groups["g"].group_state, groups["g"].group_type) == expected
    assert [m.host for m in groups["g"].members] == ["10.0.0.1"] * len(members)


def test_a_group_owner_cache_is_neither_compared_nor_pickled() -> None:
    group = Group("g", "Stable", (Member("m", "c", "h", (("t", 0),)),), "consumer")
    assert group.owner_of() == {("t", 0): group.members[0]} and group.owner_of() is group.owner_of()
    copy = pickle.loads(pickle.dumps(group))
    assert copy == group and "_owners" not in vars(copy)


@pytest.mark.integration
def test_the_collector_writes_the_group_type(database_factory, services) -> None:
    import psycopg

    from loomctl.lag.collector import Collector
    from loomctl.settings import Settings
    from support import Cli, commit, create_topic, own_database, produce, unique

    with own_database(database_factory, "loomgtype") as url:
        bootstrap = services.bootstrap_servers
        topic, group = unique("gtype"), unique("g-gtype")
        create_topic(bootstrap, topic, 2)
        produce(bootstrap, topic, {0: 5, 1: 5})
        commit(bootstrap, group, topic, {0: 2, 1: 5})
        result = Cli(url, bootstrap)("config", "set", unique("gtype-svc"), "--create", "--group", group)
        assert result.exit_code == 0, result.output
        collector = Collector(Settings(database_url=url, bootstrap_servers=bootstrap), interval=dt.timedelta(seconds=1))
        try:
            assert collector.cycle().written == 2
        finally:
            collector.close()
        with psycopg.connect(url) as conn:
            stored = conn.execute("SELECT partition, lag, group_type, group_state FROM consumer_lag_history"
                                  " WHERE consumer_group_id = %s ORDER BY partition", (group,)).fetchall()
        assert stored == [(0, 3, "classic", "Empty"), (1, 0, "classic", "Empty")]


@settings(max_examples=200, deadline=None)
@given(snapshots())
def test_the_collectors_packed_rows_are_the_same_rows(case) -> None:
    """The collector's exporter has live_lag fill a packed table (loomctl.lag.packed): read back, the same rows, and
    the stored statuses read from packed evidence as from a dict."""
    from loomctl.lag.exporter import WindowEvidence
    from loomctl.lag.packed import EvidenceTable, PartitionTable

    snap, groups, previous, stored = case
    services = {groups[0]: "svc-0"}
    rows = lag.live_lag(snap, services, groups, now=NOW, previous=previous, stored_status=stored)
    evidence = EvidenceTable()
    for key in sorted(stored):
        evidence.add_evidence(key, WindowEvidence(2, 1, 1, NOW, 2, 2, NOW), stored[key])
    table = PartitionTable()
    lag.live_lag(snap, services, groups, now=NOW, previous=previous, stored_status=evidence.statuses, into=table)
    table.freeze()
    assert list(table) == rows
    assert [g for g in groups if any(r.consumer_group_id == g for r in rows)] == table.group_ids()
    for g in groups:
        assert table.of_group(g) == [r for r in rows if r.consumer_group_id == g]
    evidence.freeze()  # looked up within its group now, not in a dict
    assert dict(evidence.statuses.items()) == stored
