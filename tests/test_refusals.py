"""What used to end in a traceback (issue 22's reproductions) is one line on stderr with the exit code of what
happened, and changes nothing: a read-only database, an odd revision, a partition count past the client's limit."""

from __future__ import annotations

import json

import psycopg
import pytest
from support import Cli, create_topic, delete_topics, own_database, partition_count, unique

pytestmark = pytest.mark.integration


def one_line(result) -> str:
    """The failure's one line: stderr's last (a plan may go before it), the only one that is an error."""
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert errors == lines[-1:], result.stderr
    assert "Traceback" not in result.output
    return errors[0]


@pytest.fixture
def read_only_url(database_factory):
    with own_database(database_factory, "loomro") as url:
        Cli(url)("config", "set", "ro-service", "--create", "max_poll_records=7")
        dbname = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{dbname}" SET default_transaction_read_only = on')
        yield url


@pytest.mark.parametrize(
    "args",
    [
        ("config", "set", "ro-service", "max_poll_records=9", "--reason", "secret-reason-Zq7"),
        ("config", "set", "new-service", "--create"),
        ("config", "delete", "ro-service", "--yes"),
        ("config", "import", "examples/pipeline-services.yaml", "--yes"),
        ("partitions", "cancel", "no-such-topic", "--reason", "x"),  # its read locks the row: refused as a write
    ],
)
def test_a_write_on_a_read_only_database_is_one_line_exit_5(read_only_url, args):
    result = Cli(read_only_url)(*args)
    line = one_line(result)
    assert result.exit_code == 5, line
    assert "takes no writes" in line and "secret-reason-Zq7" not in result.output and "9" not in line.split(":")[-1]
    shown = Cli(read_only_url).json("config", "show", "ro-service")
    assert (shown["max_poll_records"], shown["version"]) == (7, 1)


@pytest.mark.parametrize("revision", ["", " ", "@", "0005@", "::", "1:2:3", "head+x", "héad", "head-99"])
def test_an_odd_revision_is_one_line_exit_2(revision, database_url):
    for command in (("db", "sql", revision), ("db", "downgrade", revision), ("db", "upgrade", revision)):
        result = Cli(database_url)(*command)
        line = one_line(result)
        assert result.exit_code == 2, (command, line)
    assert Cli(database_url).json("db", "current")[0]["is_head"] is True


def test_a_count_past_the_client_limit_is_refused_at_add_and_does_not_block_apply(services, database_url, admin):
    cli = Cli(database_url, services.bootstrap_servers, group=["partitions"])
    big, small = create_topic(admin, unique("huge")), create_topic(admin, unique("grow"))
    try:
        result = cli("add", big, "100000000", "--reason", "too many")
        assert result.exit_code == 2 and "100,000" in one_line(result)
        assert cli.json("list", big) == []
        # one written by the guide's SQL, past the checks of add: it fails alone, the other is applied
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO topic_partition_changes (topic_name, current_partitions, recommended_partitions, reason)"
                " VALUES (%s, 1, 100000000, 'guide'), (%s, 1, 3, 'guide')",
                [big, small],
            )
        result = cli("apply", big, small, "--yes", "-o", "json")
        assert result.exit_code == 1 and "Traceback" not in result.output
        outcomes = {r["topic_name"]: (r["outcome"], r["error"]) for r in json.loads(result.stdout)["results"]}
        assert outcomes[small] == ("applied", None)
        assert outcomes[big][0] == "failed" and "100,000" in outcomes[big][1]
        assert (partition_count(admin, big), partition_count(admin, small)) == (1, 3)
        assert [c["status"] for c in cli.json("list", big, "--failed")] == ["failed"]
    finally:
        delete_topics(admin, [big, small])


def test_set_push_without_a_cluster_writes_nothing(database_url):
    cli = Cli(database_url)
    service = unique("push-svc")
    cli("config", "set", service, "--create", "group_protocol=consumer")
    result = cli("config", "set", service, "session_timeout_ms=50000", "--push")
    assert result.exit_code == 2 and "bootstrap servers" in one_line(result)
    assert cli.json("config", "show", service)["version"] == 1


@pytest.mark.parametrize("servers", ["a:١٢٣", "b:", ":9092", "h:99999", "x:1,[::1]:0"])
def test_bootstrap_servers_with_a_bad_port_are_refused_at_once(servers):
    for args in (("lag", "show", "--group", "g"), ("config", "drift"), ("partitions", "plan")):
        result = Cli(None, servers)(*args)
        assert result.exit_code == 2, (args, result.output)
        assert "bootstrap servers" in one_line(result) or "database" in one_line(result)


@pytest.mark.parametrize("group", [" ", "   ", "\t"])
def test_a_blank_group_id_is_refused_where_librdkafka_would_abort(database_url, group):
    cli = Cli(database_url)
    service = unique("blank-group")
    result = cli("config", "set", service, "--create", "--group", group)
    assert result.exit_code == 2 and "invalid consumer group id" in one_line(result)
    assert cli("config", "show", service).exit_code == 3
