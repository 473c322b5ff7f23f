"""The Burrow-compatible API of `lag collect --listen`, against Burrow's v3 structs written here as data.

The schemas transcribe linkedin/Burrow v1.9.5 (core/internal/httpserver/structs.go, core/protocol/evaluator.go and
storage.go): field names in Burrow's order, JSON types, what may be null, the statuses a partition and a group may
have. Every answer is checked against its schema and for its values: the groups listed, a partition never committed
left out (and the group's ``complete`` below 1), Burrow's folding of group statuses, ``maxlag`` and ``totallag``, the
brokers as ``servers``, the 404s, the admin endpoints. Unknown lag is never a number a Burrow client reads as 0.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

import pytest

from served import Response, start_collector
from support import Cli, admin_client, wait_for

integration = pytest.mark.integration

CLUSTER = "pipeline-eu"


# --- Burrow's v3 structs, as data -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Int:
    minimum: int | None = None


@dataclass(frozen=True)
class Float:
    minimum: float
    maximum: float


@dataclass(frozen=True)
class Null:
    """Nullable: a Go pointer (or a field loomctl leaves null where Burrow would print 0)."""

    inner: Any


@dataclass(frozen=True)
class ListOf:
    item: Any


@dataclass(frozen=True)
class MapOf:
    value: Any


@dataclass(frozen=True)
class OneOf:
    values: tuple[str, ...]


@dataclass(frozen=True)
class Obj:
    fields: tuple[tuple[str, Any], ...]


STR, BOOL, UINT = str, bool, Int(0)
PARTITION_STATUSES = ("OK", "WARN", "STOP", "STALL", "REWIND")  # protocol.StatusConstant, "not used for group status"
GROUP_STATUSES = ("NOTFOUND", "OK", "WARN", "ERR")  # "either NOTFOUND, OK, WARN, or ERR"
SHARE = Float(0.0, 1.0)

REQUEST = Obj((("url", STR), ("host", STR)))
TLS_PROFILE = Obj((("name", STR), ("noverify", BOOL), ("certfile", STR), ("keyfile", STR), ("cafile", STR)))
SASL_PROFILE = Obj((("name", STR), ("handshake-first", BOOL)))  # Burrow's username left out: loomctl shows no credential
CLIENT_PROFILE = Obj((("name", STR), ("client-id", STR), ("kafka-version", STR), ("tls", Null(TLS_PROFILE)),
                      ("sasl", Null(SASL_PROFILE))))
CLUSTER_MODULE = Obj((("class-name", STR), ("servers", ListOf(STR)), ("client-profile", CLIENT_PROFILE),
                      ("topic-refresh", Int()), ("offset-refresh", Int())))
CONSUMER_OFFSET = Obj((("offset", Int()), ("timestamp", Int()), ("observedAt", Int()), ("lag", Null(UINT))))
CONSUMER_PARTITION = Obj((("offsets", ListOf(Null(CONSUMER_OFFSET))), ("owner", STR), ("client_id", STR),
                          ("current-lag", Null(UINT))))  # null: never committed (Burrow would say 0)
PARTITION_STATUS = Obj((("topic", STR), ("partition", UINT), ("owner", STR), ("client_id", STR),
                        ("status", OneOf(PARTITION_STATUSES)), ("start", Null(CONSUMER_OFFSET)), ("end", Null(CONSUMER_OFFSET)),
                        ("current_lag", UINT), ("complete", SHARE)))
GROUP_STATUS = Obj((("cluster", STR), ("group", STR), ("status", OneOf(GROUP_STATUSES)), ("complete", SHARE),
                    ("partitions", ListOf(PARTITION_STATUS)), ("partition_count", UINT), ("maxlag", Null(PARTITION_STATUS)),
                    ("totallag", UINT)))


def answer(payload: str, schema: Any) -> Obj:
    """Burrow's envelope: error, message, the payload, request."""
    return Obj((("error", BOOL), ("message", STR), (payload, schema), ("request", REQUEST)))


