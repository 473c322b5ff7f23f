"""Partition changes across two real clusters: the same topic name on each is two topics, and a change is planned
and applied on its own cluster only, never on one the operator did not name."""

from __future__ import annotations

import pytest

from support import Cli, admin_client, create_topic, forget_cluster, partition_count, unique

pytestmark = pytest.mark.integration


def test_a_change_is_applied_on_its_own_cluster_and_several_clusters_need_cluster(database_url, services, broker, admin):
    cli = Cli(database_url, services.bootstrap_servers, group=["partitions"])
    root = Cli(database_url, services.bootstrap_servers)
    second = f"p-{unique('c', 6)}"
    assert root("cluster", "add", second, "--bootstrap-servers", broker.bootstrap_servers).exit_code == 0
    other = admin_client(broker.bootstrap_servers)
    topic = unique("same-name")
    create_topic(admin, topic, 1)
    create_topic(other, topic, 2)
    try:
        change = cli.json("add", topic, "4", "--reason", "backlog on the second", "--cluster", second)
        assert (change["cluster_name"], change["current_partitions"]) == (second, 2)  # the second's count, not ours

        report = cli.json("apply", topic, "--yes")  # the only cluster with a pending change of it
        assert [r["outcome"] for r in report["results"]] == ["applied"]
        assert partition_count(other, topic) == 4
        assert partition_count(admin, topic) == 1  # the default cluster's topic of the same name is untouched

        cli.json("add", topic, "3", "--reason", "ours too")
        cli.json("add", topic, "6", "--reason", "theirs again", "--cluster", second)
        both = cli("apply", topic, "--yes")
        assert both.exit_code == 2 and f"pending changes on clusters default, {second}: pick one with --cluster" in both.stderr
        assert (partition_count(admin, topic), partition_count(other, topic)) == (1, 4)  # nothing applied anywhere

        listed = cli.json("list", topic)
        assert sorted((c["cluster_name"], c["recommended_partitions"]) for c in listed) == [("default", 3), (second, 6)]
        ambiguous = cli("cancel", topic, "--reason", "which one?")
        assert ambiguous.exit_code == 2 and "pick one with --cluster" in ambiguous.stderr
        assert cli.json("cancel", topic, "--reason", "not now", "--cluster", second)["status"] == "cancelled"

        plan = cli.json("plan", topic)
        assert [(i["topic_name"], i["target_partitions"]) for i in plan["items"]] == [(topic, 3)]
        assert cli.json("apply", topic, "--yes", "--cluster", "default")["results"][0]["outcome"] == "applied"
        assert (partition_count(admin, topic), partition_count(other, topic)) == (3, 4)
        assert cli("apply", "--cluster", "nowhere", "--yes").exit_code == 3
    finally:
        admin.delete_topics([topic])
        other.delete_topics([topic])
        forget_cluster(database_url, second)  # the session's database: its broker stops with this module


def test_recommend_reads_each_clusters_history_and_writes_its_changes_there(database_url, services, broker, admin):
    import psycopg

    cli = Cli(database_url, services.bootstrap_servers, group=["partitions"])
    root = Cli(database_url, services.bootstrap_servers)
    second = f"r-{unique('c', 6)}"
    assert root("cluster", "add", second, "--bootstrap-servers", broker.bootstrap_servers).exit_code == 0
    topic = unique("rec-same")
    create_topic(admin, topic, 1)
    create_topic(admin_client(broker.bootstrap_servers), topic, 1)
    with psycopg.connect(database_url, autocommit=True) as conn:
        for cluster, rate in (("default", 10), (second, 1000)):  # records a second: the second cluster's topic is busy
            group = unique("g-rec")
            conn.execute(
                "INSERT INTO consumer_lag_history (cluster_name, consumer_group_id, topic_name, partition, \"timestamp\","
                " service_name, committed_offset, log_end_offset, lag, member_count)"
                " SELECT %s, %s, %s, 0, now() - make_interval(secs => s), %s, 0, (600 - s) * %s, (600 - s) * %s, 1"
                " FROM generate_series(0, 600, 60) AS s",
                (cluster, group, topic, unique("svc"), rate, rate),
            )
    try:
        check_recommendations(cli, topic, second)
    finally:
        forget_cluster(database_url, second)


def check_recommendations(cli: Cli, topic: str, second: str) -> None:
    found = {r["cluster_name"]: r for r in cli.json("recommend", topic)}
    assert set(found) == {"default", second}
    assert found[second]["produce_rate"] > 50 * found["default"]["produce_rate"]  # each from its own cluster's samples
    only = cli.json("recommend", topic, "--cluster", second, "--write")
    assert [r["cluster_name"] for r in only] == [second]
    pending = cli.json("list", topic)
    assert {c["cluster_name"] for c in pending} <= {second}
