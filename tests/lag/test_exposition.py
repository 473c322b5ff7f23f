"""The exporter's figures without services: exposition, escaping, statuses, staleness and the Burrow objects."""

from __future__ import annotations

import datetime as dt
import gzip

import pytest
from prometheus_client.parser import text_string_to_metric_families

from loomctl.errors import BadInput
from loomctl.lag.exporter import ExportSnapshot, Exporter, GroupInfo, metric_names
from loomctl.lag.http import Api, group_status, parse_listen
from loomctl.lag.live import PartitionLag

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.timezone.utc)
ODD_GROUP = 'odd "group"\\with\nnewline'


def row(group: str, partition: int, committed: int | None, end: int, status: str, **extra: object) -> PartitionLag:
    values: dict[str, object] = dict(
        service_name="svc", consumer_group_id=group, managed=True, group_state="Stable", topic_name="t", partition=partition,
        committed_offset=committed, log_start_offset=0, log_end_offset=end,
        lag=None if committed is None else max(end - committed, 0), time_lag_ms=None, lost_records=0,
        member_id="m-1", client_id="c-1", host="10.0.0.9", status=status)
    values.update(extra)
    return PartitionLag(**values)  # type: ignore[arg-type]


def snapshot() -> ExportSnapshot:
    return ExportSnapshot(
        cluster_name="eu", taken_at=NOW, window=dt.timedelta(minutes=15), interval=dt.timedelta(seconds=30),
        groups={ODD_GROUP: GroupInfo(ODD_GROUP, "svc", "low-latency", "Stable", 1), "quiet": GroupInfo("quiet", None, None, "Empty", 0)},
        partitions=[row(ODD_GROUP, 0, 5, 9, "-", time_lag_ms=2500), row(ODD_GROUP, 1, None, 4, "ERR")],
    )


def families(exporter: Exporter) -> dict[str, list]:
    return {f.name: f.samples for f in text_string_to_metric_families(exporter.metrics().decode())}


def test_label_values_are_escaped_and_read_back() -> None:
    exporter = Exporter("eu")
    exporter.publish(snapshot(), writer=True, duration_s=0.5)
    lag = families(exporter)["kafka_consumergroup_group_lag"]
    assert [(s.labels["group"], s.labels["partition"], s.value) for s in lag] == [(ODD_GROUP, "0", 4.0)]
    assert lag[0].labels["member_host"] == "10.0.0.9" and lag[0].labels["consumer_id"] == "m-1"


def test_a_status_without_history_is_unknown_and_a_group_without_partitions_has_no_lag() -> None:
    exporter = Exporter("eu")
    exporter.publish(snapshot(), writer=True, duration_s=0.5)
    found = families(exporter)
    statuses = {(s.labels["partition"], s.labels["status"]): s.value for s in found["loomctl_partition_status_code"]}
    assert statuses == {("0", "UNKNOWN"): -1.0, ("1", "ERR"): 3.0}
    group = {s.labels["group"]: (s.labels["status"], s.value) for s in found["loomctl_group_status_code"]}
    assert group == {ODD_GROUP: ("ERR", 3.0), "quiet": ("UNKNOWN", -1.0)}
    assert [s.labels["group"] for s in found["kafka_consumergroup_group_sum_lag"]] == [ODD_GROUP]  # "quiet" knows no lag
    assert [s.value for s in found["kafka_consumergroup_group_lag_seconds"]] == [2.5]
    assert {s.labels["group"]: s.labels["profile"] for s in found["loomctl_group_info"]} == {ODD_GROUP: "low-latency", "quiet": ""}


def test_a_failed_cycle_keeps_the_figures_and_says_so() -> None:
    exporter = Exporter("eu", interval=dt.timedelta(seconds=30))
    assert not exporter.ready() and exporter.stale()
    exporter.publish(snapshot(), writer=False, duration_s=0.5)
    assert exporter.ready()
    exporter.failed("Kafka: all brokers are down", duration_s=10.0)
    found = families(exporter)
    assert found["loomctl_collector_up"][0].value == 0.0 and found["loomctl_collector_stale"][0].value == 1.0
    assert found["loomctl_collector_cycle_failures"][0].value == 1.0 and found["loomctl_collector_writer"][0].value == 0.0
    assert found["kafka_consumergroup_group_lag"][0].value == 4.0
    assert not exporter.ready()


def test_a_gzip_exposition_is_two_members_that_read_as_one() -> None:
    exporter = Exporter("eu")
    exporter.publish(snapshot(), writer=True, duration_s=0.5)
    text = gzip.decompress(exporter.metrics(compressed=True)).decode()
    assert text.count("# TYPE kafka_consumergroup_group_lag gauge") == 1 and "loomctl_collector_up" in text


def test_topic_granularity_names() -> None:
    exporter = Exporter("eu", "topic")
    exporter.publish(snapshot(), writer=True, duration_s=0.5)
    text = exporter.metrics().decode()
    assert 'partition="' not in text
    emitted = {s.name for f in text_string_to_metric_families(text) for s in f.samples}
    assert emitted <= set(metric_names("topic"))


def test_burrow_objects() -> None:
    snap = snapshot()
    # neither partition has a verdict Burrow knows (no stored window yet; never committed): NOTFOUND, never a lag of 0
    assert group_status(snap, ODD_GROUP, show_all=True) is None
    assert group_status(snap, "quiet", show_all=False) is None  # nothing to judge: Burrow's NOTFOUND
    exporter = Exporter("eu")
    exporter.publish(snap, writer=True, duration_s=0.1)
    code, _, body = Api(exporter).get("/v3/kafka/eu/consumer/odd%20%22group%22%5Cwith%0Anewline/lag")
    assert code == 404 and b'"status":"NOTFOUND"' in body and b'"group":"odd \\"group\\"\\\\with\\nnewline"' in body


@pytest.mark.parametrize(("text", "parsed"), [("127.0.0.1:9308", ("127.0.0.1", 9308)), ("[::1]:0", ("::1", 0)),
                                              ("0.0.0.0:80", ("0.0.0.0", 80)), ("localhost:65535", ("localhost", 65535))])
def test_listen_addresses(text: str, parsed: tuple[str, int]) -> None:
    assert parse_listen(text) == parsed


@pytest.mark.parametrize("text", ["9308", "host", ":9308", "host:", "host:65536", "host:-1", "ho st:1", "host:١٢"])
def test_bad_listen_addresses(text: str) -> None:
    with pytest.raises(BadInput):
        parse_listen(text)


@pytest.mark.parametrize("name", ["", "a/b", "tab\there"])
def test_bad_cluster_names(name: str) -> None:
    with pytest.raises(BadInput):
        Exporter(name)
