"""`partitions add`, `plan` and `apply` against the real broker and database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import psycopg
import pytest

from partitions_support import insert_change, rows
from support import create_topic, partition_count, unique

pytestmark = pytest.mark.integration


def outcomes(report) -> dict[str, str]:
    return {r["topic_name"]: r["outcome"] for r in report["results"]}


def test_apply_raises_the_count_and_marks_the_change_applied(cli, pg, admin, new_topic):
    topic = new_topic(partitions=1)
    change = cli.json("add", topic, "3", "--reason", "backlog")
    assert (change["current_partitions"], change["recommended_partitions"], change["status"]) == (1, 3, "pending")

    report = cli.json("apply", topic, "--yes")
    [result] = report["results"]
    assert (result["outcome"], result["partitions_before"], result["partitions_after"], result["altered"]) == ("applied", 1, 3, True)
    assert partition_count(admin, topic) == 3
    [row] = rows(pg, topic)
    assert (row["status"], row["applied"], row["applied_by"], row["error"]) == ("applied", True, "tester", None)
    assert row["applied_at"] is not None

    again = cli("apply", topic, "--yes")
    assert again.exit_code == 0 and "no pending change for" in again.stderr


def test_a_count_not_above_today_is_refused(cli, pg, new_topic):
    topic = new_topic(partitions=2)
    for count in ("2", "1"):
        result = cli("add", topic, count, "--reason", "shrink")
        assert result.exit_code == 2, result.output
        assert "cannot remove partitions" in result.stderr and "Traceback" not in result.output
    assert rows(pg, topic) == []
    missing = cli("add", unique("pt-missing"), "4", "--reason", "x")
    assert missing.exit_code == 3 and "does not exist" in missing.stderr


def test_a_topic_already_at_or_above_the_target_is_never_lowered(cli, pg, admin, new_topic):
    topic = new_topic(partitions=4)
    insert_change(pg, topic, 1, 2)  # recorded when the topic was smaller
    plan = cli.json("plan", topic)
    assert [(i["action"], i["current_partitions"], i["target_partitions"]) for i in plan["items"]] == [("already satisfied", 4, 2)]
    report = cli.json("apply", topic, "--yes")
    assert outcomes(report) == {topic: "already satisfied"} and report["results"][0]["altered"] is False
    assert partition_count(admin, topic) == 4
    assert rows(pg, topic)[0]["status"] == "applied"


def test_a_missing_topic_fails_on_its_row_while_the_others_are_applied(cli, pg, admin, new_topic):
    first, second = new_topic(), new_topic()
    missing = unique("pt-missing")
    for topic in (first, second, missing):
        insert_change(pg, topic, 1, 2)
    plan = cli.json("plan", first, second, missing)
    assert {i["topic_name"]: i["action"] for i in plan["items"]}[missing] == "topic missing"

    result = cli("apply", first, second, missing, "--yes", "-o", "json")
    assert result.exit_code == 1, result.output
    assert outcomes(json.loads(result.stdout)) == {first: "applied", second: "applied", missing: "failed"}
    assert f"{missing} (failed)" in result.stderr
    assert partition_count(admin, first) == partition_count(admin, second) == 2
    [failed] = rows(pg, missing)
    assert failed["status"] == "failed" and "UNKNOWN_TOPIC_OR_PART" in failed["error"]
    assert rows(pg, first)[0]["status"] == rows(pg, second)[0]["status"] == "applied"


def test_retry_failed_applies_a_failed_change_once_its_cause_is_gone(cli, pg, admin):
    missing = unique("pt-later")
    insert_change(pg, missing, 1, 3)
    assert cli("apply", missing, "--yes").exit_code == 1
    assert rows(pg, missing)[0]["status"] == "failed"
    assert cli("apply", missing, "--yes").exit_code == 0  # failed changes stay failed without --retry-failed

    create_topic(admin, missing)
    try:
        assert cli.json("plan", missing)["items"] == []
        assert [i["action"] for i in cli.json("plan", missing, "--retry-failed")["items"]] == ["increase"]
        report = cli.json("apply", missing, "--yes", "--retry-failed")
        assert outcomes(report) == {missing: "applied"} and partition_count(admin, missing) == 3
        [row] = rows(pg, missing)
        assert (row["status"], row["error"]) == ("applied", None)
    finally:
        admin.delete_topics([missing], operation_timeout=10)[missing].result(timeout=20)


def test_dry_run_changes_neither_the_cluster_nor_the_database(cli, pg, admin, new_topic):
    topic = new_topic()
    insert_change(pg, topic, 1, 5)
    before = rows(pg, topic)
    report = cli.json("apply", topic, "--dry-run")
    assert outcomes(report) == {topic: "would apply"} and report["results"][0]["dry_run"] is True
    assert partition_count(admin, topic) == 1
    assert rows(pg, topic) == before


def test_without_a_terminal_or_yes_apply_refuses(cli, pg, admin, new_topic):
    topic = new_topic()
    insert_change(pg, topic, 1, 2)
    result = cli("apply", topic)
    assert result.exit_code == 2 and "--yes" in result.stderr
    assert partition_count(admin, topic) == 1 and rows(pg, topic)[0]["status"] == "pending"


def test_a_second_apply_skips_what_the_first_holds(database_url, services, pg, admin, new_topic):
    """Deterministic: run B to its end while A holds its locks between validating and altering."""
    from loomctl import kafka, partitions
    from loomctl.db import session_scope
    from loomctl.settings import Settings

    settings = Settings(database_url=database_url, bootstrap_servers=services.bootstrap_servers)
    topics = [new_topic() for _ in range(3)]
    for topic in topics:
        insert_change(pg, topic, 1, 3)
    a_validated, b_done = threading.Event(), threading.Event()
    results: dict[str, list] = {}

    def pause(step: str) -> None:
        if step == "validated":
            a_validated.set()
            assert b_done.wait(60)

    def run(name: str, on_step) -> None:
        with session_scope(settings) as session:
            admin_client = kafka.admin_client(settings)
            plan = partitions.plan_changes(session, admin_client, topics, lock=True)
            results[name] = [plan, partitions.apply_plan(session, admin_client, plan, actor=name, on_step=on_step)]

    a = threading.Thread(target=run, args=("a", pause))
    a.start()
    assert a_validated.wait(60)
    try:
        run("b", None)
    finally:
        b_done.set()
        a.join(60)
    plan_b, results_b = results["b"]
    assert results_b == [] and sorted(plan_b.locked_elsewhere) == sorted(topics)
    assert {r.topic_name: (r.outcome, r.altered) for r in results["a"][1]} == {t: ("applied", True) for t in topics}
    assert all(partition_count(admin, t) == 3 for t in topics)
    assert all([r["applied_by"] for r in rows(pg, t)] == ["a"] for t in topics)


def test_two_apply_processes_at_once_alter_each_topic_once(database_url, services, pg, admin, new_topic):
    topics = [new_topic() for _ in range(6)]
    for topic in topics:
        insert_change(pg, topic, 1, 4)
    env = {**os.environ, "LOOM_DATABASE_URL": database_url, "LOOM_KAFKA_BOOTSTRAP_SERVERS": services.bootstrap_servers,
           "LOOM_ACTOR": "proc", "NO_COLOR": "1"}
    loomctl = str(Path(sys.executable).with_name("loomctl"))
    command = [loomctl, "partitions", "apply", "--yes", "-o", "json", *topics]
    procs = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in procs]
    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 0, err
    altered: dict[str, int] = {t: 0 for t in topics}
    for out, _err in outputs:
        for result in json.loads(out)["results"]:
            assert result["outcome"] in ("applied", "already satisfied")
            altered[result["topic_name"]] += result["altered"]
    assert altered == {t: 1 for t in topics}
    assert all(partition_count(admin, t) == 4 for t in topics)
    assert all([r["status"] for r in rows(pg, t)] == ["applied"] for t in topics)


def test_list_script_and_the_guide_functions(cli, pg, new_topic):
    topic = new_topic()
    change_id = cli.json("add", topic, "2", "--reason", "guide")["id"]
    assert [c["id"] for c in cli.json("list", topic)] == [change_id]
    assert cli.json("list", topic, "--applied") == []
    script = cli("script")
    assert script.exit_code == 0
    with pg.cursor() as cur:
        cur.execute("SELECT generate_partition_update_script()")
        assert script.stdout == cur.fetchone()[0] + "\n"
        assert f"--alter --topic {topic} --partitions 2" in script.stdout
    # the guide's last step, in a transaction rolled back so that other tests' pending changes stay pending
    with psycopg.connect(cli.database_url) as conn:
        conn.execute("SELECT mark_partition_changes_applied()")
        [status] = conn.execute("SELECT status FROM topic_partition_changes WHERE id = %s", [change_id]).fetchone()
        assert status == "applied"
        conn.rollback()
    assert cli.json("list", topic, "--applied") == []
    cli.json("apply", topic, "--yes")
    [applied] = cli.json("list", topic, "--applied")
    assert (applied["status"], applied["applied_by"]) == ("applied", "tester")
    assert [c["status"] for c in cli.json("list", topic, "--all")] == ["applied"]


def test_efficiency_reads_the_view(cli, pg):
    topic = unique("pt-eff")
    with pg.cursor() as cur:
        cur.execute("SELECT ensure_lag_history_partitions()")
        for minutes_ago, end in ((30, 0), (0, 36_000)):
            cur.execute(
                "INSERT INTO consumer_lag_history (consumer_group_id, topic_name, partition, \"timestamp\", service_name,"
                " committed_offset, log_end_offset, lag, member_count)"
                " VALUES ('g-eff', %s, 0, now() - make_interval(mins => %s), 'svc-eff', %s, %s, 0, 1)",
                [topic, minutes_ago, end, end])
    [row] = cli.json("efficiency", topic)
    assert row["topic_name"] == topic and row["current_partitions"] == 1 and row["produce_rate_per_sec"] == 20
