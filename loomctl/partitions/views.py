"""How each result of `loomctl partitions` reads as a table (title, columns, cells), and what JSON and YAML write of
it. Declared once here; the commands hand their result and its view to :func:`loomctl.render.emit`."""

from __future__ import annotations

from typing import Any

from loomctl.render import Table, View, view, with_cluster

RECOMMEND_COLUMNS = (
    "topic_name",
    "current_partitions",
    "recommended_partitions",
    "produce_rate",
    "per_consumer_rate",
    "consumers_needed",
    "max_group_members",
    "slo_partitions_needed",
    "reason",
)


def recommendations(window: str, written: bool) -> View:
    """A :class:`~loomctl.partitions.recommend.RecommendReport`'s recommendations over ``window`` (``written``: with
    whether each was stored)."""
    return view(
        f"partition recommendations (last {window})",
        lambda report: with_cluster((*RECOMMEND_COLUMNS, *(["written"] if written else [])))(report.recommendations),
        rows=lambda report: report.recommendations,
        document=lambda report: report.recommendations,
    )


CHANGE_COLUMNS = (
    "id",
    "topic_name",
    "cluster_name",
    "current_partitions",
    "recommended_partitions",
    "status",
    "source",
    "created_at",
    "applied_at",
    "applied_by",
    "error",
    "reason",
)


def changes(statuses: list[str] | None) -> View:
    """A list of :class:`~loomctl.partitions.changes.PartitionChange` of ``statuses`` (None: every status)."""
    return view("partition changes" + ("" if statuses is None else f" ({', '.join(statuses)})"), CHANGE_COLUMNS)


def change(title: str) -> View:
    """One :class:`~loomctl.partitions.changes.PartitionChange`, as names and values."""
    return view(title)


def _plan_rows(plan: Any) -> list[dict[str, Any]]:
    """The plan in short cells: the full risk texts go to stderr, and into -o json."""
    return [
        {
            "topic_name": i.topic_name,
            "now": i.current_partitions,
            "target": i.target_partitions,
            "action": i.action,
            "keyed": i.keyed,
            "consumers": [g.service_name or g.consumer_group_id for g in i.consumer_groups] or "-",
            "risks": "; ".join(i.risk_flags) or "-",
        }
        for i in plan.items
    ]


PLAN = View(
    (Table("partition plan", ("topic_name", "now", "target", "action", "keyed", "consumers", "risks"), _plan_rows, True),)
)
"""A :class:`~loomctl.partitions.plan.Plan` (no table when it has nothing to apply)."""


APPLIED = View(
    (
        Table(
            lambda applied: "dry run: nothing changed" if applied.dry_run else "apply",
            ("topic_name", "partitions_before", "partitions_after", "outcome", "error"),
            lambda applied: applied.results,
            only_with_rows=True,
        ),
    ),
    document=lambda applied: {"plan": applied.plan, "results": applied.results},
)
"""An :class:`~loomctl.partitions.apply.Applied` run of `apply` (its plan went before, as :data:`PLAN`)."""

EFFICIENCY = view("partition efficiency (last hour)")
