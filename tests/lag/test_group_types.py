"""`lag show` and `config drift` over every group type of Kafka 4.4, checked against Kafka's own tools.

Share groups are made with Kafka's ConsoleShareConsumer, a streams group with a Kafka Streams application, a Connect
group with a raw JoinGroup as Connect's workers send it, and a consumer-protocol group with a classic member joined:
the figures loomctl shows are those ShareGroupCommand, StreamsGroupCommand and kafka-consumer-groups print.
"""

from __future__ import annotations

import json

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

    from support import own_database

    from loomctl.lag.collector import Collector
    from loomctl.lag.exporter import Exporter
    from loomctl.settings import Settings

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


def series(metrics: str, name: str, group: str) -> dict[tuple[str, int], float]:
    """The values of a per-partition series of ``group`` in a /metrics text, by (topic, partition)."""
    import re

    found = {}
    for line in metrics.splitlines():
        if line.startswith(name + "{") and f'group="{group}"' in line:
            labels, value = line.rsplit(" ", 1)
            named = dict(re.findall(r'(\w+)="([^"]*)"', labels))
            found[(named["topic"], int(named["partition"]))] = float(value)
    return found


def test_a_share_member_that_stops_acknowledging_is_a_stall_and_its_lag_is_share_group_commands(
    services, database_factory
) -> None:
    """A share consumer (confluent-kafka's own) that took one batch and never acknowledges it nor polls again, while it
    stays a member (its background thread heartbeats): the start offset stays while records keep coming, which
    `lag status` calls STALL once the service's max_poll_interval_ms has passed (the pace of a partition whose
    start offset never moved is unknown). Its lag is ShareGroupCommand's on every partition."""
    import datetime as dt
    import time

    from confluent_kafka import ShareConsumer
    from support import own_database, quiet

    from loomctl.lag.collector import Collector
    from loomctl.settings import Settings

    bootstrap = services.bootstrap_servers
    needs(bootstrap, protocol.DescribeShareGroupOffsetsRequest, 1)
    topic = create_topic(bootstrap, unique("kinds-stall"), 2)
    produce(bootstrap, topic, {0: 10, 1: 10})
    group, service = unique("g-share-stall"), unique("stall-svc")
    share_from_earliest(bootstrap, group)
    # a member for as long as the test runs although it never polls again: the client's own bound is an hour, and
    # the service's (what loomctl judges the pace by) 20 s
    consumer = ShareConsumer({"bootstrap.servers": bootstrap, "group.id": group, "share.acknowledgement.mode": "explicit",
                              "max.poll.interval.ms": 3_600_000, "logger": quiet()})  # fmt: skip
    try:
        consumer.subscribe([topic])
        seen: set[int] = set()

        def took_from_both() -> bool:
            """It works until it has had records of both partitions (so the group has started on both), and holds
            the batch that completes them: never acknowledged, and it never polls again."""
            batch = [m for m in consumer.poll(1.0) if m.error() is None]
            seen.update(m.partition() for m in batch)
            if batch and seen == {0, 1}:
                return True
            for m in batch:
                consumer.acknowledge(m)
            consumer.commit_sync()
            return False

        wait_for("the share consumer to take records of both partitions", took_from_both, 90)
        with own_database(database_factory, "loomstall") as url:
            cli = Cli(url, bootstrap)
            made = cli("config", "set", service, "--create", "--group", group, "max_poll_interval_ms=20000",
                       "session_timeout_ms=10000", "heartbeat_interval_ms=3000")  # fmt: skip
            assert made.exit_code == 0, made.output
            collector = Collector(Settings(database_url=url, bootstrap_servers=bootstrap), interval=dt.timedelta(seconds=1))
            try:
                deadline = time.monotonic() + 150
                status: dict = {}
                verdicts: list[str] = []
                while time.monotonic() < deadline:
                    produce(bootstrap, topic, {0: 1, 1: 1})  # records keep arriving; the member takes none
                    collector.cycle()
                    collector.settle(60)
                    status = cli.json("lag", "status", service, "--window", "5m")
                    judged = {p["partition"]: p["status"] for p in status["partitions"]}
                    verdict = ",".join(f"{p}:{s}" for p, s in sorted(judged.items()))
                    if not verdicts or verdicts[-1] != verdict:
                        verdicts.append(verdict)
                    if len(judged) == 2 and all(s == "STALL" for s in judged.values()):
                        break
                # production has stopped: loomctl's figures and the tool's, read until they agree and stay
                lag = Cli(url, bootstrap, group=["lag"])

                def ours() -> dict:
                    rows = lag.json("show", service, "--by", "partition")
                    return {(r["topic_name"], r["partition"]): (shown(r["start_offset"]), shown(r["lag"])) for r in rows}

                def agreed() -> tuple | None:
                    before = ours()
                    described = tool(SHARE_GROUPS, "--bootstrap-server", bootstrap, "--describe", "--group", group, "--offsets")
                    theirs = {(r["TOPIC"], int(r["PARTITION"])): (r["START-OFFSET"], r["LAG"]) for r in table(described)}
                    after = ours()
                    print("loomctl", before, "ShareGroupCommand", theirs, "loomctl again", after)
                    return (before, theirs) if before == theirs == after else None

                ours_then, theirs_then = wait_for("loomctl and ShareGroupCommand to agree", agreed, 120)
                collector.cycle()
                collector.settle(60)
                rows = lag.json("show", service, "--by", "partition")
            finally:
                collector.close()
    finally:
        consumer.close()
    print("verdicts as they changed:", verdicts)
    print("lag status:", status)
    print("lag show rows:", rows)
    judged = {p["partition"]: p for p in status["partitions"]}
    assert set(judged) == {0, 1} and all(p["status"] == "STALL" for p in judged.values()), verdicts
    assert all(p["member_count"] == 1 for p in judged.values()), status
    assert all("members" in p["evidence"] and "are not committing progress" in p["evidence"] for p in judged.values()), status
    (group_status,) = status["groups"]
    assert (group_status["status"], group_status["group_type"]) == ("STALL", "share"), group_status
    assert set(ours_then) == {(topic, 0), (topic, 1)} and all(lag not in ("0", "-") for _, lag in ours_then.values())
    # the start offsets never moved over the window: the stored ones, and still the broker's once production stopped
    for p in judged.values():
        assert p["first_committed_offset"] == p["last_committed_offset"] == int(ours_then[(topic, p["partition"])][0]), p
    for r in rows:
        assert r["status"] == "STALL" and r["group_type"] == "share", r  # lag show takes the stored verdict
        assert r["time_lag_ms"] is None, r  # no committed offset to date a record by: unknown, never made up


