"""Collectors share the groups through advisory locks (loomctl.lag.shares), against the session's real PostgreSQL.

Each test has a database of its own: advisory locks are per database, so the members of one test never count another's.
Nothing waits a fixed time: every wait polls a condition with a deadline.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest
from support import free_port, wait_for

from loomctl.errors import BackendUnavailable
from loomctl.lag.shares import (
    MEMBER_NAMESPACE,
    SHARD_NAMESPACE,
    SHARDS,
    Shares,
    SharesLost,
    lease_for,
    shard_of,
    shares_report,
)

LONG = dt.timedelta(seconds=60)  # a lease no test outlives: only what the test does ends a session
ALL = frozenset(range(SHARDS))
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def url(empty_database_url: str) -> str:
    return empty_database_url


@pytest.fixture
def make(url: str) -> Iterator[Callable[..., Shares]]:
    """Members of the test's database, all closed at the end."""
    made: list[Shares] = []

    def member(lease: dt.timedelta = LONG, **kwargs: Any) -> Shares:
        shares = Shares(url, lease=lease, **kwargs)
        made.append(shares)
        return shares

    yield member
    for shares in made:
        shares.close()


@pytest.fixture
def pg(url: str) -> Iterator[psycopg.Connection[Any]]:
    """An outsider's connection: what pg_locks says, and pg_terminate_backend."""
    with psycopg.connect(url, autocommit=True) as conn:
        yield conn


def refresh_all(members: Sequence[Shares]) -> list[frozenset[int]]:
    return [m.refresh() for m in members]


def is_partition(owned: Sequence[frozenset[int]], shards: int = SHARDS) -> bool:
    """Disjoint, covering every shard, the counts within one of each other."""
    sizes = [len(o) for o in owned]
    union = frozenset().union(*owned)
    return sum(sizes) == len(union) == shards and max(sizes) - min(sizes) <= 1


def rounds_to_partition(members: Sequence[Shares], limit: int, shards: int = SHARDS) -> int:
    """Refresh every member in turn until their shares are a partition; the rounds it took (fails past ``limit``)."""
    for round_ in range(1, limit + 1):
        owned = refresh_all(members)
        assert sum(len(o) for o in owned) == len(frozenset().union(*owned)), "two members own one shard"
        if is_partition(owned, shards):
            return round_
    raise AssertionError(f"no partition after {limit} rounds: {[len(m.owned) for m in members]}")


def locked_by(pg: psycopg.Connection[Any], pid: int) -> int:
    """The locks of the shares the session ``pid`` holds, as pg_locks shows them to anyone."""
    row = pg.execute(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 2 AND pid = %s"
        " AND classid IN (%s::int8::oid, %s::int8::oid)",
        (pid, SHARD_NAMESPACE, MEMBER_NAMESPACE),
    ).fetchone()
    assert row is not None
    return int(row[0])


# -- the hash --------------------------------------------------------------------------------------------------------


