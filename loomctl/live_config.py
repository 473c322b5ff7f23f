"""Configuration changes that reach running services: what the loaders (:mod:`loomctl.loader`) do when a service's
config gets a new version while it runs.

- **Hearing it.** Each new version is notified on the channel :data:`CHANNEL` at commit (migration 0014's trigger,
  for loomctl's changes and raw SQL alike). A :class:`Listener` thread LISTENs on a connection of its own and marks
  the service's config stale, so the next poll reads it. Where LISTEN cannot work (a pooler in transaction mode, a
  read replica, a single connection handed to the loader), the loader's re-read every ``ttl_seconds`` is the version
  poll: the same row, read again.
- **Applying it** by each changed setting's reload class (:data:`loomctl.consumer_config.RELOAD_CLASSES`), at a safe
  point: when every record fetched so far has been handed out and the service has asked for the next batch.
  ``live`` settings (max_poll_records) take effect with that batch. ``recreate`` settings need a new client: the
  processed records' offsets are committed (auto-commit mode; a service that commits itself has done so), the
  client is closed (it leaves the group cleanly), a new one is built with the new properties and subscribes to the
  same topics. A client that refuses the new properties is rebuilt with the last good ones and the version is not
  tried again. ``broker`` settings are the broker's, pushed with `loomctl config push`.
- **Saying it.** One log line per applied version, naming each setting, its old and new value and how it was applied;
  the service's ``on_config_change`` callback gets a :class:`ConfigChange`; classes the service ``refuse``\\s are
  left, and said.

A burst of versions is applied once: the safe point reads the newest row.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from loomctl.consumer_config import BROKER, DEFAULTS, FIELDS_BY_NAME, LIVE, RECREATE, UNUSED, reload_class

log = logging.getLogger("loomctl.loader")

CHANNEL = "loomctl_config"
REPORT_EVERY_SECONDS = 30.0
"""How often a running consumer reports the version it runs (record_consumer_instance), besides at start and at
each change; `config show` counts an instance gone after :data:`loomctl.configs.store.INSTANCE_WINDOW_SECONDS`."""
INSTANCE_SQL = "SELECT record_consumer_instance(%s, %s, %s, 'python', %s, %s, %s, %s)"
FORGET_SQL = "SELECT forget_consumer_instance(%s)"
RECONNECT_SECONDS = 5.0
"""How long a listener waits before it connects again after losing its connection."""

_HOW = {
    LIVE: "at the next poll",
    RECREATE: "by a new client",
    BROKER: "on the broker (loomctl config push)",
    UNUSED: "not used by this group type",
}


@dataclass
class ConfigChange:
    """What changed between the config a service runs and a newer version, and what the loader did with it."""

    service_name: str
    old_version: int | None
    new_version: int | None
    changes: dict[str, tuple[Any, Any]]
    """Each changed setting (and consumer_group_id): (old, new)."""
    classes: dict[str, str]
    """Each changed setting's reload class."""
    applied: bool = True
    """False when the new client refused the settings and the consumer runs on the old ones."""
    refused_classes: tuple[str, ...] = ()
    """Classes the service refuses (``refuse=``): their settings were left as they were."""
    error: str | None = None
    seconds: float = 0.0
    """How long the new client took (0 without one)."""

    def fields_of(self, cls: str) -> list[str]:
        return [name for name, c in self.classes.items() if c == cls]

    @property
    def needs_client(self) -> bool:
        return RECREATE in self.classes.values() and RECREATE not in self.refused_classes

    def describe(self) -> str:
        """``max_poll_records 500 -> 5 at the next poll; fetch_max_bytes 52428800 -> 2000000 by a new client (0.4 s)``"""
        parts = []
        for name, (old, new) in self.changes.items():
            cls = self.classes[name]
            how = _HOW[cls]
            if cls in self.refused_classes:
                how = "not applied: the service refuses this class"
            elif cls == RECREATE and not self.applied:
                how = "refused by the client"
            elif cls == RECREATE:
                how += f" ({self.seconds:.1f} s)"
            parts.append(f"{name} {old} -> {new} {how}")
        return "; ".join(parts)


def change_between(running: Any, newest: Any) -> ConfigChange | None:
    """The change from the config a consumer runs (a :class:`~loomctl.loader.ConsumerSettings`) to the newest one,
    classed for the newest settings' group type; None when the version and the settings are the same."""
    changes: dict[str, tuple[Any, Any]] = {}
    if running.consumer_group_id != newest.consumer_group_id:
        changes["consumer_group_id"] = (running.consumer_group_id, newest.consumer_group_id)
    for name in FIELDS_BY_NAME:
        old, new = running.settings.get(name), newest.settings.get(name)
        if old != new:
            changes[name] = (old, new)
    if not changes and running.version == newest.version:
        return None
    settings = {**DEFAULTS, **newest.settings}
    return ConfigChange(
        newest.service_name,
        running.version,
        newest.version,
        changes,
        {name: reload_class(name, settings) for name in changes},
    )


