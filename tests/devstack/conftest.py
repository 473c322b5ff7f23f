"""Fixtures of the dev stack's tests."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import processes_mentioning

from loomctl import devstack
from loomctl.errors import NotFound


@pytest.fixture
def stack_dir(tmp_path: Path) -> Iterator[Path]:
    """A state folder for a stack of the test's own, stopped and removed at the end whatever happened."""
    state_dir = tmp_path / "stack"
    try:
        yield state_dir
    finally:
        with contextlib.suppress(NotFound):
            devstack.down(state_dir)
        assert processes_mentioning(str(state_dir)) == []
