"""`partitions recommend` over synthetic lag history and processing metrics in the real database."""

from __future__ import annotations

import pytest

from partitions_support import rows
from support import Cli, unique

pytestmark = pytest.mark.integration


def seed_history(pg, topic: str, *, partitions: int = 3, per_partition_rate: int = 100, members: int = 4) -> tuple[str, str]:
    """Two services consume ``topic``: svc-a does 50 msg/s per member, svc-b 200; the topic takes
    ``partitions x per_partition_rate`` msg/s (log-end offsets 40 minutes apart)."""
    slow, fast = unique("svc-a"), unique("svc-b")
    with pg.cursor() as cur:
        cur.execute("SELECT ensure_lag_history_partitions()")
        for service, group_members in ((slow, members), (fast, 2)):
            for partition in range(partitions):
                for minutes_ago, end in ((50, 1_000), (10, 1_000 + per_partition_rate * 2400)):
                    cur.execute(
                        "INSERT INTO consumer_lag_history (consumer_group_id, topic_name, partition, \"timestamp\","
                        " service_name, committed_offset, log_end_offset, lag, member_count)"
                        " VALUES (%s, %s, %s, now() - make_interval(mins => %s), %s, %s, %s, %s, %s)",
                        [f"{service}-group", topic, partition, minutes_ago, service, end - 10, end, 10, group_members])
        for service, processed, time_ms in ((slow, 100, 2000.0), (fast, 100, 500.0)):
            for minutes_ago in (40, 20):
                cur.execute(
                    "INSERT INTO consumer_processing_metrics (\"timestamp\", service_name, consumer_group_id, topic_name,"
                    " batch_size, messages_processed, messages_failed, processing_time_ms)"
                    " VALUES (now() - make_interval(mins => %s), %s, %s, %s, %s, %s, 0, %s)",
                    [minutes_ago, service, f"{service}-group", topic, processed, processed, time_ms])
    return slow, fast


def test_recommendation_from_synthetic_history(cli, pg, new_topic):
    topic = new_topic(partitions=3)
    slow, _fast = seed_history(pg, topic)
    [rec] = cli.json("recommend", topic)
    # 300 msg/s x 1.5 headroom / 50 msg/s (svc-a, the slowest) = 9 consumers; svc-a runs 4 members
    assert rec["current_partitions"] == 3 and rec["current_from"] == "cluster"
    assert rec["produce_rate"] == 300.0 and rec["per_consumer_rate"] == 50.0 and rec["slowest_service"] == slow
    assert (rec["consumers_needed"], rec["max_group_members"], rec["recommended_partitions"], rec["change"]) == (9, 4, 9, True)
    assert rec["reason"] == (
        f"produce rate 300 msg/s over 1h; slowest consumer {slow} does 50.0 msg/s; "
        "300 x 1.5 headroom / 50.0 = 9 consumer(s) needed; largest consuming group has 4 member(s); 3 -> 9 partitions"
    )
    assert {g["service_name"] for g in rec["consumer_groups"]} == {slow, _fast}
    assert rows(pg, topic) == []  # without --write nothing is stored


def test_write_stores_one_pending_change_and_a_newer_one_supersedes(cli, pg, new_topic):
    topic = new_topic(partitions=3)
    seed_history(pg, topic)
    [rec] = cli.json("recommend", topic, "--write")
    assert rec["written"] == "written"
    [row] = rows(pg, topic)
    assert (row["status"], row["source"], row["current_partitions"], row["recommended_partitions"]) == ("pending", "recommend", 3, 9)
    assert row["reason"] == rec["reason"] and row["id"] == rec["change_id"]

    [again] = cli.json("recommend", topic, "--write")
    assert again["written"] == "unchanged" and len(rows(pg, topic)) == 1

    [more] = cli.json("recommend", topic, "--write", "--headroom", "2")
    assert more["recommended_partitions"] == 12
    assert [(r["status"], r["recommended_partitions"]) for r in rows(pg, topic)] == [("superseded", 9), ("pending", 12)]


def test_the_maximum_caps_a_recommendation(cli, pg, new_topic):
    topic = new_topic(partitions=3)
    seed_history(pg, topic)
    [rec] = cli.json("recommend", topic, "--max-partitions", "6")
    assert (rec["recommended_partitions"], rec["capped"]) == (6, True)
    assert "capped at the maximum of 6" in rec["reason"]


def test_without_a_cluster_the_count_comes_from_history(database_url, pg):
    topic = unique("pt-offline")
    seed_history(pg, topic, partitions=2)
    result = Cli(database_url, group=["partitions"])("recommend", topic, "-o", "json")
    assert result.exit_code == 0, result.output
    import json

    [rec] = json.loads(result.stdout)
    assert (rec["current_from"], rec["current_partitions"], rec["recommended_partitions"]) == ("history", 2, 6)
    assert "from the lag history" in result.stderr


def test_topic_missing_in_the_cluster_is_not_recommended(cli, pg):
    topic = unique("pt-gone")
    seed_history(pg, topic)
    [rec] = cli.json("recommend", topic, "--write")
    assert rec["change"] is False and "does not exist" in rec["reason"]
    assert rows(pg, topic) == []


def test_a_bad_window_is_exit_2(cli):
    result = cli("recommend", "--window", "soon")
    assert result.exit_code == 2 and "--window" in result.stderr
