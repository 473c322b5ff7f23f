"""The command line as a whole: help on every command, fast start-up, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import typer
from support import runner as make_runner

from loomctl import __version__
from loomctl.cli import app

runner = make_runner()


def all_commands():
    root = typer.main.get_command(app)

    def walk(group, path):
        for name, command in group.commands.items():
            if hasattr(command, "commands"):
                yield from walk(command, [*path, name])
            else:
                yield " ".join([*path, name]), command

    return list(walk(root, []))


@pytest.mark.parametrize(("name", "command"), all_commands(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_command_has_help_with_an_example(name, command):
    assert command.help, f"{name} has no help"
    assert "Example: loomctl " in command.help, f"{name} help lacks an example"


def test_help_does_not_import_heavy_libraries():
    code = (
        "import sys; sys.argv = ['loomctl', '--help']\n"
        "from loomctl.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('sqlalchemy', 'confluent_kafka', 'alembic', 'psycopg') if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "HEAVY="


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.stdout


def test_unknown_command_is_a_usage_error():
    assert runner.invoke(app, ["no-such-command"]).exit_code == 2


def test_missing_database_url_is_bad_input(monkeypatch):
    monkeypatch.delenv("LOOM_DATABASE_URL", raising=False)
    result = runner.invoke(app, ["db", "current"], catch_exceptions=False)
    assert result.exit_code == 2
    assert "LOOM_DATABASE_URL" in result.stderr
    assert "Traceback" not in result.output


def test_unreachable_database_is_exit_5_with_the_password_masked():
    result = runner.invoke(app, ["--database-url", "postgresql://u:hunter2@127.0.0.1:1/x", "db", "current"], catch_exceptions=False)
    assert result.exit_code == 5
    assert "hunter2" not in result.output
    assert result.stderr.count("\n") == 1


@pytest.mark.integration
def test_db_commands_against_the_migrated_database(database_url):
    base = ["--database-url", database_url, "db"]
    result = runner.invoke(app, [*base, "upgrade"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    current = json.loads(runner.invoke(app, [*base, "current", "-o", "json"], catch_exceptions=False).stdout)
    assert [row["is_head"] for row in current] == [True]
    history = json.loads(runner.invoke(app, ["-o", "json", *base, "history"], catch_exceptions=False).stdout)
    assert history[0]["revision"] == current[0]["revision"] and history[0]["is_current"]
    result = runner.invoke(app, [*base, "history", "-o", "yaml"], catch_exceptions=False)
    assert result.exit_code == 0 and "revision:" in result.stdout
    result = runner.invoke(app, [*base, "downgrade", "nonexistent-revision"], catch_exceptions=False)
    assert result.exit_code == 2
