"""What the collector's last completed cycle saw, as Prometheus metrics (`lag collect --listen`).

The collector publishes one :class:`ExportSnapshot` per cycle; the exposition text of its figures is
rendered then, once, so a scrape copies bytes from memory and only the collector's health (which
changes between cycles: the age of the figures, whether the last cycle failed) is rendered per scrape.
A scrape never calls Kafka or PostgreSQL.

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
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loomctl.lag import slo
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


@dataclass(frozen=True)
class GroupInfo:
    """A group as the cycle saw it, with the service and profile of the config that owns it (if any)."""

    consumer_group_id: str
    service_name: str | None
    profile: str | None
    group_state: str
    member_count: int
    group_type: str | None = None
    """classic or consumer (KIP-848) as the broker describes the group."""


@dataclass(frozen=True)
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
    """Everything one completed cycle saw: what /metrics and the Burrow API serve until the next one."""

    cluster_name: str
    taken_at: dt.datetime
    window: dt.timedelta
    interval: dt.timedelta
    groups: dict[str, GroupInfo]
    partitions: list["PartitionLag"]
    evidence: dict["Key", WindowEvidence] = field(default_factory=dict)
    brokers: list[str] = field(default_factory=list)
    """The cluster's brokers ("host:port") as the cycle's metadata named them (the Burrow API's ``servers``)."""

    def partitions_of(self, group_id: str) -> list["PartitionLag"]:
        return [p for p in self.partitions if p.consumer_group_id == group_id]

    def group_status(self, group_id: str) -> str:
        """The group's worst partition status, as `lag show` rolls it up ("-" without partitions)."""
        return worst(p.status for p in self.partitions_of(group_id))


def evidence_from(rows: Iterable[dict[str, Any]]) -> dict["Key", WindowEvidence]:
    """The rows of ``lag_partition_status`` as evidence per partition."""
    return {
        (r["consumer_group_id"], r["topic_name"], r["partition"]): WindowEvidence(
            samples=r["samples"],
            first_offset=r["first_committed_offset"],
            first_lag=r["first_lag"],
            first_timestamp=r["first_timestamp"],
            last_offset=r["last_committed_offset"],
            last_lag=r["last_lag"],
            last_timestamp=r["last_timestamp"],
            first_log_end_offset=r.get("first_log_end_offset"),
            log_end_offset=r.get("log_end_offset"),
            time_lag_ms=r.get("time_lag_ms"),
            lag_slo_seconds=r.get("lag_slo_seconds"),
        )
        for r in rows
    }


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


class Exporter:
    """The latest snapshot and the collector's health, shared by the cycle (writer) and the HTTP server (readers)."""

    def __init__(
        self,
        cluster_name: str = DEFAULT_CLUSTER_NAME,
        granularity: str = "partition",
        interval: dt.timedelta = dt.timedelta(seconds=30),
    ) -> None:
        from loomctl.errors import BadInput

        if granularity not in GRANULARITIES:
            raise BadInput(f"--granularity {granularity}: choose {' or '.join(GRANULARITIES)}")
        if not cluster_name or not cluster_name.isprintable() or "/" in cluster_name:
            raise BadInput("--cluster-name: a non-empty printable name without '/'")
        self.cluster_name = cluster_name
        self.granularity = granularity
        self.interval = interval
        self.health = CollectorHealth()
        self._lock = threading.Lock()
        self._snapshot: ExportSnapshot | None = None
        self._figures = b""
        self._figures_gzip: bytes | None = None
        """The figures gzipped, once per cycle."""

    @property
    def snapshot(self) -> ExportSnapshot | None:
        return self._snapshot

    def publish(self, snapshot: ExportSnapshot, *, writer: bool, duration_s: float) -> None:
        """A completed cycle: its figures replace the last ones."""
        import gzip

        figures = render(_FiguresCollector(snapshot, self.granularity))
        compressed = gzip.compress(figures, compresslevel=1)  # Prometheus asks for gzip: done here, not per scrape
        with self._lock:
            self._snapshot, self._figures, self._figures_gzip = snapshot, figures, compressed
            h = self.health
            h.cycles_total += 1
            h.last_cycle_ok, h.last_cycle_duration_s, h.last_success_at = True, duration_s, time.time()
            h.last_error, h.writer = None, writer

    def failed(self, error: str, *, duration_s: float) -> None:
        """A failed cycle: the last good figures stay, the health says they are stale."""
        with self._lock:
            h = self.health
            h.cycles_total += 1
            h.failures_total += 1
            h.last_cycle_ok, h.last_cycle_duration_s, h.last_error = False, duration_s, error

    def snapshot_crashed(self) -> None:
        """The snapshot's child process died (counted beside the cycle's failure)."""
        with self._lock:
            self.health.snapshot_crashes_total += 1

    def stale(self, now: float | None = None) -> bool:
        h = self.health
        if h.last_success_at is None or not h.last_cycle_ok:
            return True
        return (now or time.time()) - h.last_success_at > STALE_AFTER_INTERVALS * max(self.interval.total_seconds(), 1.0)

    def ready(self) -> bool:
        """Serving figures that are not stale."""
        return self._snapshot is not None and not self.stale()

    def metrics(self, *, compressed: bool = False) -> bytes:
        """The exposition text: the last cycle's figures (rendered when published) and the health, now.

        ``compressed``: gzip, as two members (RFC 1952 allows a stream of them; Prometheus reads it), so the
        figures are compressed once per cycle and only the health per scrape.
        """
        import gzip

        with self._lock:
            health = render(_HealthCollector(self))
            if not compressed:
                return self._figures + health
            figures = self._figures_gzip if self._figures_gzip is not None else gzip.compress(b"")
            return figures + gzip.compress(health, compresslevel=1)


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
    "loomctl_collector_up": "1 when the collector's last cycle succeeded, 0 when it failed (the figures served are the last good ones).",
    "loomctl_collector_stale": "1 when the figures served are not from a cycle that just succeeded (a failure, or older than 3 intervals).",
    "loomctl_collector_writer": "1 when this collector holds the writer lock, 0 when it stands by (it serves its own snapshots).",
    "loomctl_collector_cycle_duration_seconds": "How long the last cycle took.",
    "loomctl_collector_cycles": "Cycles run since start.",
    "loomctl_collector_cycle_failures": "Cycles that failed since start.",
    "loomctl_collector_snapshot_crashes": "Times the snapshot's Kafka client process died (a librdkafka abort or crash) since start.",
    "loomctl_collector_last_success_timestamp_seconds": "When the last cycle succeeded (Unix time).",
    "loomctl_collector_snapshot_age_seconds": "Age of the figures served.",
    "loomctl_collector_info": "1, with the collector's cluster name, granularity and version.",
}
HEALTH_COUNTERS = ("loomctl_collector_cycles", "loomctl_collector_cycle_failures", "loomctl_collector_snapshot_crashes")


