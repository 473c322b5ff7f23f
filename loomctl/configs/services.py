"""Which service each configured group belongs to, and the one message for a service with no config: what every
`lag show` and `lag status` reads before anything else, kept apart from the store so that reading it imports no more
than the query (the store's import cost `lag show --all-groups` 7-8 ms)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from loomctl.errors import NotFound

if TYPE_CHECKING:
    import psycopg


def missing_services(names: Iterable[str], hint: str = "see `loomctl config list`") -> NotFound:
    """The one message for services that have no config, with what to do about it."""
    return NotFound(f"no config for service {', '.join(names)} ({hint})")


def group_services(conn: "psycopg.Connection[Any]", services: Sequence[str] = ()) -> dict[str, str]:
    """Group id -> service name of the configured services (all, by service name, or the ones named, in that
    order: NotFound for a stranger). Two columns, not whole configs: every `lag show` reads this, for
    thousands of services."""
    query = "SELECT service_name, consumer_group_id FROM public.pipeline_consumer_configs"
    if not services:
        return {group: service for service, group in conn.execute(query + " ORDER BY service_name")}
    found = dict(conn.execute(query + " WHERE service_name = ANY(%s)", [list(services)]).fetchall())
    missing = [s for s in dict.fromkeys(services) if s not in found]
    if missing:
        raise missing_services(missing)
    return {found[s]: s for s in dict.fromkeys(services)}
