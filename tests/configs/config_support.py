"""What the `config` tests share: a root app carrying the `config` group, and a CLI runner for it."""

from __future__ import annotations

import json
from typing import Any

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
