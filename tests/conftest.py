"""Session fixtures: one real PostgreSQL server and one real Kafka broker for the whole test run.

Both come from LOOM_DATABASE_URL and LOOM_KAFKA_BOOTSTRAP_SERVERS when both are set; otherwise
the session starts them with `loomctl.devstack` (what `loomctl dev up` starts) in a fresh temp
folder and stops them at the end, also when tests fail or the run is interrupted. The broker runs
the Kafka release of LOOM_DEV_KAFKA_VERSION, else the pom's (as `dev up` and Kafka's tools do). Beside them:
an admin client of the session's broker, and a broker of a module's own (`broker`) for tests that stop it.
The helpers all tests share are in support.py; the database fixtures in pg_fixtures.py.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from support import PrivateBroker, admin_client, private_broker

from loomctl.settings import ENV_BOOTSTRAP_SERVERS, ENV_DATABASE_URL


@dataclass(frozen=True)
class Services:
    database_url: str
    """The server's ``loom`` database; tests that need their own database create it on this server."""
    bootstrap_servers: str
    state_dir: Path | None = None
    """The devstack folder when this session started the services, None when they came from the environment."""


class _StackStopper:
    """Stops the session's stack exactly once, from the fixture's teardown or, failing that, at exit."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self._lock = threading.Lock()
        self._done = False

    def __call__(self) -> None:
        with self._lock:
            if self._done:
                return
            self._done = True
        from loomctl import devstack
        from loomctl.errors import NotFound

        with contextlib.suppress(NotFound):
            devstack.down(self.state_dir)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Let SIGTERM (a CI timeout, `kill`) end the run like Ctrl-C, so teardown still stops the servers.

    Python's default for SIGTERM ends the process at once, skipping every finally block.
    """
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


@pytest.fixture(autouse=True)
def _collect_on_the_main_thread() -> Iterator[None]:
    """After each test, the garbage it left is collected here, on the main thread. A Kafka client (librdkafka) caught
    in a reference cycle is destroyed when its cycle is collected, and a collection that happens to run on one of
    librdkafka's own threads (a future's callback) aborts the whole process there."""
    yield
    import gc

    gc.collect()


@pytest.fixture(scope="session")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    database_url = os.environ.get(ENV_DATABASE_URL)
    bootstrap_servers = os.environ.get(ENV_BOOTSTRAP_SERVERS)
    if database_url and bootstrap_servers:
        yield Services(database_url, bootstrap_servers)
        return

    from loomctl import devstack

    state_dir = tmp_path_factory.mktemp("devstack") / "stack"
    stop = _StackStopper(state_dir)
    atexit.register(stop)  # if teardown never runs (an internal error), the interpreter's exit still stops them
    with _sigterm_as_interrupt():
        try:
            info = devstack.up(state_dir, migrate=False)
            assert info.database_url is not None and info.bootstrap_servers is not None
            yield Services(info.database_url, info.bootstrap_servers, state_dir)
        finally:
            stop()
            atexit.unregister(stop)


@pytest.fixture(scope="session")
def admin(services: Services) -> Any:
    """An AdminClient of the session's broker."""
    return admin_client(services.bootstrap_servers)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateBroker]:
    """A broker of the module's own, for tests that stop it (the session's must keep running)."""
    with private_broker(tmp_path_factory) as own:
        yield own


def pytest_report_header(config: pytest.Config) -> str:
    """Which Kafka the run is against, on the first lines of its output (CI runs two releases)."""
    if os.environ.get(ENV_DATABASE_URL) and os.environ.get(ENV_BOOTSTRAP_SERVERS):
        return f"services: {ENV_DATABASE_URL} and {ENV_BOOTSTRAP_SERVERS} (brokers of their own release)"
    from loomctl.devstack import kafka
    from loomctl.errors import LoomError

    try:
        release = kafka.version()
    except LoomError as exc:
        return f"services: the session cannot start Kafka: {exc}"
    source = kafka.ENV_VERSION if kafka.requested_version() else "loomctl/devstack/kafka-pom.xml"
    return f"services: the session starts PostgreSQL and Apache Kafka {release} (from {source})"


def pytest_configure(config: pytest.Config) -> None:
    # Database fixtures (fresh databases on the session's server, rolled-back connections).
    if not config.pluginmanager.has_plugin("pg_fixtures"):
        config.pluginmanager.import_plugin("pg_fixtures")
