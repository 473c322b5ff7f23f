"""`loomctl config` against the real database: exit codes and parsed JSON."""

from __future__ import annotations

import json

import psycopg
import pytest
import typer
from hypothesis import HealthCheck, given, settings

import test_config_validation

from loomctl.consumer_config import DEFAULTS

pytestmark = pytest.mark.integration


def test_every_config_command_has_help_with_an_example():
    from loomctl.cli.config import app

    group = typer.main.get_command(app)
    assert len(group.commands) >= 12
    for name, command in group.commands.items():
        assert command.help and "Example: loomctl " in command.help, name


def test_create_show_and_list(cli, service):
    result = cli("set", service, "--create", "max_poll_records=50", "--description", "test service")
    assert result.exit_code == 0, result.output
    shown = cli.json("show", service)
    assert shown["max_poll_records"] == 50 and shown["consumer_group_id"] == service
    assert shown["version"] == 1 and shown["updated_by"] == "tester" and shown["description"] == "test service"
    assert {k: shown[k] for k in DEFAULTS if k != "max_poll_records"} == {k: v for k, v in DEFAULTS.items() if k != "max_poll_records"}
    names = [row["service_name"] for row in cli.json("list")]
    assert service in names
    assert cli("set", service, "--create").exit_code == 4
    assert cli("set", f"{service}-missing", "max_poll_records=5").exit_code == 3
    assert cli("show", f"{service}-missing").exit_code == 3


def test_show_client_properties(cli, service):
    assert cli("set", service, "--create", "--group", f"{service}-g", "retry_backoff_ms=5000").exit_code == 0
    props = cli.json("show", service, "--client", "librdkafka")
    assert props["group.id"] == f"{service}-g" and "max.poll.records" not in props
    assert props["fetch.wait.max.ms"] == "500" and props["retry.backoff.max.ms"] == "5000"
    java = cli.json("show", service, "--client", "java")
    assert java["max.poll.records"] == "500" and java["fetch.max.wait.ms"] == "500"
    js = cli.json("show", service, "--client", "kafkajs")
    assert js["consumer"]["groupId"] == f"{service}-g"


def test_set_prints_old_and_new_and_bumps_the_version(cli, service):
    cli("set", service, "--create")
    result = cli.json("set", service, "max_poll_records=100", "session_timeout_ms=60000", "--reason", "more batch")
    assert result["action"] == "update" and result["version_before"] == 1 and result["version_after"] == 2
    assert {c["field"]: (c["old"], c["new"]) for c in result["changes"]} == {
        "max_poll_records": (500, 100), "session_timeout_ms": (45000, 60000)}
    unchanged = cli.json("set", service, "max_poll_records=100")
    assert unchanged["action"] == "unchanged" and unchanged["version_after"] == 2


def test_unknown_key_and_bad_value_exit_2_and_write_nothing(cli, service):
    cli("set", service, "--create")
    result = cli("set", service, "max_poll_record=5")
    assert result.exit_code == 2 and "did you mean max_poll_records?" in result.stderr
    assert "Traceback" not in result.output
    result = cli("set", service, "max_poll_records=0", "fetch_max_wait_ms=100")
    assert result.exit_code == 2
    assert "max_poll_records=0" in result.stderr and "1..100,000 records" in result.stderr
    result = cli("set", service, "max_poll_interval_ms=10000")
    assert result.exit_code == 2 and "session_timeout_ms" in result.stderr
    result = cli("set", service, "heartbeat_interval_ms=20000")
    assert result.exit_code == 2 and "third of session_timeout_ms" in result.stderr
    shown = cli.json("show", service)
    assert shown["version"] == 1 and shown["max_poll_records"] == 500 and shown["fetch_max_wait_ms"] == 500


def test_dry_run_writes_nothing(cli, service):
    cli("set", service, "--create")
    result = cli.json("set", service, "max_poll_records=7", "--dry-run")
    assert result["dry_run"] and result["changes"][0]["new"] == 7
    assert cli.json("show", service)["max_poll_records"] == 500
    assert cli("set", f"{service}-dry", "--create", "--dry-run").exit_code == 0
    assert cli("show", f"{service}-dry").exit_code == 3


def test_if_version_and_optimistic_locking(cli, service):
    cli("set", service, "--create")
    assert cli("set", service, "max_poll_records=10", "--if-version", "1").exit_code == 0
    result = cli("set", service, "max_poll_records=20", "--if-version", "1")
    assert result.exit_code == 4
    assert "tester" in result.stderr and "version 2" in result.stderr
    assert cli.json("show", service)["max_poll_records"] == 10


