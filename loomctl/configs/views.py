"""How each result of `loomctl config` reads as a table (title, columns, cells), and what JSON and YAML write of it.
Declared once here; the commands hand their result and its view to :func:`loomctl.render.emit`."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from loomctl.render import Table, View, view, with_cluster

LIST = view(
    "consumer configs",
    with_cluster(
        (
            "service_name",
            "consumer_group_id",
            "profile",
            "max_poll_records",
            "max_poll_interval_ms",
            "session_timeout_ms",
            "enable_auto_commit",
            "version",
            "updated_by",
            "updated_at",
        )
    ),
    rows=lambda configs: [c.record() for c in configs],
    document=lambda configs: [c.record() for c in configs],
)
"""A list of :class:`~loomctl.configs.store.ConsumerConfig`."""


def record(title: str) -> View:
    """One record (a config, or the properties a client gets) as names and values."""
    return view(title)


CHANGES = view(
    lambda result: f"{result.service_name}: {result.action}",
    ("field", "old", "new", "reload"),
    rows=lambda result: [{**vars(c), "reload": result.reloads.get(c.field)} for c in result.changes],
)
"""A :class:`~loomctl.configs.store.ChangeResult`: each field's old and new value."""


def profile_records() -> list[dict[str, Any]]:
    """The named profiles, each with its default lag objective."""
    from loomctl.configs.store import profiles
    from loomctl.lag.slo import PROFILE_LAG_SLO_SECONDS

    return [{**vars(p), "lag_slo_seconds": PROFILE_LAG_SLO_SECONDS.get(p.name)} for p in profiles()]


PROFILES = view(columns=("name", "title", "settings", "lag_slo_seconds", "examples"))


def _reload_text(name: str) -> str:
    """A field's reload class by group protocol: ``recreate`` where all agree, else ``recreate (consumer: broker)``."""
    from loomctl.consumer_config import DEFAULTS, GROUP_PROTOCOLS, reload_class

    classes = {p: reload_class(name, {**DEFAULTS, "group_protocol": p}) for p in GROUP_PROTOCOLS}
    usual = classes["classic"]
    others = ", ".join(f"{p}: {c}" for p, c in classes.items() if c != usual)
    return f"{usual} ({others})" if others else usual


def field_records() -> list[dict[str, Any]]:
    """Every consumer setting with its range, default and per-client names."""
    from loomctl.consumer_config import FIELDS

    return [
        {
            "name": f.name,
            "default": f.default,
            "allowed": f.describe_range(),
            "java": f.java,
            "librdkafka": f.librdkafka,
            "kafkajs": f.kafkajs,
            "reload": _reload_text(f.name),
            "description": f.description,
        }
        for f in FIELDS
    ]


FIELDS = view("consumer settings")


def changes_cell(changes: list[Any], updated: bool) -> Any:
    """An update's fields as ``old -> new``; a create or a delete touches every field, so only their count."""
    return {c.field: f"{c.old} -> {c.new}" for c in changes} if updated else f"{len(changes)} fields (-o json shows them)"


def history(service: str) -> View:
    """A service's :class:`~loomctl.configs.store.HistoryEntry` list."""
    from loomctl.configs.store import Action

    return view(
        f"{service}: history",
        ("id", "changed_at", "change_type", "changed_by", "db_user", "config_version", "reason", "changes"),
        rows=lambda entries: [
            {**vars(e), "changes": changes_cell(e.changes, e.change_type in (Action.UPDATE, Action.PUSH))} for e in entries
        ],
    )


def diff(all_fields: bool) -> View:
    """A :class:`~loomctl.configs.store.DiffResult`: the fields that differ, or (``all_fields``) every field."""

    def shown(result: Any) -> list[Any]:
        return result.fields if all_fields else result.differences

    return view(
        lambda result: f"{result.service_name} vs {result.against}",
        ("field", "current", "other", "differs"),
        rows=shown,
        document=lambda result: {"service_name": result.service_name, "against": result.against, "fields": shown(result)},
    )


