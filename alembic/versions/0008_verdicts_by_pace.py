"""verdicts that judge each partition against its own pace: lag_partition_status_live v2 (STOP when nobody is left
and the wait since the last commit outgrows the usual one, STALL after three usual waits, REWIND until the old
high is passed again, an earlier zero lag no longer hiding either, a single sample with lag unknown rather than
OK) and lag_group_status_live v2 ranking that unknown; the kept copy is dropped so that nothing judged by the old
rules is served

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 00:00:00.000000
"""

from __future__ import annotations

from alembic import op

from loomctl.sql_entities import entity

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def _forget_kept_statuses() -> None:
    # the copy was judged by the rules being replaced; lag_partition_status computes from the history
    # until the next collector cycle keeps it again
    op.execute("DELETE FROM public.lag_status_cache")


def upgrade() -> None:
    # Same arguments and columns: replaced in place, lag_partition_status and the views over it stay.
    op.replace_entity(entity("lag_partition_status_live", 2))
    op.replace_entity(entity("lag_group_status_live", 2))
    _forget_kept_statuses()


def downgrade() -> None:
    op.replace_entity(entity("lag_group_status_live", 1))
    op.replace_entity(entity("lag_partition_status_live", 1))
    _forget_kept_statuses()
