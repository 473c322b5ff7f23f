"""Lag objectives in seconds: when each partition and group catches up, when it breaches, and what meeting it takes.

The one place of the arithmetic. ``v_consumer_performance_monitor`` computes the same figures in SQL from the
same rows of ``lag_partition_status``; tests/lag/test_slo_views.py holds the two together, row by row.

Per partition, over the status window (from its first sample with a commit to its last):

- produce rate = log-end-offset delta / seconds, consume rate = committed-offset delta / seconds;
- *caught up*: lag 0, or no more than the producers write in one sampling interval (produced / (samples - 1)):
  a consumer that commits per batch always has a batch in flight, and that is not a backlog;
- ``catch_up_seconds`` = lag / (consume rate - produce rate) where the consumer gains; 0 when caught up;
  ``catch_up_never`` (and None) where it does not gain; None, never False, where the rates are unknown
  (fewer than two samples) or the lag is (no commit);
- lag in time grows by ``1 - consume rate / produce rate`` seconds a second (a consumer reading at a fifth of
  the produce rate falls 0.8 s behind every second); on a topic nobody writes to, by 1 s a second while
  nothing is consumed, else not at all; ``breach_in_seconds`` = (objective - lag in time) / that growth,
  0 when over the objective already, None when it does not grow (or the partition is caught up).

A group follows its slowest partition (skew counts, not the sum): its catch-up is its latest partition's
(never if any partition never catches up), its lag in time the highest, its breach the soonest. Its state:
``no_slo`` without an objective, ``no_data`` without a partition whose lag in time is known, ``breached``
over the objective, ``at_risk`` when a breach is predicted within the window or the catch-up takes longer
than the objective (or never comes), else ``met``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from loomctl.consumer_config import PROFILES

MET = "met"
AT_RISK = "at_risk"
BREACHED = "breached"
NO_SLO = "no_slo"
NO_DATA = "no_data"

SLO_STATES = (NO_SLO, MET, NO_DATA, AT_RISK, BREACHED)
"""Least to most urgent: `lag slo` lists the worst first; a service with no samples ranks above one that meets
its objective (a collector that stopped must not look like a healthy service)."""
_RANK = {state: rank for rank, state in enumerate(SLO_STATES)}

SLO_ALERTS = {"slo_breached": "critical", "slo_at_risk": "warning"}
"""The alert kinds of ``v_consumer_alerts`` that come from the objective, with their severity."""

LAG_SLO_MIN, LAG_SLO_MAX = 1, 7 * 86400
"""``lag_slo_seconds``: a second to a week (the CHECK constraint of pipeline_consumer_configs says the same)."""


PROFILE_LAG_SLO_SECONDS: dict[str, int] = {p.name: p.lag_slo_seconds for p in PROFILES.values() if p.lag_slo_seconds}
"""Each profile's default objective (:attr:`loomctl.consumer_config.Profile.lag_slo_seconds`, which the SQL function
lag_objectives is generated from). A service's own ``lag_slo_seconds`` overrides it."""


def objective(own: int | None, profile: str | None) -> int | None:
    """A service's objective: its own ``lag_slo_seconds``, else its profile's default, else none."""
    return int(own) if own is not None else PROFILE_LAG_SLO_SECONDS.get(profile or "")


def objective_of(config: Any) -> int | None:
    """:func:`objective` of a :class:`loomctl.configs.ConsumerConfig`."""
    return objective(getattr(config, "lag_slo_seconds", None), getattr(config, "profile", None))


def objective_source(config: Any) -> str | None:
    """Where :func:`objective_of` took the objective from: "service", "profile <name>", or None."""
    if getattr(config, "lag_slo_seconds", None) is not None:
        return "service"
    profile = getattr(config, "profile", None)
    return f"profile {profile}" if profile in PROFILE_LAG_SLO_SECONDS else None


def slo_rank(state: str) -> int:
    """How urgent ``state`` is: higher is worse; anything outside the vocabulary ranks lowest."""
    return _RANK.get(state, -1)


@dataclass(frozen=True)
class PartitionPrediction:
    """One partition's rates and predictions over the window."""

    produce_rate: float | None
    """Messages per second written to the partition; None with fewer than two samples."""
    consume_rate: float | None
    """Messages per second the group committed; None without two commits."""
    lag: int | None
    time_lag_seconds: float | None
    caught_up: bool
    catch_up_seconds: float | None
    catch_up_never: bool
    time_lag_growth: float | None
    """Seconds of lag in time gained per second (negative: shrinking); None when unknown."""
    breach_in_seconds: float | None


