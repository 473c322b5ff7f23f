"""What the collector's last completed cycle of each cluster saw, as Prometheus metrics (`lag collect --listen`).

The collector samples each cluster in a loop of its own and publishes one :class:`ExportSnapshot` per cluster
and cycle; it replaces that cluster's last one only. The cluster's sample lines are rendered then, once, and the
exposition (each family's ``# HELP``/``# TYPE`` once, followed by the samples of every cluster, clusters sorted
by name) is assembled from the rendered lines and gzipped at the same time, so a scrape copies bytes from memory
and only the collector's health (which changes between cycles: the age of the figures, whether the last cycle
failed) is rendered per scrape. A scrape never calls Kafka or PostgreSQL.

A snapshot of the default cluster (``cluster_name`` "default": no cluster registered, or ``--bootstrap-servers``)
is labelled with the exporter's ``cluster_name`` (``--cluster-name``), every other cluster with its own name
(:meth:`Exporter.exported_name`). Several collectors share the groups between them; each exports only the groups
it sampled, so Prometheus scraping all of them sees each series once (the ``instance`` label tells them apart).

Names and labels follow kafka-lag-exporter, so its dashboards and alert rules work unchanged; the
``loomctl_`` series add what it does not compute (Burrow-style statuses, partitions without a commit,
records lost to retention, the owning service and its profile, the collector's health).
Differences chosen, on purpose:

- a partition whose group never committed gets no ``kafka_consumergroup_group_lag`` series (never a lag of
  0); it is counted by ``loomctl_group_topic_partitions_without_commit``;
- ``kafka_consumergroup_group_lag_seconds`` is left out where loomctl does not know the lag in time yet
  (the first sample of a lagging partition), rather than reported as 0;
- ``is_simple_consumer`` is "true" for a group with no members: the snapshot does not carry the group's
  protocol type, and a group that only commits offsets has no members;
- ``--granularity topic`` drops every series with a ``partition`` label and adds per-topic maxima;
- a group whose service has a lag objective gets ``loomctl_group_lag_slo_seconds``, its state and the catch-up and
  breach predictions of ``lag slo`` (loomctl.lag.slo) from the stored window; a prediction that is unknown, or a
  catch-up that never comes (``loomctl_group_catch_up_never`` 1), has no series rather than a made-up number.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loomctl.lag import slo
from loomctl.lag.packed import NONE, EvidenceTable, PartitionTable
from loomctl.lag.samples import max_known, sum_known
from loomctl.lag.status import ERR, OK, REWIND, STALL, STOP, UNKNOWN, WARN, worst
from loomctl.lag.verdicts import STALE_AFTER_INTERVALS  # figures older than this many intervals are stale (a hung cycle)
from loomctl.lag.views import DEFAULT_CLUSTER_NAME, DEFAULT_LISTEN, GRANULARITIES  # noqa: F401  (http takes DEFAULT_LISTEN from here)

if TYPE_CHECKING:
    from loomctl.lag.live import PartitionLag
    from loomctl.lag.time_lag import Key

BURROW_CODES = {"NOTFOUND": 0, OK: 1, WARN: 2, ERR: 3, STOP: 4, STALL: 5, REWIND: 6}
"""Burrow's status numbering (protocol.StatusConstant), the value of the ``loomctl_*_status_code`` series."""
UNKNOWN_CODE = -1
"""A partition with lag but no stored window yet: one look cannot tell slow from stalled."""
SLO_CODES = {slo.NO_DATA: -1, slo.MET: 0, slo.AT_RISK: 1, slo.BREACHED: 2}
"""The value of ``loomctl_group_slo_state_code`` (its name in the slo_state label); no series without an objective."""


def status_name(status: str) -> str:
    """The status as a label value: loomctl's "-" (no history yet) is spelled UNKNOWN."""
    return "UNKNOWN" if status == UNKNOWN else status


def status_code(status: str) -> int:
    return BURROW_CODES.get(status, UNKNOWN_CODE)


@dataclass(frozen=True, slots=True)
class GroupInfo:
    """A group as the cycle saw it, with the service and profile of the config that owns it (if any)."""

    consumer_group_id: str
    service_name: str | None
    profile: str | None
    group_state: str
    member_count: int
    group_type: str | None = None
    """classic or consumer (KIP-848) as the broker describes the group."""


@dataclass(frozen=True, slots=True)
class WindowEvidence:
    """A partition's first and last stored sample in the status window (Burrow's ``start`` and ``end``)."""

    samples: int
    first_offset: int | None
    first_lag: int | None
    first_timestamp: dt.datetime | None
    last_offset: int | None
    last_lag: int | None
    last_timestamp: dt.datetime | None
    first_log_end_offset: int | None = None
    log_end_offset: int | None = None
    time_lag_ms: int | None = None
    lag_slo_seconds: int | None = None
    """The owning service's objective (its own or its profile's)."""

    def window_row(self) -> dict[str, Any]:
        """The figures :func:`loomctl.lag.slo.predict_partition` reads, as ``lag_partition_status`` names them."""
        return {
            "samples": self.samples,
            "first_timestamp": self.first_timestamp,
            "last_timestamp": self.last_timestamp,
            "first_committed_offset": self.first_offset,
            "last_committed_offset": self.last_offset,
            "first_log_end_offset": self.first_log_end_offset,
            "log_end_offset": self.log_end_offset,
            "last_lag": self.last_lag,
            "time_lag_ms": self.time_lag_ms,
        }


