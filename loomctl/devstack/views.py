"""How the local stack's results read as tables, and what JSON and YAML write of them."""

from __future__ import annotations

from loomctl.render import PLAIN, view

STACK = PLAIN
"""A :class:`~loomctl.devstack.stack.Stack`: its names and values."""

TRAFFIC = view(
    lambda report: f"demo consumers after {report.duration_s:g} s",
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
