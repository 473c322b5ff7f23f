"""`loomctl lag collect`: sample every configured group into ``consumer_lag_history``, like Burrow.

One cycle = one cluster snapshot, then one transaction that COPYs every sample of it, so a
sample is written whole or not at all. The snapshot is taken in a child process that owns the
Kafka client (:mod:`loomctl.lag.snapshot_worker`), so a librdkafka abort costs a cycle, not the collector; after
a written cycle the window's statuses are kept for the views off the cycle's path (:mod:`loomctl.lag.status_keeper`).
Only the collector holding a session-level advisory
lock writes (the others stand by and take over when its connection goes away), so two
collectors never double a sample. A broker or database outage costs cycles, never the process:
each failure is reported once per cycle and retried with a growing backoff.

With an :class:`~loomctl.lag.exporter.Exporter` (`--listen`) each completed cycle is handed to it whole, and
the HTTP server (a thread of this process, see ``lag.http``) serves that from memory: a scrape never waits
on a cycle, Kafka or PostgreSQL, and a failed cycle leaves the last good figures with the health saying so.
A standby then takes its own snapshots (it writes nothing), so either collector of a pair can be scraped.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loomctl import db
from loomctl.db import close_quietly, first_line
from loomctl.errors import BackendUnavailable, BadInput, Conflict, LoomError
from loomctl.lag.live import gc_paused, live_lag
from loomctl.lag.samples import LagSample, copy_samples, iter_samples
from loomctl.lag.snapshot_worker import SnapshotCrashed, SnapshotWorker
from loomctl.lag.status_keeper import StatusKeeper, status_budget
from loomctl.lag.time_lag import Key, PreviousSample, previous_samples
from loomctl.lag.verdicts import STATUS_WINDOW
from loomctl.settings import Settings

if TYPE_CHECKING:
    import psycopg

    from loomctl.configs import ConsumerConfig
    from loomctl.kafka import ClusterSnapshot
    from loomctl.lag.exporter import Exporter

# pg_try_advisory_lock key of the writing collector ("loomlagc")
WRITER_LOCK_KEY = 0x6C6F6F6D6C616763
MAINTENANCE_EVERY = dt.timedelta(hours=1)
MAX_BACKOFF_S = 60.0

Event = Callable[[str, str], None]
"""(level, message): level is "debug", "info" or "warning"; the CLI prints them, tests collect them."""


def _silent(level: str, message: str) -> None:
    pass


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
    on_event: Event = _silent
    timeout_s: float = 10.0
    exporter: "Exporter | None" = None
    """Set when the collector serves what it saw (`--listen`): a standby then takes snapshots too."""
    status_window: dt.timedelta = STATUS_WINDOW
    _conn: "psycopg.Connection[Any] | None" = field(default=None, init=False, repr=False)
    _worker: "SnapshotWorker | None" = field(default=None, init=False, repr=False)
    _leader: bool = field(default=False, init=False)
    _previous: dict[Key, PreviousSample] | None = field(default=None, init=False, repr=False)
    _previous_groups: set[str] = field(default_factory=set, init=False, repr=False)
    _last_maintenance: float = field(default=float("-inf"), init=False)
    _keeper: "StatusKeeper | None" = field(default=None, init=False, repr=False)
    snapshot_crashes: int = field(default=0, init=False)
    """Times the snapshot's child process died (a librdkafka abort or a crash) since start."""

    @classmethod
    def for_interval(
        cls,
        settings: Settings,
        interval: dt.timedelta,
        retention: dt.timedelta | None,
        *,
        on_event: Event = _silent,
        exporter: "Exporter | None" = None,
        status_window: dt.timedelta = STATUS_WINDOW,
    ) -> "Collector":
        """The collector of `lag collect`: its Kafka requests time out after one interval (2 s at least, 10 s
        at most), and settings that cannot work fail here rather than being retried every cycle."""
        settings.require_database_url()
        settings.kafka_properties()
        return cls(
            settings,
            interval,
            retention,
            on_event=on_event,
            timeout_s=min(10.0, max(2.0, interval.total_seconds())),
            exporter=exporter,
            status_window=status_window,
        )

    @classmethod
    def from_options(
        cls,
        settings: Settings,
        *,
        interval: str,
        retention: str,
        window: str,
        listen: str | None,
        cluster_name: str,
        granularity: str,
        on_event: Event = _silent,
    ) -> "Collector":
        """The collector of `lag collect`'s options as typed (durations, the address): bad ones fail here, before
        anything starts; with ``listen`` it feeds an exporter (:attr:`exporter`) for the endpoint to serve."""
        from loomctl.validation import parse_duration

        every = parse_duration(interval, option="--interval")
        keep = parse_duration(retention, option="--retention")
        status_window = parse_duration(window, option="--window")
        exporter = None
        if listen is not None:
            from loomctl.lag.exporter import Exporter
            from loomctl.lag.http import parse_listen

            parse_listen(listen)
            exporter = Exporter(cluster_name, granularity, every)
        return cls.for_interval(settings, every, keep, on_event=on_event, exporter=exporter, status_window=status_window)

    def _connection(self) -> "psycopg.Connection[Any]":
        import psycopg

        if self._conn is not None and not self._conn.closed:
            return self._conn
        self._leader = False
        url = self.settings.require_database_url()
        try:
            self._conn = db.open_connection(url, connect_timeout=self.timeout_s, application_name="loomctl lag collect")
        except psycopg.OperationalError as exc:
            raise db.unreachable(url, exc) from None
        return self._conn

    def _drop_connection(self) -> None:
        close_quietly(self._conn)
        self._conn = None
        self._leader = False

    def _snapshot(self, group_ids: list[str]) -> Any:
        if self._worker is None:
            self._worker = SnapshotWorker(self.settings, self.timeout_s)
        try:
            return self._worker.snapshot(group_ids)
        except SnapshotCrashed:
            # counted here, reported with its stack by whoever handles the cycle's failure (run: one warning)
            self.snapshot_crashes += 1
            if self.exporter is not None:
                self.exporter.snapshot_crashed()
            raise

    def __enter__(self) -> "Collector":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.settle()
        if self._keeper is not None:
            self._keeper.close()
            self._keeper = None
        self._drop_connection()
        if self._worker is not None:
            self._worker.close()
            self._worker = None

    def _keep_statuses(self) -> None:
        """After a written cycle: keep the window's statuses for the views (see :class:`StatusKeeper`), off the
        cycle's path; what went wrong with the previous refresh is said first, once."""
        if self._keeper is None:
            self._keeper = StatusKeeper(self.settings, self.status_window, status_budget(self.interval), self.timeout_s)
        self._report_keeper()
        self._keeper.start()

    def _report_keeper(self) -> None:
        problem = self._keeper.take_problem() if self._keeper is not None else None
        if problem:
            self.on_event("warning", f"not keeping the window's statuses for the next hour (the views compute them): {problem}")

    def settle(self, timeout_s: float | None = None) -> float | None:
        """Wait for the statuses of the last written cycle to be kept (at most ``timeout_s``) and report what went
        wrong; the time that refresh took, None when none ran."""
        if self._keeper is None:
            return None
        took = self._keeper.wait(timeout_s)
        self._report_keeper()
        return took

    def _take_lead(self, conn: "psycopg.Connection[Any]") -> bool:
        if not self._leader:
            got = conn.execute("SELECT pg_try_advisory_lock(%s)", (_signed(WRITER_LOCK_KEY),)).fetchone()
            conn.commit()
            if got and got[0]:
                self._leader = True
                self._previous = None  # another collector may have written since
                self.on_event("info", "this collector writes the samples (writer lock taken)")
                self._last_maintenance = float("-inf")
        return self._leader

    def cycle(self) -> CycleResult:
        """Take one sample of every configured group and write it in one transaction; with an exporter, publish
        what the cycle saw (a standby too, from its own snapshot, so either of a pair can be scraped)."""
        import psycopg

        from loomctl.configs import read_configs

        started = time.monotonic()
        result = CycleResult()
        try:
            conn = self._connection()
            leader = self._take_lead(conn)
            result.standby = not leader
            if not leader and self.exporter is None:
                return result
            configs = read_configs(conn)
            conn.commit()
            services = {c.consumer_group_id: c.service_name for c in configs}
            result.groups = len(services)
            snap = self._snapshot(sorted(services)) if services else None
            now = dt.datetime.now(dt.timezone.utc)
            previous = self._previous or {}
            if leader and snap is not None:
                if self._previous is None or any(g not in self._previous_groups for g in services):
                    # after a start, a reconnect or a new service: what the table last knew
                    self._previous = previous_samples(conn, services, now)
                    self._previous_groups = set(services)
                previous = self._previous
                samples: list[LagSample] = []
                with gc_paused():
                    result.written = copy_samples(conn, iter_samples(snap, services, now, previous, into=samples))
                conn.commit()
                self._keep_statuses()
                with gc_paused():
                    self._previous = {
                        (s.consumer_group_id, s.topic_name, s.partition): PreviousSample(
                            s.timestamp, s.committed_offset, s.log_end_offset, s.time_lag_ms
                        )
                        for s in samples
                    }
                del samples
            elif snap is not None:
                previous = previous_samples(conn, services, now)  # the writer's samples, read each cycle
            if self.exporter is not None:
                if leader:
                    # what it serves is judged from the copy being kept (else from the whole window again):
                    # the samples are in already, only the scrape's figures wait
                    self.settle(status_budget(self.interval) + 1)
                self._publish(conn, snap, configs, previous, now, leader=leader, started=started)
            if leader and time.monotonic() - self._last_maintenance >= MAINTENANCE_EVERY.total_seconds():
                self._maintain(conn, now, result)
            return result
        except psycopg.OperationalError as exc:
            self._drop_connection()
            raise BackendUnavailable(f"PostgreSQL: {first_line(exc)}") from None
        except psycopg.Error as exc:
            self._rollback()
            raise LoomError(f"PostgreSQL: {first_line(exc)}") from None
        except BaseException:
            self._rollback()
            raise

    def _publish(
        self,
        conn: "psycopg.Connection[Any]",
        snap: "ClusterSnapshot | None",
        configs: "list[ConsumerConfig]",
        previous: dict[Key, PreviousSample],
        now: dt.datetime,
        *,
        leader: bool,
        started: float,
    ) -> None:
        """Hand the exporter this cycle's figures: the live rows with lag in time carried from the stored
        samples and the window's status, the one `lag status` and the alerts give after this cycle."""
        from loomctl.kafka import ClusterSnapshot
        from loomctl.lag.exporter import ExportSnapshot, GroupInfo, evidence_from
        from loomctl.lag.status import stored_status

        assert self.exporter is not None
        snap = snap or ClusterSnapshot()
        services = {c.consumer_group_id: c.service_name for c in configs}
        window = stored_status(conn, self.status_window, sorted(services)) if services else []
        conn.commit()
        statuses = {(r["consumer_group_id"], r["topic_name"], r["partition"]): r["status"] for r in window}
        rows = live_lag(snap, services, sorted(services), now=now, previous=previous, stored_status=statuses)
        groups = {}
        for config in configs:
            group = snap.groups.get(config.consumer_group_id)
            groups[config.consumer_group_id] = GroupInfo(
                config.consumer_group_id,
                config.service_name,
                config.profile,
                group.group_state if group else "Dead",
                len(group.members) if group else 0,
                group.group_type if group else None,
            )
        self.exporter.publish(
            ExportSnapshot(
                self.exporter.cluster_name,
                now,
                self.status_window,
                self.interval,
                groups,
                rows,
                evidence_from(window),
                snap.brokers,
            ),
            writer=leader,
            duration_s=time.monotonic() - started,
        )

    def _rollback(self) -> None:
        if self._conn is not None and not self._conn.closed:
            try:
                self._conn.rollback()
            except Exception:
                self._drop_connection()

    def _maintain(self, conn: "psycopg.Connection[Any]", now: dt.datetime, result: CycleResult) -> None:
        """Daily partitions ahead, and retention by dropping whole days: hourly, after the cycle's
        samples are committed, in a transaction of its own that waits for locks only briefly."""
        import psycopg

        self._last_maintenance = time.monotonic()  # a failure is retried at the next hour, not every cycle
        try:
            conn.execute("SET LOCAL lock_timeout = '5s'")
            conn.execute("SELECT public.ensure_lag_history_partitions(1, 7)")
            if self.retention is not None:
                row = conn.execute("SELECT * FROM public.drop_lag_history_before(%s)", (now - self.retention,)).fetchone()
                if row:
                    result.retention_dropped, result.retention_deleted = int(row[0]), int(row[1])
            conn.commit()
        except psycopg.OperationalError:
            raise
        except psycopg.Error as exc:
            conn.rollback()
            self.on_event("warning", f"partition upkeep and retention failed, retrying in an hour: {first_line(exc)}")

    def run(self, stop: threading.Event, *, once: bool = False) -> int:
        """Cycle every ``interval`` until ``stop`` is set; returns the number of cycles that wrote.

        A crash of this process (librdkafka's, in the status keeper or the exporter's threads) leaves the Python
        stack of every thread on stderr; one of the snapshot's child is reported as a warning with its stack."""
        from loomctl.kafka import enable_faulthandler

        enable_faulthandler()
        failures = 0
        wrote = 0
        was_standby = False
        while not stop.is_set():
            started = time.monotonic()
            try:
                result = self.cycle()
            except LoomError as exc:
                if self.exporter is not None:
                    self.exporter.failed(str(exc), duration_s=time.monotonic() - started)
                if once or isinstance(exc, BadInput):
                    raise
                failures += 1
                delay = min(max(2.0 ** min(failures - 1, 10), self.interval.total_seconds()), MAX_BACKOFF_S)
                stack = f"\n{exc.stack.rstrip()}" if isinstance(exc, SnapshotCrashed) and exc.stack.strip() else ""
                self.on_event("warning", f"{exc} (attempt {failures}, retrying in {delay:g}s){stack}")
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
                if result.standby:  # nothing was written: say so with the exit code, as for any other failure
                    raise Conflict("another collector holds the writer lock: this one sampled nothing")
                break
            stop.wait(max(self.interval.total_seconds() - (time.monotonic() - started), 0.0))
        return wrote


def _signed(key: int) -> int:
    """PostgreSQL's advisory lock keys are signed 64-bit."""
    return key - (1 << 64) if key >= (1 << 63) else key
