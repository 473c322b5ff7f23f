"""A database role for each job, so that a login role can do its job and nothing else: loomctl_reader (every read
command, the views), loomctl_operator (configs, partition changes, clusters), loomctl_collector (the lag history,
the status copy, the history's partitions) and loomctl_service (the loaders: configs, the monitor view, and the
SQL functions that record metrics and lag). NOLOGIN group roles, created where missing (a role belongs to the
server: a second loomctl database on it finds them there); an operator grants them to login roles with
`loomctl db grant ROLE USER`.

The functions that write for a caller who may not write the table itself become SECURITY DEFINER, with a fixed
search_path: record_consumer_lag and record_processing_metrics (the services), ensure_lag_history_partitions and
drop_lag_history_before (a partition is created and dropped by the table's owner). No one but the roles given it
may execute a function that writes: PUBLIC loses EXECUTE on them.

The audit trails are never updated or deleted by any of these roles: the operator adds rows (its changes' triggers
and `config push` do), and the db_user trigger (0012) records who.

Creating a role needs CREATEROLE (or a superuser); where the migrating role has not got it, a superuser creates the
roles beforehand (the error's hint gives the statements) and the migration only grants to them.

Downgrade revokes what this granted in this database and restores the functions; the roles, and the reader's
membership of the operator and the collector, stay (they belong to the server, where another database may use
them).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 23:40:00.000000
"""

from __future__ import annotations

from alembic import op

from loomctl.sql_entities import entity

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# Literals, not loomctl.db.roles: a migration keeps what it created.
READER, OPERATOR, COLLECTOR, SERVICE = "loomctl_reader", "loomctl_operator", "loomctl_collector", "loomctl_service"
JOBS = {
    READER: "loomctl: every read command and the views",
    OPERATOR: "loomctl: configs, partition changes, clusters (and what loomctl_reader may)",
    COLLECTOR: "loomctl: lag collect, the lag history and the status copy (and what loomctl_reader may)",
    SERVICE: "loomctl: the Python and Node loaders: configs, the monitor view, record_processing_metrics, record_consumer_lag",
}
TABLES = (
    "alembic_version",
    "pipeline_consumer_configs",
    "consumer_config_changes",
    "kafka_clusters",
    "kafka_cluster_checks",
    "kafka_cluster_changes",
    "topic_partition_changes",
    "consumer_lag_history",
    "lag_status_cache",
    "lag_status_cache_rows",
    "lag_status_cache_groups",
    "consumer_processing_metrics",
    "consumer_processing_metrics_rollup",
)
VIEWS = ("v_consumer_performance_monitor", "v_consumer_alerts", "v_consumer_performance_history", "v_partition_efficiency")
STATUS_COPY = ("lag_status_cache", "lag_status_cache_rows", "lag_status_cache_groups")

# (privileges, objects, role)
GRANTS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("SELECT", TABLES + VIEWS, READER),
    ("SELECT, INSERT, UPDATE, DELETE", ("pipeline_consumer_configs", "kafka_clusters", "topic_partition_changes"), OPERATOR),
    ("INSERT", ("consumer_config_changes", "kafka_cluster_changes", "kafka_cluster_checks"), OPERATOR),
    ("INSERT", ("consumer_lag_history",), COLLECTOR),
    ("SELECT, INSERT, UPDATE, DELETE, TRUNCATE", STATUS_COPY, COLLECTOR),
    # the loaders' reads: the configs, and the monitor view with what its functions read as the caller
    (
        "SELECT",
        (
            "alembic_version",
            "pipeline_consumer_configs",
            "v_consumer_performance_monitor",
            "consumer_lag_history",
            "consumer_processing_metrics",
            "consumer_processing_metrics_rollup",
        )
        + STATUS_COPY,
        SERVICE,
    ),
)
# (function, roles that may execute it); PUBLIC may not
WRITERS = (
    ("record_consumer_lag", (SERVICE, COLLECTOR)),
    ("record_processing_metrics", (SERVICE,)),
    ("ensure_lag_history_partitions", (COLLECTOR,)),
    ("drop_lag_history_before", (COLLECTOR,)),
    ("refresh_lag_partition_status", (COLLECTOR,)),
    ("mark_partition_changes_applied", (OPERATOR,)),
)
DEFINERS = (("record_consumer_lag", 2, 3), ("record_processing_metrics", 1, 2), ("ensure_lag_history_partitions", 1, 2),
            ("drop_lag_history_before", 1, 2))  # fmt: skip

