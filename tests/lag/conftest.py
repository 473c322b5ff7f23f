"""Fixtures of the exporter tests: a database of the module's own, three groups in known states, a collector serving them."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from served import KnownGroups, RunningCollector, make_groups, start_collector
from support import own_database


@pytest.fixture(scope="module")
def served_db(database_factory) -> Iterator[str]:
    with own_database(database_factory, "loomexp") as url:
        yield url


@pytest.fixture(scope="module")
def known_groups(served_db, services) -> KnownGroups:
    return make_groups(served_db, services.bootstrap_servers)


@pytest.fixture(scope="module")
def served_collector(served_db, services, known_groups, tmp_path_factory) -> Iterator[RunningCollector]:
    running = start_collector(served_db, services.bootstrap_servers, tmp_path_factory.mktemp("exp") / "collector.log",
                              "--cluster-name", "pipeline-eu")
    try:
        running.wait_cycles(2)  # two samples in the window: statuses from the stored window, lag in time known
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def twin_db(database_factory, served_db, known_groups) -> Iterator[str]:
    """A database of its own with the same services, for a collector with other options beside served_collector:
    collectors of one database share its groups, so only one of them serves each group; of two, each serves all."""
    stamped = ("version", "created_at", "updated_at", "updated_by")
    with own_database(database_factory, "loomtwin") as url:
        with psycopg.connect(served_db) as source, psycopg.connect(url, autocommit=True) as target:
            columns = [c for (c,) in source.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'pipeline_consumer_configs'"
            ) if c not in stamped]
            rows = source.execute(f"SELECT {', '.join(columns)} FROM pipeline_consumer_configs").fetchall()
            with target.cursor() as cur:
                cur.executemany(
                    f"INSERT INTO pipeline_consumer_configs ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})",
                    rows,
                )
        yield url
