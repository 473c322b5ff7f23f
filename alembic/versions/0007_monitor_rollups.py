"""the monitor without reading the window's samples or the hour's batches: the groups' rollup kept beside the
partitions' statuses (lag_status_cache_groups, lag_group_status(_live), refresh_lag_partition_status v2), the
processing metrics summed per service and minute / five minutes / half hour at every write (consumer_processing_metrics_rollup
and its triggers, processing_metrics_last_hour), and v_consumer_performance_monitor v5 reading both, with JIT kept out
of its plan; v_consumer_alerts v4 formats the messages of active alerts only

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 00:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from loomctl.sql_entities import entity

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

Timestamp = sa.TIMESTAMP(timezone=True)

METRICS = "consumer_processing_metrics"
ROLLUP = "consumer_processing_metrics_rollup"
ROLLUP_TRIGGERS = [f"{ROLLUP}_insert", f"{ROLLUP}_update", f"{ROLLUP}_delete", f"{ROLLUP}_truncate"]

# The same bucketing as processing_metrics_rollup_sync's (a migration keeps what it created).
_BACKFILL = f"""
INSERT INTO public.{ROLLUP}
    (bucket_seconds, bucket_start, service_name, batches, batch_size, messages_processed, messages_failed,
     processing_time_ms, max_processing_time_ms)
SELECT w.seconds, date_bin(w.width, pm."timestamp", '2000-01-01 00:00:00+00'::timestamp with time zone), pm.service_name,
       count(*), sum(pm.batch_size), sum(pm.messages_processed), sum(pm.messages_failed),
       sum(pm.processing_time_ms), max(pm.processing_time_ms)
  FROM public.{METRICS} AS pm
 CROSS JOIN (VALUES (60, interval '1 minute'), (300, interval '5 minutes'), (1800, interval '30 minutes')) AS w(seconds, width)
 GROUP BY 1, 2, 3
"""


def upgrade() -> None:
    # UNLOGGED like the partitions' copy it is kept with (emptied together after a crash).
    op.create_table(
        "lag_status_cache_groups",
        sa.Column("consumer_group_id", sa.Text(), nullable=False),
        sa.Column("partitions", sa.Integer()),
        sa.Column("partitions_without_commit", sa.Integer()),
        sa.Column("total_lag", sa.Numeric()),
        sa.Column("avg_lag", sa.Numeric()),
        sa.Column("max_lag", sa.BigInteger()),
        sa.Column("lag_change", sa.Numeric()),
        sa.Column("time_lag_ms", sa.BigInteger()),
        sa.Column("member_count", sa.Integer()),
        sa.Column("group_state", sa.Text()),
        sa.Column("group_type", sa.Text()),
        sa.Column("last_sample_at", Timestamp),
        sa.Column("sampled_seconds", sa.Integer()),
        sa.Column("produce_rate", sa.Numeric()),
        sa.Column("consume_rate", sa.Numeric()),
        sa.Column("status", sa.Text()),
        sa.Column("flagged_partitions", sa.Text()),
        sa.Column("evidence", sa.Text()),
        sa.Column("lag_slo_seconds", sa.Integer()),
        sa.Column("time_lag_seconds", sa.Numeric()),
        sa.Column("catch_up_seconds", sa.Numeric()),
        sa.Column("catch_up_never", sa.Boolean()),
        sa.Column("breach_in_seconds", sa.Numeric()),
        sa.Column("slowest_partition", sa.Text()),
        sa.PrimaryKeyConstraint("consumer_group_id", name=op.f("pk_lag_status_cache_groups")),
        prefixes=["UNLOGGED"],
    )
    # The digest of the objectives the kept groups were computed against; NULL for a copy kept by
    # 0006's refresh, which has no groups beside it (they are served only when it matches).
    op.add_column("lag_status_cache", sa.Column("objectives", sa.Numeric()))
    for name in ("lag_status_cache_current", "lag_objectives", "lag_objectives_digest"):
        op.create_entity(entity(name, 1))
    # Same arguments and columns: replaced in place, the views over it stay.
    op.replace_entity(entity("lag_partition_status", 5))
    op.create_entity(entity("lag_group_status_live", 1))
    op.create_entity(entity("lag_group_status", 1))
    op.replace_entity(entity("refresh_lag_partition_status", 2))

    # Logged, unlike the copies: it is kept at every write, not rebuilt, so a crash must not empty it.
    op.create_table(
        ROLLUP,
        sa.Column("bucket_seconds", sa.Integer(), nullable=False),
        sa.Column("bucket_start", Timestamp, nullable=False),
        sa.Column("service_name", sa.Text(), nullable=False),
        sa.Column("batches", sa.BigInteger(), nullable=False),
        sa.Column("batch_size", sa.BigInteger(), nullable=False),
        sa.Column("messages_processed", sa.BigInteger(), nullable=False),
        sa.Column("messages_failed", sa.BigInteger(), nullable=False),
        sa.Column("processing_time_ms", sa.Double(), nullable=False),
        sa.Column("max_processing_time_ms", sa.Double(), nullable=False),
        sa.CheckConstraint("bucket_seconds IN (60, 300, 1800)", name=op.f(f"ck_{ROLLUP}_bucket_seconds")),
        sa.PrimaryKeyConstraint("bucket_seconds", "bucket_start", "service_name", name=op.f(f"pk_{ROLLUP}")),
    )
    op.create_entity(entity("processing_metrics_rollup_sync", 1))
    # Writers wait until this commits, so no batch is summed twice or missed between the
    # backfill and the triggers.
    op.execute(f"LOCK TABLE public.{METRICS} IN SHARE ROW EXCLUSIVE MODE")
    op.execute(_BACKFILL)
    for name in ROLLUP_TRIGGERS:
        op.create_entity(entity(name, 1))
    op.create_entity(entity("processing_metrics_last_hour", 1))
    # Same columns: replaced in place, v_consumer_alerts over it stays (and formats only the
    # messages of active alerts from now on).
    op.replace_entity(entity("v_consumer_performance_monitor", 5))
    op.replace_entity(entity("v_consumer_alerts", 4))


def downgrade() -> None:
    op.replace_entity(entity("v_consumer_alerts", 3))
    op.replace_entity(entity("v_consumer_performance_monitor", 4))
    op.drop_entity(entity("processing_metrics_last_hour", 1))
    for name in reversed(ROLLUP_TRIGGERS):
        op.drop_entity(entity(name, 1))
    op.drop_entity(entity("processing_metrics_rollup_sync", 1))
    op.drop_table(ROLLUP)
    op.replace_entity(entity("refresh_lag_partition_status", 1))
    op.drop_entity(entity("lag_group_status", 1))
    op.drop_entity(entity("lag_group_status_live", 1))
    op.replace_entity(entity("lag_partition_status", 4))
    for name in ("lag_objectives_digest", "lag_objectives", "lag_status_cache_current"):
        op.drop_entity(entity(name, 1))
    op.drop_column("lag_status_cache", "objectives")
    op.drop_table("lag_status_cache_groups")
