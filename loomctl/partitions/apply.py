"""Apply: a plan's increases through ``AdminClient.create_partitions``, verified on the cluster, recorded per change.

Validate first, one request for every selected topic, then read the count back from the
cluster's metadata; only a count the cluster shows marks a change applied. An error that may
pass (the broker unreachable, a timeout) leaves the change pending with the error on its row,
so running `apply` again finishes it; an error the broker gives for the change itself (no such
topic, an invalid count, a policy) marks it failed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from loomctl import kafka
from loomctl.errors import BackendUnavailable, LoomError
from loomctl.partitions.changes import over_client_limit
from loomctl.partitions.plan import SATISFIED, Plan, PlanAction, PlanItem, plan_changes

if TYPE_CHECKING:
    from confluent_kafka.admin import AdminClient
    from sqlalchemy.orm import Session


class Outcome:
    """What `apply` made of a change (``ApplyResult.outcome``)."""

    APPLIED = "applied"
    SATISFIED = SATISFIED
    """The topic had the count already, or reached it meanwhile: the change is marked applied all the same."""
    FAILED = "failed"
    """The broker refused the change itself: the change is marked failed (``--retry-failed`` tries it again)."""
    RETRY = "pending"
    """An error that may pass: the change stays pending with the error on its row; run apply again."""
    REFUSED = "refused"
    """Not sent: a consumer with auto_offset_reset=latest would skip records, and ``force`` was not given."""
    WOULD_APPLY = "would apply"
    """A dry run's verdict: the broker validated the change."""


_HINTS = {
    Outcome.REFUSED: "pass --force to apply refused changes",
    Outcome.RETRY: "run apply again to finish pending ones",
    Outcome.FAILED: "once the cause is fixed, apply --retry-failed",
}
"""What to do about each outcome that leaves a change undone, in the order the summary names them."""


@dataclass(frozen=True)
class ApplyResult:
    change_id: int
    topic_name: str
    outcome: str
    """An :class:`Outcome`: applied, already satisfied, failed, pending (an error that may pass: run
    apply again), refused, or with ``dry_run`` would apply (the broker validated it)."""
    partitions_before: int | None
    partitions_after: int | None
    target_partitions: int
    altered: bool
    """This run's create_partitions request for the topic succeeded."""
    error: str | None = None
    dry_run: bool = False

    @property
    def done(self) -> bool:
        return self.outcome in (Outcome.APPLIED, Outcome.SATISFIED)


@dataclass(frozen=True)
class ApplyReport:
    """What a run of `apply` comes to: how many changes ended how, and what is left to do."""

    counts: dict[str, int]
    """Changes per outcome, in the order the outcomes first occur among the results."""
    not_done: list[ApplyResult]
    """The changes neither applied nor, in a dry run, validated."""
    hints: list[str]
    """What to do about ``not_done``, one hint per outcome among them."""
    dry_run: bool = False

    @property
    def summary(self) -> str:
        """One line of counts: ``2 applied, 1 failed`` (``dry run: 1 would apply``)."""
        return ("dry run: " if self.dry_run else "") + ", ".join(f"{n} {what}" for what, n in self.counts.items())

    def error(self) -> LoomError | None:
        """The failure to end the run with when a change is not applied, saying what to do; else None.

        Exit 5 (BackendUnavailable) when a change is left pending because the cluster did not answer
        (a backend failed: run again), else exit 1 (refused or failed changes)."""
        if not self.not_done:
            return None
        kind = BackendUnavailable if any(r.outcome == Outcome.RETRY for r in self.not_done) else LoomError
        return kind(
            f"{len(self.not_done)} change(s) not applied: "
            + ", ".join(f"{r.topic_name} ({r.outcome})" for r in self.not_done)
            + "".join(f"; {hint}" for hint in self.hints)
        )


