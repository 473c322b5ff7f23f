"""One exporter, several clusters: one exposition (each family once, each cluster's series under its name), each
cluster published, failed and retired on its own, and the Burrow API answering per cluster. Snapshots made here; the
HTTP endpoint and, where installed, Prometheus and promtool run for real. No PostgreSQL or Kafka needed."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import re
import shutil
import subprocess
import textwrap
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from support import free_port, wait_for
from test_burrow_api import Response, burrow

from loomctl.errors import BadInput
from loomctl.lag.exporter import DEFAULT_CLUSTER_NAME, Exporter, ExportSnapshot, GroupInfo, WindowEvidence, metric_names
from loomctl.lag.verdicts import STALE_AFTER_INTERVALS
from loomctl.lag.http import Api, MonitoringServer
from loomctl.lag.live import PartitionLag

NOW = dt.datetime.now(dt.timezone.utc)
"""Fresh: the exporter judges staleness by the wall clock."""
EU = "eu-main"
"""The exporter's cluster_name (--cluster-name): the default cluster's exported name."""


def row(group: str, topic: str, partition: int, committed: int | None, end: int, status: str = "OK") -> PartitionLag:
    return PartitionLag(service_name=f"{group}-svc", consumer_group_id=group, managed=True, group_state="Stable", topic_name=topic,
                        partition=partition, committed_offset=committed, log_start_offset=0, log_end_offset=end,
                        lag=None if committed is None else max(end - committed, 0), time_lag_ms=None, lost_records=0,
                        member_id="m-1", client_id="c-1", host="10.0.0.9", status=status)


def snap(cluster: str, group: str, topic: str, lag: int, *, brokers: tuple[str, ...] = ("b1:9092",),
         taken_at: dt.datetime = NOW) -> ExportSnapshot:
    """One group on one topic of two partitions, the first ``lag`` behind, the second caught up."""
    full = WindowEvidence(samples=30, first_offset=1, first_lag=lag, first_timestamp=taken_at - dt.timedelta(minutes=15),
                          last_offset=100 - lag, last_lag=lag, last_timestamp=taken_at)
    return ExportSnapshot(
        cluster_name=cluster, taken_at=taken_at, window=dt.timedelta(minutes=15), interval=dt.timedelta(seconds=30),
        groups={group: GroupInfo(group, f"{group}-svc", None, "Stable", 1, "classic")},
        partitions=[row(group, topic, 0, 100 - lag, 100, "WARN" if lag else "OK"), row(group, topic, 1, 50, 50)],
        evidence={(group, topic, 0): full}, brokers=list(brokers))


def two_clusters(granularity: str = "partition") -> Exporter:
    """The default cluster (exported as EU) reads "orders" on "o"; the registered cluster "us" reads "payments" on "p"."""
    exporter = Exporter(EU, granularity, interval=dt.timedelta(seconds=30))
    exporter.publish(snap(DEFAULT_CLUSTER_NAME, "orders", "o", 7, brokers=("eu1:9092",)), writer=True, duration_s=0.2)
    exporter.publish(snap("us", "payments", "p", 3, brokers=("us1:9092", "us2:9092")), writer=True, duration_s=0.3)
    return exporter


def parsed(text: str) -> dict[str, list[Any]]:
    """The families of an exposition by name; each name once (the parser yields a second family for a repeated one)."""
    families = list(text_string_to_metric_families(text))
    names = [f.name for f in families]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
    return {f.name: f.samples for f in families}


def by_cluster(samples: list[Any], **labels: str) -> dict[str, float]:
    return {s.labels["cluster_name"]: s.value for s in samples if all(s.labels.get(k) == v for k, v in labels.items())}


def promtool_accepts(text: str) -> None:
    """promtool's linter reads the text as Prometheus does: a family repeated is "second HELP line" and fails it."""
    promtool = shutil.which("promtool") or ("/usr/bin/promtool" if Path("/usr/bin/promtool").exists() else None)
    if promtool is None:
        return
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert "parsing error" not in result.stdout + result.stderr, result.stdout + result.stderr


