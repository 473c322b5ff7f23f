"""Consumer lag: live from the cluster, sampled into history, and judged over a time window.

Semantics (DESIGN.md, "Lag"): no committed offset is *unknown*, never 0; a negative lag is
clamped to 0; a committed offset below the log start offset means records were lost to
retention before the group read them. Lag in time is interpolated between stored samples
(each carries it forward from the one before), so it survives restarts of the collector.

``samples`` holds the history row and its COPY, ``time_lag`` the lag in time, ``live`` what
`lag show` reads from the cluster, ``status`` the status vocabulary and the stored window's
verdict (and each service against its lag objective, `lag slo`), ``slo`` the objective's arithmetic
(catch-up, breach, state), ``history`` lag over time; ``collector`` (`lag collect`), ``exporter`` and ``http`` (what the collector
serves: Prometheus /metrics and the Burrow-compatible API) and ``metrics`` (what services report per
batch) are imported only by those who use them.
"""

from __future__ import annotations

from typing import Any

from loomctl.lag.configured import configured_groups, select_services
from loomctl.lag.history import (
    MAX_BUCKETS,
    LagBucket,
    TimeBuckets,
    TopicLagHistory,
    history,
    time_buckets,
)
from loomctl.lag.live import (
    BY,
    LagSummary,
    LagView,
    PartitionLag,
    default_by,
    live_lag,
    live_status,
    show,
    summarize,
)
from loomctl.lag.samples import HISTORY_COLUMNS, LagSample, copy_samples, lost_to_retention, partition_lag
from loomctl.lag.status import (
    ERR,
    NO_DATA,
    OK,
    REWIND,
    STALL,
    STATUS_ORDER,
    STOP,
    STORED_STATUSES,
    UNKNOWN,
    WARN,
    GroupStatus,
    ServiceSlo,
    SloReport,
    StatusReport,
    slo_report,
    status_rank,
    status_report,
    stored_status,
    worst,
)
from loomctl.lag.time_lag import PREVIOUS_SAMPLE_HORIZON, Key, PreviousSample, carry_time_lag_ms, previous_samples

__all__ = [
    "BY", "ERR", "HISTORY_COLUMNS", "MAX_BUCKETS", "NO_DATA", "OK", "PREVIOUS_SAMPLE_HORIZON", "REWIND", "STALL",
    "STATUS_ORDER", "STOP", "STORED_STATUSES", "UNKNOWN", "WARN",
    "Collector", "ExportSnapshot", "Exporter", "GroupStatus", "MonitoringServer", "Key", "LagBucket", "LagSample", "LagSummary", "LagView", "PartitionLag",
    "PreviousSample", "ServiceSlo", "SloReport", "StatusReport", "TimeBuckets", "TopicLagHistory",
    "carry_time_lag_ms", "configured_groups", "copy_samples", "default_by", "history", "live_lag", "live_status",
    "lost_to_retention", "partition_lag", "previous_samples", "select_services", "show", "slo_report", "status_rank",
    "status_report", "stored_status", "summarize", "time_buckets", "worst",
]


def __getattr__(name: str) -> Any:
    # the collector (a child process per Kafka client) loads only for those who run it
    if name == "Collector":
        from loomctl.lag.collector import Collector

        return Collector
    if name in ("Exporter", "ExportSnapshot"):
        from loomctl.lag import exporter

        return getattr(exporter, name)
    if name == "MonitoringServer":
        from loomctl.lag.http import MonitoringServer

        return MonitoringServer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
