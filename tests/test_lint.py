"""loomctl/ holds to its lint, its format and its types: ruff and mypy with the settings of pyproject.toml."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", "loomctl"],
        ["ruff", "format", "--check", "loomctl"],
        ["mypy"],
    ],
    ids=["ruff check", "ruff format", "mypy"],
)
def test_loomctl_is_clean(command: list[str]) -> None:
    result = subprocess.run([sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
