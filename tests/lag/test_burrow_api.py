"""The Burrow-compatible API of `lag collect --listen`: Burrow's shapes, the statuses the CLI gives, 404s not tracebacks."""

from __future__ import annotations

import pytest

from support import Cli

pytestmark = pytest.mark.integration

REQUEST_KEYS = {"url", "host"}
STATUS_KEYS = {"cluster", "group", "status", "complete", "partitions", "partition_count", "maxlag", "totallag"}
PARTITION_KEYS = {"topic", "partition", "owner", "client_id", "status", "start", "end", "current_lag", "complete"}
OFFSET_KEYS = {"offset", "timestamp", "observedAt", "lag"}


def cli_group_status(served_db: str, bootstrap: str, group: str) -> str:
    [summary] = Cli(served_db, bootstrap).json("lag", "show", "--group", group, "--by", "service")
    return summary["status"]


def test_the_cluster_and_consumer_lists(served_collector, known_groups) -> None:
    clusters = served_collector.get("/v3/kafka")
    assert clusters.status == 200 and clusters.headers["Content-Type"] == "application/json"
    body = clusters.json()
    assert body["error"] is False and body["message"] == "cluster list returned" and body["clusters"] == ["pipeline-eu"]
    assert set(body["request"]) == REQUEST_KEYS and body["request"]["url"] == "/v3/kafka"

    consumers = served_collector.get("/v3/kafka/pipeline-eu/consumer").json()
    assert consumers["error"] is False and consumers["message"] == "consumer list returned"
    assert set(consumers["consumers"]) == {known_groups.ok_group, known_groups.stop_group, known_groups.partial_group}
    topics = served_collector.get("/v3/kafka/pipeline-eu/topic").json()
    assert {known_groups.ok_topic, known_groups.stop_topic} <= set(topics["topics"])
    offsets = served_collector.get(f"/v3/kafka/pipeline-eu/topic/{known_groups.stop_topic}").json()
    assert (offsets["message"], offsets["offsets"]) == ("topic offsets returned", [20, 20])
    assert served_collector.get("/v3/kafka/pipeline-eu/topic/no-such-topic").status == 404


def test_the_consumer_detail(served_collector, known_groups) -> None:
    body = served_collector.get(f"/v3/kafka/pipeline-eu/consumer/{known_groups.stop_group}").json()
    assert body["message"] == "consumer detail returned"
    [(topic, partitions)] = body["topics"].items()
    assert topic == known_groups.stop_topic and [p["current-lag"] for p in partitions] == [15, 15]
    assert all(p["offsets"] and {o["offset"] for o in p["offsets"]} == {5} for p in partitions)
    missing = served_collector.get("/v3/kafka/pipeline-eu/consumer/no-such-group")
    assert missing.status == 404 and missing.json()["message"] == "cluster or consumer not found"


def test_a_stop_group_has_burrows_status_shape_and_the_status_the_cli_gives(served_collector, known_groups, served_db, services) -> None:
    response = served_collector.get(f"/v3/kafka/pipeline-eu/consumer/{known_groups.stop_group}/status")
    assert response.status == 200
    body = response.json()
    assert (body["error"], body["message"]) == (False, "consumer status returned")
    status = body["status"]
    assert set(status) == STATUS_KEYS
    assert status["status"] == cli_group_status(served_db, services.bootstrap_servers, known_groups.stop_group) == "STOP"
    assert (status["cluster"], status["group"], status["partition_count"], status["totallag"]) == (
        "pipeline-eu", known_groups.stop_group, 2, 30)
    assert len(status["partitions"]) == 2  # /status lists the partitions that are not OK: both
    for p in status["partitions"]:
        assert set(p) == PARTITION_KEYS and p["status"] == "STOP" and p["current_lag"] == 15 and p["topic"] == known_groups.stop_topic
        assert set(p["start"]) == set(p["end"]) == OFFSET_KEYS
        assert p["start"]["offset"] == p["end"]["offset"] == 5
        assert p["start"]["timestamp"] <= p["end"]["timestamp"] and p["end"]["lag"] == 15
        assert 0 < p["complete"] <= 1
    assert status["maxlag"]["current_lag"] == 15 and set(status["maxlag"]) == PARTITION_KEYS


def test_an_ok_group_lists_no_partition_in_status_and_all_in_lag(served_collector, known_groups, served_db, services) -> None:
    status = served_collector.get(f"/v3/kafka/pipeline-eu/consumer/{known_groups.ok_group}/status").json()["status"]
    assert status["status"] == cli_group_status(served_db, services.bootstrap_servers, known_groups.ok_group) == "OK"
    assert (status["partitions"], status["partition_count"], status["totallag"]) == ([], 2, 0)
    lag = served_collector.get(f"/v3/kafka/pipeline-eu/consumer/{known_groups.ok_group}/lag").json()["status"]
    assert [(p["partition"], p["status"], p["current_lag"], p["end"]["offset"]) for p in lag["partitions"]] == [
        (0, "OK", 0, 10), (1, "OK", 0, 10)]


def test_a_partition_without_a_commit_has_no_lag_rather_than_0(served_collector, known_groups, served_db, services) -> None:
    status = served_collector.get(f"/v3/kafka/pipeline-eu/consumer/{known_groups.partial_group}/lag").json()["status"]
    assert status["status"] == cli_group_status(served_db, services.bootstrap_servers, known_groups.partial_group) == "STOP"  # p0 lags with nobody in the group; p1 is ERR
    by_partition = {p["partition"]: p for p in status["partitions"]}
    assert (by_partition[1]["current_lag"], by_partition[1]["start"], by_partition[1]["status"]) == (None, None, "ERR")
    assert by_partition[0]["current_lag"] == 4 and status["totallag"] == 4


def test_unknown_clusters_groups_and_paths_get_burrows_404_shape(served_collector, known_groups) -> None:
    for path in ("/v3/kafka/other/consumer", f"/v3/kafka/other/consumer/{known_groups.ok_group}/status"):
        response = served_collector.get(path)
        assert response.status == 404 and response.json() == {
            "error": True, "message": "cluster not found", "request": {"url": path, "host": response.json()["request"]["host"]}}
    for suffix in ("status", "lag"):
        path = f"/v3/kafka/pipeline-eu/consumer/no-such-group-%2F%00/{suffix}"
        response = served_collector.get(path)
        body = response.json()
        assert response.status == 404 and body["error"] is False and body["status"]["status"] == "NOTFOUND"
        assert body["status"]["group"] == "no-such-group-/\x00" and body["status"]["partitions"] == []
    for path in ("/v3/kafka/pipeline-eu/consumer/x/y/z", "/v2/kafka", "/nothing-here"):
        response = served_collector.get(path)
        assert response.status == 404 and response.json()["error"] is True, path


def test_health_and_readiness(served_collector) -> None:
    assert served_collector.get("/healthz").status == 200
    assert served_collector.get("/readyz").status == 200


def test_only_get_is_served(served_collector) -> None:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(f"http://{served_collector.address}/v3/kafka", data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 405
