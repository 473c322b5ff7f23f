"""A cluster that wants SASL: the properties of LOOM_KAFKA_CONFIG reach both clients, librdkafka and the group-types
client, so the batched snapshot (offsets, descriptions, log offsets) reads an authenticated listener as it reads the
open one; a wrong password is one line without the password, and a non-zero exit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support import admin_client, clean_env, commit, create_topic, free_port, private_broker, produce, unique

from loomctl import kafka
from loomctl.kafka import protocol
from loomctl.settings import Settings

pytestmark = pytest.mark.integration

PASSWORD = "Sasl4Loomctl"


@pytest.fixture(scope="module")
def sasl_broker(tmp_path_factory: Any) -> Any:
    from loomctl.devstack.kafka import SaslListener

    with private_broker(tmp_path_factory, sasl=SaslListener(free_port(), {"loom": PASSWORD})) as broker:
        yield broker


def _properties(folder: Path, password: str) -> Path:
    path = folder / f"client-{password}.properties"
    path.write_text(f"security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\nsasl.username=loom\nsasl.password={password}\n")
    path.chmod(0o600)
    return path


def _lag_show(bootstrap: str, properties: Path | None) -> subprocess.CompletedProcess[str]:
    env = clean_env(LOOM_KAFKA_BOOTSTRAP_SERVERS=bootstrap, **({"LOOM_KAFKA_CONFIG": str(properties)} if properties else {}))
    return subprocess.run(
        [sys.executable, "-m", "loomctl", "lag", "show", "--all-groups", "--by", "partition", "-o", "json"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_the_batched_snapshot_reads_a_sasl_listener_as_the_open_one(sasl_broker: Any, tmp_path: Path) -> None:
    plain = sasl_broker.bootstrap_servers
    secured = f"127.0.0.1:{sasl_broker.sasl.port}"
    topic = create_topic(plain, unique("sasl"), 3)
    produce(plain, topic, {0: 5, 1: 7, 2: 2})
    groups = [unique(f"g-sasl-{i}") for i in range(4)]
    for i, group in enumerate(groups):
        commit(plain, group, topic, {p: (i + p) % 5 for p in range(3) if (i + p) % 3})
    settings = Settings.from_env(bootstrap_servers=secured, kafka_config=_properties(tmp_path, PASSWORD))

    admin = kafka.admin_client(settings)
    with protocol.client(settings) as wire:
        listed = protocol.list_every_group(wire)
        assert set(groups) <= set(listed)
        secure = kafka.snapshot(admin, groups, wire=wire, known_types={g: listed[g].group_type for g in groups})
    open_one = kafka.snapshot(admin_client(plain), groups)
    assert secure.committed == open_one.committed and sum(len(c) for c in secure.committed.values()) == 8
    assert secure.offsets == open_one.offsets and {o.end for o in secure.offsets.values()} == {5, 7, 2}
    assert {g: (d.group_state, d.members) for g, d in secure.groups.items()} == {
        g: (d.group_state, d.members) for g, d in open_one.groups.items()
    }

    # the command: every group listed through the authenticated client (no "only its consumer groups" warning)
    done = _lag_show(secured, _properties(tmp_path, PASSWORD))
    assert done.returncode == 0, done.stderr
    assert "only its consumer groups" not in done.stderr and PASSWORD not in done.stderr + done.stdout
    ours = {(r["consumer_group_id"], r["partition"]): (r["committed_offset"], r["log_end_offset"], r["lag"])
            for r in json.loads(done.stdout) if r["consumer_group_id"] in groups}  # fmt: skip
    opened = _lag_show(plain, None)
    assert opened.returncode == 0, opened.stderr
    theirs = {(r["consumer_group_id"], r["partition"]): (r["committed_offset"], r["log_end_offset"], r["lag"])
              for r in json.loads(opened.stdout) if r["consumer_group_id"] in groups}  # fmt: skip
    assert ours == theirs and len(ours) == 12


def test_a_wrong_password_is_one_line_without_it(sasl_broker: Any, tmp_path: Path) -> None:
    wrong = "Wrong4Loomctl"
    done = _lag_show(f"127.0.0.1:{sasl_broker.sasl.port}", _properties(tmp_path, wrong))
    assert done.returncode != 0 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert wrong not in done.stderr and PASSWORD not in done.stderr
    # the broker's refusal itself, not "no bootstrap server could be reached" once the timeout has run out
    assert lines[0] == (
        "error: Kafka refused loomctl's connection: SaslAuthenticationFailedError: Authentication failed: "
        "Invalid username or password"
    )
