"""A PostgreSQL that accepts TCP but never answers (its postmaster stopped): every command gives up within the
connect timeout with exit 5, the Alembic ones (`db ...`) included."""

from __future__ import annotations

import os
import signal
import time

import pytest
from support import Cli, private_postgres

from loomctl.db import CONNECT_TIMEOUT_S

pytestmark = pytest.mark.slow

COMMANDS = [
    ["db", "current"],
    ["db", "check"],
    ["db", "upgrade"],
    ["db", "history"],
    ["db", "downgrade", "base"],
    ["config", "list"],
    ["lag", "status"],
]


def test_every_command_fails_within_the_connect_timeout_when_postgresql_does_not_answer(tmp_path):
    with private_postgres(tmp_path / "stack") as server:
        pid, cli = server.pid, Cli(server.url)
        assert cli("db", "current").exit_code == 0  # it answers before it is stopped
        os.kill(pid, signal.SIGSTOP)
        try:
            for command in COMMANDS:
                started = time.monotonic()
                result = cli(*command)
                elapsed = time.monotonic() - started
                assert result.exit_code == 5, (command, result.output)
                assert "PostgreSQL" in result.stderr and result.stderr.count("\n") == 1, (command, result.stderr)
                # the connect timeout and some start-up, not the kernel's TCP retries (130 s and more)
                assert elapsed < 3 * CONNECT_TIMEOUT_S, (command, elapsed)
        finally:
            os.kill(pid, signal.SIGCONT)