@dataclass(frozen=True)
class ExportSnapshot:
    """Everything one completed cycle saw: what /metrics and the Burrow API serve until the next one.

    The rows and the evidence are kept packed (:mod:`loomctl.lag.packed`): given as a list and a dict, they are packed
    when the snapshot is made; the collector fills the tables directly."""

    cluster_name: str
    taken_at: dt.datetime
    window: dt.timedelta
    interval: dt.timedelta
    groups: dict[str, GroupInfo]
    partitions: PartitionTable | Sequence["PartitionLag"]
    evidence: EvidenceTable | Mapping["Key", WindowEvidence] = field(default_factory=dict)
    brokers: list[str] = field(default_factory=list)
    """The cluster's brokers ("host:port") as the cycle's metadata named them (the Burrow API's ``servers``)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "partitions", PartitionTable.of(self.partitions))
        object.__setattr__(self, "evidence", EvidenceTable.of(self.evidence))

    @property
    def table(self) -> PartitionTable:
        assert isinstance(self.partitions, PartitionTable)
        return self.partitions

    @property
    def window_table(self) -> EvidenceTable:
        assert isinstance(self.evidence, EvidenceTable)
        return self.evidence

    def partitions_of(self, group_id: str) -> list["PartitionLag"]:
        return self.table.of_group(group_id)

    def group_status(self, group_id: str) -> str:
        """The group's worst partition status, as `lag show` rolls it up ("-" without partitions)."""
        return worst(p.status for p in self.partitions_of(group_id))


@dataclass
class CollectorHealth:
    """The collector's own state: served per scrape, since it changes while the figures stay."""

    started_at: float = field(default_factory=time.time)
    cycles_total: int = 0
    failures_total: int = 0
    snapshot_crashes_total: int = 0
    last_cycle_ok: bool = False
    last_cycle_duration_s: float = 0.0
    last_success_at: float | None = None
    last_error: str | None = None
    writer: bool = False


@dataclass
class ClusterHealth:
    """One cluster's loop as its cycles left it: served per scrape, beside the collector's own health."""

    cycles_total: int = 0
    failures_total: int = 0
    last_cycle_ok: bool = False
    last_cycle_duration_s: float = 0.0
    last_success_at: float | None = None
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class _Rendered:
    """One cluster's snapshot and its figures, rendered when it was published: per family, its header lines
    (``# HELP``, ``# TYPE``) and its sample lines, each gzipped on its own (a gzip member), so the exposition of all
    clusters is assembled by joining members (RFC 1952: a gzip stream may be several members; Prometheus, Python and
    curl read them as one text). Only the compressed text is kept: some 25 bytes per partition row, not 800."""

    snapshot: ExportSnapshot
    members: dict[str, tuple[bytes, bytes]]


def _assemble(rendered: dict[str, _Rendered]) -> bytes:
    """One gzipped exposition for every cluster: each family's header once, then its samples, cluster by cluster (sorted)."""
    ordered = [rendered[c].members for c in sorted(rendered)]
    headers: dict[str, bytes] = {}
    for members in ordered:
        for name, (header, _) in members.items():
            headers.setdefault(name, header)
    parts: list[bytes] = []
    for name, header in headers.items():
        parts.append(header)
        for members in ordered:
            found = members.get(name)
            if found is not None and found[1]:
                parts.append(found[1])
    return b"".join(parts)


