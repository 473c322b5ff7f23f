"""Two real Kafka clusters, three collectors: every group of both sampled once per cycle under its cluster's name, a
collector killed mid-cycle taken over within a lease, and a hung broker costing only its own cluster's cycles."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from support import clean_env, commit, create_topic, own_database, produce, unique, wait_for

pytestmark = pytest.mark.integration

PARTITIONS = 2
GROUPS_PER_CLUSTER = 4


def start_collector(database_url: str, bootstrap: str, log: Path, interval: str = "0.5s") -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "loomctl", "--database-url", database_url, "--bootstrap-servers", bootstrap,
         "lag", "collect", "--interval", interval, "--verbose"],
        stdout=subprocess.DEVNULL, stderr=log.open("w"), env=clean_env(),
    )


def stop_collector(process: subprocess.Popen, log: Path) -> str:
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0, log.read_text()[-3000:]
    text = log.read_text()
    assert "Traceback" not in text, text
    return text


def groups_on(database_url: str, bootstrap: str, cluster: str) -> list[str]:
    """Groups with committed offsets on a topic of that cluster, each configured as a service of it."""
    topic = unique(f"multi-{cluster}")
    create_topic(bootstrap, topic, PARTITIONS)
    produce(bootstrap, topic, {p: 10 for p in range(PARTITIONS)})
    groups = []
    with psycopg.connect(database_url, autocommit=True) as conn:
        for _ in range(GROUPS_PER_CLUSTER):
            group = unique(f"g-{cluster}")
            commit(bootstrap, group, topic, {p: 3 for p in range(PARTITIONS)})
            conn.execute(
                "INSERT INTO pipeline_consumer_configs (service_name, consumer_group_id, cluster_name) VALUES (%s, %s, %s)",
                (unique("svc"), group, cluster),
            )
            groups.append(group)
    return groups


def latest(database_url: str) -> dict[tuple[str, str], float]:
    """(cluster, group) -> epoch of its newest sample."""
    with psycopg.connect(database_url) as conn:
        found = conn.execute(
            "SELECT cluster_name, consumer_group_id, extract(epoch FROM max(\"timestamp\"))::float8"
            " FROM consumer_lag_history GROUP BY 1, 2"
        ).fetchall()
    return {(c, g): t for c, g, t in found}


def sampled_since(database_url: str, since: float, pairs: set[tuple[str, str]]) -> bool:
    newest = latest(database_url)
    return all(newest.get(p, 0.0) > since for p in pairs)


def whole_samples(database_url: str) -> set[int]:
    with psycopg.connect(database_url) as conn:
        found = conn.execute(
            "SELECT DISTINCT count(*) FROM consumer_lag_history GROUP BY cluster_name, consumer_group_id, \"timestamp\""
        ).fetchall()
    return {n for (n,) in found}


def register(database_url: str, name: str, bootstrap: str) -> None:
    from loomctl.cli import app
    from support import runner

    result = runner().invoke(app, ["--database-url", database_url, "cluster", "add", name, "--bootstrap-servers", bootstrap])
    assert result.exit_code == 0, result.output


def test_three_collectors_over_two_clusters_one_killed_mid_cycle(database_factory, services, broker, tmp_path) -> None:
    with own_database(database_factory, "loomclusters") as url:
        register(url, "second", broker.bootstrap_servers)
        pairs = {("default", g) for g in groups_on(url, services.bootstrap_servers, "default")}
        pairs |= {("second", g) for g in groups_on(url, broker.bootstrap_servers, "second")}
        logs = [tmp_path / f"collector-{i}.log" for i in range(3)]
        collectors = [start_collector(url, services.bootstrap_servers, log) for log in logs]
        try:
            for log in logs:
                wait_for("the shares split three ways", lambda log=log: "of 256 shares of the groups (3 collector(s))" in log.read_text())
            start = time.time()
            wait_for("every group of both clusters sampled", lambda: sampled_since(url, start, pairs))
            with psycopg.connect(url) as conn:
                assert {c for (c,) in conn.execute("SELECT DISTINCT cluster_name FROM consumer_lag_history")} == {"default", "second"}

            # kill one in the middle of a cycle: right after it reported a write, its next cycle is under way (one
            # that samples some group: with 8 groups over 256 shares, a third of them may hold none)
            index = wait_for("a collector that writes", lambda: [i for i, log in enumerate(logs) if " wrote " in log.read_text()])[0]
            victim, victim_log = collectors[index], logs[index]
            seen = victim_log.read_text().count(" wrote ")
            wait_for("the victim to write again", lambda: victim_log.read_text().count(" wrote ") > seen)
            survivors = [(log, len(log.read_text())) for i, log in enumerate(logs) if i != index]
            victim.send_signal(signal.SIGKILL)
            victim.wait(timeout=30)
            killed_at = time.time()
            for log, before in survivors:
                wait_for("the two left to split every share",
                         lambda log=log, before=before: "of 256 shares of the groups (2 collector(s))" in log.read_text()[before:])
            split_at = time.time()
            wait_for("every group sampled after the kill", lambda: sampled_since(url, split_at, pairs))
            taken_over = time.time() - killed_at
            print(f"\ntakeover: every group of both clusters sampled again {taken_over:.1f} s after the SIGKILL")
        finally:
            texts = []
            for collector, log in zip(collectors, logs, strict=True):
                if collector.returncode is None and collector.poll() is None:
                    texts.append(stop_collector(collector, log))
        assert whole_samples(url) == {PARTITIONS}, "every sample of a group is whole: one row per partition"
        for text in texts:
            assert "SharesLost" not in text


def test_a_hung_broker_costs_only_its_own_clusters_cycles(database_factory, services, broker, tmp_path) -> None:
    with own_database(database_factory, "loomhung") as url:
        register(url, "second", broker.bootstrap_servers)
        healthy = {("default", g) for g in groups_on(url, services.bootstrap_servers, "default")}
        hung = {("second", g) for g in groups_on(url, broker.bootstrap_servers, "second")}
        log = tmp_path / "collector.log"
        collector = start_collector(url, services.bootstrap_servers, log)
        stopped = False
        try:
            start = time.time()
            wait_for("both clusters sampled", lambda: sampled_since(url, start, healthy | hung))
            os.kill(broker.pid, signal.SIGSTOP)
            stopped = True
            paused_at = time.time()
            wait_for("the hung cluster's cycle to fail", lambda: "warning: cluster second:" in log.read_text(), timeout=90)
            # while the broker stays stopped, the other cluster keeps its pace: several fresh samples of every group
            for _ in range(5):
                mark = time.time()
                wait_for("the healthy cluster sampled again", lambda mark=mark: sampled_since(url, mark, healthy))
            assert not sampled_since(url, paused_at + 1, hung)
            os.kill(broker.pid, signal.SIGCONT)
            stopped = False
            resumed = time.time()
            wait_for("the hung cluster sampled again once its broker is back", lambda: sampled_since(url, resumed, hung), timeout=120)
        finally:
            if stopped:
                os.kill(broker.pid, signal.SIGCONT)
            text = stop_collector(collector, log)
        assert "recovered after" in text
        assert whole_samples(url) == {PARTITIONS}


def test_lag_show_reads_each_group_on_its_own_cluster(database_factory, services, broker) -> None:
    from support import Cli

    with own_database(database_factory, "loomshow") as url:
        register(url, "second", broker.bootstrap_servers)
        ours = groups_on(url, services.bootstrap_servers, "default")[:1]
        theirs = groups_on(url, broker.bootstrap_servers, "second")[:1]
        cli = Cli(url, services.bootstrap_servers, group=["lag"])
        rows = cli.json("show", "--by", "partition")
        seen = {(r["cluster_name"], r["consumer_group_id"]) for r in rows if r["consumer_group_id"] in ours + theirs}
        assert seen == {("default", ours[0]), ("second", theirs[0])}
        # the second's group is read on the second: its lag, not "no such group" on the default cluster
        assert {r["lag"] for r in rows if r["consumer_group_id"] == theirs[0]} == {7}
        only = cli.json("show", "--by", "service", "--cluster", "second")
        assert theirs[0] in {r["consumer_group_id"] for r in only} and len(only) == GROUPS_PER_CLUSTER
        assert all(r["cluster_name"] == "second" for r in only)
        assert cli("show", "--cluster", "nowhere").exit_code == 3


def test_lag_show_with_one_cluster_down_shows_its_groups_unknown_and_exits_5(database_factory, services) -> None:
    from support import Cli, free_port, json_of

    with own_database(database_factory, "loomdown") as url:
        register(url, "gone", f"127.0.0.1:{free_port()}")  # nothing listens there
        ours = groups_on(url, services.bootstrap_servers, "default")[:1]
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("INSERT INTO pipeline_consumer_configs (service_name, consumer_group_id, cluster_name)"
                         " VALUES ('lost-svc', 'lost-group', 'gone')")
        result = Cli(url, services.bootstrap_servers, group=["lag"])("show", "--by", "service", "-o", "json")
        rows = {r["consumer_group_id"]: r for r in json_of(result, expect=5)}
        assert rows["lost-group"]["cluster_name"] == "gone" and rows["lost-group"]["group_state"] == "Unknown"
        assert rows["lost-group"]["total_lag"] is None and rows["lost-group"]["status"] == "-"  # unknown, never 0
        assert rows[ours[0]]["total_lag"] == PARTITIONS * 7  # the other cluster's groups are read as ever
        assert "could not read cluster gone" in result.stderr


def test_a_hung_collectors_share_is_taken_over_when_its_lease_runs_out(database_factory, services, tmp_path) -> None:
    with own_database(database_factory, "loomlease") as url:
        pairs = {("default", g) for g in groups_on(url, services.bootstrap_servers, "default")}
        logs = [tmp_path / "hung.log", tmp_path / "alive.log"]
        hung, alive = (start_collector(url, services.bootstrap_servers, log) for log in logs)
        stopped = False
        try:
            for log in logs:
                wait_for("the shares to split", lambda log=log: "128 of 256 shares of the groups (2 collector(s))" in log.read_text())
            seen = len(logs[1].read_text())
            os.kill(hung.pid, signal.SIGSTOP)  # alive to the kernel and to TCP: only the lease can end its share
            stopped, stopped_at = True, time.time()
            wait_for("the lease to run out and the other to take every share",
                     lambda: "256 of 256 shares of the groups (1 collector(s))" in logs[1].read_text()[seen:], timeout=90)
            taken_at = time.time()
            wait_for("every group sampled after the takeover", lambda: sampled_since(url, taken_at, pairs))
            print(f"\nSIGSTOP: every share taken over {taken_at - stopped_at:.1f} s after the stop (lease 10 s),"
                  f" every group sampled again {time.time() - stopped_at:.1f} s after it")
            os.kill(hung.pid, signal.SIGCONT)
            stopped = False
            before = len(logs[0].read_text())
            wait_for("the hung one to find its lease gone and join again",
                     lambda: "(2 collector(s))" in logs[0].read_text()[before:], timeout=90)
        finally:
            if stopped:
                os.kill(hung.pid, signal.SIGCONT)
            texts = [stop_collector(c, log) for c, log in zip((hung, alive), logs, strict=True)]
        assert whole_samples(url) == {PARTITIONS}
        assert "SharesLost" not in texts[0] and "Traceback" not in texts[0]
