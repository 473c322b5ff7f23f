"""Tuned Kafka consumers for services: settings from `pipeline_consumer_configs`, metrics back.

    from loomctl.loader import KafkaConsumerConfigLoader
    pool = AsyncConnectionPool(DATABASE_URL)          # psycopg_pool; opened
    loader = KafkaConsumerConfigLoader(pool)
    consumer = await loader.create_consumer(service_name="speech-processor", topics=["device.audio.raw"],
                                            bootstrap_servers="kafka:9092")
    async for messages in loader.poll_with_limit(consumer, "speech-processor"):
        async with loader.track_batch("speech-processor", messages) as batch:
            for msg in messages:
                process(msg)                          # batch.failed += 1 for a message that failed

`ConsumerConfigLoader` is the same over a psycopg Connection or ConnectionPool, without asyncio.

A service must start while the config database is down: the loader then uses the config it last
saved on local disk (else the defaults), logs a warning, and tries the database again after
`retry_seconds`; a config read from the database is re-read after `ttl_seconds`.

This module imports psycopg, confluent-kafka, the field table and its validation only (no Typer, rich or
SQLAlchemy).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loomctl.consumer_config import DEFAULTS, FIELDS_BY_NAME, librdkafka_properties
from loomctl.settings import ENV_BOOTSTRAP_SERVERS, ENV_KAFKA_CONFIG, read_properties_file
from loomctl.validation import SERVICE_NAME

log = logging.getLogger("loomctl.loader")

ENV_CACHE_DIR = "LOOM_CONFIG_CACHE_DIR"
DEFAULT_TTL_SECONDS = 60.0
DEFAULT_RETRY_SECONDS = 10.0
DEFAULT_CONNECT_TIMEOUT_SECONDS = 5.0

_SETTINGS_SQL = (
    "SELECT service_name, consumer_group_id, version, "
    + ", ".join(FIELDS_BY_NAME)
    + " FROM pipeline_consumer_configs WHERE service_name = %s"
)
_RECOMMENDATIONS_SQL = (
    "SELECT service_name, consumer_group_id, profile, status, total_lag, avg_lag, messages_per_second,"
    " batch_efficiency, poll_interval_usage, error_rate, recommendation"
    " FROM v_consumer_performance_monitor WHERE recommendation IS NOT NULL ORDER BY service_name"
)
_METRICS_SQL = "SELECT record_processing_metrics(%s, %s, %s, %s, %s, %s, %s)"


@dataclass(frozen=True)
class ConsumerSettings(Mapping[str, Any]):
    """One service's settings, readable like the guide's dict: ``config['max_poll_records']``."""

    service_name: str
    consumer_group_id: str
    settings: dict[str, Any]
    version: int | None
    source: str  # database, memory, cache (local disk) or defaults
    loaded_at: float = field(default_factory=time.time)

    def __getitem__(self, key: str) -> Any:
        return self.settings[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.settings)

    def __len__(self) -> int:
        return len(self.settings)

    @property
    def max_poll_records(self) -> int:
        return int(self.settings["max_poll_records"])

    def librdkafka(self) -> dict[str, str]:
        """What librdkafka receives for these settings, group id included (no servers, no secrets)."""
        return {"group.id": self.consumer_group_id, **librdkafka_properties(self.settings)}


@dataclass
class BatchMetrics:
    """What `track_batch` records; set ``failed`` (or ``processed``) while handling the batch."""

    service_name: str
    batch_size: int
    failed: int = 0
    processed: int | None = None
    topic_name: str | None = None
    processing_time_ms: float = 0.0


def default_cache_dir() -> Path:
    if os.environ.get(ENV_CACHE_DIR):
        return Path(os.environ[ENV_CACHE_DIR])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "loomctl" / "consumer-configs"


class _Core:
    """What the async and sync loaders share: the TTL, the disk cache and the client properties."""

    def __init__(
        self,
        *,
        cache_dir: Path | str | None = None,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        retry_seconds: float = DEFAULT_RETRY_SECONDS,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_SECONDS,
        kafka_config: Path | str | None = None,
        poll_timeout: float = 1.0,
    ) -> None:
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.ttl_seconds = ttl_seconds
        self.retry_seconds = retry_seconds
        self.connect_timeout = connect_timeout
        self.kafka_config = (
            Path(kafka_config)
            if kafka_config
            else (Path(os.environ[ENV_KAFKA_CONFIG]) if os.environ.get(ENV_KAFKA_CONFIG) else None)
        )
        self.poll_timeout = poll_timeout
        self._memory: dict[str, tuple[ConsumerSettings, float]] = {}  # name -> (settings, monotonic expiry)
        self._lock = threading.Lock()

    # -- cache --

    def _fresh(self, service_name: str) -> ConsumerSettings | None:
        with self._lock:
            entry = self._memory.get(service_name)
        if entry and time.monotonic() < entry[1]:
            return entry[0]
        return None

    def _remember(self, config: ConsumerSettings, seconds: float) -> ConsumerSettings:
        with self._lock:
            self._memory[config.service_name] = (config, time.monotonic() + seconds)
        return config

    def _cache_path(self, service_name: str) -> Path | None:
        """The service's file in the cache folder, None if it would lie anywhere else.

        A service name is a file name only when it is one by the table's own rule (no ``/``, no
        leading dot, at most 249 characters); any other name, which the caller may pass but the
        table cannot hold, is hashed, so no name reaches outside the folder.
        """
        if SERVICE_NAME.fullmatch(service_name):
            file_name = f"{service_name}.json"
        else:
            digest = hashlib.sha256(service_name.encode("utf-8", "surrogatepass")).hexdigest()
            file_name = f"_{digest}.json"  # "_" starts no valid service name: no clash with one
        path = self.cache_dir / file_name
        try:
            inside = path.resolve().parent == self.cache_dir.resolve()
        except (OSError, RuntimeError):  # a symlink loop
            inside = False
        if not inside:
            log.warning("not using the consumer config cache file %s: it lies outside %s", path, self.cache_dir)
            return None
        return path

    def _save(self, config: ConsumerSettings) -> None:
        document = {
            "service_name": config.service_name,
            "consumer_group_id": config.consumer_group_id,
            "version": config.version,
            "loaded_at": config.loaded_at,
            "settings": config.settings,
        }
        path = self._cache_path(config.service_name)
        if path is None:
            return
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile("w", dir=self.cache_dir, suffix=".tmp", delete=False, encoding="utf-8") as tmp:
                json.dump(document, tmp)
            os.replace(tmp.name, path)  # atomic: a reader never sees half a file
        except OSError as exc:
            log.warning("cannot write the consumer config cache %s: %s", self.cache_dir, exc)

    def _load_cached(self, service_name: str) -> ConsumerSettings | None:
        path = self._cache_path(service_name)
        if path is None:
            return None
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            if document["service_name"] != service_name:  # another name's file (a hash clash, a copied file)
                log.warning("ignoring the cached config %s: it belongs to another service", path)
                return None
            settings = {k: v for k, v in document["settings"].items() if k in FIELDS_BY_NAME}
            return ConsumerSettings(
                service_name,
                document["consumer_group_id"],
                {**DEFAULTS, **settings},
                document.get("version"),
                "cache",
                document.get("loaded_at", 0.0),
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring the unreadable cached config %s: %s", path, exc)
            return None

    def _from_row(self, service_name: str, row: Sequence[Any] | None) -> ConsumerSettings:
        if row is None:
            log.warning("no consumer config for %s in pipeline_consumer_configs: using the defaults", service_name)
            return ConsumerSettings(service_name, service_name, dict(DEFAULTS), None, "defaults")
        names = ["service_name", "consumer_group_id", "version", *FIELDS_BY_NAME]
        values = dict(zip(names, row, strict=True))
        settings = {name: values[name] for name in FIELDS_BY_NAME}
        return ConsumerSettings(service_name, values["consumer_group_id"], settings, values["version"], "database")

    def _loaded(self, config: ConsumerSettings) -> ConsumerSettings:
        if config.source == "database":
            self._save(config)
            return self._remember(config, self.ttl_seconds)
        return self._remember(config, self.retry_seconds)

    def _fallback(self, service_name: str, exc: BaseException) -> ConsumerSettings:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        with self._lock:
            stale = self._memory.get(service_name)
        config = stale[0] if stale and stale[0].source != "defaults" else self._load_cached(service_name)
        if config is not None:
            log.warning(
                "config database unavailable (%s): using the cached config of %s (version %s) and retrying in %ss",
                reason,
                service_name,
                config.version,
                self.retry_seconds,
            )
        else:
            log.warning(
                "config database unavailable (%s) and no cached config for %s: using the defaults, retrying in %ss",
                reason,
                service_name,
                self.retry_seconds,
            )
            config = ConsumerSettings(service_name, service_name, dict(DEFAULTS), None, "defaults")
        return self._remember(config, self.retry_seconds)

    # -- Kafka --

    def _metrics_params(
        self,
        service_name: str,
        batch_size: int,
        processing_time_ms: float,
        failed: int,
        processed: int | None,
        topic_name: str | None,
    ) -> tuple[Any, ...]:
        """The arguments of record_processing_metrics(); the group only when the config came from the database."""
        config = self._fresh(service_name)
        group = config.consumer_group_id if config and config.source != "defaults" else None
        if processed is None:
            processed = max(batch_size - failed, 0)
        return (service_name, batch_size, processed, float(processing_time_ms), failed, group, topic_name)

    def consumer_properties(
        self, config: ConsumerSettings, bootstrap_servers: str | None, overrides: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        """Security properties (LOOM_KAFKA_CONFIG), then the tuned settings, then explicit overrides."""
        props: dict[str, Any] = {}
        if self.kafka_config is not None:
            props.update(read_properties_file(self.kafka_config))
        servers = bootstrap_servers or os.environ.get(ENV_BOOTSTRAP_SERVERS)
        if servers:
            props["bootstrap.servers"] = servers
        if "bootstrap.servers" not in props:
            raise ValueError(
                f"no Kafka bootstrap servers: pass bootstrap_servers, set {ENV_BOOTSTRAP_SERVERS} "
                f"or put bootstrap.servers in the {ENV_KAFKA_CONFIG} file"
            )
        props.update(config.librdkafka())
        props.update(overrides or {})
        return props

    def _consumer(self, props: Mapping[str, Any], topics: Sequence[str]) -> Any:
        from confluent_kafka import Consumer

        consumer = Consumer(dict(props))
        if topics:
            consumer.subscribe(list(topics))
        return consumer

    @staticmethod
    def _good(messages: Sequence[Any]) -> list[Any]:
        from confluent_kafka import KafkaError

        good = []
        for msg in messages:
            error = msg.error()
            if error is None:
                good.append(msg)
            elif error.code() != KafkaError._PARTITION_EOF:
                log.warning("consumer error on %s [%s]: %s", msg.topic(), msg.partition(), error)
        return good


def _topic_of(messages: Sequence[Any]) -> str | None:
    topics = {m.topic() for m in messages}
    return topics.pop() if len(topics) == 1 else None


class KafkaConsumerConfigLoader(_Core):
    """The guide's loader over a psycopg_pool.AsyncConnectionPool (opened by the caller)."""

    def __init__(self, pool: Any, **options: Any) -> None:
        super().__init__(**options)
        self.pool = pool

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[Any]:
        async with self.pool.connection(timeout=self.connect_timeout) as conn:
            yield conn

    async def load_config(self, service_name: str) -> ConsumerSettings:
        """The service's settings: from memory within the TTL, else the database, else the disk cache."""
        import psycopg

        fresh = self._fresh(service_name)
        if fresh is not None:
            return fresh
        try:
            async with self._connection() as conn:
                cur = await conn.execute(_SETTINGS_SQL, [service_name])
                row = await cur.fetchone()
        except (psycopg.Error, OSError, asyncio.TimeoutError) as exc:
            return self._fallback(service_name, exc)
        return self._loaded(self._from_row(service_name, row))

    async def create_consumer(
        self,
        service_name: str,
        topics: Sequence[str],
        bootstrap_servers: str | None = None,
        config_overrides: Mapping[str, Any] | None = None,
    ) -> Any:
        """A confluent_kafka.Consumer with the service's settings, subscribed to ``topics``."""
        config = await self.load_config(service_name)
        props = self.consumer_properties(config, bootstrap_servers, config_overrides)
        return await asyncio.to_thread(self._consumer, props, topics)

    async def poll_with_limit(
        self, consumer: Any, service_name: str, *, timeout: float | None = None, yield_empty: bool = False
    ) -> AsyncIterator[list[Any]]:
        """Batches of at most max_poll_records (re-read after the TTL); consume() runs in a thread."""
        while True:
            config = await self.load_config(service_name)
            messages = await asyncio.to_thread(
                consumer.consume, num_messages=config.max_poll_records, timeout=timeout or self.poll_timeout
            )
            good = self._good(messages)
            if good or yield_empty:
                yield good

    async def get_processing_recommendations(self) -> list[dict[str, Any]]:
        """Rows of v_consumer_performance_monitor that carry a recommendation, as dicts."""
        from psycopg.rows import dict_row

        async with self._connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(_RECOMMENDATIONS_SQL)
            return list(await cur.fetchall())

    async def record_processing_metrics(
        self,
        service_name: str,
        batch_size: int,
        processing_time_ms: float,
        messages_failed: int = 0,
        messages_processed: int | None = None,
        topic_name: str | None = None,
    ) -> int | None:
        """Store one batch's metrics; a database outage is logged, never raised into the service."""
        import psycopg

        params = self._metrics_params(
            service_name, batch_size, processing_time_ms, messages_failed, messages_processed, topic_name
        )
        try:
            async with self._connection() as conn:
                cur = await conn.execute(_METRICS_SQL, params)
                row = await cur.fetchone()
                return row[0] if row else None
        except (psycopg.Error, OSError, asyncio.TimeoutError) as exc:
            log.warning("cannot record processing metrics of %s: %s", service_name, exc)
            return None

    @contextlib.asynccontextmanager
    async def track_batch(self, service_name: str, messages: Sequence[Any]) -> AsyncIterator[BatchMetrics]:
        """Time the block and record the batch; an exception counts the whole batch as failed."""
        metrics = BatchMetrics(service_name, len(messages), topic_name=_topic_of(messages))
        started = time.perf_counter()
        try:
            yield metrics
        except BaseException:
            metrics.failed, metrics.processed = len(messages), 0
            raise
        finally:
            metrics.processing_time_ms = (time.perf_counter() - started) * 1000
            await self.record_processing_metrics(
                service_name,
                metrics.batch_size,
                metrics.processing_time_ms,
                metrics.failed,
                metrics.processed,
                metrics.topic_name,
            )