class Exporter:
    """The latest snapshot of each cluster and the collector's health, shared by the cycles (writers) and the HTTP
    server (readers).

    ``cluster_name`` is the exported name of the default cluster (a snapshot whose ``cluster_name`` is "default");
    every other cluster is exported under its own name. Clusters are keyed by their exported name everywhere, and
    :meth:`failed` and :meth:`retire` take either name of the default cluster.
    """

    def __init__(
        self,
        cluster_name: str = DEFAULT_CLUSTER_NAME,
        granularity: str = "partition",
        interval: dt.timedelta = dt.timedelta(seconds=30),
    ) -> None:
        from loomctl.errors import BadInput

        if granularity not in GRANULARITIES:
            raise BadInput(f"--granularity {granularity}: choose {' or '.join(GRANULARITIES)}")
        if not _servable(cluster_name):
            raise BadInput("--cluster-name: a non-empty printable name without '/'")
        self.cluster_name = cluster_name
        self.granularity = granularity
        self.interval = interval
        self.health = CollectorHealth()
        self._lock = threading.Lock()
        """Held by readers and by the short swap of a publish: a scrape never waits for a render or a gzip."""
        self._publishing = threading.Lock()
        """One publish or retire at a time assembles the exposition (the clusters' loops run in threads of their own)."""
        self._rendered: dict[str, _Rendered] = {}
        """By exported name; replaced whole, never changed in place, so a reader may hold it without the lock."""
        self._clusters: dict[str, ClusterHealth] = {}
        self._figures_gzip = b""
        """The figures gzipped, assembled once per publish (the only copy kept: see :class:`_Rendered`)."""

    def exported_name(self, cluster: str) -> str:
        """The ``cluster_name`` label (and Burrow's cluster) of a cluster: the default one is called as ``--cluster-name`` says."""
        return self.cluster_name if cluster == DEFAULT_CLUSTER_NAME else cluster

    @property
    def snapshot(self) -> ExportSnapshot | None:
        """The default cluster's snapshot, or the only cluster's; None before it (or with several, none the default)."""
        rendered = self._rendered
        held = rendered.get(self.cluster_name)
        if held is None and len(rendered) == 1:
            [held] = rendered.values()
        return held.snapshot if held is not None else None

    def snapshots(self) -> dict[str, ExportSnapshot]:
        """Every cluster's latest snapshot, by exported name (sorted)."""
        rendered = self._rendered
        return {name: rendered[name].snapshot for name in sorted(rendered)}

    def publish(self, snapshot: ExportSnapshot, *, writer: bool, duration_s: float) -> None:
        """A completed cycle of ``snapshot.cluster_name``: its figures replace that cluster's last ones, the others stay."""
        from loomctl.errors import BadInput

        name = self.exported_name(snapshot.cluster_name)
        if not _servable(name):
            raise BadInput(f"cluster {name!r}: not a name the exporter can serve (empty, unprintable or with '/')")
        members = render_members(snapshot, self.granularity, name)
        with self._publishing:
            held = self._rendered.get(name)
            if held is not None and held.snapshot.cluster_name != snapshot.cluster_name:
                raise BadInput(
                    f"clusters {held.snapshot.cluster_name!r} and {snapshot.cluster_name!r} would both be exported as "
                    f"{name!r}: give the default cluster another --cluster-name"
                )
            rendered = {**self._rendered, name: _Rendered(snapshot, members)}
            compressed = _assemble(rendered)  # Prometheus asks for gzip: done here, not per scrape
            now = time.time()
            with self._lock:
                self._rendered, self._figures_gzip = rendered, compressed
                c = self._clusters.setdefault(name, ClusterHealth())
                c.cycles_total += 1
                c.last_cycle_ok, c.last_cycle_duration_s, c.last_success_at, c.last_error = True, duration_s, now, None
                h = self.health
                h.cycles_total += 1
                h.last_cycle_duration_s, h.last_success_at, h.writer = duration_s, now, writer
                h.last_cycle_ok = all(c.last_cycle_ok for c in self._clusters.values())
                if h.last_cycle_ok:
                    h.last_error = None

    def standing_by(self, *, writer: bool, duration_s: float) -> None:
        """A coordination step that gave this collector no group to sample (other collectors hold every share): it is
        healthy and fresh, with no figures of its own to serve."""
        with self._lock:
            h = self.health
            h.cycles_total += 1
            h.last_cycle_ok = all(c.last_cycle_ok for c in self._clusters.values())
            h.last_cycle_duration_s, h.last_success_at, h.writer = duration_s, time.time(), writer
            if h.last_cycle_ok:
                h.last_error = None

    def failed(self, error: str, *, duration_s: float, cluster: str | None = None) -> None:
        """A failed cycle of ``cluster`` (None: of the whole collector, so of every cluster): the last good figures
        stay, the health says they are stale until the cluster publishes again."""
        with self._lock:
            h = self.health
            h.cycles_total += 1
            h.failures_total += 1
            h.last_cycle_ok, h.last_cycle_duration_s, h.last_error = False, duration_s, error
            if cluster is None:
                for c in self._clusters.values():
                    c.last_cycle_ok, c.last_error = False, error
                return
            c = self._clusters.setdefault(self.exported_name(cluster), ClusterHealth())
            c.cycles_total += 1
            c.failures_total += 1
            c.last_cycle_ok, c.last_cycle_duration_s, c.last_error = False, duration_s, error

    def retire(self, cluster_name: str) -> None:
        """Forget a cluster (removed, or none of its groups is this collector's any more): its series go at the next scrape."""
        name = self.exported_name(cluster_name)
        with self._publishing:
            rendered = {k: v for k, v in self._rendered.items() if k != name}
            changed = len(rendered) != len(self._rendered)
            compressed = _assemble(rendered) if changed else self._figures_gzip
            with self._lock:
                if changed:
                    self._rendered, self._figures_gzip = rendered, compressed
                if self._clusters.pop(name, None) is not None and self._clusters:
                    self.health.last_cycle_ok = all(c.last_cycle_ok for c in self._clusters.values())

    def snapshot_crashed(self) -> None:
        """The snapshot's child process died (counted beside the cycle's failure)."""
        with self._lock:
            self.health.snapshot_crashes_total += 1

    def stale(self, now: float | None = None, *, cluster: str | None = None) -> bool:
        """``cluster``'s figures are not from a cycle that just succeeded (it failed since, or they are older than
        :data:`STALE_AFTER_INTERVALS` intervals, or there are none); without a cluster: no figures at all, or the
        last cycle of some cluster (or of the whole collector) failed, or some cluster's figures are stale."""
        with self._lock:
            return self._stale(now or time.time(), None if cluster is None else self.exported_name(cluster))

    def _stale(self, now: float, cluster: str | None) -> bool:
        if cluster is not None:
            c, held = self._clusters.get(cluster), self._rendered.get(cluster)
            if c is None or held is None or c.last_success_at is None or not c.last_cycle_ok:
                return True
            interval = max(self.interval.total_seconds(), held.snapshot.interval.total_seconds(), 1.0)
            return now - c.last_success_at > STALE_AFTER_INTERVALS * interval
        h = self.health
        if not h.last_cycle_ok:
            return True
        if not self._rendered:  # fresh only while standing by: a recent step that gave it nothing to sample
            interval = max(self.interval.total_seconds(), 1.0)
            return h.last_success_at is None or now - h.last_success_at > STALE_AFTER_INTERVALS * interval
        return any(self._stale(now, name) for name in self._rendered)

    def ready(self, now: float | None = None) -> bool:
        """Every cluster's figures served are fresh (a cluster that never published has none to be stale); with none
        to serve (standing by, its shares holding no configured group, or every cluster retired), ready while its last
        step succeeded within :data:`STALE_AFTER_INTERVALS` intervals: it does all it is asked to. Never before a
        first step."""
        with self._lock:
            now = now or time.time()
            if not self._rendered:
                return not self._stale(now, None)
            return not any(self._stale(now, name) for name in self._rendered)

    def metrics(self, *, compressed: bool = False) -> bytes:
        """The exposition text: the clusters' figures (rendered when published) and the health, now.

        ``compressed``: gzip, as a stream of members (RFC 1952 allows it; Prometheus reads it), so the figures are
        compressed once per publish and only the health per scrape. Uncompressed, the figures are unzipped for the
        answer (a client that does not ask for gzip, such as curl without --compressed, pays for it).
        """
        import gzip

        with self._lock:
            health = render(_HealthCollector(self))
            figures = self._figures_gzip
        if not compressed:
            return gzip.decompress(figures) + health
        return (figures or gzip.compress(b"")) + gzip.compress(health, compresslevel=1)


def _servable(name: str) -> bool:
    """A name the Burrow API can route (one path segment) and a label can carry."""
    return bool(name) and name.isprintable() and "/" not in name


def render(collector: Any) -> bytes:
    """One collector's families in the Prometheus text format, through prometheus_client."""
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return generate_latest(registry)


PARTITION_LABELS = ("cluster_name", "group", "topic", "partition", "member_host", "consumer_id", "client_id")
OFFSET_LABELS = ("cluster_name", "topic", "partition")
GROUP_LABELS = ("cluster_name", "group", "service", "profile")

