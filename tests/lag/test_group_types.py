"""`lag show` and `config drift` over every group type of Kafka 4.4, checked against Kafka's own tools.

Share groups are made with Kafka's ConsoleShareConsumer, a streams group with a Kafka Streams application, a Connect
group with a raw JoinGroup as Connect's workers send it, and a consumer-protocol group with a classic member joined:
the figures loomctl shows are those ShareGroupCommand, StreamsGroupCommand and kafka-consumer-groups print.
"""

from __future__ import annotations

import pytest
from group_kinds import (
    CONSOLE_SHARE_CONSUMER,
    SHARE_GROUPS,
    STREAMS_GROUPS,
    ConnectWorker,
    share_from_earliest,
    streams_group,
    table,
    tool,
)
from support import Cli, commit, create_topic, produce, quiet, unique, wait_for

from loomctl.kafka import protocol

pytestmark = pytest.mark.integration


def needs(bootstrap: str, api: type, version: int = 0) -> None:
    with protocol.client({"bootstrap.servers": bootstrap}) as c:
        offered = c.broker_versions(api)
    if offered is None or offered[1] < version:
        pytest.skip(f"the session's broker offers {api.__name__} {offered}: not a Kafka 4.4 broker")


def shown(value: int | None) -> str:
    return "-" if value is None else str(value)


def test_every_group_is_listed_with_its_type_and_a_share_groups_lag_is_the_brokers(services, database_url) -> None:
    bootstrap = services.bootstrap_servers
    needs(bootstrap, protocol.DescribeShareGroupOffsetsRequest, 1)
    cli = Cli(database_url, bootstrap, group=["lag"])
    topic = create_topic(bootstrap, unique("kinds"), 3)
    produce(bootstrap, topic, {0: 20, 1: 25, 2: 6})
    share, connect, classic = unique("g-share"), unique("g-connect"), unique("g-classic")
    share_from_earliest(bootstrap, share)
    tool(CONSOLE_SHARE_CONSUMER, "--bootstrap-server", bootstrap, "--topic", topic, "--group", share, "--max-messages", "12")
    commit(bootstrap, classic, topic, {0: 5, 1: 5, 2: 6})
    worker = ConnectWorker(bootstrap, connect)
    try:
        listed = {r["consumer_group_id"]: r for r in cli.json("show", "--all-groups")}
    finally:
        worker.leave()
    # nothing silently dropped: librdkafka's listing has neither the share nor the Connect group
    assert (listed[share]["group_type"], listed[share]["group_state"]) == ("share", "Empty")
    assert (listed[connect]["group_type"], listed[connect]["group_state"], listed[connect]["partitions"]) == ("connect", "Stable", 0)
    assert "Kafka Connect" in listed[connect]["note"] and listed[connect]["total_lag"] is None
    assert listed[classic]["group_type"] == "classic" and listed[classic]["total_lag"] == 35 and listed[classic]["note"] is None

    rows = cli.json("show", "--group", share, "--by", "partition")
    described = tool(SHARE_GROUPS, "--bootstrap-server", bootstrap, "--describe", "--group", share, "--offsets")
    theirs = {(r["TOPIC"], int(r["PARTITION"])): (r["START-OFFSET"], r["LAG"]) for r in table(described)}
    ours = {(r["topic_name"], r["partition"]): (shown(r["start_offset"]), shown(r["lag"])) for r in rows}
    assert ours == theirs, (ours, theirs)
    assert sum(int(start) for start, _ in theirs.values() if start != "-") == 12  # what the console consumer took
    for r in rows:
        assert r["committed_offset"] is None and r["group_type"] == "share" and r["time_lag_ms"] is None
        # nobody in the group while records wait is a stop; a partition it never started on is unknown, never 0
        assert r["status"] == ("-" if r["lag"] is None else "OK" if r["lag"] == 0 else "STOP"), r
    assert any(r["lag"] for r in rows)
    table_text = cli("show", "--group", share).output
    assert "start_offset" in table_text and share not in cli("show", "--group", classic).output