def summarize(results: Sequence[ApplyResult], *, dry_run: bool = False) -> ApplyReport:
    """The report of ``results`` from :func:`apply_plan`."""
    counts: dict[str, int] = {}
    for r in results:
        counts[r.outcome] = counts.get(r.outcome, 0) + 1
    not_done = [r for r in results if not r.done and r.outcome != Outcome.WOULD_APPLY]
    hints = [hint for outcome, hint in _HINTS.items() if any(r.outcome == outcome for r in not_done)]
    return ApplyReport(counts, not_done, hints, dry_run)


def _counts_now(admin: "AdminClient", topics: Sequence[str], timeout: float) -> dict[str, int] | None:
    try:
        return kafka.topic_partition_counts(admin, topics, timeout=timeout)
    except BackendUnavailable:
        return None


def _wait_for_counts(admin: "AdminClient", targets: Mapping[str, int], *, timeout: float) -> tuple[dict[str, int], str | None]:
    """Poll the metadata until every topic shows at least its target count or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    seen: dict[str, int] = {}
    problem = None
    while True:
        counts = _counts_now(admin, list(targets), timeout=max(1.0, min(5.0, deadline - time.monotonic())))
        if counts is None:
            problem = "the cluster did not answer the metadata request that verifies the new count"
        else:
            seen.update(counts)
            problem = None
            if all(seen.get(t, 0) >= n for t, n in targets.items()):
                return seen, None
        if time.monotonic() >= deadline:
            return seen, problem
        time.sleep(0.2)


def apply_plan(
    session: "Session",
    admin: "AdminClient",
    plan: Plan,
    *,
    actor: str,
    force: bool = False,
    dry_run: bool = False,
    timeout: float = kafka.CHANGE_TIMEOUT_S,
    on_step: Callable[[str], None] | None = None,
) -> list[ApplyResult]:
    """Validate, alter every accepted topic in one request, verify from metadata, record each outcome.

    ``plan`` should come from :func:`plan_changes` with ``lock=True`` in the same session, so
    that no other run works on its changes. ``on_step`` hears ``validated``, ``altered`` and
    ``verified``. With ``dry_run`` nothing is altered or written: the results say what would be.
    """
    step = on_step or (lambda _name: None)
    results: dict[int, ApplyResult] = {}

    def outcome(item: PlanItem, what: str, *, after: int | None = None, altered: bool = False, error: str | None = None) -> None:
        results[item.change_id] = ApplyResult(
            item.change_id,
            item.topic_name,
            what,
            item.current_partitions,
            after,
            item.target_partitions,
            altered,
            error,
            dry_run,
        )

    candidates = []
    for item in plan.to_alter(force):
        too_many = over_client_limit(item.topic_name, item.target_partitions)
        if too_many:  # refused here, alone: the request for the others goes ahead
            outcome(item, Outcome.FAILED, after=item.current_partitions, error=too_many)
        else:
            candidates.append(item)
    chosen = {i.change_id for i in plan.to_alter(force)}
    for item in plan.items:
        if item.change_id in chosen:
            continue
        if item.action == PlanAction.SATISFIED:
            outcome(item, Outcome.SATISFIED, after=item.current_partitions)
        else:
            outcome(
                item,
                Outcome.REFUSED,
                after=item.current_partitions,
                error="a consumer with auto_offset_reset=latest would skip records: pass --force to apply anyway",
            )

    verdicts = kafka.create_partitions(
        admin, {i.topic_name: i.target_partitions for i in candidates}, validate_only=True, timeout=timeout
    )
    accepted: list[PlanItem] = []
    for item in candidates:
        verdict = verdicts.get(item.topic_name)
        if verdict is None:
            accepted.append(item)
        else:
            outcome(item, Outcome.RETRY if verdict[1] else Outcome.FAILED, after=item.current_partitions, error=verdict[0])
    # "validated" only when the broker answered for at least one topic: a timeout validated nothing
    if any(v is None or not v[1] for v in verdicts.values()):
        step("validated")

    if dry_run:
        for item in accepted:
            outcome(item, Outcome.WOULD_APPLY, after=item.target_partitions)
        return [results[i.change_id] for i in plan.items]

    answers = kafka.create_partitions(
        admin, {i.topic_name: i.target_partitions for i in accepted}, validate_only=False, timeout=timeout
    )
    if accepted:
        step("altered")
    targets = {i.topic_name: i.target_partitions for i in accepted}
    succeeded = {t: n for t, n in targets.items() if answers.get(t) is None}
    counts, problem = _wait_for_counts(admin, succeeded, timeout=timeout) if succeeded else ({}, None)
    if len(succeeded) < len(targets):
        # a refused request may still mean the count is there (someone else grew the topic meanwhile)
        counts.update(_counts_now(admin, [t for t in targets if t not in succeeded], timeout=min(timeout, 5.0)) or {})
    if accepted:
        step("verified")
    for item in accepted:
        after = counts.get(item.topic_name)
        answer = answers.get(item.topic_name)
        if after is not None and after >= item.target_partitions:
            outcome(item, Outcome.APPLIED if answer is None else Outcome.SATISFIED, after=after, altered=answer is None)
        elif answer is None:
            outcome(
                item,
                Outcome.RETRY,
                after=after,
                altered=True,
                error=f"the cluster accepted the change but its metadata did not show {item.target_partitions} "
                f"partition(s) within {timeout:g} s ({problem or f'it shows {after}'}); run apply again to verify",
            )
        else:
            outcome(item, Outcome.RETRY if answer[1] else Outcome.FAILED, after=after, error=answer[0])
    ordered = [results[i.change_id] for i in plan.items]
    _record(session, ordered, actor)
    return ordered


def _record(session: "Session", results: Sequence[ApplyResult], actor: str) -> None:
    from sqlalchemy import text

    # `failed` too: apply --retry-failed works on a topic's newest failed change
    for r in results:
        if r.done:
            session.execute(
                text("""
                UPDATE topic_partition_changes
                   SET status = 'applied', applied_at = now(), applied_by = :actor, error = NULL
                 WHERE id = :id AND status IN ('pending', 'failed')"""),
                {"id": r.change_id, "actor": actor},
            )
        elif r.outcome == Outcome.FAILED:
            session.execute(
                text("""
                UPDATE topic_partition_changes SET status = 'failed', error = :error
                 WHERE id = :id AND status IN ('pending', 'failed')"""),
                {"id": r.change_id, "error": r.error},
            )
        elif r.outcome == Outcome.RETRY:
            session.execute(
                text("""
                UPDATE topic_partition_changes SET error = :error
                 WHERE id = :id AND status IN ('pending', 'failed')"""),
                {"id": r.change_id, "error": r.error},
            )


@dataclass(frozen=True)
class Applied:
    """A whole run of `apply`: the plan, each change's result, and what they come to."""

    plan: Plan
    results: list[ApplyResult]
    dry_run: bool = False

    @property
    def report(self) -> ApplyReport:
        return summarize(self.results, dry_run=self.dry_run)


