"""The audit trails record the database user (session_user) of every change beside the actor the writer names:
`--actor` documents intent, db_user who did it. A trigger on each trail sets it on every insert, loomctl's or raw
SQL's or a row written into the trail by hand, and keeps it on an update.

Changes recorded before this migration: a raw SQL change's actor was its database user, which is copied; loomctl's
database user was not recorded, and stays NULL.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 20:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from loomctl.sql_entities import entity

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

TRAILS = ("consumer_config_changes", "kafka_cluster_changes")


def upgrade() -> None:
    for trail in TRAILS:
        op.add_column(trail, sa.Column("db_user", sa.Text()))
        op.execute(f"UPDATE public.{trail} SET db_user = changed_by WHERE source = 'sql'")
    op.create_entity(entity("audit_db_user", 1))
    op.create_entity(entity("consumer_config_changes_db_user", 1))
    op.create_entity(entity("kafka_cluster_changes_db_user", 1))


def downgrade() -> None:
    op.drop_entity(entity("kafka_cluster_changes_db_user", 1))
    op.drop_entity(entity("consumer_config_changes_db_user", 1))
    op.drop_entity(entity("audit_db_user", 1))
    for trail in TRAILS:
        op.drop_column(trail, "db_user")
