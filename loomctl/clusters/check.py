"""`cluster check`: what each cluster can do, asked of the cluster itself, every cluster at once."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loomctl.errors import LoomError

if TYPE_CHECKING:
    from loomctl.clusters.store import Cluster
    from loomctl.settings import Settings

CAPABILITY_COLUMNS = ("consumer_protocol", "share_groups", "streams_groups", "group_configs")
MAX_CONCURRENT_CHECKS = 8


@dataclass(frozen=True)
class ClusterCheck:
    cluster_name: str
    capabilities: dict[str, Any] | None
    """What the cluster answered (stored in kafka_cluster_checks); None when it could not be asked."""
    error: str | None = None

    @property
    def reachable(self) -> bool:
        return self.capabilities is not None

    def record(self) -> dict[str, Any]:
        return {
            "cluster_name": self.cluster_name,
            "reachable": self.reachable,
            "error": self.error,
            "capabilities": self.capabilities,
        }

    def row(self) -> dict[str, Any]:
        caps = self.capabilities or {}
        row: dict[str, Any] = {
            "cluster_name": self.cluster_name,
            "reachable": self.reachable,
            "broker_version": (caps.get("broker_version") or {}).get("text") or ("unknown" if self.reachable else "-"),
            "brokers": caps.get("broker_count"),
            "error": self.error or "",
        }
        for name in CAPABILITY_COLUMNS:
            value = (caps.get(name) or {}).get("supported")
            row[name] = "-" if not self.reachable else "yes" if value is True else "no" if value is False else "unknown"
        return row


def check_one(cluster: "Cluster", base: "Settings", timeout: float) -> ClusterCheck:
    """One cluster's capabilities; an unreachable or misconfigured cluster is a check with its error, not a raise."""
    from loomctl.clusters.store import settings_for
    from loomctl.kafka import admin_for
    from loomctl.kafka.capabilities import capabilities

    try:
        properties = settings_for(cluster, base).kafka_properties()
        admin = admin_for(properties, timeout=timeout)
        found = capabilities(admin, timeout=timeout, properties=properties)
    except LoomError as exc:
        return ClusterCheck(cluster.cluster_name, None, str(exc))
    return ClusterCheck(cluster.cluster_name, found.as_dict())


def check_clusters(clusters: Sequence["Cluster"], base: "Settings", timeout: float) -> list[ClusterCheck]:
    """Every cluster checked concurrently, in the order given: a slow or unreachable one costs its own timeout only."""
    if not clusters:
        return []
    with ThreadPoolExecutor(max_workers=min(MAX_CONCURRENT_CHECKS, len(clusters))) as pool:
        return list(pool.map(lambda c: check_one(c, base, timeout), clusters))


def unreachable_error(checks: Sequence[ClusterCheck]) -> None:
    """After the table: exit 5 naming the clusters that could not be asked (the others' answers are kept)."""
    from loomctl.errors import BackendUnavailable

    failed = [c.cluster_name for c in checks if not c.reachable]
    if failed:
        raise BackendUnavailable(f"could not check {', '.join(failed)}: see the error column")
