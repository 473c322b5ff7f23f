"""A cycle's partition rows and their window evidence packed in columns: what the exporter keeps between cycles.

The collector's exporter holds the last cycle's rows of every cluster (for the Burrow API and the next render) while
the next cycle builds its own, so at 10,000 groups two sets of some 450,000 rows are alive at once. As objects (a
:class:`~loomctl.lag.live.PartitionLag` with its ints, a :class:`~loomctl.lag.exporter.WindowEvidence` under a tuple
key) a row and its evidence took about 750 bytes; packed here, numbers in :mod:`array` columns and the names that
repeat (groups, topics, owners, statuses, the cycles' times) as indexes into short lists, about 130. Filling the
columns is also cheaper than building the objects (a few appends per row, no object per row).

Both are read-only once built and behave as the plain forms the rest of loomctl knows: a :class:`PartitionTable` is a
sequence of ``PartitionLag`` rows and an :class:`EvidenceTable` a mapping of (group, topic, partition) to
``WindowEvidence``, each made when asked for. Readers that go over every row (the exposition's render, the Burrow
API's lists) read the columns instead.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, overload

if TYPE_CHECKING:
    from loomctl.lag.exporter import WindowEvidence
    from loomctl.lag.live import PartitionLag
    from loomctl.lag.time_lag import Key

NONE = -(1 << 63)
"""None in a number column (no offset, lag or figure is this low)."""


def _num(value: int | None) -> int:
    return NONE if value is None else value


def _opt(value: int) -> int | None:
    return None if value == NONE else value


class _Names:
    """Values that repeat from row to row, each kept once; a row holds its index."""

    __slots__ = ("values", "_index")

    def __init__(self) -> None:
        self.values: list[Any] = []
        self._index: dict[Any, int] = {}

    def index(self, value: Any) -> int:
        found = self._index.get(value)
        if found is None:
            found = self._index[value] = len(self.values)
            self.values.append(value)
        return found

    def freeze(self) -> None:
        self._index = {}


class PartitionTable(Sequence["PartitionLag"]):
    """One cycle's rows of one cluster, group after group (each group's rows together, in the order added).

    Filled with :meth:`begin` then :meth:`add` for each of its partitions, and closed with :meth:`freeze`. The group's
    own fields (service, state, type) are kept once per group, the owner (member id, client id, host) once per member.
    """

    __slots__ = (
        "groups",
        "topics",
        "owners",
        "statuses",
        "group",
        "topic",
        "partition",
        "owner",
        "status",
        "committed",
        "log_start",
        "log_end",
        "lag",
        "time_lag",
        "lost",
        "start",
        "_ranges",
        "_topics",
        "_owners",
        "_statuses",
        "_current",
    )

    def __init__(self) -> None:
        self.groups: list[tuple[str | None, str, bool, str, str | None]] = []
        """Per group: service name, group id, managed, state, type."""
        self._topics, self._owners, self._statuses = _Names(), _Names(), _Names()
        self._owners.index((None, None, None))
        self.topics: list[str] = self._topics.values
        self.owners: list[tuple[str | None, str | None, str | None]] = self._owners.values
        """(member id, client id, host); index 0: no owner."""
        self.statuses: list[str] = self._statuses.values
        self.group, self.topic, self.partition, self.owner = array("i"), array("i"), array("i"), array("i")
        self.status = array("B")
        self.committed, self.log_start, self.log_end = array("q"), array("q"), array("q")
        self.lag, self.time_lag, self.lost = array("q"), array("q"), array("q")
        self.start = array("q")
        """A share group's start offset (KIP-932); NONE for other groups."""
        self._ranges: dict[str, tuple[int, int]] = {}
        self._current = -1

    @classmethod
    def of(cls, rows: Iterable["PartitionLag"]) -> "PartitionTable":
        """The rows packed, each group's together (groups in the order first seen, rows in their order within it); a
        group's own fields (service, managed, state, type) are those of its first row, as every row of a group has them."""
        if isinstance(rows, PartitionTable):
            return rows
        by_group: dict[str, list[PartitionLag]] = {}
        for row in rows:
            by_group.setdefault(row.consumer_group_id, []).append(row)
        table = cls()
        for group_id, items in by_group.items():
            first = items[0]
            table.begin(first.service_name, group_id, first.managed, first.group_state, first.group_type)
            for r in items:
                table.add(r.topic_name, r.partition, r.committed_offset, r.log_start_offset, r.log_end_offset, r.lag,
                          r.time_lag_ms, r.lost_records, (r.member_id, r.client_id, r.host), r.status, r.start_offset)  # fmt: skip
        table.freeze()
        return table

    def begin(self, service: str | None, group_id: str, managed: bool, state: str, group_type: str | None) -> None:
        """The rows added next are this group's."""
        self._close_group()
        self._current = len(self.groups)
        self.groups.append((service, group_id, managed, state, group_type))
        self._ranges[group_id] = (len(self.group), len(self.group))

    def add(
        self,
        topic: str,
        partition: int,
        committed: int | None,
        log_start: int | None,
        log_end: int | None,
        lag: int | None,
        time_lag_ms: int | None,
        lost: int,
        owner: tuple[str | None, str | None, str | None] | None,
        status: str,
        start: int | None = None,
    ) -> None:
        self.group.append(self._current)
        self.topic.append(self._topics.index(topic))
        self.partition.append(partition)
        self.owner.append(0 if owner is None else self._owners.index(owner))
        self.status.append(self._statuses.index(status))
        self.committed.append(NONE if committed is None else committed)
        self.log_start.append(NONE if log_start is None else log_start)
        self.log_end.append(NONE if log_end is None else log_end)
        self.lag.append(NONE if lag is None else lag)
        self.time_lag.append(NONE if time_lag_ms is None else time_lag_ms)
        self.lost.append(lost)
        self.start.append(NONE if start is None else start)

    def _close_group(self) -> None:
        if self._current >= 0:
            group_id = self.groups[self._current][1]
            start, _ = self._ranges[group_id]
            self._ranges[group_id] = (start, len(self.group))

    def freeze(self) -> "PartitionTable":
        """No more rows: the lookups made while filling are dropped."""
        self._close_group()
        self._current = -1
        for names in (self._topics, self._owners, self._statuses):
            names.freeze()
        return self

    def __len__(self) -> int:
        return len(self.group)

    @overload
    def __getitem__(self, i: int) -> "PartitionLag": ...
    @overload
    def __getitem__(self, i: slice) -> list["PartitionLag"]: ...
    def __getitem__(self, i: int | slice) -> "PartitionLag | list[PartitionLag]":
        if isinstance(i, slice):
            return [self.row(k) for k in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        return self.row(i)

    def __iter__(self) -> Iterator["PartitionLag"]:
        return (self.row(i) for i in range(len(self)))

    def row(self, i: int) -> "PartitionLag":
        from loomctl.lag.live import PartitionLag

        service, group_id, managed, state, group_type = self.groups[self.group[i]]
        member_id, client_id, host = self.owners[self.owner[i]]
        return PartitionLag(
            service, group_id, managed, state, self.topics[self.topic[i]], self.partition[i], _opt(self.committed[i]),
            _opt(self.log_start[i]), _opt(self.log_end[i]), _opt(self.lag[i]), _opt(self.time_lag[i]), self.lost[i],
            member_id, client_id, host, self.statuses[self.status[i]], group_type, None, _opt(self.start[i]),
        )  # fmt: skip

    def rows_of(self, group_id: str) -> range:
        """The indexes of the group's rows (empty when it has none)."""
        start, end = self._ranges.get(group_id, (0, 0))
        return range(start, end)

    def of_group(self, group_id: str) -> list["PartitionLag"]:
        return [self.row(i) for i in self.rows_of(group_id)]

    def group_ids(self) -> list[str]:
        """The groups with rows, in their order."""
        return [g[1] for g in self.groups if self._ranges[g[1]][0] < self._ranges[g[1]][1]]


_EVIDENCE_NUMBERS = (
    "first_offset",
    "first_lag",
    "last_offset",
    "last_lag",
    "first_log_end_offset",
    "log_end_offset",
    "time_lag_ms",
    "lag_slo_seconds",
)


class EvidenceTable(Mapping["Key", "WindowEvidence"]):
    """The window's first and last stored sample of each partition (``lag_partition_status``), group after group,
    with each partition's stored status.

    While it is filled (:meth:`add`), a lookup of a key is a dict's; once frozen, the dict is dropped and a key is
    found within its group's rows (a group has at most a few hundred).
    """

    def __init__(self) -> None:
        self._groups, self._topics, self._times, self._statuses = _Names(), _Names(), _Names(), _Names()
        self._times.index(None)
        self.group, self.topic, self.partition = array("i"), array("i"), array("i")
        self.samples, self.first_time, self.last_time, self.status = array("q"), array("i"), array("i"), array("B")
        self.numbers = {name: array("q") for name in _EVIDENCE_NUMBERS}
        self._index: dict[Key, int] | None = {}
        self._ranges: dict[str, tuple[int, int]] = {}

    @classmethod
    def of(cls, evidence: Mapping["Key", "WindowEvidence"]) -> "EvidenceTable":
        if isinstance(evidence, EvidenceTable):
            return evidence
        table = cls()
        for key in sorted(evidence, key=lambda k: k[0]):
            table.add_evidence(key, evidence[key], status=None)
        return table.freeze()

    def add_row(self, row: dict[str, Any]) -> None:
        """A row of ``lag_partition_status`` (as :func:`loomctl.lag.status.iter_stored_status` gives it)."""
        key = (row["consumer_group_id"], row["topic_name"], row["partition"])
        numbers = self.numbers
        self._add_key(key)
        self.samples.append(row["samples"])
        self.first_time.append(self._times.index(row["first_timestamp"]))
        self.last_time.append(self._times.index(row["last_timestamp"]))
        self.status.append(self._statuses.index(row["status"]))
        numbers["first_offset"].append(_num(row["first_committed_offset"]))
        numbers["first_lag"].append(_num(row["first_lag"]))
        numbers["last_offset"].append(_num(row["last_committed_offset"]))
        numbers["last_lag"].append(_num(row["last_lag"]))
        numbers["first_log_end_offset"].append(_num(row.get("first_log_end_offset")))
        numbers["log_end_offset"].append(_num(row.get("log_end_offset")))
        numbers["time_lag_ms"].append(_num(row.get("time_lag_ms")))
        numbers["lag_slo_seconds"].append(_num(row.get("lag_slo_seconds")))

    def add_evidence(self, key: "Key", e: "WindowEvidence", status: str | None) -> None:
        self._add_key(key)
        self.samples.append(e.samples)
        self.first_time.append(self._times.index(e.first_timestamp))
        self.last_time.append(self._times.index(e.last_timestamp))
        self.status.append(self._statuses.index(status))
        for name in _EVIDENCE_NUMBERS:
            self.numbers[name].append(_num(getattr(e, name)))

    def _add_key(self, key: "Key") -> None:
        group_id, topic, partition = key
        i = len(self.group)
        span = self._ranges.get(group_id)
        if span is not None and span[1] != i:
            raise ValueError(f"the evidence of group {group_id!r} is not together")
        self._ranges[group_id] = (i if span is None else span[0], i + 1)
        self.group.append(self._groups.index(group_id))
        self.topic.append(self._topics.index(topic))
        self.partition.append(partition)
        if self._index is not None:
            self._index[key] = i

    def freeze(self) -> "EvidenceTable":
        self._index = None
        for names in (self._groups, self._topics, self._times, self._statuses):
            names.freeze()
        return self

    def status_of(self, key: "Key") -> str | None:
        """The partition's stored status (while filling or after)."""
        i = self._find(key)
        return None if i is None else self._statuses.values[self.status[i]]

    @property
    def statuses(self) -> "_Statuses":
        """The stored statuses as a mapping of key to status (what ``live_lag``'s ``stored_status`` takes)."""
        return _Statuses(self)

    def _find(self, key: "Key") -> int | None:
        if self._index is not None:
            return self._index.get(key)
        group_id, topic, partition = key
        start, end = self._ranges.get(group_id, (0, 0))
        topics = self._topics.values
        for i in range(start, end):
            if self.partition[i] == partition and topics[self.topic[i]] == topic:
                return i
        return None

    def evidence(self, i: int) -> "WindowEvidence":
        from loomctl.lag.exporter import WindowEvidence

        n = self.numbers
        times = self._times.values
        return WindowEvidence(
            samples=self.samples[i],
            first_offset=_opt(n["first_offset"][i]),
            first_lag=_opt(n["first_lag"][i]),
            first_timestamp=times[self.first_time[i]],
            last_offset=_opt(n["last_offset"][i]),
            last_lag=_opt(n["last_lag"][i]),
            last_timestamp=times[self.last_time[i]],
            first_log_end_offset=_opt(n["first_log_end_offset"][i]),
            log_end_offset=_opt(n["log_end_offset"][i]),
            time_lag_ms=_opt(n["time_lag_ms"][i]),
            lag_slo_seconds=_opt(n["lag_slo_seconds"][i]),
        )

    def key(self, i: int) -> "Key":
        return (self._groups.values[self.group[i]], self._topics.values[self.topic[i]], self.partition[i])

    def indexes_of(self, group_id: str) -> list[int]:
        """The group's rows, by topic and partition."""
        start, end = self._ranges.get(group_id, (0, 0))
        topics, topic, partition = self._topics.values, self.topic, self.partition
        return sorted(range(start, end), key=lambda i: (topics[topic[i]], partition[i]))

    def __getitem__(self, key: "Key") -> "WindowEvidence":
        i = self._find(key)
        if i is None:
            raise KeyError(key)
        return self.evidence(i)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, tuple) and len(key) == 3 and self._find(key) is not None

    def __iter__(self) -> Iterator["Key"]:
        return (self.key(i) for i in range(len(self.group)))

    def __len__(self) -> int:
        return len(self.group)


class _Statuses(Mapping["Key", str]):
    __slots__ = ("_table",)

    def __init__(self, table: EvidenceTable) -> None:
        self._table = table

    def get(self, key: "Key", default: Any = None) -> Any:
        found = self._table.status_of(key)
        return default if found is None else found

    def __getitem__(self, key: "Key") -> str:
        found = self._table.status_of(key)
        if found is None:
            raise KeyError(key)
        return found

    def __iter__(self) -> Iterator["Key"]:
        return iter(self._table)

    def __len__(self) -> int:
        return len(self._table)
