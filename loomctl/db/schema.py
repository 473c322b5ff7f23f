"""What the migrations and the drift check share: the lock key and what autogenerate ignores."""

from __future__ import annotations

from typing import Any

from loomctl.db.models import LAG_HISTORY_DEFAULT_PARTITION, LAG_HISTORY_PARTITION_PREFIX

# Any fixed bigint; it only has to differ from other applications' advisory locks on the database.
MIGRATION_LOCK_KEY = 7_461_120_331_001


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Leave the daily partitions of consumer_lag_history out of model comparison: they are data. And the grants:
    alembic_utils compares only those the checking role made; the job roles' privileges are compared as PostgreSQL
    applies them, whoever checks (:func:`loomctl.db.roles.privilege_drift`)."""
    if type_ == "grant_table":
        return False
    if (
        type_ == "table"
        and name
        and (
            name == LAG_HISTORY_DEFAULT_PARTITION
            or (name.startswith(LAG_HISTORY_PARTITION_PREFIX) and name[len(LAG_HISTORY_PARTITION_PREFIX) :].isdigit())
        )
    ):
        return False
    return True
