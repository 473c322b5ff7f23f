"""`lag collect --listen`: /metrics as kafka-lag-exporter names it, plus loomctl's own series, from a real collector."""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest

from served import RunningCollector, start_collector
from support import Cli, free_port, wait_for
from loomctl.lag.exporter import BURROW_CODES, PARTITION_LABELS, metric_names

pytestmark = pytest.mark.integration


def test_partition_series_carry_kafka_lag_exporters_labels_and_the_lag_of_lag_show(served_collector, known_groups, served_db, services) -> None:
    lag = served_collector.series("kafka_consumergroup_group_lag", group=known_groups.stop_group)
    assert {s.labels["partition"]: s.value for s in lag} == {"0": 15.0, "1": 15.0}  # log end 20, committed 5
    assert all(set(s.labels) == set(PARTITION_LABELS) and s.labels["cluster_name"] == "pipeline-eu" for s in lag)
    assert all(s.labels["member_host"] == s.labels["consumer_id"] == s.labels["client_id"] == "" for s in lag)  # nobody owns them

    rows = Cli(served_db, services.bootstrap_servers).json("lag", "show", "--group", known_groups.stop_group)
    assert {str(r["partition"]): r["lag"] for r in rows} == {s.labels["partition"]: s.value for s in lag}
    offsets = served_collector.series("kafka_consumergroup_group_offset", group=known_groups.stop_group)
    assert {s.labels["partition"]: s.value for s in offsets} == {"0": 5.0, "1": 5.0}
    assert {s.labels["partition"]: s.value for s in served_collector.series("kafka_partition_latest_offset", topic=known_groups.stop_topic)} == {"0": 20.0, "1": 20.0}
    assert {s.labels["partition"]: s.value for s in served_collector.series("kafka_partition_earliest_offset", topic=known_groups.stop_topic)} == {"0": 8.0, "1": 0.0}
    assert served_collector.value("kafka_consumergroup_group_sum_lag", group=known_groups.stop_group) == 30.0
    assert served_collector.value("kafka_consumergroup_group_max_lag", group=known_groups.stop_group, is_simple_consumer="true") == 15.0
    assert served_collector.value("kafka_consumergroup_group_topic_sum_lag", group=known_groups.stop_group, topic=known_groups.stop_topic) == 30.0
    seconds = served_collector.series("kafka_consumergroup_group_lag_seconds", group=known_groups.ok_group)
    assert [s.value for s in seconds] == [0.0, 0.0]  # caught up: 0 s behind


def test_statuses_members_lost_records_and_the_owning_config(served_collector, known_groups) -> None:
    stop = served_collector.series("loomctl_group_status_code", group=known_groups.stop_group)
    assert [(s.labels["status"], s.value, s.labels["service"], s.labels["profile"]) for s in stop] == [
        ("STOP", BURROW_CODES["STOP"], known_groups.stop_service, known_groups.profile)]
    ok = served_collector.series("loomctl_group_status_code", group=known_groups.ok_group)
    assert [(s.labels["status"], s.value, s.labels["profile"]) for s in ok] == [("OK", 1.0, "")]
    assert {(s.labels["partition"], s.labels["status"]) for s in served_collector.series("loomctl_partition_status_code", group=known_groups.stop_group)} == {
        ("0", "STOP"), ("1", "STOP")}
    assert served_collector.value("loomctl_group_topic_lost_records", group=known_groups.stop_group, topic=known_groups.stop_topic) == 3.0
    assert served_collector.value("loomctl_group_topic_lost_records", group=known_groups.ok_group, topic=known_groups.ok_topic) == 0.0
    assert served_collector.value("loomctl_group_members", group=known_groups.stop_group) == 0.0
    [info] = served_collector.series("loomctl_group_info", group=known_groups.stop_group)
    assert (info.labels["state"], info.labels["managed"], info.labels["service"]) == ("Empty", "true", known_groups.stop_service)
    assert info.labels["group_type"] == "classic"  # offsets committed by a classic member


