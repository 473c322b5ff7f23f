"""Collectors share the (cluster, consumer group) pairs through PostgreSQL session advisory locks (issue 23).

The pairs are hashed into :data:`SHARDS` shards (:func:`shard_of`, BLAKE2b: the same on every machine and run). A
collector owns a shard while its *lease connection* holds ``pg_advisory_lock(SHARD_NAMESPACE, shard)``; it is a member
while that connection also holds ``(MEMBER_NAMESPACE, its backend pid)``, so every member counts the others in
``pg_locks`` and nobody coordinates. Locks of these two-int4 namespaces never meet the collector's single-bigint
writer lock (``pg_locks.objsubid`` is 2 for them, 1 for a bigint key).

Balance. Each :meth:`Shares.refresh` reads the members and the shard locks in one query and sets this member's
target: ``shards // members``, plus one for the first ``shards % members`` members by pid. The targets add up to
exactly the number of shards, so there is no oscillation (nobody takes a shard that another member's target needs
and gives it back later), and the counts end within one of each other. A member above its target releases the
excess, one below it takes free shards, preferring the arc of shards that starts at ``rank * shards / members``
(where the member before it in pid order gives up its own excess): members that refresh at the same moment seldom
try the same shards, and a newcomer's shards are the ones the others let go. Everyone reads the same ``pg_locks``,
so members disagree on the count only between a join or a death and their next refresh; the whole set then settles
within two refreshes of every member. One member owns every shard at its first refresh.

Lease. The lease connection ends on the server when it stays idle for the lease (``idle_session_timeout``; idle in
a transaction: ``idle_in_transaction_session_timeout``; one statement: ``statement_timeout``), and on TCP failures
(keepalives and ``tcp_user_timeout`` both ways), which releases every lock it held. So a collector that dies loses
its shards at once (its socket closes), one that hangs (SIGSTOP) or whose host vanishes within one lease; the
survivors take them at their next refresh. The collector touches the connection once a cycle (the refresh), hence
lease > interval: :func:`lease_for`.

Fencing. The locks hold exactly as long as the session, so a transaction *on the lease connection* that finds the
shards held when it starts keeps them until it commits: if the session ends first (lease, kill, network) the
transaction dies with it and nothing is written. :meth:`Shares.fenced` is that transaction; writing the samples in it
fences the write itself. :meth:`Shares.still_holds` is the weaker check for a write on another connection (a lease
can still expire between the check and that commit).

The lease connection must reach PostgreSQL directly (or through a session-mode pooler): a transaction-mode pooler
does not keep session advisory locks. Every collector of a database must use the same number of shards.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loomctl import db
from loomctl.errors import Conflict, LoomError

if TYPE_CHECKING:
    import psycopg

SHARDS = 256
"""Shards of the (cluster, group) pairs: many more than collectors, so the shares stay even."""
SHARD_NAMESPACE = 0x6C616773
"""First key of a shard's lock (``pg_locks.classid``): "lags". Below 2**31, so the int4 and the oid agree."""
MEMBER_NAMESPACE = 0x6C61676D
"""First key of a member's lock ("lagm"); the second is its backend pid."""
MIN_LEASE = dt.timedelta(seconds=10)
APPLICATION_NAME = "loomctl lag collect"

_STATE_SQL = """
SELECT l.classid::int8, l.objid::int8, l.pid
FROM pg_catalog.pg_locks l
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
  AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database())
  AND l.classid IN (%(shard)s::int8::oid, %(member)s::int8::oid)
"""
_HOLDS_SQL = """
SELECT count(*)
FROM pg_catalog.pg_locks l
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 AND l.pid = pg_catalog.pg_backend_pid()
  AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database())
  AND l.classid = %(shard)s::int8::oid AND l.objid::int8 = ANY(%(wanted)s::int8[])
"""
_REPORT_SQL = f"""
WITH l AS ({_STATE_SQL})
SELECT h.pid, a.application_name, host(a.client_addr), a.backend_start,
       bool_or(h.classid = %(member)s) AS member,
       count(*) FILTER (WHERE h.classid = %(shard)s AND h.objid < %(shards)s) AS shards
FROM l AS h (classid, objid, pid)
LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = h.pid
GROUP BY h.pid, a.application_name, a.client_addr, a.backend_start
ORDER BY h.pid
"""


