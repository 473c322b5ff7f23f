"""The views, SQL functions and triggers that the schema declares, as alembic_utils entities.

Each object's SQL lives in `loomctl/db/sql/<name>.<version>.sql`, the versions the code no longer declares in
`loomctl/db/sql/superseded/` (the migrations that created them still read them there). A released version's file is
never edited: a change is a new version file plus a migration that replaces the old entity
with the new one, so old migrations keep creating exactly what they created. CURRENT names the
version the code expects; `loomctl db check` compares it with the database, so a view or
function altered by hand shows up as drift.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

# In creation order: functions before the triggers and views that use them.
CURRENT: dict[str, int] = {
    "consumer_config_stamp": 1,
    "audit_db_user": 1,
    "consumer_config_audit": 1,
    "kafka_cluster_audit": 1,
    "topic_partition_change_sync": 2,
    "generate_partition_update_script": 2,
    "mark_partition_changes_applied": 1,
    "record_consumer_lag": 3,
    "record_processing_metrics": 2,
    "record_consumer_instance": 1,
    "forget_consumer_instance": 1,
    "ensure_lag_history_partitions": 2,
    "drop_lag_history_before": 2,
    "lag_partition_status_live": 2,
    "lag_status_cache_current": 1,
    "lag_partition_status": 5,
    "lag_objectives": 2,
    "lag_objectives_digest": 1,
    "lag_group_status_live": 2,
    "lag_group_status": 1,
    "refresh_lag_partition_status": 2,
    "processing_metrics_rollup_sync": 1,
    "processing_metrics_last_hour": 1,
    "pipeline_consumer_configs_stamp": 1,
    "pipeline_consumer_configs_audit": 1,
    "consumer_config_reload_class": 1,
    "consumer_config_notify": 1,
    "pipeline_consumer_configs_notify": 1,
    "kafka_clusters_stamp": 1,
    "kafka_clusters_audit": 1,
    "consumer_config_changes_db_user": 1,
    "kafka_cluster_changes_db_user": 1,
    "topic_partition_changes_sync": 1,
    "consumer_processing_metrics_rollup_insert": 1,
    "consumer_processing_metrics_rollup_update": 1,
    "consumer_processing_metrics_rollup_delete": 1,
    "consumer_processing_metrics_rollup_truncate": 1,
    "v_consumer_performance_monitor": 6,
    "v_consumer_alerts": 5,
    "v_consumer_performance_history": 3,
    "v_partition_efficiency": 2,
}


_GENERATED = re.compile(r"\{\{ (\w+)\(([\w.]+)\) \}\}")
"""``{{ generator(expression) }}`` in a SQL file: SQL that Python generates from the one table of the fields and
profiles (:mod:`loomctl.consumer_config`), as the CHECK constraints are, so the two cannot disagree."""


def _generated(match: re.Match[str]) -> str:
    from loomctl import consumer_config

    generators = {"profile_objective": consumer_config.profile_objective_sql, "reload_class": consumer_config.reload_class_sql}
    return generators[match.group(1)](match.group(2))


def sql_text(name: str, version: int) -> str:
    """The SQL of one version of one object: the current version's file, or a superseded one's."""
    folder = "loomctl.db.sql" if CURRENT.get(name) == version else "loomctl.db.sql.superseded"
    text = resources.files(folder).joinpath(f"{name}.{version}.sql").read_text(encoding="utf-8")
    return _GENERATED.sub(_generated, text)


def entity(name: str, version: int) -> Any:
    """The alembic_utils entity (PGFunction, PGTrigger or PGView) declared by one SQL file."""
    from alembic_utils.pg_function import PGFunction
    from alembic_utils.pg_trigger import PGTrigger
    from alembic_utils.pg_view import PGView

    sql = sql_text(name, version).strip().rstrip(";")
    words = sql.split(None, 4)[:4]
    kind = words[3] if words[1:3] == ["OR", "REPLACE"] else words[1]
    if kind == "TRIGGER":
        return PGTrigger.from_sql(sql)
    if kind == "VIEW":
        return PGView.from_sql(sql)
    return PGFunction.from_sql(sql)


def current_entities() -> list[Any]:
    return [entity(name, version) for name, version in CURRENT.items()]