CLI_IN_SUBPROCESS = (
    "import sys\n"
    "from loomctl.cli import app\n"
    "app(args=sys.argv[1:], prog_name='loomctl')\n"
)


def test_two_concurrent_sets_one_wins_one_gets_exit_4(cli, service, pg):
    import os
    import subprocess
    import sys
    import time

    cli("set", service, "--create")
    # Hold the row lock: both commands read version 1, then queue on the row with their UPDATE.
    with pg.transaction():
        pg.execute("SELECT 1 FROM pipeline_consumer_configs WHERE service_name = %s FOR UPDATE", [service])
        procs = {
            actor: subprocess.Popen(
                [sys.executable, "-c", CLI_IN_SUBPROCESS, "--database-url", cli.database_url, "config", "set",
                 service, f"max_poll_records={value}", "--actor", actor, "-o", "json"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "NO_COLOR": "1"},
            )
            for actor, value in (("alice", 11), ("bob", 22))
        }
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            pg.execute("SELECT pg_stat_clear_snapshot()")  # activity is otherwise frozen for the transaction
            waiting = pg.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'loomctl' AND wait_event_type = 'Lock'"
                " AND datname = current_database()"
            ).fetchone()[0]
            if waiting == 2:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the two writers never queued on the row lock")
    outcomes = {actor: (p.wait(timeout=30), p.stdout.read(), p.stderr.read()) for actor, p in procs.items()}
    codes = sorted(code for code, _, _ in outcomes.values())
    assert codes == [0, 4], outcomes
    winner = next(a for a, (code, _, _) in outcomes.items() if code == 0)
    loser = next(a for a, (code, _, _) in outcomes.items() if code == 4)
    message = outcomes[loser][2]
    assert f"changed by {winner}" in message and "now version 2" in message and "Traceback" not in message
    shown = cli.json("show", service)
    assert shown["version"] == 2 and shown["max_poll_records"] == {"alice": 11, "bob": 22}[winner]
    history = cli.json("history", service)
    assert [h["change_type"] for h in history] == ["update", "create"] and history[0]["changed_by"] == winner
    # nothing lost: the loser retries on the new version and both changes are in the history
    assert cli("set", service, f"max_poll_records={ {'alice': 11, 'bob': 22}[loser] }", "--actor", loser).exit_code == 0
    assert [h["changed_by"] for h in cli.json("history", service)][:2] == [loser, winner]


def test_session_timeout_outside_the_brokers_limits_is_refused(cli, kafka_cli, service, services):
    if not services.bootstrap_servers:
        pytest.skip("needs the session's Kafka broker")
    cli("set", service, "--create")
    result = kafka_cli("set", service, "session_timeout_ms=2000000", "max_poll_interval_ms=2000000")
    assert result.exit_code == 2, result.output
    assert "group.min/max.session.timeout.ms" in result.stderr and "2000000" in result.stderr and "nothing changed" in result.stderr
    assert json.loads(cli("show", service, "-o", "json").stdout)["version"] == 1
    result = kafka_cli("set", service, "session_timeout_ms=60000")
    assert result.exit_code == 0 and "warning" not in result.stderr


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(config=test_config_validation.configs())
def test_the_database_checks_agree_with_the_validator(db, config):
    """What the validator accepts the CHECK constraints accept, and the other way round."""
    from loomctl import validation

    try:
        validation.check_settings(config)
        accepted = True
    except validation.InvalidSettings:
        accepted = False
    if any(isinstance(v, str) and not isinstance(DEFAULTS[k], str) for k, v in config.items()) or any(
        isinstance(v, int) and not isinstance(v, bool) and abs(v) > 2**62 for v in config.values()
    ):
        return  # not storable in the column type at all
    columns = ["service_name", "consumer_group_id", *config]
    with db.cursor() as cur:
        cur.execute("SAVEPOINT s")
        try:
            cur.execute(
                f"INSERT INTO pipeline_consumer_configs ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})",
                ["svc-oracle", "svc-oracle-group", *config.values()],
            )
            stored, error = True, None
        except (psycopg.errors.CheckViolation, psycopg.errors.NumericValueOutOfRange, psycopg.errors.DataError,
                psycopg.errors.InvalidTextRepresentation, psycopg.errors.DatatypeMismatch) as exc:
            stored, error = False, exc
        cur.execute("ROLLBACK TO SAVEPOINT s")
    assert stored == accepted, (config, error)
