"""Every command, driven through the CLI runner with generated arguments, import documents and LOOM_* values.

What must hold for any input, however odd: the exit code is one of 0..5, no traceback, a failure is one
line on stderr, no secret of the environment appears in any output, and a failed command changed nothing
in the database (a checksum of its tables). The default profile runs over 10,000 cases in a few minutes;
``LOOM_FUZZ=long`` runs twenty times as many, with fresh random seeds, for nights.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import typer
import typer.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import own_database
from support import runner as runner_with

from loomctl.cli import app

pytestmark = pytest.mark.integration

LONG = os.environ.get("LOOM_FUZZ") == "long"
SCALE = 20 if LONG else float(os.environ.get("LOOM_FUZZ_SCALE", "1"))
"""``LOOM_FUZZ_SCALE=0.1`` runs a tenth of the cases, for a quick look while changing this file."""
EXAMPLES = {"arguments": 6000, "documents": 2500, "environment": 1500}
"""Cases per suite in the default profile: 10,000 in all."""
COUNTED: dict[str, int] = {}


def fuzz_settings(suite: str) -> Any:
    return settings(
        max_examples=max(1, int(EXAMPLES[suite] * SCALE)), deadline=None, database=None, derandomize=not LONG, print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
    )


SECRET = "Zq7-secret-Xv9"
"""A password the environment carries: it must never be shown."""
EXCLUDED = {
    # long-running, or changes outside the test's database: the stack, the schema, the shell's rc files
    ("lag", "collect"), ("dev", "up"), ("dev", "down"), ("dev", "traffic"), ("db", "upgrade"), ("db", "downgrade"),
    # seconds each (a whole schema comparison, or offline SQL generation): covered by their own tests
    ("db", "check"), ("db", "sql"),
}
NEVER = {"--watch", "--install-completion", "--show-completion"}
"""Options that redraw until Ctrl-C or write the user's shell files."""


@functools.lru_cache(maxsize=None)
def _command(typer_app: Any) -> Any:
    return typer.main.get_command(typer_app)


@pytest.fixture(scope="module")
def runner() -> Iterator[typer.testing.CliRunner]:
    # Typer builds the Click command anew on every invoke (80 ms here); the fuzz builds it once
    original = typer.testing._get_command
    typer.testing._get_command = _command
    try:
        yield runner_with(COLUMNS="120", LOOM_ACTOR="fuzzer")
    finally:
        typer.testing._get_command = original


@pytest.fixture(scope="module")
def fuzz_db(database_factory) -> Iterator[str]:
    """A migrated database of the fuzz's own, with a few services, changes and a topic change."""
    with own_database(database_factory, "loomfuzz") as url:
        with psycopg.connect(url, autocommit=True) as conn:
            for name in ("alpha", "beta-svc", "speech-processor"):
                conn.execute("INSERT INTO pipeline_consumer_configs (service_name, consumer_group_id) VALUES (%s, %s)",
                             [name, f"{name}-group"])
            conn.execute("UPDATE pipeline_consumer_configs SET max_poll_records = 7 WHERE service_name = 'alpha'")
            conn.execute("INSERT INTO topic_partition_changes (topic_name, current_partitions, recommended_partitions, reason)"
                         " VALUES ('fuzz.topic', 1, 3, 'fuzz')")
        yield url


TABLES = ("pipeline_consumer_configs", "consumer_config_changes", "topic_partition_changes",
          "consumer_processing_metrics", "consumer_lag_history")
OUTCOME_RECORDS = {("partitions", "apply"): "topic_partition_changes", ("config", "push"): "consumer_config_changes"}
"""The exceptions to "a failed command changed nothing": `partitions apply` records on each change it
tried what the cluster answered (failed, or pending with the error), then exits 1 or 5 to say that not
every change is applied; `config push` records each group the broker took, then exits 1 when it refused
another. Those records are the command's result, not a half-done write."""


@pytest.fixture(scope="module")
def checksum(fuzz_db) -> Iterator[Any]:
    conn = psycopg.connect(fuzz_db, autocommit=True)

    def take(skip: str | None = None) -> str:
        query = " || ".join(
            f"coalesce((SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM {table} AS t), '-')"
            for table in TABLES if table != skip
        )
        return conn.execute(f"SELECT {query}").fetchone()[0]

    yield take
    conn.close()


