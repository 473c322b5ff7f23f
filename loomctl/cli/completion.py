"""Shell completion of service names."""

from __future__ import annotations

import typer

from loomctl.settings import Settings

COMPLETION_TIMEOUT_S = 1
"""A shell waits on a completion: a database that does not answer within this gets none."""


def complete_service(ctx: typer.Context, incomplete: str) -> list[str]:
    """Service names from the database of --database-url or LOOM_DATABASE_URL, for shell completion;
    nothing (never an error) when none is configured or it does not answer."""
    url = (ctx.find_root().params or {}).get("database_url") or Settings.from_env().database_url
    if not url:
        return []
    try:
        from loomctl import configs
        from loomctl.db import open_connection

        with open_connection(url, connect_timeout=COMPLETION_TIMEOUT_S, application_name="loomctl completion") as conn:
            conn.execute("SET statement_timeout = 1000")
            names = list(configs.group_services(conn).values())
    except Exception:  # a completion must never print a traceback into the user's shell
        return []
    return [name for name in names if name.startswith(incomplete)]
