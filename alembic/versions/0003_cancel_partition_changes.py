"""cancelled partition changes: status 'cancelled' and who cancelled a change, when and why

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 20:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"

TABLE = "topic_partition_changes"
STATUS_CHECK = "status_allowed"
CANCEL_COLUMNS = ("cancelled_at", "cancelled_by", "cancel_reason")


def upgrade() -> None:
    op.drop_constraint(op.f(f"ck_{TABLE}_{STATUS_CHECK}"), TABLE, type_="check")
    op.create_check_constraint(STATUS_CHECK, TABLE, "status IN ('pending', 'applied', 'failed', 'superseded', 'cancelled')")
    op.add_column(TABLE, sa.Column("cancelled_at", sa.TIMESTAMP(timezone=True)))
    op.add_column(TABLE, sa.Column("cancelled_by", sa.Text()))
    op.add_column(TABLE, sa.Column("cancel_reason", sa.Text()))
    op.create_check_constraint(
        "cancelled_matches_status", TABLE, "(status = 'cancelled') = (cancelled_at IS NOT NULL)")


def downgrade() -> None:
    # the older schema has no word for a cancelled change: it is one that will not be applied
    op.execute(f"UPDATE {TABLE} SET status = 'superseded' WHERE status = 'cancelled'")
    op.drop_constraint(op.f(f"ck_{TABLE}_cancelled_matches_status"), TABLE, type_="check")
    for column in CANCEL_COLUMNS:
        op.drop_column(TABLE, column)
    op.drop_constraint(op.f(f"ck_{TABLE}_{STATUS_CHECK}"), TABLE, type_="check")
    op.create_check_constraint(STATUS_CHECK, TABLE, "status IN ('pending', 'applied', 'failed', 'superseded')")