ERROR = Obj((("error", BOOL), ("message", STR), ("request", REQUEST)))
INVALID_REQUEST = Obj((("error", BOOL), ("message", STR), ("result", Obj(()))))
ANSWERS = {
    "clusters": answer("clusters", ListOf(STR)),
    "module": answer("module", CLUSTER_MODULE),
    "topics": answer("topics", ListOf(STR)),
    "offsets": answer("offsets", ListOf(Int(-1))),
    "consumers": answer("consumers", ListOf(STR)),
    "topics by consumer": answer("topics", MapOf(ListOf(CONSUMER_PARTITION))),
    "status": answer("status", GROUP_STATUS),
}
BURROW_GROUP_STATUS = {"OK": "OK", "WARN": "WARN", "STOP": "ERR", "STALL": "ERR", "REWIND": "ERR", "ERR": "ERR"}
"""`lag show`'s group status (its worst partition's) as Burrow folds it."""


def check(value: Any, schema: Any, where: str = "$") -> None:
    """``value`` has ``schema``'s shape: fields in order, JSON types, nulls only where allowed, statuses from the list."""
    if isinstance(schema, Null):
        if value is not None:
            check(value, schema.inner, where)
    elif value is None:
        raise AssertionError(f"{where}: null where Burrow has no pointer")
    elif isinstance(schema, Obj):
        assert isinstance(value, dict), f"{where}: {value!r} is not an object"
        assert list(value) == [name for name, _ in schema.fields], f"{where}: fields {list(value)}"
        for name, inner in schema.fields:
            check(value[name], inner, f"{where}.{name}")
    elif isinstance(schema, ListOf):
        assert isinstance(value, list), f"{where}: {value!r} is not a list"
        for i, item in enumerate(value):
            check(item, schema.item, f"{where}[{i}]")
    elif isinstance(schema, MapOf):
        assert isinstance(value, dict), f"{where}: {value!r} is not an object"
        for key, item in value.items():
            check(item, schema.value, f"{where}.{key}")
    elif isinstance(schema, OneOf):
        assert value in schema.values, f"{where}: {value!r} is not one of {schema.values}"
    elif isinstance(schema, Int):
        assert isinstance(value, int) and not isinstance(value, bool), f"{where}: {value!r} is not an integer"
        assert schema.minimum is None or value >= schema.minimum, f"{where}: {value} < {schema.minimum}"
    elif isinstance(schema, Float):
        assert isinstance(value, float), f"{where}: {value!r} is not a float"
        assert schema.minimum <= value <= schema.maximum, f"{where}: {value} out of range"
    else:
        assert isinstance(value, schema) and not (schema is not bool and isinstance(value, bool)), f"{where}: {value!r} not {schema}"


def burrow(response: Response, kind: str, code: int = 200, message: str | None = None) -> Any:
    """The answer's JSON body, after its status, content type and schema (``kind``: an ANSWERS key, "error" or
    "invalid") are checked; ``message``: the message it must carry."""
    assert response.status == code, (response.status, response.body)
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    check(body, {"error": ERROR, "invalid": INVALID_REQUEST}.get(kind) or ANSWERS[kind])
    assert body["error"] is (kind in ("error", "invalid")), body
    if message is not None:
        assert body["message"] == message, body
    return body


def get(collector: Any, path: str, kind: str, code: int = 200, message: str | None = None) -> Any:
    body = burrow(collector.get(path), kind, code, message)
    if kind != "invalid":
        assert body["request"]["url"] == unquote(path) and body["request"]["host"], body["request"]
    return body


def cli_group_status(served_db: str, bootstrap: str, group: str) -> str:
    [summary] = Cli(served_db, bootstrap).json("lag", "show", "--group", group, "--by", "service")
    return summary["status"]


# --- against the collector the module fixtures start -----------------------------------------------------------------

@integration
def test_the_cluster_list_and_the_cluster_module_with_the_brokers_as_servers(served_collector, services) -> None:
    body = get(served_collector, "/v3/kafka", "clusters", message="cluster list returned")
    assert body["clusters"] == [CLUSTER]
    module = get(served_collector, f"/v3/kafka/{CLUSTER}", "module", message="cluster module detail returned")["module"]
    metadata = admin_client(services.bootstrap_servers).list_topics(timeout=10)
    brokers = [f"{b.host}:{b.port}" for _, b in sorted(metadata.brokers.items())]
    port = services.bootstrap_servers.rsplit(":", 1)[1]
    assert module["servers"] == brokers and len(brokers) == 1 and brokers[0].endswith(f":{port}")
    assert (module["topic-refresh"], module["offset-refresh"]) == (1, 1)  # the collector's --interval 1s
    assert module["client-profile"]["tls"] is None and module["client-profile"]["sasl"] is None
    text = json.dumps(module).lower()
    assert "password" not in text and "username" not in text and "sasl.mechanism" not in text
    get(served_collector, "/v3/kafka/other", "error", 404, "cluster module not found")


