"""`loomctl lag collect`: sample every configured group of every registered cluster into ``consumer_lag_history``,
like Burrow.

Collectors share the work: each holds a share of the (cluster, group) pairs through PostgreSQL session advisory
locks (:mod:`loomctl.lag.shares`), any number of them split the pairs, and a dead or hung one's share is taken over
within one lease. Each cluster is sampled in a loop of its own (:mod:`loomctl.lag.cluster_loop`): its snapshot in a
child process that owns its Kafka client, its samples written in one transaction that holds their shares, so a
cluster that hangs or is down costs its own cycles only, and a sample is written whole, once, or not at all.

One collector also keeps the house (the holder of a session-level advisory lock, taken over when its connection
goes away): after written cycles the window's statuses for the views (:mod:`loomctl.lag.status_keeper`), and hourly
the day partitions and retention. A broker or database outage costs cycles, never the process: each failure is
reported once per cycle and retried with a growing backoff.

With an :class:`~loomctl.lag.exporter.Exporter` (`--listen`) each cluster's completed cycle is handed to it, and
the HTTP server (a thread of this process, see ``lag.http``) serves that from memory: a scrape never waits on a
cycle, Kafka or PostgreSQL, and a failed cycle leaves the last good figures with the health saying so. A collector
serves the groups it samples, so Prometheus scraping every collector sees each series once.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loomctl import db
from loomctl.db import close_quietly, first_line, statement_failure
from loomctl.errors import BackendUnavailable, BadInput, Conflict, LoomError
from loomctl.lag.cluster_loop import ClusterLoop, ClusterResult, ClusterWork
from loomctl.lag.snapshot_worker import SnapshotCrashed
from loomctl.lag.status_keeper import StatusKeeper, status_budget
from loomctl.lag.verdicts import STATUS_WINDOW
from loomctl.settings import Settings

if TYPE_CHECKING:
    import psycopg

    from loomctl.lag.exporter import Exporter
    from loomctl.lag.shares import Shares

# pg_try_advisory_lock key of the collector that keeps the house: statuses, day partitions, retention ("loomlagc")
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
    """Every configured group is another collector's this cycle: this one sampled nothing."""
    retention_dropped: int = 0
    retention_deleted: int = 0
    clusters: dict[str, ClusterResult] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    """Cluster name -> what went wrong with its cycle (the others' went on)."""


@dataclass
class Plan:
    """One coordination step: the clusters this collector samples now, the groups of each it owns."""

    work: dict[str, ClusterWork]
    configured: int
    """Configured groups of the clusters watched (this collector's and the others')."""
    unusable: dict[str, str]
    """Clusters whose settings cannot work here (an unset properties variable), with why."""


