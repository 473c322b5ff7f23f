"""Every SQL statement of the guide runs, verbatim, against the migrated schema, and every SELECT returns what it must
on the test's rows."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import own_database

pytestmark = pytest.mark.integration

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "kafka-consumer-optimization-guide.md"
GUIDE_SERVICES = (
    "moondream-vision-processor", "speech-processor", "problematic-service",
    "slow-ai-processor", "memory-intensive-service",
)


def guide_statements() -> list[str]:
    statements = []
    for block in re.findall(r"```sql\n(.*?)```", GUIDE.read_text(encoding="utf-8"), flags=re.S):
        if block.lstrip().startswith("-- In Python"):
            continue  # the guide's Python call, labelled sql; the loader's tests run it
        for statement in block.split(";"):
            code = "\n".join(line for line in statement.splitlines() if not line.strip().startswith("--"))
            if code.strip():
                statements.append(statement.strip())
    return statements


def sql_of(statement: str) -> str:
    """The statement without its comments, on one line."""
    return " ".join(re.sub(r"--[^\n]*", "", statement).split())


CONFIG = {  # a service's row as the test inserts it: the table's defaults
    "max_poll_records": 500, "max_poll_interval_ms": 300000, "session_timeout_ms": 45000, "heartbeat_interval_ms": 3000,
    "fetch_min_bytes": 1, "fetch_max_bytes": 52428800, "fetch_max_wait_ms": 500, "max_partition_fetch_bytes": 1048576,
    "request_timeout_ms": 30000, "retry_backoff_ms": 100, "reconnect_backoff_ms": 50, "reconnect_backoff_max_ms": 1000,
    "enable_auto_commit": True, "auto_commit_interval_ms": 5000, "auto_offset_reset": "latest",
    "partition_assignment_strategy": "range", "isolation_level": "read_committed", "profile": None, "description": None,
    "version": 1, "updated_by": "loom", "group_protocol": "classic", "group_remote_assignor": "uniform", "lag_slo_seconds": None,
}
MONITOR = ("service_name", "consumer_group_id", "max_poll_records", "status", "partitions", "total_lag", "avg_lag", "max_lag",
           "member_count", "messages_per_second", "slo_state", "recommendation")
"""The monitor view's columns the test checks: with no sample and no metric, every service is NO_DATA."""
SCRIPT = 'kafka-topics --bootstrap-server "${KAFKA_BOOTSTRAP_SERVERS:-localhost:9092}" --alter --topic device.audio.raw --partitions 6'

EXPECTED: dict[str, tuple[tuple[str, ...] | None, list[tuple], bool]] = {
    # the statement: (the columns compared, None for all; the rows; whether their order is the statement's)
    "SELECT service_name, max_poll_records, session_timeout_ms, description FROM pipeline_consumer_configs ORDER BY service_name":
        (None, [(name, 500, 45000, None) for name in sorted(GUIDE_SERVICES)], True),
    "SELECT topic_name, current_partitions, recommended_partitions, reason FROM topic_partition_changes WHERE applied = false":
        (None, [("device.audio.raw", 3, 6, "test")], True),
    "SELECT generate_partition_update_script()": (None, [(SCRIPT,)], True),
    "SELECT mark_partition_changes_applied()": (None, [(1,)], True),
    # no lag sampled: every avg_lag is null, so ORDER BY avg_lag DESC leaves the order open
    "SELECT * FROM v_consumer_performance_monitor ORDER BY avg_lag DESC":
        (MONITOR, [(name, f"{name}-group", 500, "NO_DATA", *[None] * 6, "no_slo", None) for name in sorted(GUIDE_SERVICES)],
         False),
    "SELECT * FROM v_consumer_performance_monitor WHERE service_name = 'speech-processor'":
        (MONITOR, [("speech-processor", "speech-processor-group", 500, "NO_DATA", *[None] * 6, "no_slo", None)], True),
    "SELECT * FROM v_consumer_alerts": (None, [], True),
    "SELECT * FROM v_consumer_alerts WHERE service_name = 'speech-processor'": (None, [], True),
    "SELECT * FROM v_consumer_performance_history WHERE service_name = 'speech-processor' AND timestamp > NOW() - INTERVAL '1 hour'":
        (None, [], True),
    "SELECT * FROM v_partition_efficiency": (None, [], True),
    "SELECT timestamp, lag FROM consumer_lag_history WHERE service_name = 'problematic-service' ORDER BY timestamp DESC LIMIT 100":
        (None, [], True),
    "SELECT avg(processing_time_ms), avg(messages_per_second) FROM consumer_processing_metrics"
    " WHERE service_name = 'speech-processor' AND timestamp > NOW() - INTERVAL '1 hour'": (None, [(None, None)], True),
    "SELECT * FROM pipeline_consumer_configs WHERE service_name = 'problematic-service'":
        (("service_name", "consumer_group_id", *CONFIG), [("problematic-service", "problematic-service-group", *CONFIG.values())],
         True),
    "SELECT * FROM pipeline_consumer_configs WHERE service_name = 'speech-processor'":
        (("service_name", "consumer_group_id", *CONFIG), [("speech-processor", "speech-processor-group", *CONFIG.values())], True),
}
"""What each of the guide's SELECTs returns on the rows the test writes: the five services with the table's defaults,
one pending change, no lag sample and no processing metric, in a database of this module's own."""


@pytest.fixture(scope="module")
def database_url(database_factory) -> Iterator[str]:
    """A database of this module's own (the `db` fixture connects to it): the guide's SELECTs see only the test's rows."""
    with own_database(database_factory, "loomguide") as url:
        yield url


def test_the_guide_has_the_statements_we_expect():
    statements = guide_statements()
    assert len(statements) >= 20
    assert any("generate_partition_update_script()" in s for s in statements)
    assert any("mark_partition_changes_applied()" in s for s in statements)


@pytest.mark.parametrize("statement", guide_statements(), ids=lambda s: " ".join(s.split())[:60])
def test_guide_statement_runs(db, statement):
    with db.cursor() as cur:
        for name in GUIDE_SERVICES:
            cur.execute(
                "INSERT INTO pipeline_consumer_configs (service_name, consumer_group_id) VALUES (%s, %s)",
                (name, f"{name}-group"),
            )
        cur.execute(
            "INSERT INTO topic_partition_changes (topic_name, current_partitions, recommended_partitions, reason)"
            " VALUES ('device.audio.raw', 3, 6, 'test')"
        )
        cur.execute(statement)
        if cur.description is not None:
            fetched = cur.fetchall()
            assert sql_of(statement) in EXPECTED, f"no expected result for the guide's {sql_of(statement)!r}"
            columns, expected, ordered = EXPECTED[sql_of(statement)]
            names = [c.name for c in cur.description]
            rows = fetched if columns is None else [tuple(row[names.index(c)] for c in columns) for row in fetched]
            assert (rows if ordered else sorted(rows)) == expected
            if "created_at" in names:  # a service's stamps: the inserting transaction's time, as the table's defaults give
                cur.execute("SELECT now()")
                now = cur.fetchone()[0]
                stamps = [(row[names.index("created_at")], row[names.index("updated_at")]) for row in fetched]
                assert stamps == [(now, now)] * len(fetched)
        if statement.upper().startswith("UPDATE"):
            assert cur.rowcount == 1, "the guide's UPDATE should hit the service's row"
