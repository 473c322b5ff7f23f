"""Fixtures of the exporter tests: a database of the module's own, three groups in known states, a collector serving them."""

from __future__ import annotations

from collections.abc import Iterator

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
