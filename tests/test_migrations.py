"""Alembic owns the schema: every revision upgrades and downgrades, and drift is caught."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import psycopg
import pytest
from support import runner

from loomctl.db import migrations
from loomctl.cli import app

pytestmark = pytest.mark.integration

LOOM_TABLES = {
    "pipeline_consumer_configs", "consumer_config_changes", "topic_partition_changes",
    "consumer_lag_history", "consumer_processing_metrics",
}


def tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
    return {name for (name,) in rows}


def test_upgrade_keeps_rows_on_every_step_then_downgrade_and_upgrade_again(empty_database_url):
    url = empty_database_url
    revisions = [r.revision for r in reversed(migrations.history())]
    migrations.upgrade(url, revisions[0])
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO pipeline_consumer_configs (service_name, consumer_group_id, max_poll_records) VALUES ('keep-me', 'keep-me', 7)")
        conn.execute("INSERT INTO topic_partition_changes (topic_name, current_partitions, recommended_partitions) VALUES ('t', 1, 2)")
    for revision in revisions[1:]:
        migrations.upgrade(url, revision)
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT max_poll_records FROM pipeline_consumer_configs WHERE service_name = 'keep-me'").fetchone() == (7,)
            assert conn.execute("SELECT count(*) FROM topic_partition_changes").fetchone() == (1,)
    assert migrations.check(url).clean
    migrations.downgrade(url, "base")
    assert not (tables(url) & LOOM_TABLES)
    assert not any(t.startswith("consumer_lag_history") for t in tables(url))
    migrations.upgrade(url)
    assert LOOM_TABLES <= tables(url)
    report = migrations.check(url)
    assert report.clean, report.differences


def test_db_check_is_clean_then_fails_after_a_view_is_altered_by_hand(empty_database_url):
    url = empty_database_url
    migrations.upgrade(url)
    result = runner().invoke(app, ["--database-url", url, "db", "check", "-o", "json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["clean"] is True

    with psycopg.connect(url) as conn:
        definition = conn.execute("SELECT pg_get_viewdef('v_consumer_alerts'::regclass)").fetchone()[0]
        conn.execute(f"CREATE OR REPLACE VIEW v_consumer_alerts AS {definition.rstrip().rstrip(';')} LIMIT 0")
    result = runner().invoke(app, ["--database-url", url, "db", "check", "-o", "json"], catch_exceptions=False)
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["clean"] is False
    assert any("v_consumer_alerts" in d for d in report["differences"])


def test_db_check_reports_a_changed_function_and_a_changed_check_constraint(empty_database_url):
    url = empty_database_url
    migrations.upgrade(url)
    with psycopg.connect(url) as conn:
        conn.execute("CREATE OR REPLACE FUNCTION mark_partition_changes_applied() RETURNS integer LANGUAGE sql AS 'SELECT 0'")
        conn.execute("ALTER TABLE pipeline_consumer_configs DROP CONSTRAINT ck_pipeline_consumer_configs_max_poll_records")
        conn.execute("ALTER TABLE pipeline_consumer_configs ADD CONSTRAINT ck_pipeline_consumer_configs_max_poll_records CHECK (max_poll_records > 0)")
    differences = migrations.check(url).differences
    assert any("mark_partition_changes_applied" in d for d in differences)
    assert any("ck_pipeline_consumer_configs_max_poll_records" in d for d in differences)


def test_db_check_reports_a_database_behind_the_code(empty_database_url):
    report = migrations.check(empty_database_url)
    assert not report.clean
    assert "loomctl db upgrade" in report.differences[0]


def test_two_concurrent_upgrades_both_succeed(empty_database_url):
    env = {**os.environ, "LOOM_DATABASE_URL": empty_database_url}
    command = [sys.executable, "-m", "loomctl", "db", "upgrade"]
    runs = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(run.wait(timeout=120), run.stderr.read()) for run in runs]
    assert [code for code, _ in results] == [0, 0], results
    assert migrations.check(empty_database_url).clean


def test_plain_alembic_upgrade_from_the_checkout_works(empty_database_url):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    alembic = os.path.join(os.path.dirname(sys.executable), "alembic")
    env = {**os.environ, "LOOM_DATABASE_URL": empty_database_url}
    done = subprocess.run([alembic, "upgrade", "head"], cwd=root, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert migrations.check(empty_database_url).clean


def test_db_sql_prints_the_offline_upgrade():
    result = runner().invoke(app, ["db", "sql"], catch_exceptions=False)
    assert result.exit_code == 0
    assert "CREATE TABLE pipeline_consumer_configs" in result.stdout
    assert "CREATE OR REPLACE VIEW" in result.stdout or "CREATE VIEW" in result.stdout
    assert result.stdout.rstrip().endswith("COMMIT;")


def test_a_single_cluster_database_at_0009_upgrades_into_the_default_cluster_and_keeps_working(empty_database_url):
    url = empty_database_url
    migrations.upgrade(url, "0009")
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO pipeline_consumer_configs (service_name, consumer_group_id) VALUES ('orders', 'orders-group')")
        conn.execute("INSERT INTO topic_partition_changes (topic_name, current_partitions, recommended_partitions) VALUES ('orders', 3, 6)")
        conn.execute("SELECT record_consumer_lag('orders', 'orders', 0, 10, 15, NULL, now() - interval '1 minute')")
        conn.execute("SELECT record_consumer_lag('orders', 'orders', 0, 12, 20)")
        conn.execute("SELECT record_processing_metrics('orders', 100, 100, 50.0)")
        conn.execute("SELECT refresh_lag_partition_status('15 minutes')")
        script_before = conn.execute("SELECT generate_partition_update_script()").fetchone()[0]
        monitor_before = conn.execute("SELECT * FROM v_consumer_performance_monitor").fetchall()
    migrations.upgrade(url)
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT cluster_name, bootstrap_servers FROM kafka_clusters").fetchall() == [("default", None)]
        assert conn.execute("SELECT cluster_name FROM pipeline_consumer_configs").fetchall() == [("default",)]
        assert conn.execute("SELECT DISTINCT cluster_name FROM consumer_lag_history").fetchall() == [("default",)]
        assert conn.execute("SELECT count(*) FROM consumer_lag_history").fetchone() == (2,)
        assert conn.execute("SELECT cluster_name FROM topic_partition_changes").fetchall() == [("default",)]
        assert conn.execute("SELECT generate_partition_update_script()").fetchone()[0] == script_before
        monitor_after = conn.execute("SELECT * FROM v_consumer_performance_monitor").fetchall()
        assert [row[:-1] for row in monitor_after] == monitor_before  # a column appended, nothing else moved
        assert monitor_after[0][-1] == "default"
        assert conn.execute("SELECT cluster_name FROM v_consumer_performance_history LIMIT 1").fetchone() == ("default",)
        assert conn.execute("SELECT cluster_name FROM v_partition_efficiency").fetchall() == [("default",)]
        # the guide's writes, untouched: an INSERT without a cluster lands in the default one
        conn.execute("INSERT INTO pipeline_consumer_configs (service_name, consumer_group_id) VALUES ('billing', 'billing-group')")
        conn.execute("UPDATE pipeline_consumer_configs SET max_poll_records = 250 WHERE service_name = 'orders'")
        conn.execute("SELECT record_consumer_lag('billing', 'billing', 0, NULL, 5)")
        assert conn.execute("SELECT cluster_name FROM consumer_lag_history WHERE service_name = 'billing'").fetchone() == ("default",)
        assert conn.execute("SELECT mark_partition_changes_applied()").fetchone() == (1,)
        changes = conn.execute("SELECT change_type, cluster_name FROM kafka_cluster_changes").fetchall()
        assert changes == [("create", "default")]
    assert migrations.check(url).clean
