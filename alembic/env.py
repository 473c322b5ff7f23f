"""Alembic environment for loomctl: URL from loomctl's settings, models and SQL entities from the code.

Migrations run under a PostgreSQL advisory lock, so two CI jobs (or two `loomctl db upgrade`
runs) against one database migrate one after the other instead of racing.
"""

from __future__ import annotations

import logging.config

from alembic import context
from alembic.util import CommandError
from alembic_utils.replaceable_entity import register_entities
from sqlalchemy import text

from loomctl.db import make_engine
from loomctl.errors import LoomError
from loomctl.db.models import Base
from loomctl.db.schema import MIGRATION_LOCK_KEY, include_object
from loomctl.settings import Settings, sqlalchemy_url
from loomctl.db.entities import current_entities

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)

register_entities(current_entities())
target_metadata = Base.metadata


def database_url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    try:
        return sqlalchemy_url(url or Settings.from_env().require_database_url())
    except LoomError as exc:  # plain `alembic` prints a CommandError as one line; loomctl maps it to exit 2
        raise CommandError(str(exc)) from None


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
    # loomctl's connect timeout: a server that accepts TCP but never answers fails the migration
    # within it instead of hanging on the kernel's TCP retries
    engine = make_engine(database_url())
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
