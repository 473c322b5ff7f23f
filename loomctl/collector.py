"""`loomctl lag collect`: sample every configured group into ``consumer_lag_history``, like Burrow.

One cycle = one cluster snapshot, then one transaction that COPYs every sample of it, so a
sample is written whole or not at all. Only the collector holding a session-level advisory
lock writes (the others stand by and take over when its connection goes away), so two
collectors never double a sample. A broker or database outage costs cycles, never the process:
each failure is reported once per cycle and retried with a growing backoff.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loomctl import lag
from loomctl.errors import BackendUnavailable, BadInput, LoomError
from loomctl.settings import Settings, libpq_url, mask_url

if TYPE_CHECKING:
    import psycopg

# pg_try_advisory_lock key of the writing collector ("loomlagc")
WRITER_LOCK_KEY = 0x6C6F6F6D6C616763
MAINTENANCE_EVERY = dt.timedelta(hours=1)
MAX_BACKOFF_S = 60.0

Event = Callable[[str, str], None]
"""(level, message): level is "info" or "warning"; the CLI prints them, tests collect them."""


@dataclass
class CycleResult:
    written: int = 0
    groups: int = 0
    standby: bool = False
    retention_dropped: int = 0
    retention_deleted: int = 0


@dataclass
class Collector:
    settings: Settings
    interval: dt.timedelta
    retention: dt.timedelta | None = dt.timedelta(days=7)
    on_event: Event = lambda level, message: None
    timeout_s: float = 10.0
    _conn: "psycopg.Connection[Any] | None" = field(default=None, init=False, repr=False)
    _admin: Any = field(default=None, init=False, repr=False)
    _leader: bool = field(default=False, init=False)
    _last_maintenance: float = field(default=float("-inf"), init=False)

    # -- connections ---------------------------------------------------------------------------

    def _connection(self) -> "psycopg.Connection[Any]":
        import psycopg

        if self._conn is not None and not self._conn.closed:
            return self._conn
        self._leader = False
        url = self.settings.require_database_url()
        try:
            self._conn = psycopg.connect(libpq_url(url), connect_timeout=int(self.timeout_s), application_name="loomctl lag collect")
        except psycopg.OperationalError as exc:
            raise BackendUnavailable(f"cannot reach PostgreSQL at {mask_url(url)}: {_first_line(exc)}") from None
        return self._conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # already broken; closing is best effort
                pass
        self._conn = None
        self._leader = False

    def _admin_client(self) -> Any:
        if self._admin is None:
            from loomctl import kafka

            self._admin = kafka.admin_client(self.settings, timeout=self.timeout_s)
        return self._admin

    def close(self) -> None:
        self._drop_connection()
        self._admin = None

    # -- one cycle -----------------------------------------------------------------------------

    def _take_lead(self, conn: "psycopg.Connection[Any]") -> bool:
        if not self._leader:
            got = conn.execute("SELECT pg_try_advisory_lock(%s)", (_signed(WRITER_LOCK_KEY),)).fetchone()
            conn.commit()
            if got and got[0]:
                self._leader = True
                self.on_event("info", "this collector writes the samples (writer lock taken)")
                self._last_maintenance = float("-inf")
        return self._leader

    def cycle(self) -> CycleResult:
        """Take one sample of every configured group and write it in one transaction."""
        import psycopg

        from loomctl import kafka

        result = CycleResult()
        try:
            conn = self._connection()
            if not self._take_lead(conn):
                result.standby = True
                return result
            services = lag.configured_groups(conn)
            conn.commit()
            result.groups = len(services)
            if not services:
                return result
            snap = kafka.snapshot(self._admin_client(), sorted(services), timeout=self.timeout_s)
            now = dt.datetime.now(dt.timezone.utc)
            samples = samples_from(snap, services, now)
            committed = {(s.consumer_group_id, s.topic_name, s.partition): s.committed_offset for s in samples
                         if s.committed_offset is not None and s.lag}
            points = lag.history_points(conn, committed, now)  # type: ignore[arg-type]
            samples = [_with_time_lag(s, points, now) for s in samples]
            if time.monotonic() - self._last_maintenance >= MAINTENANCE_EVERY.total_seconds():
                self._maintain(conn, now, result)
            result.written = lag.copy_samples(conn, samples)
            conn.commit()
            return result
        except psycopg.OperationalError as exc:
            self._drop_connection()
            raise BackendUnavailable(f"PostgreSQL: {_first_line(exc)}") from None
        except psycopg.Error as exc:
            self._rollback()
            raise LoomError(f"PostgreSQL: {_first_line(exc)}") from None
        except BaseException:
            self._rollback()
            raise

    def _rollback(self) -> None:
        if self._conn is not None and not self._conn.closed:
            try:
                self._conn.rollback()
            except Exception:
                self._drop_connection()

    def _maintain(self, conn: "psycopg.Connection[Any]", now: dt.datetime, result: CycleResult) -> None:
        """Daily partitions ahead, and retention by dropping whole days (hourly, in the same transaction)."""
        conn.execute("SELECT public.ensure_lag_history_partitions(1, 7)")
        if self.retention is not None:
            row = conn.execute("SELECT * FROM public.drop_lag_history_before(%s)", (now - self.retention,)).fetchone()
            if row:
                result.retention_dropped, result.retention_deleted = int(row[0]), int(row[1])
        self._last_maintenance = time.monotonic()

    # -- the loop ------------------------------------------------------------------------------

    def run(self, stop: threading.Event, *, once: bool = False) -> int:
        """Cycle every ``interval`` until ``stop`` is set; returns the number of cycles that wrote."""
        failures = 0
        wrote = 0
        was_standby = False
        while not stop.is_set():
            started = time.monotonic()
            try:
                result = self.cycle()
            except LoomError as exc:
                if once or isinstance(exc, BadInput):
                    raise
                failures += 1
                delay = min(2.0 ** (failures - 1), MAX_BACKOFF_S, max(self.interval.total_seconds(), 1.0))
                self.on_event("warning", f"{exc} (attempt {failures}, retrying in {delay:g}s)")
                stop.wait(delay)
                continue
            if failures:
                self.on_event("info", f"recovered after {failures} failed attempt{'s' if failures != 1 else ''}")
            failures = 0
            if result.standby and not was_standby:
                self.on_event("info", "another collector holds the writer lock; standing by")
            was_standby = result.standby
            if result.written:
                wrote += 1
                self.on_event("debug", f"wrote {result.written} samples of {result.groups} groups")
            if result.retention_dropped or result.retention_deleted:
                self.on_event(
                    "info",
                    f"retention: dropped {result.retention_dropped} day partitions, deleted {result.retention_deleted} rows",
                )
            if once:
                break
            stop.wait(max(self.interval.total_seconds() - (time.monotonic() - started), 0.0))
        return wrote


def samples_from(snap: Any, services: dict[str, str], now: dt.datetime) -> list[lag.LagSample]:
    """The history rows of one snapshot: every partition with a known log end, unknown lag kept as NULL."""
    rows = lag.live_lag(snap, services, sorted(services), now=now)
    members = {g: len(snap.groups[g].members) for g in snap.groups}
    return [
        lag.LagSample(
            consumer_group_id=r.consumer_group_id,
            topic_name=r.topic_name,
            partition=r.partition,
            timestamp=now,
            service_name=r.service_name or r.consumer_group_id,
            committed_offset=r.committed_offset,
            log_end_offset=r.log_end_offset,
            log_start_offset=r.log_start_offset,
            lag=r.lag,
            time_lag_ms=None,
            group_state=r.group_state,
            member_count=members.get(r.consumer_group_id, 0),
        )
        for r in rows
        if r.log_end_offset is not None
    ]


def _with_time_lag(sample: lag.LagSample, points: dict[Any, Any], now: dt.datetime) -> lag.LagSample:
    from dataclasses import replace

    before, after = points.get((sample.consumer_group_id, sample.topic_name, sample.partition), (None, None))
    time_lag = lag.estimate_time_lag_ms(sample.committed_offset, sample.log_end_offset, now, before, after)
    return replace(sample, time_lag_ms=time_lag)


def _signed(key: int) -> int:
    """PostgreSQL's advisory lock keys are signed 64-bit."""
    return key - (1 << 64) if key >= (1 << 63) else key


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
