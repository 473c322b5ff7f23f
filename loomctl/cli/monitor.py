"""`loomctl alerts`, `loomctl recommend` and `loomctl metrics`: what the measured lag and batches say."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any, Optional

import typer

from loomctl.cli.completion import complete_service
from loomctl.cli.options import (
    BucketOption,
    ClusterOption,
    OutputOption,
    ServiceArgument,
    SinceOption,
    emit,
    info,
    new_app,
    read_range,
    state,
)
from loomctl.processing import views

metrics_app = new_app("Processing metrics that services report per batch (consumer_processing_metrics).")


class FailOn(str, Enum):
    warn = "warn"
    critical = "critical"


def _connect(ctx: typer.Context) -> Any:
    from loomctl.db import connect

    return connect(state(ctx).settings)


WindowOption = Annotated[
    Optional[str], typer.Option("--window", help="Judge lag over this window instead of the views' 15 minutes.")
]


def _window(window: str | None) -> Any:
    from loomctl.validation import parse_duration

    return parse_duration(window, option="--window") if window else None


def alerts(
    ctx: typer.Context,
    window: WindowOption = None,
    fail_on: Annotated[
        Optional[FailOn], typer.Option("--fail-on", help="Exit 1 when an alert reaches this level (for cron and CI).")
    ] = None,
    cluster: ClusterOption = None,
    output: OutputOption = None,
) -> None:
    """Active alerts from measured lag and processing (v_consumer_alerts). Example: loomctl alerts --fail-on critical"""
    from loomctl import processing

    status_window = _window(window)
    with _connect(ctx) as conn:
        rows = processing.alerts(conn, status_window, cluster)
    emit(ctx, rows, output, views.ALERTS)
    if fail_on is not None:
        reached = processing.alerts_at_or_above(rows, fail_on.value)
        if reached:
            info(f"{len(reached)} alert{'s' if len(reached) != 1 else ''} at {fail_on.value} or above")
            raise typer.Exit(1)


def recommend(
    ctx: typer.Context,
    service: Annotated[
        Optional[str],
        typer.Argument(
            help="One service (default: every service with a recommendation).",
            show_default=False,
            autocompletion=complete_service,
        ),
    ] = None,
    window: WindowOption = None,
    cluster: ClusterOption = None,
    output: OutputOption = None,
) -> None:
    """Processing recommendations with the numbers behind them. Example: loomctl recommend speech-processor"""
    from loomctl import processing

    status_window = _window(window)
    with _connect(ctx) as conn:
        rows = processing.recommendations(conn, service, status_window, cluster)
    emit(ctx, rows, output, views.RECOMMENDATIONS)
    if service is not None and rows and rows[0].get("recommendation") is None:
        info(f"{service}: nothing to change from the last measurements (status {rows[0].get('status')})")


@metrics_app.command("show")
def metrics_show(
    ctx: typer.Context,
    service: ServiceArgument,
    since: SinceOption = "1h",
    bucket: BucketOption = "5m",
    output: OutputOption = None,
) -> None:
    """Processing time, messages per second, batch fill and error rate of one service. Example: loomctl metrics show speech-processor --since 1h"""
    from loomctl import processing

    report = read_range(ctx, processing.processing, service, since, bucket)
    emit(ctx, report, output, views.processing(service, since, bucket))
    if not report.buckets:
        info(f"no processing metrics for {service} in the last {since}: does the service record them (loader.track_batch)?")