@dataclass
class Collector:
    settings: Settings
    interval: dt.timedelta
    retention: dt.timedelta | None = dt.timedelta(days=7)
    on_event: Event = _silent
    timeout_s: float = 10.0
    exporter: "Exporter | None" = None
    """Set when the collector serves what it saw (`--listen`)."""
    status_window: dt.timedelta = STATUS_WINDOW
    cluster: str | None = None
    """Sample this registered cluster only (`--cluster`); None: every one."""
    _conn: "psycopg.Connection[Any] | None" = field(default=None, init=False, repr=False)
    _shares: "Shares | None" = field(default=None, init=False, repr=False)
    _owned: frozenset[int] | None = field(default=None, init=False, repr=False)
    _loops: dict[str, ClusterLoop] = field(default_factory=dict, init=False, repr=False)
    _leader: bool = field(default=False, init=False)
    _last_maintenance: float = field(default=float("-inf"), init=False)
    _keeper: "StatusKeeper | None" = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    """Serializes the lease connection (shares, fenced writes) and the status keeper between cluster loops."""
    _warned: dict[str, str] = field(default_factory=dict, init=False, repr=False)

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
        cluster: str | None = None,
    ) -> "Collector":
        """The collector of `lag collect`: its Kafka requests time out after one interval (2 s at least, 10 s
        at most), and settings that cannot work fail here rather than being retried every cycle."""
        settings.require_database_url()
        if settings.kafka_config is not None or settings.bootstrap_servers is not None:
            settings.kafka_properties()  # the default cluster's, when given: refused now rather than every cycle
        if cluster is not None:
            from loomctl.clusters import check_cluster_name

            check_cluster_name(cluster)
        return cls(
            settings,
            interval,
            retention,
            on_event=on_event,
            timeout_s=min(10.0, max(2.0, interval.total_seconds())),
            exporter=exporter,
            status_window=status_window,
            cluster=cluster,
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
        cluster: str | None = None,
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
        return cls.for_interval(
            settings, every, keep, on_event=on_event, exporter=exporter, status_window=status_window, cluster=cluster
        )

    @property
    def snapshot_crashes(self) -> int:
        """Times a snapshot's child process died (a librdkafka abort or a crash) since start, over every cluster."""
        return sum(loop.crashes for loop in self._loops.values())

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
        for loop in self._loops.values():
            loop.close()
        self._loops.clear()
        if self._shares is not None:
            self._shares.close()  # every share free for the others at once
            self._shares = None

    # -- the house: statuses for the views, day partitions, retention (one collector) --------------------------

    def _keep_statuses(self) -> None:
        """After a written cycle (the house keeper's): keep the window's statuses for the views, off the cycle's
        path; what went wrong with the previous refresh is said first, once."""
        if not self._leader:
            return
        with self._lock:
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
                self.on_event("info", "this collector keeps the statuses, day partitions and retention (house lock taken)")
                self._last_maintenance = float("-inf")
        return self._leader

    # -- the shares --------------------------------------------------------------------------------------------

    def _refresh_shares(self) -> frozenset[int]:
        from loomctl.lag.shares import SHARDS, Shares, lease_for

        with self._lock:
            if self._shares is None:
                self._shares = Shares(self.settings.require_database_url(), lease=lease_for(self.interval))
            try:
                owned = self._shares.refresh()
            except LoomError:
                self._owned = frozenset()
                raise
            members = self._shares.members()
        if owned != self._owned:
            if self._owned is not None and owned - self._owned:
                for loop in self._loops.values():
                    loop.forget()  # shares taken over: what the table knows of them may be another collector's
            self.on_event(
                "info", f"this collector samples {len(owned)} of {SHARDS} shares of the groups ({members} collector(s))"
            )
            self._owned = owned
        return owned

    def _still_held(self, shards: frozenset[int]) -> frozenset[int]:
        with self._lock:
            return shards & (self._shares.owned if self._shares is not None else frozenset())

    def _fenced(self, shards: frozenset[int]) -> Any:
        """A transaction on the lease connection holding ``shards`` (one cluster's write at a time)."""
        from contextlib import contextmanager

        @contextmanager
        def fenced() -> Any:
            assert self._shares is not None  # planned before any write
            with self._lock, self._shares.fenced(shards) as conn:
                yield conn

        return fenced()

    # -- one cycle ---------------------------------------------------------------------------------------------

    def plan(self) -> Plan:
        """Who samples what now: the house lock tried, the shares refreshed, the configs and the clusters read."""
        import psycopg

        from loomctl.clusters import read_clusters, settings_for
        from loomctl.configs import read_configs

        try:
            conn = self._connection()
            self._take_lead(conn)
            configs = read_configs(conn)
            clusters = {c.cluster_name: c for c in read_clusters(conn, [self.cluster] if self.cluster else [])}
            conn.commit()
        except psycopg.OperationalError as exc:
            self._drop_connection()
            raise BackendUnavailable(f"PostgreSQL: {first_line(exc)}") from None
        except psycopg.Error as exc:
            self._rollback()
            raise statement_failure(exc, "lag collect") from None
        self._check_exported_names(clusters)
        self._refresh_shares()
        assert self._shares is not None
        mine: dict[str, list[Any]] = {name: [] for name in clusters}
        configured = 0
        for config in configs:
            if config.cluster_name not in clusters:
                continue
            configured += 1
            if self._shares.owns(config.cluster_name, config.consumer_group_id):
                mine[config.cluster_name].append(config)
        work: dict[str, ClusterWork] = {}
        unusable: dict[str, str] = {}
        for name, owned in mine.items():
            try:
                settings = settings_for(clusters[name], self.settings)
            except LoomError as exc:
                unusable[name] = str(exc)
                continue
            pairs = [(name, c.consumer_group_id) for c in owned]
            work[name] = ClusterWork(name, settings, tuple(owned), self._shares.shards_of(pairs))
        return Plan(work, configured, unusable)

    def _check_exported_names(self, clusters: Any) -> None:
        """Two clusters must not be served under one name: `--cluster-name` renames the default cluster only."""
        if self.exporter is None:
            return
        shown: dict[str, str] = {}
        for name in sorted(clusters):
            other = shown.setdefault(self.exporter.exported_name(name), name)
            if other != name:
                raise BadInput(
                    f"--cluster-name {self.exporter.exported_name(name)}: the registered cluster {name if other == 'default' else other}"
                    " has that name; the default cluster needs another (or none: it is then served as default)"
                )

    def _loop(self, name: str) -> ClusterLoop:
        loop = self._loops.get(name)
        if loop is None:
            loop = self._loops[name] = ClusterLoop(
                name, self.settings.require_database_url(), self.timeout_s, self.status_window, self.interval
            )
        return loop

    def sample(self, work: ClusterWork) -> ClusterResult:
        """One cluster's cycle (its own loop's): snapshot, fenced write, statuses kept, figures published."""
        loop = self._loop(work.cluster_name)
        started = time.monotonic()
        try:
            with loop.errors():
                return loop.cycle(
                    work,
                    self._fenced,
                    exporter=self.exporter,
                    leader=self._leader,
                    after_write=self._after_write,
                    still_held=self._still_held,
                )
        except LoomError as exc:
            if isinstance(exc, SnapshotCrashed) and self.exporter is not None:
                self.exporter.snapshot_crashed()
            if self.exporter is not None:
                self.exporter.failed(str(exc), duration_s=time.monotonic() - started, cluster=work.cluster_name)
            raise

    def _after_write(self) -> None:
        self._keep_statuses()
        if self._leader and self.exporter is not None:
            # what it serves is judged from the copy being kept (else from the whole window again)
            self.settle(status_budget(self.interval) + 1)

    def cycle(self) -> CycleResult:
        """One cycle over every cluster at once (`--once`, and the tests): plan, then each cluster's loop; a cluster
        that fails is reported in ``failed`` while the others are written, and only when every one fails (or the
        database does) does the cycle raise."""
        plan = self.plan()
        result = CycleResult(groups=sum(len(w.configs) for w in plan.work.values()))
        result.failed.update(plan.unusable)
        result.standby = plan.configured > 0 and result.groups == 0
        busy = [w for w in plan.work.values() if w.configs]
        errors: list[LoomError] = []
        if busy:
            with ThreadPoolExecutor(max_workers=len(busy), thread_name_prefix="loomctl-cluster") as pool:
                futures = {w.cluster_name: pool.submit(self.sample, w) for w in busy}
                for name, future in futures.items():
                    try:
                        done = future.result()
                    except LoomError as exc:
                        errors.append(exc)
                        result.failed[name] = str(exc)
                        continue
                    result.clusters[name] = done
                    result.written += done.written
        if errors and len(errors) == len(busy):
            raise errors[0]
        self._retire_idle(plan)
        self._maintain_if_due(result)
        return result

    def _retire_idle(self, plan: Plan) -> None:
        for name in list(self._loops):
            if name not in plan.work or not plan.work[name].configs:
                self._loops.pop(name).close()
                if self.exporter is not None:
                    self.exporter.retire(name)

    def _rollback(self) -> None:
        if self._conn is not None and not self._conn.closed:
            try:
                self._conn.rollback()
            except Exception:
                self._drop_connection()

    def _maintain_if_due(self, result: CycleResult) -> None:
        if self._leader and time.monotonic() - self._last_maintenance >= MAINTENANCE_EVERY.total_seconds():
            try:
                self._maintain(self._connection(), dt.datetime.now(dt.timezone.utc), result)
            except Exception as exc:  # the database went away: the next plan says so
                self._drop_connection()
                self.on_event("warning", f"partition upkeep and retention failed, retrying in an hour: {first_line(exc)}")

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
            self.on_event(
                "warning", f"partition upkeep and retention failed, retrying in an hour: {statement_failure(exc, 'lag collect')}"
            )

    # -- running -----------------------------------------------------------------------------------------------

    def run(self, stop: threading.Event, *, once: bool = False) -> int:
        """Until ``stop`` is set: every ``interval`` a plan, and each cluster sampled in a thread of its own on its
        own schedule, so a cluster that hangs or is down never delays another's cycles; returns the number of
        cluster cycles that wrote. ``once``: one :meth:`cycle`, its failure raised.

        A crash of this process (librdkafka's, in the status keeper or the exporter's threads) leaves the Python
        stack of every thread on stderr; one of a snapshot's child is reported as a warning with its stack."""
        from loomctl.kafka import enable_faulthandler

        enable_faulthandler()
        if once:
            result = self.cycle()
            self._report(result)
            if result.standby:  # nothing was sampled: say so with the exit code, as for any other failure
                raise Conflict("other collectors hold the shares of every configured group: this one sampled nothing")
            if result.failed and not result.written:
                raise BackendUnavailable(
                    next(iter(result.failed.values()))
                    if len(result.failed) == 1
                    else "; ".join(f"{name}: {why}" for name, why in result.failed.items())
                )
            return 1 if result.written else 0
        return _Running(self, stop).run()

    def _report(self, result: CycleResult) -> None:
        for name, why in result.failed.items():
            self.on_event("warning", f"cluster {name}: {why}" if len(result.failed) + len(result.clusters) > 1 else why)
        if result.written:
            self.on_event("debug", f"wrote {result.written} samples of {result.groups} groups")
        if result.retention_dropped or result.retention_deleted:
            self.on_event(
                "info",
                f"retention: dropped {result.retention_dropped} day partitions, deleted {result.retention_deleted} rows",
            )


class _Running:
    """`lag collect` without --once: the coordinator (this thread) plans every interval; each cluster with groups
    of this collector's runs in a thread of its own, reading the latest plan, until the cluster has none."""

    def __init__(self, collector: Collector, stop: threading.Event) -> None:
        self.collector = collector
        self.stop = stop
        self.plan: Plan | None = None
        self.threads: dict[str, threading.Thread] = {}
        self.wakes: dict[str, threading.Event] = {}
        """Set when a cluster's loop should start a cycle now: it gained groups (shares taken over), or stop."""
        self.wrote = 0
        self.lock = threading.Lock()

    def run(self) -> int:
        c = self.collector
        failures = 0
        was_standby = False
        try:
            while not self.stop.is_set():
                started = time.monotonic()
                try:
                    plan = c.plan()
                except LoomError as exc:
                    if c.exporter is not None:
                        c.exporter.failed(str(exc), duration_s=time.monotonic() - started)
                    if isinstance(exc, BadInput):
                        raise
                    failures += 1
                    delay = min(max(2.0 ** min(failures - 1, 10), c.interval.total_seconds()), MAX_BACKOFF_S)
                    c.on_event("warning", f"{exc} (attempt {failures}, retrying in {delay:g}s)")
                    self.stop.wait(delay)
                    continue
                if failures:
                    c.on_event("info", f"recovered after {failures} failed attempt{'s' if failures != 1 else ''}")
                failures = 0
                for name, why in plan.unusable.items():
                    if c._warned.get(name) != why:
                        c.on_event("warning", f"cluster {name}: {why}")
                        c._warned[name] = why
                standby = plan.configured > 0 and not any(w.configs for w in plan.work.values())
                if standby and c.exporter is not None:
                    c.exporter.standing_by(writer=c._leader, duration_s=time.monotonic() - started)
                if standby and not was_standby:
                    c.on_event("info", "other collectors hold the shares of every configured group; standing by")
                was_standby = standby
                with self.lock:
                    before, self.plan = self.plan, plan
                self._wake_gainers(before, plan)
                self._start_threads(plan)
                result = CycleResult()
                c._maintain_if_due(result)
                c._report(result)
                self.stop.wait(max(c.interval.total_seconds() - (time.monotonic() - started), 0.0))
        finally:
            self.stop.set()
            for wake in self.wakes.values():
                wake.set()
            for thread in self.threads.values():
                thread.join(timeout=c.timeout_s * 3 + 5)
        return self.wrote

    def _wake_gainers(self, before: Plan | None, plan: Plan) -> None:
        """A cluster whose loop gained groups samples them now, not at its next tick: a share taken over from a dead
        collector is sampled within one interval of the lease running out, whatever the two loops' phases."""
        for name, work in plan.work.items():
            had = {c.consumer_group_id for c in before.work[name].configs} if before and name in before.work else set()
            if any(c.consumer_group_id not in had for c in work.configs) and name in self.wakes:
                self.wakes[name].set()

    def _start_threads(self, plan: Plan) -> None:
        for name, work in plan.work.items():
            thread = self.threads.get(name)
            if work.configs and (thread is None or not thread.is_alive()):
                self.wakes[name] = threading.Event()
                thread = threading.Thread(target=self._cluster, args=(name,), name=f"loomctl-cluster-{name}", daemon=True)
                self.threads[name] = thread
                thread.start()

    def _about(self, name: str) -> str:
        """What a cluster's message starts with: its name, where this collector samples more than one."""
        with self.lock:
            several = self.plan is not None and len(self.plan.work) > 1
        return f"cluster {name}: " if several else ""

    def _work(self, name: str) -> ClusterWork | None:
        with self.lock:
            work = self.plan.work.get(name) if self.plan is not None else None
        return work if work is not None and work.configs else None

    def _cluster(self, name: str) -> None:
        c = self.collector
        failures = 0
        while not self.stop.is_set():
            work = self._work(name)
            if work is None:
                loop = c._loops.pop(name, None)
                if loop is not None:
                    loop.close()
                if c.exporter is not None:
                    c.exporter.retire(name)
                return
            started = time.monotonic()
            try:
                done = c.sample(work)
            except LoomError as exc:
                failures += 1
                delay = min(max(2.0 ** min(failures - 1, 10), c.interval.total_seconds()), MAX_BACKOFF_S)
                stack = f"\n{exc.stack.rstrip()}" if isinstance(exc, SnapshotCrashed) and exc.stack.strip() else ""
                c.on_event("warning", f"{self._about(name)}{exc} (attempt {failures}, retrying in {delay:g}s){stack}")
                self._pause(name, delay)
                continue
            except Exception as exc:  # a bug must not end the cluster's sampling silently
                failures += 1
                c.on_event("warning", f"{self._about(name)}unexpected {type(exc).__name__}: {exc}")
                self._pause(name, MAX_BACKOFF_S)
                continue
            if failures:
                c.on_event("info", f"{self._about(name)}recovered after {failures} failed attempt{'s' if failures != 1 else ''}")
            failures = 0
            if done.written:
                with self.lock:
                    self.wrote += 1
                c.on_event("debug", f"{self._about(name)}wrote {done.written} samples of {done.groups} groups")
            self._pause(name, max(c.interval.total_seconds() - (time.monotonic() - started), 0.0))

    def _pause(self, name: str, seconds: float) -> None:
        """Until the cluster's next cycle: the rest of the interval, or less when it gains groups or the run stops."""
        wake = self.wakes[name]
        wake.wait(seconds)
        wake.clear()


def _signed(key: int) -> int:
    """PostgreSQL's advisory lock keys are signed 64-bit."""
    return key - (1 << 64) if key >= (1 << 63) else key