@integration
def test_topics_their_log_end_offsets_and_their_consumers(served_collector, known_groups) -> None:
    g = known_groups
    topics = get(served_collector, f"/v3/kafka/{CLUSTER}/topic", "topics", message="topic list returned")["topics"]
    assert {g.ok_topic, g.stop_topic, g.partial_topic} <= set(topics) and topics == sorted(topics)
    for topic, ends in ((g.stop_topic, [20, 20]), (g.partial_topic, [6, 6]), (g.ok_topic, [10, 10])):
        body = get(served_collector, f"/v3/kafka/{CLUSTER}/topic/{topic}", "offsets", message="topic offsets returned")
        assert body["offsets"] == ends
        consumers = get(served_collector, f"/v3/kafka/{CLUSTER}/topic/{topic}/consumers", "consumers",
                        message="consumers of topic returned")["consumers"]
        assert consumers == [{g.stop_topic: g.stop_group, g.partial_topic: g.partial_group, g.ok_topic: g.ok_group}[topic]]
    assert get(served_collector, f"/v3/kafka/{CLUSTER}/topic/no-such-topic/consumers", "consumers")["consumers"] == []
    get(served_collector, f"/v3/kafka/{CLUSTER}/topic/no-such-topic", "error", 404, "cluster or topic not found")
    get(served_collector, f"/v3/kafka/other/topic/{g.stop_topic}", "error", 404, "cluster or topic not found")
    get(served_collector, "/v3/kafka/other/topic", "error", 404, "cluster not found")
    get(served_collector, f"/v3/kafka/other/topic/{g.stop_topic}/consumers", "error", 404, "cluster not found")


@integration
def test_the_consumer_list_holds_the_groups_with_offsets_and_each_answers(served_collector, known_groups) -> None:
    g = known_groups
    body = get(served_collector, f"/v3/kafka/{CLUSTER}/consumer", "consumers", message="consumer list returned")
    assert body["consumers"] == sorted([g.ok_group, g.stop_group, g.partial_group])  # not the service that never ran
    for group in body["consumers"]:
        get(served_collector, f"/v3/kafka/{CLUSTER}/consumer/{group}", "topics by consumer")
        for suffix in ("status", "lag"):
            status = get(served_collector, f"/v3/kafka/{CLUSTER}/consumer/{group}/{suffix}", "status")["status"]
            assert status["status"] != "NOTFOUND" and status["partition_count"] > 0
    get(served_collector, f"/v3/kafka/{CLUSTER}/consumer/{g.never_ran_group}", "error", 404, "cluster or consumer not found")
    get(served_collector, "/v3/kafka/other/consumer", "error", 404, "cluster not found")


@integration
def test_the_consumer_detail_indexes_partitions_and_leaves_a_partition_never_committed_without_lag(served_collector, known_groups) -> None:
    g = known_groups
    body = get(served_collector, f"/v3/kafka/{CLUSTER}/consumer/{g.stop_group}", "topics by consumer",
               message="consumer detail returned")
    [(topic, partitions)] = body["topics"].items()
    assert topic == g.stop_topic and [p["current-lag"] for p in partitions] == [15, 15]
    assert all(p["offsets"] and {o["offset"] for o in p["offsets"]} == {5} and {o["lag"] for o in p["offsets"]} == {15}
               for p in partitions)
    assert all(o["timestamp"] == o["observedAt"] > 0 for p in partitions for o in p["offsets"])
    partial = get(served_collector, f"/v3/kafka/{CLUSTER}/consumer/{g.partial_group}", "topics by consumer")["topics"]
    [p0, p1] = partial[g.partial_topic]
    assert (p0["current-lag"], {o["offset"] for o in p0["offsets"]}) == (4, {2})
    assert (p1["offsets"], p1["current-lag"]) == ([], None)  # never committed: no offsets, lag unknown (not 0)
    get(served_collector, f"/v3/kafka/{CLUSTER}/consumer/no-such-group", "error", 404, "cluster or consumer not found")
    get(served_collector, f"/v3/kafka/other/consumer/{g.stop_group}", "error", 404, "cluster or consumer not found")


