"""How alerts, recommendations and processing figures read as tables (title, columns, cells), and what JSON and
YAML write of them. Declared once here; the commands hand their result and its view to :func:`loomctl.render.emit`."""

from __future__ import annotations

from loomctl.render import Table, View, view, with_cluster

ALERTS = view("active alerts", with_cluster(("severity", "service_name", "alert_type", "message", "detected_at")))
"""The rows of :func:`loomctl.processing.alerts`."""

RECOMMENDATIONS = view(
    "recommendations",
    with_cluster(
        (
            "service_name",
            "status",
            "avg_batch_size",
            "max_poll_records",
            "batch_efficiency",
            "lag_change",
            "messages_per_second",
            "poll_interval_usage",
            "error_rate",
            "slo_state",
            "consumers_needed",
            "recommendation",
            "slo_recommendation",
        )
    ),
)
"""The rows of :func:`loomctl.processing.recommendations`."""


def processing(service: str, since: str, bucket: str) -> View:
    """A service's processing report: the summary over ``since``, then its ``bucket``-wide buckets."""
    return View(
        (
            Table(f"{service}: last {since}", rows=lambda report: report.summary),
            Table(
                f"per {bucket}",
                (
                    "timestamp",
                    "batches",
                    "messages_processed",
                    "messages_failed",
                    "avg_batch_size",
                    "avg_processing_time_ms",
                    "p95_processing_time_ms",
                    "messages_per_second",
                    "error_rate",
                ),
                lambda report: report.buckets,
                only_with_rows=True,
            ),
        )
    )
