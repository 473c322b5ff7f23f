"""One cluster's sampling in `lag collect`: its snapshot child, its samples written under the collector's shares, and
what it hands the exporter.

Each cluster has a loop of its own (:class:`ClusterLoop`), with its own Kafka client (a child process, see
:mod:`loomctl.lag.snapshot_worker`), its own timeouts and its own database connection for reads, so a cluster that
hangs or is down costs its own cycle, never another cluster's. Its samples are written in a transaction on the
collector's lease connection that holds the shares of those groups from its start to its commit
(:meth:`loomctl.lag.shares.Shares.fenced`): a collector that lost a share (its lease ran out while it hung) writes
nothing of it, so no group is written by two collectors for the same cycle.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loomctl.db import close_quietly
from loomctl.lag.live import gc_paused, live_lag
from loomctl.lag.samples import copy_samples, iter_samples
from loomctl.lag.snapshot_worker import SnapshotCrashed, SnapshotWorker
from loomctl.lag.time_lag import PreviousSamples, previous_samples

if TYPE_CHECKING:
    import psycopg

    from loomctl.configs import ConsumerConfig
    from loomctl.kafka import ClusterSnapshot
    from loomctl.lag.exporter import Exporter, ExportSnapshot
    from loomctl.settings import Settings


@dataclass(frozen=True)
class ClusterWork:
    """What one cluster's loop samples this cycle: the groups of this cluster that this collector owns."""

    cluster_name: str
    settings: "Settings"
    """The cluster's client settings (its brokers and properties file)."""
    configs: "tuple[ConsumerConfig, ...]"
    shards: frozenset[int]
    """The shares those groups hash to: held from the write's start to its commit."""

    @property
    def services(self) -> dict[str, str]:
        return {c.consumer_group_id: c.service_name for c in self.configs}


@dataclass
class ClusterResult:
    cluster_name: str
    written: int = 0
    groups: int = 0


def _only(work: ClusterWork, services: dict[str, str]) -> ClusterWork:
    from dataclasses import replace

    return replace(work, configs=tuple(c for c in work.configs if c.consumer_group_id in services))


Writer = Callable[[frozenset[int]], Any]
"""``writer(shards)``: a context manager giving a connection whose transaction holds ``shards`` until it commits."""


