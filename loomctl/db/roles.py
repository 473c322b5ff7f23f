"""The database roles of loomctl's jobs: NOLOGIN group roles that migration 0013 creates (where missing) and grants
privileges to, and that an operator grants to login roles (`loomctl db grant ROLE USER`).

| role | job | may |
|---|---|---|
| loomctl_reader | every read command, the views | read every table and view (the audit trails too) |
| loomctl_operator | configs, partition changes, clusters, push | the reader's, and change configs, partition changes and clusters (audit rows are added, never changed) |
| loomctl_collector | `lag collect` | the reader's, and write the lag history and the status copy, keep the history's partitions |
| loomctl_service | the Python and Node loaders | read configs and the monitor view, record processing metrics and lag through the SQL functions |

What a role may do is what PostgreSQL says it may (``privileges``), not this table: a refusal names the role the
command needs (:func:`needed_by`). Roles belong to the PostgreSQL server, grants to one database: two loomctl
databases on one server share the role names, and a login role granted loomctl_reader in one is granted it there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from loomctl.errors import BadInput

PREFIX = "loomctl_"


@dataclass(frozen=True)
class Role:
    name: str
    job: str
    may: str


ROLES: dict[str, Role] = {
    "reader": Role(f"{PREFIX}reader", "every read command, the views", "read every table and view, the audit trails too"),
    "operator": Role(
        f"{PREFIX}operator",
        "configs, partition changes, clusters, push",
        "the reader's, and change configs, partition changes and clusters; add audit rows, never change them",
    ),
    "collector": Role(
        f"{PREFIX}collector",
        "lag collect",
        "the reader's, and write the lag history and the status copy; keep the history's partitions",
    ),
    "service": Role(
        f"{PREFIX}service",
        "the Python and Node loaders",
        "read configs and the monitor view; record processing metrics, lag and the running version through the SQL functions",
    ),
}

# What each command needs, by its path below `loomctl`; a command that is not here touches no table of loomctl's
# (`dev`, `db sql`) or is the schema owner's (`db upgrade`, `db downgrade`, `db check`, `db grant --execute`).
# tests/db/test_roles.py holds every command of the CLI to this table.
_READS = {
    "alerts", "recommend", "metrics show",
    "config list", "config show", "config profiles", "config history", "config diff", "config export", "config fields",
    "config drift", "config readiness",
    "lag show", "lag status", "lag slo", "lag history", "lag collectors",
    "partitions recommend", "partitions list", "partitions script", "partitions efficiency",
    "cluster list", "cluster show", "cluster history",
    "db current", "db history", "db roles",
}  # fmt: skip
_OPERATES = {
    "config set", "config apply-profile", "config rollback", "config delete", "config import", "config push",
    "partitions add", "partitions cancel", "partitions plan", "partitions apply",
    "cluster add", "cluster set", "cluster remove", "cluster check",
}  # fmt: skip
_OWNER = {"db upgrade", "db downgrade", "db check", "db grant"}
_NONE = {"db sql", "dev up", "dev status", "dev env", "dev down", "dev traffic"}
COMMAND_ROLES: dict[str, str | None] = {
    **{c: "reader" for c in _READS},
    **{c: "operator" for c in _OPERATES},
    "lag collect": "collector",
    **{c: None for c in _OWNER | _NONE},
}


READER, OPERATOR, COLLECTOR, SERVICE = (ROLES[job].name for job in ("reader", "operator", "collector", "service"))
TABLES = (
    "alembic_version", "pipeline_consumer_configs", "consumer_config_changes", "kafka_clusters", "kafka_cluster_checks",
    "kafka_cluster_changes", "topic_partition_changes", "consumer_lag_history", "lag_status_cache",
    "lag_status_cache_rows", "lag_status_cache_groups", "consumer_processing_metrics", "consumer_processing_metrics_rollup",
    "consumer_instances", "v_consumer_performance_monitor", "v_consumer_alerts", "v_consumer_performance_history", "v_partition_efficiency",
)  # fmt: skip
TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE")
_STATUS_COPY = ("lag_status_cache", "lag_status_cache_rows", "lag_status_cache_groups")
_SERVICE_READS = (
    "alembic_version", "pipeline_consumer_configs", "v_consumer_performance_monitor", "consumer_lag_history",
    "consumer_processing_metrics", "consumer_processing_metrics_rollup", *_STATUS_COPY,
)  # fmt: skip


def _granted(*grants: tuple[str, tuple[str, ...]]) -> dict[str, frozenset[str]]:
    out: dict[str, set[str]] = {}
    for privileges, tables in grants:
        for table in tables:
            out.setdefault(table, set()).update(privileges.split())
    return {table: frozenset(privileges) for table, privileges in out.items()}


_READS_ALL = ("SELECT", TABLES)
PRIVILEGES: dict[str, dict[str, frozenset[str]]] = {
    READER: _granted(_READS_ALL),
    OPERATOR: _granted(
        _READS_ALL,
        ("INSERT UPDATE DELETE", ("pipeline_consumer_configs", "kafka_clusters", "topic_partition_changes")),
        ("INSERT", ("consumer_config_changes", "kafka_cluster_changes", "kafka_cluster_checks")),
    ),
    COLLECTOR: _granted(_READS_ALL, ("INSERT", ("consumer_lag_history",)), ("INSERT UPDATE DELETE TRUNCATE", _STATUS_COPY)),
    SERVICE: _granted(("SELECT", _SERVICE_READS)),
}
"""What each role may do to each table and view, as PostgreSQL applies it (inherited roles included); anything
else is refused. The audit trails take new rows from the operator and are changed by no one."""
FUNCTIONS: dict[str, frozenset[str]] = {
    "record_consumer_lag": frozenset({SERVICE, COLLECTOR}),
    "record_processing_metrics": frozenset({SERVICE}),
    "record_consumer_instance": frozenset({SERVICE}),
    "forget_consumer_instance": frozenset({SERVICE}),
    "ensure_lag_history_partitions": frozenset({COLLECTOR}),
    "drop_lag_history_before": frozenset({COLLECTOR}),
    "refresh_lag_partition_status": frozenset({COLLECTOR}),
    "mark_partition_changes_applied": frozenset({OPERATOR}),
}
"""The functions that write, and the roles that may execute them; PUBLIC may not. The functions that only read are
PUBLIC's to execute, and read as their caller."""


