"""Database fixtures on top of the session's PostgreSQL server: fresh databases, rolled-back connections."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from support import suffix


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


class DatabaseFactory:
    """Creates throwaway databases on the session's server and drops them afterwards."""

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url
        self.created: list[str] = []

    def create(self, prefix: str = "loomtest") -> str:
        name = f"{prefix}_{suffix(10)}"
        with psycopg.connect(self.server_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return _with_database(self.server_url, name)

    def drop(self, url: str) -> None:
        name = urlsplit(url).path.lstrip("/")
        with psycopg.connect(self.server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.created.remove(name)


@pytest.fixture(scope="session")
def database_factory(services) -> Iterator[DatabaseFactory]:
    factory = DatabaseFactory(services.database_url)
    yield factory
    for name in list(factory.created):
        factory.drop(_with_database(factory.server_url, name))


@pytest.fixture(scope="session")
def database_url(database_factory) -> str:
    """A database migrated to head, shared by the session; tests isolate by unique names or rollback."""
    from loomctl.db import migrations

    url = database_factory.create()
    migrations.upgrade(url)
    return url


@pytest.fixture
def empty_database_url(database_factory) -> Iterator[str]:
    """A fresh, never-migrated database of the test's own, for tests that run DDL."""
    url = database_factory.create()
    yield url
    database_factory.drop(url)


@pytest.fixture
def pg(database_url) -> Iterator[psycopg.Connection]:
    """An autocommit connection to the migrated database, as an operator in psql has."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def db(database_url) -> Iterator[psycopg.Connection]:
    """A connection to the migrated database whose work is rolled back after the test."""
    conn = psycopg.connect(database_url)
    try:
        yield conn
    finally:
        conn.rollback()
        conn.close()
