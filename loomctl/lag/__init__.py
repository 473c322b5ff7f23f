"""Consumer lag: live from the cluster, sampled into history, and judged over a time window.

Semantics (DESIGN.md, "Lag"): no committed offset is *unknown*, never 0; a negative lag is
clamped to 0; a committed offset below the log start offset means records were lost to
retention before the group read them. Lag in time is interpolated between stored samples
(each carries it forward from the one before), so it survives restarts of the collector.

``samples`` holds the history row and its COPY, ``time_lag`` the lag in time, ``live`` what
`lag show` reads from the cluster, ``verdicts`` the status vocabulary, ``rules`` the status rules
(the Python twin of the SQL that judges), ``status`` the stored window's
verdict (and each service against its lag objective, `lag slo`), ``slo`` the objective's arithmetic
(catch-up, breach, state), ``history`` lag over time; ``collector`` (`lag collect`), ``exporter`` and ``http`` (what the collector
serves: Prometheus /metrics and the Burrow-compatible API) are imported only by those who use them. What services
report per batch, the alerts and the recommendations are :mod:`loomctl.processing`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_FROM = {
    "configured": ("configured_groups", "select_services"),
    "history": ("MAX_BUCKETS", "LagBucket", "TimeBuckets", "TopicLagHistory", "history", "time_buckets"),
    "live": ("BY", "LagSummary", "LagView", "PartitionLag", "default_by", "live_lag", "live_status", "show", "summarize"),
    "samples": ("HISTORY_COLUMNS", "LagSample", "copy_samples", "lost_to_retention", "partition_lag"),
    "verdicts": (
        "ERR",
        "NO_DATA",
        "OK",
        "REWIND",
        "STALL",
        "STATUS_ORDER",
        "STOP",
        "STORED_STATUSES",
        "UNKNOWN",
        "WARN",
        "status_rank",
        "worst",
    ),
    "status": ("GroupStatus", "ServiceSlo", "SloReport", "StatusReport", "slo_report", "status_report", "stored_status"),
    "time_lag": ("PREVIOUS_SAMPLE_HORIZON", "Key", "PreviousSample", "carry_time_lag_ms", "previous_samples"),
    "collector": ("Collector",),
    "exporter": ("Exporter", "ExportSnapshot"),
    "http": ("MonitoringServer",),
}
"""Where each name of the package lives. Each is imported from its module when first asked for (PEP 562):
`lag show SERVICE` needs ``live`` and what it imports, not the history, objectives or collector, and every
millisecond of import is a millisecond of that command (its target is 1.3x a bare script)."""
_MODULE_OF = {name: module for module, names in _FROM.items() for name in names}

if TYPE_CHECKING:
    from loomctl.lag.collector import Collector
    from loomctl.lag.configured import configured_groups, select_services
    from loomctl.lag.exporter import Exporter, ExportSnapshot
    from loomctl.lag.history import MAX_BUCKETS, LagBucket, TimeBuckets, TopicLagHistory, history, time_buckets
    from loomctl.lag.http import MonitoringServer
    from loomctl.lag.live import BY, LagSummary, LagView, PartitionLag, default_by, live_lag, live_status, show, summarize
    from loomctl.lag.samples import HISTORY_COLUMNS, LagSample, copy_samples, lost_to_retention, partition_lag
    from loomctl.lag.status import GroupStatus, ServiceSlo, SloReport, StatusReport, slo_report, status_report, stored_status
    from loomctl.lag.time_lag import PREVIOUS_SAMPLE_HORIZON, Key, PreviousSample, carry_time_lag_ms, previous_samples
    from loomctl.lag.verdicts import (
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
        status_rank,
        worst,
    )

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    loaded = importlib.import_module(f"{__name__}.{module}")
    # all of the module's names at once: importing ``history`` binds the submodule to the package's name
    # ``history``, which the function of that name must replace
    globals().update({n: getattr(loaded, n) for n in _FROM[module]})
    return globals()[name]
