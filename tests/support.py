"""What every test shares: the CLI runner, unique names, waiting, databases of a test's own, topics, records and
commits on the real broker, brokers and servers of a test's own.

Every runner sees ``NO_COLOR=1`` and a fixed ``COLUMNS``, so tables do not depend on the terminal,
and none of the ``LOOM_*`` variables of the shell that started the tests; processes get ``clean_env()``. The one
kept is LOOM_DEV_KAFKA_VERSION: it picks the Kafka release of the session's broker, of Kafka's tools and of every
`loomctl dev up`, and they must agree.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
from typer.testing import CliRunner

TEST_ENV = {"NO_COLOR": "1", "COLUMNS": "200", "LOOM_ACTOR": "tester", "LOOM_DATABASE_URL": None,
            "LOOM_KAFKA_BOOTSTRAP_SERVERS": None, "LOOM_KAFKA_CONFIG": None}


def suffix(length: int = 10) -> str:
    """A random suffix (hex digits), for names no other test uses."""
    return uuid.uuid4().hex[:length]


def unique(prefix: str, length: int = 10) -> str:
    """``prefix`` with a random suffix, for topics, groups and services no other test uses."""
    return f"{prefix}-{suffix(length)}"


def runner(**env: str | None) -> CliRunner:
    """A CliRunner with ``TEST_ENV``; ``env`` adds to it or overrides it (None: unset)."""
    return CliRunner(env={**TEST_ENV, **env})


KEPT_ENV = ("LOOM_DEV_KAFKA_VERSION",)


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without the shell's ``LOOM_*`` variables (but ``KEPT_ENV``), plus ``extra``: for a
    `loomctl` process."""
    return {k: v for k, v in os.environ.items() if not k.startswith("LOOM_") or k in KEPT_ENV} | extra


