"""The audit trails record who made a change as PostgreSQL knows it (session_user) beside the actor the writer names:
a raw UPDATE that sets loomctl.actor to somebody else, a row written into the trail by hand and an UPDATE of the
trail all keep the real database user."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
import pytest
from support import Cli, suffix, unique

pytestmark = pytest.mark.integration


@pytest.fixture
def mallory(pg: psycopg.Connection, database_url: str) -> Iterator[tuple[str, str]]:
    """A login role of its own, with every privilege on the tables (what the schema grants before it has roles of its
    own): (its name, a URL of the migrated database as that role)."""
    name, password = f"mallory_{suffix(8).lower()}", "Mallory4Audit"
    pg.execute(f"CREATE ROLE {name} LOGIN PASSWORD '{password}'")
    pg.execute(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {name}")
    pg.execute(f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {name}")
    parts = urlsplit(database_url)
    netloc = f"{name}:{quote(password)}@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    try:
        yield name, urlunsplit(parts._replace(netloc=netloc))
    finally:
        pg.execute(f"DROP OWNED BY {name}")
        pg.execute(f"DROP ROLE {name}")


def _newest(pg: psycopg.Connection, table: str, key: str, value: str) -> dict[str, Any]:
    with pg.cursor(row_factory=psycopg.rows.dict_row) as cur:
        row = cur.execute(f"SELECT * FROM public.{table} WHERE {key} = %s ORDER BY id DESC LIMIT 1", (value,)).fetchone()
    assert row is not None
    return row


def test_a_raw_update_with_a_lying_actor_records_the_real_database_user(database_url, pg, mallory) -> None:
    who, url = mallory
    service = unique("audited")
    cli = Cli(database_url, group=["config"])
    assert cli("set", service, "--create").exit_code == 0
    me = pg.execute("SELECT session_user").fetchone()[0]

    with psycopg.connect(url) as conn:  # one transaction, as the guide's UPDATE in psql after a SET LOCAL
        conn.execute("SET LOCAL loomctl.actor = 'alice'")
        conn.execute("SET LOCAL loomctl.reason = 'alice said so'")
        conn.execute("UPDATE pipeline_consumer_configs SET max_poll_records = 7 WHERE service_name = %s", (service,))
    with psycopg.connect(url) as conn:  # the guide's UPDATE as it is written: no actor at all
        conn.execute("UPDATE pipeline_consumer_configs SET max_poll_interval_ms = 900000 WHERE service_name = %s", (service,))

    history = cli.json("history", service)
    assert [(h["changed_by"], h["db_user"], h["source"]) for h in history[:2]] == [
        (who, who, "sql"),
        ("alice", who, "loomctl"),  # the actor documents intent; the database user says who
    ]
    assert (history[2]["change_type"], history[2]["db_user"], history[2]["source"]) == ("create", me, "loomctl")
    table = cli("history", service).stdout
    assert "db_user" in table and who in table


def test_the_trail_cannot_be_written_in_another_users_name(database_url, pg, mallory) -> None:
    who, url = mallory
    service = unique("forged")
    assert Cli(database_url, group=["config"])("set", service, "--create").exit_code == 0
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO consumer_config_changes (service_name, change_type, changed_fields, changed_by, source, db_user)"
            " VALUES (%s, 'update', '{}', 'alice', 'loomctl', 'alice')",
            (service,),
        )
    forged = _newest(pg, "consumer_config_changes", "service_name", service)
    assert (forged["changed_by"], forged["db_user"]) == ("alice", who)
    first = pg.execute(
        "SELECT id, db_user FROM consumer_config_changes WHERE service_name = %s ORDER BY id LIMIT 1", (service,)
    ).fetchone()
    with psycopg.connect(url) as conn:
        conn.execute("UPDATE consumer_config_changes SET db_user = 'alice', changed_by = 'alice' WHERE id = %s", (first[0],))
    after = pg.execute("SELECT changed_by, db_user FROM consumer_config_changes WHERE id = %s", (first[0],)).fetchone()
    assert after == ("alice", first[1])  # the actor may be rewritten by whoever may write the table; the user is kept


def test_the_cluster_registrys_trail_records_the_database_user_too(database_url, pg, mallory) -> None:
    who, url = mallory
    name = unique("audited")
    clusters = Cli(database_url, group=["cluster"])
    assert clusters("add", name, "--bootstrap-servers", "127.0.0.1:9092").exit_code == 0
    with psycopg.connect(url) as conn:
        conn.execute("SET LOCAL loomctl.actor = 'alice'")
        conn.execute("UPDATE kafka_clusters SET description = 'moved' WHERE cluster_name = %s", (name,))
    row = _newest(pg, "kafka_cluster_changes", "cluster_name", name)
    assert (row["changed_by"], row["db_user"]) == ("alice", who)
    (newest, *_) = clusters.json("history", name)
    assert (newest["changed_by"], newest["db_user"]) == ("alice", who)