def test_the_shard_of_a_group_is_fixed() -> None:
    # BLAKE2b-64 of "cluster\0group": the same in every process, whatever PYTHONHASHSEED says
    assert hashlib.blake2b(b"c\0g", digest_size=8).hexdigest() == "af24e6c293d94189"
    assert shard_of("c", "g") == 0xAF24E6C293D94189 % 256 == 137
    assert shard_of("pipeline-eu", "orders-consumer") == 254
    assert shard_of("pipeline-eu", "orders-consumer", 1 << 31) == 903544318
    assert shard_of("", "") == 72
    out = subprocess.run(
        [sys.executable, "-c", "from loomctl.lag.shares import shard_of; print(shard_of('c', 'g'))"],
        env={**os.environ, "PYTHONPATH": str(REPO), "PYTHONHASHSEED": "12345"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "137"


def test_the_shards_spread_the_groups_evenly() -> None:
    counts = [0] * SHARDS
    for i in range(SHARDS * 100):
        counts[shard_of("pipeline-eu", f"service-{i}")] += 1
    assert min(counts) > 50 and max(counts) < 160  # 100 expected per shard


def test_the_lease_is_three_intervals_and_ten_seconds_at_least() -> None:
    assert lease_for(dt.timedelta(seconds=1)) == dt.timedelta(seconds=10)
    assert lease_for(dt.timedelta(seconds=30)) == dt.timedelta(seconds=90)


# -- balance ---------------------------------------------------------------------------------------------------------


def test_one_member_owns_every_shard_at_its_first_refresh(make: Callable[..., Shares], pg: psycopg.Connection[Any]) -> None:
    alone = make()
    assert alone.owned == frozenset() and alone.members() == 0
    assert alone.refresh() == ALL
    assert alone.members() == 1
    assert alone.owns("pipeline-eu", "orders") and alone.owns("c", "g")
    assert alone.pid is not None and locked_by(pg, alone.pid) == SHARDS + 1  # the shards and its member lock
    assert alone.refresh() == ALL and alone.lost == frozenset()


def test_three_members_split_the_shards_within_a_few_rounds(make: Callable[..., Shares]) -> None:
    members = [make() for _ in range(3)]
    assert rounds_to_partition(members, limit=3) <= 3
    sizes = sorted(len(m.owned) for m in members)
    assert sizes == [85, 85, 86]
    # settled: more rounds move nothing
    before = [m.owned for m in members]
    refresh_all(members)
    refresh_all(members)
    assert [m.owned for m in members] == before
    assert all(m.members() == 3 for m in members)
    # each group has exactly one owner
    for i in range(200):
        assert sum(m.owns("pipeline-eu", f"group-{i}") for m in members) == 1


def test_members_joining_together_settle_too(make: Callable[..., Shares]) -> None:
    """All connected before anyone refreshes: nobody grabs everything first."""
    members = [make() for _ in range(4)]
    for m in members:
        m._connection()  # joined (member lock held), not refreshed yet
    assert rounds_to_partition(members, limit=2) <= 2
    assert sorted(len(m.owned) for m in members) == [64, 64, 64, 64]


def test_a_newcomer_gets_its_share_and_the_others_give_it_up(make: Callable[..., Shares]) -> None:
    members = [make() for _ in range(3)]
    rounds_to_partition(members, limit=3)
    members.append(make())
    assert rounds_to_partition(members, limit=3) <= 3
    assert sorted(len(m.owned) for m in members) == [64, 64, 64, 64]


def test_more_members_than_shards(make: Callable[..., Shares]) -> None:
    members = [make(shards=4) for _ in range(6)]
    rounds_to_partition(members, limit=3, shards=4)
    assert sorted(len(m.owned) for m in members) == [0, 0, 1, 1, 1, 1]


def test_random_joins_leaves_and_orders_settle_within_two_rounds(make: Callable[..., Shares]) -> None:
    rng = random.Random(23)
    members = [make(shards=64) for _ in range(3)]
    for _ in range(12):
        if rng.random() < 0.5 or len(members) < 3:
            members.append(make(shards=64))
        else:
            members.pop(rng.randrange(len(members))).close()
        for _ in range(rng.randrange(3)):  # a few refreshes in a random order while membership changes
            member = rng.choice(members)
            member.refresh()
            owned = [m.owned for m in members]
            assert sum(len(o) for o in owned) == len(frozenset().union(*owned))
        rng.shuffle(members)
        assert rounds_to_partition(members, limit=2, shards=64) <= 2


# -- takeover --------------------------------------------------------------------------------------------------------


def test_the_shares_of_a_closed_member_are_taken_at_the_next_refresh(make: Callable[..., Shares]) -> None:
    members = [make() for _ in range(3)]
    rounds_to_partition(members, limit=3)
    members.pop(1).close()
    assert is_partition(refresh_all(members))
    assert sorted(len(m.owned) for m in members) == [128, 128]
    assert all(m.lost == frozenset() for m in members)


def test_the_shares_of_a_killed_session_are_taken_at_the_next_refresh(
    make: Callable[..., Shares], pg: psycopg.Connection[Any]
) -> None:
    members = [make() for _ in range(3)]
    rounds_to_partition(members, limit=3)
    victim = members[1]
    had, pid = victim.owned, victim.pid
    assert pg.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)
    wait_for("the killed session's locks to go", lambda: locked_by(pg, pid) == 0, timeout=10)
    others = [members[0], members[2]]
    assert is_partition(refresh_all(others))
    # the victim finds out at its next refresh: it has lost what it had, and comes back as a new member
    assert not victim.still_holds(had)
    assert victim.refresh() == frozenset()  # all shards taken; it gets its share as the others give some up
    assert victim.lost == had and victim.sessions == 2 and victim.pid != pid
    assert rounds_to_partition(members, limit=3) <= 3


def test_a_member_idle_past_its_lease_loses_its_shares(make: Callable[..., Shares], pg: psycopg.Connection[Any]) -> None:
    short = make(lease=dt.timedelta(seconds=1))
    steady = make()
    rounds_to_partition([short, steady], limit=3)
    had, pid = short.owned, short.pid
    assert pid is not None and len(had) == 128
    # the server ends the idle session after one lease, releasing its locks; nobody touches it meanwhile
    wait_for("the idle session to end", lambda: locked_by(pg, pid) == 0, timeout=10)
    assert steady.refresh() == ALL
    assert not short.still_holds(had)
    with pytest.raises(SharesLost):
        with short.fenced(had):
            pass
    assert short.owned == frozenset()
    # a refresh reconnects cleanly and says what was lost
    assert short.refresh() == frozenset() and short.lost == had and short.sessions == 2
    assert rounds_to_partition([short, steady], limit=3) <= 3


def test_a_lost_lease_is_noticed_by_the_refresh_itself(make: Callable[..., Shares], pg: psycopg.Connection[Any]) -> None:
    short = make(lease=dt.timedelta(seconds=1))
    assert short.refresh() == ALL
    pid = short.pid
    assert pid is not None
    wait_for("the idle session to end", lambda: locked_by(pg, pid) == 0, timeout=10)
    assert short.refresh() == ALL  # a new session, in the same call
    assert short.lost == ALL and short.sessions == 2 and short.pid != pid


def test_the_lease_session_carries_the_lease(make: Callable[..., Shares]) -> None:
    member = make(lease=dt.timedelta(seconds=30))
    member.refresh()
    with member.fenced(member.owned) as conn:
        settings = dict(
            conn.execute(
                "SELECT name, setting FROM pg_settings WHERE name IN ('idle_session_timeout',"
                " 'idle_in_transaction_session_timeout', 'statement_timeout', 'tcp_keepalives_idle', 'tcp_user_timeout',"
                " 'jit', 'application_name')"
            ).fetchall()
        )
    assert settings["idle_session_timeout"] == "30000"
    assert settings["idle_in_transaction_session_timeout"] == "30000"
    assert settings["statement_timeout"] == "30000"
    assert settings["jit"] == "off" and settings["application_name"] == "loomctl lag collect"
    assert settings["tcp_user_timeout"] == "30000" and settings["tcp_keepalives_idle"] == "10"


def test_an_unreachable_database_means_owning_nothing(make: Callable[..., Shares], url: str) -> None:
    nowhere = Shares(f"postgresql://loom@127.0.0.1:{free_port()}/loom", lease=LONG, connect_timeout=2)
    with pytest.raises(BackendUnavailable, match="cannot reach PostgreSQL"):
        nowhere.refresh()
    assert nowhere.owned == frozenset() and not nowhere.still_holds(set())
    nowhere.close()


def test_a_database_gone_and_back_means_owning_nothing_then_everything_again(
    make: Callable[..., Shares], url: str, services: Any
) -> None:
    member = make(connect_timeout=2)
    assert member.refresh() == ALL
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(services.database_url, autocommit=True) as server:
        server.execute(f'DROP DATABASE "{name}" WITH (FORCE)')  # ends the lease session too
        with pytest.raises(BackendUnavailable, match="PostgreSQL"):
            member.refresh()
        assert member.owned == frozenset() and not member.still_holds({0})
        with pytest.raises(SharesLost):
            with member.fenced({0}):
                pass
        server.execute(f'CREATE DATABASE "{name}"')
    assert member.refresh() == ALL
    assert member.lost == ALL  # reported by the first refresh that succeeded


# -- fencing ---------------------------------------------------------------------------------------------------------


def _samples(pg: psycopg.Connection[Any]) -> list[str]:
    return [r[0] for r in pg.execute("SELECT name FROM fenced_samples ORDER BY name").fetchall()]


def test_a_fenced_write_commits_only_while_its_shards_are_held(make: Callable[..., Shares], pg: psycopg.Connection[Any]) -> None:
    pg.execute("CREATE TABLE fenced_samples (name text)")
    a, b = make(), make()
    rounds_to_partition([a, b], limit=3)
    with a.fenced(a.owned) as conn:
        conn.execute("INSERT INTO fenced_samples VALUES ('a')")
    assert _samples(pg) == ["a"]
    # shards another member holds: refused before anything is written
    with pytest.raises(SharesLost):
        with a.fenced({min(b.owned)}) as conn:
            conn.execute("INSERT INTO fenced_samples VALUES ('not mine')")
    assert _samples(pg) == ["a"]
    assert a.still_holds(a.owned) and not a.still_holds(b.owned) and a.still_holds(set())
    # the session ends between the write and the commit: the write goes with it, and the shards are free
    pid = a.pid
    with pytest.raises(BackendUnavailable):
        with a.fenced(a.owned) as conn:
            conn.execute("INSERT INTO fenced_samples VALUES ('too late')")
            assert pg.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)
            assert pid is not None
            wait_for("the session to end", lambda: locked_by(pg, pid) == 0, timeout=10)
    assert _samples(pg) == ["a"]
    assert a.owned == frozenset() and not a.still_holds({0})
    assert b.refresh() == ALL


