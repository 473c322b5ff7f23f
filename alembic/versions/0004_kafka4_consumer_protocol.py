"""Kafka 4 consumer groups: group_protocol and group_remote_assignor per service, the group type in the
lag history and its status, and config pushes in the audit trail

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 23:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from loomctl.sql_entities import entity

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

CONFIGS = "pipeline_consumer_configs"
CHANGES = "consumer_config_changes"
HISTORY = "consumer_lag_history"

# The literals rather than loomctl.consumer_config: a migration keeps what it created.
NEW_SETTINGS = (
    ("group_protocol", "'classic'", "group_protocol IN ('classic', 'consumer')"),
    ("group_remote_assignor", "'uniform'", "group_remote_assignor IN ('uniform', 'range')"),
)

# lag_partition_status returns one more column (group_type), which CREATE OR REPLACE cannot do:
# it and the views over it are dropped (dependents first) and created again.
DROPPED = [("v_consumer_alerts", 2), ("v_consumer_performance_monitor", 2), ("lag_partition_status", 2)]
CREATED = [("lag_partition_status", 3), ("v_consumer_performance_monitor", 3), ("v_consumer_alerts", 2)]


def upgrade() -> None:
    for name, version in DROPPED:
        op.drop_entity(entity(name, version))
    # Existing services keep the classic protocol: the server default fills every row.
    for column, default, check in NEW_SETTINGS:
        op.add_column(CONFIGS, sa.Column(column, sa.Text(), nullable=False, server_default=sa.text(default)))
        op.create_check_constraint(column, CONFIGS, check)
    # A nullable column without a default: adding it to the partitioned history rewrites nothing.
    op.add_column(HISTORY, sa.Column("group_type", sa.Text()))
    # `config push` records what it set on the broker beside the config's own changes.
    op.drop_constraint(op.f(f"ck_{CHANGES}_change_type_allowed"), CHANGES, type_="check")
    op.create_check_constraint("change_type_allowed", CHANGES, "change_type IN ('create', 'update', 'delete', 'push')")
    for name, version in CREATED:
        op.create_entity(entity(name, version))


def downgrade() -> None:
    for name, version in reversed(CREATED):
        op.drop_entity(entity(name, version))
    # the older schema has no word for a push: its record goes with it
    op.execute(f"DELETE FROM {CHANGES} WHERE change_type = 'push'")
    op.drop_constraint(op.f(f"ck_{CHANGES}_change_type_allowed"), CHANGES, type_="check")
    op.create_check_constraint("change_type_allowed", CHANGES, "change_type IN ('create', 'update', 'delete')")
    op.drop_column(HISTORY, "group_type")
    for column, _, _ in reversed(NEW_SETTINGS):
        op.drop_constraint(op.f(f"ck_{CONFIGS}_{column}"), CONFIGS, type_="check")
        op.drop_column(CONFIGS, column)
    for name, version in reversed(DROPPED):
        op.create_entity(entity(name, version))
