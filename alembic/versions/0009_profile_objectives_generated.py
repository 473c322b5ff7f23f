"""lag_objectives v2: the profiles' default objectives generated from loomctl.consumer_config.PROFILES (as the CHECK
constraints are generated from its fields), where v1 wrote them out in a CASE of its own; the same values, so the
function is replaced in place and nothing kept is stale

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 00:00:00.000000
"""

from __future__ import annotations

from alembic import op

from loomctl.sql_entities import entity

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.replace_entity(entity("lag_objectives", 2))


def downgrade() -> None:
    op.replace_entity(entity("lag_objectives", 1))