def test_the_collector_samples_a_streams_group_and_its_series_carry_streams_group_commands_lag(
    services, database_factory, tmp_path
) -> None:
    """A Kafka Streams application's group configured as a service: the collector stores its samples, `lag status`
    judges it, and /metrics has it with group_type streams and, once the input stops, the lag StreamsGroupCommand
    prints (column OFFSET-LAG) on every partition."""
    import datetime as dt

    from support import own_database

    from loomctl.lag.collector import Collector
    from loomctl.lag.exporter import Exporter
    from loomctl.settings import Settings

    bootstrap = services.bootstrap_servers
    needs(bootstrap, protocol.StreamsGroupDescribeRequest)
    service = unique("streams-svc")
    with own_database(database_factory, "loomstreams") as url, streams_group(bootstrap, tmp_path / "streams") as (group, source):
        cli = Cli(url, bootstrap)
        assert cli("config", "set", service, "--create", "--group", group).exit_code == 0
        exporter = Exporter()
        collector = Collector(Settings(database_url=url, bootstrap_servers=bootstrap), interval=dt.timedelta(seconds=1),
                              exporter=exporter)  # fmt: skip
        try:
            collector.cycle()
            collector.settle(60)
            produce(bootstrap, source, {0: 5, 1: 7})  # more input while it runs; then none

            def agreed() -> tuple | None:
                collector.cycle()
                collector.settle(60)
                ours = series(exporter.metrics().decode(), "kafka_consumergroup_group_lag", group)
                described = tool(STREAMS_GROUPS, "--bootstrap-server", bootstrap, "--describe", "--group", group, "--offsets")
                theirs = {(r["TOPIC"], int(r["PARTITION"])): float(r["OFFSET-LAG"]) for r in table(described)}
                collector.cycle()
                collector.settle(60)
                again = series(exporter.metrics().decode(), "kafka_consumergroup_group_lag", group)
                print("loomctl", ours, "StreamsGroupCommand", theirs, "loomctl again", again)
                return (ours, theirs) if ours == theirs == again else None

            ours, theirs = wait_for("the exporter and StreamsGroupCommand to agree once the input stopped", agreed, 180)
            metrics = exporter.metrics().decode()
        finally:
            collector.close()
        status = cli.json("lag", "status", service, "--window", "5m")
        history = Cli(url, bootstrap, group=["lag"]).json("history", service, "--since", "10m")
    print("lag status:", status)
    assert set(ours) == {(source, 0), (source, 1)}, ours
    info = [line for line in metrics.splitlines() if line.startswith("loomctl_group_info{") and f'group="{group}"' in line]
    assert len(info) == 1 and 'group_type="streams"' in info[0], info
    assert [h["topic_name"] for h in history] == [source] and history[0]["buckets_with_data"], history
    (judged,) = status["groups"]
    assert judged["group_type"] == "streams" and judged["partitions"] == 2, judged
    # caught up with its input: every partition OK (nothing stored would be "-" or NO_DATA, never judged)
    assert judged["status"] == "OK" and {p["status"] for p in status["partitions"]} == {"OK"}, status


