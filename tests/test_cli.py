"""The command line as a whole: help on every command, fast start-up, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import typer
from support import clean_env
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


def complete(words: str, *, database_url: str | None = None) -> list[str]:
    """What bash would offer after ``words`` (the last word being completed), from the installed script."""
    env = clean_env()
    env.update({"_LOOMCTL_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(len(words.split(" ")) - 1)})
    if database_url:
        env["LOOM_DATABASE_URL"] = database_url
    script = [sys.executable, "-c", "from loomctl.cli import main; main()"]
    result = subprocess.run(script, capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    return result.stdout.split()


def test_completion_offers_command_names_and_choice_values():
    assert complete("loomctl con") == ["config"]
    assert set(complete("loomctl lag ")) >= {"show", "collect", "status", "history"}
    assert complete("loomctl config export --format ") == ["yaml", "json", "librdkafka", "java", "kafkajs", "env"]
    assert complete("loomctl config show x --client kafka") == ["kafkajs"]


def test_show_completion_prints_the_script_for_the_shell():
    # the shell is detected from the parent processes: run it under bash, as a user's shell would
    command = f"{sys.executable} -c 'from loomctl.cli import main; main()' --show-completion"
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "_LOOMCTL_COMPLETE=complete_bash" in result.stdout, result.stderr


@pytest.mark.integration
def test_completion_offers_service_names_from_the_database(database_url):
    from support import Cli, unique

    prefix = unique("complete")
    cli = Cli(database_url, group=["config"])
    for name in (f"{prefix}-alpha", f"{prefix}-beta"):
        assert cli("set", name, "--create").exit_code == 0
    assert complete(f"loomctl config show {prefix}-", database_url=database_url) == [f"{prefix}-alpha", f"{prefix}-beta"]
    assert complete(f"loomctl config show {prefix}-b", database_url=database_url) == [f"{prefix}-beta"]


def test_completion_without_a_reachable_database_offers_nothing_and_prints_no_error():
    assert complete("loomctl config show sp", database_url="postgresql://u:pw@127.0.0.1:1/x") == []
    assert complete("loomctl config show sp") == []
