"""A PostgreSQL that accepts TCP but never answers (its postmaster stopped): every command gives up within the
connect timeout with exit 5, the Alembic ones (`db ...`) included."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import Cli

from loomctl.db import CONNECT_TIMEOUT_S
from loomctl.devstack import postgres

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


@contextlib.contextmanager
def private_postgres(state_dir: Path) -> Iterator[tuple[int, Path, str]]:
    """A PostgreSQL of the test's own, started as `loomctl dev up` would: (postmaster pid, root, URL)."""
    binaries = postgres.find_binaries()
    if binaries is None:
        pytest.skip(f"no PostgreSQL server programs (searched {postgres.searched()})")
    try:
        os_user = postgres.server_os_user()
    except KeyError:
        pytest.skip(f"running as root without a {postgres.SERVER_OS_USER} user")
    state_dir.mkdir(parents=True, exist_ok=True)
    root = postgres.prepare_root(state_dir, os_user)
    pid = None
    try:
        postgres.init_cluster(binaries, root, os_user)
        pid, port = postgres.start(binaries, root, os_user)
        postgres.ensure_database(port)
        yield pid, root, postgres.database_url(port)
    finally:
        postgres.stop(postgres.pid_from_file(root) or pid, root)
        if (state_dir / "postgres").is_symlink():
            shutil.rmtree(root, ignore_errors=True)


def test_every_command_fails_within_the_connect_timeout_when_postgresql_does_not_answer(tmp_path):
    with private_postgres(tmp_path / "stack") as (pid, _root, url):
        cli = Cli(url)
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
