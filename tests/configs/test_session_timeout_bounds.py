"""A classic group's session timeout against the broker's group.min/max.session.timeout.ms.

The table's CHECK allows up to an hour; the broker (by default) at most 30 minutes, and refuses every
JoinGroup above it. `config set` and `config import` warn of it (configs.broker); a raw SQL UPDATE
cannot be checked, so the loader says so, once, with the broker's bounds, when the broker refuses.
"""

from __future__ import annotations

import json
import logging
import time

import pytest
from psycopg_pool import ConnectionPool
from support import admin_client, create_topic, unique

from loomctl.configs.broker import _check
from loomctl.configs.store import Action, ChangeResult, FieldChange
from loomctl.consumer_config import DEFAULTS
from loomctl.loader import ConsumerConfigLoader

DOWN_URL = "postgresql://loom:secret@127.0.0.1:1/loom?connect_timeout=2"
BROKER = {
    "group.min.session.timeout.ms": "6000",
    "group.max.session.timeout.ms": "30000",
    "group.consumer.min.session.timeout.ms": "45000",
    "group.consumer.max.session.timeout.ms": "60000",
    "group.consumer.min.heartbeat.interval.ms": "5000",
    "group.consumer.max.heartbeat.interval.ms": "15000",
}


def _result(*changes: FieldChange) -> ChangeResult:
    return ChangeResult("svc", Action.UPDATE, list(changes), 1, 2)


def test_a_switch_back_to_classic_is_checked_against_the_classic_bounds():
    """Inside the consumer protocol's bounds, outside the classic ones: the switch alone brings it under them."""
    after = {**DEFAULTS, "session_timeout_ms": 50_000, "heartbeat_interval_ms": 5_000, "group_protocol": "classic"}
    check = _check(after, _result(FieldChange("group_protocol", "consumer", "classic")), lambda: BROKER)
    assert check.error is not None and check.warning is None  # refused: the broker would refuse every JoinGroup
    assert "session_timeout_ms=50000" in check.error and "group.min/max.session.timeout.ms (6000..30000)" in check.error
    within = {**after, "session_timeout_ms": 20_000}
    fine = _check(within, _result(FieldChange("group_protocol", "consumer", "classic")), lambda: BROKER)
    assert fine.warning is None and fine.error is None
    # a classic change that leaves the session timeout and the protocol alone asks nothing of the broker
    untouched = _check(after, _result(FieldChange("max_poll_records", 1, 2)), lambda: pytest.fail("asked the broker"))
    assert untouched.warning is None and untouched.error is None


@pytest.mark.integration
def test_the_loader_names_the_brokers_bounds_when_it_refuses_the_session_timeout(services, tmp_path, caplog):
    """The guide's raw SQL UPDATE can store session_timeout_ms=3600000: the broker refuses every join."""
    if not services.bootstrap_servers:
        pytest.skip("needs the session's Kafka broker")
    admin = admin_client(services.bootstrap_servers)
    topic = create_topic(admin, unique("loader.refused", 8), 1)
    group = unique("refused-group")
    (tmp_path / "refused-svc.json").write_text(json.dumps({
        "service_name": "refused-svc", "consumer_group_id": group, "version": 2,
        "settings": {**DEFAULTS, "session_timeout_ms": 3_600_000, "max_poll_interval_ms": 3_600_000},
    }))
    caplog.set_level(logging.DEBUG, logger="loomctl.loader")
    try:
        with ConnectionPool(DOWN_URL, min_size=0, max_size=1, open=True) as down:
            loader = ConsumerConfigLoader(down, cache_dir=tmp_path, connect_timeout=1, poll_timeout=0.5)
            consumer = loader.create_consumer("refused-svc", [topic], bootstrap_servers=services.bootstrap_servers)
            try:
                deadline = time.monotonic() + 30
                for _ in loader.poll_with_limit(consumer, "refused-svc", yield_empty=True):
                    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
                    if time.monotonic() > deadline or (errors and time.time() > errors[0].created + 5):
                        break  # and a few more refusals after the first
            finally:
                consumer.close()
    finally:
        admin.delete_topics([topic])[topic].result(timeout=30)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors
    assert f"consumer group {group}" in errors[0] and "session_timeout_ms=3600000" in errors[0]
    assert "group.min/max.session.timeout.ms (1000..1800000)" in errors[0]  # the dev broker's bounds
    assert not [r for r in caplog.records if r.levelno == logging.WARNING and "INVALID_SESSION_TIMEOUT" in r.getMessage()]
