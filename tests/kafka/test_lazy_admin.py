"""LazyAdmin: librdkafka's admin client built only when something uses it (pure unit tests: nothing connects)."""

from __future__ import annotations

import copy
import threading

import pytest

from loomctl.errors import BadInput
from loomctl.kafka.clients import LazyAdmin


class _Admin:
    def list_topics(self, timeout: float) -> str:
        return f"topics within {timeout}"


def test_it_is_built_on_first_use_once_even_from_many_threads() -> None:
    built: list[_Admin] = []

    def make() -> _Admin:
        built.append(_Admin())
        return built[-1]

    lazy = LazyAdmin(make)  # type: ignore[arg-type]
    assert not lazy.built and not built
    threads = [threading.Thread(target=lambda: lazy.list_topics(timeout=1)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert lazy.built and len(built) == 1 and lazy.list_topics(timeout=2) == "topics within 2"


def test_a_client_that_cannot_be_built_raises_at_each_use_and_dunders_never_build_it() -> None:
    def refused() -> _Admin:
        raise BadInput("invalid Kafka client configuration: sasl.mechanism")

    lazy = LazyAdmin(refused)  # type: ignore[arg-type]
    for _ in range(2):
        with pytest.raises(BadInput, match="sasl.mechanism"):
            lazy.list_topics(timeout=1)
    assert not lazy.built
    copy.copy(lazy)  # copy looks up __reduce_ex__ and the like: the class's own, never the client's
    assert not hasattr(lazy, "__wrapped__") and not lazy.built