KAFKA_LAG_EXPORTER_METRICS = {
    "kafka_consumergroup_group_offset": "The last committed offset of this group on this partition.",
    "kafka_consumergroup_group_lag": "Log end offset minus the group's committed offset (partitions without a commit are left out).",
    "kafka_consumergroup_group_lag_seconds": "How long ago the next record to consume was produced, estimated from stored samples.",
    "kafka_consumergroup_group_max_lag": "The highest lag in offsets of any partition of this group.",
    "kafka_consumergroup_group_max_lag_seconds": "The highest lag in time of any partition of this group.",
    "kafka_consumergroup_group_sum_lag": "The lag in offsets of all partitions of this group, summed.",
    "kafka_consumergroup_group_topic_sum_lag": "The lag in offsets of all partitions of this topic for this group, summed.",
    "kafka_partition_latest_offset": "The log end offset of this partition.",
    "kafka_partition_earliest_offset": "The log start offset of this partition.",
}
PARTITION_METRICS = (
    "kafka_consumergroup_group_offset",
    "kafka_consumergroup_group_lag",
    "kafka_consumergroup_group_lag_seconds",
    "kafka_partition_latest_offset",
    "kafka_partition_earliest_offset",
    "loomctl_partition_status_code",
    "loomctl_partition_catch_up_seconds",
)


def metric_names(granularity: str = "partition") -> list[str]:
    """Every metric name /metrics can emit (prometheus_client adds ``_total`` to the counter)."""
    names = [
        *KAFKA_LAG_EXPORTER_METRICS,
        *LOOMCTL_FIGURES,
        *(f"{n}_total" if n in HEALTH_COUNTERS else n for n in HEALTH_METRICS),
    ]
    if granularity == "topic":
        return [n for n in names if n not in PARTITION_METRICS]
    return [n for n in names if n not in TOPIC_ONLY_METRICS]


LOOMCTL_FIGURES = {
    "loomctl_group_info": "1 per group the collector samples, with its state, its type (classic or consumer) and the service and profile of its config.",
    "loomctl_group_status_code": "The group's status (its worst partition's) by Burrow's codes: OK=1 WARN=2 ERR=3 STOP=4 STALL=5 REWIND=6, -1 no history yet; the name in the status label.",
    "loomctl_group_members": "Members of the group.",
    "loomctl_group_partitions": "Partitions the group has committed to or been assigned.",
    "loomctl_group_topic_status_code": "The worst partition status of this group on this topic, by Burrow's codes.",
    "loomctl_group_topic_partitions_without_commit": "Partitions of this topic the group never committed to (lag unknown, not 0).",
    "loomctl_group_topic_lost_records": "Records deleted by retention before the group read them (log start above the committed offset).",
    "loomctl_partition_status_code": "The partition's status over the stored window by Burrow's codes.",
    "loomctl_group_topic_max_lag": "The highest lag in offsets of any partition of this topic for this group.",
    "loomctl_group_topic_max_lag_seconds": "The highest lag in time of any partition of this topic for this group.",
    "loomctl_snapshot_timestamp_seconds": "When the served cycle's snapshot was taken (Unix time).",
    "loomctl_group_lag_slo_seconds": "The objective for the group's lag in time (its service's own, or its profile's default).",
    "loomctl_group_slo_state_code": "The group against its objective: met=0 at_risk=1 breached=2, -1 no lag in time known; the name in the slo_state label.",
    "loomctl_group_catch_up_seconds": "When the group's slowest partition catches up at the window's rates (0: caught up); absent when it never does.",
    "loomctl_group_catch_up_never": "1 when a partition of the group does not gain on its producers (it never catches up), else 0.",
    "loomctl_group_breach_in_seconds": "When the group's lag in time crosses its objective at the current trend (0: crossed); absent when it does not grow.",
    "loomctl_partition_catch_up_seconds": "When this partition catches up at the window's rates (0: caught up); absent when it never does.",
}
TOPIC_ONLY_METRICS = ("loomctl_group_topic_max_lag", "loomctl_group_topic_max_lag_seconds")

HEALTH_METRICS = {
    "loomctl_collector_up": "1 when the last cycle of every cluster succeeded, 0 when one failed, or the whole collector's did (the figures served are the last good ones).",
    "loomctl_collector_stale": "1 when some figures served are not from a cycle that just succeeded (a failure, or older than 3 intervals), or there are none.",
    "loomctl_collector_writer": "1 when this collector holds the writer lock, 0 when it stands by (it serves its own snapshots).",
    "loomctl_collector_cycle_duration_seconds": "How long the last cycle took.",
    "loomctl_collector_cycles": "Cycles run since start.",
    "loomctl_collector_cycle_failures": "Cycles that failed since start.",
    "loomctl_collector_snapshot_crashes": "Times the snapshot's Kafka client process died (a librdkafka abort or crash) since start.",
    "loomctl_collector_last_success_timestamp_seconds": "When the last cycle succeeded (Unix time).",
    "loomctl_collector_snapshot_age_seconds": "Age of the oldest figures served (of the cluster published longest ago).",
    "loomctl_collector_info": "1, with the collector's cluster name (the default cluster's), granularity and version.",
    "loomctl_collector_cluster_up": "1 when this cluster's last cycle succeeded, 0 when it failed (its figures served are its last good ones, if any).",
    "loomctl_collector_cluster_stale": "1 when this cluster's figures are not from a cycle that just succeeded (a failure, older than 3 intervals, or none yet).",
    "loomctl_collector_cluster_cycle_duration_seconds": "How long this cluster's last cycle took.",
    "loomctl_collector_cluster_cycle_failures": "This cluster's cycles that failed since start.",
}
HEALTH_COUNTERS = (
    "loomctl_collector_cycles",
    "loomctl_collector_cycle_failures",
    "loomctl_collector_snapshot_crashes",
    "loomctl_collector_cluster_cycle_failures",
)


def _label(value: Any) -> str:
    return "" if value is None else str(value)


def _escape(value: str) -> str:
    """A label value as prometheus_client escapes it (backslash, newline, double quote)."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(docs: str) -> str:
    """A family's documentation as prometheus_client writes it on its ``# HELP`` line."""
    return docs.replace("\\", "\\\\").replace("\n", "\\n")