# --- the exposition ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("granularity", ["partition", "topic"])
def test_two_clusters_make_one_exposition_each_family_once_each_series_under_its_cluster(granularity: str) -> None:
    exporter = two_clusters(granularity)
    text = exporter.metrics().decode()
    found = parsed(text)
    typed = re.findall(r"^# TYPE (\S+) ", text, flags=re.M)
    assert len(typed) == len(set(typed)) == len(re.findall(r"^# HELP ", text, flags=re.M)) == len(found)
    emitted = {s.name for samples in found.values() for s in samples}
    assert emitted <= set(metric_names(granularity)), emitted - set(metric_names(granularity))
    assert {n for n in metric_names(granularity) if n.startswith("loomctl_collector_cluster_")} <= emitted
    assert by_cluster(found["kafka_consumergroup_group_sum_lag"]) == {EU: 7.0, "us": 3.0}
    assert {s.labels["group"]: s.labels["cluster_name"] for s in found["loomctl_group_info"]} == {"orders": EU, "payments": "us"}
    assert set(by_cluster(found["loomctl_snapshot_timestamp_seconds"])) == {EU, "us"}
    assert by_cluster(found["loomctl_collector_cluster_up"]) == {EU: 1.0, "us": 1.0}
    assert by_cluster(found["loomctl_collector_cluster_stale"]) == {EU: 0.0, "us": 0.0}
    assert by_cluster(found["loomctl_collector_up"]) == {EU: 1.0}  # the collector's own series stay one, as before
    figures = [s for samples in found.values() for s in samples if "group" in s.labels or "topic" in s.labels]
    assert {s.labels["cluster_name"] for s in figures} == {EU, "us"}  # "default" never shows: it is called EU
    assert {(s.labels["cluster_name"], s.labels.get("topic", s.labels.get("group"))[0]) for s in figures} == {
        (EU, "o"), ("us", "p")}  # no series of one cluster under the other's name
    if granularity == "partition":
        assert by_cluster(found["kafka_partition_latest_offset"], partition="0") == {EU: 100.0, "us": 100.0}
    promtool_accepts(text)
    unzipped = parsed(gzip.decompress(exporter.metrics(compressed=True)).decode())
    assert list(unzipped) == list(found) and unzipped["loomctl_group_info"] == found["loomctl_group_info"]


def test_the_default_cluster_is_called_by_the_exporters_name_and_other_clusters_by_their_own() -> None:
    exporter = Exporter(EU)
    assert (exporter.exported_name(DEFAULT_CLUSTER_NAME), exporter.exported_name("us"), exporter.exported_name(EU)) == (EU, "us", EU)
    assert Exporter().exported_name(DEFAULT_CLUSTER_NAME) == DEFAULT_CLUSTER_NAME
    exporter.publish(snap(EU, "orders", "o", 1), writer=True, duration_s=0.1)  # today's collector names it so: the same cluster
    exporter.publish(snap(EU, "orders", "o", 2), writer=True, duration_s=0.1)
    assert list(exporter.snapshots()) == [EU] and exporter.snapshot is not None
    with pytest.raises(BadInput, match="both be exported as 'eu-main'"):  # "default" would overwrite the registered EU
        exporter.publish(snap(DEFAULT_CLUSTER_NAME, "orders", "o", 1), writer=True, duration_s=0.1)
    with pytest.raises(BadInput):
        exporter.publish(snap("a/b", "orders", "o", 1), writer=True, duration_s=0.1)  # not a Burrow path segment
    assert exporter.snapshots()[EU].partitions[0].lag == 2  # neither refusal changed what is served


