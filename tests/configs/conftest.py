"""Fixtures for the `config` commands: a CLI runner on the migrated database, unique service names."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import typer
from typer.testing import CliRunner

from loomctl.cli import LoomGroup, root
from loomctl.cli import config as config_cli


def cli_app() -> typer.Typer:
    """The `config` group under a root with the real global options and error handler."""
    app = typer.Typer(cls=LoomGroup, no_args_is_help=True, add_completion=False)
    app.callback()(root)
    app.add_typer(config_cli.app, name="config")
    return app


class Cli:
    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.app = cli_app()
        self.runner = CliRunner(env={"NO_COLOR": "1", "COLUMNS": "200", "LOOM_ACTOR": "tester"})

    def __call__(self, *args: str, input: str | None = None, url: str | None = None) -> Any:
        return self.runner.invoke(
            self.app, ["--database-url", url or self.database_url, "config", *args], input=input, catch_exceptions=False
        )

    def json(self, *args: str) -> Any:
        result = self(*args, "-o", "json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)


@pytest.fixture
def cli(database_url) -> Cli:
    return Cli(database_url)


@pytest.fixture
def service() -> str:
    return f"svc-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def pg(database_url) -> Iterator[psycopg.Connection]:
    """An autocommit connection, as an operator in psql has."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def fresh_database_url(database_factory) -> Iterator[str]:
    """A migrated database of the test's own, for tests that need to see every service (import --prune)."""
    from loomctl import migrations

    url = database_factory.create()
    migrations.upgrade(url)
    yield url
    database_factory.drop(url)