def _leaves() -> list[tuple[tuple[str, ...], Any]]:
    root = typer.main.get_command(app)

    def walk(group: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
        for name, command in group.commands.items():
            if hasattr(command, "commands"):
                yield from walk(command, (*path, name))
            elif (*path, name)[:2] not in EXCLUDED:
                yield (*path, name), command

    return list(walk(root, ()))


LEAVES = _leaves()

HOSTILE = st.sampled_from([
    "", " ", "-", "--", "-1", "0", "1", "2147483648", "9" * 40, "9" * 5000, "1e9", "nan", "inf", "-inf", "0.0001",
    "١٢", "１２", "1_000", "0x10", "30s", "15m", "1h", "7d", "3650d", "3651d", "1ms", "1h30m", "a\nb", "a\x00b", "\t",
    "'; DROP TABLE pipeline_consumer_configs; --", "../../etc/passwd", "/abs/path/evil", "%s%n", "{0}", "ß", "é" * 300,
    "\u202e", "\ud7ff", "\udcff", "x" * 10_000, "speech-processor", "alpha", "beta-svc", "fuzz.topic", "ai-model", "fast",
    "json", "yaml", "table", "librdkafka", "java", "kafkajs", "env", "warn", "critical", "service", "topic", "partition",
    "max_poll_records=5", "max_poll_records=0", "session_timeout_ms=1", "auto_offset_reset=earliest", "key=", "=v",
    "postgresql://u:pw@127.0.0.1:1/x",
])
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
VALUES = st.one_of(HOSTILE, HOSTILE, TEXT, st.integers(-10**20, 10**20).map(str), st.floats().map(str))


@st.composite
def command_line(draw: Any) -> list[str]:
    path, command = draw(st.sampled_from(LEAVES))
    args: list[str] = []
    for param in command.params:
        if param.param_type_name == "argument":
            count = draw(st.integers(0, 2)) if param.nargs != 1 else draw(st.sampled_from([0, 1, 1, 1]))
            args += [draw(VALUES) for _ in range(count)]
        elif set(param.opts) & NEVER or not draw(st.booleans()):
            continue
        elif param.is_flag:
            args.append(draw(st.sampled_from(param.opts)))
        else:
            args += [draw(st.sampled_from(param.opts)), draw(VALUES)]
    if draw(st.integers(0, 9)) == 0:
        args.insert(draw(st.integers(0, len(args))), draw(st.sampled_from(["--no-such-option", "-z", "extra"])))
    if draw(st.booleans()):
        args += ["-o", draw(st.sampled_from(["json", "yaml", "table"]))]
    return [*path, *args]


def check(result: Any, *, before: str | None, after: Any, secrets: tuple[str, ...] = (SECRET,)) -> None:
    """What must hold for every command and input."""
    output = result.stdout + result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit), (repr(result.exception), output[-2000:])
    assert "Traceback" not in output, output[-2000:]
    assert result.exit_code in (0, 1, 2, 3, 4, 5), (result.exit_code, result.stderr[-2000:])
    for secret in secrets:
        assert secret not in output, output[-2000:]
    if result.exit_code != 0:
        helped = result.exit_code == 2 and result.stderr.startswith("Usage:")  # a group named alone prints its help
        # progress lines may come first (stderr is for people); the failure itself is one last line
        errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
        assert helped or (len(errors) == 1 and result.stderr.endswith(errors[0] + "\n")), result.stderr[-2000:]
        if before is not None:
            assert after() == before, "a failed command changed the database"


@fuzz_settings("arguments")
@given(argv=command_line())
def test_any_arguments_to_any_command(argv, runner, fuzz_db, services, checksum, tmp_path_factory):
    COUNTED["arguments"] = COUNTED.get("arguments", 0) + 1
    skip = OUTCOME_RECORDS.get(tuple(argv[:2]))
    before = checksum(skip)
    base = ["--database-url", fuzz_db, "--bootstrap-servers", services.bootstrap_servers]
    if argv[0] == "dev":  # never the session's stack: a folder with none
        argv = [*argv, "--dir", str(tmp_path_factory.getbasetemp() / "no-stack")]
    result = runner.invoke(app, [*base, *argv], prog_name="loomctl", catch_exceptions=True)
    check(result, before=before, after=lambda: checksum(skip))


SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**30, 10**30), st.floats(), TEXT, HOSTILE)
SETTING_KEYS = st.sampled_from(["max_poll_records", "session_timeout_ms", "heartbeat_interval_ms", "auto_offset_reset",
                                "enable_auto_commit", "fetch_max_bytes", "max.poll.records", "max_poll_record", "x"])
SERVICE_KEYS = st.sampled_from(["service_name", "consumer_group_id", "profile", "description", "settings", "servics"])
DOCUMENT = st.recursive(
    SCALARS,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.one_of(SERVICE_KEYS, SETTING_KEYS, TEXT), children, max_size=4)),
    max_leaves=12,
)
SERVICE = st.fixed_dictionaries(
    {"service_name": st.one_of(st.sampled_from(["alpha", "fuzz-new", "beta-svc"]), SCALARS)},
    optional={"consumer_group_id": st.one_of(st.sampled_from(["alpha-group", "g-new"]), SCALARS),
              "profile": st.one_of(st.sampled_from(["ai-model", "fast", "nope"]), SCALARS),
              "description": st.one_of(TEXT, DOCUMENT), "settings": st.dictionaries(SETTING_KEYS, SCALARS, max_size=4)},
)


@st.composite
def import_file(draw: Any) -> bytes:
    import json

    import yaml

    document = draw(st.one_of(
        st.fixed_dictionaries({"services": st.lists(SERVICE, max_size=3)}), st.lists(SERVICE, max_size=3), DOCUMENT))
    kind = draw(st.sampled_from(["yaml", "json", "raw", "mangled"]))
    if kind == "raw":
        return draw(st.binary(max_size=200))
    try:
        text = yaml.safe_dump(document, allow_unicode=True) if kind != "json" else json.dumps(document)
    except (ValueError, yaml.YAMLError):  # a float nan in JSON, a value PyYAML cannot dump
        text = repr(document)
    data = text.encode("utf-8", "surrogatepass")
    if kind == "mangled":
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.sampled_from([b"\x00", b"\xff\xfe", b"[" * 300, b"&a *a", b": : :", b"\t"])) + data[at:]
    return data