def apply_pending(
    session: "Session",
    admin: "AdminClient",
    topics: Sequence[str] | None,
    *,
    actor: str,
    kafka_properties: Mapping[str, str] | None,
    show: Callable[[Plan], None],
    confirm: Callable[[Plan, int], None] | None,
    retry_failed: bool = False,
    force: bool = False,
    dry_run: bool = False,
    timeout: float = kafka.CHANGE_TIMEOUT_S,
    on_step: Callable[[str], None] | None = None,
    cluster: str = "default",
) -> Applied:
    """`partitions apply`: the pending changes planned (and locked, unless a dry run) against the cluster,
    ``show(plan)``, then ``confirm(plan, count)`` when topics would be altered (None: do not ask), and
    :func:`apply_plan`."""

    plan = plan_changes(
        session, admin, topics, lock=not dry_run, retry_failed=retry_failed, kafka_properties=kafka_properties, cluster=cluster
    )
    show(plan)
    if not plan.items:
        return Applied(plan, [], dry_run)
    count = len(plan.to_alter(force))
    if count and not dry_run and confirm is not None:
        confirm(plan, count)
    results = apply_plan(session, admin, plan, actor=actor, force=force, dry_run=dry_run, timeout=timeout, on_step=on_step)
    return Applied(plan, results, dry_run)