def _template(name: str, labels: Sequence[str]) -> str:
    """A sample line of ``name`` for str.format: label values (escaped) by position, then the value; the labels
    in prometheus_client's order (sorted by name)."""
    inner = ",".join(f'{labels[i]}="{{{i}}}"' for i in sorted(range(len(labels)), key=lambda i: labels[i]))
    return f"{name}{{{{{inner}}}}} {{{len(labels)}}}\n"


class _Sink:
    """Exposition lines written into bytes, plain or gzipped (a gzip member of its own), a few hundred lines at a time,
    so the text of a family is never whole in memory when it is compressed."""

    __slots__ = ("parts", "lines", "written", "_zip")

    def __init__(self, compressed: bool) -> None:
        import zlib

        self.parts: list[bytes] = []
        self.lines: list[str] = []
        self.written = 0
        self._zip = zlib.compressobj(1, zlib.DEFLATED, 31) if compressed else None  # wbits 31: a gzip member

    def add(self, line: str) -> None:
        lines = self.lines
        lines.append(line)
        if len(lines) >= 512:
            self.flush()

    def flush(self) -> None:
        if self.lines:
            data = "".join(self.lines).encode()
            self.lines.clear()
            self.written += len(data)
            self.parts.append(data if self._zip is None else self._zip.compress(data))

    def finish(self) -> bytes:
        """What was written (b"" when nothing was: no empty gzip member)."""
        self.flush()
        if self._zip is not None:
            if not self.written:
                return b""
            self.parts.append(self._zip.flush())
            self._zip = None
        data = b"".join(self.parts)
        self.parts.clear()
        return data


class _Families:
    """One cluster's families, family after family: per family, its header and its samples (plain or gzipped)."""

    def __init__(self, compressed: bool) -> None:
        from prometheus_client.utils import floatToGoString

        self.compressed = compressed
        self.members: dict[str, tuple[bytes, bytes]] = {}
        self.value = floatToGoString

    def sink(self) -> _Sink:
        return _Sink(self.compressed)

    def family(self, name: str, lines: Iterable[str] | _Sink = ()) -> None:
        docs = LOOMCTL_FIGURES.get(name) or KAFKA_LAG_EXPORTER_METRICS[name]
        header = _Sink(self.compressed)
        header.add(f"# HELP {name} {_escape_help(docs)}\n# TYPE {name} gauge\n")
        if isinstance(lines, _Sink):
            samples = lines
        else:
            samples = _Sink(self.compressed)
            for line in lines:
                samples.add(line)
        self.members[name] = (header.finish(), samples.finish())


def render_figures(
    snapshot: ExportSnapshot, granularity: str, cluster: str | None = None
) -> tuple[bytes, dict[str, tuple[int, int, int]]]:
    """One cluster's figures as exposition text, byte for byte what prometheus_client renders from
    :class:`_FiguresCollector`'s families, and where each family is in it: its header's start, its samples' start
    and their end (what :func:`render_members` gives, not compressed)."""
    text: list[bytes] = []
    spans: dict[str, tuple[int, int, int]] = {}
    at = 0
    for name, (header, samples) in render_members(snapshot, granularity, cluster, compressed=False).items():
        spans[name] = (at, at + len(header), at + len(header) + len(samples))
        at = spans[name][2]
        text += (header, samples)
    return b"".join(text), spans


