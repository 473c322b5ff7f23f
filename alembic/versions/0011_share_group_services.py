"""Share-group services: group_protocol may be 'share' (KIP-932), whose broker owns the record lock duration
(record_lock_duration_ms) besides the session timeout, heartbeat, offset reset and isolation level; a share
group starts at the earliest or the latest offset, never "none".

Every existing row keeps its protocol; the new column's constant default is stored without rewriting the rows.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 17:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

CONFIGS = "pipeline_consumer_configs"

# The literals rather than loomctl.consumer_config: a migration keeps what it created.
PROTOCOLS_BEFORE = "group_protocol IN ('classic', 'consumer')"
PROTOCOLS_AFTER = "group_protocol IN ('classic', 'consumer', 'share')"
LOCK_DURATION = "record_lock_duration_ms BETWEEN 1000 AND 3600000"
SHARE_OFFSET_RESET = "group_protocol <> 'share' OR auto_offset_reset IN ('earliest', 'latest')"


def upgrade() -> None:
    op.drop_constraint(op.f(f"ck_{CONFIGS}_group_protocol"), CONFIGS, type_="check")
    op.create_check_constraint("group_protocol", CONFIGS, PROTOCOLS_AFTER)
    op.add_column(CONFIGS, sa.Column("record_lock_duration_ms", sa.Integer(), nullable=False, server_default=sa.text("30000")))
    op.create_check_constraint("record_lock_duration_ms", CONFIGS, LOCK_DURATION)
    op.create_check_constraint("share_offset_reset", CONFIGS, SHARE_OFFSET_RESET)


def downgrade() -> None:
    # the older schema has no share-group service: such a service goes back to classic (its settings are kept)
    op.drop_constraint(op.f(f"ck_{CONFIGS}_share_offset_reset"), CONFIGS, type_="check")
    op.drop_constraint(op.f(f"ck_{CONFIGS}_record_lock_duration_ms"), CONFIGS, type_="check")
    op.drop_column(CONFIGS, "record_lock_duration_ms")
    op.execute(f"UPDATE {CONFIGS} SET group_protocol = 'classic' WHERE group_protocol = 'share'")
    op.drop_constraint(op.f(f"ck_{CONFIGS}_group_protocol"), CONFIGS, type_="check")
    op.create_check_constraint("group_protocol", CONFIGS, PROTOCOLS_BEFORE)
