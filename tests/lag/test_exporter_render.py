"""The exporter writes its figures' exposition text itself (no metric or sample objects): byte for byte what
prometheus_client renders from the same families (:class:`_FiguresCollector`), whatever the names and figures, so
the fast path cannot drift from it. No PostgreSQL or Kafka needed."""

from __future__ import annotations

import datetime as dt
import math
import random

import pytest
from prometheus_client.parser import text_string_to_metric_families

from loomctl.lag.exporter import (
    DEFAULT_CLUSTER_NAME,
    Exporter,
    ExportSnapshot,
    GroupInfo,
    WindowEvidence,
    _FiguresCollector,
    render,
    render_figures,
)
from loomctl.lag.live import PartitionLag

NOW = dt.datetime(2026, 12, 1, 12, 0, 0, 123456, tzinfo=dt.timezone.utc)
TRICKY = ['q"uote', "back\\slash", "new\nline", "ünïcødé ☃ 日本", "", "tab\there", 'all\\"\n\\n', "{braces}=,", "ok"]
STATUSES = ["OK", "WARN", "ERR", "STOP", "STALL", "REWIND", "-", "NOTFOUND"]


def snapshot(seed: int, cluster: str = "eu") -> ExportSnapshot:
    """Groups and topics named trickily, figures of every size (0, big offsets, fractions of seconds), missing ones,
    statuses of every kind and windows that give SLO predictions (objectives on some groups only)."""
    rnd = random.Random(seed)
    groups: dict[str, GroupInfo] = {}
    rows: list[PartitionLag] = []
    evidence: dict[tuple[str, str, int], WindowEvidence] = {}
    for i, name in enumerate([*TRICKY, *(f"g{n}" for n in range(6))]):
        group = f"{name}-{i}" if i % 3 else name
        groups[group] = GroupInfo(group, rnd.choice([None, f"svc {name}"]), rnd.choice([None, "low-latency", 'p"x']),
                                  rnd.choice(["Stable", "Empty", "Dead", "Preparing\nRebalance"]), rnd.choice([0, 1, 3]),
                                  rnd.choice([None, "classic", "consumer"]))  # fmt: skip
        objective = rnd.choice([None, 30, 600])
        for topic in rnd.sample(TRICKY, 2):
            for partition in range(rnd.choice([1, 2, 4])):
                end = rnd.choice([0, 9, 10**6, 123456789, 2**53 + 1, 10**17])
                committed = rnd.choice([None, 0, max(end - rnd.choice([0, 5, 10**6]), 0)])
                start = rnd.choice([None, 0, 3])
                rows.append(PartitionLag(
                    service_name=groups[group].service_name, consumer_group_id=group, managed=True, group_state="Stable",
                    topic_name=topic, partition=partition, committed_offset=committed, log_start_offset=start,
                    log_end_offset=rnd.choice([None, end, end]), lag=None if committed is None else end - committed,
                    time_lag_ms=rnd.choice([None, 0, 1, 2500, 123456789]), lost_records=rnd.choice([0, 7]),
                    member_id=rnd.choice([None, TRICKY[rnd.randrange(len(TRICKY))]]), client_id=rnd.choice([None, "c-1", 'c"2']),
                    host=rnd.choice([None, "10.0.0.9", "/h\\st"]), status=rnd.choice(STATUSES)))  # fmt: skip
                if rnd.random() < 0.8:
                    first = rnd.choice([None, 0, 5])
                    evidence[(group, topic, partition)] = WindowEvidence(
                        samples=rnd.choice([0, 1, 30]), first_offset=first, first_lag=rnd.choice([None, 10, 100]),
                        first_timestamp=NOW - dt.timedelta(minutes=15), last_offset=rnd.choice([None, 50, 500]),
                        last_lag=rnd.choice([None, 0, 40]), last_timestamp=NOW, first_log_end_offset=rnd.choice([None, 20]),
                        log_end_offset=rnd.choice([None, 60, 900]), time_lag_ms=rnd.choice([None, 0, 4000, 90000]),
                        lag_slo_seconds=objective)  # fmt: skip
    rnd.shuffle(rows)
    return ExportSnapshot(cluster_name=cluster, taken_at=NOW, window=dt.timedelta(minutes=15), interval=dt.timedelta(seconds=30),
                          groups=groups, partitions=rows, evidence=evidence)  # fmt: skip


