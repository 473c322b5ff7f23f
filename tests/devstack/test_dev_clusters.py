"""`loomctl dev up --clusters N`: more than one Kafka cluster beside the one PostgreSQL, each a broker of its own."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
from support import Cli, admin_client, alive, create_topic, json_of, processes_mentioning, wait_for

from loomctl import devstack
from loomctl.devstack import kafka, postgres
from loomctl.errors import BackendUnavailable, BadInput


@pytest.fixture
def dev() -> Cli:
    return Cli(group=["dev"])


@pytest.fixture
def can_run() -> None:
    """Skip where no stack can start: no java or no cached Kafka jars, no PostgreSQL server programs, or root
    without the user PostgreSQL runs as."""
    java = kafka.find_java()
    if java is None or not kafka.jars_cached():
        pytest.skip("needs java and the cached Kafka jars (loomctl dev up fetches them)")
    if postgres.find_binaries() is None:
        pytest.skip(f"no PostgreSQL server programs (searched {postgres.searched()})")
    try:
        postgres.server_os_user()
    except KeyError:
        pytest.skip(f"running as root without a {postgres.SERVER_OS_USER} user")


def cluster_id(bootstrap: str) -> str:
    """The cluster id the broker itself reports (a list_topics first: it must answer metadata too)."""
    admin = admin_client(bootstrap)
    assert admin.list_topics(timeout=30).brokers
    return str(admin.describe_cluster(request_timeout=30).result(timeout=30).cluster_id)


def pids_of(status: dict[str, Any]) -> dict[str, int]:
    return {c["name"]: c["kafka"]["pid"] for c in status["clusters"]}


# --- bad input: nothing starts ---------------------------------------------------------------


@pytest.mark.parametrize("value", ["0", "4", "abc", "-1", "2.5", "", "٢"])
def test_clusters_out_of_range_or_not_a_number_exit_2_and_start_nothing(dev: Cli, tmp_path: Path, value: str) -> None:
    state_dir = tmp_path / "stack"

    result = dev("up", "--dir", str(state_dir), "--clusters", value)

    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert "--clusters" in result.stderr
    assert not state_dir.exists()
    assert processes_mentioning(str(tmp_path)) == []


@pytest.mark.parametrize("value", [0, 4, -1, True])
def test_the_core_refuses_a_cluster_count_out_of_range_before_anything(tmp_path: Path, value: Any) -> None:
    state_dir = tmp_path / "stack"

    with pytest.raises(BadInput, match="1 to 3 Kafka clusters") as caught:
        devstack.up(state_dir, clusters=value)

    assert "\n" not in str(caught.value)
    assert not state_dir.exists()


# --- stack.json as it was before several clusters ----------------------------------------------


def test_a_stack_json_of_one_broker_still_reads(dev: Cli, tmp_path: Path) -> None:
    """A stack.json written before `--clusters` (no extra_kafka), its servers gone: status, env and down as before."""
    dead = subprocess.Popen(["true"])
    dead.wait()  # its pid names no server of ours, whoever gets it next
    state_dir = tmp_path / "stack"
    (state_dir / "kafka" / "data").mkdir(parents=True)
    (state_dir / "kafka" / "data" / "meta.properties").write_text("version=1\ncluster.id=AAAAAAAAAAAAAAAAAAAAAA\nnode.id=1\n")
    record = {
        "format": 1,
        "postgres": {"pid": dead.pid, "port": 5999, "version": "15.8", "bin_dir": "/nowhere", "root": str(tmp_path / "pg")},
        "kafka": {"pid": dead.pid, "port": 9999, "controller_port": 9998, "version": kafka.version()},
        "started_at": "2026-01-01T00:00:00+00:00",
    }
    (state_dir / "stack.json").write_text(json.dumps(record))

    info = devstack.status(state_dir)
    assert [(c.name, c.bootstrap_servers, c.healthy) for c in info.clusters] == [("default", "127.0.0.1:9999", False)]
    assert info.clusters[0].kafka == info.kafka and info.kafka.cluster_id == "AAAAAAAAAAAAAAAAAAAAAA"

    result = dev("status", "--dir", str(state_dir), "-o", "json")
    status = json_of(result, expect=5)
    for key in ("state_dir", "database_url", "bootstrap_servers", "postgres", "kafka", "started_at", "already_running"):
        assert key in status
    assert status["bootstrap_servers"] == "127.0.0.1:9999"
    assert [c["name"] for c in status["clusters"]] == ["default"]
    assert "Kafka clusters" not in dev("status", "--dir", str(state_dir)).stdout  # one cluster: the table as before
    assert dev("env", "--dir", str(state_dir)).exit_code == 3

    assert dev("down", "--dir", str(state_dir)).exit_code == 0
    assert not state_dir.exists()


# --- real brokers ------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.usefixtures("can_run")
def test_two_clusters_answer_apart_and_down_stops_both(dev: Cli, stack_dir: Path) -> None:
    started = json_of(dev("up", "--dir", str(stack_dir), "--clusters", "2", "--no-migrate", "-o", "json"))

    clusters = started["clusters"]
    assert [c["name"] for c in clusters] == ["default", "dev-2"]
    assert clusters[0]["bootstrap_servers"] == started["bootstrap_servers"]
    assert clusters[0]["kafka"] == started["kafka"]
    assert clusters[1]["kafka"]["data_dir"] == str(stack_dir / "kafka-2" / "data")
    pids = pids_of(started)
    assert len(set(pids.values())) == 2 and all(alive(pid) for pid in pids.values())
    assert len({c["bootstrap_servers"] for c in clusters}) == 2

    ids = [cluster_id(c["bootstrap_servers"]) for c in clusters]
    assert ids[0] != ids[1]
    assert ids == [c["kafka"]["cluster_id"] for c in clusters]
    topic = create_topic(clusters[1]["bootstrap_servers"], "only-on-dev-2")
    assert topic not in admin_client(clusters[0]["bootstrap_servers"]).list_topics(timeout=30).topics

    status = json_of(dev("status", "--dir", str(stack_dir), "-o", "json"))
    assert [(c["name"], c["bootstrap_servers"], c["healthy"]) for c in status["clusters"]] == [
        (c["name"], c["bootstrap_servers"], True) for c in clusters
    ]
    assert status["kafka"]["healthy"] and status["postgres"]["healthy"]
    table = dev("status", "--dir", str(stack_dir)).stdout
    assert "Kafka clusters" in table and "dev-2" in table and ids[1] in table
    assert dev("env", "--dir", str(stack_dir)).stdout.splitlines()[1] == (
        f"export LOOM_KAFKA_BOOTSTRAP_SERVERS={started['bootstrap_servers']}"
    )
    recorded = json.loads((stack_dir / "stack.json").read_text())
    assert recorded["kafka"]["pid"] == pids["default"]
    assert [(e["name"], e["pid"]) for e in recorded["extra_kafka"]] == [("dev-2", pids["dev-2"])]

    again = json_of(dev("up", "--dir", str(stack_dir), "-o", "json"))  # no --clusters: as many as it has
    assert again["already_running"] is True and pids_of(again) == pids
    fewer = dev("up", "--dir", str(stack_dir), "--clusters", "1")
    assert fewer.exit_code == 4 and "never shrunk" in fewer.stderr
    assert all(alive(pid) for pid in pids.values())

    # one broker dead: status says so, and down stops the rest without complaint
    os.kill(pids["dev-2"], signal.SIGKILL)
    wait_for("the dev-2 broker to die", lambda: not kafka.is_running(pids["dev-2"], stack_dir, 2))
    dead = json_of(dev("status", "--dir", str(stack_dir), "-o", "json"), expect=5)
    assert [c["healthy"] for c in dead["clusters"]] == [True, False]

    result = dev("down", "--dir", str(stack_dir))

    assert result.exit_code == 0, result.output
    assert "stopping Kafka (pid" in result.stderr
    assert not any(alive(pid) for pid in pids.values())
    assert not stack_dir.exists()
    assert processes_mentioning(str(stack_dir)) == []


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.usefixtures("can_run")
def test_a_running_stack_gains_clusters_and_a_failed_one_stops_only_itself(
    stack_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    one = devstack.up(stack_dir, migrate=False)
    assert [c.name for c in one.clusters] == ["default"]

    two = devstack.up(stack_dir, migrate=False, clusters=2)

    assert two.already_running is False
    assert [c.name for c in two.clusters] == ["default", "dev-2"]
    assert (two.postgres.pid, two.kafka.pid) == (one.postgres.pid, one.kafka.pid)  # only the missing one started
    assert cluster_id(two.clusters[1].bootstrap_servers) != cluster_id(two.bootstrap_servers)  # type: ignore[arg-type]

    # the third broker fails to start (its storage left unformatted): it alone is stopped, the rest runs on
    real_format = kafka._format

    def format_all_but_3(*args: Any, cluster: int = 1, **kwargs: Any) -> None:
        if cluster != 3:
            real_format(*args, cluster=cluster, **kwargs)

    monkeypatch.setattr(kafka, "_format", format_all_but_3)
    with pytest.raises(BackendUnavailable, match="Kafka exited during start-up"):
        devstack.up(stack_dir, migrate=False, clusters=3)

    assert processes_mentioning(str(kafka.config_file(stack_dir, 3))) == []
    after = devstack.status(stack_dir)
    assert after.healthy and [c.name for c in after.clusters] == ["default", "dev-2"]
    assert [c.kafka.pid for c in after.clusters] == [c.kafka.pid for c in two.clusters]


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.usefixtures("can_run")
def test_a_failure_starting_broker_2_stops_everything_the_up_started(stack_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    postgres_pids: list[int] = []
    real_start = postgres.start
    real_format = kafka._format

    def start_and_note(*args: Any, **kwargs: Any) -> tuple[int, int]:
        pid, port = real_start(*args, **kwargs)
        postgres_pids.append(pid)
        return pid, port

    def format_all_but_2(*args: Any, cluster: int = 1, **kwargs: Any) -> None:
        if cluster != 2:
            real_format(*args, cluster=cluster, **kwargs)

    monkeypatch.setattr(postgres, "start", start_and_note)
    monkeypatch.setattr(kafka, "_format", format_all_but_2)

    with pytest.raises(BackendUnavailable, match="Kafka exited during start-up") as failure:
        devstack.up(stack_dir, migrate=False, clusters=2)

    assert "meta.properties" in str(failure.value)  # the broker's own last log lines say why
    assert len(postgres_pids) == 1 and not alive(postgres_pids[0])
    assert processes_mentioning(str(stack_dir)) == []  # both brokers: their command lines name their folders
    assert not devstack.status(stack_dir).healthy
