"""Which Kafka release the local stack runs: `dev up --kafka-version`, LOOM_DEV_KAFKA_VERSION, the jars fetched per
release with their logging bridge, and a stack that keeps the release it began with."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from support import Cli, admin_client, alive, json_of, processes_mentioning, wait_for

from loomctl import devstack
from loomctl.devstack import kafka, kafka_tools, postgres
from loomctl.errors import BackendUnavailable, BadInput, Conflict, NotFound
from loomctl.kafka.capabilities import capabilities

OLDER = "4.0.1"
"""The oldest release Maven Central serves here (see `make test-older-broker`)."""


@pytest.fixture
def dev() -> Cli:
    return Cli(group=["dev"])


@pytest.fixture
def no_version_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(kafka.ENV_VERSION, raising=False)


# --- what a release looks like ------------------------------------------------------------------


@pytest.mark.parametrize("text", ["4.0.0", "4.0.1", "4.4.0", "4.10.12", "5.0.0", "10.2.3"])
def test_a_release_is_x_y_z_from_4_0_0_on(text: str) -> None:
    assert kafka.check_version(text) == text


@pytest.mark.parametrize(
    "text",
    ["", "4", "4.0", "4.0.1.2", "v4.0.1", "4.0.1-rc1", " 4.0.1", "4.0.1\n", "04.0.1", "4.0.x", "٤.0.1", "4..1", "-4.0.1"],
)
def test_anything_else_is_refused_in_one_line(text: str) -> None:
    with pytest.raises(BadInput, match="give a Kafka release as X.Y.Z") as caught:
        kafka.check_version(text, given_as="--kafka-version")
    assert "\n" not in str(caught.value) and str(caught.value).startswith("--kafka-version ")


@pytest.mark.parametrize("text", ["3.9.1", "2.8.2", "0.11.0"])
def test_a_release_before_4_0_is_refused_naming_the_oldest(text: str) -> None:
    with pytest.raises(BadInput, match=r"runs Kafka 4\.0\.0 or later"):
        kafka.check_version(text)


def test_the_variable_moves_the_release_the_cache_and_kafkas_tools(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv(kafka.ENV_VERSION, OLDER)
    assert kafka.version() == OLDER and kafka.requested_version() == OLDER
    libs = tmp_path / "loomctl" / f"kafka-{OLDER}" / "libs"
    assert kafka.libs_dir() == libs
    with pytest.raises(kafka_tools.ToolUnavailable, match=str(libs)):
        kafka_tools.tool_argv(kafka_tools.CONSUMER_GROUP_COMMAND)
    libs.mkdir(parents=True)
    argv = kafka_tools.tool_argv(kafka_tools.FEATURE_COMMAND, "describe")
    assert f"{libs}{os.sep}*" in argv and argv[-2:] == [kafka_tools.FEATURE_COMMAND, "describe"]
    # a call may still name another release
    named = tmp_path / "loomctl" / "kafka-4.4.0" / "libs"
    named.mkdir(parents=True)
    assert f"{named}{os.sep}*" in kafka_tools.tool_argv(kafka_tools.FEATURE_COMMAND, kafka_version="4.4.0")

    monkeypatch.setenv(kafka.ENV_VERSION, "")
    assert kafka.requested_version() is None and kafka.version() == kafka.default_version()


def test_a_malformed_variable_is_one_line_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(kafka.ENV_VERSION, "4.1")
    with pytest.raises(BadInput, match=f"^{kafka.ENV_VERSION} '4.1': give a Kafka release as X.Y.Z"):
        kafka.version()


@pytest.mark.parametrize("value", ["4.0", "latest", "3.9.0", ""])
def test_dev_up_with_a_malformed_version_exits_2_in_one_line_and_starts_nothing(dev: Cli, tmp_path: Path, value: str) -> None:
    state_dir = tmp_path / "stack"

    result = dev("up", "--dir", str(state_dir), "--kafka-version", value)

    assert result.exit_code == 2, result.output
    assert result.stdout == "" and len(result.stderr.strip().splitlines()) == 1
    assert "--kafka-version" in result.stderr and "Traceback" not in result.output
    assert not state_dir.exists()
    assert processes_mentioning(str(tmp_path)) == []


def test_dev_up_with_a_malformed_variable_exits_2_in_one_line_and_starts_nothing(
    dev: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(kafka.ENV_VERSION, "4.4")
    state_dir = tmp_path / "stack"

    result = dev("up", "--dir", str(state_dir))

    assert result.exit_code == 2, result.output
    assert len(result.stderr.strip().splitlines()) == 1 and kafka.ENV_VERSION in result.stderr
    assert not state_dir.exists()


# --- fetching a release ---------------------------------------------------------------------------

MAVEN_NOT_FOUND = (
    "\x1b[0m\x1b[0m[ERROR] Failed to execute goal on project loomctl-local-kafka: Could not resolve dependencies for "
    "project dev.loomctl:loomctl-local-kafka:pom:1: The following artifacts could not be resolved: "
    "org.apache.kafka:kafka_2.13:jar:{v}, org.apache.kafka:kafka-tools:jar:{v}: Could not find artifact "
    "org.apache.kafka:kafka_2.13:jar:{v} in central (https://repo.maven.apache.org/maven2) -> [Help 1]\n"
    "[ERROR] \n[ERROR] To see the full stack trace of the errors, re-run Maven with the -e switch.\n"
    "[ERROR] Re-run Maven using the -X switch to enable full debug logging.\n"
)
MAVEN_NOT_FOUND_CACHED = (
    "[ERROR] Failed to execute goal on project loomctl-local-kafka: Could not resolve dependencies for project "
    "dev.loomctl:loomctl-local-kafka:pom:1: The following artifacts could not be resolved: "
    "org.apache.kafka:kafka_2.13:jar:{v}: org.apache.kafka:kafka_2.13:jar:{v} was not found in "
    "https://repo.maven.apache.org/maven2 during a previous attempt. This failure was cached in the local repository\n"
)
MAVEN_OFFLINE = (
    "[ERROR] Failed to execute goal on project loomctl-local-kafka: Could not resolve dependencies for project "
    "dev.loomctl:loomctl-local-kafka:pom:1: Failed to collect dependencies at org.apache.kafka:kafka_2.13:jar:{v}: "
    "Failed to read artifact descriptor for org.apache.kafka:kafka_2.13:jar:{v}: Could not transfer artifact "
    "org.apache.kafka:kafka_2.13:pom:{v} from/to central (https://repo.maven.apache.org/maven2): "
    "repo.maven.apache.org: Temporary failure in name resolution -> [Help 1]\n" + "[ERROR] more\n" * 40
)


@pytest.mark.parametrize("output", [MAVEN_NOT_FOUND, MAVEN_NOT_FOUND_CACHED])
def test_a_release_maven_central_lacks_is_not_found_in_one_line(output: str) -> None:
    error = kafka.mvn_failure("4.0.99", 1, output.format(v="4.0.99"))

    assert isinstance(error, NotFound)
    assert str(error) == (
        "Kafka 4.0.99 is not on Maven Central (mvn found no org.apache.kafka:kafka_2.13:jar:4.0.99): "
        f"give a released version, e.g. {kafka.default_version()}"
    )


def test_any_other_mvn_failure_is_its_first_error_line_shortened() -> None:
    error = kafka.mvn_failure("4.2.0", 1, MAVEN_OFFLINE.format(v="4.2.0"))

    assert isinstance(error, BackendUnavailable) and not isinstance(error, NotFound)
    text = str(error)
    assert text.startswith("mvn could not fetch Kafka 4.2.0 (exit 1): Failed to execute goal")
    assert "\n" not in text and len(text) < 400 and "[ERROR]" not in text


def fake_mvn(bin_dir: Path, output: str, exit_code: int = 1) -> None:
    """An `mvn` that prints ``output`` and exits, first on PATH."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    (bin_dir / "out.txt").write_text(output)
    mvn = bin_dir / "mvn"
    mvn.write_text(f"#!/bin/sh\ncat '{bin_dir / 'out.txt'}'\nexit {exit_code}\n")
    mvn.chmod(0o755)