def reference(snap: ExportSnapshot, granularity: str, cluster: str | None = None) -> bytes:
    return render(_FiguresCollector(snap, granularity, cluster))


@pytest.mark.parametrize("granularity", ["partition", "topic"])
@pytest.mark.parametrize("seed", range(12))
def test_the_figures_text_is_prometheus_clients_byte_for_byte(seed: int, granularity: str) -> None:
    snap = snapshot(seed)
    text, spans = render_figures(snap, granularity, 'exp "name"\\')
    expected = reference(snap, granularity, 'exp "name"\\')
    assert text == expected
    # the spans cover the text, family after family, each starting at its header
    ends = 0
    for name, (start, head, end) in spans.items():
        assert start == ends and text.startswith(f"# HELP {name} ".encode(), start) and start < head <= end
        assert text[head:end].count(b"\n") == text[head:end].count(name.encode() + b"{")
        ends = end
    assert ends == len(text)


def test_the_snapshots_figures_have_predictions_and_every_value_parses_as_finite() -> None:
    """The snapshots above exercise the SLO families (so their lines are compared too); NaN and infinities never appear."""
    names: set[str] = set()
    for seed in range(12):
        for family in text_string_to_metric_families(render_figures(snapshot(seed), "partition")[0].decode()):
            for sample in family.samples:
                names.add(sample.name)
                assert math.isfinite(sample.value)
    assert {"loomctl_group_slo_state_code", "loomctl_partition_catch_up_seconds", "kafka_consumergroup_group_lag_seconds"} <= names


def test_the_empty_snapshot_gives_every_header() -> None:
    snap = ExportSnapshot(cluster_name="eu", taken_at=NOW, window=dt.timedelta(minutes=15), interval=dt.timedelta(seconds=30),
                          groups={}, partitions=[])  # fmt: skip
    for granularity in ("partition", "topic"):
        assert render_figures(snap, granularity)[0] == reference(snap, granularity)


def _reference_exposition(texts: dict[str, bytes]) -> bytes:
    """Each family's header once, then its samples, cluster by cluster (sorted): from prometheus_client's texts."""
    headers: dict[str, bytes] = {}
    samples: dict[str, dict[str, bytes]] = {}
    for cluster, text in texts.items():
        for family in text.split(b"\n# HELP "):
            family = family.removeprefix(b"# HELP ")
            family += b"" if family.endswith(b"\n") else b"\n"
            name = family[: family.index(b" ")].decode()
            head = family.index(b"\n", family.index(b"\n") + 1) + 1
            headers.setdefault(name, b"# HELP " + family[:head])
            samples.setdefault(name, {})[cluster] = family[head:]
    return b"".join(headers[n] + b"".join(samples[n].get(c, b"") for c in sorted(texts)) for n in headers)


@pytest.mark.parametrize("granularity", ["partition", "topic"])
def test_the_exposition_of_several_clusters_is_assembled_from_the_same_text(granularity: str) -> None:
    exporter = Exporter("eu-main", granularity)
    snaps = {"eu-main": snapshot(1, DEFAULT_CLUSTER_NAME), "us": snapshot(2, "us"), "ap\\ü": snapshot(3, "ap\\ü")}
    texts: dict[str, bytes] = {}
    for name, snap in snaps.items():
        exporter.publish(snap, writer=True, duration_s=0.1)
        texts[name] = reference(snap, granularity, name)
        figures = exporter.metrics().split(b"# HELP loomctl_collector_up ")[0]
        assert figures == _reference_exposition(texts)
    exporter.retire("us")
    del texts["us"]
    assert exporter.metrics().split(b"# HELP loomctl_collector_up ")[0] == _reference_exposition(texts)
    exporter.retire("ap\\ü")
    assert exporter.metrics().split(b"# HELP loomctl_collector_up ")[0] == texts["eu-main"]
