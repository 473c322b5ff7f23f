"""devstack pieces: configuration, parsing, paths and help texts without a server; restarts of a real one (slow)."""

from __future__ import annotations

import base64
import datetime as dt
import os
import pwd
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import typer

from support import private_postgres

from loomctl.cli import dev
from loomctl.devstack import KafkaInfo, PostgresInfo, StackInfo, default_state_dir, env_lines, kafka, postgres


@pytest.mark.parametrize(
    ("output", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15\nOpenJDK Runtime Environment', 17),
        ('openjdk version "21" 2023-09-19', 21),
        ('java version "1.8.0_402"', 8),
        ("no version here", None),
    ],
)
def test_java_major_version_is_read_from_java_version_output(output: str, major: int | None) -> None:
    assert kafka.parse_java_major(output) == major


def test_cluster_ids_look_like_kafka_uuids() -> None:
    ids = {kafka.new_cluster_id() for _ in range(200)}

    assert len(ids) == 200
    for cluster_id in ids:
        assert len(cluster_id) == 22 and not cluster_id.startswith("-")
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16


def test_broker_config_is_one_loopback_node_without_topic_auto_creation(tmp_path: Path) -> None:
    props = kafka.server_properties(9092, 9093, tmp_path)

    assert props["process.roles"] == "broker,controller"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:9093"
    assert props["auto.create.topics.enable"] == "false"
    assert props["log.dirs"] == str(tmp_path)


def test_kafka_version_comes_from_the_packaged_pom_unless_loom_dev_kafka_version_says(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(kafka.ENV_VERSION, raising=False)
    pinned = kafka.default_version()
    assert tuple(int(part) for part in pinned.split(".")) >= (4, 4, 0)  # the current release (DESIGN: Kafka 4 groups)
    assert kafka.version() == pinned
    assert kafka.libs_dir().name == "libs" and kafka.libs_dir().parent.name == f"kafka-{pinned}"

    monkeypatch.setenv(kafka.ENV_VERSION, "4.0.1")
    assert (kafka.version(), kafka.default_version()) == ("4.0.1", pinned)
    assert kafka.libs_dir().parent.name == "kafka-4.0.1"
    assert kafka.libs_dir("4.2.0").parent.name == "kafka-4.2.0"


def test_state_and_cache_folders_follow_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert default_state_dir() == tmp_path / "state" / "loomctl" / "dev"
    assert kafka.cache_dir() == tmp_path / "cache" / "loomctl"

    monkeypatch.setenv("XDG_STATE_HOME", "relative/ignored")  # the XDG spec says to ignore relative paths
    assert default_state_dir() == Path.home() / ".local" / "state" / "loomctl" / "dev"


def test_env_lines_survive_eval_in_a_shell() -> None:
    url = "postgresql://loom@127.0.0.1:5432/it's $HOME"
    info = StackInfo(
        state_dir=Path("/x"),
        database_url=url,
        bootstrap_servers="127.0.0.1:9092",
        postgres=PostgresInfo(5432, 1, "15", True, None, None),
        kafka=KafkaInfo(9092, 9093, 2, kafka.version(), True, None, None),
        started_at=dt.datetime.now(dt.timezone.utc),
    )
    script = "\n".join(env_lines(info)) + (
        '\nprintf "%s\\n%s\\n%s" "$LOOM_DATABASE_URL" "$LOOM_KAFKA_BOOTSTRAP_SERVERS" "$LOOM_DEV_KAFKA_VERSION"'
    )

    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True).stdout

    assert out == f"{url}\n127.0.0.1:9092\n{kafka.version()}"


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands the server to another user")
def test_a_folder_the_server_user_cannot_traverse_is_detected(tmp_path: Path) -> None:
    try:
        user = pwd.getpwnam(postgres.SERVER_OS_USER)
    except KeyError:
        pytest.skip("no postgres user")
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    open_folder = Path("/tmp")

    assert not postgres.reachable(private / "stack", user)
    assert postgres.reachable(open_folder, user)


def test_every_dev_command_has_help_with_an_example() -> None:
    commands = typer.main.get_command(dev.app).commands  # type: ignore[attr-defined]

    assert set(commands) == {"up", "status", "env", "down", "traffic"}
    for name, command in commands.items():
        first_line = (command.help or "").strip().splitlines()[0]
        assert "loomctl dev" in first_line, name


def test_importing_the_dev_commands_loads_no_database_or_kafka_client() -> None:
    code = (
        "import sys, loomctl.cli.dev, loomctl.devstack\n"
        "heavy = sorted(m for m in ('psycopg', 'confluent_kafka', 'sqlalchemy', 'alembic') if m in sys.modules)\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()

    assert out == ""


@pytest.mark.slow
def test_the_server_starts_again_right_after_its_postmaster_was_killed(tmp_path: Path) -> None:
    """A killed postmaster leaves postmaster.pid and .s.PGSQL.<port>.lock behind, naming a pid that lives on
    as a zombie until init reaps it, or that the system gives to another program: both are stale."""
    bystander = subprocess.Popen(["sleep", "120"])  # a live pid that is no postmaster
    try:
        with private_postgres(tmp_path / "stack") as server:
            root = server.root
            locks = [postgres.data_dir(root) / "postmaster.pid", root / "socket"]
            postgres.remove_stale_locks(root)  # a running server's locks stay
            assert (locks[0]).exists() and list(locks[1].glob(".s.PGSQL.*.lock"))
            for attempt in range(3):
                _kill(server.pid, root)
                server.start()
                assert postgres.answers(postgres.database_url(server.port, "postgres")), attempt

            _kill(server.pid, root)
            deadline = time.monotonic() + 30
            while _process_exists(server.pid) and time.monotonic() < deadline:  # reaped: its pid names nothing now
                time.sleep(0.1)
            for lock in [locks[0], *locks[1].glob(".s.PGSQL.*.lock")]:
                lines = lock.read_text().split("\n")
                lock.write_text("\n".join([str(bystander.pid), *lines[1:]]))
            server.start()
            assert postgres.answers(postgres.database_url(server.port, "postgres"))
            assert bystander.poll() is None  # left alone
    finally:
        bystander.kill()
        bystander.wait()


def _kill(pid: int, root: Path) -> None:
    """SIGKILL, then wait until the signal has landed (a zombie or no process), as it has before anyone restarts."""
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while postgres.is_running(pid, root) and time.monotonic() < deadline:
        time.sleep(0.01)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