def test_the_snapshot_property_is_the_default_clusters_or_the_only_ones() -> None:
    exporter = Exporter(EU)
    assert exporter.snapshot is None and exporter.snapshots() == {}
    exporter.publish(snap("us", "payments", "p", 3), writer=True, duration_s=0.1)
    assert exporter.snapshot is not None and exporter.snapshot.cluster_name == "us"  # the only one
    exporter.publish(snap("ap", "refunds", "r", 3), writer=True, duration_s=0.1)
    assert exporter.snapshot is None  # two, neither the default: no single answer
    exporter.publish(snap(DEFAULT_CLUSTER_NAME, "orders", "o", 7), writer=True, duration_s=0.1)
    assert exporter.snapshot is not None and exporter.snapshot.cluster_name == DEFAULT_CLUSTER_NAME
    assert list(exporter.snapshots()) == ["ap", EU, "us"]  # by exported name, sorted


def test_a_publish_replaces_its_own_clusters_figures_only() -> None:
    exporter = two_clusters()
    before = parsed(exporter.metrics().decode())
    later = NOW + dt.timedelta(seconds=30)
    exporter.publish(snap(DEFAULT_CLUSTER_NAME, "orders", "o", 40, taken_at=later), writer=True, duration_s=0.1)
    after = parsed(exporter.metrics().decode())
    assert by_cluster(after["kafka_consumergroup_group_sum_lag"]) == {EU: 40.0, "us": 3.0}
    stamps = by_cluster(after["loomctl_snapshot_timestamp_seconds"])
    assert stamps[EU] == later.timestamp() and stamps["us"] == by_cluster(before["loomctl_snapshot_timestamp_seconds"])["us"]
    assert [s for s in after["kafka_consumergroup_group_lag"] if s.labels["cluster_name"] == "us"] == [
        s for s in before["kafka_consumergroup_group_lag"] if s.labels["cluster_name"] == "us"]
    assert exporter.health.cycles_total == 3


def test_a_failed_cycle_of_one_cluster_makes_only_that_one_stale() -> None:
    exporter = two_clusters()
    assert exporter.ready() and not exporter.stale()
    exporter.failed("Kafka us: all brokers are down", duration_s=10.0, cluster="us")
    found = parsed(exporter.metrics().decode())
    assert by_cluster(found["loomctl_collector_cluster_up"]) == {EU: 1.0, "us": 0.0}
    assert by_cluster(found["loomctl_collector_cluster_stale"]) == {EU: 0.0, "us": 1.0}
    assert by_cluster(found["loomctl_collector_cluster_cycle_failures"]) == {EU: 0.0, "us": 1.0}
    assert by_cluster(found["loomctl_collector_cluster_cycle_duration_seconds"]) == {EU: 0.2, "us": 10.0}
    assert by_cluster(found["kafka_consumergroup_group_sum_lag"]) == {EU: 7.0, "us": 3.0}  # us's last good figures stay
    assert found["loomctl_collector_up"][0].value == 0.0 and found["loomctl_collector_stale"][0].value == 1.0
    assert exporter.stale(cluster="us") and not exporter.stale(cluster=DEFAULT_CLUSTER_NAME) and not exporter.stale(cluster=EU)
    assert exporter.stale() and not exporter.ready()  # us is served, and stale
    exporter.publish(snap("us", "payments", "p", 5), writer=True, duration_s=0.1)
    assert exporter.ready() and not exporter.stale()
    assert by_cluster(parsed(exporter.metrics().decode())["loomctl_collector_cluster_up"]) == {EU: 1.0, "us": 1.0}


def test_a_failure_of_the_whole_collector_makes_every_cluster_stale_until_it_publishes() -> None:
    exporter = two_clusters()
    exporter.failed("PostgreSQL is down", duration_s=5.0)
    found = parsed(exporter.metrics().decode())
    assert by_cluster(found["loomctl_collector_cluster_stale"]) == {EU: 1.0, "us": 1.0}
    assert found["loomctl_collector_up"][0].value == 0.0 and not exporter.ready()
    assert by_cluster(found["loomctl_collector_cluster_cycle_failures"]) == {EU: 0.0, "us": 0.0}  # not theirs
    exporter.publish(snap(DEFAULT_CLUSTER_NAME, "orders", "o", 7), writer=True, duration_s=0.1)
    assert exporter.stale(cluster="us") and not exporter.stale(cluster=EU) and not exporter.ready()
    exporter.publish(snap("us", "payments", "p", 3), writer=True, duration_s=0.1)
    assert exporter.ready() and parsed(exporter.metrics().decode())["loomctl_collector_up"][0].value == 1.0


