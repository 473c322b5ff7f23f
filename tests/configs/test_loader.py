"""loomctl.loader: settings from the real database, a real consumer on the real broker, metrics back."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import time

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from support import admin_client, create_topic, produce_records, unique

from loomctl.consumer_config import DEFAULTS
from loomctl.loader import ConsumerConfigLoader, KafkaConsumerConfigLoader

pytestmark = pytest.mark.integration

DOWN_URL = "postgresql://loom:secret@127.0.0.1:1/loom?connect_timeout=2"


def test_importing_the_loader_imports_no_typer_rich_or_sqlalchemy():
    code = "import sys, loomctl.loader; print(','.join(m for m in ('typer', 'rich', 'sqlalchemy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""


@pytest.fixture
def configured(pg, service):
    """A service stored with non-default settings, as `config set` would leave it."""
    pg.execute(
        "INSERT INTO pipeline_consumer_configs (service_name, consumer_group_id, max_poll_records, auto_offset_reset,"
        " retry_backoff_ms, fetch_max_wait_ms) VALUES (%s, %s, 7, 'earliest', 5000, 100)",
        [service, f"{service}-group"],
    )
    return service


def test_sync_loader_reads_caches_and_rereads_after_the_ttl(database_url, pg, configured, tmp_path):
    with psycopg.connect(database_url) as conn:
        loader = ConsumerConfigLoader(conn, cache_dir=tmp_path, ttl_seconds=0.5, listen=False)  # the TTL alone: no LISTEN
        config = loader.load_config(configured)
        assert config["max_poll_records"] == 7 and config.source == "database" and config.version == 1
        props = config.librdkafka()
        assert props["group.id"] == f"{configured}-group" and "max.poll.records" not in props
        assert props["fetch.wait.max.ms"] == "100" and props["socket.timeout.ms"] == "30000"
        assert props["retry.backoff.max.ms"] == "5000"
        assert json.loads((tmp_path / f"{configured}.json").read_text())["settings"]["max_poll_records"] == 7
        pg.execute("UPDATE pipeline_consumer_configs SET max_poll_records = 9 WHERE service_name = %s", [configured])
        assert loader.load_config(configured)["max_poll_records"] == 7  # within the TTL
        time.sleep(0.6)
        assert loader.load_config(configured)["max_poll_records"] == 9
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


def test_loader_starts_with_the_database_down_from_the_disk_cache_else_defaults(database_url, configured, tmp_path, caplog):
    with ConnectionPool(database_url, min_size=1, open=True) as pool:
        ConsumerConfigLoader(pool, cache_dir=tmp_path).load_config(configured)
    caplog.set_level(logging.WARNING, logger="loomctl.loader")
    with ConnectionPool(DOWN_URL, min_size=0, max_size=1, open=True) as down:
        loader = ConsumerConfigLoader(down, cache_dir=tmp_path, connect_timeout=1, retry_seconds=0)
        started = time.monotonic()
        config = loader.load_config(configured)
        assert time.monotonic() - started < 10
        assert config.source == "cache" and config["max_poll_records"] == 7
        assert config.consumer_group_id == f"{configured}-group"
        assert "using the cached config" in caplog.text and "secret" not in caplog.text
        other = loader.load_config("never-seen-service")
        assert other.source == "defaults" and dict(other) == dict(DEFAULTS)
        assert "using the defaults" in caplog.text
        consumer = loader.create_consumer(configured, [], bootstrap_servers="127.0.0.1:9")
        consumer.close()
        assert loader.record_processing_metrics(configured, 10, 5.0) is None  # logged, not raised


def test_async_loader_with_the_database_down(configured, tmp_path, caplog):
    async def main():
        async with AsyncConnectionPool(DOWN_URL, min_size=0, max_size=1, open=False) as pool:
            loader = KafkaConsumerConfigLoader(pool, cache_dir=tmp_path, connect_timeout=1)
            return await loader.load_config(configured)

    caplog.set_level(logging.WARNING, logger="loomctl.loader")
    config = asyncio.run(main())
    assert config.source == "defaults" and "config database unavailable" in caplog.text


def test_recommendations_and_metrics_through_the_async_loader(database_url, configured, tmp_path, pg):
    async def main():
        async with AsyncConnectionPool(database_url, min_size=1, open=False) as pool:
            loader = KafkaConsumerConfigLoader(pool, cache_dir=tmp_path)
            config = await loader.load_config(configured)
            # the slowest batch took 90% of max_poll_interval_ms: the view recommends a change
            await loader.record_processing_metrics(configured, 7, config["max_poll_interval_ms"] * 0.9, messages_failed=0)
            return await loader.get_processing_recommendations()

    recommendations = asyncio.run(main())
    mine = [r for r in recommendations if r["service_name"] == configured]
    assert len(mine) == 1 and "max_poll_interval_ms" in mine[0]["recommendation"]
    for rec in recommendations:  # the guide's loop
        assert f"{rec['service_name']}: {rec['recommendation']}"
    row = pg.execute("SELECT consumer_group_id, batch_size, messages_processed FROM consumer_processing_metrics"
                     " WHERE service_name = %s", [configured]).fetchone()
    assert row == (f"{configured}-group", 7, 7)


@pytest.fixture
def topic(services):
    if not services.bootstrap_servers:
        pytest.skip("needs the session's Kafka broker")
    admin = admin_client(services.bootstrap_servers)
    name = create_topic(admin, unique("loader.test", 8), 2)
    produce_records(services.bootstrap_servers, name, ({"key": str(i % 4).encode(), "value": f"message {i}".encode()}
                                                       for i in range(40)))
    yield name
    admin.delete_topics([name])[name].result(timeout=30)


def test_a_real_consumer_from_the_loader_consumes_in_limited_batches_and_records_metrics(
    services, database_url, configured, topic, tmp_path, pg
):
    async def main():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        tick_task = asyncio.create_task(ticker())
        batches = []
        async with AsyncConnectionPool(database_url, min_size=1, open=False) as pool:
            loader = KafkaConsumerConfigLoader(pool, cache_dir=tmp_path)
            consumer = await loader.create_consumer(
                service_name=configured, topics=[topic], bootstrap_servers=services.bootstrap_servers
            )
            try:
                deadline = time.monotonic() + 60
                async for messages in loader.poll_with_limit(consumer, configured):
                    async with loader.track_batch(configured, messages) as batch:
                        batch.failed = sum(1 for m in messages if m.value().endswith(b"3"))
                    batches.append(len(messages))
                    if sum(batches) >= 40 or time.monotonic() > deadline:
                        break
            finally:
                await asyncio.to_thread(consumer.close)
        tick_task.cancel()
        return batches, ticks

    started = time.monotonic()
    batches, ticks = asyncio.run(main())
    elapsed = time.monotonic() - started
    assert sum(batches) == 40 and max(batches) <= 7 and len(batches) >= 6
    assert ticks > elapsed * 10, "the event loop was blocked while consuming"
    rows = pg.execute(
        "SELECT sum(batch_size), sum(messages_failed), count(*), min(consumer_group_id) FROM consumer_processing_metrics"
        " WHERE service_name = %s", [configured]).fetchone()
    assert rows[0] == 40 and rows[1] == 4 and rows[2] == len(batches) and rows[3] == f"{configured}-group"


ESCAPING_NAMES = ["../../evil", "../evil", "a/b", "..", ".", "", "evil\0name", "x" * 10_000, " spaced", "name\n", "_hidden"]
"""Service names that, used as file names, would leave the cache folder or are no file name at all."""


def _decoys(tmp_path, cache_dir, names):
    """A file with a distinctive setting wherever a naive ``<cache>/<name>.json`` would point."""
    placed = []
    for name in names:
        if "\0" in name or len(name) > 200:
            continue  # no such path can exist: the old code failed to open it
        path = cache_dir / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"service_name": name, "consumer_group_id": "decoy-group", "version": 99,
                                    "settings": {"max_poll_records": 4242}}))
        placed.append(path)
    return placed


def test_the_cache_never_reads_outside_its_folder_while_the_database_is_down(tmp_path, caplog):
    cache_dir = tmp_path / "deep" / "er" / "cache"
    names = [*ESCAPING_NAMES, str(tmp_path / "abs" / "path" / "evil")]
    decoys = _decoys(tmp_path, cache_dir, names)
    assert any(not d.resolve().is_relative_to(cache_dir.resolve()) for d in decoys)
    caplog.set_level(logging.WARNING, logger="loomctl.loader")
    with ConnectionPool(DOWN_URL, min_size=0, max_size=1, open=True) as down:
        loader = ConsumerConfigLoader(down, cache_dir=cache_dir, connect_timeout=1, retry_seconds=0)
        for name in names:
            config = loader.load_config(name)
            assert config.source == "defaults", name
            assert config["max_poll_records"] == DEFAULTS["max_poll_records"] and config.consumer_group_id != "decoy-group"


def test_a_name_the_table_cannot_hold_is_cached_under_a_hash_inside_the_folder(db, tmp_path):
    """A database whose service_name CHECK was dropped (the loader is not the only writer) serves odd names."""
    cache_dir = tmp_path / "deep" / "er" / "cache"
    names = ["../../evil", "a/b", str(tmp_path / "abs" / "evil"), "..", "_hidden"]
    db.execute("ALTER TABLE pipeline_consumer_configs DROP CONSTRAINT ck_pipeline_consumer_configs_service_name_format")
    for i, name in enumerate(names):
        db.execute("INSERT INTO pipeline_consumer_configs (service_name, consumer_group_id, max_poll_records)"
                   " VALUES (%s, %s, %s)", [name, unique("odd-group"), 100 + i])
    decoys = _decoys(tmp_path, cache_dir, names)
    before = {p: p.read_bytes() for p in decoys}
    loader = ConsumerConfigLoader(db, cache_dir=cache_dir)
    for i, name in enumerate(names):
        config = loader.load_config(name)
        assert config.source == "database" and config["max_poll_records"] == 100 + i
    assert {p: p.read_bytes() for p in decoys} == before  # not one decoy overwritten
    decoy_files = {p.resolve() for p in decoys}
    written = [p for p in tmp_path.rglob("*.json") if p.resolve() not in decoy_files]
    assert len(written) == len(names) and all(p.parent == cache_dir for p in written)
    assert all(p.name.startswith("_") and len(p.name) == len("_" + "0" * 64 + ".json") for p in written)

    with ConnectionPool(DOWN_URL, min_size=0, max_size=1, open=True) as down:
        offline = ConsumerConfigLoader(down, cache_dir=cache_dir, connect_timeout=1, retry_seconds=0)
        for i, name in enumerate(names):
            config = offline.load_config(name)
            assert config.source == "cache" and config["max_poll_records"] == 100 + i, name


def test_a_cache_file_that_links_outside_the_folder_is_not_followed(tmp_path, caplog):
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    outside = tmp_path / "outside.json"
    outside.write_text(json.dumps({"service_name": "svc", "consumer_group_id": "decoy-group", "settings": {"max_poll_records": 4242}}))
    (cache_dir / "svc.json").symlink_to(outside)
    caplog.set_level(logging.WARNING, logger="loomctl.loader")
    with ConnectionPool(DOWN_URL, min_size=0, max_size=1, open=True) as down:
        config = ConsumerConfigLoader(down, cache_dir=cache_dir, connect_timeout=1).load_config("svc")
    assert config.source == "defaults" and "outside" in caplog.text
