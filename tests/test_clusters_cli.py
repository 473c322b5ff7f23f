"""`loomctl cluster`: the registry's commands validate, audit and answer in JSON as `config` does, keep secrets out of
the database and out of every message, and check what a real cluster can do."""

from __future__ import annotations

import json

import psycopg
import pytest

from support import Cli, free_port, own_database, unique

pytestmark = pytest.mark.integration


@pytest.fixture
def cli(database_factory, services):
    with own_database(database_factory, "loomreg") as url:
        yield Cli(url, services.bootstrap_servers, group=["cluster"])


def test_a_fresh_database_has_the_default_cluster_with_the_environments_brokers(cli) -> None:
    [default] = cli.json("list")
    assert default["cluster_name"] == "default" and default["bootstrap_servers"] is None
    assert default["brokers_from"] == "environment" and default["services"] == 0
    assert cli.json("show", "default")["cluster_name"] == "default"


def test_add_set_remove_are_audited_with_actor_and_reason(cli, tmp_path) -> None:
    name = unique("eu", 6)
    added = cli.json("add", name, "--bootstrap-servers", "k1.eu:9093,k2.eu:9093", "--label", "region=eu",
                     "--description", "production in Europe", "--reason", "new region", "--actor", "ops")
    assert added["action"] == "create" and {c["field"] for c in added["changes"]} >= {"bootstrap_servers", "labels"}
    changed = cli.json("set", name, "--label", "region=", "--label", "tier=prod", "--if-version", "1", "--actor", "ops")
    assert changed["action"] == "update" and changed["version_after"] == 2
    assert cli.json("show", name)["labels"] == {"tier": "prod"}
    stale = cli("set", name, "--description", "late", "--if-version", "1")
    assert stale.exit_code == 4 and "is at version 2, not 1" in stale.stderr
    history = cli.json("history", name)
    assert [h["change_type"] for h in history] == ["update", "create"]
    assert history[1]["changed_by"] == "ops" and history[1]["reason"] == "new region" and history[1]["source"] == "loomctl"
    assert cli("remove", name, "--yes").exit_code == 0
    assert cli("show", name).exit_code == 3
    assert [h["change_type"] for h in cli.json("history", name)][0] == "delete"  # the trail outlives the row


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["add", "bad name", "--bootstrap-servers", "k:9092"], "cluster name bad name:"),
        (["add", "x" * 64, "--bootstrap-servers", "k:9092"], "1 to 63 characters"),
        (["add", "nobrokers"], "--bootstrap-servers is required"),
        (["add", "badport", "--bootstrap-servers", "k:99999"], "must be a number from 1 to 65535"),
        (["add", "twosources", "--bootstrap-servers", "k:1", "--properties-file", "/x", "--properties-env", "X"], "give one"),
        (["add", "badenv", "--bootstrap-servers", "k:1", "--properties-env", "1-not-a-name"], "an environment variable name"),
        (["add", "badlabel", "--bootstrap-servers", "k:1", "--label", "Region=eu"], "a key is 1 to 63 characters"),
        (["add", "nolabelvalue", "--bootstrap-servers", "k:1", "--label", "region"], "expected key=value"),
        (["add", "nofile", "--bootstrap-servers", "k:1", "--properties-file", "/nonexistent/kafka.properties"], ""),
        (["set", "default", "--properties-file", "/nonexistent"], ""),
        (["set", "nowhere", "--description", "x"], "no cluster nowhere"),
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(cli, args, message) -> None:
    before = cli.json("list")
    result = cli(*args)
    assert result.exit_code in (2, 3), result.output
    assert message in result.stderr and "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1
    assert cli.json("list") == before


def test_a_cluster_in_use_cannot_be_removed_and_a_service_cannot_join_a_stranger(cli, services) -> None:
    name = unique("used", 6)
    cli("add", name, "--bootstrap-servers", services.bootstrap_servers)
    config = Cli(cli.database_url, services.bootstrap_servers, group=["config"])
    service = unique("svc")
    assert config("set", service, "--create", "--cluster", name).exit_code == 0
    refused = cli("remove", name, "--yes")
    assert refused.exit_code == 4 and service in refused.stderr
    stranger = config("set", service, "--cluster", "nowhere")
    assert stranger.exit_code == 3 and "no cluster nowhere" in stranger.stderr
    assert config.json("show", service)["cluster_name"] == name
    assert [c["cluster_name"] for c in config.json("list", "--cluster", name)] == [name]


def test_a_properties_file_is_named_never_stored_or_shown(cli, tmp_path) -> None:
    secret = "s3cr3t-" + unique("pw", 8)
    props = tmp_path / "eu.properties"
    props.write_text(f"security.protocol=SASL_SSL\nsasl.mechanism=PLAIN\nsasl.username=loom\nsasl.password={secret}\n")
    name = unique("sec", 6)
    result = cli("add", name, "--bootstrap-servers", f"127.0.0.1:{free_port()}", "--properties-file", str(props), "-o", "json")
    assert result.exit_code == 0 and secret not in result.output
    checked = cli("check", name, "--timeout", "2", "-o", "json")
    assert checked.exit_code == 5 and secret not in checked.output
    with psycopg.connect(cli.database_url) as conn:
        dumped = json.dumps(conn.execute("SELECT to_jsonb(k) FROM kafka_clusters k").fetchall(), default=str)
        trail = json.dumps(conn.execute("SELECT to_jsonb(c) FROM kafka_cluster_changes c").fetchall(), default=str)
    assert secret not in dumped and secret not in trail and str(props) in dumped


def test_check_asks_the_real_cluster_and_keeps_the_answer_while_an_unreachable_one_is_exit_5(cli) -> None:
    cli("add", "gone", "--bootstrap-servers", f"127.0.0.1:{free_port()}")
    result = cli("check", "--timeout", "3", "-o", "json")
    assert result.exit_code == 5 and "could not check gone" in result.stderr
    checks = {c["cluster_name"]: c for c in json.loads(result.stdout)}
    default = checks["default"]["capabilities"]
    assert checks["default"]["reachable"] and default["broker_count"] == 1
    assert default["group_configs"]["supported"] is True and default["kraft"]["supported"] is True
    assert not checks["gone"]["reachable"] and checks["gone"]["capabilities"] is None
    kept = cli.json("show", "default")
    assert kept["checked_at"] is not None and kept["capabilities"]["cluster_id"] == default["cluster_id"]