# -- the report ------------------------------------------------------------------------------------------------------


def test_the_report_says_who_owns_how_many(make: Callable[..., Shares], pg: psycopg.Connection[Any]) -> None:
    assert shares_report(pg).collectors == [] and shares_report(pg).unowned == SHARDS
    members = [make(application_name=f"collector {i}") for i in range(3)]
    members[0].refresh()
    members[1]._connection()  # joined, owns nothing yet
    report = shares_report(pg)
    by_pid = {c.pid: c for c in report.collectors}
    assert set(by_pid) == {members[0].pid, members[1].pid}
    first = by_pid[members[0].pid]
    assert (first.application_name, first.shards, first.member) == ("collector 0", SHARDS, True)
    assert first.client_addr in ("127.0.0.1", None) and first.backend_start is not None
    assert by_pid[members[1].pid].shards == 0
    rounds_to_partition(members, limit=3)
    report = shares_report(pg)
    assert sorted(c.shards for c in report.collectors) == [85, 85, 86]
    assert report.owned == SHARDS and report.unowned == 0
    assert {c.application_name for c in report.collectors} == {"collector 0", "collector 1", "collector 2"}


# -- real processes --------------------------------------------------------------------------------------------------

_MEMBER_LOOP = """
import datetime as dt, json, sys, time
from loomctl.errors import LoomError
from loomctl.lag.shares import Shares

url, lease_s, every_s = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
shares = Shares(url, lease=dt.timedelta(seconds=lease_s), application_name="test member")
said = False
deadline = time.monotonic() + 300  # never outlive a test run that forgot it
while time.monotonic() < deadline:
    try:
        shares.refresh()
    except LoomError as exc:
        print(exc, file=sys.stderr, flush=True)
    if not said and shares.pid is not None:
        print(json.dumps({"pid": shares.pid}), flush=True)  # once: nobody reads this pipe further
        said = True
    time.sleep(every_s)
"""