def test_every_broker_release_lists_its_consumer_groups_and_a_group_type_it_lacks_is_said_once(
    services, database_factory
) -> None:
    """Runs on the session's broker of any release (`make test-older-broker` too): `lag show --all-groups` and the
    collector read the consumer groups with their lag; a broker without share groups (KIP-932) or streams groups
    (KIP-1071), Kafka 4.0, has that said once on stderr (not per group, no traceback), and one of Kafka 4.4 lists
    its share groups with the broker's lag."""
    import datetime as dt

    from support import own_database

    from loomctl.lag.collector import Collector
    from loomctl.settings import Settings

    bootstrap = services.bootstrap_servers
    with protocol.client({"bootstrap.servers": bootstrap}) as c:
        share_api = c.broker_versions(protocol.ShareGroupDescribeRequest)
        streams_api = c.broker_versions(protocol.StreamsGroupDescribeRequest)
    has_share, has_streams = share_api is not None and share_api[1] >= 1, streams_api is not None
    print(f"ShareGroupDescribe {share_api}, StreamsGroupDescribe {streams_api}")
    topic = create_topic(bootstrap, unique("any-release"), 2)
    produce(bootstrap, topic, {0: 8, 1: 5})
    first, second = unique("g-release-a"), unique("g-release-b")
    commit(bootstrap, first, topic, {0: 3, 1: 1})  # lag 5 + 4
    commit(bootstrap, second, topic, {0: 8, 1: 0})  # lag 0 + 5
    share = unique("g-release-share")
    if has_share:
        share_from_earliest(bootstrap, share)
        tool(CONSOLE_SHARE_CONSUMER, "--bootstrap-server", bootstrap, "--topic", topic, "--group", share, "--max-messages", "4")
    with own_database(database_factory, "loomrelease") as url:
        cli = Cli(url, bootstrap)
        for service, group in ((unique("release-a"), first), (unique("release-b"), second)):
            assert cli("config", "set", service, "--create", "--group", group).exit_code == 0
        shown_all = cli("lag", "show", "--all-groups", "-o", "json")
        events: list[tuple[str, str]] = []
        collector = Collector(Settings(database_url=url, bootstrap_servers=bootstrap), interval=dt.timedelta(seconds=1),
                              on_event=lambda level, message: events.append((level, message)))  # fmt: skip
        try:
            for _ in range(2):
                collector.cycle()
                collector.settle(60)
        finally:
            collector.close()
        status = cli.json("lag", "status", "--window", "5m")
    assert shown_all.exit_code == 0, shown_all.output
    print("stderr of lag show --all-groups:", shown_all.stderr)
    print("collector events:", events)
    listed = {r["consumer_group_id"]: r for r in json.loads(shown_all.stdout)}
    assert (listed[first]["total_lag"], listed[first]["partitions"]) == (9, 2), listed[first]
    assert (listed[second]["total_lag"], listed[second]["partitions"]) == (5, 2), listed[second]
    assert {listed[first]["group_type"], listed[second]["group_type"]} <= {"classic", "consumer"}
    assert "Traceback" not in shown_all.stderr and "Traceback" not in shown_all.output
    said = [line for line in shown_all.stderr.splitlines() if "share groups" in line or "streams groups" in line]
    if has_share and has_streams:
        assert said == [], said
        described = tool(SHARE_GROUPS, "--bootstrap-server", bootstrap, "--describe", "--group", share, "--offsets")
        theirs = sum(int(r["LAG"]) for r in table(described) if r["LAG"] != "-")
        assert (listed[share]["group_type"], listed[share]["total_lag"]) == ("share", theirs), listed[share]
    else:
        # said once for the cluster, naming what it lacks; every group is still listed, none with a note about it
        assert len(said) == 1, shown_all.stderr
        assert ("share groups" in said[0]) != has_share and ("streams groups" in said[0]) != has_streams, said
        assert not any(r.get("note") for r in listed.values() if r["group_type"] in ("classic", "consumer")), listed
    # the collector sampled both groups and judged them; it has nothing to warn about on either release
    assert [e for e in events if e[0] == "warning"] == [], events
    judged = {p["consumer_group_id"]: p for p in status["partitions"] if p["partition"] == 0}
    assert (judged[first]["last_lag"], judged[second]["last_lag"]) == (5, 0), status["partitions"]
    assert {g["consumer_group_id"]: g["total_lag"] for g in status["groups"]} == {first: 9, second: 5}, status["groups"]
