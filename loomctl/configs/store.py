"""The config store: `pipeline_consumer_configs` read, changed, audited, diffed and rolled back.

Every function takes a psycopg connection or a SQLAlchemy Session/Connection (reads) or a
Session (writes), returns dataclasses and raises LoomErrors; none of them commits. Writes set
the actor and reason that the audit trigger records, and carry the version they read, so a
concurrent change makes them fail (Conflict) instead of being overwritten.

:func:`read_configs` is the one reader of the table for the core (the Python loader keeps its
own, since services must not need SQLAlchemy). Importing this module imports no SQLAlchemy:
the lag commands read configs on a plain psycopg connection.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from loomctl import validation
from loomctl.clusters.store import DEFAULT_CLUSTER, check_cluster_name, missing_clusters
from loomctl.configs.services import missing_services
from loomctl.consumer_config import DEFAULTS, FIELDS, FIELDS_BY_NAME, PROFILES, Profile, client_properties, reload_class
from loomctl.db import mappings as _mappings
from loomctl.db import set_audit_context
from loomctl.errors import BadInput, Conflict, NotFound

if TYPE_CHECKING:
    from sqlalchemy import Table
    from sqlalchemy.engine import Connection
    from sqlalchemy.orm import Session

    Executor = Session | Connection

SETTING_NAMES: tuple[str, ...] = tuple(f.name for f in FIELDS)
LABELS: tuple[str, ...] = ("consumer_group_id", "profile", "description", "lag_slo_seconds", "cluster_name")
"""Columns besides the settings that a change can touch (and the audit trail records)."""
OBJECTIVE = "lag_slo_seconds"
"""The service's lag objective in seconds: a service attribute beside profile and description, not a client setting."""
LAG_SLO_SECONDS_RANGE = (1, 604_800)
"""A second to a week, as the CHECK constraint lag_slo_seconds_range says."""
TRACKED: tuple[str, ...] = (*LABELS, *SETTING_NAMES)
CLUSTER = "cluster_name"
"""The registered cluster the service's group lives on (a service attribute, like its profile)."""
CHANGE_ID_MAX = 2**63 - 1
"""The audit trail's ids are a bigint identity: a larger number names no change."""


class Action:
    """What a change does to a service: the words of `config set`, `rollback`, `delete` and `import`."""

    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    UNCHANGED = "unchanged"
    PUSH = "push"
    """Group configs set on the broker by `config push` (the audit trail's record of it; the row itself is unchanged)."""


def _tables() -> tuple["Table", "Table"]:
    from loomctl.db.models import ConsumerConfigChange, PipelineConsumerConfig

    return cast("Table", PipelineConsumerConfig.__table__), cast("Table", ConsumerConfigChange.__table__)


@dataclass(frozen=True)
class ConsumerConfig:
    service_name: str
    consumer_group_id: str
    profile: str | None
    description: str | None
    settings: dict[str, Any]
    version: int
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    updated_by: str | None = None
    lag_slo_seconds: int | None = None
    """The objective of its own; None: its profile's default (see loomctl.lag.slo.objective_of)."""
    cluster_name: str = DEFAULT_CLUSTER
    """The Kafka cluster its group lives on (``kafka_clusters``)."""

    def record(self) -> dict[str, Any]:
        """One flat mapping, the shape of `config show -o json`."""
        return {
            "service_name": self.service_name,
            "consumer_group_id": self.consumer_group_id,
            "profile": self.profile,
            "description": self.description,
            "lag_slo_seconds": self.lag_slo_seconds,
            **self.settings,
            "version": self.version,
            "cluster_name": self.cluster_name,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "updated_by": self.updated_by,
        }

    def values(self) -> dict[str, Any]:
        """The tracked columns: labels and settings."""
        return {
            "consumer_group_id": self.consumer_group_id,
            "profile": self.profile,
            "description": self.description,
            "lag_slo_seconds": self.lag_slo_seconds,
            "cluster_name": self.cluster_name,
            **self.settings,
        }


@dataclass(frozen=True)
class FieldChange:
    field: str
    old: Any
    new: Any


