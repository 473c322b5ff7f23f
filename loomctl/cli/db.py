"""`loomctl db`: the schema, owned by Alembic (placeholder, being written)."""

from loomctl.cli import new_app

app = new_app("Schema migrations (Alembic), drift checks and offline SQL.")
