"""Which consumer groups the config table names, per service: the groups that lag is read and judged for."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg


def configured_groups(conn: "psycopg.Connection[Any]", services: Sequence[str] = ()) -> dict[str, str]:
    """Group id -> service name of the configured services (all, or the ones named: NotFound for a stranger)."""
    from loomctl import configs

    return configs.group_services(conn, services)


def group_clusters(conn: "psycopg.Connection[Any]") -> dict[str, str]:
    """Group id -> the cluster its service belongs to, for every configured service."""
    return dict(conn.execute("SELECT consumer_group_id, cluster_name FROM public.pipeline_consumer_configs").fetchall())


def select_services(configured: dict[str, str], services: Sequence[str]) -> dict[str, str]:
    """The named services' part of ``configured`` (all of it when none is named); NotFound for a stranger."""
    from loomctl import configs

    if not services:
        return configured
    by_service = {service: group for group, service in configured.items()}
    missing = [s for s in services if s not in by_service]
    if missing:
        raise configs.missing_services(missing)
    return {by_service[s]: s for s in services}
