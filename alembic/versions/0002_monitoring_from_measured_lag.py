"""monitoring from measured lag: lag_partition_status v2 (Burrow-like rules, evidence), the monitor,
alerts and history views v2, and the indexes that keep them fast

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 15:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from loomctl.sql_entities import entity

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# lag_partition_status gains columns (group_state, first_log_end_offset, log_start_offset,
# evidence), which CREATE OR REPLACE cannot do, and the monitor and alerts views gain columns
# too: they are dropped (dependents first) and created again rather than replaced.
DROPPED = [("v_consumer_alerts", 1), ("v_consumer_performance_monitor", 1), ("lag_partition_status", 1)]
CREATED = [("lag_partition_status", 2), ("v_consumer_performance_monitor", 2), ("v_consumer_alerts", 2)]

# On a partitioned table, CREATE INDEX builds the index of every daily partition, holding off
# inserts meanwhile (the collector retries its cycle): run this migration where a pause of the
# history writes is acceptable, or build each partition's index CONCURRENTLY beforehand.
# The literal rather than loomctl.models.MINUTE_BUCKET_SQL: a migration keeps what it created.
MINUTE_BUCKET_SQL = """date_bin('00:01:00'::interval, "timestamp", '2000-01-01 00:00:00+00'::timestamp with time zone)"""
INDEXES = [
    ("ix_consumer_lag_history_timestamp", "consumer_lag_history", [sa.text('"timestamp"')]),
    ("ix_consumer_lag_history_service_minute", "consumer_lag_history",
     [sa.text("service_name"), sa.text(MINUTE_BUCKET_SQL)]),
    ("ix_consumer_processing_metrics_service_minute", "consumer_processing_metrics",
     [sa.text("service_name"), sa.text(MINUTE_BUCKET_SQL)]),
    ("ix_consumer_processing_metrics_timestamp", "consumer_processing_metrics", [sa.text('"timestamp"')]),
]


# The history's primary key leads with the time, so the collector's inserts append instead of
# landing in one place per partition (ingest from ~60,000 to 100,000+ rows/s); time-window
# scans use it, and the per-topic index goes (produce rates read the time window).
OLD_PK = ["consumer_group_id", "topic_name", "partition", "timestamp"]
NEW_PK = ["timestamp", "consumer_group_id", "topic_name", "partition"]


def _primary_key(columns: list[str]) -> None:
    op.drop_constraint("pk_consumer_lag_history", "consumer_lag_history", type_="primary")
    op.create_primary_key("pk_consumer_lag_history", "consumer_lag_history", columns)


def upgrade() -> None:
    for name, version in DROPPED:
        op.drop_entity(entity(name, version))
    _primary_key(NEW_PK)
    op.drop_index("ix_consumer_lag_history_topic_timestamp", table_name="consumer_lag_history")
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns, unique=False)
    for name, version in CREATED:
        op.create_entity(entity(name, version))
    op.replace_entity(entity("v_consumer_performance_history", 2))


def downgrade() -> None:
    op.replace_entity(entity("v_consumer_performance_history", 1))
    for name, version in reversed(CREATED):
        op.drop_entity(entity(name, version))
    # IF EXISTS: a development database that ran an earlier draft of this revision may lack one.
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table, if_exists=True)
    op.create_index("ix_consumer_lag_history_topic_timestamp", "consumer_lag_history", ["topic_name", "timestamp"])
    _primary_key(OLD_PK)
    for name, version in reversed(DROPPED):
        op.create_entity(entity(name, version))