def test_a_streams_groups_lag_is_what_streams_group_command_prints(services, database_url, tmp_path) -> None:
    bootstrap = services.bootstrap_servers
    needs(bootstrap, protocol.StreamsGroupDescribeRequest)
    cli = Cli(database_url, bootstrap, group=["lag"])
    with streams_group(bootstrap, tmp_path / "streams") as (group, source):

        def copied() -> list | None:
            rows = cli.json("show", "--group", group, "--by", "partition")
            return rows if [r["lag"] for r in rows] == [0, 0] else None

        wait_for("the streams application to copy everything", copied, 120)
        produce(bootstrap, source, {1: 4})  # more records than it may have read yet: a lag for the tool to agree on
        rows = cli.json("show", "--group", group, "--by", "partition")
        described = tool(STREAMS_GROUPS, "--bootstrap-server", bootstrap, "--describe", "--group", group, "--offsets", "--verbose")
        again = cli.json("show", "--group", group, "--by", "partition")
    theirs = {(r["TOPIC"], int(r["PARTITION"])): (int(r["CURRENT-OFFSET"]), int(r["OFFSET-LAG"])) for r in table(described)}
    # the tool ran between two reads of loomctl's: it agrees with one of them (the application keeps consuming)
    readings = [{(r["topic_name"], r["partition"]): (r["committed_offset"], r["lag"]) for r in rs} for rs in (rows, again)]
    assert theirs in readings, (theirs, readings)
    assert all(r["group_type"] == "streams" and r["client_id"] for r in rows)


def test_drift_names_each_classic_member_inside_a_consumer_protocol_group(services, database_url) -> None:
    bootstrap = services.bootstrap_servers
    needs(bootstrap, protocol.ConsumerGroupDescribeRequest, 1)
    from confluent_kafka import Consumer

    config = Cli(database_url, bootstrap, group=["config"])
    topic = create_topic(bootstrap, unique("mixed"), 3)
    service, group = unique("mixed-svc"), unique("g-mixed")
    made = config("set", service, "--create", "--group", group, "group_protocol=consumer", "heartbeat_interval_ms=5000")
    assert made.exit_code == 0, made.output
    new = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "group.protocol": "consumer", "client.id": "new-member",
                    "logger": quiet()})  # fmt: skip
    old = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "group.protocol": "classic", "client.id": "old-member",
                    "session.timeout.ms": 10000, "logger": quiet()})  # fmt: skip
    try:
        new.subscribe([topic])
        wait_for("the consumer-protocol member's assignment", lambda: (new.poll(0.1), new.assignment())[1], 60)
        clean = config.json("drift", service)
        old.subscribe([topic])

        def mixed() -> dict | None:
            new.poll(0.05)
            old.poll(0.05)
            (row,) = config.json("drift", service)
            return row if row["members"] == 2 and row["classic_members"] else None

        row = wait_for("the classic member inside the consumer-protocol group", mixed, 90)
        failed = config("drift", service, "--fail")
    finally:
        old.close()
        new.close()
    assert clean[0]["member_types"] == "checked" and clean[0]["classic_members"] == [] and clean[0]["in_sync"], clean
    (member,) = row["classic_members"]
    assert member.endswith("(old-member)") and row["member_types"] == "checked" and row["group_type"] == "consumer"
    assert any(member in d and "group.protocol=consumer" in d for d in row["drift"]) and not row["in_sync"]
    assert failed.exit_code != 0


