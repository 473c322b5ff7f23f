"""Consumer configs in `pipeline_consumer_configs`: the store (read, change, audit, diff, roll back),
files (export, import), the export formats and the broker's bounds.

The names below are re-exported lazily (PEP 562), so `from loomctl import configs` and
`configs.set_config(...)` work while importing the package itself costs nothing: the CLI imports
:mod:`loomctl.configs.formats` at start-up for its ``--format`` choices.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "store": (
        "Action",
        "ChangeResult",
        "ConsumerConfig",
        "RunningInstance",
        "instances_behind",
        "running_instances",
        "DiffResult",
        "FieldChange",
        "FieldDiff",
        "HistoryEntry",
        "LABELS",
        "RollbackPlan",
        "SETTING_NAMES",
        "TRACKED",
        "apply_profile",
        "changes_between",
        "reload_summary",
        "client_config",
        "client_options",
        "delete_config",
        "diff",
        "find_config",
        "get_config",
        "history",
        "list_configs",
        "plan_rollback",
        "profiles",
        "read_configs",
        "record_push",
        "require_configs",
        "rollback",
        "set_config",
    ),
    "files": (
        "IMPORT_PLAN_LABELS",
        "ImportPlan",
        "PlanItem",
        "apply_import",
        "format_export",
        "kafkajs_document",
        "parse_specs",
        "plan_import",
        "read_specs",
        "specs",
    ),
    "commands": (
        "Checked",
        "ImportReport",
        "admins",
        "broker_checks",
        "by_cluster",
        "chosen_configs",
        "drift_by_cluster",
        "import_specs",
        "kafka_properties_of",
        "push_configs",
        "set_checked",
        "wires",
    ),
    "services": ("group_services", "missing_services"),
    "formats": ("FORMATS", "FORMAT_NAMES", "ExportFormat", "ServiceSpec"),
    "broker": (
        "BrokerCheck",
        "Drift",
        "DriftReport",
        "PushAction",
        "PushItem",
        "PushReport",
        "check_changes",
        "drift",
        "history_changes",
        "carry_out_push",
        "plan_push",
        "push",
    ),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
