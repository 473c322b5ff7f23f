"""Running services hear config changes: each new version of a service's config is notified on the channel
loomctl_config (at commit, for loomctl's changes and raw SQL alike), for the loaders to apply it by its reload class;
a raw SQL UPDATE is told, in a NOTICE, how each changed setting reaches the running services.

consumer_config_reload_class(field, protocol) is generated from the field table (each field's reload class).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 23:50:00.000000
"""

from __future__ import annotations

from alembic import op

from loomctl.sql_entities import entity

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

ENTITIES = (("consumer_config_reload_class", 1), ("consumer_config_notify", 1), ("pipeline_consumer_configs_notify", 1))


def upgrade() -> None:
    for name, version in ENTITIES:
        op.create_entity(entity(name, version))


def downgrade() -> None:
    for name, version in reversed(ENTITIES):
        op.drop_entity(entity(name, version))