def shard_of(cluster_name: str, group_id: str, shards: int = SHARDS) -> int:
    """The shard of a (cluster, consumer group) pair: BLAKE2b with an 8-byte digest of ``cluster NUL group`` (UTF-8),
    read big-endian, modulo ``shards``. Stable across processes, machines and Python versions (unlike ``hash()``)."""
    digest = hashlib.blake2b(f"{cluster_name}\0{group_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % shards


def lease_for(interval: dt.timedelta) -> dt.timedelta:
    """The lease for a collector that refreshes every ``interval``: three intervals, 10 s at least, so a slow cycle
    or two never costs the shards but a hung collector loses them soon."""
    return max(3 * interval, MIN_LEASE)


class SharesLost(Conflict):
    """The lease connection no longer holds shards this collector was about to write for; nothing was written."""


@dataclass(frozen=True)
class CollectorShare:
    """One session holding locks of the shares: a collector's lease connection."""

    pid: int
    application_name: str | None
    client_addr: str | None
    """None over a Unix socket, or when this role may not see the session's details."""
    backend_start: dt.datetime | None
    member: bool
    """False only for a session holding shards without its member lock (not one of :class:`Shares`)."""
    shards: int


@dataclass(frozen=True)
class SharesReport:
    shards: int
    collectors: list[CollectorShare]

    @property
    def owned(self) -> int:
        return sum(c.shards for c in self.collectors)

    @property
    def unowned(self) -> int:
        """Shards nobody holds now: their groups are not sampled until a collector takes them."""
        return self.shards - self.owned


def shares_report(conn: "psycopg.Connection[Any]", shards: int = SHARDS) -> SharesReport:
    """Which collector owns how many shards, from ``pg_locks`` and ``pg_stat_activity`` (the database of ``conn``);
    a read only, any connection will do. Application name, address and start are None where this role cannot see
    another role's sessions."""
    rows = conn.execute(_REPORT_SQL, {"shard": SHARD_NAMESPACE, "member": MEMBER_NAMESPACE, "shards": shards}).fetchall()
    return SharesReport(
        shards,
        [CollectorShare(int(pid), app, addr, start, bool(member), int(count)) for pid, app, addr, start, member, count in rows],
    )


def _targets(members: list[int], shards: int) -> dict[int, int]:
    """Each member's share: the floor, plus one for the first ``shards % n`` members by pid (they add up to ``shards``)."""
    base, extra = divmod(shards, len(members))
    return {pid: base + (1 if rank < extra else 0) for rank, pid in enumerate(sorted(members))}


def _preference(rank: int, members: int, shards: int) -> list[int]:
    """The shards in the order a member of ``rank`` wants them: its arc first, so members seldom race for one."""
    start = rank * shards // members
    return [(start + i) % shards for i in range(shards)]


class Shares:
    """This collector's share of the (cluster, group) pairs, held on a lease connection of its own.

    Call :meth:`refresh` once a cycle, before sampling, and sample the pairs :meth:`owns` says are this collector's;
    write them in :meth:`fenced`. Not thread-safe: one collector loop uses it.
    """

    def __init__(
        self,
        database_url: str,
        *,
        lease: dt.timedelta,
        shards: int = SHARDS,
        application_name: str = APPLICATION_NAME,
        connect_timeout: float = db.CONNECT_TIMEOUT_S,
    ) -> None:
        if shards < 1 or shards >= 1 << 31:
            raise ValueError(f"shards must be from 1 to 2**31 - 1, not {shards}")
        if lease < dt.timedelta(milliseconds=1):
            raise ValueError(f"the lease must be 1 ms or more, not {lease}")
        self.database_url = database_url
        self.lease = lease
        self.shards = shards
        self.application_name = application_name
        self.connect_timeout = connect_timeout
        self._conn: "psycopg.Connection[Any] | None" = None
        self._pid: int | None = None
        self._owned: frozenset[int] = frozenset()
        self._members = 0
        self.lost: frozenset[int] = frozenset()
        """As of the last refresh that succeeded: shards owned after the one before it that this collector did not
        give up itself but lost with its lease session (another collector may have sampled and written them since)."""
        self.sessions = 0
        """Lease sessions opened so far: more than one means the lease was lost and taken again."""
        self._dropped: frozenset[int] = frozenset()  # lost with a session since the last refresh

    # -- what the collector asks ------------------------------------------------------------------------------------

    @property
    def owned(self) -> frozenset[int]:
        """The shards owned at the last refresh (empty before the first, after a loss and after close)."""
        return self._owned

    @property
    def pid(self) -> int | None:
        """The backend pid of the lease session (the member's key), None while there is none."""
        return self._pid

    def members(self) -> int:
        """The members counted at the last refresh, this one included (0 before it)."""
        return self._members

    def owns(self, cluster_name: str, group_id: str) -> bool:
        """Whether this collector samples that group, as of the last refresh."""
        return shard_of(cluster_name, group_id, self.shards) in self._owned

    def shards_of(self, pairs: Iterable[tuple[str, str]]) -> frozenset[int]:
        """The shards of (cluster, group) pairs: what a write of their samples must hold (:meth:`fenced`)."""
        return frozenset(shard_of(cluster, group, self.shards) for cluster, group in pairs)

    # -- the lease ------------------------------------------------------------------------------------------------------

    def refresh(self) -> frozenset[int]:
        """Count the members, give up shards beyond this one's share and take free ones up to it; the shards owned now.

        A lease session that ended (lease expired, killed, network) is replaced by a new one in the same call and its
        shards are reported in :attr:`lost`. Raises BackendUnavailable when PostgreSQL cannot be reached, and then owns
        nothing (what was lost is reported by the next refresh that succeeds). Shards owned now and not at the previous
        refresh may have been sampled by another collector meanwhile: read their previous samples from the table."""
        import psycopg

        fresh = self._conn is None
        for attempt in (1, 2):
            before = self._owned
            try:
                conn = self._connection()
                owned, released = self._rebalance(conn)
            except psycopg.OperationalError as exc:
                self._lose(lost=True)
                if attempt == 1 and not fresh:  # the old session is gone; a new one may well work
                    continue
                raise db.unreachable(self.database_url, exc, lost=not fresh) from None
            except psycopg.Error as exc:
                raise db.refused(self.database_url, exc) from None
            self.lost, self._dropped = self._dropped | (before - owned - released), frozenset()
            self._owned = owned
            return owned
        raise AssertionError("unreachable")  # pragma: no cover

    def still_holds(self, shards: Iterable[int]) -> bool:
        """Whether the lease session is alive and holds all of ``shards`` now (a query on it; False when it is gone).

        For a write on another connection, just before its commit; :meth:`fenced` leaves no gap."""
        import psycopg

        wanted = frozenset(shards)
        conn = self._conn
        if conn is None or conn.closed:
            return False
        try:
            return self._holds(conn, wanted)
        except psycopg.OperationalError:
            self._lose(lost=True)
            return False

    @contextmanager
    def fenced(self, shards: Iterable[int]) -> Iterator["psycopg.Connection[Any]"]:
        """A transaction on the lease connection that holds ``shards`` from its start to its commit, for writing their
        samples: committed when the block ends, rolled back when it raises.

        Raises :class:`SharesLost` (nothing written) when the shards are not all held at the start, and
        BackendUnavailable when the session ends before the commit, in which case nothing was written either (a session
        that ends takes its transaction with it); both leave this collector owning nothing until the next refresh
        when the session is gone."""
        import psycopg

        wanted = frozenset(shards)
        conn = self._conn
        if conn is None or conn.closed:
            raise SharesLost("this collector holds no lease on the shares: refresh first")
        try:
            with conn.transaction():
                if not self._holds(conn, wanted):
                    self._owned = self._owned & self._held(conn)
                    raise SharesLost("this collector no longer holds the shards of these samples: not writing them")
                yield conn
        except psycopg.OperationalError as exc:
            self._lose(lost=True)
            raise db.unreachable(self.database_url, exc, lost=True) from None

    def close(self) -> None:
        """End the lease session: every shard is free for the others at once (released before the session closes,
        since the server ends a closed session a moment after the client has gone)."""
        conn = self._conn
        if conn is not None and not conn.closed and not conn.broken:
            try:
                conn.execute("SELECT pg_catalog.pg_advisory_unlock_all()")
            except Exception:  # gone already, which frees them too
                pass
        self._lose()

    def __enter__(self) -> "Shares":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- inside ---------------------------------------------------------------------------------------------------------

    def _connection(self) -> "psycopg.Connection[Any]":
        import psycopg

        if self._conn is not None and not self._conn.closed:
            return self._conn
        self._lose(lost=True)
        try:
            conn = db.open_connection(
                self._conninfo(), application_name=self.application_name, connect_timeout=self.connect_timeout, autocommit=True
            )
        except psycopg.OperationalError as exc:
            raise db.unreachable(self.database_url, exc) from None
        try:
            row = conn.execute(
                "SELECT pg_catalog.pg_backend_pid(), pg_catalog.pg_try_advisory_lock(%s, pg_catalog.pg_backend_pid())",
                (MEMBER_NAMESPACE,),
            ).fetchone()
        except BaseException:
            db.close_quietly(conn)
            raise
        assert row is not None
        if not row[1]:
            db.close_quietly(conn)
            raise LoomError(f"the member lock ({MEMBER_NAMESPACE}, {row[0]}) is held by another session of the database")
        self._conn, self._pid = conn, int(row[0])
        self.sessions += 1
        return conn

    def _conninfo(self) -> str:
        """The URL's parameters plus the lease: the server ends the session after it stays idle (or a statement runs,
        or a transaction idles) for one lease, and both ends give up on a silent peer within it."""
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        from loomctl.settings import libpq_url

        url = libpq_url(self.database_url)
        lease_ms = max(1, int(self.lease.total_seconds() * 1000))
        # probes from a third of the lease, three of them a ninth apart: a vanished peer is noticed within the lease
        idle_s = max(1, int(self.lease.total_seconds() / 3))
        every_s = max(1, int(self.lease.total_seconds() / 9))
        server = {
            "idle_session_timeout": lease_ms,
            "idle_in_transaction_session_timeout": lease_ms,
            "statement_timeout": lease_ms,
            "tcp_keepalives_idle": idle_s,
            "tcp_keepalives_interval": every_s,
            "tcp_keepalives_count": 3,
            "tcp_user_timeout": lease_ms,
        }
        given = str(conninfo_to_dict(url).get("options") or "")
        options = " ".join([given, *(f"-c {name}={value}" for name, value in server.items())]).strip()
        return make_conninfo(
            url,
            options=options,
            keepalives=1,
            keepalives_idle=idle_s,
            keepalives_interval=every_s,
            keepalives_count=3,
            tcp_user_timeout=lease_ms,
        )

    def _rebalance(self, conn: "psycopg.Connection[Any]") -> tuple[frozenset[int], frozenset[int]]:
        """(owned now, released now): one read of the locks, then the releases or the takes it calls for."""
        assert self._pid is not None
        me = self._pid
        rows = conn.execute(_STATE_SQL, {"shard": SHARD_NAMESPACE, "member": MEMBER_NAMESPACE}).fetchall()
        members = {int(key) for ns, key, _ in rows if ns == MEMBER_NAMESPACE}
        mine = {int(key) for ns, key, pid in rows if ns == SHARD_NAMESPACE and pid == me and key < self.shards}
        elsewhere = {int(key) for ns, key, pid in rows if ns == SHARD_NAMESPACE and pid != me}
        if me not in members:  # cannot happen while the session lives; take it again rather than be left uncounted
            conn.execute("SELECT pg_catalog.pg_try_advisory_lock(%s, %s)", (MEMBER_NAMESPACE, me))
            members.add(me)
        self._members = len(members)
        target = _targets(sorted(members), self.shards)[me]
        order = _preference(sorted(members).index(me), len(members), self.shards)
        released: frozenset[int] = frozenset()
        if len(mine) > target:
            rank_of = {shard: i for i, shard in enumerate(order)}
            keep = set(sorted(mine, key=rank_of.__getitem__)[:target])
            released = frozenset(mine - keep)
            conn.execute(
                "SELECT pg_catalog.pg_advisory_unlock(%s, s) FROM unnest(%s::int4[]) AS s", (SHARD_NAMESPACE, sorted(released))
            )
            mine = keep
        elif len(mine) < target:
            free = [shard for shard in order if shard not in mine and shard not in elsewhere]
            while len(mine) < target and free:
                # exactly as many tries as shards wanted, each row's lock tried once (no LIMIT that could take more)
                batch, free = free[: target - len(mine)], free[target - len(mine) :]
                got = conn.execute(
                    "SELECT s FROM unnest(%s::int4[]) AS s WHERE pg_catalog.pg_try_advisory_lock(%s, s)",
                    (batch, SHARD_NAMESPACE),
                ).fetchall()
                mine.update(int(s) for (s,) in got)
        return frozenset(mine), released

    def _held(self, conn: "psycopg.Connection[Any]") -> frozenset[int]:
        rows = conn.execute(_STATE_SQL, {"shard": SHARD_NAMESPACE, "member": MEMBER_NAMESPACE}).fetchall()
        return frozenset(int(key) for ns, key, pid in rows if ns == SHARD_NAMESPACE and pid == self._pid)

    def _holds(self, conn: "psycopg.Connection[Any]", wanted: frozenset[int]) -> bool:
        if not wanted:
            return True
        row = conn.execute(_HOLDS_SQL, {"shard": SHARD_NAMESPACE, "wanted": sorted(wanted)}).fetchone()
        return row is not None and int(row[0]) == len(wanted)

    def _lose(self, *, lost: bool = False) -> None:
        """Close the lease session (when it ``lost`` its locks, remember them for :attr:`lost`)."""
        if lost:
            self._dropped |= self._owned
        db.close_quietly(self._conn)
        self._conn = None
        self._pid = None
        self._owned = frozenset()
        self._members = 0


__all__ = [
    "MEMBER_NAMESPACE",
    "SHARDS",
    "SHARD_NAMESPACE",
    "CollectorShare",
    "Shares",
    "SharesLost",
    "SharesReport",
    "lease_for",
    "shard_of",
    "shares_report",
]
