"""Every command that talks to Kafka, with the broker not answering (SIGSTOP) and then gone (killed):
it ends with exit 5 (or, where Kafka is advice, succeeds) in one short line, within its timeouts.

The commands run as real processes, all at once, so the test takes as long as the slowest of them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from support import clean_env, commit, create_topic, produce, unique

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BOUND_S = 90
"""Far above the Kafka timeouts a command is allowed (10 s a request), far below a hang."""


def run_all(commands: dict[str, list[str]], env: dict[str, str]) -> dict[str, tuple[int, str, float]]:
    """Each command as `python -m loomctl ...`, all at once: name -> (exit code, stderr, seconds)."""
    started = time.monotonic()
    procs = {name: subprocess.Popen([sys.executable, "-m", "loomctl", *argv], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, text=True, env=env, stdin=subprocess.DEVNULL)
             for name, argv in commands.items()}
    results = {}
    for name, proc in procs.items():
        try:
            _, stderr = proc.communicate(timeout=BOUND_S * 2)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, stderr = proc.communicate()
        results[name] = (proc.returncode, stderr, time.monotonic() - started)
    return results


def test_kafka_commands_fail_fast_and_quietly_when_the_broker_stops(broker, database_url, pg):
    topic, group, service = unique("fault.topic"), unique("fault-group"), unique("fault-svc")
    create_topic(broker.bootstrap_servers, topic, 2)
    produce(broker.bootstrap_servers, topic, {0: 3, 1: 3})
    commit(broker.bootstrap_servers, group, topic, {0: 1, 1: 1})
    pg.execute("INSERT INTO pipeline_consumer_configs (service_name, consumer_group_id) VALUES (%s, %s)", [service, group])
    pg.execute("INSERT INTO topic_partition_changes (topic_name, current_partitions, recommended_partitions, reason)"
               " VALUES (%s, 2, 4, 'fault test')", [topic])
    env = clean_env(NO_COLOR="1", LOOM_DATABASE_URL=database_url, LOOM_KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap_servers)
    failing = {
        "lag show SERVICE": ["lag", "show", service],
        "lag show --group": ["lag", "show", "--group", group],
        "lag show --all-groups": ["lag", "show", "--all-groups"],
        "partitions plan": ["partitions", "plan", topic],
        "partitions apply": ["partitions", "apply", topic, "--yes", "--timeout", "5"],
        "partitions add": ["partitions", "add", topic, "6", "--reason", "fault test"],
        "lag collect --once": ["lag", "collect", "--once"],
    }
    advisory = {  # Kafka only informs these: they succeed without it, and say so in a line at most
        "partitions recommend": ["partitions", "recommend", topic],
        "config set session_timeout_ms": ["config", "set", service, "session_timeout_ms=20000"],
    }
    os.kill(broker.pid, signal.SIGSTOP)
    try:
        stopped = run_all({**failing, **advisory}, env)
    finally:
        os.kill(broker.pid, signal.SIGCONT)
    broker.stop()
    gone = run_all({**failing, **advisory}, env)

    for when, results in (("not answering", stopped), ("gone", gone)):
        for name, (code, stderr, seconds) in results.items():
            lines = stderr.splitlines()
            assert seconds < BOUND_S, (when, name, seconds)
            assert "Traceback" not in stderr, (when, name, stderr[-3000:])
            if name in failing:
                assert code == 5, (when, name, code, stderr)
                assert lines[-1].startswith("error: ") and len(lines) <= 3, (when, name, stderr)
            else:
                assert code == 0 and len(lines) <= 3, (when, name, code, stderr)
    assert pg.execute("SELECT status FROM topic_partition_changes WHERE topic_name = %s", [topic]).fetchone() == ("pending",)
