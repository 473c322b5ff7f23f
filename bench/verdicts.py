"""How soon every surface of loomctl gives the right verdict, with real consumers that die, stall, slow down and rewind.

The scenarios of `loomctl.devstack.scenarios` (tests/lag/test_verdict_scenarios.py runs the same at a 2 s interval):
ten real consumer processes, each with a topic, a group and a service of its own, all sampled by ONE
`loomctl lag collect --interval 5s --listen` process: dead after catching up (SIGKILL and clean close), stalled
with its member present, slow, quiet, bursty, steady, closed on a quiet topic whose production resumes later,
rewound, and never committed. After a warm-up (every consumer caught up, then 4 collector cycles) the events
happen at once (T0), and `lag show`, `lag status`, `alerts`, `/metrics` and the Burrow API are polled about
once a second for --observe seconds.

It prints, per scenario, phase and surface, the seconds from the phase's event to the first right verdict (or
"never" within the observation) and every other verdict with how long it showed ("OK 180s"), beside the targets:
STOP within 3 collector intervals of the last member leaving (the time the group went Empty is shown), STALL within
3 of the consumer's own commit intervals (never sooner than 3 collector intervals), zero STOP/STALL for the healthy
ones, and never a lag of 0 where it is unknown (the never-committed group: `lag show`, `lag status`, the
Prometheus lag series, what a Burrow client reads from /status and /lag). `-o json` gives the whole report.

Against LOOM_DATABASE_URL and LOOM_KAFKA_BOOTSTRAP_SERVERS when both are set (a database of its own on that server,
dropped at the end), else a throwaway stack it starts (`loomctl.devstack.up` in a temp dir) and stops. Everything it
starts is stopped at the end, also on Ctrl-C. Exit status: never fails on slowness or wrong verdicts (it measures
them); 2 when it cannot run here.

Usage: python bench/verdicts.py [--interval 5] [--window 15m] [--observe 120] [--only killed,paused] [-o json]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from loomctl.devstack import scenarios as sc
from loomctl.lag.verdicts import STALL, STOP

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scrape import drop_database, own_database  # noqa: E402 (the benches' throwaway database, shared)


def seconds(text: str) -> float:
    from loomctl.validation import parse_duration

    return parse_duration(text).total_seconds()


def _duration(value: float) -> str:
    return f"{value / 60:g}m" if value >= 60 and value % 60 == 0 else f"{value:g}s"


def _s(value: float | None) -> str:
    return "never" if value is None else f"+{value:.0f}s"


def _spans(spans: dict[str, float]) -> str:
    return ", ".join(f"{v} {d:.0f}s" for v, d in sorted(spans.items(), key=lambda i: -i[1]) if d >= 0.5) or "-"


def table(report: sc.RunReport) -> str:
    lines = [
        f"verdicts: {len(report.scenarios)} scenarios under one collector (--interval {_duration(report.interval_s)}, "
        f"--window {_duration(report.window_s)}), observed {report.observe_s:.0f} s after the events; warm-up {report.warmup_s:.0f} s, "
        f"{report.collector_cycles:.0f} collector cycles",
        "each phase: the seconds from its event to the first right verdict; other verdicts with how long they showed",
        "",
    ]
    header = f"    {'surface':<11} {'right':<7} {'target':<8} {'other verdicts (seconds shown)':<44} {'interim':<14} forbidden"
    for s in report.scenarios:
        lines.append(f"{s.key}: {s.title}")
        facts = [f"expect {s.expected}"]
        if s.commit_interval_s is not None:
            facts.append(f"commits every {s.commit_interval_s:.1f} s before T0")
        events = {k: v for k, v in s.events_s.items() if k not in (sc.WARM, sc.START)}
        if events:
            facts.append("events " + ", ".join(f"{k} {v:+.1f}s" for k, v in events.items()))
        if s.empty_at_s is not None:
            facts.append(f"group Empty at {s.empty_at_s:+.1f}s")
        lines.append("  " + "; ".join(facts))
        for phase in s.phases:
            if phase.started_at_s is None:
                lines.append(f"  phase {phase.name}: its event ({phase.starts}) never came")
                continue
            target = f"; target {'/'.join(phase.right)} by +{phase.target_s:g}s: {phase.target_reason}" if phase.target_s is not None else (
                f"; target: {phase.target_reason}" if phase.target_reason else "")
            lines.append(f"  phase {phase.name} from {phase.starts} ({phase.started_at_s:+.1f}s to {phase.ended_at_s:+.1f}s): "
                         f"right {'/'.join(phase.right)}{target}")
            if all(not o.wrong_s and not o.interim_s and not o.forbidden and not o.failures for o in phase.surfaces.values()):
                lines.append("    every surface right from " + ", ".join(
                    f"{k} {_s(o.reached_after_s)}" for k, o in phase.surfaces.items()) + "; no other verdict")
                continue
            lines.append(header)
            for surface, o in phase.surfaces.items():
                met = "-" if phase.target_s is None else (
                    "met" if o.reached_after_s is not None and o.reached_after_s <= phase.target_s else "missed")
                forbidden = sorted({v for _, v in o.forbidden})
                fail = f" ({o.failures} failed polls)" if o.failures else ""
                lines.append(f"    {surface:<11} {_s(o.reached_after_s) if phase.must_reach or o.reached_after_s is not None else '-':<7} "
                             f"{met:<8} {_spans(o.wrong_s):<44} {_spans(o.interim_s):<14} "
                             f"{', '.join(f'{v} x{sum(1 for _, w in o.forbidden if w == v)}' for v in forbidden) or '-'}{fail}")
        if s.zero_reads:
            lines.append("  lag read as 0 where it is unknown:")
            lines.extend(f"    {z}" for z in s.zero_reads)
        elif any(sc.UNKNOWN in p.right for p in s.phases):
            lines.append("  no lag read as 0 on any surface")
        if s.consumer_errors:
            lines.append("  consumer errors: " + "; ".join(s.consumer_errors[:3]))
        if s.consumer_warnings:
            lines.append(f"  librdkafka reported {s.consumer_warnings} errors on messages (retried)")
        lines.append("")
    lines.extend(summary(report))
    if report.poll_failures:
        lines.append("")
        lines.append("surfaces that failed to answer: " + "; ".join(f"{k}: {v[0]}" for k, v in report.poll_failures.items()))
    return "\n".join(lines)


def summary(report: sc.RunReport) -> list[str]:
    """The targets, one line each, over every surface."""
    out = ["targets:"]
    for s in report.scenarios:
        for p in s.phases:
            if p.target_s is None and not p.target_reason:
                continue
            if p.started_at_s is None:
                continue
            met = [k for k, o in p.surfaces.items() if o.reached_after_s is not None and p.target_s is not None and o.reached_after_s <= p.target_s]
            missed = [f"{k} {_s(o.reached_after_s)}" for k, o in p.surfaces.items() if k not in met]
            out.append(f"  {s.key} {'/'.join(p.right)} by +{p.target_s:g}s: {len(met)}/{len(p.surfaces)} surfaces"
                       + (f" (missed: {', '.join(missed)})" if missed else "") if p.target_s is not None else
                       f"  {s.key} {'/'.join(p.right)}: no target ({p.target_reason})")
    healthy = 0
    where: list[str] = []
    for s in report.scenarios:
        for p in s.phases:
            if STOP in p.never or STALL in p.never:
                for k, o in p.surfaces.items():
                    bad = [v for _, v in o.forbidden if v in (STOP, STALL)]
                    if bad:
                        healthy += len(bad)
                        where.append(f"{s.key}/{p.name} {k}: {', '.join(sorted(set(bad)))} x{len(bad)}")
    out.append(f"  STOP/STALL readings where the consumer was healthy: {healthy}" + (f" ({'; '.join(where)})" if where else ""))
    zeros = sum(len(s.zero_reads) for s in report.scenarios)
    out.append(f"  lag read as 0 where it is unknown: {zeros} distinct readings")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interval", default="5s", help="the collector's --interval (default 5s)")
    parser.add_argument("--window", default="15m", help="the status window (default 15m)")
    parser.add_argument("--observe", type=float, default=120.0, help="seconds observed after the events (default 120)")
    parser.add_argument("--only", default="", help="comma-separated scenario keys (default: all)")
    parser.add_argument("-o", "--output", choices=("table", "json"), default="table")
    parser.add_argument("--keep-logs", action="store_true", help="keep the collector's and consumers' logs (path on stderr)")
    args = parser.parse_args()

    def say(message: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    # SIGTERM ends the run as Ctrl-C does, so every finally below still stops what was started
    signal.signal(signal.SIGTERM, interrupt)
    options = sc.RunOptions(interval_s=seconds(args.interval), window_s=seconds(args.window), observe_s=args.observe)
    chosen = [k for k in args.only.split(",") if k]
    known = {s.key for s in sc.scenarios(options.interval_s)}
    if set(chosen) - known:
        print(f"unknown scenarios: {', '.join(sorted(set(chosen) - known))}; choose from {', '.join(sorted(known))}", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="verdicts-"))
    bootstrap, server_url = os.environ.get("LOOM_KAFKA_BOOTSTRAP_SERVERS"), os.environ.get("LOOM_DATABASE_URL")
    stack_dir = None
    try:
        if not (bootstrap and server_url):
            from loomctl import devstack

            stack_dir = work / "stack"
            say(f"starting a throwaway PostgreSQL and Kafka in {stack_dir}")
            try:
                info = devstack.up(stack_dir, migrate=False, progress=say)
            except Exception as exc:
                print(f"cannot start the local stack: {exc}", file=sys.stderr)
                return 2
            bootstrap, server_url = info.bootstrap_servers, info.database_url
        assert bootstrap and server_url
        url = own_database(server_url)
        try:
            report = sc.run(url, bootstrap, work / "logs", options, chosen=chosen, progress=say)
        finally:
            drop_database(server_url, url)
    finally:
        if stack_dir is not None:
            from loomctl import devstack

            say("stopping the throwaway stack")
            devstack.down(stack_dir)
        if args.keep_logs:
            say(f"logs kept in {work}")
        else:
            import shutil

            shutil.rmtree(work, ignore_errors=True)
    if args.output == "json":
        print(json.dumps(sc.report_dict(report), indent=2))
    else:
        print(table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