def test_a_cluster_that_never_published_shows_down_without_figures_and_does_not_hold_readiness() -> None:
    exporter = two_clusters()
    exporter.failed("Kafka ap: no such host", duration_s=1.0, cluster="ap")
    found = parsed(exporter.metrics().decode())
    assert by_cluster(found["loomctl_collector_cluster_up"]) == {"ap": 0.0, EU: 1.0, "us": 1.0}
    assert by_cluster(found["loomctl_collector_cluster_stale"])["ap"] == 1.0
    assert "ap" not in by_cluster(found["loomctl_snapshot_timestamp_seconds"])  # unknown stays unknown: no figures
    assert exporter.ready() and exporter.stale()  # what is served is fresh; not everything the collector samples is
    exporter.retire("ap")
    assert not exporter.stale() and "ap" not in by_cluster(parsed(exporter.metrics().decode())["loomctl_collector_cluster_up"])


def test_a_retired_cluster_leaves_no_series() -> None:
    exporter = two_clusters()
    exporter.failed("Kafka us: timed out", duration_s=10.0, cluster="us")
    exporter.retire("us")
    text = exporter.metrics().decode()
    assert 'cluster_name="us"' not in text and "payments" not in text
    assert 'cluster_name="us"' not in gzip.decompress(exporter.metrics(compressed=True)).decode()
    found = parsed(text)
    assert by_cluster(found["kafka_consumergroup_group_sum_lag"]) == {EU: 7.0}
    assert list(exporter.snapshots()) == [EU] and exporter.ready() and not exporter.stale()  # us's failure went with it
    assert found["loomctl_collector_up"][0].value == 1.0
    exporter.retire("us")  # twice: nothing to do
    exporter.retire(DEFAULT_CLUSTER_NAME)  # the default cluster, by its own name
    assert exporter.snapshots() == {} and exporter.snapshot is None
    # nothing left to serve: ready while its last step is fresh, as a collector standing by is; not once it is stale
    last = exporter.health.last_success_at
    assert last is not None and exporter.ready() and not exporter.stale()
    late = last + STALE_AFTER_INTERVALS * 30 + 1
    assert not exporter.ready(now=late) and exporter.stale(now=late)
    assert not [f for f in parsed(exporter.metrics().decode()) if not f.startswith("loomctl_collector_")]
    promtool_accepts(exporter.metrics().decode())


def test_a_name_that_looks_like_a_family_header_stays_a_label_value() -> None:
    """The rendered lines are cut into families at "\\n# HELP ": a label value cannot hold a raw newline, so a group
    named like a header is one series of its cluster, not a family of its own."""
    odd = 'x\n# HELP kafka_consumergroup_group_lag forged\n# TYPE y gauge'
    exporter = two_clusters()
    exporter.publish(snap("us", odd, "p", 3), writer=True, duration_s=0.1)
    text = exporter.metrics().decode()
    found = parsed(text)
    assert {(s.labels["cluster_name"], s.labels["group"]) for s in found["kafka_consumergroup_group_sum_lag"]} == {
        (EU, "orders"), ("us", odd)}
    promtool_accepts(text)


