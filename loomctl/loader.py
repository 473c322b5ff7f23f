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

A config changed while the service runs reaches it (:mod:`loomctl.live_config`): the loader hears each new version
(LISTEN; else the re-read after `ttl_seconds`) and, once every fetched record has been handed out, applies it by
each setting's reload class: max_poll_records with the next batch, a client property by a new client (processed
offsets committed, a clean leave and rejoin; a refused one rolls back). `create_consumer` hands out a
ManagedConsumer for that: every attribute is the current client's. `on_config_change=` hears each change, and
`refuse={"recreate"}` keeps the client whatever changes.

A service must start while the config database is down: the loader then uses the config it last
saved on local disk (else the defaults), logs a warning, and tries the database again after
`retry_seconds`; a config read from the database is re-read after `ttl_seconds`.

The cache never fails a service: only a regular file of at most CACHE_MAX_BYTES is read (a FIFO or a
device is never waited on), and its settings are checked against the field table before any of them
reaches a client: a value of the wrong type or out of range takes the table's default, a file that is
no usable cache (not JSON, another service's, no valid group id, settings that are no object) means
the defaults, each with one warning naming the file and the reason (never a value from it).

A service whose group_protocol is ``share`` gets confluent-kafka's ShareConsumer (KIP-932; a preview in
confluent-kafka 2.15 and 2.16, not yet for production): `poll_with_limit` yields what it hands out in slices of at
most max_poll_records (librdkafka's own limit is soft) and polls again only once every slice is out. With
enable_auto_commit the loader accepts each slice when the service asks for the next one (the consumer runs in
explicit acknowledgement mode, so a slice never handed out is released at close, not accepted); with
enable_auto_commit=false the service acknowledges each record itself.

A classic consumer whose session timeout lies outside the broker's group.min/max.session.timeout.ms
is refused every JoinGroup and gets nothing: `poll_with_limit` says so in one error line that names
the broker's bounds.

This module imports psycopg, confluent-kafka, the field table and its validation only (no Typer, rich or
SQLAlchemy).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
import os
import stat
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loomctl.consumer_config import DEFAULTS, FIELDS, FIELDS_BY_NAME, RULES, Field, librdkafka_properties
from loomctl.errors import BadInput
from loomctl.live_config import FORGET_SQL, INSTANCE_SQL, ConfigChange, Listener, ManagedConsumer, change_between, conninfo_of
from loomctl.settings import ENV_BOOTSTRAP_SERVERS, ENV_KAFKA_CONFIG, read_properties_file
from loomctl.validation import SERVICE_NAME, check_group_id

log = logging.getLogger("loomctl.loader")

ENV_CACHE_DIR = "LOOM_CONFIG_CACHE_DIR"
DEFAULT_TTL_SECONDS = 60.0
DEFAULT_RETRY_SECONDS = 10.0
DEFAULT_CONNECT_TIMEOUT_SECONDS = 5.0
CACHE_MAX_BYTES = 1 << 20
"""The largest cache file read (1 MiB); the loader writes about 1 KB, so anything larger is not its file."""
BOUNDS_TIMEOUT_SECONDS = 5.0
"""How long `poll_with_limit` waits for the broker's session timeout bounds once it has refused a join."""

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

    @property
    def is_share_group(self) -> bool:
        return self.settings.get("group_protocol") == "share"

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


class _Unusable(Exception):
    """Why a cache file cannot be used at all: one sentence that quotes nothing from the file."""


def _read_cache_file(path: Path) -> bytes | None:
    """The file's bytes, None when there is none; _Unusable unless it is a regular file of at most CACHE_MAX_BYTES.

    Opened without blocking (a FIFO without a writer would wait forever) and checked on the open
    descriptor, so what is read is what was checked.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _Unusable(f"it cannot be opened ({exc.strerror or type(exc).__name__})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _Unusable("it is not a regular file")
        if info.st_size > CACHE_MAX_BYTES:
            raise _Unusable(f"it holds {info.st_size:,} bytes, more than the {CACHE_MAX_BYTES:,} a cache file may")
        chunks: list[bytes] = []
        size = 0
        while size <= CACHE_MAX_BYTES:
            chunk = os.read(fd, CACHE_MAX_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > CACHE_MAX_BYTES:  # it grew after the check
            raise _Unusable(f"it holds more than the {CACHE_MAX_BYTES:,} bytes a cache file may")
        return b"".join(chunks)
    except OSError as exc:
        raise _Unusable(f"it cannot be read ({exc.strerror or type(exc).__name__})") from None
    finally:
        os.close(fd)


def _parse_cache(raw: bytes) -> Any:
    try:
        return json.loads(raw.decode("utf-8"))
    except RecursionError:
        raise _Unusable("its JSON nests too deeply") from None
    except ValueError:  # not UTF-8, not JSON, an integer of too many digits
        raise _Unusable("it is not valid JSON") from None


def _fits(f: Field, value: Any) -> bool:
    """Whether ``value`` is one the field table allows for ``f``: its type (a bool is no int) and its range or choices."""
    if f.kind is bool:
        return type(value) is bool
    if f.kind is str:
        return type(value) is str and (f.choices is None or value in f.choices)
    return type(value) is int and (f.minimum is None or value >= f.minimum) and (f.maximum is None or value <= f.maximum)


def _checked_settings(stored: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The settings to use from a cache file's ``settings``, and a note for each that took the table's default.

    A field the file lacks takes its default silently (a field added since the file was written); a
    field the table does not know is ignored. Fields that break a rule together take their defaults.
    """
    settings = dict(DEFAULTS)
    notes = []
    for f in FIELDS:
        if f.name not in stored:
            continue
        if _fits(f, stored[f.name]):
            settings[f.name] = stored[f.name]
        else:
            notes.append(f"{f.name} (not {f.describe_range()})")
    while broken := [r for r in RULES if not r.holds(settings)]:
        for rule in broken:
            reset = [name for name in rule.fields if settings[name] != DEFAULTS[name]]
            settings.update({name: DEFAULTS[name] for name in reset})
            notes.append(f"{' and '.join(reset)} ({rule.reason})")
    return settings, notes


def _seconds(value: Any) -> float:
    """A time stamp from a cache file: a finite number, else 0 (unknown)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0.0
    try:
        seconds = float(value)
    except OverflowError:  # an integer beyond any float
        return 0.0
    return seconds if math.isfinite(seconds) else 0.0


def _cached_config(service_name: str, document: Any, path: Path) -> tuple[ConsumerSettings, str | None]:
    """The config a cache file's document gives, and what of it took the defaults; _Unusable when none."""
    if not isinstance(document, dict):
        raise _Unusable("it holds no JSON object")
    if document.get("service_name") != service_name:  # another name's file (a hash clash, a copied file)
        raise _Unusable("it belongs to another service")
    try:
        group = check_group_id(document.get("consumer_group_id"))
        if not group.strip():  # librdkafka aborts the process on a blank group id
            raise BadInput("blank")
    except BadInput:
        raise _Unusable("its consumer_group_id is no valid consumer group id") from None
    stored = document.get("settings")
    if not isinstance(stored, dict):
        raise _Unusable("its settings are no JSON object")
    settings, notes = _checked_settings(stored)
    version = document.get("version")
    if version is not None and type(version) is not int:
        version = None
    loaded_at = _seconds(document.get("loaded_at"))
    problem = f"{path} holds values the field table refuses, which take their defaults: {'; '.join(notes)}"
    return ConsumerSettings(service_name, group, settings, version, "cache", float(loaded_at)), problem if notes else None


def _database_reason(exc: BaseException) -> str:
    """The first line of a database failure, for a log line; a refusal names the role a service needs."""
    text = str(exc).strip()
    reason = text.splitlines()[0] if text else type(exc).__name__
    if getattr(exc, "sqlstate", None) == "42501":
        reason += " (a service's database user needs the role loomctl_service: `loomctl db grant service USER`)"
    return reason


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
        listen: bool = True,
        on_config_change: Callable[[ConfigChange], None] | None = None,
        refuse: Collection[str] = (),
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
        self._built: dict[str, tuple[dict[str, Any], ConsumerSettings]] = {}  # name -> (client properties, settings)
        self._acknowledging: dict[int, Any] = {}
        """Share consumers whose records the loader accepts once the service asks for the next slice (id -> consumer,
        held so that no other object takes the id)."""
        self._refusals: set[str] = set()  # services whose refused join was reported
        unknown = set(refuse) - {"live", "recreate"}
        if unknown:
            raise ValueError(f"refuse takes the reload classes a loader applies (live, recreate), not {sorted(unknown)}")
        self.listen = listen
        """Hear each new version at once (LISTEN loomctl_config); without it, changes arrive with the re-read."""
        self.on_config_change = on_config_change
        self.refuse = frozenset(refuse)
        self._listener: Listener | None = None

    # -- live configuration (loomctl.live_config) --

    def _start_listening(self) -> None:
        if not self.listen or self._listener is not None:
            return
        with self._lock:
            if self._listener is not None:
                return
            found = self._source_conninfo()
            if found is None:
                self.listen = False
                return
            self._listener = Listener(found[0], found[1], self._heard, self._resumed)

    def _heard(self, service_name: str, version: int | None) -> None:
        """A new version was committed: the next poll reads it (whatever the TTL)."""
        with self._lock:
            entry = self._memory.get(service_name)
            if entry is not None and entry[0].version != version:
                self._memory[service_name] = (entry[0], 0.0)  # expired: read at its next use, the fallback meanwhile

    def _resumed(self) -> None:
        """Listening again after an outage: every config is read anew at its next use (a change may have been missed)."""
        with self._lock:  # expired, not dropped: a database gone again still leaves them as the fallback
            self._memory = {name: (config, 0.0) for name, (config, _) in self._memory.items()}

    def close(self) -> None:
        """Stop listening for config changes (the loader's consumers are the service's to close)."""
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.stop()

    def _follow(self, consumer: Any, config: ConsumerSettings) -> None:
        """At a safe point (every fetched record handed out and processed), bring ``consumer`` to ``config`` if that
        is a newer version from the database: live settings are in ``config`` already, recreate ones take a new
        client. One log line, and the service's callback."""
        if not isinstance(consumer, ManagedConsumer) or config.source != "database":
            return  # a cached config or the defaults: the consumer keeps what it runs
        running = consumer.config
        if config.version == running.version or config.version in consumer.refused_versions:
            return
        change = change_between(running, config)
        if change is None:
            consumer.config = config
            return
        change.refused_classes = tuple(sorted(set(change.classes.values()) & self.refuse))
        for name in change.fields_of("live") if "live" in change.refused_classes else ():
            consumer.held.setdefault(name, change.changes[name][0])
        if change.needs_client:
            self._recreate(consumer, config, change)
        consumer.reported_at = None  # the new version is said at the next chance
        if change.applied:
            consumer.config = config
        else:
            assert config.version is not None
            consumer.refused_versions.add(config.version)
        if change.applied:
            log.info("%s: config version %s -> %s applied: %s", config.service_name, running.version, config.version,
                     change.describe())  # fmt: skip
        else:
            log.error("%s: config version %s refused by the new client (%s): back on version %s: %s", config.service_name,
                      config.version, change.error, running.version, change.describe())  # fmt: skip
        if self.on_config_change is not None:
            try:
                self.on_config_change(change)
            except Exception:  # the service's callback never stops its consumer
                log.exception("%s: on_config_change raised", config.service_name)

    def _reported(self, consumer: ManagedConsumer, exc: BaseException | None) -> None:
        """After a report: the next one in half a minute; one warning per run of failures."""
        consumer.reported_at = time.monotonic()
        if exc is None:
            consumer.report_failed = False
        elif not consumer.report_failed:
            consumer.report_failed = True
            log.warning("%s: cannot report the config version this consumer runs: %s", consumer.config.service_name,
                        _database_reason(exc))  # fmt: skip

    def _recreate(self, consumer: ManagedConsumer, config: ConsumerSettings, change: ConfigChange) -> None:
        """Commit what was processed (auto-commit mode), close the client, build the new one; a client that refuses
        the new properties is built again with the last good ones."""
        from confluent_kafka import KafkaException

        started = time.monotonic()
        with consumer.lock:
            old = consumer.client
            if consumer.config["enable_auto_commit"] and not consumer.config.is_share_group:
                with contextlib.suppress(KafkaException):  # nothing stored to commit
                    old.commit(asynchronous=False)
            old.close()
            with self._lock:
                self._acknowledging.pop(id(old), None)
            try:
                props = self.consumer_properties(config, consumer.bootstrap_servers, consumer.overrides)
                consumer.client = self._client(props, consumer.topics, config)
                consumer.props = props
            except Exception as exc:  # librdkafka refuses the properties: the last good ones again
                change.applied = False
                change.error = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                consumer.client = self._client(consumer.props, consumer.topics, consumer.config)
        change.seconds = time.monotonic() - started

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

    def _load_cached(self, service_name: str) -> tuple[ConsumerSettings | None, str | None]:
        """The cached config (None: no usable file) and what was wrong with the file (None: nothing).

        Never raises and never blocks: whatever the file holds, the caller gets a config it can give
        a client, or None and the reason to use the defaults.
        """
        path = self._cache_path(service_name)
        if path is None:
            return None, None
        try:
            raw = _read_cache_file(path)
            if raw is None:
                return None, None
            return _cached_config(service_name, _parse_cache(raw), path)
        except _Unusable as exc:
            return None, f"the cached config {path} is not used ({exc})"

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
        reason = _database_reason(exc)
        with self._lock:
            stale = self._memory.get(service_name)
        problem = None
        if stale and stale[0].source != "defaults":
            config: ConsumerSettings | None = stale[0]
        else:
            config, problem = self._load_cached(service_name)
        if config is not None:
            log.warning(
                "config database unavailable (%s): using the cached config of %s (version %s) and retrying in %ss%s",
                reason,
                service_name,
                config.version,
                self.retry_seconds,
                f"; {problem}" if problem else "",
            )
        else:
            log.warning(
                "config database unavailable (%s) and %s: using the defaults, retrying in %ss",
                reason,
                problem or f"no cached config for {service_name}",
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
        if config.is_share_group and props.get("share.acknowledgement.mode") == "implicit":
            # the loader accepts each slice once it is processed (see poll_with_limit); implicit mode would accept a
            # whole batch at the next poll or at close(), slices the service never saw among them
            props["share.acknowledgement.mode"] = "explicit"
        props.update(overrides or {})
        return props

    def _consumer(
        self,
        props: Mapping[str, Any],
        topics: Sequence[str],
        config: ConsumerSettings,
        bootstrap_servers: str | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> ManagedConsumer:
        """The service's consumer, which the loader may replace with a new client when its config changes."""
        client = self._client(props, topics, config)
        managed = ManagedConsumer(client, config, list(topics), bootstrap_servers, dict(overrides or {}))
        managed.props = dict(props)
        managed.on_close = self._forget
        self._source_conninfo()  # while the source is open: a connection handed to the loader may close before the consumer
        return managed

    def _source_conninfo(self) -> tuple[str, dict[str, Any]] | None:
        if not hasattr(self, "_conninfo"):
            try:
                self._conninfo = conninfo_of(getattr(self, "pool", None) or getattr(self, "source", None))
            except Exception:  # a connection already closed: nothing to copy
                self._conninfo = None
        return self._conninfo

    def _forget(self, consumer: ManagedConsumer) -> None:
        """A closed consumer's row goes from consumer_instances, on a short connection of its own (the loader's may be
        asynchronous); one that never reported, or a loader without a connection to copy, leaves it to age out."""
        import psycopg

        if consumer.reported_at is None or consumer.report_failed:
            return
        found = self._source_conninfo()
        if found is None:
            return
        kwargs = {k: v for k, v in found[1].items() if k not in ("autocommit", "row_factory")}
        kwargs.setdefault("connect_timeout", max(1, int(self.connect_timeout)))
        with psycopg.connect(found[0], autocommit=True, **kwargs) as conn:
            conn.execute(FORGET_SQL, (consumer.instance_id,))

    def _client(self, props: Mapping[str, Any], topics: Sequence[str], config: ConsumerSettings | None = None) -> Any:
        group = props.get("group.id")
        # librdkafka aborts the whole process (an assertion, not an exception) on a missing or empty group id
        if not isinstance(group, str) or not group.strip() or "\0" in group:
            raise ValueError(f"group.id must be a consumer group id (a non-empty string), not {_kind(group)}")
        if config is not None and config.is_share_group:
            consumer = _share_consumer(props, config.service_name)
            if config["enable_auto_commit"] and props.get("share.acknowledgement.mode") == "explicit":
                with self._lock:
                    self._acknowledging[id(consumer)] = consumer
        else:
            from confluent_kafka import Consumer

            consumer = Consumer(dict(props))
        if config is not None:
            with self._lock:
                self._built[config.service_name] = (dict(props), config)
        if topics:
            consumer.subscribe(list(topics))
        return consumer

    def _accept(self, consumer: Any, batch: Sequence[Any]) -> None:
        """A processed slice, accepted (sent with the next poll or at close) when the loader acknowledges for the
        service: records it never handed out are released at close, to be delivered again."""
        client = consumer.client if isinstance(consumer, ManagedConsumer) else consumer
        if id(client) in self._acknowledging:
            for message in batch:
                client.acknowledge(message)

    def _good(self, messages: Sequence[Any], service_name: str) -> tuple[list[Any], bool]:
        """The messages without an error, and whether the broker refused the group's session timeout."""
        from confluent_kafka import KafkaError

        good = []
        refused = False
        for msg in messages:
            error = msg.error()
            if error is None:
                good.append(msg)
            elif error.code() == KafkaError.INVALID_SESSION_TIMEOUT:
                refused = True
                if service_name in self._refusals:
                    log.debug("%s: the broker refused the join again: %s", service_name, error)
            elif error.code() != KafkaError._PARTITION_EOF:
                log.warning("consumer error on %s [%s]: %s", msg.topic(), msg.partition(), error)
        return good, refused and service_name not in self._refusals

    def _report_refusal(self, service_name: str, config: ConsumerSettings) -> None:
        """One error line for a consumer the broker will not let join: its session timeout and the broker's bounds."""
        from loomctl.configs.broker import SESSION_TIMEOUT_BOUNDS, out_of_bounds

        with self._lock:
            if service_name in self._refusals:
                return
            self._refusals.add(service_name)
            props, built = self._built.get(service_name, (None, config))
        session = built.settings["session_timeout_ms"]
        low, high = SESSION_TIMEOUT_BOUNDS
        why = f"session_timeout_ms={session} is outside the broker's {low.replace('.min.', '.min/max.')}"
        if props is None:
            why += " (not read: the consumer was not made by this loader)"
        else:
            try:
                bounds = _broker_configs(props, SESSION_TIMEOUT_BOUNDS, BOUNDS_TIMEOUT_SECONDS)
                why = (out_of_bounds(built.settings, bounds) or [f"{why} ({bounds.get(low, '?')}..{bounds.get(high, '?')})"])[0]
            except Exception as exc:  # the broker's config is the explanation, never a reason to fail the service
                why += f" (not read: {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__})"
        log.error(
            "the broker refuses every join of %s to consumer group %s: %s; the consumer gets no messages until "
            "session_timeout_ms is within the broker's bounds (loomctl config set %s session_timeout_ms=...) and it is recreated",
            service_name,
            built.consumer_group_id,
            why,
            service_name,
        )


def _share_consumer(props: Mapping[str, Any], service_name: str) -> Any:
    """confluent-kafka's ShareConsumer (a preview in 2.15 and 2.16) for a share-group service."""
    import confluent_kafka

    share_consumer = getattr(confluent_kafka, "ShareConsumer", None)
    if share_consumer is None:
        raise ValueError(
            f"{service_name} is a share group (group_protocol=share), and confluent-kafka {confluent_kafka.version()[0]} "
            "has no share consumer: it needs confluent-kafka 2.15 or later"
        )
    log.info("%s: building confluent-kafka's share consumer, a preview (not yet for production use)", service_name)
    return share_consumer(dict(props))


def _fetch(consumer: Any, max_records: int, timeout: float) -> list[Any]:
    """The next messages: at most ``max_records`` from a Consumer; a ShareConsumer's whole batch, which may hold more
    (librdkafka's share max.poll.records is a soft limit: the broker finishes a record batch). poll_with_limit hands
    it out in slices and polls again only when all are out, since the next poll accepts (implicit mode) every
    record of this one."""
    consume = getattr(consumer, "consume", None)
    if consume is not None:
        return list(consume(num_messages=max_records, timeout=timeout))
    return list(consumer.poll(timeout))


def _limit(consumer: Any, config: ConsumerSettings) -> int:
    """The batch size: max_poll_records, or the value a service that refuses live changes keeps."""
    held = consumer.held.get("max_poll_records") if isinstance(consumer, ManagedConsumer) else None
    return int(held) if held is not None else config.max_poll_records


def _kind(value: Any) -> str:
    return "an empty string" if value == "" else ("a blank string" if isinstance(value, str) else type(value).__name__)


_CONSUMER_ONLY = {"group.id", "group.instance.id", "on_commit", *(f.librdkafka for f in FIELDS if f.librdkafka)}
"""What a consumer's properties hold that an AdminClient has no use for (librdkafka would warn of each)."""


def _broker_configs(props: Mapping[str, Any], names: Sequence[str], timeout: float) -> dict[str, str]:
    """The values of ``names`` in the config of one broker (the lowest id), asked with a consumer's connection properties."""
    from confluent_kafka.admin import AdminClient, ConfigResource

    admin = AdminClient({k: v for k, v in props.items() if k not in _CONSUMER_ONLY})
    brokers = admin.list_topics(timeout=timeout).brokers
    if not brokers:
        raise RuntimeError("the cluster's metadata names no broker")
    resource = ConfigResource(ConfigResource.Type.BROKER, str(min(brokers)))
    entries = admin.describe_configs([resource], request_timeout=timeout)[resource].result(timeout=timeout + 1)
    return {n: entries[n].value for n in names if n in entries and entries[n].value is not None}


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

        self._start_listening()
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
        """A confluent_kafka.Consumer with the service's settings, subscribed to ``topics`` (a ShareConsumer for a
        share-group service)."""
        config = await self.load_config(service_name)
        props = self.consumer_properties(config, bootstrap_servers, config_overrides)
        consumer = await asyncio.to_thread(self._consumer, props, topics, config, bootstrap_servers, config_overrides)
        await self._report(consumer)
        return consumer

    async def _report(self, consumer: Any) -> None:
        """The version ``consumer`` runs, into consumer_instances (when due; a failure is a warning)."""
        import psycopg

        if not isinstance(consumer, ManagedConsumer) or not consumer.report_due():
            return
        try:
            async with self._connection() as conn:
                await conn.execute(INSTANCE_SQL, consumer.report_params())
        except (psycopg.Error, OSError, asyncio.TimeoutError) as exc:
            self._reported(consumer, exc)
        else:
            self._reported(consumer, None)

    async def poll_with_limit(
        self, consumer: Any, service_name: str, *, timeout: float | None = None, yield_empty: bool = False
    ) -> AsyncIterator[list[Any]]:
        """Batches of at most max_poll_records (re-read after the TTL); consume() runs in a thread."""
        pending: list[Any] = []
        while True:
            config = await self.load_config(service_name)
            if not pending:
                await asyncio.to_thread(self._follow, consumer, config)
                await self._report(consumer)
                messages = await asyncio.to_thread(_fetch, consumer, _limit(consumer, config), timeout or self.poll_timeout)
                pending, refused = self._good(messages, service_name)
                if refused:
                    await asyncio.to_thread(self._report_refusal, service_name, config)
            limit = _limit(consumer, config)
            batch, pending = pending[:limit], pending[limit:]
            if batch or yield_empty:
                yield batch
                self._accept(consumer, batch)

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
            log.warning("cannot record processing metrics of %s: %s", service_name, _database_reason(exc))
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

        self._start_listening()
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
        props = self.consumer_properties(config, bootstrap_servers, config_overrides)
        consumer = self._consumer(props, topics, config, bootstrap_servers, config_overrides)
        self._report(consumer)
        return consumer

    def _report(self, consumer: Any) -> None:
        """The version ``consumer`` runs, into consumer_instances (when due; a failure is a warning)."""
        import psycopg

        if not isinstance(consumer, ManagedConsumer) or not consumer.report_due():
            return
        try:
            with self._connection() as conn:
                conn.execute(INSTANCE_SQL, consumer.report_params())
        except (psycopg.Error, OSError) as exc:
            self._reported(consumer, exc)
        else:
            self._reported(consumer, None)

    def poll_with_limit(
        self, consumer: Any, service_name: str, *, timeout: float | None = None, yield_empty: bool = False
    ) -> Iterator[list[Any]]:
        pending: list[Any] = []
        while True:
            config = self.load_config(service_name)
            if not pending:
                self._follow(consumer, config)
                self._report(consumer)
                messages = _fetch(consumer, _limit(consumer, config), timeout or self.poll_timeout)
                pending, refused = self._good(messages, service_name)
                if refused:
                    self._report_refusal(service_name, config)
            limit = _limit(consumer, config)
            batch, pending = pending[:limit], pending[limit:]
            if batch or yield_empty:
                yield batch
                self._accept(consumer, batch)

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
            log.warning("cannot record processing metrics of %s: %s", service_name, _database_reason(exc))
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