def test_dev_up_of_a_release_maven_cannot_fetch_exits_3_naming_it_and_leaves_nothing(
    dev: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_mvn(tmp_path / "bin", MAVEN_NOT_FOUND.format(v="4.0.99"))
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    state_dir = tmp_path / "stack"

    result = dev("up", "--dir", str(state_dir), "--kafka-version", "4.0.99")

    assert result.exit_code == 3, result.output
    assert result.stdout == "" and "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {kafka.mvn_failure('4.0.99', 1, MAVEN_NOT_FOUND.format(v='4.0.99'))}"]
    assert not state_dir.exists()
    assert list((tmp_path / "cache" / "loomctl").iterdir()) == []  # no half-fetched release
    assert processes_mentioning(str(tmp_path / "stack")) == []


@pytest.mark.slow
def test_maven_central_itself_has_no_such_release(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real mvn against Maven Central (a few seconds): its words are the ones :func:`kafka.mvn_failure` reads."""
    import shutil

    if shutil.which("mvn") is None:
        pytest.skip("no mvn")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    with pytest.raises(NotFound, match=r"^Kafka 4\.0\.99 is not on Maven Central") as caught:
        kafka.ensure_jars("4.0.99")

    assert "\n" not in str(caught.value)
    assert list((tmp_path / "cache" / "loomctl").iterdir()) == []


def test_the_cached_release_is_used_without_maven(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_mvn(tmp_path / "bin", "must not run", exit_code=99)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    libs = kafka.libs_dir("4.2.0")
    libs.mkdir(parents=True)

    assert kafka.ensure_jars("4.2.0") == libs


LISTING = """
The following files have been resolved:
   org.apache.logging.log4j:log4j-api:jar:2.25.5:runtime -- module org.apache.logging.log4j
   org.apache.logging.log4j:log4j-core:jar:2.25.5:runtime -- module org.apache.logging.log4j.core
"""


def test_the_bridge_follows_the_log4j_kafkas_own_poms_name() -> None:
    assert kafka.kafkas_log4j(LISTING) == "2.25.5"
    assert kafka.kafkas_log4j("\nThe following files have been resolved:\n   none\n") is None  # 4.0.x names none


def jars(folder: Path, *names: str) -> Path:
    folder.mkdir(parents=True)
    for name in names:
        (folder / name).write_bytes(b"")
    return folder


@pytest.mark.parametrize(
    ("names", "problem"),
    [
        (("kafka_2.13-4.0.1.jar", "slf4j-api-1.7.36.jar", "log4j-core-2.24.3.jar", "log4j-slf4j-impl-2.24.3.jar"), None),
        (("slf4j-api-1.7.36.jar", "log4j-core-2.24.3.jar", "log4j-slf4j-impl-2.24.3.jar"), "lack kafka_2.13-4.0.1.jar"),
        (("kafka_2.13-4.0.1.jar", "slf4j-api-2.0.17.jar", "log4j-core-2.24.3.jar", "log4j-slf4j-impl-2.24.3.jar"),
         "slf4j-api 2.0.17, not one 1.7.x"),
        (("kafka_2.13-4.0.1.jar", "slf4j-api-1.7.36.jar", "log4j-core-2.25.5.jar", "log4j-slf4j-impl-2.24.3.jar"),
         "log4j-slf4j-impl 2.24.3 beside log4j-core 2.25.5"),
        (("kafka_2.13-4.0.1.jar", "slf4j-api-1.7.36.jar", "log4j-core-2.24.3.jar"), "log4j-slf4j-impl none"),
    ],
)
def test_a_class_path_without_a_working_logging_bridge_is_named(tmp_path: Path, names: tuple[str, ...], problem: str | None) -> None:
    found = kafka.class_path_problem(jars(tmp_path / "libs", *names), "4.0.1")

    assert found == problem if problem is None else (found is not None and problem in found)


def test_the_jars_tell_their_release(tmp_path: Path) -> None:
    assert kafka.jars_version(jars(tmp_path / "a", "kafka_2.13-4.0.1.jar", "kafka-clients-4.0.1.jar")) == "4.0.1"
    assert kafka.jars_version(jars(tmp_path / "b", "kafka-clients-4.0.1.jar")) is None


# --- a stack keeps its release ---------------------------------------------------------------------


def recorded_stack(state_dir: Path, release: str, pid: int) -> dict[str, Any]:
    """A stack.json as `dev up` writes it, its servers' pids ``pid``."""
    (state_dir / "kafka" / "data").mkdir(parents=True)
    record = {
        "format": 1,
        "postgres": {"pid": pid, "port": 5999, "version": "15.8", "bin_dir": "/nowhere", "root": str(state_dir / "pg")},
        "kafka": {"pid": pid, "port": 9999, "controller_port": 9998, "version": release},
        "started_at": "2026-01-01T00:00:00+00:00",
    }
    (state_dir / "stack.json").write_text(json.dumps(record))
    return record


@pytest.fixture
def seems_running(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every recorded server alive and answering, so a stack.json reads as a running stack."""
    for module in (kafka, postgres):
        monkeypatch.setattr(module, "is_running", lambda *args, **kwargs: True)
        monkeypatch.setattr(module, "answers", lambda *args, **kwargs: True)


@pytest.mark.usefixtures("seems_running", "no_version_asked")
def test_a_running_stack_asked_for_another_release_refuses_in_one_line(dev: Cli, tmp_path: Path) -> None:
    state_dir = tmp_path / "stack"
    recorded_stack(state_dir, "4.1.2", os.getpid())
    before = (state_dir / "stack.json").read_text()

    with pytest.raises(Conflict) as caught:
        devstack.up(state_dir, kafka_version=OLDER)
    result = dev("up", "--dir", str(state_dir), "--kafka-version", OLDER)

    message = str(caught.value)
    assert message == (
        f"the local stack in {state_dir} runs Kafka 4.1.2, not {OLDER}: run `loomctl dev down --dir {state_dir}` first, "
        f"then `loomctl dev up --dir {state_dir} --kafka-version {OLDER}`"
    )
    assert result.exit_code == 4 and result.stderr.strip() == f"error: {message}" and result.stdout == ""
    assert (state_dir / "stack.json").read_text() == before


@pytest.mark.usefixtures("seems_running")
def test_the_variable_asking_another_release_refuses_too(dev: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state_dir = tmp_path / "stack"
    recorded_stack(state_dir, "4.1.2", os.getpid())
    monkeypatch.setenv(kafka.ENV_VERSION, OLDER)

    result = dev("up", "--dir", str(state_dir))

    assert result.exit_code == 4 and "runs Kafka 4.1.2, not 4.0.1" in result.stderr and "loomctl dev down" in result.stderr


@pytest.mark.usefixtures("seems_running", "no_version_asked")
def test_a_stack_asked_for_no_release_or_its_own_keeps_it(tmp_path: Path) -> None:
    state_dir = tmp_path / "stack"
    recorded_stack(state_dir, "4.1.2", os.getpid())

    for asked in (None, "4.1.2"):
        info = devstack.up(state_dir, kafka_version=asked)
        assert info.already_running and info.kafka_version == "4.1.2"


@pytest.mark.usefixtures("no_version_asked")
def test_a_stopped_stack_keeps_its_release_too(dev: Cli, tmp_path: Path) -> None:
    """Its data was formatted for its own release's metadata version: another release starts nothing on it."""
    dead = subprocess.Popen(["true"])
    dead.wait()
    state_dir = tmp_path / "stack"
    recorded_stack(state_dir, "4.1.2", dead.pid)

    result = dev("up", "--dir", str(state_dir), "--kafka-version", OLDER)

    assert result.exit_code == 4, result.output
    assert "holds the stopped brokers' data of Kafka 4.1.2, not 4.0.1" in result.stderr
    assert processes_mentioning(str(state_dir)) == []
    status = json_of(dev("status", "--dir", str(state_dir), "-o", "json"), expect=5)
    assert status["kafka"]["version"] == "4.1.2" and status["kafka"]["pid"] == dead.pid


# --- real brokers --------------------------------------------------------------------------------


@pytest.fixture
def session_stack(services: Any) -> Path:
    if services.state_dir is None:
        pytest.skip("the services come from LOOM_* variables, not from a stack this session started")
    return Path(services.state_dir)


@pytest.mark.integration
def test_the_session_broker_runs_the_release_asked_for_with_its_logging_alive(session_stack: Path) -> None:
    info = devstack.status(session_stack)
    release = kafka.version()

    assert info.kafka_version == release and [c.kafka.version for c in info.clusters] == [release]
    assert kafka.class_path_problem(kafka.libs_dir(release), release) is None
    assert info.kafka.log_file is not None
    # log4j 2 writes the broker's start line: the slf4j 1.x bridge of that release is in place
    assert "Kafka Server started (kafka.server.KafkaRaftServer)" in info.kafka.log_file.read_text()
    assert "SLF4J:" not in kafka.console_file(session_stack).read_text()
    metadata = kafka_tools.describe_features(info.bootstrap_servers or "")["metadata.version"]
    assert metadata.startswith(".".join(release.split(".")[:2]) + "-IV")  # Kafka's own tool: 4.0-IV3 for 4.0.1


@pytest.mark.slow
@pytest.mark.integration
def test_dev_up_runs_the_release_asked_for_and_refuses_another_until_down(dev: Cli, stack_dir: Path) -> None:
    java = kafka.find_java()
    if java is None or postgres.find_binaries() is None:
        pytest.skip("needs java and the PostgreSQL server programs")
    other = kafka.default_version() if kafka.default_version() != OLDER else "4.4.0"

    started = json_of(dev("up", "--dir", str(stack_dir), "--kafka-version", OLDER, "--no-migrate", "-o", "json"))
    pids = [started["postgres"]["pid"], started["kafka"]["pid"]]
    assert started["kafka"]["version"] == OLDER and [c["kafka"]["version"] for c in started["clusters"]] == [OLDER]
    assert kafka.libs_dir(OLDER).is_dir() and f"kafka-{OLDER}" in Path(f"/proc/{pids[1]}/cmdline").read_text()

    # Kafka's own kafka-features, from the same release's jars, names the release's metadata version
    bootstrap = started["bootstrap_servers"]
    features = kafka_tools.describe_features(bootstrap, kafka_version=OLDER)
    assert features["metadata.version"].startswith("4.0-IV"), features
    # ... and the capability check of `cluster check` infers a range holding it: group configs (4.0+), none of 4.3's
    found = capabilities(admin_client(bootstrap), timeout=10)
    assert found.broker_version.text == "4.0 to 4.2", found.broker_version
    assert found.group_configs.supported is True
    wait_for(
        "the broker's start line in its log (log4j 2 through the slf4j bridge)",
        lambda: "Kafka Server started" in Path(started["kafka"]["log_file"]).read_text(),
        timeout=30,
    )

    env = dev("env", "--dir", str(stack_dir))
    assert env.exit_code == 0 and f"export LOOM_DEV_KAFKA_VERSION={OLDER}" in env.stdout.splitlines()
    assert json_of(dev("status", "--dir", str(stack_dir), "-o", "json"))["kafka"]["version"] == OLDER

    refused = dev("up", "--dir", str(stack_dir), "--kafka-version", other)
    assert refused.exit_code == 4, refused.output
    assert f"runs Kafka {OLDER}, not {other}" in refused.stderr and "loomctl dev down" in refused.stderr
    assert all(alive(pid) for pid in pids)
    again = json_of(dev("up", "--dir", str(stack_dir), "-o", "json"))  # no release asked: it keeps its own
    assert again["already_running"] and again["kafka"]["pid"] == pids[1]

    assert dev("down", "--dir", str(stack_dir)).exit_code == 0
    assert not any(alive(pid) for pid in pids) and not stack_dir.exists()



FEATURES_4_0 = (
    "Feature: group.version\tSupportedMinVersion: 0\tSupportedMaxVersion: 1\tFinalizedVersionLevel: 1\tEpoch: 52\n"
    "Feature: metadata.version\tSupportedMinVersion: 3.3-IV3\tSupportedMaxVersion: 4.0-IV3\tFinalizedVersionLevel: 4.0-IV3\tEpoch: 52\n"
)
FEATURES_4_4 = (
    "Feature: metadata.version                          SupportedMinVersion: 3.3-IV3          SupportedMaxVersion: 4.4-IV2"
    "          FinalizedVersionLevel: 4.4-IV2          Epoch: 27\n"
    "Feature: share.version                             SupportedMinVersion: 0                SupportedMaxVersion: 2"
    "                FinalizedVersionLevel: 2                Epoch: 27\n"
)


def test_kafka_features_output_of_either_release_reads() -> None:
    assert kafka_tools.parse_features(FEATURES_4_0) == {"group.version": "1", "metadata.version": "4.0-IV3"}
    assert kafka_tools.parse_features(FEATURES_4_4) == {"metadata.version": "4.4-IV2", "share.version": "2"}
    assert kafka_tools.parse_features("no features\n") == {}