def _seconds(row: Mapping[str, Any]) -> float | None:
    first, last = row.get("first_timestamp"), row.get("last_timestamp")
    if first is None or last is None:
        return None
    span = (last - first).total_seconds()
    return span if span > 0 else None


def predict_partition(row: Mapping[str, Any], lag_slo_seconds: float | None) -> PartitionPrediction:
    """The predictions for one row of ``lag_partition_status`` against an objective (None: no objective)."""
    span = _seconds(row)
    samples = row.get("samples") or 0
    first_leo, last_leo = row.get("first_log_end_offset"), row.get("log_end_offset")
    first_committed, last_committed = row.get("first_committed_offset"), row.get("last_committed_offset")
    lag = row.get("last_lag")
    time_lag_ms = row.get("time_lag_ms")
    time_lag = None if time_lag_ms is None else time_lag_ms / 1000

    produced = None if first_leo is None or last_leo is None else last_leo - first_leo
    produce = produced / span if span is not None and produced is not None and produced >= 0 else None
    consume = (
        (last_committed - first_committed) / span
        if (produce is not None and first_committed is not None and last_committed is not None)
        else None
    )

    caught_up = lag == 0 or (lag is not None and produced is not None and samples >= 2 and lag <= produced / (samples - 1))
    catch_up: float | None = None
    never = False
    if lag is not None:
        if caught_up:
            catch_up = 0.0
        elif produce is not None and consume is not None:
            gain = consume - produce
            if gain > 0:
                catch_up = lag / gain
            else:
                never = True

    growth: float | None = None
    if produce is not None and consume is not None:
        if produce > 0:
            growth = 1 - max(consume, 0.0) / produce
        else:
            growth = 1.0 if consume <= 0 and (lag or 0) > 0 else 0.0

    breach_in: float | None = None
    if lag_slo_seconds is not None and time_lag is not None:
        if time_lag > lag_slo_seconds:
            breach_in = 0.0
        elif not caught_up and growth is not None and growth > 0:
            breach_in = (lag_slo_seconds - time_lag) / growth
    return PartitionPrediction(
        produce_rate=produce,
        consume_rate=consume,
        lag=lag,
        time_lag_seconds=time_lag,
        caught_up=caught_up,
        catch_up_seconds=catch_up,
        catch_up_never=never,
        time_lag_growth=growth,
        breach_in_seconds=breach_in,
    )


@dataclass(frozen=True)
class GroupPrediction:
    """A group against its objective: it follows its slowest partition."""

    lag_slo_seconds: int | None
    slo_state: str
    time_lag_seconds: float | None
    catch_up_seconds: float | None
    catch_up_never: bool
    breach_in_seconds: float | None
    slowest_partition: str | None
    """topic[partition] that the catch-up (or, all caught up, the lag in time) comes from."""
    produce_rate: float | None
    consume_rate: float | None


def _known(values: Iterable[float | None]) -> list[float]:
    return [v for v in values if v is not None]


def predict_group(
    partitions: Sequence[tuple[str, PartitionPrediction]], lag_slo_seconds: int | None, window_seconds: float
) -> GroupPrediction:
    """The group's figures and state from its partitions' (``(topic[partition], prediction)`` pairs)."""
    never = [(name, p) for name, p in partitions if p.catch_up_never]
    catch_ups = [(name, p) for name, p in partitions if p.catch_up_seconds is not None]
    times = [(name, p) for name, p in partitions if p.time_lag_seconds is not None]
    if never:
        slowest: str | None = max(never, key=lambda item: item[1].lag or 0)[0]
        catch_up = None
    elif any(p.catch_up_seconds for _, p in catch_ups):
        name, worst = max(catch_ups, key=lambda item: item[1].catch_up_seconds or 0.0)
        slowest, catch_up = name, worst.catch_up_seconds
    else:
        slowest = max(times, key=lambda item: item[1].time_lag_seconds or 0.0)[0] if times else None
        catch_up = 0.0 if catch_ups else None
    time_lag = max(_known(p.time_lag_seconds for _, p in partitions), default=None)
    breach_in = min(_known(p.breach_in_seconds for _, p in partitions), default=None)
    produce = _known(p.produce_rate for _, p in partitions)
    consume = _known(p.consume_rate for _, p in partitions)

    if lag_slo_seconds is None:
        state = NO_SLO
    elif time_lag is None:
        state = NO_DATA
    elif time_lag > lag_slo_seconds:
        state = BREACHED
    elif (
        (breach_in is not None and breach_in <= window_seconds) or never or (catch_up is not None and catch_up > lag_slo_seconds)
    ):
        state = AT_RISK
    else:
        state = MET
    return GroupPrediction(
        lag_slo_seconds=lag_slo_seconds,
        slo_state=state,
        time_lag_seconds=time_lag,
        catch_up_seconds=catch_up,
        catch_up_never=bool(never),
        breach_in_seconds=breach_in,
        slowest_partition=slowest,
        produce_rate=sum(produce) if produce else None,
        consume_rate=sum(consume) if consume else None,
    )


