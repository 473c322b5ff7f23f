"""Fixtures for the `partitions` tests: the session's database and broker, throwaway topics."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from support import Cli, admin_client, create_topic, delete_topics, unique


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin("pg_fixtures"):
        config.pluginmanager.import_plugin("pg_fixtures")




@pytest.fixture(scope="session")
def admin(services) -> Any:
    return admin_client(services.bootstrap_servers)


@pytest.fixture
def new_topic(admin) -> Iterator[Callable[..., str]]:
    """Creates a topic with a random name (deleted after the test) and returns its name."""
    created: list[str] = []

    def make(partitions: int = 1, prefix: str = "pt") -> str:
        created.append(create_topic(admin, unique(prefix), partitions))
        return created[-1]

    yield make
    delete_topics(admin, created)


@pytest.fixture
def cli(database_url, services) -> Cli:
    return Cli(database_url, services.bootstrap_servers, group=["partitions"])


@pytest.fixture
def pg(database_url) -> Iterator[psycopg.Connection]:
    """An autocommit connection, as an operator in psql has."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield conn
