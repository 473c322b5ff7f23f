"""Each setting's reload class (how a change reaches running services), from the one field table to every place that
says it: `config fields`, `config set`, the database's consumer_config_reload_class() behind the raw UPDATE's
NOTICE, and the notification running loaders hear (migration 0014), on a real PostgreSQL."""

from __future__ import annotations

import json
import threading
from typing import Any

import psycopg
import pytest
from support import Cli, unique

from loomctl.consumer_config import DEFAULTS, FIELDS, GROUP_PROTOCOLS, reload_class

pytestmark = pytest.mark.integration


def test_the_database_says_each_fields_class_as_the_field_table(pg: psycopg.Connection) -> None:
    for protocol in GROUP_PROTOCOLS:
        for name in [f.name for f in FIELDS] + ["consumer_group_id"]:
            (theirs,) = pg.execute("SELECT consumer_config_reload_class(%s, %s)", (name, protocol)).fetchone()
            assert theirs == reload_class(name, {**DEFAULTS, "group_protocol": protocol}), (name, protocol)
        for column in ("lag_slo_seconds", "description", "profile"):
            assert pg.execute("SELECT consumer_config_reload_class(%s, %s)", (column, protocol)).fetchone() == (None,)


def test_the_classes_by_group_protocol() -> None:
    def classes(protocol: str) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for f in FIELDS:
            out.setdefault(reload_class(f.name, {**DEFAULTS, "group_protocol": protocol}), set()).add(f.name)
        return out

    classic, consumer, share = (classes(p) for p in GROUP_PROTOCOLS)
    assert classic["live"] == consumer["live"] == share["live"] == {"max_poll_records"}
    assert "broker" not in classic and {"fetch_max_bytes", "max_poll_interval_ms", "session_timeout_ms"} <= classic["recreate"]
    assert consumer["broker"] == {"session_timeout_ms", "heartbeat_interval_ms"}
    assert "partition_assignment_strategy" in consumer["unused"] and "group_protocol" in consumer["recreate"]
    assert share["broker"] == {"session_timeout_ms", "heartbeat_interval_ms", "auto_offset_reset", "isolation_level",
                               "record_lock_duration_ms"}  # fmt: skip
    assert "enable_auto_commit" in share["recreate"]  # a share consumer's acknowledgement mode


def test_config_set_and_config_fields_say_the_class(database_url: str) -> None:
    cli = Cli(database_url, group=["config"])
    service = unique("reload")
    assert cli("set", service, "--create").exit_code == 0
    done = cli("set", service, "max_poll_records=7", "fetch_max_bytes=2000000", "lag_slo_seconds=90", "-o", "json")
    assert done.exit_code == 0, done.output
    answer = json.loads(done.stdout)
    assert {c["field"] for c in answer["changes"]} == {"max_poll_records", "fetch_max_bytes", "lag_slo_seconds"}
    assert answer["reloads"] == {"max_poll_records": "live", "fetch_max_bytes": "recreate"}
    assert "running services: max_poll_records at the next poll; fetch_max_bytes when the loaders recreate the client" in done.stderr
    fields = {f["name"]: f["reload"] for f in cli.json("fields")}
    assert fields["max_poll_records"] == "live" and fields["fetch_max_bytes"] == "recreate"
    assert fields["session_timeout_ms"] == "recreate (consumer: broker, share: broker)"


def test_the_guides_update_is_told_its_classes_and_loaders_hear_it(database_url: str, pg: psycopg.Connection) -> None:
    service = unique("reload-sql")
    assert Cli(database_url)("config", "set", service, "--create").exit_code == 0
    (version,) = pg.execute("SELECT version FROM pipeline_consumer_configs WHERE service_name = %s", (service,)).fetchone()

    heard: list[Any] = []
    listening = threading.Event()

    def listen() -> None:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("LISTEN loomctl_config")
            listening.set()
            for note in conn.notifies(timeout=30):
                payload = json.loads(note.payload)
                if payload["service"] == service:
                    heard.append(payload)
                    return

    listener = threading.Thread(target=listen)
    listener.start()
    assert listening.wait(30)
    notices: list[str] = []
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.add_notice_handler(lambda diag: notices.append(diag.message_primary or ""))
        conn.execute(
            "UPDATE pipeline_consumer_configs SET max_poll_records = 5, max_poll_interval_ms = 900000 WHERE service_name = %s",
            (service,),
        )
    listener.join(30)
    assert heard == [{"service": service, "version": version + 1, "deleted": False}]
    assert notices == [
        f"{service} version {version + 1}: max_poll_interval_ms applies when the loaders recreate the client; "
        "max_poll_records applies at the next poll"
    ]