@dataclass
class ManagedConsumer:
    """The consumer `create_consumer` hands out: a confluent-kafka Consumer (or ShareConsumer) that the loader can
    replace with a new one at a safe point. Every attribute is the current client's (``poll``, ``commit``,
    ``assignment``, ``close``...); ``client`` is the client itself, which changes when the loader recreates it."""

    client: Any
    config: Any
    """The :class:`~loomctl.loader.ConsumerSettings` the client was built with (or last followed)."""
    topics: Sequence[str]
    bootstrap_servers: str | None
    overrides: Mapping[str, Any] | None
    props: dict[str, Any] = field(default_factory=dict)
    """The properties the client was built with: the last good ones."""
    refused_versions: set[int] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    held: dict[str, Any] = field(default_factory=dict)
    """Live settings kept at their value because the service refuses the live class (``refuse={"live"}``)."""
    instance_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    reported_at: float | None = None
    """When the instance last reported its version (monotonic; None: to report at the next chance)."""
    report_failed: bool = False

    def report_due(self) -> bool:
        return self.reported_at is None or time.monotonic() - self.reported_at >= REPORT_EVERY_SECONDS

    def report_params(self) -> tuple[Any, ...]:
        """record_consumer_instance's arguments: the version it runs (None for a cached config or the defaults)."""
        version = self.config.version if self.config.source == "database" else None
        refused = max(self.refused_versions) if self.refused_versions else None
        return (self.instance_id, self.config.service_name, version, self.config.consumer_group_id, socket.gethostname(),
                os.getpid(), refused)  # fmt: skip

    on_close: Callable[[ManagedConsumer], None] | None = None
    """The loader's: the instance is no longer running (its row goes)."""

    def close(self, *args: Any, **kwargs: Any) -> Any:
        """The client's close(); then the instance stops counting as running (best effort, never raising)."""
        try:
            return self.client.close(*args, **kwargs)
        finally:
            if self.on_close is not None:
                forget, self.on_close = self.on_close, None
                try:
                    forget(self)
                except Exception as exc:  # the database is the service's business, never a reason to fail close()
                    log.warning("%s: cannot say the consumer stopped: %s", self.config.service_name, exc)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in self.__dataclass_fields__:
            raise AttributeError(name)  # not set yet (a copy being built): never the client's
        return getattr(self.client, name)


class Listener:
    """A daemon thread that LISTENs on :data:`CHANNEL` over a connection of its own and calls ``on_version(service,
    version)`` for each notification (reconnecting after :data:`RECONNECT_SECONDS` when the connection is lost, then
    ``on_resumed()``: notifications sent meanwhile were missed; one warning when it cannot listen, the loader's re-read
    then being the only way changes arrive).

    It holds its loader weakly (``on_version`` and ``on_resumed`` are its bound methods): a loader that is gone
    without :meth:`stop` (a service that made one per call) takes its connection with it within a second."""

    def __init__(
        self,
        conninfo: str,
        connect_kwargs: Mapping[str, Any],
        on_version: Callable[[str, int | None], None],
        on_resumed: Callable[[], None],
    ) -> None:
        self._conninfo = conninfo
        self._on_resumed = weakref.WeakMethod(on_resumed)
        self._lost = False
        kwargs = {k: v for k, v in connect_kwargs.items() if k not in ("autocommit", "row_factory")}
        self._kwargs = {"application_name": "loomctl-config-listener", **kwargs}
        self._on_version = weakref.WeakMethod(on_version)
        self._stop = threading.Event()
        self.backend_pid: int | None = None
        """The PostgreSQL backend of the listening connection (None while there is none)."""
        self.listening = threading.Event()
        self._warned = False
        self._thread = threading.Thread(target=self._run, name="loomctl-config-listener", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import psycopg

        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True, **self._kwargs) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.backend_pid = conn.info.backend_pid
                    self.listening.set()
                    if self._lost and (resumed := self._on_resumed()) is not None:
                        resumed()  # what was notified while the connection was gone is read anew
                    while not self._stop.is_set() and self._on_version() is not None:
                        for note in conn.notifies(timeout=1.0):
                            self._heard(note.payload)
                if self._on_version() is None:
                    return  # its loader is gone
            except Exception as exc:  # the database went away, or LISTEN is refused (a replica): retry, warn once
                self.listening.clear()
                self.backend_pid = None
                if self._on_version() is None:
                    return
                self._lost = True
                if not self._warned:
                    self._warned = True
                    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                    log.warning("not listening for config changes (%s): they arrive with the next re-read", text)
                self._stop.wait(RECONNECT_SECONDS)

    def _heard(self, payload: str) -> None:
        try:
            note = json.loads(payload)
            service, version = note["service"], note.get("version")
        except (ValueError, KeyError, TypeError):
            return
        on_version = self._on_version()
        if on_version is not None and isinstance(service, str) and (version is None or isinstance(version, int)):
            on_version(service, version)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def conninfo_of(source: Any) -> tuple[str, dict[str, Any]] | None:
    """How to open a connection like ``source``'s: a psycopg_pool pool's conninfo and connection kwargs, or a
    connection's own parameters (its password included); None for anything else."""
    conninfo = getattr(source, "conninfo", None)
    if isinstance(conninfo, str):
        return conninfo, dict(getattr(source, "kwargs", None) or {})
    info = getattr(source, "info", None)
    if info is not None and hasattr(info, "get_parameters"):
        from psycopg.conninfo import make_conninfo

        params = dict(info.get_parameters())
        password = getattr(info, "password", None)
        if password:
            params["password"] = password
        return make_conninfo(**params), {}
    return None