def rounded(value: float | None, digits: int = 1) -> float | None:
    """Half away from zero, as PostgreSQL's round(numeric) does, so Python and SQL print the same figure."""
    if value is None:
        return None
    scale = 10**digits
    return math.copysign(math.floor(abs(value) * scale + 0.5) / scale, value)


@dataclass(frozen=True)
class DrainPlan:
    """The partitions (one consumer each) that drain a topic's current lag within the objective at the measured rates.

    New records spread over every partition once there are more, but the lag already there stays where it
    is: a partition drains at one consumer's rate minus what still reaches it, so its worst partition
    decides. consumers needed = partitions = ceil(produce rate / (per-consumer rate - worst lag / objective)).
    """

    topic_name: str
    current_partitions: int
    recommended_partitions: int | None
    """Never fewer than today; None without a per-consumer rate."""
    meets_objective: bool
    """False when even a partition of its own cannot drain the worst lag in time (then: the count that gains)."""
    produce_rate: float
    per_consumer_rate: float | None
    max_partition_lag: int
    lag_slo_seconds: int
    drain_seconds: float | None
    """The worst partition's catch-up with the recommended count: lag / (per-consumer rate - produce rate / count)."""
    reason: str


def _num(value: float) -> str:
    return f"{value:,.1f}" if abs(value) < 100 else f"{value:,.0f}"


def drain_plan(
    topic_name: str,
    partition_lags: Sequence[int | None],
    produce_rate: float,
    per_consumer_rate: float | None,
    lag_slo_seconds: int,
    *,
    current_partitions: int | None = None,
) -> DrainPlan:
    """What draining ``partition_lags`` (the topic's partitions, one group) within ``lag_slo_seconds`` takes."""
    current = max(current_partitions or 0, len(partition_lags), 1)
    lag = max((v for v in partition_lags if v is not None), default=0)
    produce = max(produce_rate, 0.0)
    rate = per_consumer_rate

    def plan(count: int | None, meets: bool, drain: float | None, reason: str) -> DrainPlan:
        return DrainPlan(
            topic_name,
            current,
            count,
            meets,
            round(produce, 2),
            None if rate is None else round(rate, 2),
            lag,
            lag_slo_seconds,
            rounded(drain),
            reason,
        )

    if rate is None or rate <= 0:
        return plan(None, False, None, f"{topic_name}: no per-consumer rate measured, so the consumers needed are unknown")
    gain_needed = lag / lag_slo_seconds
    head = (
        f"{topic_name}: worst partition lag {lag:,}; within {lag_slo_seconds:,} s its consumer must gain "
        f"{_num(gain_needed)} msg/s; one consumer does {_num(rate)} msg/s, {_num(produce)} msg/s produced"
    )
    if rate > gain_needed:
        # a hair below the integer, so 25.000000000000004 is 25 partitions, not 26
        count = max(current, math.ceil(produce / (rate - gain_needed) - 1e-9)) if produce > 0 else current
        drain = lag / (rate - produce / count) if lag else 0.0
        change = f"{current} -> {count} partitions" if count > current else f"{current} partition(s) are enough"
        return plan(
            count,
            True,
            drain,
            f"{head}: each partition may take {_num(rate - gain_needed)} msg/s, "
            f"{_num(produce)} / {_num(rate - gain_needed)} = {count} partition(s) and consumer(s); {change}; "
            f"worst catch-up then {_num(lag)} / ({_num(rate)} - {_num(produce)} / {count}) = {_num(drain)} s",
        )
    # not even a partition of its own drains it in time: the count at which it gains at all
    count = max(current, math.floor(produce / rate) + 1) if produce > 0 else current
    drain = lag / (rate - produce / count) if lag else 0.0
    return plan(
        count,
        False,
        drain,
        f"{head}: no partition count meets the objective ({_num(lag)} / {_num(rate)} = {_num(lag / rate)} s even "
        f"with nothing produced); {current} -> {count} partitions make it gain, catching up in {_num(drain)} s; "
        f"faster consumers are needed",
    )