def json_of(result: Any, expect: int = 0) -> Any:
    """The JSON a CLI result printed, once its exit code is ``expect``."""
    assert result.exit_code == expect, result.output
    return json.loads(result.stdout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def processes_mentioning(text: str) -> list[int]:
    """Pids whose command line contains ``text`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def alive(pid: int) -> bool:
    """Alive and not a zombie (a zombie's command line reads empty)."""
    try:
        return bool((Path("/proc") / str(pid) / "cmdline").read_bytes())
    except OSError:
        return False


def wait_for(what: str, condition: Callable[[], Any], timeout: float = 60.0) -> Any:
    """The first true value of ``condition()``, polled every 0.2 s; fails the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@contextlib.contextmanager
def own_database(database_factory: Any, prefix: str = "loomtest") -> Iterator[str]:
    """A migrated database of the caller's own (on the session's server), dropped at the end: its configured groups
    are the caller's, and so is the writer lock."""
    from loomctl.db import migrations

    url = database_factory.create(prefix)
    try:
        migrations.upgrade(url)
        yield url
    finally:
        database_factory.drop(url)


class Cli:
    """``loomctl [--database-url U] [--bootstrap-servers B] [GROUP] ...`` through CliRunner, never catching
    exceptions (a traceback fails the test). ``group`` prefixes every call with a command group."""

    def __init__(
        self,
        database_url: str | None = None,
        bootstrap_servers: str | None = None,
        *,
        group: Sequence[str] = (),
        app: typer.Typer | None = None,
    ) -> None:
        if app is None:
            from loomctl.cli import app as root_app

            app = root_app
        self.app = app
        self.database_url = database_url
        self.bootstrap_servers = bootstrap_servers
        self.group = list(group)
        self.runner = runner()

    def base(self, url: str | None = None) -> list[str]:
        base = []
        if url or self.database_url:
            base += ["--database-url", url or self.database_url]
        if self.bootstrap_servers:
            base += ["--bootstrap-servers", self.bootstrap_servers]
        return base

    def __call__(self, *args: str, input: str | None = None, url: str | None = None) -> Any:
        return self.runner.invoke(self.app, [*self.base(url), *self.group, *args], input=input, catch_exceptions=False)

    def json(self, *args: str, expect: int = 0) -> Any:
        return json_of(self(*args, "-o", "json"), expect)


def quiet() -> logging.Logger:
    """A logger for the test clients' librdkafka lines."""
    from loomctl.kafka import quiet_logger

    return quiet_logger()


def admin_client(bootstrap: str) -> Any:
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": bootstrap, "logger": quiet()})


def create_topics(admin_or_bootstrap: Any, names: Sequence[str], partitions: int = 1) -> list[str]:
    """Create ``names`` with ``partitions`` each (replication 1) and wait until the broker has them."""
    from confluent_kafka.admin import NewTopic

    admin = admin_client(admin_or_bootstrap) if isinstance(admin_or_bootstrap, str) else admin_or_bootstrap
    futures = admin.create_topics([NewTopic(n, partitions, 1) for n in names], operation_timeout=10)
    for future in futures.values():
        future.result(timeout=30)

    # the controller has them; wait until the broker's metadata shows every partition with a leader, so the
    # next client's metadata request (a loomctl command's) finds them too, however busy the machine is
    def visible() -> bool:
        topics = admin.list_topics(timeout=10).topics
        return all(
            n in topics and len(topics[n].partitions) == partitions and all(p.leader >= 0 for p in topics[n].partitions.values())
            for n in names
        )

    wait_for(f"topics {', '.join(names)} in the metadata", visible)
    return list(names)


def create_topic(admin_or_bootstrap: Any, topic: str, partitions: int = 1) -> str:
    return create_topics(admin_or_bootstrap, [topic], partitions)[0]


def delete_topics(admin: Any, names: Sequence[str]) -> None:
    """Best effort: a leftover topic harms nobody, so a busy broker does not fail the test."""
    if not names:
        return
    for future in admin.delete_topics(list(names), operation_timeout=10).values():
        try:
            future.result(timeout=20)
        except Exception:  # already gone, or the broker is busy
            pass


def produce(bootstrap: str, topic: str, per_partition: dict[int, int]) -> None:
    """``count`` keyed records into each partition."""
    produce_records(bootstrap, topic, ({"value": f"m{i}".encode(), "key": f"k{i}".encode(), "partition": partition}
                                       for partition, count in per_partition.items() for i in range(count)))


def produce_records(bootstrap: str, topic: str, records: Iterable[Mapping[str, Any]]) -> None:
    """Each record (``Producer.produce``'s keywords: value, key, partition) into ``topic``, all delivered."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "logger": quiet()})
    for record in records:
        producer.produce(topic, **record)
    assert producer.flush(30) == 0


def commit(bootstrap: str, group: str, topic: str, offsets: dict[int, int]) -> None:
    """Commit as a real member of ``group`` would after consuming up to ``offsets`` (exclusive)."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False, "logger": quiet()})
    try:
        consumer.commit(offsets=[TopicPartition(topic, p, o) for p, o in offsets.items()], asynchronous=False)
    finally:
        consumer.close()


def partition_count(admin: Any, topic: str) -> int | None:
    metadata = admin.list_topics(topic=topic, timeout=10)
    found = metadata.topics.get(topic)
    return len(found.partitions) if found is not None and found.error is None else None


@dataclass
class PrivateBroker:
    """A Kafka broker of this test's own (the shared one must keep running), on ports kept across restarts."""

    state_dir: Path
    java: str
    libs: Path
    pid: int = 0
    port: int = 0
    controller_port: int = 0
    sasl: Any = None
    """A :class:`loomctl.devstack.kafka.SaslListener`: a second listener, for clients that authenticate."""

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        from loomctl.devstack import kafka

        ports = (self.port, self.controller_port) if self.port else None
        self.pid, self.port, self.controller_port = kafka.start(self.java, self.libs, self.state_dir, ports=ports, sasl=self.sasl)

    def stop(self) -> None:
        from loomctl.devstack import kafka

        if self.pid:  # once: a test may stop it before the fixture does
            assert kafka.stop(self.pid, self.state_dir)
            self.pid = 0


@contextlib.contextmanager
def private_broker(tmp_path_factory: Any, sasl: Any = None) -> Iterator[PrivateBroker]:
    """A started broker of the caller's own (``sasl``: with a listener for clients that authenticate), stopped at
    the end; a test skips where no Kafka can run."""
    import pytest

    from loomctl.devstack import kafka

    java = kafka.find_java()
    if java is None or not kafka.jars_cached():
        pytest.skip("needs java and the cached Kafka jars (loomctl dev up fetches them)")
    own = PrivateBroker(tmp_path_factory.mktemp("broker") / "stack", java, kafka.libs_dir(), sasl=sasl)
    own.start()
    try:
        yield own
    finally:
        own.stop()


@dataclass
class PrivatePostgres:
    """A PostgreSQL server of the caller's own, set up as `loomctl dev up` sets one up."""

    binaries: Any
    os_user: Any
    root: Path
    pid: int | None = None
    port: int | None = None

    def start(self) -> None:
        from loomctl.devstack import postgres

        self.pid, self.port = postgres.start(self.binaries, self.root, self.os_user, port=self.port)

    @property
    def url(self) -> str:
        from loomctl.devstack import postgres

        assert self.port is not None
        return postgres.database_url(self.port)


@contextlib.contextmanager
def private_postgres(state_dir: Path) -> Iterator[PrivatePostgres]:
    """A started PostgreSQL with its `loom` database, stopped and removed at the end; a test skips where
    no server can run (no server programs, or root without the `postgres` user)."""
    import shutil

    import pytest

    from loomctl.devstack import postgres

    binaries = postgres.find_binaries()
    if binaries is None:
        pytest.skip(f"no PostgreSQL server programs (searched {postgres.searched()})")
    try:
        os_user = postgres.server_os_user()
    except KeyError:
        pytest.skip(f"running as root without a {postgres.SERVER_OS_USER} user")
    state_dir.mkdir(parents=True, exist_ok=True)
    server = PrivatePostgres(binaries, os_user, postgres.prepare_root(state_dir, os_user))
    try:
        postgres.init_cluster(binaries, server.root, os_user)
        server.start()
        postgres.ensure_database(server.port)
        yield server
    finally:
        postgres.stop(postgres.pid_from_file(server.root) or server.pid, server.root)
        if (state_dir / "postgres").is_symlink():
            shutil.rmtree(server.root, ignore_errors=True)


def forget_cluster(database_url: str, name: str) -> None:
    """Take a cluster a test registered on a shared database out again, with its services and partition changes:
    a later test's `lag show` across every cluster must not meet a broker this test has stopped."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM pipeline_consumer_configs WHERE cluster_name = %s", (name,))
        conn.execute("DELETE FROM topic_partition_changes WHERE cluster_name = %s", (name,))
        conn.execute("DELETE FROM kafka_clusters WHERE cluster_name = %s", (name,))