def test_a_partition_without_a_commit_is_counted_never_reported_as_lag_0(served_collector, known_groups) -> None:
    lag = served_collector.series("kafka_consumergroup_group_lag", group=known_groups.partial_group)
    assert {s.labels["partition"]: s.value for s in lag} == {"0": 4.0}  # partition 1 has no lag series at all
    assert served_collector.series("kafka_consumergroup_group_offset", group=known_groups.partial_group, partition="1") == []
    assert served_collector.value("loomctl_group_topic_partitions_without_commit", group=known_groups.partial_group, topic=known_groups.partial_topic) == 1.0
    assert served_collector.value("loomctl_group_topic_partitions_without_commit", group=known_groups.ok_group, topic=known_groups.ok_topic) == 0.0
    assert served_collector.value("loomctl_partition_status_code", group=known_groups.partial_group, partition="1", status="ERR") == 3.0


def test_the_collectors_health_and_every_family_is_a_documented_name(served_collector) -> None:
    samples = served_collector.samples()
    by_name = {s.name: s for s in samples if not s.labels.get("group")}
    assert by_name["loomctl_collector_up"].value == 1.0
    assert by_name["loomctl_collector_stale"].value == 0.0
    assert by_name["loomctl_collector_writer"].value == 1.0  # its own database: it holds the writer lock
    assert by_name["loomctl_collector_cycle_failures_total"].value == 0.0
    assert by_name["loomctl_collector_cycles_total"].value >= 2
    assert 0 < by_name["loomctl_collector_cycle_duration_seconds"].value < 10
    assert abs(by_name["loomctl_collector_last_success_timestamp_seconds"].value - time.time()) < 30
    assert by_name["loomctl_collector_info"].labels == {"cluster_name": "pipeline-eu", "granularity": "partition", "version": "0.1.0"}
    emitted = {s.name for s in samples}
    assert emitted <= set(metric_names("partition")), emitted - set(metric_names("partition"))
    assert emitted == set(metric_names("partition"))  # every name is emitted here: none is dead documentation
    assert all(s.labels["cluster_name"] == "pipeline-eu" for s in samples)


def test_two_collectors_share_the_groups_and_serve_each_once(served_collector, served_db, services, known_groups, tmp_path) -> None:
    """Prometheus scraping both collectors sees each group's series once: each serves the groups it samples."""
    groups = [known_groups.ok_group, known_groups.stop_group, known_groups.never_ran_group, known_groups.partial_group]
    log = tmp_path / "second.log"
    second = start_collector(served_db, services.bootstrap_servers, log, "--cluster-name", "pipeline-eu")
    both = (served_collector, second)

    def servers(group: str) -> list[Any]:
        return [c for c in both if c.series("loomctl_group_info", group=group)]

    try:
        wait_for("the shares to split", lambda: "(2 collector(s))" in log.read_text())
        wait_for("each group served by exactly one collector", lambda: all(len(servers(g)) == 1 for g in groups))
        [owner] = servers(known_groups.stop_group)
        lag = owner.series("kafka_consumergroup_group_lag", group=known_groups.stop_group)
        assert {s.labels["partition"]: s.value for s in lag} == {"0": 15.0, "1": 15.0}
        assert owner.value("loomctl_group_status_code", group=known_groups.stop_group, status="STOP") == 4.0
        assert sorted(c.value("loomctl_collector_writer") for c in both) == [0.0, 1.0]  # one keeps the house
        assert all(c.value("loomctl_collector_up") == 1.0 for c in both)
    finally:
        second.stop()
    wait_for("the first to serve every group again",
             lambda: all(served_collector.series("loomctl_group_info", group=g) for g in groups))


