"""``kafka_clusters``: read, added, changed, removed and checked; and the client settings of one cluster.

Reads take a psycopg connection or a SQLAlchemy Session/Connection; writes take a Session and never commit (the
command owns the transaction). Writes set the actor and reason the audit trigger records and carry the version
they read, so a concurrent change fails (Conflict) rather than being overwritten.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loomctl import validation
from loomctl.db import mappings as _mappings
from loomctl.errors import BadInput, Conflict, NotFound

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from loomctl.configs.store import FieldChange  # one change of one field, as the configs' trail has them
    from loomctl.settings import Settings

DEFAULT_CLUSTER = "default"
"""The cluster of every row that names none (see :mod:`loomctl.db.models`); also kafka-lag-exporter's default label."""
ENV_CLUSTER = "LOOM_CLUSTER"
"""Picks one cluster for the commands that take ``--cluster``."""
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
"""The CHECK constraint cluster_name_format: a Prometheus label value and a URL path segment as it is."""
LABEL_KEY = re.compile(r"[a-z_][a-z0-9_]{0,62}")
LABEL_VALUE_MAX = 256
LABELS_MAX = 32
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
FIELDS = ("bootstrap_servers", "properties_file", "properties_env", "labels", "description")
"""What an operator sets on a cluster (and the audit trail records)."""


@dataclass(frozen=True)
class Cluster:
    cluster_name: str
    bootstrap_servers: str | None = None
    """None: ``--bootstrap-servers`` / LOOM_KAFKA_BOOTSTRAP_SERVERS (the default cluster, until registered)."""
    properties_file: str | None = None
    properties_env: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    description: str | None = None
    version: int = 1
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    updated_by: str | None = None
    services: int = 0
    """How many services belong to it."""
    capabilities: dict[str, Any] | None = None
    """What `cluster check` found, the last time it ran; None: never checked."""
    checked_at: dt.datetime | None = None

    @property
    def brokers_from_environment(self) -> bool:
        return self.bootstrap_servers is None

    def values(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in FIELDS}

    def record(self) -> dict[str, Any]:
        """The flat mapping of `cluster show -o json` (stable keys)."""
        return {
            "cluster_name": self.cluster_name,
            "bootstrap_servers": self.bootstrap_servers,
            "brokers_from": "environment" if self.brokers_from_environment else "registry",
            "properties_file": self.properties_file,
            "properties_env": self.properties_env,
            "labels": self.labels,
            "description": self.description,
            "services": self.services,
            "version": self.version,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "updated_by": self.updated_by,
            "checked_at": self.checked_at,
            "capabilities": self.capabilities,
        }


@dataclass(frozen=True)
class ClusterChange:
    cluster_name: str
    action: str
    """create, update, delete or unchanged."""
    changes: list["FieldChange"]
    version_before: int | None
    version_after: int | None
    dry_run: bool = False


@dataclass(frozen=True)
class ClusterHistoryEntry:
    id: int
    cluster_name: str
    changed_at: dt.datetime
    change_type: str
    changed_by: str
    source: str
    reason: str | None
    cluster_version: int | None
    changes: list["FieldChange"]
    db_user: str | None = None
    """The database user whose session made the change, whatever the actor says; None before migration 0012."""


_SELECT = """
SELECT k.cluster_name, k.bootstrap_servers, k.properties_file, k.properties_env, k.labels, k.description,
       k.version, k.created_at, k.updated_at, k.updated_by,
       (SELECT count(*) FROM public.pipeline_consumer_configs AS c WHERE c.cluster_name = k.cluster_name)::int AS services,
       ch.capabilities, ch.checked_at
  FROM public.kafka_clusters AS k
  LEFT JOIN public.kafka_cluster_checks AS ch ON ch.cluster_name = k.cluster_name
"""


def read_clusters(conn: Any, names: Sequence[str] = ()) -> list[Cluster]:
    """Every registered cluster, or the ones named (NotFound naming each that is not registered), by name."""
    rows = _mappings(
        conn,
        _SELECT + " WHERE %(every)s OR k.cluster_name = ANY(%(names)s) ORDER BY k.cluster_name",
        {"every": not names, "names": list(names)},
    )
    clusters = [Cluster(**dict(row)) for row in rows]
    missing = sorted(set(names) - {c.cluster_name for c in clusters})
    if missing:
        raise missing_clusters(missing)
    return clusters