@integration
def test_a_stopped_group_is_err_with_its_stop_partitions_maxlag_and_totallag(served_collector, known_groups, served_db, services) -> None:
    g = known_groups
    cli = cli_group_status(served_db, services.bootstrap_servers, g.stop_group)
    for suffix in ("status", "lag"):  # both partitions are STOP: /status lists them as /lag does
        status = get(served_collector, f"/v3/kafka/{CLUSTER}/consumer/{g.stop_group}/{suffix}", "status",
                     message="consumer status returned")["status"]
        assert cli == "STOP" and status["status"] == BURROW_GROUP_STATUS[cli] == "ERR"  # Burrow folds STOP into ERR
        assert (status["cluster"], status["group"], status["partition_count"], status["totallag"]) == (CLUSTER, g.stop_group, 2, 30)
        assert [(p["topic"], p["partition"], p["status"], p["current_lag"]) for p in status["partitions"]] == [
            (g.stop_topic, 0, "STOP", 15), (g.stop_topic, 1, "STOP", 15)]
        for p in status["partitions"]:
            assert p["start"]["offset"] == p["end"]["offset"] == 5 and p["end"]["lag"] == 15
            assert p["start"]["timestamp"] <= p["end"]["timestamp"] and 0 < p["complete"] < 1  # 15 minutes not sampled yet
        assert status["maxlag"] == status["partitions"][0]  # the first of the highest, as Burrow picks it
        assert status["complete"] == 0.0  # no partition has a full window


@integration
def test_an_ok_group_lists_no_partition_in_status_and_all_in_lag(served_collector, known_groups, served_db, services) -> None:
    g = known_groups
    status = get(served_collector, f"/v3/kafka/{CLUSTER}/consumer/{g.ok_group}/status", "status")["status"]
    assert status["status"] == cli_group_status(served_db, services.bootstrap_servers, g.ok_group) == "OK"
    assert (status["partitions"], status["partition_count"], status["totallag"]) == ([], 2, 0)
    assert status["maxlag"]["current_lag"] == 0 and status["maxlag"]["partition"] == 0  # over every judged partition
    lag = get(served_collector, f"/v3/kafka/{CLUSTER}/consumer/{g.ok_group}/lag", "status")["status"]
    assert [(p["partition"], p["status"], p["current_lag"], p["end"]["offset"]) for p in lag["partitions"]] == [
        (0, "OK", 0, 10), (1, "OK", 0, 10)]


@integration
def test_a_partition_never_committed_is_left_out_and_makes_the_group_err_and_incomplete(served_collector, known_groups, served_db, services) -> None:
    g = known_groups
    cli = cli_group_status(served_db, services.bootstrap_servers, g.partial_group)  # p0 lags with nobody in the group; p1 ERR
    for suffix in ("status", "lag"):
        status = get(served_collector, f"/v3/kafka/{CLUSTER}/consumer/{g.partial_group}/{suffix}", "status")["status"]
        assert status["status"] == BURROW_GROUP_STATUS[cli] == "ERR"
        assert [(p["partition"], p["status"], p["current_lag"]) for p in status["partitions"]] == [(0, "STOP", 4)]
        assert (status["partition_count"], status["totallag"], status["maxlag"]["partition"]) == (2, 4, 0)
        assert status["complete"] < 1


@integration
def test_unknown_groups_clusters_and_paths_get_burrows_404s(served_collector, known_groups) -> None:
    g = known_groups
    odd = "no-such-group-/\x00"
    for cluster, group in ((CLUSTER, odd), (CLUSTER, g.never_ran_group), ("other", g.ok_group)):
        for suffix in ("status", "lag"):
            path = f"/v3/kafka/{quote(cluster)}/consumer/{quote(group, safe='')}/{suffix}"
            body = get(served_collector, path, "status", 404, "consumer status returned")
            assert body["error"] is False and body["status"] == {
                "cluster": cluster, "group": group, "status": "NOTFOUND", "complete": 1.0, "partitions": [],
                "partition_count": 0, "maxlag": None, "totallag": 0}
    for path in (f"/v3/kafka/{CLUSTER}/consumer/x/y/z", f"/v3/kafka/{CLUSTER}/topic/x/y", "/v2/kafka", "/v3/config", "/nothing-here"):
        assert get(served_collector, path, "invalid", 404) == {"error": True, "message": "invalid request type", "result": {}}