class ConsumerConfigLoader(_Core):
    """The same loader without asyncio, over a psycopg Connection or psycopg_pool.ConnectionPool."""

    def __init__(self, source: Any, **options: Any) -> None:
        super().__init__(**options)
        self.source = source
        self._connection_lock = threading.Lock()  # a single Connection serves one statement at a time

    @contextlib.contextmanager
    def _connection(self) -> Iterator[Any]:
        import psycopg

        if isinstance(self.source, psycopg.Connection):
            with self._connection_lock, self.source.transaction():
                yield self.source
        else:
            with self.source.connection(timeout=self.connect_timeout) as conn:
                yield conn

    def load_config(self, service_name: str) -> ConsumerSettings:
        import psycopg

        fresh = self._fresh(service_name)
        if fresh is not None:
            return fresh
        try:
            with self._connection() as conn:
                row = conn.execute(_SETTINGS_SQL, [service_name]).fetchone()
        except (psycopg.Error, OSError) as exc:
            return self._fallback(service_name, exc)
        return self._loaded(self._from_row(service_name, row))

    def create_consumer(
        self,
        service_name: str,
        topics: Sequence[str],
        bootstrap_servers: str | None = None,
        config_overrides: Mapping[str, Any] | None = None,
    ) -> Any:
        config = self.load_config(service_name)
        return self._consumer(self.consumer_properties(config, bootstrap_servers, config_overrides), topics)

    def poll_with_limit(
        self, consumer: Any, service_name: str, *, timeout: float | None = None, yield_empty: bool = False
    ) -> Iterator[list[Any]]:
        while True:
            config = self.load_config(service_name)
            good = self._good(consumer.consume(num_messages=config.max_poll_records, timeout=timeout or self.poll_timeout))
            if good or yield_empty:
                yield good

    def get_processing_recommendations(self) -> list[dict[str, Any]]:
        from psycopg.rows import dict_row

        with self._connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            cur.execute(_RECOMMENDATIONS_SQL)
            return list(cur.fetchall())

    def record_processing_metrics(
        self,
        service_name: str,
        batch_size: int,
        processing_time_ms: float,
        messages_failed: int = 0,
        messages_processed: int | None = None,
        topic_name: str | None = None,
    ) -> int | None:
        import psycopg

        params = self._metrics_params(
            service_name, batch_size, processing_time_ms, messages_failed, messages_processed, topic_name
        )
        try:
            with self._connection() as conn:
                row = conn.execute(_METRICS_SQL, params).fetchone()
                return row[0] if row else None
        except (psycopg.Error, OSError) as exc:
            log.warning("cannot record processing metrics of %s: %s", service_name, exc)
            return None

    @contextlib.contextmanager
    def track_batch(self, service_name: str, messages: Sequence[Any]) -> Iterator[BatchMetrics]:
        metrics = BatchMetrics(service_name, len(messages), topic_name=_topic_of(messages))
        started = time.perf_counter()
        try:
            yield metrics
        except BaseException:
            metrics.failed, metrics.processed = len(messages), 0
            raise
        finally:
            metrics.processing_time_ms = (time.perf_counter() - started) * 1000
            self.record_processing_metrics(
                service_name,
                metrics.batch_size,
                metrics.processing_time_ms,
                metrics.failed,
                metrics.processed,
                metrics.topic_name,
            )
