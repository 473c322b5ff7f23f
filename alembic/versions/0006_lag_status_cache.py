"""the lag status of the last collector cycle, kept: lag_status_cache(_rows), lag_partition_status_live,
refresh_lag_partition_status, and lag_partition_status v4 serving the kept copy while it is current

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 00:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from loomctl.sql_entities import entity

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

Timestamp = sa.TIMESTAMP(timezone=True)


def upgrade() -> None:
    # UNLOGGED: a copy the next collector cycle rebuilds; after a crash PostgreSQL empties it and
    # lag_partition_status computes from the history until then (and standbys always do).
    op.create_table(
        "lag_status_cache",
        sa.Column("computed_window", sa.Interval(), nullable=False),
        sa.Column("computed_at", Timestamp, nullable=False),
        sa.Column("latest_sample", Timestamp),
        sa.Column("partitions", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("computed_window", name=op.f("pk_lag_status_cache")),
        prefixes=["UNLOGGED"],
    )
    op.create_table(
        "lag_status_cache_rows",
        sa.Column("service_name", sa.Text()),
        sa.Column("consumer_group_id", sa.Text(), nullable=False),
        sa.Column("topic_name", sa.Text(), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("status", sa.Text()),
        sa.Column("samples", sa.Integer()),
        sa.Column("first_timestamp", Timestamp),
        sa.Column("last_timestamp", Timestamp),
        sa.Column("first_committed_offset", sa.BigInteger()),
        sa.Column("last_committed_offset", sa.BigInteger()),
        sa.Column("first_lag", sa.BigInteger()),
        sa.Column("last_lag", sa.BigInteger()),
        sa.Column("log_end_offset", sa.BigInteger()),
        sa.Column("time_lag_ms", sa.BigInteger()),
        sa.Column("member_count", sa.Integer()),
        sa.Column("group_state", sa.Text()),
        sa.Column("first_log_end_offset", sa.BigInteger()),
        sa.Column("log_start_offset", sa.BigInteger()),
        sa.Column("evidence", sa.Text()),
        sa.Column("group_type", sa.Text()),
        sa.PrimaryKeyConstraint("consumer_group_id", "topic_name", "partition", name=op.f("pk_lag_status_cache_rows")),
        prefixes=["UNLOGGED"],
    )
    op.create_entity(entity("lag_partition_status_live", 1))
    op.create_entity(entity("refresh_lag_partition_status", 1))
    # Same arguments and columns: replaced in place, the views over it stay.
    op.replace_entity(entity("lag_partition_status", 4))


def downgrade() -> None:
    op.replace_entity(entity("lag_partition_status", 3))
    op.drop_entity(entity("refresh_lag_partition_status", 1))
    op.drop_entity(entity("lag_partition_status_live", 1))
    op.drop_table("lag_status_cache_rows")
    op.drop_table("lag_status_cache")