def privilege_drift(connection: Any) -> list[str]:
    """The job roles' privileges in the database against :data:`PRIVILEGES` and :data:`FUNCTIONS`, as PostgreSQL
    applies them (``has_table_privilege``), so the answer does not depend on who asks; a missing role is drift."""
    from sqlalchemy import text

    roles = list(PRIVILEGES)
    present = {r for (r,) in connection.execute(text("SELECT rolname FROM pg_roles WHERE rolname = ANY(:r)"), {"r": roles})}
    problems = [f"role {r} is missing from the server: run `loomctl db upgrade` as a role that may create it" for r in roles
                if r not in present]  # fmt: skip
    tables = connection.execute(
        text(
            "SELECT r.rolname, c.relname, p.privilege, has_table_privilege(r.oid, c.oid, p.privilege)"
            "  FROM pg_roles AS r CROSS JOIN pg_class AS c"
            "  JOIN pg_namespace AS n ON n.oid = c.relnamespace AND n.nspname = 'public'"
            " CROSS JOIN unnest(CAST(:privileges AS text[])) AS p(privilege)"
            " WHERE r.rolname = ANY(:roles) AND c.relname = ANY(:tables)"
        ),
        {"privileges": list(TABLE_PRIVILEGES), "roles": roles, "tables": list(TABLES)},
    ).all()
    for name, table, privilege, has in sorted(tables):
        wanted = privilege in PRIVILEGES[name].get(table, frozenset())
        if has != wanted:
            problems.append(
                f"{name} {'may' if has else 'may not'} {privilege} {table}: the code says it {'may' if wanted else 'may not'}"
            )
    functions = connection.execute(
        text(
            "SELECT p.proname, r.rolname, has_function_privilege(r.oid, p.oid, 'EXECUTE'),"
            "       p.proacl IS NULL OR EXISTS (SELECT 1 FROM aclexplode(p.proacl) AS a"
            "                                    WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE')"
            "  FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace AND n.nspname = 'public'"
            " CROSS JOIN pg_roles AS r WHERE p.proname = ANY(:functions) AND r.rolname = ANY(:roles)"
        ),
        {"functions": list(FUNCTIONS), "roles": roles},
    ).all()
    for function in sorted({f for f, _, _, public in functions if public}):
        problems.append(f"PUBLIC may execute {function}(): the code gives it to {', '.join(sorted(FUNCTIONS[function]))} only")
    for function, name, has, _ in sorted(functions):
        wanted = name in FUNCTIONS[function]
        if has != wanted:
            problems.append(
                f"{name} {'may' if has else 'may not'} execute {function}(): the code says it {'may' if wanted else 'may not'}"
            )
    return problems


