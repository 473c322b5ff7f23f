"""What the core decides for `partitions plan` and `apply`: which changes are altered, the risk flags, the summary."""

from __future__ import annotations

import itertools
import re

from loomctl import partitions
from loomctl.errors import BackendUnavailable, LoomError
from loomctl.partitions import PlanAction, ApplyResult, ConsumingGroup, Outcome, Plan, PlanItem, Status


_ids = itertools.count(1)


def item(topic: str, action: str = PlanAction.INCREASE, *, now: int | None = 1, recorded: int = 1, keyed: str = "no",
         groups: tuple[ConsumingGroup, ...] = (), needs_force: bool = False) -> PlanItem:
    return PlanItem(change_id=next(_ids), topic_name=topic, recorded_partitions=recorded, current_partitions=now,
                    target_partitions=4, action=action, keyed=keyed, consumer_groups=list(groups), risks=[f"{topic} risk"],
                    needs_force=needs_force, reason="test", source="manual")


def result(topic: str, outcome: str) -> ApplyResult:
    return ApplyResult(1, topic, outcome, 1, 1, 2, False)


def test_to_alter_skips_satisfied_changes_and_latest_consumers_without_force():
    plan = Plan([item("grow"), item("done", PlanAction.SATISFIED, now=4), item("latest", needs_force=True),
                 item("gone", PlanAction.TOPIC_MISSING, now=None)])
    assert [i.topic_name for i in plan.to_alter()] == ["grow", "gone"]
    assert [i.topic_name for i in plan.to_alter(force=True)] == ["grow", "latest", "gone"]


def test_risk_flags_and_warnings_belong_to_increases_only():
    stranger = ConsumingGroup("g-stranger", None, None, "Stable", 1)
    risky = item("risky", now=2, recorded=1, keyed="yes", groups=(stranger,), needs_force=True)
    assert risky.risk_flags == ["key ordering", "latest reset (--force)", "unmanaged group", "recorded at 1"]
    assert risky.warnings == ["risky risk"]
    assert item("calm").risk_flags == []
    satisfied = item("done", PlanAction.SATISFIED, now=4, keyed="yes", groups=(stranger,))
    assert (satisfied.risk_flags, satisfied.warnings) == ([], [])


def test_the_summary_counts_outcomes_and_the_error_names_what_to_do():
    results = [result("a", Outcome.APPLIED), result("b", Outcome.FAILED), result("c", Outcome.REFUSED),
               result("d", Outcome.APPLIED), result("e", Outcome.RETRY)]
    report = partitions.summarize(results)
    assert report.summary == "2 applied, 1 failed, 1 refused, 1 pending"
    error = report.error()
    assert type(error) is BackendUnavailable and error.exit_code == 5  # a change left pending: the cluster did not answer
    assert str(error) == ("3 change(s) not applied: b (failed), c (refused), e (pending); pass --force to apply refused "
                          "changes; run apply again to finish pending ones; once the cause is fixed, apply --retry-failed")


def test_refused_and_failed_changes_without_a_pending_one_are_exit_1():
    error = partitions.summarize([result("a", Outcome.FAILED), result("b", Outcome.REFUSED)]).error()
    assert type(error) is LoomError and error.exit_code == 1


def test_a_dry_run_that_validates_everything_is_no_error():
    report = partitions.summarize([result("a", Outcome.WOULD_APPLY), result("b", Outcome.SATISFIED)], dry_run=True)
    assert report.summary == "dry run: 1 would apply, 1 already satisfied"
    assert report.error() is None and report.not_done == []


def test_already_satisfied_is_one_word_for_the_plan_and_the_outcome():
    assert PlanAction.SATISFIED is Outcome.SATISFIED is partitions.SATISFIED


def test_statuses_match_the_tables_check_constraint():
    from loomctl.db.models import TopicPartitionChange

    [check] = [c for c in TopicPartitionChange.__table__.constraints if str(c.name).endswith("status_allowed")]
    assert tuple(re.findall(r"'(\w+)'", str(check.sqltext))) == partitions.STATUSES
    assert partitions.STATUSES == (Status.PENDING, Status.APPLIED, Status.FAILED, Status.SUPERSEDED, Status.CANCELLED)
