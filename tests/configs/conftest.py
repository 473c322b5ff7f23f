"""Fixtures for the `config` commands: a CLI runner on the migrated database, unique service names."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from support import Cli, unique


def pytest_configure(config: pytest.Config) -> None:
    # The database fixtures live in tests/pg_fixtures.py; load them unless the run already did (-p pg_fixtures).
    if not config.pluginmanager.has_plugin("pg_fixtures"):
        config.pluginmanager.import_plugin("pg_fixtures")


@pytest.fixture
def cli(database_url) -> Cli:
    return Cli(database_url, group=["config"])


@pytest.fixture
def service() -> str:
    return unique("svc")


@pytest.fixture
def pg(database_url) -> Iterator[psycopg.Connection]:
    """An autocommit connection, as an operator in psql has."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def fresh_database_url(database_factory) -> Iterator[str]:
    """A migrated database of the test's own, for tests that need to see every service (import --prune)."""
    from loomctl.db import migrations

    url = database_factory.create()
    migrations.upgrade(url)
    yield url
    database_factory.drop(url)
