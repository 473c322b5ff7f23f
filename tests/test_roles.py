"""The database roles of loomctl's jobs (migration 0013), on a real PostgreSQL: a login role granted one of them with
`loomctl db grant ROLE USER --execute` does its job and is refused everything else, in one line that names the role
the refused command needs; `db check` sees a privilege that differs from the code's; the audit trail records the
database user whatever the actor says."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
import pytest
from support import Cli, commit, create_topic, produce, suffix, unique

from loomctl.db import roles

pytestmark = pytest.mark.integration

PASSWORD = "Role4Loomctl"
HISTORY_INSERT = (
    "INSERT INTO consumer_lag_history (consumer_group_id, topic_name, partition, \"timestamp\", service_name,"
    " committed_offset, log_end_offset, lag, cluster_name) VALUES ('g', 't', 0, now(), 's', 1, 2, 1, 'default')"
)

Login = Callable[[str | None], tuple[str, str]]


@pytest.fixture
def login(pg: psycopg.Connection, database_url: str) -> Iterator[Login]:
    """``login(job)``: a new login role granted ``job``'s role through `loomctl db grant --execute` (None: no role):
    its name and a URL of the migrated database as it. Dropped at the end."""
    made: list[str] = []

    def make(job: str | None) -> tuple[str, str]:
        name = f"u_{job or 'none'}_{suffix(8).lower()}"
        pg.execute(f'CREATE ROLE "{name}" LOGIN PASSWORD \'{PASSWORD}\'')
        made.append(name)
        if job is not None:
            granted = Cli(database_url)("db", "grant", job, name, "--execute")
            assert granted.exit_code == 0, granted.output
            assert granted.stderr.strip() == f"granted loomctl_{job} to {name}"
        parts = urlsplit(database_url)
        netloc = f"{name}:{quote(PASSWORD)}@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        return name, urlunsplit(parts._replace(netloc=netloc))

    yield make
    for name in made:
        pg.execute(f'DROP OWNED BY "{name}"')
        pg.execute(f'DROP ROLE "{name}"')


def _refused(result: Any, command: str, job: str) -> None:
    """One error line, exit 1: PostgreSQL's refusal and the role ``command`` needs (a plan may go before it)."""
    lines = [line for line in result.stderr.strip().splitlines() if line.startswith("error:")]
    assert result.exit_code == 1 and len(lines) == 1, result.output
    assert "refused it to this role: permission denied for" in lines[0], lines[0]
    assert lines[0].endswith(f"`loomctl {command}` needs the role loomctl_{job} (`loomctl db grant {job} USER`)"), lines[0]


def _denied(url: str, statement: str, params: tuple[Any, ...] = ()) -> bool:
    with psycopg.connect(url) as conn:
        try:
            conn.execute(statement, params)
        except psycopg.errors.InsufficientPrivilege:
            return True
    return False


def _config_rows(pg: psycopg.Connection, service: str) -> list[tuple[Any, ...]]:
    return pg.execute("SELECT * FROM pipeline_consumer_configs WHERE service_name = %s", (service,)).fetchall()


@pytest.fixture
def service(database_url: str) -> str:
    name = unique("roles")
    created = Cli(database_url)("config", "set", name, "--create", "max_poll_records=50")
    assert created.exit_code == 0, created.output
    return name


def test_db_grant_prints_the_statement_and_runs_it_once(database_url: str, login: Login) -> None:
    cli = Cli(database_url, group=["db"])
    printed = cli("grant", "operator", 'Ro"b; DROP TABLE x')
    assert printed.exit_code == 0 and printed.stdout == 'GRANT loomctl_operator TO "Ro""b; DROP TABLE x";\n'
    assert cli("grant", "loomctl_Reader", "alice", "--revoke").stdout == 'REVOKE loomctl_reader FROM "alice";\n'

    bad = cli("grant", "admin", "alice")
    assert bad.exit_code == 2 and bad.stderr.strip() == "error: no loomctl role 'admin': the roles are reader, operator, collector, service"
    missing = cli("grant", "reader", f"nobody_{suffix(6).lower()}", "--execute")
    assert missing.exit_code == 3 and "the server has no role 'nobody_" in missing.stderr
    job_role = cli("grant", "reader", "loomctl_operator", "--execute")
    assert job_role.exit_code == 2 and "is a job role itself" in job_role.stderr

    name, _ = login("reader")
    again = cli("grant", "reader", name, "--execute")
    assert again.exit_code == 0 and again.stderr.strip() == f"{name} has loomctl_reader already"
    listed = {r["role"]: r for r in cli.json("roles")}
    assert name in listed["loomctl_reader"]["members"] and listed["loomctl_reader"]["exists"]
    assert {"loomctl_operator", "loomctl_collector"} <= set(listed["loomctl_reader"]["members"])
    taken = cli("grant", "reader", name, "--execute", "--revoke")
    assert taken.exit_code == 0 and taken.stderr.strip() == f"revoked loomctl_reader from {name}"
    assert name not in {m for r in cli.json("roles") for m in r["members"]}


