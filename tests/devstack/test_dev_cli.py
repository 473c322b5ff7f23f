"""`loomctl dev` through the CLI: the session's stack, a stack of its own, and the failure exits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from support import Cli, admin_client, alive, create_topic, json_of, processes_mentioning

from loomctl.devstack import kafka, postgres


@pytest.fixture
def dev() -> Cli:
    """`loomctl dev ...` through support's CLI runner."""
    return Cli(group=["dev"])


@pytest.fixture
def session_stack(services: Any) -> Path:
    if services.state_dir is None:
        pytest.skip("the services come from LOOM_* variables, not from a stack this session started")
    return services.state_dir


@pytest.mark.integration
def test_status_json_shows_both_servers_healthy(dev: Cli, session_stack: Path, services: Any) -> None:
    status = json_of(dev("status", "--dir", str(session_stack), "-o", "json"))

    assert status["postgres"]["healthy"] is True
    assert status["kafka"]["healthy"] is True
    assert status["database_url"] == services.database_url
    assert status["bootstrap_servers"] == services.bootstrap_servers
    assert status["kafka"]["version"] == kafka.version()  # LOOM_DEV_KAFKA_VERSION's release, else the pom's


@pytest.mark.integration
def test_up_again_reports_the_running_stack_and_starts_nothing(dev: Cli, session_stack: Path) -> None:
    before = json_of(dev("status", "--dir", str(session_stack), "-o", "json"))

    result = dev("up", "--dir", str(session_stack), "-o", "json")
    again = json_of(result)

    assert again["already_running"] is True
    assert (again["postgres"]["pid"], again["kafka"]["pid"]) == (before["postgres"]["pid"], before["kafka"]["pid"])
    assert again["started_at"] == before["started_at"]
    assert "already running" in result.stderr


@pytest.mark.integration
def test_env_prints_export_lines_for_the_running_stack(dev: Cli, session_stack: Path, services: Any) -> None:
    result = dev("env", "--dir", str(session_stack))

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"export LOOM_DATABASE_URL={services.database_url}",
        f"export LOOM_KAFKA_BOOTSTRAP_SERVERS={services.bootstrap_servers}",
        f"export LOOM_DEV_KAFKA_VERSION={kafka.version()}",
    ]


def test_env_without_a_stack_exits_3(dev: Cli, tmp_path: Path) -> None:
    result = dev("env", "--dir", str(tmp_path / "none"))

    assert result.exit_code == 3
    assert result.stdout == ""
    assert "loomctl dev up" in result.stderr


def test_status_and_down_without_a_stack_exit_3(dev: Cli, tmp_path: Path) -> None:
    assert dev("status", "--dir", str(tmp_path / "none")).exit_code == 3
    assert dev("down", "--dir", str(tmp_path / "none")).exit_code == 3


def test_a_folder_that_is_not_a_stack_is_left_alone(dev: Cli, tmp_path: Path) -> None:
    (tmp_path / "postgres").mkdir()
    (tmp_path / "notes.txt").write_text("mine")

    assert dev("up", "--dir", str(tmp_path)).exit_code == 2
    assert dev("down", "--dir", str(tmp_path)).exit_code == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "postgres"]


def test_missing_programs_exit_5_naming_them_and_start_nothing(
    dev: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv(postgres.ENV_BIN_DIR, str(tmp_path / "no-postgres-here"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # no jars cached: mvn is needed too
    state_dir = tmp_path / "stack"

    result = dev("up", "--dir", str(state_dir))

    assert result.exit_code == 5
    message = " ".join(result.stderr.split())
    for needed in ("java", "mvn", "initdb", "no-postgres-here", "apt-get install openjdk-17-jre-headless maven postgresql"):
        assert needed in message
    assert not state_dir.exists()
    assert not (tmp_path / "cache").exists()
    assert processes_mentioning(str(tmp_path)) == []


@pytest.mark.slow
@pytest.mark.integration
def test_full_cycle_in_a_folder_of_its_own(dev: Cli, tmp_path: Path) -> None:
    import psycopg

    state_dir = tmp_path / "stack"
    started = json_of(dev("up", "--dir", str(state_dir), "--no-migrate", "-o", "json"))
    pids = [started["postgres"]["pid"], started["kafka"]["pid"]]
    pg_root = Path(started["postgres"]["data_dir"]).parent
    assert started["already_running"] is False
    assert all(alive(pid) for pid in pids)

    status = json_of(dev("status", "--dir", str(state_dir), "-o", "json"))
    assert status["postgres"]["healthy"] and status["kafka"]["healthy"]

    with psycopg.connect(started["database_url"], autocommit=True) as conn:
        conn.execute("create table kept (n int)")
    create_topic(started["bootstrap_servers"], "kept-topic", 2)

    # --keep stops the servers but keeps their data; a later `up` starts on it again
    assert dev("down", "--dir", str(state_dir), "--keep").exit_code == 0
    assert not any(alive(pid) for pid in pids)
    assert state_dir.is_dir()
    assert dev("status", "--dir", str(state_dir), "-o", "json").exit_code == 5
    assert dev("env", "--dir", str(state_dir)).exit_code == 3

    restarted = json_of(dev("up", "--dir", str(state_dir), "--no-migrate", "-o", "json"))
    assert restarted["already_running"] is False
    with psycopg.connect(restarted["database_url"]) as conn:
        assert conn.execute("select count(*) from kept").fetchone() == (0,)
    topics = admin_client(restarted["bootstrap_servers"]).list_topics(timeout=30).topics
    assert len(topics["kept-topic"].partitions) == 2
    pids += [restarted["postgres"]["pid"], restarted["kafka"]["pid"]]

    result = dev("down", "--dir", str(state_dir))

    assert result.exit_code == 0, result.output
    assert not any(alive(pid) for pid in pids)
    assert not state_dir.exists()
    assert not pg_root.exists()
    assert processes_mentioning(str(pg_root)) == []
    assert processes_mentioning(str(state_dir)) == []


@pytest.mark.integration
def test_a_failed_start_stops_what_it_started(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from loomctl import devstack
    from loomctl.devstack import kafka
    from loomctl.errors import BackendUnavailable

    started: list[int] = []
    real_start = postgres.start

    def start_and_note(*args: Any, **kwargs: Any) -> tuple[int, int]:
        pid, port = real_start(*args, **kwargs)
        started.append(pid)
        return pid, port

    monkeypatch.setattr(postgres, "start", start_and_note)
    # an unformatted log folder makes the real broker exit during start-up
    monkeypatch.setattr(kafka, "_format", lambda *args, **kwargs: None)
    state_dir = tmp_path / "stack"

    with pytest.raises(BackendUnavailable, match="Kafka exited during start-up") as failure:
        devstack.up(state_dir, migrate=False)

    assert "meta.properties" in str(failure.value)  # the broker's own last log lines explain why
    assert len(started) == 1 and not alive(started[0])
    assert processes_mentioning(str(state_dir)) == []
    devstack.down(state_dir)
    assert not state_dir.exists()
