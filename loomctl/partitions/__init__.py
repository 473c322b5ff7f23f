"""Partition changes: recommendations from measured load, the changes table, a plan against the live cluster, apply.

- ``recommend``: the count a topic's measured load calls for (never lower than today, its numbers in
  the reason), stored as pending changes on request.
- ``changes``: the rows of ``topic_partition_changes`` and their statuses, manual changes, the guide's script.
- ``plan``: each pending change against the cluster now, its consuming groups, keys and risks.
- ``apply``: ``AdminClient.create_partitions`` for a plan; only a count the cluster shows marks a change
  applied, and two runs at once alter each topic once.
"""

from loomctl.partitions.apply import (
    Applied,
    ApplyReport,
    ApplyResult,
    Outcome,
    apply_pending,
    apply_plan,
    summarize,
)
from loomctl.partitions.changes import (
    CANCELLABLE,
    STATUSES,
    PartitionChange,
    Source,
    Status,
    add_change,
    cancel_change,
    chosen_statuses,
    efficiency,
    list_changes,
    pending_clusters,
    update_script,
)
from loomctl.partitions.plan import (
    GROUP_HISTORY_WINDOW,
    SATISFIED,
    ConsumingGroup,
    Plan,
    PlanAction,
    PlanItem,
    consuming_groups,
    plan_changes,
)
from loomctl.partitions.recommend import (
    DEFAULT_HEADROOM,
    DEFAULT_MAX_PARTITIONS,
    DEFAULT_WINDOW,
    ConsumerLoad,
    CountsFrom,
    Recommendation,
    RecommendReport,
    TopicLoad,
    Written,
    describe_window,
    history_topics,
    recommend,
    recommend_clusters,
    recommend_partitions,
    topic_loads,
    write_recommendations,
)

__all__ = [
    # recommend
    "DEFAULT_HEADROOM",
    "DEFAULT_MAX_PARTITIONS",
    "DEFAULT_WINDOW",
    "ConsumerLoad",
    "CountsFrom",
    "Recommendation",
    "RecommendReport",
    "TopicLoad",
    "Written",
    "describe_window",
    "history_topics",
    "recommend",
    "recommend_clusters",
    "recommend_partitions",
    "topic_loads",
    "write_recommendations",
    # changes
    "CANCELLABLE",
    "STATUSES",
    "PartitionChange",
    "Source",
    "Status",
    "add_change",
    "cancel_change",
    "chosen_statuses",
    "efficiency",
    "list_changes",
    "pending_clusters",
    "update_script",
    # plan
    "GROUP_HISTORY_WINDOW",
    "SATISFIED",
    "PlanAction",
    "ConsumingGroup",
    "Plan",
    "PlanItem",
    "consuming_groups",
    "plan_changes",
    # apply
    "Applied",
    "ApplyReport",
    "ApplyResult",
    "Outcome",
    "apply_pending",
    "apply_plan",
    "summarize",
]