CREATE_ROLES = """
DO $roles$
DECLARE
    wanted text[][] := %(roles)s;
    reader text := %(reader)s;
    i int;
BEGIN
    FOR i IN 1 .. array_length(wanted, 1) LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = wanted[i][1]) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %%I NOLOGIN', wanted[i][1]);
            EXCEPTION WHEN insufficient_privilege THEN
                RAISE EXCEPTION 'the role %% does not exist and %% may not create it', wanted[i][1], current_user
                    USING ERRCODE = 'insufficient_privilege', HINT = %(hint)s;
            END;
            EXECUTE format('COMMENT ON ROLE %%I IS %%L', wanted[i][1], wanted[i][2]);
        END IF;
    END LOOP;
    -- the operator and the collector read as the reader does
    FOR i IN 1 .. array_length(wanted, 1) LOOP
        CONTINUE WHEN wanted[i][3] = '';
        IF NOT pg_catalog.pg_has_role(wanted[i][1], reader, 'MEMBER') THEN
            BEGIN
                EXECUTE format('GRANT %%I TO %%I', reader, wanted[i][1]);
            EXCEPTION WHEN insufficient_privilege THEN
                RAISE EXCEPTION '%% may not grant %% to %%', current_user, reader, wanted[i][1]
                    USING ERRCODE = 'insufficient_privilege', HINT = %(hint)s;
            END;
        END IF;
    END LOOP;
END
$roles$
"""
SUPERUSER_DOES = (
    "a superuser runs: CREATE ROLE loomctl_reader NOLOGIN; CREATE ROLE loomctl_operator NOLOGIN; "
    "CREATE ROLE loomctl_collector NOLOGIN; CREATE ROLE loomctl_service NOLOGIN; "
    "GRANT loomctl_reader TO loomctl_operator, loomctl_collector; then loomctl db upgrade again"
)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _roles_array() -> str:
    """ARRAY[[name, comment, reads as the reader ('yes' or '')], ...]"""
    rows = [(name, comment, "yes" if name in (OPERATOR, COLLECTOR) else "") for name, comment in JOBS.items()]
    return "ARRAY[" + ", ".join("ARRAY[" + ", ".join(_literal(v) for v in row) + "]" for row in rows) + "]"


def upgrade() -> None:
    for name, _, new in DEFINERS:
        op.replace_entity(entity(name, new))
    op.execute(CREATE_ROLES % {"roles": _roles_array(), "reader": _literal(READER), "hint": _literal(SUPERUSER_DOES)})
    roles = ", ".join(JOBS)
    op.execute(f"GRANT USAGE ON SCHEMA public TO {roles}")
    for privileges, objects, role in GRANTS:
        op.execute(f"GRANT {privileges} ON {', '.join(f'public.{o}' for o in objects)} TO {role}")
    # identity columns' sequences: a writer's INSERT takes the next id
    op.execute(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {OPERATOR}, {COLLECTOR}")
    for function, allowed in WRITERS:
        op.execute(f"REVOKE EXECUTE ON FUNCTION public.{function} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION public.{function} TO {', '.join(allowed)}")


def downgrade() -> None:
    roles = ", ".join(JOBS)
    for function, allowed in WRITERS:
        op.execute(f"REVOKE EXECUTE ON FUNCTION public.{function} FROM {', '.join(allowed)}")
        op.execute(f"GRANT EXECUTE ON FUNCTION public.{function} TO PUBLIC")
    op.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {roles}")
    op.execute(f"REVOKE ALL ON {', '.join(f'public.{o}' for o in TABLES + VIEWS)} FROM {roles}")
    op.execute(f"REVOKE USAGE ON SCHEMA public FROM {roles}")
    for name, old, _ in DEFINERS:
        op.replace_entity(entity(name, old))