@fuzz_settings("documents")
@given(data=import_file(), flags=st.sampled_from([["--yes"], ["--yes", "--prune"], ["--dry-run"], ["--yes", "-o", "json"]]))
def test_any_import_document(data, flags, runner, fuzz_db, checksum, tmp_path_factory):
    COUNTED["documents"] = COUNTED.get("documents", 0) + 1
    path = tmp_path_factory.getbasetemp() / "fuzz-import.yaml"
    path.write_bytes(data)
    before = checksum()
    result = runner.invoke(app, ["--database-url", fuzz_db, "config", "import", str(path), *flags], prog_name="loomctl")
    check(result, before=before, after=checksum)
    if result.exit_code == 0 and "--prune" in flags:
        _restore(fuzz_db)


def _restore(url: str) -> None:
    """Put back the services a successful --prune import deleted, so later cases have them."""
    with psycopg.connect(url, autocommit=True) as conn:
        for name in ("alpha", "beta-svc", "speech-processor"):
            conn.execute("INSERT INTO pipeline_consumer_configs (service_name, consumer_group_id) VALUES (%s, %s)"
                         " ON CONFLICT DO NOTHING", [name, f"{name}-group"])


HOSTS = st.sampled_from(["127.0.0.1", "localhost", "[::1]", "[::1", "127.0.0.1:99999", "127.0.0.1:0", "127.0.0.1:x", ""])
URLS = st.one_of(
    st.builds(lambda scheme, host, db, query: f"{scheme}://loom:{SECRET}@{host}:1/{db}{query}",
              st.sampled_from(["postgresql", "postgres", "postgresql+psycopg", "mysql", "http", "sqlite", "", "postgresql:"]),
              HOSTS, st.sampled_from(["loom", "", "a/b", "%00"]),
              st.sampled_from(["", f"?password={SECRET}", f"?sslpassword={SECRET}&x=1", "?connect_timeout=1"])),
    st.sampled_from([f"host=127.0.0.1 port=1 password={SECRET}", f"host=127.0.0.1 port=1 password='{SECRET} x'",
                     f"postgresql://loom@127.0.0.1:1/loom?password={SECRET}", f"postgresql://loom:{SECRET}@[::1/loom",
                     f"mysql://loom:{SECRET}@127.0.0.1/x", "not a url", "", " ", "postgresql://", "\x00"]),
    TEXT,
)
PROPERTIES = st.lists(st.one_of(
    st.sampled_from([f"sasl.password={SECRET}", f"sasl.password {SECRET}", f"sasl.password:{SECRET}",
                     f"ssl.key.password = {SECRET}", f"sasl.jaas.config=x password=\"{SECRET}\";", "bootstrap.servers=127.0.0.1:1",
                     "security.protocol=SASL_PLAINTEXT", "sasl.mechanism=PLAIN", "sasl.username=u", "no-separator",
                     "\\", "key\\\n  continued", "# comment", "! comment", "=value", "\x00", "\xff"]),
    TEXT), max_size=6)
ENV_COMMANDS = [["config", "list"], ["config", "show", "alpha"], ["lag", "status"], ["db", "current"], ["alerts"],
                ["partitions", "list"], ["metrics", "show", "alpha"], ["lag", "show", "alpha"], ["db", "history"]]


@fuzz_settings("environment")
@given(url=URLS, properties=PROPERTIES, servers=st.sampled_from(["", "127.0.0.1:1", "::1", "a:b:c", "x" * 300]),
       command=st.sampled_from(ENV_COMMANDS), binary=st.booleans())
def test_any_loom_environment(url, properties, servers, command, binary, runner, tmp_path_factory):
    COUNTED["environment"] = COUNTED.get("environment", 0) + 1
    config = tmp_path_factory.getbasetemp() / "fuzz-kafka.properties"
    text = "\n".join(properties)
    config.write_bytes(text.encode("utf-8", "surrogatepass") + (b"\xff\xfe\x00" if binary else b""))
    # an environment variable cannot hold a NUL: the operating system refuses it before loomctl runs
    env = {"LOOM_DATABASE_URL": url.replace("\x00", ""), "LOOM_KAFKA_BOOTSTRAP_SERVERS": servers,
           "LOOM_KAFKA_CONFIG": str(config)}
    result = runner.invoke(app, command, env=env, prog_name="loomctl")
    check(result, before=None, after=None, secrets=(SECRET,))


def test_the_default_profile_runs_ten_thousand_cases():
    # runs after the three suites above (pytest keeps file order); a profile that shrank would show here
    if not COUNTED:
        pytest.skip("run with the fuzz suites above")
    assert sum(COUNTED.values()) >= 10_000 * SCALE, COUNTED