@integration
def test_a_burrow_exporter_walk_reads_no_unknown_number(served_collector) -> None:
    """What jirwin/burrow_exporter reads (it takes null or missing numbers as 0): every number is there and known."""
    for cluster in get(served_collector, "/v3/kafka", "clusters")["clusters"]:
        for group in get(served_collector, f"/v3/kafka/{cluster}/consumer", "consumers")["consumers"]:
            status = get(served_collector, f"/v3/kafka/{cluster}/consumer/{group}/lag", "status")["status"]
            assert status["maxlag"] is not None and status["partitions"]
            for p in status["partitions"]:
                assert p["start"] is not None and p["end"] is not None and p["end"]["lag"] is not None
        for topic in get(served_collector, f"/v3/kafka/{cluster}/topic", "topics")["topics"]:
            assert all(o >= 0 for o in get(served_collector, f"/v3/kafka/{cluster}/topic/{topic}", "offsets")["offsets"])


@integration
def test_the_admin_endpoints_health_and_readiness(served_collector) -> None:
    for path, text in (("/burrow/admin", b"GOOD"), ("/burrow/admin/ready", b"READY"), ("/healthz", b"ok\n"), ("/readyz", b"ready\n")):
        response = served_collector.get(path)
        assert (response.status, response.body) == (200, text) and response.headers["Content-Type"].startswith("text/plain")


@integration
def test_only_get_is_served(served_collector) -> None:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(f"http://{served_collector.address}/v3/kafka", data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 405


@pytest.fixture(scope="module")
def short_window(twin_db, services, tmp_path_factory):
    """A collector of a database of its own (so it samples every group) judging a 3-second window of 1-second samples."""
    running = start_collector(twin_db, services.bootstrap_servers, tmp_path_factory.mktemp("burrow") / "short.log",
                              "--cluster-name", CLUSTER, "--window", "3s")
    try:
        yield running
    finally:
        running.stop()


@integration
def test_complete_counts_full_windows_and_a_partition_never_committed_as_0(short_window, known_groups) -> None:
    g = known_groups

    def lag_of(group: str) -> dict[str, Any]:
        return get(short_window, f"/v3/kafka/{CLUSTER}/consumer/{group}/lag", "status")["status"]

    ok = wait_for("the ok group's full windows", lambda: (s := lag_of(g.ok_group))["complete"] == 1.0 and s)
    assert [p["complete"] for p in ok["partitions"]] == [1.0, 1.0] and ok["status"] == "OK"
    partial = wait_for("the partial group's full window", lambda: (s := lag_of(g.partial_group))["partitions"][0]["complete"] == 1.0 and s)
    assert (partial["complete"], partial["partition_count"], len(partial["partitions"])) == (0.5, 2, 1)


# --- the routes on a snapshot made here (no services): what the fixtures' groups cannot show -------------------------

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.timezone.utc)


def row(group: str, topic: str, partition: int, committed: int | None, end: int, status: str) -> Any:
    from loomctl.lag.live import PartitionLag

    return PartitionLag(service_name="svc", consumer_group_id=group, managed=True, group_state="Stable", topic_name=topic,
                        partition=partition, committed_offset=committed, log_start_offset=0, log_end_offset=end,
                        lag=None if committed is None else max(end - committed, 0), time_lag_ms=None, lost_records=0,
                        member_id="m-1", client_id="c-1", host="10.0.0.9", status=status)


