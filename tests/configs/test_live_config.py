"""The guide's UPDATE reaches a Python service that keeps running (issue: live configuration): real PostgreSQL and
Kafka, a consumer the loader made, consuming through poll_with_limit while the config changes under it.

- max_poll_records (live) shows in the next batches, the same client on;
- fetch_max_bytes (recreate) takes a new client at a safe point, and every record is seen exactly once (counted);
- a change the new client refuses puts the consumer back on its last good settings, and is not tried again;
- with LISTEN off, the re-read (the version poll) brings the change;
- a database that goes away changes nothing;
- a service that refuses a class keeps its client, and its callback hears each change."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from psycopg_pool import ConnectionPool
from support import Cli, create_topic, produce, produce_records, unique

from loomctl.live_config import ConfigChange, ManagedConsumer
from loomctl.loader import ConsumerConfigLoader

pytestmark = pytest.mark.integration

DEADLINE_S = 60.0


@pytest.fixture
def pool(database_url: str) -> Iterator[ConnectionPool]:
    with ConnectionPool(database_url, min_size=1, max_size=4, open=True) as opened:
        yield opened


def _service(database_url: str, *settings: str) -> tuple[str, str]:
    service, group = unique("live"), unique("live-group")
    created = Cli(database_url)("config", "set", service, "--create", "--group", group, *settings)
    assert created.exit_code == 0, created.output
    return service, group


def _update(database_url: str, sql: str, service: str) -> float:
    """The guide's raw UPDATE (no loomctl, no actor); the time it committed."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql, (service,))
    return time.monotonic()


def _topic(services: Any, records: int) -> str:
    """A topic of one partition holding ``records`` records."""
    topic = create_topic(services.bootstrap_servers, unique("live-topic"), 1)
    produce(services.bootstrap_servers, topic, {0: records})
    return topic


@contextlib.contextmanager
def _running(loader: ConsumerConfigLoader, service: str, topic: str, services: Any, **create: Any) -> Iterator[Any]:
    """The loader's consumer of ``topic`` for ``service``; consumer and loader closed at the end."""
    consumer = loader.create_consumer(service, [topic], bootstrap_servers=services.bootstrap_servers, **create)
    try:
        yield consumer
    finally:
        consumer.close()
        loader.close()


def _consume(
    loader: ConsumerConfigLoader, consumer: Any, service: str, until: Callable[[list[Any]], bool], work: float = 0.0
) -> list[list[Any]]:
    """Batches from poll_with_limit (empty ones included) until ``until(batch)``, within :data:`DEADLINE_S`; ``work``:
    the seconds a service spends on each record (so that a topic is not read to its end within a re-read)."""
    batches: list[list[Any]] = []
    deadline = time.monotonic() + DEADLINE_S
    for batch in loader.poll_with_limit(consumer, service, timeout=0.5, yield_empty=True):
        batches.append(batch)
        time.sleep(work * len(batch))
        if until(batch) or time.monotonic() > deadline:
            return batches
    return batches


def _tally(already: int, total: int) -> Callable[[list[Any]], bool]:
    """A ``until`` that is true once ``total`` records have come, counting ``already``."""
    count = [already]

    def enough(batch: list[Any]) -> bool:
        count[0] += len(batch)
        return count[0] >= total

    return enough


