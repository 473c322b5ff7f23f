"""How the local stack's results read as tables, and what JSON and YAML write of them."""

from __future__ import annotations

import dataclasses
from typing import Any

from loomctl.render import Table, View, view


def _stack_grid(stack: Any) -> dict[str, Any]:
    return {f.name: getattr(stack, f.name) for f in dataclasses.fields(stack) if f.name != "clusters"}


def _cluster_rows(stack: Any) -> list[dict[str, Any]]:
    if len(stack.clusters) < 2:
        return []  # one cluster: the grid says it all, as it always has
    return [
        {
            "name": c.name,
            "bootstrap_servers": c.bootstrap_servers,
            "cluster_id": c.kafka.cluster_id,
            "pid": c.kafka.pid,
            "controller_port": c.kafka.controller_port,
            "healthy": c.healthy,
        }
        for c in stack.clusters
    ]


STACK = View(
    (
        Table(rows=_stack_grid),
        Table("Kafka clusters", rows=_cluster_rows, only_with_rows=True),
    )
)
"""A :class:`~loomctl.devstack.stack.StackInfo`: its names and values, then its Kafka clusters when it has more than
one (JSON: the whole StackInfo, ``clusters`` included)."""

TRAFFIC = view(
    lambda report: (
        f"demo consumers{f' on cluster {report.cluster_name}' if report.cluster_name else ''} after {report.duration_s:g} s"
    ),
    (
        "service_name",
        "behaviour",
        "topics",
        "consumer_group_id",
        "members",
        "batches",
        "messages_consumed",
        "messages_failed",
        "commits",
        "state",
        "error",
    ),
    rows=lambda report: report.consumers,
)
"""A :class:`~loomctl.devstack.traffic.TrafficReport`: one row per demo consumer (JSON: the whole report)."""
