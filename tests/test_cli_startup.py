"""What keeps `loomctl` quick to start: the root's commands load when first looked up, and parameter values
are converted without Typer's pydantic adapters. Both must change nothing a user sees."""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer
from support import runner

from loomctl.cli import app
from loomctl.cli.registry import COMMANDS


def _leaves() -> list[tuple[str, object]]:
    root = typer.main.get_command(app)

    def walk(group: object, path: list[str]):
        for name, command in group.commands.items():  # type: ignore[attr-defined]
            if hasattr(command, "commands"):
                yield from walk(command, [*path, name])
            else:
                yield " ".join([*path, name]), command

    return list(walk(root, []))


def test_the_table_holds_every_commands_own_help() -> None:
    root = typer.main.get_command(app)
    assert list(root.commands) == list(COMMANDS)  # type: ignore[attr-defined]
    for name, (_, _, help_text) in COMMANDS.items():
        assert root.commands[name].help == help_text, f"cli.registry.COMMANDS[{name!r}] differs from the command's own help"  # type: ignore[attr-defined]


def _modules_after(argv: list[str]) -> set[str]:
    code = (f"import sys; sys.argv = {['loomctl', *argv]!r}\n"
            "from loomctl.cli import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print(' '.join(sorted(sys.modules)), file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"NO_COLOR": "1", "PATH": ""})
    return set(result.stderr.strip().splitlines()[-1].split())


def test_a_command_loads_its_own_group_only_and_help_loads_none() -> None:
    loaded = _modules_after(["lag", "show", "--help"])
    assert "loomctl.cli.lag" in loaded
    assert not loaded & {"loomctl.cli.config", "loomctl.cli.partitions", "loomctl.cli.dev", "loomctl.cli.db", "pydantic"}
    loaded = _modules_after(["--help"])
    assert not loaded & {module for module, _, _ in COMMANDS.values()}  # the root's own modules only
    assert "pydantic" not in loaded


def test_parsing_valid_options_needs_no_pydantic() -> None:
    loaded = _modules_after(["--database-url", "postgresql://nobody@127.0.0.1:1/x", "-o", "json", "lag", "show", "svc",
                             "--by", "partition", "--window", "5m", "--watch", "2"])
    assert "pydantic" not in loaded


SAMPLES = ["", "x", "speech-processor", "json", "JSON", "table", "partition", "15m", "1", "0", "-1", "2.5", "nan", "9" * 40,
           "a\nb", "\udcff", "é", "librdkafka", "/tmp", "./nowhere", "true", "yes"]


@pytest.mark.parametrize(("name", "command"), _leaves(), ids=lambda v: v if isinstance(v, str) else "")
def test_direct_conversion_equals_typers_adapter(name: str, command: object) -> None:
    """Every parameter of every command: the same value, or the same error, as Typer's own pydantic adapter."""
    from typer._coercion import build_runtime_param

    ctx = typer.Context(command)  # type: ignore[arg-type]
    for param in command.params:  # type: ignore[attr-defined]
        if not hasattr(param, "type_descriptor"):
            continue
        ours = param.get_runtime_param()
        theirs = build_runtime_param(param.type_descriptor)
        multi = param.multiple or param.nargs == -1
        for sample in SAMPLES:
            value = (sample, "other") if multi else sample
            outcomes = []
            for runtime in (ours, theirs):
                try:
                    outcomes.append(("value", runtime.coerce(value, param=param, ctx=ctx)))
                except Exception as exc:  # noqa: BLE001  (the error itself is compared)
                    outcomes.append((type(exc).__name__, getattr(exc, "message", str(exc))))
            assert outcomes[0] == outcomes[1], f"{name} {param.name} {value!r}"


def test_an_unknown_command_still_gets_typers_suggestion() -> None:
    result = runner().invoke(app, ["lga", "show"])
    assert result.exit_code == 2 and "Did you mean 'lag'?" in result.output


def test_the_coercion_is_in_place() -> None:
    from typer import core

    assert core._TyperParameter.get_runtime_param.__module__ == "loomctl.cli.coercion"
