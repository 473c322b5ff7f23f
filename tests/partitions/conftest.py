"""Fixtures for the `partitions` tests: the session's database and broker, throwaway topics."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from partitions_support import Cli, unique
from loomctl.kafka import quiet_logger


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin("pg_fixtures"):
        config.pluginmanager.import_plugin("pg_fixtures")




@pytest.fixture(scope="session")
def admin(services) -> Any:
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": services.bootstrap_servers, "logger": quiet_logger()})


@pytest.fixture
def new_topic(admin) -> Iterator[Callable[..., str]]:
    """Creates a topic with a random name (deleted after the test) and returns its name."""
    from confluent_kafka.admin import NewTopic

    created: list[str] = []

    def make(partitions: int = 1, prefix: str = "pt") -> str:
        name = unique(prefix)
        admin.create_topics([NewTopic(name, partitions, 1)], operation_timeout=10)[name].result(timeout=20)
        created.append(name)
        return name

    yield make
    if created:
        for future in admin.delete_topics(created, operation_timeout=10).values():
            try:
                future.result(timeout=20)
            except Exception:  # already gone, or the broker is busy: a leftover topic harms nobody
                pass


@pytest.fixture
def cli(database_url, services) -> Cli:
    return Cli(database_url, services.bootstrap_servers)


@pytest.fixture
def pg(database_url) -> Iterator[psycopg.Connection]:
    """An autocommit connection, as an operator in psql has."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield conn