def render_members(
    snapshot: ExportSnapshot, granularity: str, cluster: str | None = None, *, compressed: bool = True
) -> dict[str, tuple[bytes, bytes]]:
    """One cluster's figures per family: its header lines and its sample lines, each gzipped on its own (or plain).

    No metric or sample object is made: each per-partition family is written straight from the packed rows' columns,
    one after the other; the per-group families are written in one pass over the groups, each into a sink of its own.
    """
    snap = snapshot
    table, window = snap.table, snap.window_table
    cluster = cluster or snap.cluster_name
    per_partition = granularity == "partition"
    out = _Families(compressed)
    value = out.value
    escaped: dict[str, str] = {}

    def esc(s: str) -> str:
        e = escaped.get(s)
        if e is None:
            e = escaped[s] = _escape(s)
        return e

    c = esc(cluster)

    if per_partition:
        group_of, topic_of, number_of, owner_of, status_of = table.group, table.topic, table.partition, table.owner, table.status
        groups = [esc(g[1]) for g in table.groups]
        topics = [esc(t) for t in table.topics]
        owners = [
            (_escape(_label(host)), _escape(_label(member)), _escape(_label(client))) for member, client, host in table.owners
        ]
        numbers = [str(n) for n in range(max(number_of, default=-1) + 1)]
        partition_line = {
            name: _template(name, PARTITION_LABELS)
            for name in (
                "kafka_consumergroup_group_offset",
                "kafka_consumergroup_group_lag",
                "kafka_consumergroup_group_lag_seconds",
            )
        }

        def per_row(name: str, column: Any, scale: int = 1) -> Iterator[str]:
            fmt = partition_line[name].format
            for i, v in enumerate(column):
                if v != NONE:
                    host, member, client = owners[owner_of[i]]
                    yield fmt(c, groups[group_of[i]], topics[topic_of[i]], numbers[number_of[i]], host, member, client,
                              value(v if scale == 1 else v / scale))  # fmt: skip

        def per_log(name: str, column: Any) -> Iterator[str]:
            fmt = _template(name, OFFSET_LABELS).format
            seen: set[tuple[int, int]] = set()
            log_end = table.log_end
            for i, v in enumerate(column):
                if log_end[i] != NONE:
                    tp = (topic_of[i], number_of[i])
                    if tp not in seen:
                        seen.add(tp)
                        if v != NONE:
                            yield fmt(c, topics[tp[0]], numbers[tp[1]], value(v))

        def statuses() -> Iterator[str]:
            fmt = _template("loomctl_partition_status_code", (*PARTITION_LABELS[:4], "status")).format
            named = [(esc(status_name(s)), value(status_code(s))) for s in table.statuses]
            for i, s in enumerate(status_of):
                yield fmt(c, groups[group_of[i]], topics[topic_of[i]], numbers[number_of[i]], *named[s])

        out.family("kafka_consumergroup_group_offset", per_row("kafka_consumergroup_group_offset", table.committed))
        out.family("kafka_consumergroup_group_lag", per_row("kafka_consumergroup_group_lag", table.lag))
        out.family(
            "kafka_consumergroup_group_lag_seconds", per_row("kafka_consumergroup_group_lag_seconds", table.time_lag, 1000)
        )
        out.family("kafka_partition_latest_offset", per_log("kafka_partition_latest_offset", table.log_end))
        out.family("kafka_partition_earliest_offset", per_log("kafka_partition_earliest_offset", table.log_start))
        out.family("loomctl_partition_status_code", statuses())

    simple_labels = ("cluster_name", "group", "is_simple_consumer")
    topic_labels = ("cluster_name", "group", "topic")
    families: dict[str, tuple[str, _Sink]] = {}

    def family(name: str, labels: Sequence[str]) -> Any:
        families[name] = (_template(name, labels), out.sink())
        fmt, sink = families[name]
        return lambda labels, v: sink.add(fmt.format(*labels, value(v)))

    max_lag = family("kafka_consumergroup_group_max_lag", simple_labels)
    max_lag_seconds = family("kafka_consumergroup_group_max_lag_seconds", simple_labels)
    sum_lag = family("kafka_consumergroup_group_sum_lag", ("cluster_name", "group"))
    topic_sum_lag = family("kafka_consumergroup_group_topic_sum_lag", topic_labels)
    info = family("loomctl_group_info", (*GROUP_LABELS, "state", "managed", "group_type"))
    group_status = family("loomctl_group_status_code", (*GROUP_LABELS, "status"))
    members = family("loomctl_group_members", GROUP_LABELS)
    partitions = family("loomctl_group_partitions", GROUP_LABELS)
    topic_status = family("loomctl_group_topic_status_code", (*topic_labels, "status"))
    without_commit = family("loomctl_group_topic_partitions_without_commit", topic_labels)
    lost = family("loomctl_group_topic_lost_records", topic_labels)
    slo_seconds = family("loomctl_group_lag_slo_seconds", GROUP_LABELS)
    slo_state = family("loomctl_group_slo_state_code", (*GROUP_LABELS, "slo_state"))
    catch_up = family("loomctl_group_catch_up_seconds", GROUP_LABELS)
    catch_up_never = family("loomctl_group_catch_up_never", GROUP_LABELS)
    breach_in = family("loomctl_group_breach_in_seconds", GROUP_LABELS)
    if per_partition:
        partition_catch_up = family("loomctl_partition_catch_up_seconds", PARTITION_LABELS[:4])
    else:
        topic_max_lag = family("loomctl_group_topic_max_lag", topic_labels)
        topic_max_lag_seconds = family("loomctl_group_topic_max_lag_seconds", topic_labels)

    objectives = window.numbers["lag_slo_seconds"]
    for group_id in sorted(snap.groups):
        g = snap.groups[group_id]
        rows = table.of_group(group_id)
        gid = _escape(group_id)
        group_labels = [c, gid, _escape(_label(g.service_name)), _escape(_label(g.profile))]
        simple = "true" if g.member_count == 0 else "false"
        info([*group_labels, _escape(g.group_state), "true" if g.service_name else "false", _escape(g.group_type or "")], 1)
        status = worst(r.status for r in rows)
        group_status([*group_labels, _escape(status_name(status))], status_code(status))
        members(group_labels, g.member_count)
        partitions(group_labels, len(rows))
        group_max = max_known(r.lag for r in rows)
        if group_max is not None:
            max_lag([c, gid, simple], group_max)
            sum_lag([c, gid], sum_known(r.lag for r in rows) or 0)
        group_max_ms = max_known(r.time_lag_ms for r in rows)
        if group_max_ms is not None:
            max_lag_seconds([c, gid, simple], group_max_ms / 1000)
        held = window.indexes_of(group_id)
        objective = next((o for i in held if (o := objectives[i]) != NONE), None)
        if objective is not None:
            predictions = [(window.key(i), slo.predict_partition(window.evidence(i).window_row(), objective)) for i in held]
            prediction = slo.predict_group(
                [(f"{t}[{p}]", pred) for (_, t, p), pred in predictions], objective, snap.window.total_seconds()
            )
            slo_seconds(group_labels, objective)
            slo_state([*group_labels, _escape(prediction.slo_state)], SLO_CODES.get(prediction.slo_state, -1))
            if prediction.catch_up_seconds is not None:
                catch_up(group_labels, prediction.catch_up_seconds)
            if prediction.catch_up_seconds is not None or prediction.catch_up_never:
                catch_up_never(group_labels, 1 if prediction.catch_up_never else 0)
            if prediction.breach_in_seconds is not None:
                breach_in(group_labels, prediction.breach_in_seconds)
            if per_partition:
                for (_, t, number), pred in predictions:
                    if pred.catch_up_seconds is not None:
                        partition_catch_up([c, gid, esc(t), str(number)], pred.catch_up_seconds)
            del predictions
        by_topic: dict[str, list[PartitionLag]] = {}
        for r in rows:
            by_topic.setdefault(r.topic_name, []).append(r)
        for topic, items in sorted(by_topic.items()):
            labels = [c, gid, esc(topic)]
            topic_sum = sum_known(r.lag for r in items)
            if topic_sum is not None:
                topic_sum_lag(labels, topic_sum)
            worst_here = worst(r.status for r in items)
            topic_status([*labels, _escape(status_name(worst_here))], status_code(worst_here))
            without_commit(labels, sum(1 for r in items if r.committed_offset is None))
            lost(labels, sum(r.lost_records for r in items))
            if not per_partition:
                topic_max = max_known(r.lag for r in items)
                if topic_max is not None:
                    topic_max_lag(labels, topic_max)
                topic_max_ms = max_known(r.time_lag_ms for r in items)
                if topic_max_ms is not None:
                    topic_max_lag_seconds(labels, topic_max_ms / 1000)
    for name, (_, sink) in families.items():
        out.family(name, sink)
    out.family(
        "loomctl_snapshot_timestamp_seconds",
        [f'loomctl_snapshot_timestamp_seconds{{cluster_name="{c}"}} {value(snap.taken_at.timestamp())}\n'],
    )
    return out.members