@dataclass
class ClusterLoop:
    """The state one cluster's cycles keep: its snapshot child, the samples it last wrote, its read connection."""

    cluster_name: str
    database_url: str
    timeout_s: float
    status_window: dt.timedelta
    interval: dt.timedelta
    _worker: SnapshotWorker | None = field(default=None, init=False, repr=False)
    _settings: "Settings | None" = field(default=None, init=False, repr=False)
    _conn: "psycopg.Connection[Any] | None" = field(default=None, init=False, repr=False)
    _previous: PreviousSamples | None = field(default=None, init=False, repr=False)
    """What the samples last written (or, after a start, the table) knew of each partition: the next cycle's
    lag in time is carried from it."""
    _previous_groups: set[str] = field(default_factory=set, init=False, repr=False)
    crashes: int = field(default=0, init=False)

    def cycle(
        self,
        work: ClusterWork,
        writer: Writer,
        *,
        exporter: "Exporter | None" = None,
        leader: bool = False,
        after_write: Callable[[], None] = lambda: None,
        still_held: Callable[[frozenset[int]], frozenset[int]] = lambda shards: shards,
    ) -> ClusterResult:
        """Snapshot the work's groups, write their samples under their shares, then (with an exporter) publish them."""
        started = time.monotonic()
        services = work.services
        result = ClusterResult(work.cluster_name, groups=len(services))
        if not services:
            return result
        snap = self._snapshot(work.settings, sorted(services))
        now = dt.datetime.now(dt.timezone.utc)
        conn = self._connection()
        if self._previous is None or any(g not in self._previous_groups for g in services):
            # after a start, a reconnect, a new service or a share taken over: what the table last knew
            self._previous = previous_samples(conn, services, now)
            self._previous_groups = set(services)
            conn.commit()
        previous = self._previous
        held = still_held(work.shards)
        if held != work.shards:  # shares handed over since the plan: only the groups of those still held are written
            from loomctl.lag.shares import shard_of

            services = {g: s for g, s in services.items() if shard_of(work.cluster_name, g) in held}
            result.groups = len(services)
            if not services:
                return result
        written = PreviousSamples()  # the next cycle's previous samples, kept as the COPY streams the rows
        with writer(held) as wconn, gc_paused():
            result.written = copy_samples(
                wconn, iter_samples(snap, services, now, previous, record=written, cluster_name=work.cluster_name)
            )
        after_write()
        self._previous = written
        if exporter is not None:
            published = work if len(services) == len(work.configs) else _only(work, services)
            figures = self._figures(conn, published, snap, previous, now)
            del snap, previous  # the exporter renders while only what it keeps is held
            exporter.publish(figures, writer=leader, duration_s=time.monotonic() - started)
        return result

    def forget(self) -> None:
        """Shares moved: re-read the previous samples at the next cycle (another collector may have written them)."""
        self._previous = None

    def close(self) -> None:
        close_quietly(self._conn)
        self._conn = None
        if self._worker is not None:
            self._worker.close()
            self._worker = None

    def _snapshot(self, settings: "Settings", group_ids: list[str]) -> "ClusterSnapshot":
        if self._worker is not None and settings != self._settings:
            self._worker.close()  # the cluster's brokers or properties changed in the registry
            self._worker = None
        if self._worker is None:
            self._worker, self._settings = SnapshotWorker(settings, self.timeout_s), settings
        try:
            snap: ClusterSnapshot = self._worker.snapshot(group_ids)
            return snap
        except SnapshotCrashed:
            self.crashes += 1
            raise

    def _connection(self) -> "psycopg.Connection[Any]":
        import psycopg

        from loomctl import db

        if self._conn is not None and not self._conn.closed:
            return self._conn
        self._previous = None
        try:
            self._conn = db.open_connection(
                self.database_url, connect_timeout=self.timeout_s, application_name="loomctl lag collect"
            )
        except psycopg.OperationalError as exc:
            raise db.unreachable(self.database_url, exc) from None
        return self._conn

    @contextmanager
    def errors(self) -> Iterator[None]:
        """A database failure of this loop's reads as a LoomError; the connection dropped where it broke."""
        import psycopg

        from loomctl.db import first_line, statement_failure
        from loomctl.errors import BackendUnavailable

        try:
            yield
        except psycopg.OperationalError as exc:
            close_quietly(self._conn)
            self._conn = None
            raise BackendUnavailable(f"PostgreSQL: {first_line(exc)}") from None
        except psycopg.Error as exc:
            self._rollback()
            raise statement_failure(exc, "lag collect") from None
        except BaseException:
            self._rollback()
            raise

    def _rollback(self) -> None:
        if self._conn is not None and not self._conn.closed:
            try:
                self._conn.rollback()
            except Exception:
                close_quietly(self._conn)
                self._conn = None

    def _figures(
        self,
        conn: "psycopg.Connection[Any]",
        work: ClusterWork,
        snap: "ClusterSnapshot",
        previous: PreviousSamples,
        now: dt.datetime,
    ) -> "ExportSnapshot":
        """This cluster's figures for the exporter: the live rows with lag in time carried from the stored samples
        and the window's status, the one `lag status` and the alerts give after this cycle.

        The window's rows are read one at a time, each packed into the evidence's columns with its status (never a
        list of the rows' dicts), and the live rows go straight into the columns of a table (:mod:`loomctl.lag.packed`):
        the exporter keeps the last cycle's while this one's are made."""
        from loomctl.lag.exporter import ExportSnapshot, GroupInfo
        from loomctl.lag.packed import EvidenceTable, PartitionTable
        from loomctl.lag.status import iter_stored_status

        services = work.services
        evidence = EvidenceTable()
        with gc_paused():
            for r in iter_stored_status(conn, self.status_window, sorted(services), shared=True):
                evidence.add_row(r)
        conn.commit()
        rows = PartitionTable()
        live_lag(snap, services, sorted(services), now=now, previous=previous, stored_status=evidence.statuses, into=rows)
        rows.freeze()
        evidence.freeze()
        groups = {}
        for config in work.configs:
            group = snap.groups.get(config.consumer_group_id)
            groups[config.consumer_group_id] = GroupInfo(
                config.consumer_group_id,
                config.service_name,
                config.profile,
                group.group_state if group else "Dead",
                len(group.members) if group else 0,
                group.group_type if group else None,
            )
        return ExportSnapshot(work.cluster_name, now, self.status_window, self.interval, groups, rows, evidence, snap.brokers)
