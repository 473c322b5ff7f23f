"""Alembic environment for loomctl: URL from loomctl's settings, models and SQL entities from the code.

Migrations run under a PostgreSQL advisory lock, so two CI jobs (or two `loomctl db upgrade`
runs) against one database migrate one after the other instead of racing.
"""

from __future__ import annotations

import logging.config

from alembic import context
from alembic_utils.replaceable_entity import register_entities
from sqlalchemy import create_engine, pool, text

from loomctl.models import Base
from loomctl.schema import MIGRATION_LOCK_KEY, include_object
from loomctl.settings import Settings, sqlalchemy_url
from loomctl.sql_entities import current_entities

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)

register_entities(current_entities())
target_metadata = Base.metadata


def database_url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    return sqlalchemy_url(url or Settings.from_env().require_database_url())


def run_migrations_offline() -> None:
    context.configure(
        url=database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        include_object=include_object,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_engine(database_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        connection.commit()
        try:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                include_object=include_object,
                transaction_per_migration=False,
            )
            with context.begin_transaction():
                context.run_migrations()
        finally:
            connection.rollback()
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
            connection.commit()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