def test_granularity_topic_emits_no_partition_label(twin_db, services, known_groups, tmp_path) -> None:
    per_topic = start_collector(twin_db, services.bootstrap_servers, tmp_path / "topic.log", "--granularity", "topic")
    try:
        # its database's window fills as it samples: every family once the window holds a breach prediction
        samples = wait_for("every topic family", lambda: (found := per_topic.samples())
                           and {s.name for s in found} == set(metric_names("topic")) and found)
        assert not [s for s in samples if "partition" in s.labels]
        assert per_topic.value("kafka_consumergroup_group_topic_sum_lag", group=known_groups.stop_group, topic=known_groups.stop_topic) == 30.0
        assert per_topic.value("loomctl_group_topic_max_lag", group=known_groups.stop_group, topic=known_groups.stop_topic) == 15.0
        assert per_topic.value("loomctl_group_topic_status_code", group=known_groups.stop_group, topic=known_groups.stop_topic, status="STOP") == 4.0
    finally:
        per_topic.stop()


def test_the_endpoint_binds_only_where_told(twin_db, services, known_groups, tmp_path) -> None:
    port = free_port()
    bound = start_collector(twin_db, services.bootstrap_servers, tmp_path / "bound.log", listen=f"127.0.0.1:{port}")
    try:
        assert bound.get("/healthz").status == 200
        for elsewhere in ("127.0.0.2", *_other_addresses()):  # another loopback address, the machine's own addresses
            with socket.socket() as s:
                s.settimeout(2)
                assert s.connect_ex((elsewhere, port)) != 0, f"{elsewhere}:{port} answered"
    finally:
        bound.stop()


