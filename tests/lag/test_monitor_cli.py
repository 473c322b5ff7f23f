"""`metrics show`, `recommend` and `lag history` over measured rows in a database of this module's own."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import psycopg
import pytest

from support import Cli, own_database

pytestmark = pytest.mark.integration

SERVICE, GROUP = "slow-batches", "g-slow-batches"


@pytest.fixture(scope="module")
def cli(database_factory, services) -> Iterator[Cli]:
    """A service fetching 3 records per batch (max_poll_records 500) while its lag grows."""
    with own_database(database_factory, "loommon") as url:
        cli = Cli(url, services.bootstrap_servers)
        assert cli("config", "set", SERVICE, "--create", "--group", GROUP, "max_poll_records=500").exit_code == 0
        now = dt.datetime.now(dt.timezone.utc)
        with psycopg.connect(url, autocommit=True) as conn:
            for i in range(20):
                failed = 1 if i == 0 else 0
                conn.execute(
                    "INSERT INTO consumer_processing_metrics (\"timestamp\", service_name, consumer_group_id, batch_size,"
                    " messages_processed, messages_failed, processing_time_ms, messages_per_second)"
                    " VALUES (%s, %s, %s, 3, %s, %s, 30, 100)",
                    (now - dt.timedelta(seconds=5 * i), SERVICE, GROUP, 3 - failed, failed),
                )
            for i, (offset, log_end) in enumerate([(100, 300), (130, 400), (160, 500), (190, 600)]):
                for partition in (0, 1):
                    conn.execute(
                        "SELECT record_consumer_lag(%s, 'sensor-readings', %s, %s, %s, %s, %s)",
                        (SERVICE, partition, offset, log_end, GROUP, now - dt.timedelta(seconds=150 - 45 * i)),
                    )
        yield cli


def test_metrics_show_summarizes_the_batches(cli) -> None:
    report = cli.json("metrics", "show", SERVICE, "--since", "10m", "--bucket", "1m")
    summary = report["summary"]
    assert summary["batches"] == 20 and summary["messages_received"] == 60
    assert summary["messages_processed"] == 59 and summary["messages_failed"] == 1
    assert summary["avg_batch_size"] == 3 and summary["batch_fill"] == 0.006
    assert summary["messages_per_second"] == pytest.approx(59 * 1000 / 600, abs=0.1)
    assert summary["error_rate"] == pytest.approx(1 / 60, abs=1e-4)
    assert summary["poll_interval_usage"] == pytest.approx(30 / 300000, abs=1e-3)
    assert sum(b["batches"] for b in report["buckets"]) == 20


def test_recommend_quotes_the_numbers(cli) -> None:
    [row] = cli.json("recommend", SERVICE)
    assert row["status"] == "WARN"
    assert "3" in row["recommendation"] and "500" in row["recommendation"], row["recommendation"]
    assert [r["service_name"] for r in cli.json("recommend")] == [SERVICE]
    assert cli("recommend", "nobody").exit_code == 3


def test_history_has_a_bucket_per_step_with_the_summed_lag(cli) -> None:
    [topic] = cli.json("lag", "history", SERVICE, "--since", "5m", "--bucket", "1m")
    assert topic["topic_name"] == "sensor-readings"
    lags = [b["lag"] for b in topic["buckets"] if b["lag"] is not None]
    assert lags == sorted(lags) and lags[-1] == 2 * (600 - 190)
    # every minute the five minutes back from now touch, also the empty ones: six, from the minute of now - 5m on
    assert len(topic["buckets"]) == 6
    starts = [dt.datetime.fromisoformat(b["timestamp"]) for b in topic["buckets"]]
    assert starts[0] <= dt.datetime.fromisoformat(topic["since"]) < starts[0] + dt.timedelta(minutes=1)
    assert [b - a for a, b in zip(starts, starts[1:])] == [dt.timedelta(minutes=1)] * 5
    # each bucket: the partitions' highest lag in it, summed (both grow alike: the sum at the minute's last sample)
    with psycopg.connect(cli.database_url) as conn:
        sampled = conn.execute('SELECT "timestamp", sum(lag) FROM consumer_lag_history WHERE service_name = %s'
                               ' GROUP BY 1 ORDER BY 1', (SERVICE,)).fetchall()
    assert [total for _, total in sampled] == [400, 540, 680, 820]
    last_of_minute = {at.replace(second=0, microsecond=0): total for at, total in sampled}
    assert [b["lag"] for b in topic["buckets"]] == [last_of_minute.get(start) for start in starts]
    table = cli("lag", "history", SERVICE, "--since", "5m", "--bucket", "1m")
    assert table.exit_code == 0 and "sensor-readings" in table.stdout
    assert cli("lag", "history", SERVICE, "--since", "30d", "--bucket", "1s").exit_code == 2


def test_metrics_show_refuses_too_many_buckets_as_lag_history_does(cli) -> None:
    for command in (("lag", "history"), ("metrics", "show")):
        result = cli(*command, SERVICE, "--since", "30d", "--bucket", "1s")
        assert result.exit_code == 2, result.output
        assert "--since 30d / --bucket 1s makes more than 2000 buckets: choose a wider bucket" in result.stderr
    report = cli.json("metrics", "show", SERVICE, "--since", "2000m", "--bucket", "1m")  # 2000 buckets: the limit itself
    assert report["summary"]["batches"] == 20 and sum(b["batches"] for b in report["buckets"]) == 20
