"""The verdict scenarios (loomctl.devstack.scenarios) against the real broker: real consumer processes killed, closed,
paused, slowed and rewound, one `lag collect --interval 2s --listen` sampling them, and every surface (`lag show`,
`lag status`, `alerts`, `/metrics`, the Burrow API) polled about once a second.

All ten scenarios run at once in one module fixture (about a minute and a half); each test then judges one scenario
on one surface: the right verdict reached within a generous deadline of its event, never a verdict its phase must
not show (healthy consumers, and every consumer before its event, are never STOP or STALL), and, where the right
verdict must hold (a dead consumer stays STOP), nothing else after it. Times are never asserted beyond the deadline:
bench/verdicts.py measures them against the targets.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from loomctl.devstack import scenarios as sc
from support import own_database

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

INTERVAL_S = 2.0
DEADLINE_S = 45.0
"""How long after its event a phase may take to show its verdict: generous (22 collector intervals), where the
targets are 3 intervals after the group empties for STOP and 3 commit intervals for STALL."""
OBSERVE_S = 8 * INTERVAL_S + DEADLINE_S + 10
"""The latest event (production resuming on the quiet topic) plus the deadline, and some slack."""
KEYS = [s.key for s in sc.scenarios(INTERVAL_S)]


@pytest.fixture(scope="module")
def verdicts_db(database_factory) -> Iterator[str]:
    with own_database(database_factory, "loomverdicts") as url:
        yield url


@pytest.fixture(scope="module")
def report(verdicts_db, services, tmp_path_factory) -> sc.RunReport:
    options = sc.RunOptions(interval_s=INTERVAL_S, window_s=900, observe_s=OBSERVE_S, settle=True,
                            min_observe_s=15 * INTERVAL_S)
    return sc.run(verdicts_db, services.bootstrap_servers, tmp_path_factory.mktemp("verdicts"), options)


def scenario(report: sc.RunReport, key: str) -> sc.ScenarioReport:
    return next(s for s in report.scenarios if s.key == key)


def _timeline(outcome: sc.SurfaceOutcome) -> str:
    return ", ".join(f"{at:+.0f}s {verdict}" for at, verdict in outcome.changes) or "no reading"


def problems(s: sc.ScenarioReport, surface: str) -> list[str]:
    """What is wrong with one scenario on one surface, phase by phase."""
    found = []
    for phase in s.phases:
        right = "/".join(phase.right)
        if phase.started_at_s is None:
            found.append(f"phase {phase.name}: its event ({phase.starts}) never came")
            continue
        o = phase.surfaces[surface]
        where = f"phase {phase.name} (from {phase.starts} at {phase.started_at_s:+.0f}s; {_timeline(o)})"
        if o.polls == 0:
            found.append(f"{where}: no poll answered ({o.failures} failed)")
            continue
        if phase.must_reach and (o.reached_after_s is None or o.reached_after_s > DEADLINE_S):
            when = "never" if o.reached_after_s is None else f"only after {o.reached_after_s:.0f} s"
            found.append(f"{where}: {right} {when} (deadline {DEADLINE_S:.0f} s)")
        if o.forbidden:
            seen = sorted({v for _, v in o.forbidden})
            found.append(f"{where}: {', '.join(seen)} at {len(o.forbidden)} polls, first +{o.forbidden[0][0]:.0f}s into the phase")
        if phase.stays and o.left_after_reaching_s:
            found.append(f"{where}: left {right} after reaching it: "
                         + ", ".join(f"{v} {d:.0f}s" for v, d in o.left_after_reaching_s.items()))
    return found


@pytest.mark.parametrize("surface", sc.SURFACES)
@pytest.mark.parametrize("key", KEYS)
def test_verdict(report: sc.RunReport, key: str, surface: str) -> None:
    s = scenario(report, key)
    found = problems(s, surface)
    assert not found, f"{key} ({s.title}; expected {s.expected}) on {surface}:\n  " + "\n  ".join(found)


def test_unknown_lag_never_reads_as_zero(report: sc.RunReport) -> None:
    """The group that never committed: no lag of 0 in `lag show`, `lag status`, the Prometheus lag series, or what a
    Burrow client reads from /status and /lag."""
    s = scenario(report, "never-committed")
    assert not s.zero_reads, "lag unknown but read as 0:\n  " + "\n  ".join(s.zero_reads)


def test_the_harness_ran_as_planned(report: sc.RunReport) -> None:
    """The consumers reported no error, every event happened, the dead ones' groups emptied, and the collector cycled."""
    for s in report.scenarios:
        assert not s.consumer_errors, f"{s.key}: {s.consumer_errors}"
        assert sc.START in s.events_s
    for key in ("killed", "closed", "quiet-dead"):
        assert scenario(report, key).empty_at_s is not None, f"{key}: its group never went Empty"
    assert scenario(report, "paused").empty_at_s is None, "the paused consumer left its group"
    assert report.collector_cycles and report.collector_cycles >= 8
