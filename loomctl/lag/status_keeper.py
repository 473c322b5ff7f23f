"""Keeping the window's statuses for the views after each written collector cycle (refresh_lag_partition_status),
off the cycle's path, within a share of the interval."""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import TYPE_CHECKING, Any

from loomctl import db
from loomctl.db import close_quietly, first_line
from loomctl.settings import Settings

if TYPE_CHECKING:
    import psycopg

STATUS_BUDGET_SHARE = 0.2
"""The share of the interval that keeping the window's statuses may take."""
PAUSE_AFTER_PROBLEM = dt.timedelta(hours=1)
"""A refresh that failed or outgrew its budget is not tried again for this long."""


def status_budget(interval: dt.timedelta) -> float:
    return max(1.0, interval.total_seconds() * STATUS_BUDGET_SHARE)


class StatusKeeper:
    """Keeps the window's lag_partition_status for the views after each written cycle (see
    refresh_lag_partition_status), on a connection and a thread of its own, within ``budget_s``.

    Off the cycle's path: the samples are committed first, and the refresh (seconds at thousands of
    groups, for the window's hundreds of thousands of rows) runs in the part of the interval the
    collector waits anyway. Until it commits, the views see samples newer than the copy and compute
    from the history, as they do without a collector, so no reader gets statuses older than the
    samples. A refresh still running when the next cycle is written is not started again (one at a
    time). One that fails (a schema older than 0006) or outgrows its budget (a window too large to
    compute each cycle) is not tried again for an hour, and what went wrong is kept for the
    collector to say once. A lost connection is opened again at the next cycle, without waiting: the
    cycle itself reports the outage.
    """

    def __init__(self, settings: Settings, window: dt.timedelta, budget_s: float, timeout_s: float) -> None:
        self.settings = settings
        self.window = window
        self.budget_s = budget_s
        self.timeout_s = timeout_s
        self._conn: "psycopg.Connection[Any] | None" = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._problem: str | None = None
        self._paused_until = float("-inf")
        self._took: float | None = None

    def start(self) -> bool:
        """Refresh in the background unless one still runs or refreshing is paused; whether it started."""
        if self._thread is not None and self._thread.is_alive():
            return False
        if time.monotonic() < self._paused_until:
            return False
        self._took = None
        self._thread = threading.Thread(target=self._refresh, name="loomctl-keep-statuses", daemon=True)
        self._thread.start()
        return True

    def wait(self, timeout_s: float | None = None) -> float | None:
        """Join the refresh under way, if any; the seconds the last refresh took (None: none completed)."""
        if self._thread is not None:
            self._thread.join(timeout_s)
        return self._took

    def take_problem(self) -> str | None:
        with self._lock:
            problem, self._problem = self._problem, None
        return problem

    def close(self) -> None:
        self.wait(self.budget_s + self.timeout_s)
        close_quietly(self._conn)
        self._conn = None

    def _connection(self) -> "psycopg.Connection[Any]":
        if self._conn is None or self._conn.closed:
            self._conn = db.open_connection(
                self.settings.require_database_url(),
                connect_timeout=self.timeout_s,
                application_name="loomctl lag collect (statuses)",
            )
        return self._conn

    def _refresh(self) -> None:
        import psycopg

        started = time.monotonic()
        problem = None
        try:
            conn = self._connection()
            with conn.transaction():
                conn.execute(f"SET LOCAL statement_timeout = {int(self.budget_s * 1000)}")
                conn.execute("SELECT public.refresh_lag_partition_status(%s)", [self.window])
            self._took = time.monotonic() - started
        except psycopg.errors.QueryCanceled:
            problem = f"computing them took longer than {self.budget_s:g} s, a fifth of the interval"
        except psycopg.OperationalError:  # the cycle reports the outage; the next refresh connects again
            close_quietly(self._conn)
            self._conn = None
        except psycopg.Error as exc:
            problem = first_line(exc)
        except Exception as exc:  # a bug: say what, rather than losing it with the thread
            problem = f"{type(exc).__name__}: {exc}"
        if problem:
            self._paused_until = time.monotonic() + PAUSE_AFTER_PROBLEM.total_seconds()
            with self._lock:
                self._problem = problem
