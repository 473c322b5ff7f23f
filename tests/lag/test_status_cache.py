"""The copy of lag_partition_status a collector keeps after each cycle (refresh_lag_partition_status), in a
database of its own: served only while current, identical to computing it, never losing samples."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import psycopg
import pytest
from psycopg.rows import dict_row
from support import own_database

from loomctl.lag import LagSample, copy_samples

pytestmark = pytest.mark.integration

WINDOW = dt.timedelta(minutes=15)
KEY = ("consumer_group_id", "topic_name", "partition")


@pytest.fixture
def url(database_factory) -> Iterator[str]:
    with own_database(database_factory, "loomcache") as url:
        yield url


def history(now: dt.datetime, groups: int = 3, partitions: int = 2, samples: int = 12) -> list[LagSample]:
    """A few groups, each a different kind: keeping up, stuck (committed offset still for 330 s, past its
    max_poll_interval_ms), never committed."""
    rows = []
    for g in range(groups):
        for p in range(partitions):
            for i in range(samples):
                at = now - dt.timedelta(seconds=30 * (samples - i))
                leo = 1000 + 50 * i
                committed = [leo - 3 - i % 4, 900, None][g % 3]
                rows.append(LagSample(
                    consumer_group_id=f"g{g}-group", topic_name=f"t{g}", partition=p, timestamp=at, service_name=f"g{g}",
                    committed_offset=committed, log_end_offset=leo, log_start_offset=0,
                    lag=None if committed is None else leo - committed, time_lag_ms=None, group_state="Stable",
                    member_count=2, group_type="consumer" if g == 0 else "classic"))
    return rows


def rows_of(conn: psycopg.Connection, function: str, window: dt.timedelta = WINDOW) -> dict[tuple, dict]:
    found = conn.execute(f"SELECT * FROM {function}(%s)", [window]).fetchall()
    return {tuple(r[k] for k in KEY): r for r in found}


def written(url: str, samples: list[LagSample]) -> psycopg.Connection:
    conn = psycopg.connect(url, row_factory=dict_row)
    copy_samples(conn, samples)
    conn.commit()
    return conn


def test_the_kept_copy_is_what_computing_gives_and_is_served_while_current(url):
    now = dt.datetime.now(dt.timezone.utc)
    with written(url, history(now)) as conn:
        live = rows_of(conn, "lag_partition_status_live")
        assert len(live) == 6 and {r["status"] for r in live.values()} == {"OK", "STALL", "ERR"}
        assert conn.execute("SELECT refresh_lag_partition_status(%s)", [WINDOW]).fetchone()["refresh_lag_partition_status"] == 6
        conn.commit()
        assert rows_of(conn, "lag_partition_status") == live
        assert {r["group_type"] for r in live.values()} == {"consumer", "classic"}
        # served from the copy: a mark put in it shows
        conn.execute("UPDATE lag_status_cache_rows SET evidence = 'kept copy'")
        conn.commit()
        assert {r["evidence"] for r in rows_of(conn, "lag_partition_status").values()} == {"kept copy"}
        # ... also through the views and a filter on one group
        one = conn.execute("SELECT * FROM lag_partition_status(%s) WHERE consumer_group_id = 'g1-group'", [WINDOW]).fetchall()
        assert [r["evidence"] for r in one] == ["kept copy", "kept copy"]
        # another window is computed, not served
        assert {r["evidence"] for r in rows_of(conn, "lag_partition_status", dt.timedelta(minutes=10)).values()} != {"kept copy"}


def test_a_sample_written_since_or_an_old_copy_is_never_served(url):
    now = dt.datetime.now(dt.timezone.utc)
    with written(url, history(now)) as conn:
        conn.execute("SELECT refresh_lag_partition_status(%s)", [WINDOW])
        conn.execute("UPDATE lag_status_cache_rows SET evidence = 'kept copy'")
        conn.commit()
        # a service reports its own lag (the guide's record_consumer_lag): the copy no longer holds
        conn.execute("SELECT record_consumer_lag('g0', 't0', 0, 1500, 1520)")
        conn.commit()
        computed = rows_of(conn, "lag_partition_status")
        assert "kept copy" not in {r["evidence"] for r in computed.values()}
        assert len(computed) == 7  # the six partitions and the one the service reported
        # refreshed, then older than a fifteenth of the window: computed again
        conn.execute("SELECT refresh_lag_partition_status(%s)", [WINDOW])
        conn.execute("UPDATE lag_status_cache_rows SET evidence = 'kept copy'")
        conn.commit()
        assert {r["evidence"] for r in rows_of(conn, "lag_partition_status").values()} == {"kept copy"}
        conn.execute("UPDATE lag_status_cache SET computed_at = now() - interval '61 seconds'")
        conn.commit()
        assert "kept copy" not in {r["evidence"] for r in rows_of(conn, "lag_partition_status").values()}
        # an empty copy (after a crash PostgreSQL empties UNLOGGED tables) is computed too
        conn.execute("DELETE FROM lag_status_cache")
        conn.execute("DELETE FROM lag_status_cache_rows")
        conn.commit()
        assert len(rows_of(conn, "lag_partition_status")) == 7


def test_the_monitor_and_alerts_read_the_same_with_and_without_the_copy(url):
    now = dt.datetime.now(dt.timezone.utc)
    with written(url, history(now)) as conn:
        conn.execute("INSERT INTO pipeline_consumer_configs (service_name, consumer_group_id)"
                     " SELECT 'g' || i, 'g' || i || '-group' FROM generate_series(0, 2) AS i")
        conn.commit()
        computed = conn.execute("SELECT * FROM v_consumer_performance_monitor ORDER BY service_name").fetchall()
        alerts = conn.execute("SELECT alert_type, service_name, message FROM v_consumer_alerts ORDER BY 1, 2").fetchall()
        conn.execute("SELECT refresh_lag_partition_status(%s)", [WINDOW])
        conn.commit()
        assert conn.execute("SELECT * FROM v_consumer_performance_monitor ORDER BY service_name").fetchall() == computed
        assert conn.execute("SELECT alert_type, service_name, message FROM v_consumer_alerts ORDER BY 1, 2").fetchall() == alerts
        assert {r["status"] for r in computed} == {"OK", "STALL", "ERR"}
