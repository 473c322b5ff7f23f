"""How `loomctl cluster`'s results read as tables, and what JSON and YAML write of them."""

from __future__ import annotations

from typing import Any

from loomctl.render import View, view


def _brokers(record: dict[str, Any]) -> Any:
    return record["bootstrap_servers"] or "(--bootstrap-servers / LOOM_KAFKA_BOOTSTRAP_SERVERS)"


def _properties(record: dict[str, Any]) -> Any:
    if record["properties_file"]:
        return record["properties_file"]
    if record["properties_env"]:
        return f"${record['properties_env']}"
    return "(--kafka-config / LOOM_KAFKA_CONFIG)" if record["brokers_from"] == "environment" else "-"


LIST = view(
    "kafka clusters",
    ("cluster_name", "bootstrap_servers", "properties", "labels", "services", "checked_at", "version", "updated_by"),
    rows=lambda clusters: [
        {**c.record(), "bootstrap_servers": _brokers(c.record()), "properties": _properties(c.record())} for c in clusters
    ],
    document=lambda clusters: [c.record() for c in clusters],
)
"""A list of :class:`~loomctl.clusters.store.Cluster`."""

SHOW = view(lambda record: f"cluster {record['cluster_name']}")
"""A :class:`~loomctl.clusters.store.Cluster`'s ``record()`` as names and values."""

CHANGES = view(
    lambda result: f"cluster {result.cluster_name}: {result.action}",
    ("field", "old", "new"),
    rows=lambda result: result.changes,
)
"""A :class:`~loomctl.clusters.store.ClusterChange`."""


def history(name: str) -> View:
    return view(
        f"cluster {name}: history",
        ("id", "changed_at", "change_type", "changed_by", "db_user", "cluster_version", "reason", "changes"),
        rows=lambda entries: [{**vars(e), "changes": {c.field: f"{c.old} -> {c.new}" for c in e.changes}} for e in entries],
    )


CHECKS = view(
    "what each cluster can do",
    (
        "cluster_name",
        "reachable",
        "broker_version",
        "brokers",
        "consumer_protocol",
        "share_groups",
        "streams_groups",
        "group_configs",
        "error",
    ),
    rows=lambda checks: [c.row() for c in checks],
    document=lambda checks: [c.record() for c in checks],
)
"""A list of :class:`~loomctl.clusters.check.ClusterCheck`."""
