"""The exporter's packed rows and evidence (loomctl.lag.packed) read back as the rows and the evidence put in."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from loomctl.lag.exporter import ExportSnapshot, WindowEvidence
from loomctl.lag.live import PartitionLag
from loomctl.lag.packed import NONE, EvidenceTable, PartitionTable

NOW = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.timezone.utc)


def rows(seed: int) -> list[PartitionLag]:
    rnd = random.Random(seed)
    maybe = lambda: rnd.choice([None, 0, 1, 2**40, 2**62])  # noqa: E731
    out = []
    for g in range(rnd.randint(0, 6)):
        owner = rnd.choice([(None, None, None), (f"m{g}", f"c{g}", "/10.0.0.1")])
        service, group_type = rnd.choice([None, f"svc-{g}"]), rnd.choice([None, "classic"])  # a group's own, on each row
        for t in ("orders", "päyments"):
            for p in range(rnd.randint(0, 4)):
                out.append(PartitionLag(service, f"g-{g}", bool(g % 2), "Stable", t, p, maybe(), maybe(), maybe(), maybe(),
                                        maybe(), rnd.randint(0, 5), *owner, rnd.choice(["OK", "STALL", "-"]), group_type))  # fmt: skip
    return out


@pytest.mark.parametrize("seed", range(20))
def test_a_table_reads_back_its_rows_in_group_order(seed: int) -> None:
    given = rows(seed)
    random.Random(seed).shuffle(given)
    table = PartitionTable.of(given)
    order = list(dict.fromkeys(r.consumer_group_id for r in given))
    assert list(table) == sorted(given, key=lambda r: order.index(r.consumer_group_id))  # each group's together, stable
    assert len(table) == len(given) and table[:] == list(table)
    if given:
        assert table[-1] == list(table)[-1] and table[0] == list(table)[0]
    with pytest.raises(IndexError):
        table[len(given)]
    for g in order:
        assert table.of_group(g) == [r for r in given if r.consumer_group_id == g]
    assert table.of_group("no-such-group") == [] and PartitionTable.of(table) is table


def test_none_and_the_extremes_of_a_column_survive() -> None:
    """None is a sentinel below every offset; 0 and the largest offsets Kafka has (2**63 - 1) are kept as they are."""
    row = PartitionLag(None, "g", False, "Empty", "t", 0, 2**63 - 1, 0, None, None, 0, 0, None, None, None, "OK")
    assert list(PartitionTable.of([row])) == [row] and NONE < 0


def evidence(seed: int) -> dict:
    rnd = random.Random(seed)
    out = {}
    for g in range(rnd.randint(0, 5)):
        for p in range(rnd.randint(1, 4)):
            out[(f"g-{g}", rnd.choice(["a", "b"]), p)] = WindowEvidence(
                rnd.randint(1, 30), rnd.choice([None, 5]), rnd.choice([None, 7]), rnd.choice([None, NOW - dt.timedelta(minutes=5)]),
                rnd.choice([None, 9]), 3, NOW, rnd.choice([None, 11]), 12, rnd.choice([None, 400]), rnd.choice([None, 60]))  # fmt: skip
    return out


@pytest.mark.parametrize("seed", range(20))
def test_packed_evidence_is_the_mapping_it_was_made_from(seed: int) -> None:
    given = evidence(seed)
    table = EvidenceTable.of(given)
    assert dict(table.items()) == given and len(table) == len(given)
    for key, e in given.items():
        assert key in table and table[key] == e and table.get(key) == e
    assert ("g-0", "nope", 0) not in table and table.get(("nobody", "a", 0)) is None
    for g in {k[0] for k in given}:
        assert [table.key(i) for i in table.indexes_of(g)] == sorted(k for k in given if k[0] == g)


def test_evidence_must_come_group_by_group() -> None:
    """The collector reads the window ordered by group; rows of a group apart would not be found: refused."""
    table = EvidenceTable()
    e = WindowEvidence(1, 1, 1, NOW, 1, 1, NOW)
    table.add_evidence(("g1", "t", 0), e, "OK")
    table.add_evidence(("g2", "t", 0), e, "OK")
    with pytest.raises(ValueError, match="not together"):
        table.add_evidence(("g1", "t", 1), e, "OK")


def test_a_snapshot_made_of_lists_keeps_them_packed() -> None:
    given = rows(3)
    snap = ExportSnapshot("c", NOW, dt.timedelta(minutes=5), dt.timedelta(seconds=30), {}, given, evidence(3))
    assert isinstance(snap.partitions, PartitionTable) and isinstance(snap.evidence, EvidenceTable)
    assert sorted(snap.partitions, key=repr) == sorted(given, key=repr)