def test_a_reader_reads_everything_and_changes_nothing(
    database_url: str, pg: psycopg.Connection, login: Login, service: str, services: Any
) -> None:
    _, url = login("reader")
    cli = Cli(url, services.bootstrap_servers)
    for command in (["config", "list"], ["config", "show", service], ["config", "history", service], ["config", "drift"],
                    ["lag", "status"], ["lag", "slo"], ["partitions", "list"], ["partitions", "efficiency"],
                    ["cluster", "list"], ["metrics", "show", service], ["alerts"], ["recommend"], ["db", "current"],
                    ["db", "roles"]):  # fmt: skip
        done = cli(*command, "-o", "json")
        assert done.exit_code == 0, (command, done.output)
    with psycopg.connect(url) as conn:
        for view in ("v_consumer_performance_monitor", "v_consumer_alerts", "v_consumer_performance_history", "v_partition_efficiency"):
            conn.execute(f"SELECT * FROM {view}").fetchall()

    assert Cli(database_url)("config", "set", service, "max_poll_records=60").exit_code == 0  # something to roll back
    before = _config_rows(pg, service)
    _refused(cli("config", "set", service, "max_poll_records=5"), "config set", "operator")
    first_change = min(h["id"] for h in Cli(database_url).json("config", "history", service))
    _refused(cli("config", "rollback", service, "--to", str(first_change), "--yes"), "config rollback", "operator")
    _refused(cli("partitions", "cancel", unique("topic"), "--reason", "r"), "partitions cancel", "operator")
    assert _config_rows(pg, service) == before
    assert _denied(url, "UPDATE pipeline_consumer_configs SET max_poll_records = 5 WHERE service_name = %s", (service,))
    assert _denied(url, HISTORY_INSERT)
    assert _denied(url, "SELECT record_processing_metrics(%s, 1, 1, 1.0)", (service,))
    assert _denied(url, "SELECT record_consumer_instance('i', %s, 1, 'python')", (service,))
    assert _denied(url, "SELECT ensure_lag_history_partitions()")


def test_an_operator_changes_configs_and_the_trail_records_its_database_user(
    database_url: str, pg: psycopg.Connection, login: Login, service: str, services: Any
) -> None:
    name, url = login("operator")
    cli = Cli(url, services.bootstrap_servers)
    changed = cli("config", "set", service, "max_poll_records=5", "--actor", "somebody-else")
    assert changed.exit_code == 0, changed.output
    with psycopg.connect(url) as conn:  # the guide's UPDATE with a lying actor
        conn.execute("SET LOCAL loomctl.actor = 'alice'")
        conn.execute("UPDATE pipeline_consumer_configs SET max_poll_interval_ms = 900000 WHERE service_name = %s", (service,))
    history = Cli(database_url).json("config", "history", service)
    assert [(h["changed_by"], h["db_user"]) for h in history[:2]] == [("alice", name), ("somebody-else", name)]

    # the trail takes rows, never changes
    assert _denied(url, "UPDATE consumer_config_changes SET changed_by = 'nobody' WHERE service_name = %s", (service,))
    assert _denied(url, "DELETE FROM consumer_config_changes WHERE service_name = %s", (service,))
    assert _denied(url, HISTORY_INSERT)
    assert _denied(url, "SELECT record_consumer_lag(%s, 't', 0, 1, 2)", (service,))
    refused = cli("lag", "collect", "--once")
    lines = refused.stderr.strip().splitlines()
    assert refused.exit_code != 0 and lines[-1].endswith(
        "`loomctl lag collect` needs the role loomctl_collector (`loomctl db grant collector USER`)"
    ), refused.stderr


def test_a_collector_writes_the_history_and_changes_no_config(
    database_url: str, pg: psycopg.Connection, login: Login, services: Any
) -> None:
    bootstrap = services.bootstrap_servers
    topic, group, name = create_topic(bootstrap, unique("roles-topic"), 2), unique("roles-group"), unique("roles-svc")
    produce(bootstrap, topic, {0: 5, 1: 3})
    commit(bootstrap, group, topic, {0: 2, 1: 3})
    assert Cli(database_url)("config", "set", name, "--create", "--group", group).exit_code == 0
    _, url = login("collector")
    cli = Cli(url, bootstrap)

    collected = cli("lag", "collect", "--once")
    assert collected.exit_code == 0, collected.output
    rows = pg.execute("SELECT partition, lag FROM consumer_lag_history WHERE consumer_group_id = %s ORDER BY 1", (group,)).fetchall()
    assert rows == [(0, 3), (1, 0)]

    before = _config_rows(pg, name)
    _refused(cli("config", "set", name, "max_poll_records=5"), "config set", "operator")
    assert _config_rows(pg, name) == before
    assert _denied(url, "UPDATE pipeline_consumer_configs SET max_poll_records = 5 WHERE service_name = %s", (name,))
    assert _denied(url, "INSERT INTO consumer_config_changes (service_name, change_type) VALUES ('x', 'update')")
    assert _denied(url, "UPDATE topic_partition_changes SET status = 'applied'")