def made_api() -> Any:
    from loomctl.lag.exporter import ExportSnapshot, Exporter, GroupInfo, WindowEvidence
    from loomctl.lag.http import Api

    groups = {name: GroupInfo(name, "svc", None, "Stable", 1) for name in ("mixed", "unjudged", "warn", "rewind")}
    full = WindowEvidence(samples=30, first_offset=1, first_lag=8, first_timestamp=NOW - dt.timedelta(minutes=15),
                          last_offset=9, last_lag=0, last_timestamp=NOW)
    snap = ExportSnapshot(
        cluster_name="eu", taken_at=NOW, window=dt.timedelta(minutes=15), interval=dt.timedelta(seconds=30), groups=groups,
        partitions=[row("mixed", "t", 0, 9, 9, "OK"), row("mixed", "t", 1, 5, 9, "-"), row("mixed", "t", 2, 7, 9, "WARN"),
                    row("unjudged", "t", 0, 5, 9, "-"), row("unjudged", "t", 1, None, 9, "ERR"),
                    row("warn", "u", 0, 3, 9, "WARN"), row("warn", "u", 1, 9, 9, "OK"),
                    row("rewind", "u", 0, 2, 9, "REWIND"), row("rewind", "u", 1, 4, 9, "WARN")],
        evidence={("mixed", "t", 0): full}, brokers=["b1:9092", "b2:9092"])
    exporter = Exporter("eu", interval=dt.timedelta(seconds=30))
    api = Api(exporter)
    return api, exporter, snap


def api_get(api: Any, path: str, kind: str, code: int = 200) -> Any:
    status, content_type, body = api.get(path)
    return burrow(Response(status, {"Content-Type": content_type}, body), kind, code)


def test_partitions_without_a_verdict_are_left_out_and_a_group_without_any_is_notfound() -> None:
    api, exporter, snap = made_api()
    assert api.get("/burrow/admin/ready")[:3:2] == (503, b"STARTING")  # no cycle yet
    assert api_get(api, "/v3/kafka/eu/consumer", "consumers")["consumers"] == []
    exporter.publish(snap, writer=True, duration_s=0.1)
    assert api.get("/burrow/admin/ready")[:3:2] == (200, b"READY")
    assert api_get(api, "/v3/kafka/eu", "module")["module"]["servers"] == ["b1:9092", "b2:9092"]
    assert api_get(api, "/v3/kafka/eu/consumer", "consumers")["consumers"] == ["mixed", "rewind", "warn"]  # not "unjudged"

    mixed = api_get(api, "/v3/kafka/eu/consumer/mixed/lag", "status")["status"]
    assert [(p["partition"], p["status"], p["current_lag"], p["complete"]) for p in mixed["partitions"]] == [
        (0, "OK", 0, 1.0), (2, "WARN", 2, 0.033)]  # partition 1 (lag 4, no verdict yet) left out
    assert (mixed["status"], mixed["partition_count"], mixed["totallag"], mixed["complete"]) == ("WARN", 3, 2, 0.333)
    assert mixed["maxlag"]["partition"] == 2
    assert (mixed["partitions"][0]["start"]["offset"], mixed["partitions"][0]["end"]["offset"]) == (1, 9)
    assert [p["partition"] for p in api_get(api, "/v3/kafka/eu/consumer/mixed/status", "status")["status"]["partitions"]] == [2]

    unjudged = api_get(api, "/v3/kafka/eu/consumer/unjudged/lag", "status", 404)["status"]
    assert (unjudged["status"], unjudged["totallag"], unjudged["maxlag"]) == ("NOTFOUND", 0, None)
    detail = api_get(api, "/v3/kafka/eu/consumer/unjudged", "topics by consumer")["topics"]["t"]  # it has a commit
    assert [(p["current-lag"], len(p["offsets"])) for p in detail] == [(4, 1), (None, 0)]
    assert api_get(api, "/v3/kafka/eu/topic/t/consumers", "consumers")["consumers"] == ["mixed"]


@pytest.mark.parametrize(("group", "folded"), [("warn", "WARN"), ("rewind", "ERR")])
def test_group_statuses_fold_as_burrows(group: str, folded: str) -> None:
    api, exporter, snap = made_api()
    exporter.publish(snap, writer=True, duration_s=0.1)
    status = api_get(api, f"/v3/kafka/eu/consumer/{group}/lag", "status")["status"]
    assert status["status"] == folded and {p["status"] for p in status["partitions"]} <= set(PARTITION_STATUSES)


def test_unknown_urls_answer_burrows_invalid_request() -> None:
    api, _, _ = made_api()
    status, content_type, body = api.get("/v3/kafka/eu/consumer/g/offsets")
    assert (status, content_type, json.loads(body)) == (404, "application/json", {"error": True, "message": "invalid request type", "result": {}})
    assert api.get("/burrow/admin")[:3:2] == (200, b"GOOD")
