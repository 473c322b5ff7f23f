"""Fixtures for the `config` commands: a CLI runner on the migrated database (and one with the session's broker),
unique service names."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support import Cli, own_database, unique


@pytest.fixture
def cli(database_url) -> Cli:
    return Cli(database_url, group=["config"])


@pytest.fixture
def kafka_cli(database_url, services) -> Cli:
    """`loomctl config` with the session's broker too: the commands that read or set what the broker holds."""
    return Cli(database_url, services.bootstrap_servers, group=["config"])


@pytest.fixture
def service() -> str:
    return unique("svc")


@pytest.fixture
def fresh_database_url(database_factory) -> Iterator[str]:
    """A migrated database of the test's own, for tests that need to see every service (import --prune)."""
    with own_database(database_factory) as url:
        yield url