def missing_clusters(names: Iterable[str]) -> NotFound:
    return NotFound(f"no cluster {', '.join(names)} (see `loomctl cluster list`)")


def get_cluster(conn: Any, name: str) -> Cluster:
    check_cluster_name(name)
    return read_clusters(conn, [name])[0]


def selected_clusters(conn: Any, name: str | None) -> list[Cluster]:
    """The clusters a command works on: the one named (``--cluster`` / LOOM_CLUSTER), else every registered one."""
    if name is None:
        return read_clusters(conn)
    return [get_cluster(conn, name)]


def settings_for(cluster: Cluster, base: "Settings") -> "Settings":
    """The settings of ``cluster``'s clients: its brokers and properties file where it registers them; for one that
    registers no brokers (the default cluster), those of the flags and the environment, as before the registry."""
    if cluster.brokers_from_environment:
        return base
    kafka_config: Path | None = None
    if cluster.properties_file is not None:
        kafka_config = Path(cluster.properties_file)
    elif cluster.properties_env is not None:
        value = os.environ.get(cluster.properties_env)
        if not value:
            raise BadInput(
                f"cluster {cluster.cluster_name}: its client properties file is named by ${cluster.properties_env}, "
                "which is not set here"
            )
        kafka_config = Path(value)
    return replace(base, bootstrap_servers=cluster.bootstrap_servers, kafka_config=kafka_config)


def check_cluster_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise BadInput(
            f"cluster name {validation.shown(name)}: 1 to 63 characters, letters, digits, '.', '_' and '-',"
            " starting with a letter or digit"
        )
    return name


def parse_labels(items: Iterable[str]) -> dict[str, str]:
    """``--label key=value`` items (``key=`` removes the label on `cluster set`: its value is then '')."""
    labels: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise BadInput(f"--label {validation.shown(item)}: expected key=value")
        key = key.strip()
        if not LABEL_KEY.fullmatch(key):
            raise BadInput(
                f"--label {validation.shown(item)}: a key is 1 to 63 characters of a-z, 0-9 and '_', not starting with a digit"
            )
        if len(value) > LABEL_VALUE_MAX or not value.isprintable():
            raise BadInput(f"--label {key}: a value is at most {LABEL_VALUE_MAX} printable characters")
        labels[key] = value
    return labels


def _checked(values: dict[str, Any]) -> dict[str, Any]:
    """A cluster's settings as a whole, refused in one line where no client could use them."""
    from loomctl.settings import check_bootstrap_servers, read_properties_file

    servers = values.get("bootstrap_servers")
    if servers is not None:
        if not isinstance(servers, str) or not servers.strip() or len(servers) > 4096 or not servers.isprintable():
            raise BadInput("--bootstrap-servers: host:port[,host:port], at most 4096 printable characters")
        values["bootstrap_servers"] = servers = servers.strip()
        check_bootstrap_servers(servers)
    if values.get("properties_file") is not None and values.get("properties_env") is not None:
        raise BadInput("--properties-file and --properties-env: give one (the file, or the variable that names it)")
    path = values.get("properties_file")
    if path is not None:
        if not path.strip() or not path.isprintable() or len(path) > 4096:
            raise BadInput("--properties-file: a path of at most 4096 printable characters")
        read_properties_file(Path(path))  # readable and well-formed here; its values are never shown
    env = values.get("properties_env")
    if env is not None and not ENV_NAME.fullmatch(env):
        raise BadInput(f"--properties-env {validation.shown(env)}: an environment variable name ([A-Za-z_][A-Za-z0-9_]*)")
    if (path is not None or env is not None) and servers is None:
        raise BadInput("a properties file needs the cluster's own --bootstrap-servers (without them the flags' apply)")
    labels = values.get("labels") or {}
    if len(labels) > LABELS_MAX:
        raise BadInput(f"at most {LABELS_MAX} labels")
    values["labels"] = dict(sorted(labels.items()))
    description = values.get("description")
    if description is not None:
        validation.check_description(description)
    return values