def test_a_service_loads_its_config_and_records_and_reads_no_trail(
    database_url: str, pg: psycopg.Connection, login: Login, service: str, caplog: pytest.LogCaptureFixture, tmp_path: Any
) -> None:
    from psycopg_pool import ConnectionPool

    from loomctl.loader import ConsumerConfigLoader

    _, url = login("service")
    with ConnectionPool(url, min_size=1, open=True) as pool:
        loader = ConsumerConfigLoader(pool, cache_dir=tmp_path)
        config = loader.load_config(service)
        assert config.source == "database" and config.max_poll_records == 50
        assert loader.record_processing_metrics(service, 10, 12.5) is not None
        loader.get_processing_recommendations()
    with psycopg.connect(url) as conn:
        conn.execute("SELECT record_consumer_lag(%s, 't', 0, 1, 4)", (service,))
        conn.execute("SELECT record_consumer_instance('an-instance', %s, 1, 'python')", (service,))
    assert _denied(url, "SELECT * FROM consumer_instances")
    assert _denied(url, "DELETE FROM consumer_instances")
    assert pg.execute("SELECT lag FROM consumer_lag_history WHERE service_name = %s", (service,)).fetchall() == [(3,)]

    assert _denied(url, "SELECT * FROM consumer_config_changes")
    assert _denied(url, "SELECT * FROM kafka_cluster_changes")
    assert _denied(url, HISTORY_INSERT)
    assert _denied(url, "UPDATE pipeline_consumer_configs SET max_poll_records = 5 WHERE service_name = %s", (service,))
    assert _denied(url, "DELETE FROM consumer_processing_metrics")
    _refused(Cli(url)("config", "history", service), "config history", "reader")

    # a loader whose user has no role: one warning naming the role, the service runs on
    _, nobody = login(None)
    with ConnectionPool(nobody, min_size=1, open=True) as pool:
        loader = ConsumerConfigLoader(pool, cache_dir=tmp_path)
        assert loader.record_processing_metrics(service, 10, 12.5) is None
    assert any("needs the role loomctl_service" in r.getMessage() for r in caplog.records), caplog.text


def test_db_check_sees_a_privilege_the_code_does_not_give(database_url: str, pg: psycopg.Connection) -> None:
    cli = Cli(database_url, group=["db"])
    assert cli.json("check")["clean"]
    pg.execute("GRANT UPDATE ON consumer_config_changes TO loomctl_operator")
    pg.execute("GRANT EXECUTE ON FUNCTION record_processing_metrics TO PUBLIC")
    try:
        report = cli.json("check", expect=1)
        assert "loomctl_operator may UPDATE consumer_config_changes: the code says it may not" in report["differences"]
        assert any(d.startswith("PUBLIC may execute record_processing_metrics()") for d in report["differences"])
    finally:
        pg.execute("REVOKE UPDATE ON consumer_config_changes FROM loomctl_operator")
        pg.execute("REVOKE EXECUTE ON FUNCTION record_processing_metrics FROM PUBLIC")
    assert cli.json("check")["clean"]


def test_every_command_that_reads_or_writes_names_its_role() -> None:
    """Each command of the CLI is in the table of what it needs (a new command cannot forget to say)."""
    from typer.main import get_command

    from loomctl.cli import app
    from loomctl.cli.registry import COMMANDS, load

    paths = []
    for name in COMMANDS:
        command = load(name)
        subcommands = getattr(command, "commands", None)
        paths += [f"{name} {sub}" for sub in subcommands] if subcommands else [name]
    assert get_command(app) is not None
    assert sorted(p for p in paths if p not in roles.COMMAND_ROLES) == []
    assert sorted(p for p in roles.COMMAND_ROLES if p not in paths) == []


def test_a_schema_owner_without_createrole_migrates_where_the_roles_exist(
    empty_database_url: str, login: Login, pg: psycopg.Connection
) -> None:
    """A DBA creates the roles once per server (the migration's hint says how); a database's owner that may not
    create roles then migrates, and grants to them, with no more than its ownership."""
    from loomctl.db import migrations

    name, _ = login(None)
    database = urlsplit(empty_database_url).path.lstrip("/")
    pg.execute(f'ALTER DATABASE "{database}" OWNER TO "{name}"')
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        conn.execute(f'ALTER SCHEMA public OWNER TO "{name}"')
    parts = urlsplit(empty_database_url)
    as_owner = urlunsplit(parts._replace(netloc=f"{name}:{quote(PASSWORD)}@{parts.hostname}:{parts.port}"))
    assert not pg.execute("SELECT rolcreaterole OR rolsuper FROM pg_roles WHERE rolname = %s", (name,)).fetchone()[0]
    migrations.upgrade(as_owner)
    report = Cli(as_owner).json("db", "check")
    assert report["clean"], report["differences"]
    assert Cli(as_owner)("db", "downgrade", "base").exit_code == 0
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        conn.execute("ALTER SCHEMA public OWNER TO pg_database_owner")
        conn.execute(f'DROP OWNED BY "{name}"')
    pg.execute(f'ALTER DATABASE "{database}" OWNER TO CURRENT_USER')
