"""The schema's own rules: CHECK constraints, the audit trigger, partition changes, lag partitions."""

from __future__ import annotations

import psycopg
import pytest

from loomctl.consumer_config import DEFAULTS, FIELDS, RULES

pytestmark = pytest.mark.integration


def insert_config(cur, service: str, **settings):
    columns = ["service_name", "consumer_group_id", *settings]
    cur.execute(
        f"INSERT INTO pipeline_consumer_configs ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})",
        [service, f"{service}-group", *settings.values()],
    )


BAD_VALUES = [
    *((f.name, f.minimum - 1) for f in FIELDS if f.kind is int),
    *((f.name, f.maximum + 1) for f in FIELDS if f.kind is int),
    *((f.name, "bogus") for f in FIELDS if f.choices),
    ("partition_assignment_strategy", "sticky"),
]


@pytest.mark.parametrize(("field", "value"), BAD_VALUES, ids=lambda v: str(v))
def test_check_constraints_reject_out_of_range_values(db, field, value):
    with db.cursor() as cur:
        insert_config(cur, "svc-check")
        cur.execute("SAVEPOINT s")
        with pytest.raises(psycopg.errors.CheckViolation):
            cur.execute(f"UPDATE pipeline_consumer_configs SET {field} = %s WHERE service_name = 'svc-check'", [value])
        cur.execute("ROLLBACK TO SAVEPOINT s")


RULE_BREAKERS = {
    "poll_interval_covers_session": {"session_timeout_ms": 60_000, "max_poll_interval_ms": 30_000},
    "heartbeat_third_of_session": {"session_timeout_ms": 9_000, "heartbeat_interval_ms": 3_001},
    "reconnect_backoff_ordered": {"reconnect_backoff_ms": 2_000, "reconnect_backoff_max_ms": 1_000},
    "request_timeout_covers_fetch_wait": {"fetch_max_wait_ms": 5_000, "request_timeout_ms": 5_500},
    "fetch_min_within_fetch_max": {"fetch_min_bytes": 2_000_000, "fetch_max_bytes": 1_048_576},
    "share_offset_reset": {"group_protocol": "share", "auto_offset_reset": "none"},
}


def test_every_rule_has_a_breaking_example():
    assert set(RULE_BREAKERS) == {rule.name for rule in RULES}


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.name)
def test_check_constraints_hold_the_cross_field_rules(db, rule):
    settings = RULE_BREAKERS[rule.name]
    assert not rule.holds({**DEFAULTS, **settings})
    with db.cursor() as cur, pytest.raises(psycopg.errors.CheckViolation, match=rule.name):
        insert_config(cur, "svc-rule", **settings)


def test_defaults_satisfy_every_rule(db):
    assert all(rule.holds(DEFAULTS) for rule in RULES)
    with db.cursor() as cur:
        insert_config(cur, "svc-defaults")
        cur.execute("SELECT version, updated_by IS NOT NULL FROM pipeline_consumer_configs WHERE service_name = 'svc-defaults'")
        assert cur.fetchone() == (1, True)


def test_raw_sql_update_is_audited_with_the_database_user_and_bumps_the_version(db):
    with db.cursor() as cur:
        insert_config(cur, "svc-audit")
        cur.execute("UPDATE pipeline_consumer_configs SET max_poll_records = 50 WHERE service_name = 'svc-audit'")
        cur.execute("UPDATE pipeline_consumer_configs SET max_poll_records = 50 WHERE service_name = 'svc-audit'")
        cur.execute("SELECT version FROM pipeline_consumer_configs WHERE service_name = 'svc-audit'")
        assert cur.fetchone() == (2,), "a no-op update keeps the version"
        cur.execute(
            "SELECT change_type, changed_fields, old_values->>'max_poll_records', new_values->>'max_poll_records',"
            " changed_by = session_user, source, config_version"
            " FROM consumer_config_changes WHERE service_name = 'svc-audit' ORDER BY id"
        )
        rows = cur.fetchall()
    assert rows[0][0] == "create"
    assert rows[1:] == [("update", ["max_poll_records"], "500", "50", True, "sql", 2)]


def test_loomctl_actor_and_reason_reach_the_audit_trail(db):
    with db.cursor() as cur:
        insert_config(cur, "svc-actor")
        cur.execute("SELECT set_config('loomctl.actor', 'alice', true), set_config('loomctl.reason', 'more batch', true)")
        cur.execute("DELETE FROM pipeline_consumer_configs WHERE service_name = 'svc-actor'")
        cur.execute(
            "SELECT change_type, changed_by, reason, source, new_values FROM consumer_config_changes"
            " WHERE service_name = 'svc-actor' ORDER BY id DESC LIMIT 1"
        )
        assert cur.fetchone() == ("delete", "alice", "more batch", "loomctl", None)