def test_the_guides_update_of_max_poll_records_shows_in_the_next_batches(
    database_url: str, services: Any, pool: ConnectionPool, tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    service, _ = _service(database_url, "max_poll_records=50", "auto_offset_reset=earliest")
    topic = _topic(services, 3000)
    caplog.set_level(logging.INFO, logger="loomctl.loader")
    loader = ConsumerConfigLoader(pool, cache_dir=tmp_path)  # the TTL (60 s) alone would not bring it in time
    with _running(loader, service, topic, services) as consumer:
        assert isinstance(consumer, ManagedConsumer)
        client = consumer.client
        before = _consume(loader, consumer, service, lambda b: len(b) == 50)
        assert max(len(b) for b in before) == 50
        updated = _update(database_url, "UPDATE pipeline_consumer_configs SET max_poll_records = 5 WHERE service_name = %s", service)
        after = _consume(loader, consumer, service, lambda b: 0 < len(b) <= 5)
        took = time.monotonic() - updated
        assert 0 < len(after[-1]) <= 5, [len(b) for b in after]
        more = _consume(loader, consumer, service, lambda b: len(b) > 0)
        assert 0 < len(more[-1]) <= 5
        assert consumer.client is client  # live: no new client
        print(f"max_poll_records 50 -> 5: first batch under the new setting {took:.2f} s after the UPDATE")
        assert any("max_poll_records 50 -> 5 at the next poll" in r.getMessage() for r in caplog.records), caplog.text


def test_a_fetch_max_bytes_change_recreates_the_client_without_losing_or_repeating_a_record(
    database_url: str, services: Any, pool: ConnectionPool, tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    service, group = _service(database_url, "max_poll_records=100", "auto_offset_reset=earliest")
    topic = create_topic(services.bootstrap_servers, unique("live-topic"), 3)
    total = 3000
    produce_records(services.bootstrap_servers, topic, ({"value": f"r{i}".encode(), "partition": i % 3} for i in range(total)))
    caplog.set_level(logging.INFO, logger="loomctl.loader")
    changes: list[ConfigChange] = []
    loader = ConsumerConfigLoader(pool, cache_dir=tmp_path, on_config_change=changes.append)
    seen: list[bytes] = []
    with _running(loader, service, topic, services) as consumer:
        first = consumer.client
        for batch in _consume(loader, consumer, service, lambda b: len(b) > 0):
            seen += [m.value() for m in batch]
        _update(database_url, "UPDATE pipeline_consumer_configs SET fetch_max_bytes = 2000000 WHERE service_name = %s", service)
        for batch in _consume(loader, consumer, service, lambda b: consumer.client is not first and len(b) > 0):
            seen += [m.value() for m in batch]
        assert consumer.client is not first and consumer.props["fetch.max.bytes"] == "2000000"
        for batch in _consume(loader, consumer, service, _tally(len(seen), total)):
            seen += [m.value() for m in batch]
        # and nothing more comes
        for batch in _consume(loader, consumer, service, lambda b: False if b else True):
            seen += [m.value() for m in batch]
        shown = Cli(database_url)("config", "show", service)
        assert "running: 1 instance(s), 1 on version 2 (the newest)" in shown.stderr, shown.stderr
    assert len(seen) == total and len(set(seen)) == total  # none lost, none twice
    assert "running:" not in Cli(database_url)("config", "show", service).stderr  # closed: no longer running
    assert [c.fields_of("recreate") for c in changes] == [["fetch_max_bytes"]] and changes[0].applied
    assert any("fetch_max_bytes 52428800 -> 2000000 by a new client" in r.getMessage() for r in caplog.records), caplog.text
    committed = Cli(database_url, services.bootstrap_servers).json("lag", "show", service, "--by", "partition")
    assert sum(r["lag"] for r in committed) == 0 and {r["consumer_group_id"] for r in committed} == {group}


def test_a_change_the_new_client_refuses_rolls_back_to_the_last_good_settings(
    database_url: str, services: Any, pool: ConnectionPool, tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The service's own override (a classic session timeout) makes librdkafka refuse a consumer-protocol client."""
    service, _ = _service(database_url, "max_poll_records=20", "auto_offset_reset=earliest")
    topic = _topic(services, 400)
    loader = ConsumerConfigLoader(pool, cache_dir=tmp_path)
    seen = 0
    with _running(loader, service, topic, services, config_overrides={"session.timeout.ms": "30000"}) as consumer:
        for batch in _consume(loader, consumer, service, lambda b: len(b) > 0):
            seen += len(batch)
        first = consumer.client
        _update(database_url, "UPDATE pipeline_consumer_configs SET group_protocol = 'consumer' WHERE service_name = %s", service)
        batches = _consume(loader, consumer, service, lambda b: consumer.refused_versions != set() and len(b) > 0)
        seen += sum(len(b) for b in batches)
        assert consumer.refused_versions and consumer.client is not first  # rebuilt, on the old settings
        # the instance says what it runs: config show and config drift name it as not on the newest version
        shown = Cli(database_url)("config", "show", service)
        assert "running: 1 instance(s), 0 on version 2 (the newest)" in shown.stderr, shown.stderr
        assert "not on version 2 yet: python pid" in shown.stderr and "runs version 1 (its new client refused version 2)" in shown.stderr
        (drift,) = Cli(database_url, services.bootstrap_servers).json("config", "drift", service)
        assert not drift["in_sync"] and len(drift["instances_behind"]) == 1
        assert "1 running instance(s) not on version 2 yet" in drift["drift"]
        assert "group.protocol" not in consumer.props and consumer.config["group_protocol"] == "classic"
        refusals = [r for r in caplog.records if "refused by the new client" in r.getMessage()]
        assert len(refusals) == 1 and refusals[0].levelno == logging.ERROR, caplog.text
        assert "back on version" in refusals[0].getMessage()
        # it goes on consuming, and the refused version is not tried again
        for batch in _consume(loader, consumer, service, _tally(seen, 400)):
            seen += len(batch)
        assert seen >= 400
        assert len([r for r in caplog.records if "refused by the new client" in r.getMessage()]) == 1


def test_without_listen_the_re_read_brings_the_change_and_an_outage_changes_nothing(
    database_url: str, services: Any, tmp_path: Any, database_factory: Any
) -> None:
    from loomctl.db import migrations

    service, _ = _service(database_url, "max_poll_records=40", "auto_offset_reset=earliest")
    topic = _topic(services, 20000)
    with ConnectionPool(database_url, min_size=1, open=True) as pool:
        loader = ConsumerConfigLoader(pool, cache_dir=tmp_path, listen=False, ttl_seconds=1.0)
        consumer = loader.create_consumer(service, [topic], bootstrap_servers=services.bootstrap_servers)
        try:
            _consume(loader, consumer, service, lambda b: len(b) == 40)
            assert loader._listener is None
            _update(database_url, "UPDATE pipeline_consumer_configs SET max_poll_records = 7 WHERE service_name = %s", service)
            after = _consume(loader, consumer, service, lambda b: 0 < len(b) <= 7, work=0.0005)
            assert 0 < len(after[-1]) <= 7
        finally:
            consumer.close()
            loader.close()

    # a database that goes away: the consumer runs on with what it has (the same client, the same settings)
    other = database_factory.create()
    migrations.upgrade(other)
    service2, _ = _service(other, "max_poll_records=30", "auto_offset_reset=earliest")
    with ConnectionPool(other, min_size=1, open=True, timeout=2) as pool:
        loader = ConsumerConfigLoader(pool, cache_dir=tmp_path, ttl_seconds=0.5, retry_seconds=0.5, connect_timeout=1)
        consumer = loader.create_consumer(service2, [topic], bootstrap_servers=services.bootstrap_servers)
        try:
            _consume(loader, consumer, service2, lambda b: len(b) == 30)
            client = consumer.client
            database_factory.drop(other)
            for _ in range(5):  # each batch's read of the config meets the outage
                batches = _consume(loader, consumer, service2, lambda b: len(b) == 30, work=0.0005)
                assert len(batches[-1]) == 30 and consumer.client is client
            assert consumer.config.version == 1 and consumer.props["group.id"] != service2
        finally:
            consumer.close()
            loader.close()


def test_a_service_that_refuses_recreating_keeps_its_client_and_hears_each_change(
    database_url: str, services: Any, pool: ConnectionPool, tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    service, _ = _service(database_url, "max_poll_records=25", "auto_offset_reset=earliest")
    topic = _topic(services, 2000)
    caplog.set_level(logging.INFO, logger="loomctl.loader")
    heard: list[ConfigChange] = []
    loader = ConsumerConfigLoader(pool, cache_dir=tmp_path, refuse={"recreate"}, on_config_change=heard.append)
    with _running(loader, service, topic, services) as consumer:
        _consume(loader, consumer, service, lambda b: len(b) == 25)
        client = consumer.client
        _update(
            database_url,
            "UPDATE pipeline_consumer_configs SET max_poll_records = 4, fetch_max_bytes = 3000000 WHERE service_name = %s",
            service,
        )
        _consume(loader, consumer, service, lambda b: 0 < len(b) <= 4)
        assert consumer.client is client and len(heard) == 1
        assert heard[0].fields_of("live") == ["max_poll_records"] and heard[0].refused_classes == ("recreate",)
        line = next(r.getMessage() for r in caplog.records if "applied" in r.getMessage())
        assert "fetch_max_bytes 52428800 -> 3000000 not applied: the service refuses this class" in line
    with pytest.raises(ValueError, match="refuse takes the reload classes"):
        ConsumerConfigLoader(pool, refuse={"broker"})


def test_a_burst_of_changes_is_applied_once_to_the_newest(
    database_url: str, services: Any, pool: ConnectionPool, tmp_path: Any
) -> None:
    service, _ = _service(database_url, "max_poll_records=60", "auto_offset_reset=earliest")
    topic = _topic(services, 3000)
    heard: list[ConfigChange] = []
    loader = ConsumerConfigLoader(pool, cache_dir=tmp_path, on_config_change=heard.append)
    with _running(loader, service, topic, services) as consumer:
        _consume(loader, consumer, service, lambda b: len(b) == 60)
        gate = threading.Event()

        def burst() -> None:
            with psycopg.connect(database_url, autocommit=True) as conn:
                for size in (50, 40, 30, 20, 9):
                    conn.execute("UPDATE pipeline_consumer_configs SET max_poll_records = %s WHERE service_name = %s", (size, service))
            gate.set()

        # the burst commits while the service is busy with its batch
        writer = threading.Thread(target=burst)
        writer.start()
        assert gate.wait(30)
        writer.join()
        _consume(loader, consumer, service, lambda b: 0 < len(b) <= 9)
        assert len(heard) == 1 and heard[0].changes == {"max_poll_records": (60, 9)}


def test_a_consumer_protocol_services_session_timeout_goes_through_config_push(
    database_url: str, services: Any, pool: ConnectionPool, tmp_path: Any, caplog: pytest.LogCaptureFixture, admin: Any
) -> None:
    """The broker owns a consumer-protocol group's session timeout: the running loader says so and keeps its client;
    `config push` sets it on the broker, and `config drift` agrees once it has."""
    from confluent_kafka.admin import ConfigResource, ResourceType

    service, group = _service(database_url, "group_protocol=consumer", "heartbeat_interval_ms=5000", "auto_offset_reset=earliest")
    topic = _topic(services, 2000)
    caplog.set_level(logging.INFO, logger="loomctl.loader")
    loader = ConsumerConfigLoader(pool, cache_dir=tmp_path)
    cli = Cli(database_url, services.bootstrap_servers, group=["config"])
    with _running(loader, service, topic, services) as consumer:
        _consume(loader, consumer, service, lambda b: len(b) > 0)
        client = consumer.client
        _update(database_url, "UPDATE pipeline_consumer_configs SET session_timeout_ms = 50000 WHERE service_name = %s", service)
        _consume(loader, consumer, service, lambda b: consumer.config["session_timeout_ms"] == 50000)
        assert consumer.client is client  # nothing for the client to do
        line = next(r.getMessage() for r in caplog.records if "applied" in r.getMessage())
        assert "session_timeout_ms 45000 -> 50000 on the broker (loomctl config push)" in line
        (before,) = cli.json("drift", service)
        assert not before["in_sync"] and any("session" in d for d in before["drift"]), before
        pushed = cli("push", service, "--yes")
        assert pushed.exit_code == 0, pushed.output
        resource = ConfigResource(ResourceType.GROUP, group)
        entries = admin.describe_configs([resource])[resource].result(timeout=30)
        assert entries["consumer.session.timeout.ms"].value == "50000"
        (after,) = cli.json("drift", service)
        assert after["in_sync"], after


def test_the_async_loader_follows_the_change_too(database_url: str, services: Any, tmp_path: Any) -> None:
    import asyncio

    from psycopg_pool import AsyncConnectionPool

    from loomctl.loader import KafkaConsumerConfigLoader

    service, _ = _service(database_url, "max_poll_records=30", "auto_offset_reset=earliest")
    topic = _topic(services, 3000)

    async def run() -> tuple[list[int], bool]:
        async with AsyncConnectionPool(database_url, min_size=1, open=False) as pool:
            loader = KafkaConsumerConfigLoader(pool, cache_dir=tmp_path)
            consumer = await loader.create_consumer(service, [topic], bootstrap_servers=services.bootstrap_servers)
            sizes: list[int] = []
            first = consumer.client
            deadline = time.monotonic() + DEADLINE_S
            updated = False
            try:
                async for batch in loader.poll_with_limit(consumer, service, timeout=0.5, yield_empty=True):
                    sizes.append(len(batch))
                    if len(batch) == 30 and not updated:
                        updated = True
                        await asyncio.to_thread(
                            _update, database_url,
                            "UPDATE pipeline_consumer_configs SET max_poll_records = 7, fetch_max_bytes = 2000000"
                            " WHERE service_name = %s", service,
                        )  # fmt: skip
                    if (0 < len(batch) <= 7) or time.monotonic() > deadline:
                        break
                return sizes, consumer.client is not first
            finally:
                await asyncio.to_thread(consumer.close)
                loader.close()

    sizes, recreated = asyncio.run(run())
    assert 0 < sizes[-1] <= 7 and recreated, sizes


def test_a_service_that_refuses_live_changes_keeps_its_batch_size(
    database_url: str, services: Any, pool: ConnectionPool, tmp_path: Any
) -> None:
    service, _ = _service(database_url, "max_poll_records=25", "auto_offset_reset=earliest")
    topic = _topic(services, 3000)
    heard: list[ConfigChange] = []
    loader = ConsumerConfigLoader(pool, cache_dir=tmp_path, refuse={"live"}, on_config_change=heard.append)
    with _running(loader, service, topic, services) as consumer:
        _consume(loader, consumer, service, lambda b: len(b) == 25)
        _update(database_url, "UPDATE pipeline_consumer_configs SET max_poll_records = 4 WHERE service_name = %s", service)
        _consume(loader, consumer, service, lambda b: bool(heard))
        after = _consume(loader, consumer, service, lambda b: len(b) > 0)
        assert len(after[-1]) == 25 and heard[0].refused_classes == ("live",)
        assert "max_poll_records 25 -> 4 not applied: the service refuses this class" in heard[0].describe()


def test_a_listener_that_lost_its_connection_listens_again_and_reads_every_config_anew(
    database_url: str, pg: psycopg.Connection, pool: ConnectionPool, tmp_path: Any
) -> None:
    service, _ = _service(database_url, "max_poll_records=25")
    loader = ConsumerConfigLoader(pool, cache_dir=tmp_path)
    try:
        assert loader.load_config(service).source == "database"
        listener = loader._listener
        assert listener is not None and listener.listening.wait(30)
        assert pg.execute("SELECT pg_terminate_backend(%s)", (listener.backend_pid,)).fetchone() == (True,)
        deadline = time.monotonic() + 30
        while listener.listening.is_set() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert listener.listening.wait(30)  # again, after RECONNECT_SECONDS
        # a change it could have missed meanwhile: the next use reads the row
        deadline = time.monotonic() + 30
        while loader._fresh(service) is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert loader._fresh(service) is None
    finally:
        loader.close()


def test_a_loader_that_is_gone_takes_its_listening_connection_with_it(
    database_url: str, pg: psycopg.Connection, pool: ConnectionPool, tmp_path: Any
) -> None:
    """A service that makes a loader per call and never closes it must not pile up connections."""
    import gc

    service, _ = _service(database_url, "max_poll_records=25")
    loader = ConsumerConfigLoader(pool, cache_dir=tmp_path)
    loader.load_config(service)
    listener = loader._listener
    assert listener is not None and listener.listening.wait(30)
    pid = listener.backend_pid

    def alive() -> bool:
        return pg.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone() == (1,)

    assert alive()
    del loader
    gc.collect()
    deadline = time.monotonic() + 30
    while alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive()
