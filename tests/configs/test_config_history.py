"""History, diff, rollback, delete and profiles through `loomctl config`, against the real database."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from loomctl.consumer_config import PROFILES

from support import Cli

pytestmark = pytest.mark.integration

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "kafka-consumer-optimization-guide.md"


def troubleshooting_updates() -> list[str]:
    text = GUIDE.read_text(encoding="utf-8")
    section = text[text.index("## Troubleshooting"):text.index("## Best Practices")]
    blocks = re.findall(r"```sql\n(.*?)```", section, flags=re.S)
    return [s.strip() for block in blocks for s in block.split(";") if s.strip().split("\n")[-1].lstrip().startswith(("SET", "WHERE"))
            and "UPDATE" in s]


def test_the_guide_has_three_troubleshooting_updates():
    assert len(troubleshooting_updates()) == 3


@pytest.mark.skipif(shutil.which("psql") is None, reason="needs psql")
def test_guide_troubleshooting_updates_in_psql_appear_in_history(fresh_database_url):
    cli = Cli(fresh_database_url, group=["config"])
    for name in ("problematic-service", "slow-ai-processor", "memory-intensive-service"):
        assert cli("set", name, "--create").exit_code == 0
    for statement in troubleshooting_updates():
        done = subprocess.run(["psql", "-X", "-v", "ON_ERROR_STOP=1", "-d", fresh_database_url, "-c", statement + ";"],
                              capture_output=True, text=True)
        assert done.returncode == 0 and "UPDATE 1" in done.stdout, done.stderr
    history = cli.json("history", "slow-ai-processor")
    latest = history[0]
    assert latest["change_type"] == "update" and latest["source"] == "sql" and latest["config_version"] == 2
    assert {c["field"]: (c["old"], c["new"]) for c in latest["changes"]} == {
        "session_timeout_ms": (45000, 120000), "max_poll_interval_ms": (300000, 900000)}
    assert latest["changed_by"] != "tester"  # the database user who ran psql
    assert cli.json("history", "problematic-service")[0]["changes"] == [{"field": "max_poll_records", "old": 500, "new": 100}]
    memory = cli.json("history", "memory-intensive-service")[0]["changes"]
    assert {c["field"] for c in memory} == {"max_poll_records", "fetch_max_bytes"}
    table = cli("history", "slow-ai-processor")
    assert table.exit_code == 0 and "session_timeout_ms" in table.stdout


def test_history_records_actor_reason_and_description_less_changes(cli, service):
    cli("set", service, "--create", "--actor", "alice")
    cli("set", service, "max_poll_records=5", "--reason", "slow batches", "--actor", "bob")
    cli("set", service, "max_poll_records=6")
    history = cli.json("history", service)
    assert [(h["change_type"], h["changed_by"], h["reason"]) for h in history] == [
        ("update", "tester", None), ("update", "bob", "slow batches"), ("create", "alice", None)]
    assert [h["source"] for h in history] == ["loomctl"] * 3
    assert cli.json("history", service, "--limit", "1")[0]["config_version"] == 3
    assert cli("history", "no-such-service-anywhere").exit_code == 3


def test_diff_against_profile_and_change(cli, service):
    cli("set", service, "--create", "max_poll_records=7")
    result = cli.json("diff", service)
    assert result["against"] == "defaults"
    assert [(f["field"], f["current"], f["other"]) for f in result["fields"]] == [("max_poll_records", 7, 500)]
    result = cli.json("diff", service, "--against", "ai-model")
    assert {f["field"] for f in result["fields"]} == {"max_poll_records", "max_poll_interval_ms", "session_timeout_ms",
                                                    "heartbeat_interval_ms"}
    first = cli.json("history", service)[0]["id"]
    cli("set", service, "max_poll_records=8")
    result = cli.json("diff", service, "--against", str(first))
    assert [(f["field"], f["current"], f["other"]) for f in result["fields"]] == [("max_poll_records", 8, 7)]
    assert cli("diff", service, "--against", "no-such-profile").exit_code == 2
    assert cli("diff", service, "--against", "999999999").exit_code == 3


def test_rollback_undoes_the_last_change_and_goes_back_to_a_change(cli, service):
    cli("set", service, "--create", "max_poll_records=10")
    created = cli.json("history", service)[0]["id"]
    cli("set", service, "max_poll_records=20")
    cli("set", service, "max_poll_records=30", "session_timeout_ms=60000")
    assert cli("rollback", service, input="n\n").exit_code == 1  # declined: nothing changes
    assert cli.json("show", service)["max_poll_records"] == 30
    result = cli.json("rollback", service, "--yes")
    assert {c["field"]: (c["old"], c["new"]) for c in result["changes"]} == {
        "max_poll_records": (30, 20), "session_timeout_ms": (60000, 45000)}
    assert cli.json("show", service)["max_poll_records"] == 20
    assert cli("rollback", service, "--to", str(created), "--yes").exit_code == 0
    shown = cli.json("show", service)
    assert shown["max_poll_records"] == 10 and shown["version"] == 5
    latest = cli.json("history", service)[0]
    assert latest["reason"].startswith("rollback: restore") and latest["changed_by"] == "tester"


def test_delete_asks_and_rollback_restores(cli, service):
    cli("set", service, "--create", "max_poll_records=42", "--group", f"{service}-grp")
    result = cli("delete", service, input="n\n")
    assert result.exit_code == 1 and cli("show", service).exit_code == 0
    assert cli("delete", service, "--yes", "--reason", "retired").exit_code == 0
    assert cli("show", service).exit_code == 3
    assert cli("delete", service, "--yes").exit_code == 3
    history = cli.json("history", service)
    assert history[0]["change_type"] == "delete" and history[0]["reason"] == "retired"
    assert cli("rollback", service, "--yes").exit_code == 0
    shown = cli.json("show", service)
    assert shown["max_poll_records"] == 42 and shown["consumer_group_id"] == f"{service}-grp"


def test_profiles_and_apply_profile(cli, service):
    listed = cli.json("profiles")
    assert [p["name"] for p in listed] == list(PROFILES)
    assert cli("profiles").exit_code == 0
    cli("set", service, "--create", "fetch_min_bytes=1024")
    result = cli.json("apply-profile", service, "database-writer", "--dry-run")
    assert result["dry_run"] and cli.json("show", service)["profile"] is None
    result = cli.json("apply-profile", service, "database-writer")
    assert {c["field"] for c in result["changes"]} == {"profile", "max_poll_records", "enable_auto_commit", "fetch_min_bytes"}
    shown = cli.json("show", service)
    assert shown["profile"] == "database-writer" and shown["enable_auto_commit"] is False
    assert cli.json("diff", service)["fields"] == []
    assert [c["service_name"] for c in cli.json("list", "--profile", "database-writer")].count(service) == 1
    assert cli("apply-profile", service, "gpu").exit_code == 2
    assert cli.json("history", service)[0]["reason"] == "apply profile database-writer"


def test_unreachable_database_is_exit_5_with_the_password_masked(cli):
    result = cli("list", url="postgresql://u:hunter2@127.0.0.1:1/x")
    assert result.exit_code == 5 and "hunter2" not in result.output and "***" in result.stderr


def test_fields_lists_the_table(cli):
    rows = cli.json("fields")
    assert rows[0]["name"] == "max_poll_records" and rows[0]["librdkafka"] is None


def test_rolling_back_a_create_with_a_broker_configured_deletes_the_service(database_url, services, service):
    # the broker check of a new session timeout has nothing to check when the change deletes the service
    cli = Cli(database_url, services.bootstrap_servers, group=["config"])
    assert cli("set", service, "--create").exit_code == 0
    result = cli("rollback", service, "--yes")
    assert result.exit_code == 0, result.output
    assert cli("show", service).exit_code == 3