def test_one_pending_change_per_topic_and_applied_follows_status(db):
    with db.cursor() as cur:
        for target in (6, 8):
            cur.execute(
                "INSERT INTO topic_partition_changes (topic_name, current_partitions, recommended_partitions, reason)"
                " VALUES ('t.pending', 3, %s, 'test')", [target],
            )
        cur.execute("SELECT recommended_partitions, status FROM topic_partition_changes WHERE topic_name = 't.pending' ORDER BY id")
        assert cur.fetchall() == [(6, "superseded"), (8, "pending")]
        cur.execute("SELECT generate_partition_update_script()")
        assert "--alter --topic t.pending --partitions 8" in cur.fetchone()[0]
        cur.execute("UPDATE topic_partition_changes SET applied = true WHERE topic_name = 't.pending' AND status = 'pending'")
        cur.execute("SELECT status, applied_at IS NOT NULL, applied_by = session_user FROM topic_partition_changes WHERE recommended_partitions = 8 AND topic_name = 't.pending'")
        assert cur.fetchone() == ("applied", True, True)
        cur.execute("SAVEPOINT s")
        with pytest.raises(psycopg.errors.CheckViolation):
            cur.execute("INSERT INTO topic_partition_changes (topic_name, current_partitions, recommended_partitions) VALUES ('t.down', 6, 3)")
        cur.execute("ROLLBACK TO SAVEPOINT s")


def test_mark_partition_changes_applied_marks_every_pending_change(db):
    with db.cursor() as cur:
        cur.execute("UPDATE topic_partition_changes SET status = 'failed' WHERE status = 'pending'")
        for topic in ("t.a", "t.b"):
            cur.execute("INSERT INTO topic_partition_changes (topic_name, current_partitions, recommended_partitions) VALUES (%s, 1, 2)", [topic])
        cur.execute("SELECT mark_partition_changes_applied()")
        assert cur.fetchone() == (2,)
        cur.execute("SELECT generate_partition_update_script()")
        assert cur.fetchone() == ("# no pending partition changes",)


def test_record_functions_for_services_not_written_in_python(db):
    with db.cursor() as cur:
        insert_config(cur, "svc-rec")
        cur.execute("SELECT record_consumer_lag('svc-rec', 'topic.rec', 0, 90, 100)")
        cur.execute("SELECT record_consumer_lag(service_name => 'svc-rec', topic_name => 'topic.rec', partition => 1,"
                    " committed_offset => NULL, log_end_offset => 7)")
        cur.execute("SELECT record_consumer_lag('svc-rec', 'topic.rec', 2, 120, 100)")
        cur.execute("SELECT partition, consumer_group_id, lag FROM consumer_lag_history WHERE service_name = 'svc-rec' ORDER BY partition")
        assert cur.fetchall() == [(0, "svc-rec-group", 10), (1, "svc-rec-group", None), (2, "svc-rec-group", 0)]
        cur.execute("SELECT record_processing_metrics('svc-rec', 10, 9, 250.0, 1)")
        cur.execute("SELECT consumer_group_id, messages_per_second FROM consumer_processing_metrics WHERE service_name = 'svc-rec'")
        assert cur.fetchone() == ("svc-rec-group", 36.0)


def test_lag_history_retention_drops_whole_partitions(db):
    with db.cursor() as cur:
        cur.execute("SELECT ensure_lag_history_partitions(3, 1)")
        old = "now() - interval '2 days'"
        for when in (old, old, "now()"):
            cur.execute(
                "INSERT INTO consumer_lag_history (consumer_group_id, topic_name, partition, \"timestamp\", service_name,"
                f" committed_offset, log_end_offset, lag) SELECT 'g-ret', 't', p, {when}, 's', 1, 2, 1 FROM generate_series(0, 9) p"
                " ON CONFLICT DO NOTHING"
            )
        cur.execute("SELECT * FROM drop_lag_history_before(now() - interval '1 day')")
        dropped, deleted = cur.fetchone()
        assert dropped >= 1
        cur.execute("SELECT count(*) FROM consumer_lag_history WHERE consumer_group_id = 'g-ret'")
        assert cur.fetchone() == (10,)


def test_rows_for_a_day_without_partition_move_out_of_the_default_partition(db):
    with db.cursor() as cur:
        far = "now() + interval '30 days'"
        cur.execute(
            "INSERT INTO consumer_lag_history (consumer_group_id, topic_name, partition, \"timestamp\", service_name, log_end_offset)"
            f" VALUES ('g-far', 't', 0, {far}, 's', 5)"
        )
        cur.execute("SELECT count(*) FROM consumer_lag_history_default WHERE consumer_group_id = 'g-far'")
        assert cur.fetchone() == (1,)
        cur.execute("SELECT ensure_lag_history_partitions(0, 31)")
        cur.execute("SELECT tableoid::regclass::text FROM consumer_lag_history WHERE consumer_group_id = 'g-far'")
        assert cur.fetchone()[0].startswith("consumer_lag_history_p")