def _changes(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> list["FieldChange"]:
    from loomctl.configs.store import FieldChange  # here: configs.store imports this module

    return [FieldChange(n, (old or {}).get(n), (new or {}).get(n)) for n in FIELDS if (old or {}).get(n) != (new or {}).get(n)]


def _audit(session: "Session", actor: str, reason: str | None) -> None:
    from loomctl.db import set_audit_context

    set_audit_context(session, actor, reason)


def _locked(session: "Session", name: str) -> Cluster | None:
    from sqlalchemy import text

    found = session.execute(
        text("SELECT cluster_name FROM public.kafka_clusters WHERE cluster_name = :n FOR UPDATE"), {"n": name}
    ).first()
    return read_clusters(session, [name])[0] if found else None


def _check_version(current: Cluster, if_version: int | None) -> None:
    if if_version is not None and current.version != if_version:
        raise Conflict(
            f"cluster {current.cluster_name} is at version {current.version}, not {if_version}: changed by "
            f"{current.updated_by} at {current.updated_at:%Y-%m-%d %H:%M:%S %Z}"
        )


def add_cluster(
    session: "Session",
    name: str,
    *,
    bootstrap_servers: str | None,
    properties_file: str | None = None,
    properties_env: str | None = None,
    labels: Mapping[str, str] | None = None,
    description: str | None = None,
    actor: str,
    reason: str | None = None,
    dry_run: bool = False,
) -> ClusterChange:
    """Register a cluster; its brokers are required (only the default cluster takes them from the environment)."""
    import orjson
    from sqlalchemy import text

    check_cluster_name(name)
    if bootstrap_servers is None:
        raise BadInput(f"cluster {name}: --bootstrap-servers is required")
    values = _checked(
        {
            "bootstrap_servers": bootstrap_servers,
            "properties_file": properties_file,
            "properties_env": properties_env,
            "labels": {k: v for k, v in (labels or {}).items() if v != ""},
            "description": description or None,
        }
    )
    current = _locked(session, name)
    if current is not None:
        raise Conflict(f"cluster {name} is registered already (version {current.version}); change it with `loomctl cluster set`")
    result = ClusterChange(name, "create", _changes(None, values), None, 1 if not dry_run else None, dry_run)
    if dry_run:
        return result
    _audit(session, actor, reason)
    session.execute(
        text(
            "INSERT INTO public.kafka_clusters (cluster_name, bootstrap_servers, properties_file, properties_env, labels,"
            " description) VALUES (:name, :bootstrap_servers, :properties_file, :properties_env, CAST(:labels AS jsonb),"
            " :description)"
        ),
        {**values, "name": name, "labels": orjson.dumps(values["labels"]).decode()},
    )
    return result


_UNSET: Any = object()


def set_cluster(
    session: "Session",
    name: str,
    *,
    bootstrap_servers: str | None = _UNSET,
    properties_file: str | None = _UNSET,
    properties_env: str | None = _UNSET,
    labels: Mapping[str, str] | None = None,
    description: str | None = _UNSET,
    actor: str,
    reason: str | None = None,
    if_version: int | None = None,
    dry_run: bool = False,
) -> ClusterChange:
    """Change what is given (a label whose value is '' is removed; None clears a field); the rest stays."""
    import orjson
    from sqlalchemy import text

    check_cluster_name(name)
    current = _locked(session, name)
    if current is None:
        raise missing_clusters([name])
    _check_version(current, if_version)
    desired = current.values()
    for key, value in (
        ("bootstrap_servers", bootstrap_servers),
        ("properties_file", properties_file),
        ("properties_env", properties_env),
        ("description", description),
    ):
        if value is not _UNSET:
            desired[key] = value or None
    if properties_file not in (_UNSET, None, ""):
        desired["properties_env"] = None
    if properties_env not in (_UNSET, None, ""):
        desired["properties_file"] = None
    merged = dict(desired["labels"]) | dict(labels or {})
    desired["labels"] = {k: v for k, v in merged.items() if v != ""}
    if desired["bootstrap_servers"] is None and name != DEFAULT_CLUSTER:
        raise BadInput(f"cluster {name}: only the default cluster takes its brokers from the environment")
    desired = _checked(desired)
    changes = _changes(current.values(), desired)
    action = "update" if changes else "unchanged"
    if dry_run or not changes:
        return ClusterChange(name, action, changes, current.version, current.version, dry_run)
    _audit(session, actor, reason)
    session.execute(
        text(
            "UPDATE public.kafka_clusters SET bootstrap_servers = :bootstrap_servers, properties_file = :properties_file,"
            " properties_env = :properties_env, labels = CAST(:labels AS jsonb), description = :description"
            " WHERE cluster_name = :name AND version = :version"
        ),
        {**desired, "name": name, "labels": orjson.dumps(desired["labels"]).decode(), "version": current.version},
    )
    return ClusterChange(name, action, changes, current.version, current.version + 1, dry_run)


def remove_cluster(
    session: "Session", name: str, *, actor: str, reason: str | None = None, if_version: int | None = None, dry_run: bool = False
) -> ClusterChange:
    """Unregister a cluster no service and no pending partition change names (Conflict naming them otherwise). Its
    lag history stays, under its name, until retention removes it."""
    from sqlalchemy import text

    check_cluster_name(name)
    current = _locked(session, name)
    if current is None:
        raise missing_clusters([name])
    _check_version(current, if_version)
    services = [
        row[0]
        for row in session.execute(
            text("SELECT service_name FROM public.pipeline_consumer_configs WHERE cluster_name = :n ORDER BY 1 LIMIT 6"),
            {"n": name},
        )
    ]
    if services:
        more = ", ..." if len(services) > 5 else ""
        raise Conflict(
            f"cluster {name} has services ({', '.join(services[:5])}{more}): move them first"
            f" (`loomctl config set SERVICE --cluster OTHER`) or delete them"
        )
    changes = session.execute(
        text("SELECT count(*) FROM public.topic_partition_changes WHERE cluster_name = :n"), {"n": name}
    ).scalar_one()
    if changes:
        raise Conflict(f"cluster {name} has {changes} partition change(s) on record: they name it, so it stays registered")
    result = ClusterChange(name, "delete", _changes(current.values(), None), current.version, None, dry_run)
    if dry_run:
        return result
    _audit(session, actor, reason)
    session.execute(text("DELETE FROM public.kafka_clusters WHERE cluster_name = :n"), {"n": name})
    return result


def record_check(session: "Session", name: str, capabilities: Mapping[str, Any], *, actor: str) -> None:
    """Keep what `cluster check` found (replacing the last check's)."""
    import orjson
    from sqlalchemy import text

    session.execute(
        text(
            "INSERT INTO public.kafka_cluster_checks (cluster_name, checked_at, checked_by, capabilities)"
            " VALUES (:n, now(), :actor, CAST(:caps AS jsonb)) ON CONFLICT (cluster_name) DO UPDATE"
            " SET checked_at = excluded.checked_at, checked_by = excluded.checked_by, capabilities = excluded.capabilities"
        ),
        {"n": name, "actor": actor, "caps": orjson.dumps(dict(capabilities), default=str).decode()},
    )


def cluster_history(conn: Any, name: str, limit: int | None = None) -> list[ClusterHistoryEntry]:
    """The audit trail of one cluster, newest first (also after it was removed)."""
    check_cluster_name(name)
    rows = _mappings(
        conn,
        "SELECT id, cluster_name, changed_at, change_type, changed_by, source, reason, cluster_version, old_values,"
        " new_values, db_user FROM public.kafka_cluster_changes WHERE cluster_name = %(n)s ORDER BY id DESC"
        + (" LIMIT %(limit)s" if limit else ""),
        {"n": name, "limit": limit},
    )
    if not rows:
        read_clusters(conn, [name])  # NotFound for a stranger; a registered cluster with no trail is []
    return [
        ClusterHistoryEntry(
            r["id"],
            r["cluster_name"],
            r["changed_at"],
            r["change_type"],
            r["changed_by"],
            r["source"],
            r["reason"],
            r["cluster_version"],
            _changes(_audited(r["old_values"]), _audited(r["new_values"])),
            r["db_user"],
        )
        for r in rows
    ]


def _audited(values: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return None if values is None else {k: values.get(k) for k in FIELDS}