def _label(value: Any) -> str:
    return "" if value is None else str(value)


class _FiguresCollector:
    """The snapshot's families; built once per cycle."""

    def __init__(self, snapshot: ExportSnapshot, granularity: str) -> None:
        self.snapshot = snapshot
        self.granularity = granularity

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        snap = self.snapshot
        cluster = snap.cluster_name
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
        yield gauge("loomctl_collector_stale", 1 if e.stale(now) else 0)
        yield gauge("loomctl_collector_writer", 1 if h.writer else 0)
        yield gauge("loomctl_collector_cycle_duration_seconds", h.last_cycle_duration_s)
        yield counter("loomctl_collector_cycles", h.cycles_total)
        yield counter("loomctl_collector_cycle_failures", h.failures_total)
        yield counter("loomctl_collector_snapshot_crashes", h.snapshot_crashes_total)
        if h.last_success_at is not None:
            yield gauge("loomctl_collector_last_success_timestamp_seconds", h.last_success_at)
        if e.snapshot is not None:
            yield gauge("loomctl_collector_snapshot_age_seconds", max(now - e.snapshot.taken_at.timestamp(), 0.0))
        info = GaugeMetricFamily(
            "loomctl_collector_info", HEALTH_METRICS["loomctl_collector_info"], labels=["cluster_name", "granularity", "version"]
        )
        info.add_metric([e.cluster_name, e.granularity, __version__], 1)
        yield info