class Members:
    """Member processes looping over refresh every ``every_s``; killed at the end whatever happens."""

    def __init__(self, url: str, count: int, lease_s: float, every_s: float, logs: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.logs = [logs / f"member-{i}.log" for i in range(count)]
        self.procs = []
        for log in self.logs:
            with open(log, "w") as err:
                self.procs.append(
                    subprocess.Popen(
                        [sys.executable, "-c", _MEMBER_LOOP, url, str(lease_s), str(every_s)],
                        env=env,
                        stdout=subprocess.PIPE,
                        stderr=err,
                        text=True,
                    )
                )

    def session_pid(self, i: int) -> int:
        """The backend pid of member ``i``'s lease session, once it has one."""
        stdout = self.procs[i].stdout
        assert stdout is not None
        line = stdout.readline()
        assert line, self.logs[i].read_text()
        return int(json.loads(line)["pid"])

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()  # SIGKILL also ends a stopped process
            proc.wait(timeout=30)
            if proc.stdout is not None:
                proc.stdout.close()


def _shares_by_pid(pg: psycopg.Connection[Any]) -> dict[int, int]:
    return {c.pid: c.shards for c in shares_report(pg).collectors if c.member}


def _measure(what: str, condition: Callable[[], bool], deadline_s: float) -> float:
    """Seconds until ``condition()`` holds (polled every 20 ms); fails past ``deadline_s``."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > deadline_s:
            raise AssertionError(f"{what} took more than {deadline_s:g} s")
        time.sleep(0.02)
    return time.monotonic() - started


@pytest.mark.parametrize("how", ["SIGKILL", "SIGSTOP"])
def test_member_processes_take_over_a_dead_or_hung_ones_shares(
    url: str, pg: psycopg.Connection[Any], how: str, tmp_path: Path
) -> None:
    lease_s, every_s = 2.0, 0.2
    members = Members(url, 3, lease_s, every_s, tmp_path)
    try:
        pids = [members.session_pid(i) for i in range(3)]

        def partition() -> bool:
            shares = _shares_by_pid(pg)
            return set(shares) == set(pids) and sorted(shares.values()) == [85, 85, 86]

        wait_for("three processes to split the shards", partition, timeout=30)
        victim, pid = members.procs[1], pids[1]
        survivors = {pids[0], pids[2]}
        os.kill(victim.pid, getattr(signal, how))

        def covered() -> bool:
            shares = _shares_by_pid(pg)
            return set(shares) == survivors and sorted(shares.values()) == [128, 128]

        # dead: its socket closes and its locks go at once; hung: the server ends its idle session after one lease.
        # Either way the survivors take everything within one lease and one round (plus this machine's slack).
        took = _measure(f"the takeover after {how}", covered, lease_s + every_s + 3.0)
        if how == "SIGKILL":
            assert took < every_s + 2.0, took
        else:
            assert took >= lease_s - 2 * every_s - 0.5, took  # not before the lease could have run out
        assert locked_by(pg, pid) == 0
        print(f"takeover after {how}: {took:.2f} s (lease {lease_s:g} s, refresh every {every_s:g} s)")
    finally:
        members.close()