def _other_addresses() -> list[str]:
    """The machine's non-loopback IPv4 address, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))  # UDP: nothing is sent; the kernel picks the outgoing address
            address = s.getsockname()[0]
        except OSError:
            return []
    return [] if address.startswith("127.") else [address]


def test_without_listen_nothing_is_bound_and_bad_listen_values_are_refused(served_db, services) -> None:
    cli = Cli(served_db, services.bootstrap_servers)
    for bad in ("nonsense", "127.0.0.1:99999", "127.0.0.1:", ":9308", "127.0.0.1:12a"):
        result = cli("lag", "collect", "--once", "--listen", bad)
        assert result.exit_code == 2 and "--listen" in result.output and "Traceback" not in result.output, result.output
    for bad in (["--granularity", "group"], ["--window", "forever"], ["--cluster-name", "a/b"]):
        result = cli("lag", "collect", "--once", "--listen", "127.0.0.1:0", *bad)
        assert result.exit_code == 2 and "Traceback" not in result.output, (bad, result.output)


def test_a_port_in_use_fails_in_one_line(served_db, services, known_groups, served_collector) -> None:
    result = Cli(served_db, services.bootstrap_servers)("lag", "collect", "--once", "--listen", served_collector.address)
    assert result.exit_code == 1 and f"cannot listen on {served_collector.address}" in result.output, result.output


def test_a_bare_listen_binds_the_default_address(twin_db, services, known_groups, tmp_path) -> None:
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", 9308)) == 0:
            pytest.skip("127.0.0.1:9308 is taken on this machine")
    import subprocess
    import sys

    log = tmp_path / "bare.log"
    process = subprocess.Popen([sys.executable, "-m", "loomctl", "--database-url", twin_db, "--bootstrap-servers",
                                services.bootstrap_servers, "lag", "collect", "--interval", "1s", "--listen"],
                               stdout=subprocess.DEVNULL, stderr=log.open("w"))
    bare = RunningCollector(process, "127.0.0.1:9308", log)
    try:
        wait_for("the default address", lambda: "serving http://127.0.0.1:9308/metrics" in log.read_text())
        assert bare.get("/healthz").status == 200
    finally:
        bare.stop()


@pytest.mark.slow
def test_with_the_broker_stopped_a_scrape_answers_at_once_with_the_last_figures(database_factory, tmp_path_factory, tmp_path) -> None:
    from served import make_groups
    from support import own_database, private_broker

    with own_database(database_factory, "loomstale") as database_url:
        with private_broker(tmp_path_factory) as broker:
            groups = make_groups(database_url, broker.bootstrap_servers)
            running = start_collector(database_url, broker.bootstrap_servers, tmp_path / "stale.log")
            try:
                running.wait_cycles(3)  # three samples: the stored window can judge STOP
                before = running.series("kafka_consumergroup_group_lag", group=groups.stop_group)
                assert {s.labels["partition"]: s.value for s in before} == {"0": 15.0, "1": 15.0}
                broker.stop()

                def timed_scrape() -> tuple[float, Any]:
                    started = time.monotonic()
                    samples = running.samples()
                    return time.monotonic() - started, samples

                def failed_once() -> Any:
                    took, samples = timed_scrape()
                    assert took < 1.0, f"a scrape took {took:.2f} s while the broker is down"
                    health = {s.name: s.value for s in samples if s.name.startswith("loomctl_collector_")}
                    return samples if health["loomctl_collector_up"] == 0 else None

                samples = wait_for("a failed cycle", failed_once, timeout=120)
                health = {s.name: s.value for s in samples if s.name.startswith("loomctl_collector_")}
                assert health["loomctl_collector_stale"] == 1.0 and health["loomctl_collector_cycle_failures_total"] >= 1
                after = [s for s in samples if s.name == "kafka_consumergroup_group_lag" and s.labels["group"] == groups.stop_group]
                assert [(s.labels, s.value) for s in after] == [(s.labels, s.value) for s in before]  # the last good figures
                took, _ = timed_scrape()
                assert took < 1.0
                assert running.get("/readyz").status == 503
                status = running.get(f"/v3/kafka/default/consumer/{groups.stop_group}/status").json()["status"]
                assert status["status"] == "ERR" and status["totallag"] == 30  # Burrow folds STOP into ERR for a group
            finally:
                text = running.stop()
        assert "warning: " in text and "Kafka" in text


def test_a_gzip_scrape_is_the_same_exposition(served_collector, known_groups) -> None:
    import gzip
    import urllib.request

    request = urllib.request.Request(f"http://{served_collector.address}/metrics", headers={"Accept-Encoding": "gzip"})
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.headers["Content-Encoding"] == "gzip"
        text = gzip.decompress(response.read()).decode()
    plain = served_collector.get("/metrics").body.decode()

    def figures(exposition: str) -> list[str]:
        return [line for line in exposition.splitlines() if line.startswith(("kafka_", "loomctl_group"))]

    assert figures(text) == figures(plain) and f'group="{known_groups.stop_group}"' in text
    assert "loomctl_collector_up" in text


def test_the_objectives_predictions_are_gauges(served_collector, known_groups) -> None:
    ok, stop = known_groups.ok_group, known_groups.stop_group
    assert served_collector.value("loomctl_group_lag_slo_seconds", group=ok) == 60.0
    assert served_collector.value("loomctl_group_lag_slo_seconds", group=stop) == 3600.0
    assert served_collector.series("loomctl_group_lag_slo_seconds", group=known_groups.partial_group) == []  # none set
    assert served_collector.value("loomctl_group_slo_state_code", group=ok, slo_state="met") == 0.0
    assert served_collector.value("loomctl_group_catch_up_seconds", group=ok) == 0.0
    assert served_collector.value("loomctl_group_catch_up_never", group=ok) == 0.0
    assert {s.labels["partition"]: s.value for s in served_collector.series("loomctl_partition_catch_up_seconds", group=ok)} == {
        "0": 0.0, "1": 0.0}
    # stopped with 15 left on each partition and nothing produced: it never catches up, and ages 1 s a second
    assert served_collector.value("loomctl_group_catch_up_never", group=stop) == 1.0
    assert served_collector.series("loomctl_group_catch_up_seconds", group=stop) == []
    [state] = served_collector.series("loomctl_group_slo_state_code", group=stop)
    assert (state.labels["slo_state"], state.value) == ("at_risk", 1.0)
    breach = served_collector.value("loomctl_group_breach_in_seconds", group=stop)
    lag_seconds = served_collector.value("kafka_consumergroup_group_max_lag_seconds", group=stop)
    assert breach is not None and 3500 < breach < 3600 and lag_seconds is not None
