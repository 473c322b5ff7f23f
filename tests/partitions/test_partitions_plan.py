"""`partitions plan` and the risks it finds: consuming groups, auto_offset_reset=latest, keyed records."""

from __future__ import annotations

import json
import time

import pytest

from partitions_support import insert_change, rows
from support import partition_count, produce_records, unique

pytestmark = pytest.mark.integration


def commit_offset(admin, group: str, topic: str) -> None:
    """Make ``group`` a consumer of ``topic`` as the cluster sees it: a committed offset."""
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition

    # a topic created a moment ago may be unknown to the group coordinator yet: the commit then
    # "succeeds" with an error on the partition, so retry until the partition itself is accepted
    deadline = time.monotonic() + 30
    while True:
        futures = admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0, 0)])])
        [partition] = futures[group].result(timeout=20).topic_partitions
        if partition.error is None:
            return
        assert time.monotonic() < deadline, partition.error
        time.sleep(0.2)


def add_service(pg, group: str, auto_offset_reset: str) -> str:
    service = unique("svc")
    pg.execute("INSERT INTO pipeline_consumer_configs (service_name, consumer_group_id, auto_offset_reset) VALUES (%s, %s, %s)",
               [service, group, auto_offset_reset])
    return service


def test_a_latest_consumer_is_refused_without_force(cli, pg, admin, new_topic):
    topic = new_topic()
    group = unique("grp-latest")
    service = add_service(pg, group, "latest")
    commit_offset(admin, group, topic)
    insert_change(pg, topic, 1, 2)

    [item] = cli.json("plan", topic)["items"]
    assert item["needs_force"] is True
    assert [(g["consumer_group_id"], g["service_name"], g["auto_offset_reset"]) for g in item["consumer_groups"]] == [
        (group, service, "latest")]
    assert any("auto_offset_reset=latest" in r for r in item["risks"])

    refused = cli("apply", topic, "--yes", "-o", "json")
    assert refused.exit_code == 1 and "--force" in refused.stderr
    assert json.loads(refused.stdout)["results"][0]["outcome"] == "refused"
    assert partition_count(admin, topic) == 1 and rows(pg, topic)[0]["status"] == "pending"

    forced = cli.json("apply", topic, "--yes", "--force")
    assert forced["results"][0]["outcome"] == "applied" and partition_count(admin, topic) == 2


def test_groups_without_a_service_config_are_listed_by_group_id(cli, pg, admin, new_topic):
    topic = new_topic()
    earliest_group, stranger = unique("grp-earliest"), unique("grp-stranger")
    service = add_service(pg, earliest_group, "earliest")
    for group in (earliest_group, stranger):
        commit_offset(admin, group, topic)
    insert_change(pg, topic, 1, 3)
    [item] = cli.json("plan", topic)["items"]
    groups = {g["consumer_group_id"]: g for g in item["consumer_groups"]}
    assert groups[earliest_group]["service_name"] == service and groups[stranger]["service_name"] is None
    assert item["needs_force"] is False
    assert any(stranger in r and "unknown" in r for r in item["risks"])
    assert item["action"] == "increase" and (item["current_partitions"], item["target_partitions"]) == (1, 3)


def test_keyed_records_are_found_by_sampling_the_tail(cli, pg, services, new_topic):
    keyed, unkeyed, empty = new_topic(partitions=2), new_topic(), new_topic()
    produce_records(services.bootstrap_servers, keyed, [{"value": b"v", "key": key} for key in (None, b"device-1", None)])
    produce_records(services.bootstrap_servers, unkeyed, [{"value": b"v", "key": None}] * 2)
    for topic in (keyed, unkeyed, empty):
        insert_change(pg, topic, 1 if topic != keyed else 2, 4)
    items = {i["topic_name"]: i for i in cli.json("plan", keyed, unkeyed, empty)["items"]}
    assert {t: i["keyed"] for t, i in items.items()} == {keyed: "yes", unkeyed: "no", empty: "unknown"}
    assert any("keyed messages" in r for r in items[keyed]["risks"])
    assert not any("keyed messages" in r for r in items[unkeyed]["risks"])


def test_plan_table_and_nothing_pending(cli, pg, new_topic):
    topic = new_topic()
    insert_change(pg, topic, 1, 2)
    table = cli("plan", topic)
    assert table.exit_code == 0 and topic in table.stdout and "increase" in table.stdout
    nothing = cli("plan", unique("pt-none"))
    assert nothing.exit_code == 0 and "no pending change for" in nothing.stderr