class _FiguresCollector:
    """One cluster's snapshot's families, labelled ``cluster`` (the snapshot's own name without one); built once per cycle."""

    def __init__(self, snapshot: ExportSnapshot, granularity: str, cluster: str | None = None) -> None:
        self.snapshot = snapshot
        self.granularity = granularity
        self.cluster = cluster or snapshot.cluster_name

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        snap = self.snapshot
        cluster = self.cluster
        per_partition = self.granularity == "partition"

        def family(name: str, labels: Sequence[str], docs: dict[str, str] | None = None) -> Any:
            return GaugeMetricFamily(name, (docs or {**KAFKA_LAG_EXPORTER_METRICS, **LOOMCTL_FIGURES})[name], labels=labels)

        by_group: dict[str, list[PartitionLag]] = {}
        for p in snap.partitions:
            by_group.setdefault(p.consumer_group_id, []).append(p)

        if per_partition:
            offset = family("kafka_consumergroup_group_offset", PARTITION_LABELS)
            lag = family("kafka_consumergroup_group_lag", PARTITION_LABELS)
            lag_seconds = family("kafka_consumergroup_group_lag_seconds", PARTITION_LABELS)
            latest = family("kafka_partition_latest_offset", OFFSET_LABELS)
            earliest = family("kafka_partition_earliest_offset", OFFSET_LABELS)
            partition_status = family("loomctl_partition_status_code", (*PARTITION_LABELS[:4], "status"))
            seen_offsets: set[tuple[str, int]] = set()
            for p in snap.partitions:
                labels = [
                    cluster,
                    p.consumer_group_id,
                    p.topic_name,
                    str(p.partition),
                    _label(p.host),
                    _label(p.member_id),
                    _label(p.client_id),
                ]
                if p.committed_offset is not None:
                    offset.add_metric(labels, p.committed_offset)
                if p.lag is not None:
                    lag.add_metric(labels, p.lag)
                if p.time_lag_ms is not None:
                    lag_seconds.add_metric(labels, p.time_lag_ms / 1000)
                partition_status.add_metric([*labels[:4], status_name(p.status)], status_code(p.status))
                if p.log_end_offset is not None and (p.topic_name, p.partition) not in seen_offsets:
                    seen_offsets.add((p.topic_name, p.partition))
                    latest.add_metric([cluster, p.topic_name, str(p.partition)], p.log_end_offset)
                    if p.log_start_offset is not None:
                        earliest.add_metric([cluster, p.topic_name, str(p.partition)], p.log_start_offset)
            yield from (offset, lag, lag_seconds, latest, earliest, partition_status)

        max_lag = family("kafka_consumergroup_group_max_lag", ("cluster_name", "group", "is_simple_consumer"))
        max_lag_seconds = family("kafka_consumergroup_group_max_lag_seconds", ("cluster_name", "group", "is_simple_consumer"))
        sum_lag = family("kafka_consumergroup_group_sum_lag", ("cluster_name", "group"))
        topic_sum_lag = family("kafka_consumergroup_group_topic_sum_lag", ("cluster_name", "group", "topic"))
        info = family("loomctl_group_info", (*GROUP_LABELS, "state", "managed", "group_type"))
        group_status = family("loomctl_group_status_code", (*GROUP_LABELS, "status"))
        members = family("loomctl_group_members", GROUP_LABELS)
        partitions = family("loomctl_group_partitions", GROUP_LABELS)
        topic_labels = ("cluster_name", "group", "topic")
        topic_status = family("loomctl_group_topic_status_code", (*topic_labels, "status"))
        without_commit = family("loomctl_group_topic_partitions_without_commit", topic_labels)
        lost = family("loomctl_group_topic_lost_records", topic_labels)
        topic_max_lag = family("loomctl_group_topic_max_lag", topic_labels)
        topic_max_lag_seconds = family("loomctl_group_topic_max_lag_seconds", topic_labels)
        slo_seconds = family("loomctl_group_lag_slo_seconds", GROUP_LABELS)
        slo_state = family("loomctl_group_slo_state_code", (*GROUP_LABELS, "slo_state"))
        catch_up = family("loomctl_group_catch_up_seconds", GROUP_LABELS)
        catch_up_never = family("loomctl_group_catch_up_never", GROUP_LABELS)
        breach_in = family("loomctl_group_breach_in_seconds", GROUP_LABELS)
        partition_catch_up = family("loomctl_partition_catch_up_seconds", PARTITION_LABELS[:4])
        evidence_of: dict[str, list[tuple[Any, WindowEvidence]]] = {}
        for key, e in sorted(snap.evidence.items()):
            evidence_of.setdefault(key[0], []).append((key, e))
        for group_id in sorted(snap.groups):
            g = snap.groups[group_id]
            rows = by_group.get(group_id, [])
            group_labels = [cluster, group_id, _label(g.service_name), _label(g.profile)]
            simple = "true" if g.member_count == 0 else "false"
            info.add_metric([*group_labels, g.group_state, "true" if g.service_name else "false", g.group_type or ""], 1)
            status = worst(r.status for r in rows)
            group_status.add_metric([*group_labels, status_name(status)], status_code(status))
            members.add_metric(group_labels, g.member_count)
            partitions.add_metric(group_labels, len(rows))
            group_max = max_known(r.lag for r in rows)
            if group_max is not None:
                max_lag.add_metric([cluster, group_id, simple], group_max)
                sum_lag.add_metric([cluster, group_id], sum_known(r.lag for r in rows) or 0)
            group_max_ms = max_known(r.time_lag_ms for r in rows)
            if group_max_ms is not None:
                max_lag_seconds.add_metric([cluster, group_id, simple], group_max_ms / 1000)
            window = evidence_of.get(group_id, [])
            objective = next((e.lag_slo_seconds for _, e in window if e.lag_slo_seconds is not None), None)
            if objective is not None:
                predictions = [(key, slo.predict_partition(e.window_row(), objective)) for key, e in window]
                prediction = slo.predict_group(
                    [(f"{t}[{p}]", pred) for (_, t, p), pred in predictions], objective, snap.window.total_seconds()
                )
                slo_seconds.add_metric(group_labels, objective)
                slo_state.add_metric([*group_labels, prediction.slo_state], SLO_CODES.get(prediction.slo_state, -1))
                if prediction.catch_up_seconds is not None:
                    catch_up.add_metric(group_labels, prediction.catch_up_seconds)
                if prediction.catch_up_seconds is not None or prediction.catch_up_never:
                    catch_up_never.add_metric(group_labels, 1 if prediction.catch_up_never else 0)
                if prediction.breach_in_seconds is not None:
                    breach_in.add_metric(group_labels, prediction.breach_in_seconds)
                if per_partition:
                    for (_, t, p), pred in predictions:
                        if pred.catch_up_seconds is not None:
                            partition_catch_up.add_metric([cluster, group_id, t, str(p)], pred.catch_up_seconds)
            by_topic: dict[str, list[PartitionLag]] = {}
            for r in rows:
                by_topic.setdefault(r.topic_name, []).append(r)
            for topic, items in sorted(by_topic.items()):
                labels = [cluster, group_id, topic]
                topic_sum = sum_known(r.lag for r in items)
                if topic_sum is not None:
                    topic_sum_lag.add_metric(labels, topic_sum)
                worst_here = worst(r.status for r in items)
                topic_status.add_metric([*labels, status_name(worst_here)], status_code(worst_here))
                without_commit.add_metric(labels, sum(1 for r in items if r.committed_offset is None))
                lost.add_metric(labels, sum(r.lost_records for r in items))
                if not per_partition:
                    topic_max = max_known(r.lag for r in items)
                    if topic_max is not None:
                        topic_max_lag.add_metric(labels, topic_max)
                    topic_max_ms = max_known(r.time_lag_ms for r in items)
                    if topic_max_ms is not None:
                        topic_max_lag_seconds.add_metric(labels, topic_max_ms / 1000)
        yield from (
            max_lag,
            max_lag_seconds,
            sum_lag,
            topic_sum_lag,
            info,
            group_status,
            members,
            partitions,
            topic_status,
            without_commit,
            lost,
            slo_seconds,
            slo_state,
            catch_up,
            catch_up_never,
            breach_in,
        )
        if per_partition:
            yield partition_catch_up
        if not per_partition:
            yield from (topic_max_lag, topic_max_lag_seconds)
        taken = family("loomctl_snapshot_timestamp_seconds", ("cluster_name",))
        taken.add_metric([cluster], snap.taken_at.timestamp())
        yield taken