def listing(connection: Any) -> list[dict[str, Any]]:
    """Each job role: its job, what it may do, whether the server has it, and the roles granted it (directly)."""
    from sqlalchemy import text

    members: dict[str, list[str]] = {}
    rows = connection.execute(
        text(
            "SELECT g.rolname, m.rolname FROM pg_auth_members AS a"
            "  JOIN pg_roles AS g ON g.oid = a.roleid JOIN pg_roles AS m ON m.oid = a.member"
            " WHERE g.rolname = ANY(:roles) ORDER BY 1, 2"
        ),
        {"roles": [r.name for r in ROLES.values()]},
    ).all()
    for group, member in rows:
        members.setdefault(group, []).append(member)
    present = set(
        connection.execute(
            text("SELECT rolname FROM pg_roles WHERE rolname = ANY(:r)"), {"r": [r.name for r in ROLES.values()]}
        ).scalars()
    )
    return [
        {"role": r.name, "job": r.job, "may": r.may, "exists": r.name in present, "members": members.get(r.name, [])}
        for r in ROLES.values()
    ]


def role(name: str) -> Role:
    """``reader`` or ``loomctl_reader`` (any case) as its Role; BadInput naming the four otherwise."""
    key = name.strip().lower().removeprefix(PREFIX)
    if key not in ROLES:
        raise BadInput(f"no loomctl role {name!r}: the roles are {', '.join(ROLES)}")
    return ROLES[key]


def needed_by(command: str) -> str:
    """The words a refusal adds for ``command`` (its path below ``loomctl``, as ``config set``): the role it needs,
    and how an operator grants it; for a command of the schema's owner, that; nothing for a path it does not know."""
    path = " ".join(command.split())
    if path not in COMMAND_ROLES:
        return ""
    job = COMMAND_ROLES[path]
    if job is None:
        return f"`loomctl {path}` runs as the owner of loomctl's schema (the role that ran `loomctl db upgrade`)"
    return f"`loomctl {path}` needs the role {ROLES[job].name} (`loomctl db grant {job} USER`)"


def grant_sql(job: str, user: str) -> str:
    """``GRANT loomctl_operator TO "alice"``: the statement that gives ``user`` (a login role) a job's role."""
    return f"GRANT {role(job).name} TO {quote_identifier(user)}"


def quote_identifier(name: str) -> str:
    """``name`` as a PostgreSQL identifier, always quoted (so a user name keeps its case and cannot end the
    statement); BadInput for a name PostgreSQL cannot hold."""
    if not name or "\x00" in name or len(name.encode()) > 63:
        raise BadInput(f"{name!r} is not a PostgreSQL user name (1 to 63 bytes, no NUL)")
    return '"' + name.replace('"', '""') + '"'


def revoke_sql(job: str, user: str) -> str:
    """``REVOKE loomctl_operator FROM "alice"``."""
    return f"REVOKE {role(job).name} FROM {quote_identifier(user)}"


def grant(connection: Any, job: str, user: str, *, revoke: bool = False) -> bool:
    """Grant (or revoke) a job's role to ``user`` in the database of ``connection``; False when there was nothing to
    do (already granted, or not granted). NotFound for a user or role the server does not have."""
    from sqlalchemy import text

    from loomctl.errors import NotFound

    wanted = role(job)
    statement = revoke_sql(job, user) if revoke else grant_sql(job, user)
    found = dict(
        connection.execute(
            text("SELECT rolname, oid FROM pg_roles WHERE rolname IN (:u, :r)"), {"u": user, "r": wanted.name}
        ).all()
    )
    if wanted.name not in found:
        raise NotFound(f"the server has no role {wanted.name}: run `loomctl db upgrade` first")
    if user not in found:
        raise NotFound(f"the server has no role {user!r} to grant {wanted.name} to")
    if user == wanted.name or user.startswith(PREFIX) and user.removeprefix(PREFIX) in ROLES:
        raise BadInput(f"{user} is a job role itself: grant job roles to login roles")
    member = connection.execute(
        text("SELECT EXISTS (SELECT 1 FROM pg_auth_members WHERE roleid = :r AND member = :u)"),
        {"r": found[wanted.name], "u": found[user]},
    ).scalar()
    if bool(member) != revoke:
        return False
    connection.execute(text(statement))
    return True