def test_the_collector_samples_a_share_group_and_its_verdict_and_series_follow_the_brokers_lag(services, database_factory) -> None:
    """A share group whose only consumer left while records wait: the collector stores the broker's start offset
    and lag, `lag status` says STOP on the partitions it started on, and /metrics has its lag with group_type share."""
    import datetime as dt
    import time

    from loomctl.lag.collector import Collector
    from loomctl.lag.exporter import Exporter
    from loomctl.settings import Settings
    from support import own_database

    bootstrap = services.bootstrap_servers
    needs(bootstrap, protocol.DescribeShareGroupOffsetsRequest, 1)
    topic = create_topic(bootstrap, unique("kinds-collect"), 2)
    produce(bootstrap, topic, {0: 20, 1: 25})
    group, service = unique("g-share-collect"), unique("share-svc")
    share_from_earliest(bootstrap, group)
    tool(CONSOLE_SHARE_CONSUMER, "--bootstrap-server", bootstrap, "--topic", topic, "--group", group, "--max-messages", "12")
    with own_database(database_factory, "loomkinds") as url:
        cli = Cli(url, bootstrap)
        assert cli("config", "set", service, "--create", "--group", group).exit_code == 0
        exporter = Exporter()
        collector = Collector(Settings(database_url=url, bootstrap_servers=bootstrap), interval=dt.timedelta(seconds=1),
                              exporter=exporter)  # fmt: skip
        try:
            deadline = time.monotonic() + 90
            status: dict = {}
            while time.monotonic() < deadline:
                produce(bootstrap, topic, {0: 3, 1: 3})  # records keep arriving; nobody is left to take them
                collector.cycle()
                collector.settle(60)
                status = cli.json("lag", "status", service, "--window", "5m")
                judged = {p["partition"]: p["status"] for p in status["partitions"]}
                if judged and all(s == "STOP" for s in judged.values()):
                    break
            metrics = exporter.metrics().decode()
        finally:
            collector.close()
        rows = Cli(url, bootstrap, group=["lag"]).json("show", service, "--by", "partition")
        history = Cli(url, bootstrap, group=["lag"]).json("history", service, "--since", "10m")
    started = {r["partition"]: r for r in rows if r["start_offset"] is not None}
    assert started, rows
    judged = {p["partition"]: p for p in status["partitions"]}
    assert set(judged) == set(started), (judged, started)  # a partition the group never started on is not judged
    for partition, p in judged.items():
        assert p["status"] == "STOP", status
        assert p["last_committed_offset"] == started[partition]["start_offset"]  # the start offset, kept as the commit
        assert p["last_lag"] > p["first_lag"]
    assert status["groups"][0]["status"] == "STOP" and status["groups"][0]["group_type"] == "share"
    assert all(r["status"] == "STOP" for r in started.values())  # lag show takes the stored verdict
    assert f'loomctl_group_info{{cluster_name="default",group="{group}",group_type="share"' in metrics
    lag_lines = [line for line in metrics.splitlines() if line.startswith("kafka_consumergroup_group_lag{") and f'group="{group}"' in line]
    assert len(lag_lines) == len(started) and history, (lag_lines, history)


def test_settings_the_group_types_client_cannot_honour_leave_lag_show_to_librdkafka_and_say_so(services, tmp_path) -> None:
    """A properties file with a setting kafka-python cannot honour (an OIDC login, certificate checks turned off):
    lag show --all-groups still reads the consumer groups through librdkafka, and says on stderr what it cannot list."""
    bootstrap = services.bootstrap_servers
    topic = create_topic(bootstrap, unique("kinds-limited"), 1)
    produce(bootstrap, topic, {0: 4})
    group = unique("g-limited")
    commit(bootstrap, group, topic, {0: 1})
    config = tmp_path / "client.properties"
    config.write_text("security.protocol=PLAINTEXT\nenable.ssl.certificate.verification=false\n")
    from support import runner

    from loomctl.cli import app

    env = {"LOOM_KAFKA_BOOTSTRAP_SERVERS": bootstrap, "LOOM_KAFKA_CONFIG": str(config), "LOOM_DATABASE_URL": ""}
    result = runner().invoke(app, ["lag", "show", "--all-groups", "-o", "json"], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    import json

    (row,) = [r for r in json.loads(result.stdout) if r["consumer_group_id"] == group]
    assert row["total_lag"] == 3
    assert "only its consumer groups are listed" in result.stderr and "enable.ssl.certificate.verification" in result.stderr
