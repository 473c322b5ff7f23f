"""The running consumers a loader made report the config version they run (consumer_instances, written through
record_consumer_instance and removed by forget_consumer_instance when the service closes the consumer, both SECURITY
DEFINER for loomctl_service), so that `config show` and `config drift` say which running instances have not taken
the newest version yet. loomctl_reader reads the table.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-08 00:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from loomctl.sql_entities import entity

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

FUNCTIONS = ("record_consumer_instance", "forget_consumer_instance")


def upgrade() -> None:
    timestamp = sa.DateTime(timezone=True)
    op.create_table(
        "consumer_instances",
        sa.Column("instance_id", sa.Text(), nullable=False),
        sa.Column("service_name", sa.Text(), nullable=False),
        sa.Column("consumer_group_id", sa.Text()),
        sa.Column("language", sa.Text(), nullable=False),
        sa.Column("host", sa.Text()),
        sa.Column("pid", sa.Integer()),
        sa.Column("config_version", sa.Integer()),
        sa.Column("refused_version", sa.Integer()),
        sa.Column("db_user", sa.Text()),
        sa.Column("started_at", timestamp, server_default=sa.text("now()"), nullable=False),
        sa.Column("reported_at", timestamp, server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("language IN ('python', 'node')", name=op.f("ck_consumer_instances_language")),
        sa.PrimaryKeyConstraint("instance_id", name=op.f("pk_consumer_instances")),
    )
    op.create_index("ix_consumer_instances_service_reported", "consumer_instances", ["service_name", "reported_at"])
    for function in FUNCTIONS:
        op.create_entity(entity(function, 1))
        op.execute(f"REVOKE EXECUTE ON FUNCTION public.{function} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION public.{function} TO loomctl_service")
    op.execute("GRANT SELECT ON public.consumer_instances TO loomctl_reader")


def downgrade() -> None:
    for function in reversed(FUNCTIONS):
        op.drop_entity(entity(function, 1))
    op.drop_index("ix_consumer_instances_service_reported", table_name="consumer_instances")
    op.drop_table("consumer_instances")