def _import_rows(plan: Any) -> list[dict[str, Any]]:
    from loomctl.configs.files import IMPORT_PLAN_LABELS
    from loomctl.configs.store import Action

    return [
        {
            "service_name": i.service_name,
            "action": i.action,
            "changes": changes_cell(i.changes, i.action == IMPORT_PLAN_LABELS[Action.UPDATE]),
        }
        for i in plan.items
    ]


IMPORT_PLAN = view(
    "import plan",
    ("service_name", "action", "changes"),
    rows=_import_rows,
    document=lambda plan: {
        "counts": plan.counts(),
        "items": [{"service_name": i.service_name, "action": i.action, "changes": i.changes} for i in plan.items],
    },
)
"""An :class:`~loomctl.configs.files.ImportPlan`."""


PUSH_COLUMNS = ("service_name", "consumer_group_id", "group_protocol", "action", "changes", "reason")


def _push_rows(items: list[Any]) -> list[dict[str, Any]]:
    return [
        {
            "service_name": i.service_name,
            "consumer_group_id": i.consumer_group_id,
            "group_protocol": i.group_protocol,
            "action": i.action,
            "changes": {c.name: f"{c.old}{' (default)' if c.old_is_default else ''} -> {c.new}" for c in i.changes},
            "reason": i.reason,
        }
        for i in items
    ]


PUSH_PLAN = view("push plan", PUSH_COLUMNS, rows=_push_rows)
"""The :class:`~loomctl.configs.broker.PushItem` list of a push, before it is confirmed."""

PUSH = View(
    (
        Table(
            lambda report: "dry run: nothing set" if report.dry_run else "config push",
            PUSH_COLUMNS,
            lambda r: _push_rows(r.items),
        ),
    )
)
"""A :class:`~loomctl.configs.broker.PushReport`."""

DRIFT = view(
    "config drift",
    ("service_name", "group_protocol", "group_type", "group_state", "members", "partitions", "assignor_in_use", "drift"),
    rows=lambda report: [{**asdict(d), "drift": "; ".join(d.drift) or "in sync"} for d in report.services],
    document=lambda report: [{**asdict(d), "in_sync": d.in_sync} for d in report.services],
)
"""A :class:`~loomctl.configs.broker.DriftReport`."""

READINESS_COLUMNS = ("service_name", "consumer_group_id", "verdict", "blockers", "commands")


def _readiness_rows(report: Any) -> list[dict[str, Any]]:
    """A line per blocker (and per check that could not be told), a line per command and the step after them."""
    return [
        {
            "cluster_name": s.cluster_name,
            "service_name": s.service_name,
            "consumer_group_id": s.consumer_group_id,
            "verdict": s.verdict,
            "blockers": "\n".join([*s.blockers, *(f"cannot tell: {u}" for u in s.unknown)]) or "none",
            "commands": "\n".join([*s.commands, *([f"# then {s.next_step}"] if s.next_step else [])]) or "-",
        }
        for s in report.services
    ]


def _readiness_document(report: Any) -> dict[str, Any]:
    return {
        "services": [
            {
                "service_name": s.service_name,
                "cluster_name": s.cluster_name,
                "consumer_group_id": s.consumer_group_id,
                "config_version": s.config_version,
                "group_type": s.group_type,
                "group_state": s.group_state,
                "members": s.members,
                "verdict": s.verdict,
                "blockers": s.blockers,
                "unknown": s.unknown,
                "checks": s.checks,
                "changes": s.changes,
                "commands": s.commands,
                "next_step": s.next_step,
            }
            for s in report.services
        ],
        "counts": report.counts(),
        "already_consumer": report.already_consumer,
        "share_groups": report.share_groups,
        "cluster_errors": {p.cluster_name: p.error for p in report.cluster_problems},
    }


READINESS = view(
    "consumer protocol readiness (KIP-1274)",
    lambda report: with_cluster(READINESS_COLUMNS)(report.services),
    rows=_readiness_rows,
    document=_readiness_document,
)
"""A :class:`~loomctl.configs.readiness.ReadinessReport`."""