@dataclass(frozen=True)
class ChangeResult:
    service_name: str
    action: str
    """One of :class:`Action`."""
    changes: list[FieldChange]
    version_before: int | None
    version_after: int | None
    dry_run: bool = False
    reloads: dict[str, str] = field(default_factory=dict)
    """An update's client settings: how each reaches running services (:data:`loomctl.consumer_config.RELOAD_CLASSES`)."""


@dataclass(frozen=True)
class HistoryEntry:
    id: int
    service_name: str
    changed_at: dt.datetime
    change_type: str
    changed_by: str
    """The actor the writer named (`--actor`), or the database user of a raw SQL change."""
    source: str
    reason: str | None
    config_version: int | None
    changes: list[FieldChange]
    db_user: str | None = None
    """The database user whose session made the change, whatever the actor says; None before migration 0012."""


@dataclass(frozen=True)
class FieldDiff:
    field: str
    current: Any
    other: Any
    differs: bool


@dataclass(frozen=True)
class DiffResult:
    service_name: str
    against: str
    fields: list[FieldDiff]

    @property
    def differences(self) -> list[FieldDiff]:
        return [d for d in self.fields if d.differs]


@dataclass(frozen=True)
class RollbackPlan:
    service_name: str
    change_id: int
    description: str  # what is being restored, for the confirmation prompt
    target: dict[str, Any] | None  # None: the service should not exist
    expected_version: int | None  # None: the service does not exist now
    result: ChangeResult


_COLUMNS = ("service_name", *TRACKED, "version", "created_at", "updated_at", "updated_by")


