"""`loomctl lag collect`: sample every configured group into ``consumer_lag_history``, like Burrow.

One cycle = one cluster snapshot, then one transaction that COPYs every sample of it, so a
sample is written whole or not at all. The snapshot is taken in a child process that owns the
Kafka client: librdkafka aborts the whole process when a broker connection drops in the middle of
a group-coordinator admin request (confluentinc/librdkafka#4605, unfixed in 2.16), and a
collector must outlive any broker restart, so only the child dies and is started again. Only the collector holding a session-level advisory
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loomctl import db
from loomctl.db import first_line
from loomctl.errors import BackendUnavailable, BadInput, LoomError
from loomctl.lag.live import gc_paused, live_lag, partitions_of
from loomctl.lag.samples import LagSample, copy_samples
from loomctl.lag.time_lag import Key, PreviousSample, carry_time_lag_ms, previous_samples
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
STATUS_WINDOW = dt.timedelta(minutes=15)
"""The window behind the statuses the exporter serves: `lag show` and `lag status` judge over the same by default."""

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

    @classmethod
    def for_interval(
        cls, settings: Settings, interval: dt.timedelta, retention: dt.timedelta | None, *, on_event: Event = _silent,
        exporter: "Exporter | None" = None, status_window: dt.timedelta = STATUS_WINDOW,
    ) -> "Collector":
        """The collector of `lag collect`: its Kafka requests time out after one interval (2 s at least, 10 s
        at most), and settings that cannot work fail here rather than being retried every cycle."""
        settings.require_database_url()
        settings.kafka_properties()
        return cls(settings, interval, retention, on_event=on_event, timeout_s=min(10.0, max(2.0, interval.total_seconds())),
                   exporter=exporter, status_window=status_window)

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
        _close_quietly(self._conn)
        self._conn = None
        self._leader = False

    def _snapshot(self, group_ids: list[str]) -> Any:
        if self._worker is None:
            self._worker = SnapshotWorker(self.settings, self.timeout_s)
        return self._worker.snapshot(group_ids)

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
            self._keeper = StatusKeeper(self.settings, self.status_window, _status_budget(self.interval), self.timeout_s)
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
                        (s.consumer_group_id, s.topic_name, s.partition):
                            PreviousSample(s.timestamp, s.committed_offset, s.log_end_offset, s.time_lag_ms)
                        for s in samples
                    }
                del samples
            elif snap is not None:
                previous = previous_samples(conn, services, now)  # the writer's samples, read each cycle
            if self.exporter is not None:
                if leader:
                    # what it serves is judged from the copy being kept (else from the whole window again):
                    # the samples are in already, only the scrape's figures wait
                    self.settle(_status_budget(self.interval) + 1)
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
                config.consumer_group_id, config.service_name, config.profile,
                group.state if group else "Dead", len(group.members) if group else 0, group.group_type if group else None,
            )
        self.exporter.publish(
            ExportSnapshot(self.exporter.cluster_name, now, self.status_window, self.interval, groups, rows, evidence_from(window),
                           snap.brokers),
            writer=leader, duration_s=time.monotonic() - started,
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
        """Cycle every ``interval`` until ``stop`` is set; returns the number of cycles that wrote."""
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


class SnapshotWorker:
    """A child process that keeps one AdminClient and answers snapshot requests over a pipe.

    If the child dies (a librdkafka abort) or does not answer in time, it is killed, the cycle
    fails with a one-line BackendUnavailable, and the next request starts a fresh child.
    """

    def __init__(self, settings: Settings, timeout_s: float) -> None:
        self.settings = settings
        self.timeout_s = timeout_s
        self._process: Any = None
        self._pipe: Any = None

    def _start(self) -> None:
        import multiprocessing

        # spawn, not fork: a fresh interpreter, with no inherited threads or sockets
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        self._process = context.Process(
            target=_worker_main, args=(child, self.settings, self.timeout_s), name="loomctl-kafka-snapshot", daemon=True
        )
        self._process.start()
        child.close()
        self._pipe = parent

    def snapshot(self, group_ids: list[str]) -> Any:
        if self._process is None or not self._process.is_alive():
            self._start()
        limit = 3 * (self.timeout_s + 5) + 10  # describe, offsets and list_offsets, each with its own timeout
        try:
            self._pipe.send(group_ids)
            if not self._pipe.poll(limit):
                self.close()
                raise BackendUnavailable(f"Kafka did not answer a snapshot within {limit:g} s")
            kind, payload = self._pipe.recv()
        except (EOFError, BrokenPipeError, ConnectionResetError, OSError):
            code = self._process.exitcode if self._process is not None else None
            self.close()
            raise BackendUnavailable(f"the Kafka client stopped mid-request (exit {code}); starting a new one") from None
        if kind == "ok":
            return payload
        error_class, message = payload
        raise (BadInput if error_class == "BadInput" else BackendUnavailable)(message)

    def close(self) -> None:
        if self._pipe is not None:
            try:
                self._pipe.send(None)
            except (OSError, ValueError):
                pass
            self._pipe.close()
            self._pipe = None
        if self._process is not None:
            self._process.join(timeout=2)
            if self._process.is_alive():
                self._process.kill()
                self._process.join(timeout=5)
            self._process = None


def _worker_main(pipe: Any, settings: Settings, timeout_s: float) -> None:
    import os
    import signal

    from loomctl import kafka

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the parent, which then closes us
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)  # librdkafka's abort message; the parent reports the failure in one line
    admin = None
    while True:
        try:
            group_ids = pipe.recv()
        except (EOFError, OSError):
            return
        if group_ids is None:
            return
        try:
            if admin is None:
                admin = kafka.admin_client(settings, timeout=timeout_s)
            pipe.send(("ok", kafka.snapshot(admin, group_ids, timeout=timeout_s)))
        except LoomError as exc:
            pipe.send(("error", (type(exc).__name__, str(exc))))
        except Exception as exc:  # a bug or an unwrapped client error: say what, rather than dying silently
            pipe.send(("error", ("LoomError", f"{type(exc).__name__}: {exc}")))


def samples_from(
    snap: Any, services: dict[str, str], now: dt.datetime, previous: dict[Key, PreviousSample] | None = None,
) -> list[LagSample]:
    """The history rows of one snapshot: every partition with a known log end, unknown lag kept as NULL, lag
    in time carried forward from ``previous`` (the partition's last stored sample)."""
    samples: list[LagSample] = []
    with gc_paused():
        for _ in iter_samples(snap, services, now, previous, into=samples):
            pass
    return samples


def iter_samples(
    snap: Any, services: dict[str, str], now: dt.datetime, previous: dict[Key, PreviousSample] | None, *,
    into: list[LagSample],
) -> Iterator[LagSample]:
    """:func:`samples_from` one at a time, each also appended to ``into``: the cycle's COPY writes them as they
    are built, so PostgreSQL ingests the first groups while the last are built (two processes working at
    once, rather than one after the other).

    The figures are those of :func:`~loomctl.lag.live.live_lag` for the same snapshot (the partitions of
    ``partitions_of``, the lag of ``partition_lag``, the lag in time of ``carry_time_lag_ms``), built
    straight into the history's tuples: this runs once per partition of every configured group, and
    tests/lag/test_live_rows.py holds it to those functions and to live_lag's rows.
    """
    from loomctl.kafka import Group

    offsets = snap.offsets
    counts = snap.partition_counts
    previous = previous or {}
    keep = into.append
    new = tuple.__new__
    for group_id in sorted(services):
        group = snap.groups.get(group_id) or Group(group_id, "Dead")
        committed = snap.committed.get(group_id) or {}
        service = services[group_id] or group_id
        state, group_type, members = group.state, group.group_type, len(group.members)
        for topic, partitions in partitions_of(committed, group.owner_of(), counts):
            for partition in partitions:
                log = offsets.get((topic, partition))
                if log is None:
                    continue  # no log end known: nothing to store
                offset = committed.get((topic, partition))
                end = log.end
                if offset is None:
                    lag = time_lag = None
                elif offset >= end:
                    lag = time_lag = 0
                else:
                    lag = end - offset
                    before = previous.get((group_id, topic, partition))
                    time_lag = carry_time_lag_ms(before, now, offset, end) if before is not None else None
                sample = new(LagSample, (group_id, topic, partition, now, service, offset, end, log.start, lag, time_lag,
                                         state, members, group_type))
                keep(sample)
                yield sample


def _close_quietly(conn: "psycopg.Connection[Any] | None") -> None:
    if conn is not None:
        try:
            conn.close()
        except Exception:  # already broken; closing is best effort
            pass


def _signed(key: int) -> int:
    """PostgreSQL's advisory lock keys are signed 64-bit."""
    return key - (1 << 64) if key >= (1 << 63) else key


STATUS_BUDGET_SHARE = 0.2
"""The share of the interval that keeping the window's statuses may take."""


def _status_budget(interval: dt.timedelta) -> float:
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
        _close_quietly(self._conn)
        self._conn = None

    def _connection(self) -> "psycopg.Connection[Any]":
        if self._conn is None or self._conn.closed:
            self._conn = db.open_connection(self.settings.require_database_url(), connect_timeout=self.timeout_s,
                                            application_name="loomctl lag collect (statuses)")
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
            _close_quietly(self._conn)
            self._conn = None
        except psycopg.Error as exc:
            problem = first_line(exc)
        except Exception as exc:  # a bug: say what, rather than losing it with the thread
            problem = f"{type(exc).__name__}: {exc}"
        if problem:
            self._paused_until = time.monotonic() + MAINTENANCE_EVERY.total_seconds()
            with self._lock:
                self._problem = problem