def test_clusters_published_from_threads_of_their_own_while_scraped() -> None:
    """Each cluster's loop publishes from a thread of its own: no publish is lost, every scrape reads whole."""
    exporter = Exporter(EU)
    done = threading.Event()
    scrapes: list[str] = []

    def loop(cluster: str, group: str) -> None:
        for lag in range(1, 31):
            exporter.publish(snap(cluster, group, group[0], lag), writer=True, duration_s=0.01)

    def scraper() -> None:
        while not done.is_set():
            scrapes.append(exporter.metrics().decode())

    reader = threading.Thread(target=scraper)
    reader.start()
    loops = [threading.Thread(target=loop, args=args) for args in ((DEFAULT_CLUSTER_NAME, "orders"), ("us", "payments"), ("ap", "refunds"))]
    for t in loops:
        t.start()
    for t in loops:
        t.join()
    done.set()
    reader.join()
    assert by_cluster(parsed(exporter.metrics().decode())["kafka_consumergroup_group_sum_lag"]) == {"ap": 30.0, EU: 30.0, "us": 30.0}
    assert exporter.health.cycles_total == 90 and exporter.ready()
    for text in scrapes[:: max(len(scrapes) // 20, 1)]:
        parsed(text)


def test_the_scrape_copies_the_assembled_figures() -> None:
    """The figures are assembled when a cluster publishes: two scrapes between publishes give the same figures."""
    exporter = two_clusters()
    first, second = exporter.metrics(), exporter.metrics()
    assert first.split(b"# HELP loomctl_collector_up ")[0] == second.split(b"# HELP loomctl_collector_up ")[0]
    assert first.index(b"# HELP loomctl_collector_up ") > first.index(b'cluster_name="us"')  # health after all figures


# --- the Burrow API ---------------------------------------------------------------------------------------------------

def api_get(api: Api, path: str, kind: str, code: int = 200, message: str | None = None) -> Any:
    """The route's answer, checked against Burrow's v3 structs (test_burrow_api's schemas) and its request url."""
    status, content_type, body = api.get(path)
    answer = burrow(Response(status, {"Content-Type": content_type}, body), kind, code, message)
    assert answer["request"]["url"] == urllib.parse.unquote(path)
    return answer


def test_the_cluster_list_names_every_cluster_served_sorted() -> None:
    exporter = Exporter(EU)
    api = Api(exporter)
    assert api_get(api, "/v3/kafka", "clusters")["clusters"] == [EU]  # before a first cycle: the default cluster, empty
    assert api_get(api, f"/v3/kafka/{EU}/consumer", "consumers")["consumers"] == []
    exporter.publish(snap("us", "payments", "p", 3), writer=True, duration_s=0.1)
    assert api_get(api, "/v3/kafka", "clusters", message="cluster list returned")["clusters"] == ["us"]
    exporter.publish(snap(DEFAULT_CLUSTER_NAME, "orders", "o", 7), writer=True, duration_s=0.1)
    assert api_get(api, "/v3/kafka", "clusters")["clusters"] == [EU, "us"]
    exporter.retire("us")
    assert api_get(api, "/v3/kafka", "clusters")["clusters"] == [EU]
    api_get(api, "/v3/kafka/us", "error", 404, "cluster module not found")


def test_every_route_under_a_cluster_answers_from_that_clusters_snapshot() -> None:
    exporter = two_clusters()
    api = Api(exporter)
    for cluster, group, topic, lag, brokers in ((EU, "orders", "o", 7, ["eu1:9092"]), ("us", "payments", "p", 3, ["us1:9092", "us2:9092"])):
        module = api_get(api, f"/v3/kafka/{cluster}", "module", message="cluster module detail returned")["module"]
        assert module["servers"] == brokers and module["topic-refresh"] == 30
        assert api_get(api, f"/v3/kafka/{cluster}/topic", "topics")["topics"] == [topic]
        assert api_get(api, f"/v3/kafka/{cluster}/topic/{topic}", "offsets")["offsets"] == [100, 50]
        assert api_get(api, f"/v3/kafka/{cluster}/topic/{topic}/consumers", "consumers")["consumers"] == [group]
        assert api_get(api, f"/v3/kafka/{cluster}/consumer", "consumers")["consumers"] == [group]
        detail = api_get(api, f"/v3/kafka/{cluster}/consumer/{group}", "topics by consumer")["topics"]
        assert list(detail) == [topic] and [p["current-lag"] for p in detail[topic]] == [lag, 0]
        status = api_get(api, f"/v3/kafka/{cluster}/consumer/{group}/lag", "status", message="consumer status returned")["status"]
        assert (status["cluster"], status["group"], status["status"], status["totallag"]) == (cluster, group, "WARN", lag)
        assert [p["partition"] for p in api_get(api, f"/v3/kafka/{cluster}/consumer/{group}/status", "status")["status"]["partitions"]] == [0]
        # the other cluster's group and topic are not this cluster's
        other_group, other_topic = ("payments", "p") if cluster == EU else ("orders", "o")
        api_get(api, f"/v3/kafka/{cluster}/consumer/{other_group}", "error", 404, "cluster or consumer not found")
        api_get(api, f"/v3/kafka/{cluster}/topic/{other_topic}", "error", 404, "cluster or topic not found")
        assert api_get(api, f"/v3/kafka/{cluster}/topic/{other_topic}/consumers", "consumers")["consumers"] == []
        missing = api_get(api, f"/v3/kafka/{cluster}/consumer/{other_group}/lag", "status", 404)["status"]
        assert (missing["cluster"], missing["status"], missing["totallag"]) == (cluster, "NOTFOUND", 0)


def test_an_unknown_cluster_answers_burrows_404s() -> None:
    api = Api(two_clusters())
    for name in ("nowhere", DEFAULT_CLUSTER_NAME):  # "default" is served as EU: it has no name of its own here
        api_get(api, f"/v3/kafka/{name}", "error", 404, "cluster module not found")
        for suffix in ("topic", "consumer", "topic/o/consumers"):
            api_get(api, f"/v3/kafka/{name}/{suffix}", "error", 404, "cluster not found")
        api_get(api, f"/v3/kafka/{name}/topic/o", "error", 404, "cluster or topic not found")
        api_get(api, f"/v3/kafka/{name}/consumer/orders", "error", 404, "cluster or consumer not found")
        status = api_get(api, f"/v3/kafka/{name}/consumer/orders/lag", "status", 404)["status"]
        assert (status["cluster"], status["status"], status["partitions"], status["maxlag"]) == (name, "NOTFOUND", [], None)


def test_a_view_is_rebuilt_when_its_cluster_publishes_and_dropped_when_it_is_retired() -> None:
    exporter = two_clusters()
    api = Api(exporter)
    eu, us = api.view(EU), api.view("us")
    assert eu is not None and us is not None and api.view() is eu  # the default cluster's
    assert api.view(EU) is eu  # built once per snapshot
    exporter.publish(snap("us", "payments", "p", 9), writer=True, duration_s=0.1)
    assert api.view(EU) is eu and api.view("us") is not us
    assert api_get(api, "/v3/kafka/us/consumer/payments/lag", "status")["status"]["totallag"] == 9
    exporter.retire("us")
    assert api.view("us") is None and api.view(EU) is eu
    exporter.publish(snap(DEFAULT_CLUSTER_NAME, "orders", "o", 1), writer=True, duration_s=0.1)
    assert api.view(EU) is not eu and set(api._views) == {EU}


# --- over HTTP, and as Prometheus reads it ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    server = MonitoringServer(two_clusters(), "127.0.0.1", 0).start()
    try:
        yield server.address
    finally:
        server.close()


def http_get(address: str, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(f"http://{address}{path}", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as refused:
        return refused.code, dict(refused.headers), refused.read()


def test_the_endpoint_serves_both_clusters(served: str) -> None:
    code, _, body = http_get(served, "/v3/kafka")
    assert code == 200 and json.loads(body)["clusters"] == [EU, "us"]
    for cluster, group in ((EU, "orders"), ("us", "payments")):
        code, _, body = http_get(served, f"/v3/kafka/{cluster}/consumer/{group}/lag")
        assert code == 200 and json.loads(body)["status"]["cluster"] == cluster
    code, _, body = http_get(served, "/v3/kafka/nowhere/consumer")
    assert code == 404 and json.loads(body)["message"] == "cluster not found"
    code, _, plain = http_get(served, "/metrics")
    code_gz, headers, compressed = http_get(served, "/metrics", **{"Accept-Encoding": "gzip"})
    assert code == code_gz == 200 and headers["Content-Encoding"] == "gzip"
    for text in (plain.decode(), gzip.decompress(compressed).decode()):
        assert by_cluster(parsed(text)["kafka_consumergroup_group_sum_lag"]) == {EU: 7.0, "us": 3.0}
    assert http_get(served, "/readyz")[0] == 200


def test_prometheus_scrapes_both_clusters_from_one_target(served: str, tmp_path: Path) -> None:
    binary = shutil.which("prometheus") or ("/usr/bin/prometheus" if Path("/usr/bin/prometheus").exists() else None)
    if binary is None:
        pytest.skip("needs prometheus (scripts/install-system-deps.sh installs Debian's prometheus package)")
    config = tmp_path / "prometheus.yml"
    config.write_text(textwrap.dedent(f"""\
        global:
          scrape_interval: 1s
        scrape_configs:
          - job_name: loomctl
            static_configs:
              - targets: ["{served}"]
        """))
    address = f"127.0.0.1:{free_port()}"
    log = tmp_path / "prometheus.log"
    process = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address={address}",
         "--log.level=warn"], stdout=subprocess.DEVNULL, stderr=log.open("w"))

    def api(path: str, **params: str) -> Any:
        url = f"http://{address}/api/v1/{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.loads(response.read())["data"]

    def scraped() -> list[dict[str, Any]] | None:
        assert process.poll() is None, log.read_text()
        try:
            targets = [t for t in api("targets")["activeTargets"] if t["lastScrape"] > "0001-01-01T00:00:01Z"]
        except OSError:
            return None
        return targets or None

    try:
        [target] = wait_for("Prometheus to scrape the endpoint", scraped, timeout=60)
        assert (target["health"], target["lastError"]) == ("up", ""), target  # a repeated family fails the scrape here
        sums = wait_for("both clusters in Prometheus", lambda: (r := api("query", query="kafka_consumergroup_group_sum_lag")["result"])
                        and len(r) == 2 and r)
        assert {s["metric"]["cluster_name"]: float(s["value"][1]) for s in sums} == {EU: 7.0, "us": 3.0}
        up = api("query", query="loomctl_collector_cluster_up")["result"]
        assert {s["metric"]["cluster_name"]: s["value"][1] for s in up} == {EU: "1", "us": "1"}
        names = {s["__name__"] for s in api("series", **{"match[]": '{job="loomctl"}'})}
        assert {n for n in metric_names("partition") if n.startswith("loomctl_collector_")} <= names
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_a_collector_standing_by_is_up_and_fresh_with_nothing_to_serve() -> None:
    """Other collectors hold every share: a step that gave this one no group is a healthy one, not a failed cycle."""
    from loomctl.lag.exporter import Exporter

    exporter = Exporter(interval=dt.timedelta(seconds=30))
    assert exporter.stale() and not exporter.ready()  # before any step
    exporter.standing_by(writer=False, duration_s=0.01)
    text = exporter.metrics().decode()
    assert 'loomctl_collector_up{cluster_name="default"} 1.0' in text and 'loomctl_collector_stale{cluster_name="default"} 0.0' in text
    # ready: it does all it is asked (a readiness probe must not hold a standby out of service forever)
    assert not exporter.stale() and exporter.ready()
    assert not exporter.ready(now=time.time() + STALE_AFTER_INTERVALS * 30 + 1)  # a step that hangs ends it
    exporter.failed("PostgreSQL: gone", duration_s=0.01)
    assert exporter.stale() and not exporter.ready() and 'loomctl_collector_up{cluster_name="default"} 0.0' in exporter.metrics().decode()