def _from_row(m: Mapping[str, Any]) -> ConsumerConfig:
    return ConsumerConfig(
        service_name=m["service_name"],
        consumer_group_id=m["consumer_group_id"],
        profile=m["profile"],
        description=m["description"],
        settings={name: m[name] for name in SETTING_NAMES},
        version=m["version"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        updated_by=m["updated_by"],
        lag_slo_seconds=m["lag_slo_seconds"],
        cluster_name=m["cluster_name"],
    )


def read_configs(
    conn: Any,
    *,
    services: Sequence[str] = (),
    groups: Sequence[str] = (),
    profile: str | None = None,
    lock: bool = False,
) -> list[ConsumerConfig]:
    """The one reader of ``pipeline_consumer_configs``: every config, or those of the named
    services or groups (either matches), by service name; ``lock`` holds the rows (FOR UPDATE)."""
    where = ["(%(every)s OR service_name = ANY(%(services)s) OR consumer_group_id = ANY(%(groups)s))"]
    if profile is not None:
        where.append("profile = %(profile)s")
    sql = (
        f"SELECT {', '.join(_COLUMNS)} FROM public.pipeline_consumer_configs WHERE {' AND '.join(where)}"
        " ORDER BY service_name" + (" FOR UPDATE" if lock else "")
    )
    params = {"every": not services and not groups, "services": list(services), "groups": list(groups), "profile": profile}
    return [_from_row(m) for m in _mappings(conn, sql, params)]


def check_lag_slo_seconds(value: Any) -> int | None:
    """A lag objective from the command line or a file: whole seconds within :data:`LAG_SLO_SECONDS_RANGE`,
    or none (no objective of its own: the profile's default applies)."""
    low, high = LAG_SLO_SECONDS_RANGE
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in ("", "none", "null"):
            return None
        if not (text.isascii() and text.isdigit()) or len(text) > 30:
            raise BadInput(f"{OBJECTIVE}={validation.shown(value)}: expected whole seconds ({low} to {high:,}) or none")
        value = int(text)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadInput(
            f"{OBJECTIVE} must be whole seconds ({low} to {high:,}) or none, got {type(value).__name__} {validation.shown(value)}"
        )
    if not low <= value <= high:
        shown = f"{value:,}" if value.bit_length() <= 64 else validation.shown(value)
        raise BadInput(f"{OBJECTIVE}={shown} is out of range: allowed {low} to {high:,} seconds (a week), or none")
    return value


def parse_service_assignments(assignments: Iterable[str]) -> dict[str, Any]:
    """`config set`'s ``key=value`` items: typed settings, and ``lag_slo_seconds`` (not a setting) checked on its own."""
    settings: list[str] = []
    values: dict[str, Any] = {}
    for item in assignments:
        key, sep, raw = item.partition("=")
        if sep and key.strip().lower().replace("-", "_") == OBJECTIVE:
            values[OBJECTIVE] = raw  # as typed: checked with the rest of the service (set_config)
        else:
            settings.append(item)
    return validation.parse_assignments(settings) | values


def require_configs(conn: Any, services: Sequence[str]) -> list[ConsumerConfig]:
    """The configs of ``services`` in the order named; NotFound naming every one that has none."""
    found = {c.service_name: c for c in read_configs(conn, services=services)}
    missing = [s for s in dict.fromkeys(services) if s not in found]
    if missing:
        raise missing_services(missing)
    return [found[s] for s in dict.fromkeys(services)]


def list_configs(
    session: "Executor", profile: str | None = None, services: Sequence[str] = (), cluster: str | None = None
) -> list[ConsumerConfig]:
    """The configs of ``services`` (all when none is named; NotFound for a stranger), of a profile, of a cluster."""
    if cluster is not None:
        check_cluster_name(cluster)
        _require_cluster(session, cluster)
    configs = read_configs(session, services=services, profile=profile)
    if cluster is not None:
        configs = [c for c in configs if c.cluster_name == cluster]
    missing = sorted(set(services) - {c.service_name for c in configs})
    if missing:
        raise missing_services(missing)
    return configs


def find_config(session: "Executor", service_name: str, *, lock: bool = False) -> ConsumerConfig | None:
    found = read_configs(session, services=[service_name], lock=lock)
    return found[0] if found else None


INSTANCE_WINDOW_SECONDS = 120
"""A running consumer reports its version every 30 s (loomctl.live_config): one silent for longer is gone."""


@dataclass(frozen=True)
class RunningInstance:
    """A running consumer a loader made, as it last reported itself (consumer_instances)."""

    instance_id: str
    service_name: str
    language: str
    host: str | None
    pid: int | None
    config_version: int | None
    refused_version: int | None
    reported_at: dt.datetime

    def describe(self) -> str:
        """``python pid 4242 on host-a runs version 5 (its new client refused version 6)``"""
        runs = (
            f"runs version {self.config_version}" if self.config_version is not None else "runs a cached config or the defaults"
        )
        refused = f" (its new client refused version {self.refused_version})" if self.refused_version is not None else ""
        return f"{self.language} pid {self.pid} on {self.host} {runs}{refused}"


def running_instances(session: "Executor", services: Sequence[str]) -> dict[str, list[RunningInstance]]:
    """The instances of ``services`` that reported within :data:`INSTANCE_WINDOW_SECONDS`, by service."""
    from sqlalchemy import text

    rows = session.execute(
        text(
            "SELECT instance_id, service_name, language, host, pid, config_version, refused_version, reported_at"
            "  FROM public.consumer_instances WHERE service_name = ANY(:services)"
            "   AND reported_at > now() - make_interval(secs => :window) ORDER BY service_name, host, pid"
        ),
        {"services": list(services), "window": INSTANCE_WINDOW_SECONDS},
    ).all()
    found: dict[str, list[RunningInstance]] = {}
    for row in rows:
        found.setdefault(row[1], []).append(RunningInstance(*row))
    return found


def instances_behind(instances: Sequence[RunningInstance], version: int) -> list[RunningInstance]:
    """The running instances that do not run ``version`` (the newest) yet."""
    return [i for i in instances if i.config_version != version]


def get_config(session: "Executor", service_name: str) -> ConsumerConfig:
    config = find_config(session, service_name)
    if config is None:
        raise missing_services([service_name], f"create it with `loomctl config set {service_name} --create`")
    return config


def client_options(client: str, group_id: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """Exactly what ``client`` (librdkafka, java or kafkajs) receives for these settings, group id included."""
    props = client_properties(client, settings)
    if client == "kafkajs":
        props["consumer"] = {"groupId": group_id, **props["consumer"]}
        return props
    return {"group.id": group_id, **props}


def client_config(config: ConsumerConfig, client: str) -> dict[str, Any]:
    """Exactly what ``client`` receives for this service, group id included."""
    return client_options(client, config.consumer_group_id, config.settings)


def profiles() -> list[Profile]:
    return list(PROFILES.values())


def changes_between(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> list[FieldChange]:
    old = old or {}
    new = new or {}
    return [
        FieldChange(name, old.get(name), new.get(name))
        for name in TRACKED
        if (name in old or name in new) and old.get(name) != new.get(name)
    ]


def reloads_of(changes: Sequence[FieldChange], settings: Mapping[str, Any]) -> dict[str, str]:
    """How each changed client setting of an update reaches running services, for the settings after it."""
    return {c.field: cls for c in changes if (cls := _reload(c.field, settings)) is not None}


_REACHING = {
    "live": "at the next poll",
    "recreate": "when the loaders recreate the client",
    "broker": "on the broker with `loomctl config push {service}`",
    "unused": "not used by this group type",
}


def reload_summary(result: ChangeResult) -> str:
    """How an update's settings reach running services, grouped by class: ``max_poll_records at the next poll;
    fetch_max_bytes when the loaders recreate the client``; empty when nothing a client uses changed."""
    by_class: dict[str, list[str]] = {}
    for name, cls in result.reloads.items():
        by_class.setdefault(cls, []).append(name)
    return "; ".join(
        f"{', '.join(names)} {_REACHING[cls].format(service=result.service_name)}"
        for cls in _REACHING
        if (names := by_class.get(cls))
    )


def _reload(name: str, settings: Mapping[str, Any]) -> str | None:
    return reload_class(name, {**DEFAULTS, **settings}) if name in FIELDS_BY_NAME or name == "consumer_group_id" else None


def _conflict(session: "Executor", service_name: str, expected_version: int) -> Conflict:
    current = find_config(session, service_name)
    if current is None:
        return Conflict(f"{service_name} was deleted meanwhile (you read version {expected_version})")
    return Conflict(
        f"{service_name} was changed by {current.updated_by} at {current.updated_at:%Y-%m-%d %H:%M:%S %Z} "
        f"(now version {current.version}, you read version {expected_version}); re-read it and retry"
    )


def insert_row(session: "Executor", service_name: str, values: Mapping[str, Any]) -> int:
    from sqlalchemy.dialects.postgresql import insert

    table, _ = _tables()
    statement = (
        insert(table)
        .values(service_name=service_name, **values)
        .on_conflict_do_nothing(index_elements=[table.c.service_name])
        .returning(table.c.version)
    )
    version = session.execute(statement).scalar()
    if version is None:
        existing = find_config(session, service_name)
        who = f" by {existing.updated_by} at {existing.updated_at:%Y-%m-%d %H:%M:%S %Z}" if existing else ""
        raise Conflict(f"{service_name} already exists (last changed{who}); drop --create to change it")
    return version


def update_row(session: "Executor", service_name: str, values: Mapping[str, Any], expected_version: int) -> int:
    from sqlalchemy import update

    table, _ = _tables()
    statement = (
        update(table)
        .where(table.c.service_name == service_name, table.c.version == expected_version)
        .values(**values)
        .returning(table.c.version)
    )
    version = session.execute(statement).scalar()
    if version is None:
        raise _conflict(session, service_name, expected_version)
    return version


def delete_row(session: "Executor", service_name: str, expected_version: int) -> None:
    from sqlalchemy import delete

    table, _ = _tables()
    statement = (
        delete(table)
        .where(table.c.service_name == service_name, table.c.version == expected_version)
        .returning(table.c.service_name)
    )
    if session.execute(statement).first() is None:
        raise _conflict(session, service_name, expected_version)


def record_who_and_why(session: "Executor", actor: str, reason: str | None) -> None:
    """What the audit trigger records for this transaction's changes, checked as text PostgreSQL can store."""
    validation.check_text("--actor", actor, limit=validation.ACTOR_MAX)
    if reason is not None:
        validation.check_text("--reason", reason, limit=validation.DESCRIPTION_MAX, multiline=True)
    set_audit_context(session, actor, reason)


def record_push(
    session: "Executor",
    config: ConsumerConfig,
    changes: Sequence[FieldChange],
    *,
    actor: str,
    reason: str | None,
) -> None:
    """Record in the audit trail that ``changes`` (broker values, old -> new) were set on the broker
    for ``config``'s group, at the config version they came from."""
    from sqlalchemy import insert

    _, changes_table = _tables()
    validation.check_text("--actor", actor, limit=validation.ACTOR_MAX)
    if reason is not None:
        validation.check_text("--reason", reason, limit=validation.DESCRIPTION_MAX, multiline=True)
    session.execute(
        insert(changes_table).values(
            service_name=config.service_name,
            change_type=Action.PUSH,
            changed_fields=[c.field for c in changes],
            old_values={c.field: c.old for c in changes},
            new_values={c.field: c.new for c in changes},
            reason=reason,
            changed_by=actor,
            config_version=config.version,
            source="loomctl",
        )
    )


def _not_a_push(row: Mapping[str, Any], change_id: int) -> None:
    if row["change_type"] == Action.PUSH:
        raise BadInput(
            f"change {change_id} is a push of group configs to the broker, not a change of the config "
            f"(see `loomctl config history {row['service_name']}`)"
        )


def _check_version(current: ConsumerConfig, if_version: int | None) -> None:
    if if_version is not None and current.version != if_version:
        raise Conflict(
            f"{current.service_name} is at version {current.version}, not {if_version}: changed by "
            f"{current.updated_by} at {current.updated_at:%Y-%m-%d %H:%M:%S %Z}"
        )


def _validated_values(service_name: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """Labels and a complete, valid set of settings; raises BadInput naming what is wrong."""
    validation.check_service_name(service_name)
    validation.check_group_id(values["consumer_group_id"])
    if values.get("description") is not None:
        validation.check_description(values["description"])
    objective = check_lag_slo_seconds(values.get(OBJECTIVE))  # the one check: typed (`set`) or stored, as given
    check_cluster_name(values.get(CLUSTER) or DEFAULT_CLUSTER)
    settings = validation.check_settings({k: values[k] for k in SETTING_NAMES if k in values})
    return {k: values.get(k) for k in LABELS} | {OBJECTIVE: objective, CLUSTER: values.get(CLUSTER) or DEFAULT_CLUSTER} | settings


def set_config(
    session: "Executor",
    service_name: str,
    settings: Mapping[str, Any],
    *,
    actor: str,
    reason: str | None = None,
    description: str | None = None,
    group: str | None = None,
    profile: str | None = None,
    create: bool = False,
    if_version: int | None = None,
    dry_run: bool = False,
    cluster: str | None = None,
) -> ChangeResult:
    """Change some settings of a service (or create it with ``create``), validated as a whole; ``lag_slo_seconds``
    among ``settings`` sets the service's objective (None: back to its profile's default); ``cluster`` moves it
    to (or creates it on) a registered cluster."""
    settings = dict(settings)
    objective = {OBJECTIVE: settings.pop(OBJECTIVE)} if OBJECTIVE in settings else {}
    unknown = [k for k in settings if k not in FIELDS_BY_NAME]
    if unknown:
        raise validation.UnknownField(unknown[0])
    current = find_config(session, service_name)
    if create:
        if current is not None:
            raise Conflict(
                f"{service_name} already exists (version {current.version}, last changed by {current.updated_by} "
                f"at {current.updated_at:%Y-%m-%d %H:%M:%S %Z}); drop --create to change it"
            )
        base: dict[str, Any] = {
            "consumer_group_id": group or service_name,
            "profile": None,
            "description": None,
            OBJECTIVE: None,
            CLUSTER: DEFAULT_CLUSTER,
            **DEFAULTS,
        }
    else:
        if current is None:
            raise missing_services([service_name], "add --create to make one")
        _check_version(current, if_version)
        base = current.values()
    desired = dict(base) | dict(settings) | objective
    if group is not None:
        desired["consumer_group_id"] = group
    if cluster is not None:
        desired[CLUSTER] = cluster
    if description is not None:
        desired["description"] = description or None
    if profile is not None:
        desired["profile"] = validation.check_profile(profile)
    desired = _validated_values(service_name, desired)
    return _write(session, service_name, current, desired, actor=actor, reason=reason, dry_run=dry_run)


def _require_cluster(session: "Executor", name: str) -> None:
    """A service can only belong to a registered cluster (the foreign key says so too, less kindly)."""
    rows = _mappings(session, "SELECT 1 FROM public.kafka_clusters WHERE cluster_name = %(n)s", {"n": name})
    if not rows:
        raise missing_clusters([name])


def _write(
    session: "Executor",
    service_name: str,
    current: ConsumerConfig | None,
    desired: Mapping[str, Any] | None,
    *,
    actor: str,
    reason: str | None,
    dry_run: bool,
) -> ChangeResult:
    before = current.values() if current else None
    changes = changes_between(before, desired)
    if desired is None:
        action = Action.DELETE if current else Action.UNCHANGED
    elif current is None:
        action = Action.CREATE
    else:
        action = Action.UPDATE if changes else Action.UNCHANGED
    version_before = current.version if current else None
    if desired is not None and desired.get(CLUSTER) != (current.cluster_name if current else None):
        _require_cluster(session, desired[CLUSTER])
    reloads = reloads_of(changes, desired) if action == Action.UPDATE and desired is not None else {}
    if dry_run or action == Action.UNCHANGED:
        return ChangeResult(service_name, action, changes, version_before, version_before, dry_run, reloads)
    record_who_and_why(session, actor, reason)
    version_after: int | None
    if action == Action.CREATE:
        assert desired is not None  # a create has the values it creates
        version_after = insert_row(session, service_name, desired)
    elif action == Action.DELETE:
        assert current is not None  # only what exists is deleted
        delete_row(session, service_name, current.version)
        version_after = None
    else:
        assert desired is not None and current is not None
        version_after = update_row(session, service_name, desired, current.version)
    return ChangeResult(service_name, action, changes, version_before, version_after, dry_run, reloads)


def apply_profile(
    session: "Executor",
    service_name: str,
    profile: str,
    *,
    actor: str,
    reason: str | None = None,
    if_version: int | None = None,
    dry_run: bool = False,
) -> ChangeResult:
    """Set every setting of a service to the profile's values (the defaults where it names none)."""
    validation.check_profile(profile)
    return set_config(
        session,
        service_name,
        PROFILES[profile].full_settings(),
        profile=profile,
        actor=actor,
        reason=reason or f"apply profile {profile}",
        if_version=if_version,
        dry_run=dry_run,
    )


def delete_config(
    session: "Executor",
    service_name: str,
    *,
    actor: str,
    reason: str | None = None,
    if_version: int | None = None,
    dry_run: bool = False,
) -> ChangeResult:
    current = get_config(session, service_name)
    _check_version(current, if_version)
    return _write(session, service_name, current, None, actor=actor, reason=reason, dry_run=dry_run)


def _entry(row: Any) -> HistoryEntry:
    m = row._mapping
    old, new = m["old_values"] or {}, m["new_values"] or {}
    changes = [FieldChange(name, old.get(name), new.get(name)) for name in m["changed_fields"] if name != "service_name"]
    return HistoryEntry(
        id=m["id"],
        service_name=m["service_name"],
        changed_at=m["changed_at"],
        change_type=m["change_type"],
        changed_by=m["changed_by"],
        source=m["source"],
        reason=m["reason"],
        config_version=m["config_version"],
        changes=changes,
        db_user=m.get("db_user"),
    )


def history(session: "Executor", service_name: str, limit: int | None = None) -> list[HistoryEntry]:
    """Every recorded change of a service, newest first (raw SQL updates included)."""
    from sqlalchemy import select

    _, changes_table = _tables()
    query = (
        select(changes_table)
        .where(changes_table.c.service_name == service_name)
        .order_by(changes_table.c.changed_at.desc(), changes_table.c.id.desc())
    )
    if limit:
        query = query.limit(limit)
    entries = [_entry(row) for row in session.execute(query)]
    if not entries and find_config(session, service_name) is None:
        raise missing_services([service_name], "and none in the audit trail")
    return entries


def _change_row(session: "Executor", service_name: str, change_id: int) -> Any:
    from sqlalchemy import select

    _, changes_table = _tables()
    if not 1 <= change_id <= CHANGE_ID_MAX:
        raise NotFound(
            f"no change {change_id} of {service_name} in the audit trail (see `loomctl config history {service_name}`)"
        )
    row = session.execute(select(changes_table).where(changes_table.c.id == change_id)).first()
    if row is None or row._mapping["service_name"] != service_name:
        raise NotFound(
            f"no change {change_id} of {service_name} in the audit trail (see `loomctl config history {service_name}`)"
        )
    return row._mapping


def _values_from_audit(values: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Tracked values from an audit row; fields it lacks (added later) take their defaults."""
    if values is None:
        return None
    settings = {name: values[name] for name in SETTING_NAMES if name in values}
    return {k: values.get(k) for k in LABELS} | {CLUSTER: values.get(CLUSTER) or DEFAULT_CLUSTER, **DEFAULTS, **settings}


def diff(session: "Executor", service_name: str, against: str | None = None) -> DiffResult:
    """The service's settings next to a profile's, or next to the state right after a change."""
    current = get_config(session, service_name)
    against = against or current.profile
    if against is None:
        label, other = "defaults", dict(DEFAULTS)
    elif re.fullmatch(r"[0-9]{1,30}", against, re.ASCII):
        row = _change_row(session, service_name, int(against))
        _not_a_push(row, int(against))
        audited = _values_from_audit(row["new_values"] if row["change_type"] != "delete" else row["old_values"])
        assert audited is not None  # a change row carries the values of its side
        label, other = (
            f"change {against} ({row['change_type']} by {row['changed_by']} at {row['changed_at']:%Y-%m-%d %H:%M:%S})",
            audited,
        )
    else:
        validation.check_profile(against)
        label, other = f"profile {against}", PROFILES[against].full_settings()
    names = [n for n in TRACKED if n in other]
    values = current.values()
    return DiffResult(
        service_name,
        label,
        [FieldDiff(n, values[n], other[n], values[n] != other[n]) for n in names],
    )


def plan_rollback(session: "Executor", service_name: str, to_change: int | None = None) -> RollbackPlan:
    """What a rollback would do: undo the last change, or restore the state right after ``to_change``."""
    from sqlalchemy import select

    _, changes_table = _tables()
    if to_change is None:
        row = session.execute(
            select(changes_table)
            .where(changes_table.c.service_name == service_name, changes_table.c.change_type != Action.PUSH)
            .order_by(changes_table.c.changed_at.desc(), changes_table.c.id.desc())
            .limit(1)
        ).first()
        if row is None:
            raise NotFound(f"no change of {service_name} to roll back")
        m = row._mapping
        target = _values_from_audit(m["old_values"])
        what = f"undo change {m['id']} ({m['change_type']} by {m['changed_by']} at {m['changed_at']:%Y-%m-%d %H:%M:%S})"
    else:
        m = _change_row(session, service_name, to_change)
        _not_a_push(m, to_change)
        if m["change_type"] == "delete":
            raise BadInput(f"change {to_change} deleted {service_name}: roll back to the change before it instead")
        target = _values_from_audit(m["new_values"])
        what = f"restore {service_name} as it was after change {m['id']} ({m['changed_at']:%Y-%m-%d %H:%M:%S})"
    current = find_config(session, service_name)
    if target is not None:
        target = _validated_values(service_name, target)
    result = _write(session, service_name, current, target, actor="", reason=None, dry_run=True)
    return RollbackPlan(service_name, m["id"], what, target, current.version if current else None, result)


def rollback(session: "Executor", plan: RollbackPlan, *, actor: str, reason: str | None = None) -> ChangeResult:
    """Carry out a plan from `plan_rollback`; fails with Conflict if the service changed since."""
    current = find_config(session, plan.service_name)
    if (current.version if current else None) != plan.expected_version:
        if current is None:
            raise Conflict(f"{plan.service_name} was deleted since the rollback was planned")
        raise _conflict(session, plan.service_name, plan.expected_version or 0)
    return _write(
        session,
        plan.service_name,
        current,
        plan.target,
        actor=actor,
        reason=reason or f"rollback: {plan.description}",
        dry_run=False,
    )
