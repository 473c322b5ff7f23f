"""Fixtures for the `partitions` tests: the session's database and broker, throwaway topics."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from support import Cli, create_topic, delete_topics, unique


@pytest.fixture
def new_topic(admin) -> Iterator[Callable[..., str]]:
    """Creates a topic with a random name (deleted after the test) and returns its name."""
    created: list[str] = []

    def make(partitions: int = 1, prefix: str = "pt") -> str:
        created.append(create_topic(admin, unique(prefix), partitions))
        return created[-1]

    yield make
    delete_topics(admin, created)


@pytest.fixture
def cli(database_url, services) -> Cli:
    return Cli(database_url, services.bootstrap_servers, group=["partitions"])
