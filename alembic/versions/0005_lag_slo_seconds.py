"""Lag objectives in seconds: pipeline_consumer_configs.lag_slo_seconds, and the monitor and alerts views
judging each service against it (catch-up, breach, slo_state; the alerts slo_breached and slo_at_risk)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 00:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from loomctl.sql_entities import entity

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

CONFIGS = "pipeline_consumer_configs"
# The literal rather than loomctl.lag.slo's bounds: a migration keeps what it created.
OBJECTIVE_CHECK = "lag_slo_seconds IS NULL OR lag_slo_seconds BETWEEN 1 AND 604800"

# The monitor view gains columns in the middle of its list and the alerts view depends on it:
# both are dropped (dependents first) and created again.
DROPPED = [("v_consumer_alerts", 2), ("v_consumer_performance_monitor", 3)]
CREATED = [("v_consumer_performance_monitor", 4), ("v_consumer_alerts", 3)]


def upgrade() -> None:
    for name, version in DROPPED:
        op.drop_entity(entity(name, version))
    # NULL: the profile's default objective (or none); the audit trigger records it like every column.
    op.add_column(CONFIGS, sa.Column("lag_slo_seconds", sa.Integer()))
    op.create_check_constraint("lag_slo_seconds_range", CONFIGS, OBJECTIVE_CHECK)
    for name, version in CREATED:
        op.create_entity(entity(name, version))


def downgrade() -> None:
    for name, version in reversed(CREATED):
        op.drop_entity(entity(name, version))
    op.drop_constraint(op.f(f"ck_{CONFIGS}_lag_slo_seconds_range"), CONFIGS, type_="check")
    op.drop_column(CONFIGS, "lag_slo_seconds")
    for name, version in reversed(DROPPED):
        op.create_entity(entity(name, version))