class _HealthCollector:
    """The collector's health families, read at scrape time."""

    def __init__(self, exporter: Exporter) -> None:
        self.exporter = exporter

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        from loomctl import __version__

        e, h, now = self.exporter, self.exporter.health, time.time()
        labels = ["cluster_name"]
        value = [e.cluster_name]

        def gauge(name: str, v: float) -> Any:
            g = GaugeMetricFamily(name, HEALTH_METRICS[name], labels=labels)
            g.add_metric(value, v)
            return g

        def counter(name: str, v: float) -> Any:
            c = CounterMetricFamily(name, HEALTH_METRICS[name], labels=labels)
            c.add_metric(value, v)
            return c

        yield gauge("loomctl_collector_up", 1 if h.last_cycle_ok else 0)
        yield gauge("loomctl_collector_stale", 1 if e._stale(now, None) else 0)  # the scrape holds the exporter's lock
        yield gauge("loomctl_collector_writer", 1 if h.writer else 0)
        yield gauge("loomctl_collector_cycle_duration_seconds", h.last_cycle_duration_s)
        yield counter("loomctl_collector_cycles", h.cycles_total)
        yield counter("loomctl_collector_cycle_failures", h.failures_total)
        yield counter("loomctl_collector_snapshot_crashes", h.snapshot_crashes_total)
        if h.last_success_at is not None:
            yield gauge("loomctl_collector_last_success_timestamp_seconds", h.last_success_at)
        rendered = e._rendered
        if rendered:
            oldest = min(r.snapshot.taken_at.timestamp() for r in rendered.values())
            yield gauge("loomctl_collector_snapshot_age_seconds", max(now - oldest, 0.0))
        info = GaugeMetricFamily(
            "loomctl_collector_info", HEALTH_METRICS["loomctl_collector_info"], labels=["cluster_name", "granularity", "version"]
        )
        info.add_metric([e.cluster_name, e.granularity, __version__], 1)
        yield info

        # per cluster: every cluster that published or failed, until it is retired
        clusters = sorted(e._clusters.items())
        up = GaugeMetricFamily("loomctl_collector_cluster_up", HEALTH_METRICS["loomctl_collector_cluster_up"], labels=labels)
        stale = GaugeMetricFamily(
            "loomctl_collector_cluster_stale", HEALTH_METRICS["loomctl_collector_cluster_stale"], labels=labels
        )
        duration = GaugeMetricFamily(
            "loomctl_collector_cluster_cycle_duration_seconds",
            HEALTH_METRICS["loomctl_collector_cluster_cycle_duration_seconds"],
            labels=labels,
        )
        failures = CounterMetricFamily(
            "loomctl_collector_cluster_cycle_failures", HEALTH_METRICS["loomctl_collector_cluster_cycle_failures"], labels=labels
        )
        for name, c in clusters:
            up.add_metric([name], 1 if c.last_cycle_ok else 0)
            stale.add_metric([name], 1 if e._stale(now, name) else 0)
            duration.add_metric([name], c.last_cycle_duration_s)
            failures.add_metric([name], c.failures_total)
        yield from (up, stale, duration, failures)
