"""Verdict scenarios: real consumers that die, stall, slow down and rewind, one collector, every surface polled.

Ten scenarios run at once, each with a topic, a group and a service of its own (unique names), under ONE
`loomctl lag collect --listen` process (what users run). Each scenario's consumer is a process of its own
(:mod:`loomctl.devstack.scenario_consumer`, built by :mod:`loomctl.loader` from the service's config row, so
the config says what the consumer runs with), driven by lines on its stdin or SIGKILL; one producer thread
writes every topic at its scenario's pace (steady, bursts, once, or from an event on).

A run: topics, configs, the collector, the producer and the consumers start; once every consumer has caught up
(the never-committing one: handled a batch) and the collector has sampled that twice, every surface is polled
about once a second; after ``warmup_cycles``
more collector cycles the observation starts (``T0``) and each scenario's event happens at a recorded time
(one, the restart of production on a quiet topic, later). Polled surfaces, each reading one verdict per
scenario:

- ``lag show``: :func:`loomctl.lag.show` per service, the row's status;
- ``lag status``: :func:`loomctl.lag.status_report`, the group's status;
- ``alerts``: :func:`loomctl.processing.alerts` (``v_consumer_alerts``): consumer_stopped STOP, consumer_stalled
  STALL, offset_rewind REWIND, lag_growing WARN, no_committed_offset ERR, none of those OK;
- ``/metrics``: the ``status`` label of ``loomctl_group_status_code{group=...}``;
- ``burrow``: ``/v3/kafka/{cluster}/consumer/{group}/status``: the worst of its flagged partitions' statuses
  (Burrow folds STOP, STALL and REWIND into ERR at group level), else the group's status; 404 or NOTFOUND is
  unknown.

Every "no verdict" spelling (loomctl's ``-``, NO_DATA, UNKNOWN, NOTFOUND, a missing series) reads as
:data:`UNKNOWN`. For a group that never committed, every poll also looks for a lag of 0 where lag is unknown:
partition rows of `lag show`, the group's total in `lag status`, the Prometheus lag series, and what a Burrow
client computes from ``/status`` and ``/lag`` (a ``current_lag`` null is 0 to it, and so is a ``totallag`` of 0).

What a scenario should read is a list of phases, each opened by an event (the last ends with the observation):
the verdicts that are right, those acceptable on the way (a killed member's session keeps it STALL for a few
seconds), those that must never show, and whether the right one must then hold. :func:`run` returns a
:class:`RunReport`: per scenario, phase and surface, when the right verdict came, how long each other one showed,
and the targets (STOP within 3 collector intervals of the group going Empty, STALL within 3 of the consumer's
own commit intervals and never sooner than 3 collector intervals). Core code: no printing (``progress`` gets
one line per step), and everything it starts is stopped before it returns or raises.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loomctl.errors import BackendUnavailable
from loomctl.lag.verdicts import ERR, OK, REWIND, STALL, STOP, WARN, status_rank

UNKNOWN = "unknown"
"""No verdict on that surface: loomctl's "-", NO_DATA, UNKNOWN, Burrow's NOTFOUND or 404, a missing series."""
FAILED = "FAILED"
"""The surface did not answer the poll (counted apart; never a verdict)."""
SURFACES = ("lag show", "lag status", "alerts", "/metrics", "burrow")
FLAGS = frozenset({WARN, STALL, STOP, REWIND, ERR})
DEAD = frozenset({STOP, STALL})
ALERT_VERDICTS = {
    "consumer_stopped": STOP,
    "consumer_stalled": STALL,
    "offset_rewind": REWIND,
    "lag_growing": WARN,
    "no_committed_offset": ERR,
}
PARTITIONS = 2
RATE = 20.0
"""Messages a second into a steady topic (over its partitions)."""
SESSION_TIMEOUT_MS = 6_000
"""Short, so a killed member leaves soon; the consumer's heartbeat is a third of it."""
WARM = "warm"
"""The event that opens every scenario's first phase: polling starts (every consumer caught up)."""
START = "start"
"""T0: the observation starts, events happen."""
PASSED = "passed"
"""Reported by the rewound consumer once it has read past its old high again."""
EMPTY_STATES = ("Empty", "Dead")

Progress = Callable[[str], None]


# -- what the scenarios are --


@dataclass(frozen=True)
class Production:
    """How the producer writes a scenario's topic: ``initial`` messages at once, ``burst`` every ``burst_every_s``,
    ``rate`` a second (from the event ``rate_from`` on, if set)."""

    rate: float = 0.0
    initial: int = 0
    burst: int = 0
    burst_every_s: float = 0.0
    rate_from: str | None = None


@dataclass(frozen=True)
class Event:
    """``action`` at T0 + ``after_s``: a line for the consumer's stdin, ``SIGKILL``, or None (a change of production)."""

    name: str
    after_s: float = 0.0
    action: str | None = None


@dataclass(frozen=True)
class Phase:
    """From the event ``starts`` to the next phase's (or the end): what the surfaces should read."""

    name: str
    starts: str
    right: frozenset[str]
    interim: frozenset[str] = frozenset()
    """Acceptable on the way to the right verdict (not counted as wrong)."""
    never: frozenset[str] = frozenset()
    """Wrong at any poll of the phase."""
    must_reach: bool = True
    stays: bool = False
    """Once right, right until the phase ends."""
    target: str | None = None
    """``empty``: 3 collector intervals after the group has no member (or the phase starts, if later);
    ``stall``: 3 of the consumer's commit intervals, at least 3 collector intervals."""


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    expected: str
    production: Production
    phases: tuple[Phase, ...]
    events: tuple[Event, ...] = ()
    never_commit: bool = False


def _before(never: frozenset[str] = DEAD) -> Phase:
    return Phase("before", WARM, frozenset({OK}), never=never, must_reach=False)


def scenarios(interval_s: float) -> list[Scenario]:
    """The ten scenarios, their times scaled to the collector's interval."""
    per_partition = RATE / PARTITIONS
    rewind = int(per_partition * 6 * interval_s)  # re-read at twice the production rate: 3 intervals to pass the old high
    quiet_for = 8 * interval_s
    healthy = Phase("observed", START, frozenset({OK}), never=FLAGS, stays=True)
    return [
        Scenario(
            "killed",
            "dead after catching up, SIGKILL",
            "STOP (consumer_stopped); STALL while its session lasts",
            Production(rate=RATE),
            (_before(), Phase("killed", "kill", frozenset({STOP}), interim=frozenset({STALL}), stays=True, target="empty")),
            (Event("kill", 0, "SIGKILL"),),
        ),
        Scenario(
            "closed",
            "dead after catching up, clean close",
            "STOP (consumer_stopped)",
            Production(rate=RATE),
            (_before(), Phase("closed", "close", frozenset({STOP}), stays=True, target="empty")),
            (Event("close", 0, "close"),),
        ),
        Scenario(
            "paused",
            "stalled, member present (paused)",
            "STALL (consumer_stalled)",
            Production(rate=RATE),
            (_before(), Phase("paused", "pause", frozenset({STALL}), stays=True, target="stall")),
            (Event("pause", 0, "pause"),),
        ),
        Scenario(
            "slow",
            "slow: consumes a quarter of what is produced",
            "WARN, never STOP/STALL",
            Production(rate=RATE),
            (_before(), Phase("slow", "slow", frozenset({WARN}), never=DEAD)),
            (Event("slow", 0, f"slow {RATE / 4:g}"),),
        ),
        Scenario(
            "quiet",
            "quiet healthy: idle after a first batch",
            "OK, never flagged",
            Production(initial=50),
            # the warm-up window holds seconds of samples after a catch-up from backlog: only dead verdicts are
            # wrong there; from T0 on it must never be flagged at all
            (_before(), healthy),
        ),
        Scenario(
            "bursty",
            "bursty healthy: a burst every 10 s",
            "never STOP/STALL (ideally never WARN)",
            Production(burst=100, burst_every_s=10.0),
            (_before(), Phase("observed", START, frozenset({OK}), never=DEAD, must_reach=False)),
        ),
        Scenario(
            "steady",
            "steady healthy, commit per batch",
            "OK, never WARN/STOP/STALL",
            Production(rate=RATE),
            # the warm-up window holds seconds of samples after a catch-up from backlog: only dead verdicts are
            # wrong there; from T0 on it must never be flagged at all
            (_before(), healthy),
        ),
        Scenario(
            "quiet-dead",
            f"closed on a quiet topic; production resumes {quiet_for:g} s later",
            "OK while nothing is produced, then STOP",
            Production(initial=50, rate=RATE, rate_from="resume"),
            (
                _before(FLAGS),
                Phase("quiet", "close", frozenset({OK}), never=FLAGS),
                Phase("resumed", "resume", frozenset({STOP}), stays=True, target="empty"),
            ),
            (Event("close", 0, "close"), Event("resume", quiet_for, None)),
        ),
        Scenario(
            "rewound",
            f"rewound {rewind} messages a partition",
            "REWIND, then OK once past its old high",
            Production(rate=RATE),
            (
                _before(),
                Phase("rewound", "rewind", frozenset({REWIND}), never=DEAD),
                Phase("re-read", PASSED, frozenset({OK}), never=DEAD, stays=True),
            ),
            (Event("rewind", 0, f"rewind {rewind} {RATE * 2:g}"),),
        ),
        Scenario(
            "never-committed",
            "never committed: polls, never commits",
            "ERR or unknown, never OK or 0",
            Production(initial=100, rate=RATE / 2),
            (
                Phase("before", WARM, frozenset({ERR, UNKNOWN}), never=frozenset({OK}), must_reach=False),
                Phase("observed", START, frozenset({ERR, UNKNOWN}), never=frozenset({OK}), stays=True),
            ),
            never_commit=True,
        ),
    ]


# -- what a run reports --


@dataclass
class SurfaceOutcome:
    """One surface over one phase."""

    reached_after_s: float | None
    """From the phase's start to the first poll with a right verdict; None: never within the observation."""
    wrong_s: dict[str, float]
    """Seconds each verdict that is neither right nor interim showed, over the whole phase."""
    interim_s: dict[str, float]
    forbidden: list[tuple[float, str]]
    """(seconds into the phase, verdict) of each poll with a verdict the phase must never show."""
    left_after_reaching_s: dict[str, float]
    """Seconds of other verdicts after the right one was reached (a phase that ``stays`` must have none)."""
    polls: int
    failures: int
    changes: list[tuple[float, str]]
    """(seconds since T0, verdict) at each change of verdict in the phase."""


@dataclass
class PhaseReport:
    name: str
    starts: str
    right: list[str]
    interim: list[str]
    never: list[str]
    must_reach: bool
    stays: bool
    started_at_s: float | None
    """Seconds since T0; None when its event never happened."""
    ended_at_s: float | None
    target_s: float | None
    """Seconds from the phase's start by which the right verdict should show (None: no target)."""
    target_reason: str
    surfaces: dict[str, SurfaceOutcome] = field(default_factory=dict)


@dataclass
class ScenarioReport:
    key: str
    title: str
    expected: str
    service_name: str
    consumer_group_id: str
    topic_name: str
    events_s: dict[str, float]
    """Each event's time, seconds since T0."""
    empty_at_s: float | None
    """The first poll after T0 that found the group without members (Empty or Dead)."""
    commit_interval_s: float | None
    """The median time between the consumer's commits before T0."""
    phases: list[PhaseReport]
    zero_reads: list[str]
    """Where a lag that is unknown read as 0 (the never-committed group): "surface: what (from +Ns, n polls)"."""
    consumer_errors: list[str]
    """What ended the consumer other than its scenario's event (a failure, an unexpected exit)."""
    consumer_warnings: int
    """Errors librdkafka reported on messages (it retries them)."""


@dataclass
class RunReport:
    interval_s: float
    window_s: float
    observe_s: float
    """How long the observation lasted after T0."""
    warmup_s: float
    """From the start of the run to T0."""
    started_at: str
    cluster_name: str
    collector_cycles: float | None
    poll_failures: dict[str, list[str]]
    """Per surface, the first few failures' messages."""
    scenarios: list[ScenarioReport]
    work_dir: str


# -- a run --


@dataclass(frozen=True)
class RunOptions:
    interval_s: float = 5.0
    window_s: float = 900.0
    observe_s: float = 120.0
    settle: bool = False
    """End before ``observe_s`` once every phase has reached its verdict on every surface and every scenario's
    current verdict is right (after ``min_observe_s`` at least)."""
    min_observe_s: float = 0.0
    warmup_cycles: int = 4
    poll_every_s: float = 1.0
    startup_timeout_s: float = 180.0
    cluster_name: str = "scenarios"


@dataclass
class _Live:
    """A running scenario: names, its consumer, and what its consumer said."""

    scenario: Scenario
    topic: str
    group: str
    service: str
    process: subprocess.Popen[str] | None = None
    events: dict[str, float] = field(default_factory=dict)
    """Event name -> monotonic time."""
    commits: list[float] = field(default_factory=list)
    """Monotonic times of the consumer's commits."""
    last_lag: dict[str, int | None] = field(default_factory=dict)
    caught_up: bool = False
    handled_batch: bool = False
    errors: list[str] = field(default_factory=list)
    warnings: int = 0
    states: list[tuple[float, str, int]] = field(default_factory=list)
    """(monotonic, group state, members) per poll."""
    lock: threading.Lock = field(default_factory=threading.Lock)


def _say(progress: Progress | None) -> Progress:
    return progress or (lambda _message: None)


def run(
    database_url: str,
    bootstrap_servers: str,
    work_dir: Path,
    options: RunOptions = RunOptions(),
    *,
    chosen: Sequence[str] = (),
    progress: Progress | None = None,
) -> RunReport:
    """Run the scenarios (all, or the ``chosen`` keys) at once against the database of ``database_url`` (migrated;
    the run adds a config per scenario) and the broker at ``bootstrap_servers``; logs go to ``work_dir``."""
    say = _say(progress)
    work_dir.mkdir(parents=True, exist_ok=True)
    every = [s for s in scenarios(options.interval_s) if not chosen or s.key in chosen]
    prefix = f"verdicts-{uuid.uuid4().hex[:8]}"
    live = [_Live(s, f"{prefix}-{s.key}", f"{prefix}-{s.key}-group", f"{prefix}-{s.key}") for s in every]
    started_at = dt.datetime.now(dt.timezone.utc)
    begun = time.monotonic()
    with contextlib.ExitStack() as stack:
        from loomctl import kafka

        admin = kafka.admin_for({"bootstrap.servers": bootstrap_servers})
        say(f"creating {len(live)} topics and configs ({prefix})")
        _create_topics(admin, [x.topic for x in live])
        stack.callback(_delete_topics, admin, [x.topic for x in live])
        _configure(database_url, live)
        say(f"starting the collector (--interval {options.interval_s:g}s)")
        collector = stack.enter_context(_collector(database_url, bootstrap_servers, work_dir, options))
        fired: dict[str, float] = {}
        halt = threading.Event()
        producer = threading.Thread(
            target=_produce, args=(bootstrap_servers, live, fired, halt), name="scenario-producer", daemon=True
        )
        producer.start()
        stack.callback(producer.join, 15)
        stack.callback(halt.set)
        say(f"starting {len(live)} consumers")
        for x in live:
            _start_consumer(x, database_url, bootstrap_servers, work_dir)
            stack.callback(_stop_consumer, x)
        _wait(
            lambda: all(_ready(x) for x in live),
            options.startup_timeout_s,
            lambda: "consumers caught up: " + ", ".join(f"{x.scenario.key} {_progress_of(x)}" for x in live if not _ready(x)),
        )
        # the collector's last cycle may predate the commits that caught up: two more before the surfaces count
        caught_up = collector.cycles()
        _wait(lambda: collector.cycles() >= caught_up + 2, options.interval_s * 6 + 60, lambda: "2 collector cycles")
        say("every consumer caught up; polling every surface")
        surfaces = stack.enter_context(_Surfaces(database_url, bootstrap_servers, collector, options, live))
        poller = threading.Thread(target=surfaces.loop, name="scenario-poller", daemon=True)
        warm_at = time.monotonic()
        for x in live:
            x.events[WARM] = warm_at
        poller.start()
        stack.callback(poller.join, 30)
        stack.callback(surfaces.halt.set)
        target_cycles = collector.cycles() + options.warmup_cycles
        _wait(
            lambda: collector.cycles() >= target_cycles,
            options.interval_s * options.warmup_cycles * 3 + 60,
            lambda: f"{options.warmup_cycles} collector cycles",
        )
        t0 = time.monotonic()
        surfaces.t0 = t0
        say("observing: events now")
        pending = [(x, e) for x in live for e in x.scenario.events]
        for x in live:
            x.events[START] = t0
        while True:
            now = time.monotonic()
            for x, e in [p for p in pending if t0 + p[1].after_s <= now]:
                pending.remove((x, e))
                _fire(x, e, fired)
                say(f"{x.scenario.key}: {e.name} at +{time.monotonic() - t0:.1f} s")
            elapsed = now - t0
            if elapsed >= options.observe_s:
                break
            if options.settle and not pending and elapsed >= options.min_observe_s and _settled(live, surfaces):
                break
            time.sleep(0.25)
        end = time.monotonic()
        cycles = collector.cycles()
        surfaces.halt.set()
        poller.join(30)
    say("stopped everything the run started")
    return RunReport(
        interval_s=options.interval_s,
        window_s=options.window_s,
        observe_s=round(end - t0, 1),
        warmup_s=round(t0 - begun, 1),
        started_at=started_at.isoformat(timespec="seconds"),
        cluster_name=options.cluster_name,
        collector_cycles=cycles,
        poll_failures=surfaces.failures,
        work_dir=str(work_dir),
        scenarios=[
            _report(x, surfaces.readings_of(x.scenario.key), surfaces.zero_reads.get(x.scenario.key, []), t0, end, options)
            for x in live
        ],
    )


def _wait(condition: Callable[[], bool], timeout_s: float, what: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise BackendUnavailable(f"scenarios: timed out after {timeout_s:.0f} s waiting for {what()}")
        time.sleep(0.2)


# -- topics, configs --


def _create_topics(admin: Any, topics: Sequence[str]) -> None:
    from confluent_kafka.admin import NewTopic

    futures = admin.create_topics([NewTopic(t, PARTITIONS, 1) for t in topics], operation_timeout=10)
    for future in futures.values():
        future.result(timeout=30)


def _delete_topics(admin: Any, topics: Sequence[str]) -> None:
    with contextlib.suppress(Exception):  # best effort: a leftover topic harms nobody
        for future in admin.delete_topics(list(topics), operation_timeout=10).values():
            with contextlib.suppress(Exception):
                future.result(timeout=20)


def _configure(database_url: str, live: Sequence[_Live]) -> None:
    """A config per scenario, matching what its consumer runs with (the consumer reads it through the loader):
    per-batch commits, a short session, reading from the earliest offset."""
    import psycopg

    with psycopg.connect(database_url) as conn:
        for x in live:
            conn.execute(
                "INSERT INTO pipeline_consumer_configs (service_name, consumer_group_id, session_timeout_ms,"
                " heartbeat_interval_ms, max_poll_interval_ms, enable_auto_commit, auto_offset_reset, description)"
                " VALUES (%s, %s, %s, %s, %s, false, 'earliest', %s)",
                (
                    x.service,
                    x.group,
                    SESSION_TIMEOUT_MS,
                    SESSION_TIMEOUT_MS // 3,
                    60_000,
                    f"verdict scenario: {x.scenario.title}",
                ),
            )


# -- the collector --


@dataclass
class _Collector:
    process: subprocess.Popen[bytes]
    address: str
    log: Path

    def get(self, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://{self.address}{path}", timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def cycles(self) -> float:
        from prometheus_client.parser import text_string_to_metric_families

        try:
            _, body = self.get("/metrics")
        except OSError:
            return 0.0
        for family in text_string_to_metric_families(body.decode()):
            for s in family.samples:
                if s.name == "loomctl_collector_cycles_total":
                    return s.value
        return 0.0


@contextlib.contextmanager
def _collector(database_url: str, bootstrap_servers: str, work_dir: Path, options: RunOptions) -> Iterator[_Collector]:
    from loomctl.devstack._process import free_port

    address = f"127.0.0.1:{free_port()}"
    log = work_dir / "collector.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOM_")}
    argv = [
        sys.executable,
        "-m",
        "loomctl",
        "--database-url",
        database_url,
        "--bootstrap-servers",
        bootstrap_servers,
        "lag",
        "collect",
        "--interval",
        f"{options.interval_s:g}s",
        "--window",
        f"{options.window_s:g}s",
        "--listen",
        address,
        "--cluster-name",
        options.cluster_name,
    ]
    with log.open("w") as err:
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err, env=env)
    running = _Collector(process, address, log)
    try:

        def ready() -> bool:
            if process.poll() is not None:
                raise BackendUnavailable(f"the collector exited {process.returncode}: {log.read_text()[-2000:]}")
            try:
                return running.get("/readyz", timeout=1)[0] == 200
            except OSError:
                return False

        _wait(ready, 120, lambda: "the collector's first cycle")
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# -- the producer --


def _produce(bootstrap_servers: str, live: Sequence[_Live], fired: dict[str, float], halt: threading.Event) -> None:
    """Every topic at its scenario's pace, spread over its partitions, until ``halt``."""
    from confluent_kafka import Producer

    from loomctl.kafka import quiet_logger

    producer = Producer({"bootstrap.servers": bootstrap_servers, "linger.ms": 5, "logger": quiet_logger()})
    started = time.monotonic()
    sent = {x.topic: 0 for x in live}
    rate_sent = {x.topic: 0 for x in live}
    bursts = {x.topic: 0 for x in live}

    def write(topic: str, count: int) -> None:
        for _ in range(count):
            n = sent[topic]
            while True:
                try:
                    producer.produce(topic, value=f"m{n}".encode(), partition=n % PARTITIONS)
                    break
                except BufferError:
                    producer.poll(0.05)
            sent[topic] = n + 1

    for x in live:
        write(x.topic, x.scenario.production.initial)
    while not halt.is_set():
        now = time.monotonic()
        for x in live:
            p = x.scenario.production
            if p.burst and p.burst_every_s:
                due = int((now - started) // p.burst_every_s) + 1
                if bursts[x.topic] < due:
                    write(x.topic, p.burst * (due - bursts[x.topic]))
                    bursts[x.topic] = due
            if p.rate:
                since = started if p.rate_from is None else fired.get(f"{x.scenario.key}:{p.rate_from}")
                if since is not None:
                    due = int((now - since) * p.rate)
                    if due > rate_sent[x.topic]:
                        write(x.topic, due - rate_sent[x.topic])
                        rate_sent[x.topic] = due
        producer.poll(0)
        halt.wait(0.05)
    producer.flush(10)


# -- the consumers --


def _start_consumer(x: _Live, database_url: str, bootstrap_servers: str, work_dir: Path) -> None:
    argv = [
        sys.executable,
        "-m",
        "loomctl.devstack.scenario_consumer",
        "--database-url",
        database_url,
        "--bootstrap-servers",
        bootstrap_servers,
        "--service",
        x.service,
        "--topic",
        x.topic,
        "--cache-dir",
        str(work_dir / "config-cache"),
    ]
    if x.scenario.never_commit:
        argv.append("--never-commit")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOM_")}
    with (work_dir / f"consumer-{x.scenario.key}.log").open("w") as err:
        x.process = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, env=env, text=True, bufsize=1
        )
    threading.Thread(target=_listen, args=(x,), name=f"scenario-{x.scenario.key}", daemon=True).start()


def _listen(x: _Live) -> None:
    """The consumer's events, as they come."""
    assert x.process is not None and x.process.stdout is not None
    threshold = max(5, int(x.scenario.production.rate / PARTITIONS * 1.5))
    for line in x.process.stdout:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        now = time.monotonic()
        kind = event.get("event")
        with x.lock:
            if kind == "committed":
                x.commits.append(now)
                x.last_lag = event.get("lag") or {}
                # every partition committed (a sample without a commit on one is a legitimate ERR), each close to its end
                if len(x.last_lag) == PARTITIONS and all(v is not None and v <= threshold for v in x.last_lag.values()):
                    x.caught_up = True
            elif kind == "batch":
                x.handled_batch = True
            elif kind == PASSED:
                x.events.setdefault(PASSED, now)
            elif kind == "failed":
                x.errors.append(str(event.get("message")))
            elif kind == "warning":
                x.warnings += 1
    code = x.process.wait()
    if code not in (0, -signal.SIGKILL):  # SIGKILL is the killed scenario's event
        with x.lock:
            x.errors.append(f"the consumer exited {code}")


def _ready(x: _Live) -> bool:
    with x.lock:
        return x.handled_batch if x.scenario.never_commit else x.caught_up


def _progress_of(x: _Live) -> str:
    alive = x.process is not None and x.process.poll() is None
    with x.lock:
        return f"(lag {x.last_lag or 'none yet'}, {'running' if alive else 'exited'}{', ' + x.errors[-1] if x.errors else ''})"


def _fire(x: _Live, event: Event, fired: dict[str, float]) -> None:
    assert x.process is not None
    if event.action == "SIGKILL":
        x.process.kill()
    elif event.action is not None and x.process.poll() is None and x.process.stdin is not None:
        x.process.stdin.write(event.action + "\n")
        x.process.stdin.flush()
    now = time.monotonic()
    x.events[event.name] = now
    fired[f"{x.scenario.key}:{event.name}"] = now


def _stop_consumer(x: _Live) -> None:
    process = x.process
    if process is None:
        return
    if process.poll() is None:
        with contextlib.suppress(OSError, ValueError):
            assert process.stdin is not None
            process.stdin.write("close\n")
            process.stdin.flush()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    for stream in (process.stdin, process.stdout):
        with contextlib.suppress(OSError, ValueError):
            if stream is not None:
                stream.close()


# -- the surfaces --


def verdict_of(status: str | None) -> str:
    """A surface's status as the harness's verdict: every "no verdict" spelling is :data:`UNKNOWN`."""
    if status in (OK, WARN, STALL, STOP, REWIND, ERR):
        return status
    return UNKNOWN


def rank(verdict: str) -> int:
    return status_rank("-" if verdict == UNKNOWN else verdict)


def alerts_verdict(alert_types: Sequence[str]) -> str:
    """The verdict a service's active alerts stand for: the worst of theirs, OK when none of them."""
    found = [ALERT_VERDICTS[a] for a in alert_types if a in ALERT_VERDICTS]
    return max(found, key=rank) if found else OK


def burrow_verdict(code: int, body: Any) -> str:
    """A Burrow ``/status`` answer as a verdict: the worst flagged partition (Burrow's group status folds STOP, STALL
    and REWIND into ERR), else the group's status; 404 or NOTFOUND is unknown."""
    if code == 404:
        return UNKNOWN
    status = (body or {}).get("status") or {}
    flagged = [p.get("status") for p in status.get("partitions") or [] if p.get("status") in FLAGS]
    if flagged:
        return max(flagged, key=rank)
    return verdict_of(status.get("status"))


def burrow_zero_reads(status_body: Any, lag_body: Any) -> list[str]:
    """What a Burrow client reads as lag 0 in a group whose lag is unknown: partitions whose ``current_lag`` is 0 or
    null (its number type makes null 0), and a group total of 0 that is not a NOTFOUND."""
    found = []
    for name, body in (("/status", status_body), ("/lag", lag_body)):
        status = (body or {}).get("status") or {}
        if not status or status.get("status") == "NOTFOUND":
            continue
        for p in status.get("partitions") or []:
            if p.get("current_lag") in (None, 0):
                found.append(f"{name} {p.get('topic')}[{p.get('partition')}] current_lag {p.get('current_lag')}")
        if status.get("totallag") == 0:
            found.append(f"{name} totallag 0 (status {status.get('status')})")
    return found


PROMETHEUS_LAG_SERIES = (
    "kafka_consumergroup_group_lag",
    "kafka_consumergroup_group_offset",
    "kafka_consumergroup_group_sum_lag",
    "kafka_consumergroup_group_max_lag",
    "kafka_consumergroup_group_topic_sum_lag",
)


class _Surfaces:
    """Polls every surface about once a second; each reading is kept with its time."""

    def __init__(
        self, database_url: str, bootstrap_servers: str, collector: _Collector, options: RunOptions, live: Sequence[_Live]
    ) -> None:
        import psycopg

        from loomctl import kafka

        self.admin = kafka.admin_for({"bootstrap.servers": bootstrap_servers})
        self.conn = psycopg.connect(database_url)
        self.collector = collector
        self.options = options
        self.window = dt.timedelta(seconds=options.window_s)
        self.live = list(live)
        self.by_group = {x.group: x for x in live}
        self.by_service = {x.service: x for x in live}
        self.halt = threading.Event()
        self.t0: float | None = None
        self.readings: list[tuple[float, str, str, str, str]] = []
        """(monotonic, scenario key, surface, verdict, detail)"""
        self.zero_reads: dict[str, list[tuple[float, str]]] = {}
        self.failures: dict[str, list[str]] = {}
        self.lock = threading.Lock()

    def __enter__(self) -> "_Surfaces":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.halt.set()
        with contextlib.suppress(Exception):
            self.conn.close()

    def loop(self) -> None:
        while not self.halt.is_set():
            started = time.monotonic()
            self.poll()
            self.halt.wait(max(0.0, self.options.poll_every_s - (time.monotonic() - started)))

    def poll(self) -> None:
        for surface, read in (
            ("lag show", self._lag_show),
            ("lag status", self._lag_status),
            ("alerts", self._alerts),
            ("/metrics", self._metrics),
            ("burrow", self._burrow),
        ):
            try:
                verdicts = read()
            except Exception as exc:  # a surface that fails is recorded, and the others are still read
                with contextlib.suppress(Exception):
                    self.conn.rollback()
                text = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
                now = time.monotonic()
                with self.lock:
                    failures = self.failures.setdefault(surface, [])
                    if len(failures) < 5:
                        failures.append(text)
                    self.readings.extend((now, x.scenario.key, surface, FAILED, text) for x in self.live)
                continue
            now = time.monotonic()
            with self.lock:
                self.readings.extend((now, key, surface, verdict, detail) for key, (verdict, detail) in verdicts.items())
        self._group_states()

    def _zero(self, x: _Live, surface: str, what: str) -> None:
        with self.lock:
            self.zero_reads.setdefault(x.scenario.key, []).append((time.monotonic(), f"{surface}: {what}"))

    def _lag_show(self) -> dict[str, tuple[str, str]]:
        from loomctl import lag

        try:
            view = lag.show(
                self.admin, self.conn, services=[x.service for x in self.live], by="service", status_window=self.window
            )
        finally:
            self.conn.rollback()
        rows = {s.consumer_group_id: s for s in view.summaries}
        for p in view.partitions:
            x = self.by_group.get(p.consumer_group_id)
            if x is not None and x.scenario.never_commit and p.committed_offset is None and p.lag == 0:
                self._zero(x, "lag show", f"{p.topic_name}[{p.partition}] lag 0 without a commit")
        out = {}
        for x in self.live:
            row = rows.get(x.group)
            if row is not None and x.scenario.never_commit and row.total_lag == 0:
                self._zero(x, "lag show", "total_lag 0")
            out[x.scenario.key] = (
                verdict_of(row.status) if row else UNKNOWN,
                f"{row.group_state} lag {row.total_lag}" if row else "no row",
            )
        return out

    def _lag_status(self) -> dict[str, tuple[str, str]]:
        from loomctl import lag

        try:
            report = lag.status_report(self.conn, self.window, [x.service for x in self.live])
        finally:
            self.conn.rollback()
        groups = {g.consumer_group_id: g for g in report.groups}
        out = {}
        for x in self.live:
            g = groups.get(x.group)
            if g is not None and x.scenario.never_commit and g.total_lag == 0:
                self._zero(x, "lag status", "total_lag 0")
            out[x.scenario.key] = (verdict_of(g.status) if g else UNKNOWN, f"lag {g.total_lag}" if g else "no row")
        return out

    def _alerts(self) -> dict[str, tuple[str, str]]:
        from loomctl import processing

        try:
            rows = processing.alerts(self.conn, self.window)
        finally:
            self.conn.rollback()
        types: dict[str, list[str]] = {}
        for r in rows:
            types.setdefault(r["service_name"], []).append(r["alert_type"])
        return {
            x.scenario.key: (alerts_verdict(types.get(x.service, [])), ",".join(sorted(types.get(x.service, []))))
            for x in self.live
        }

    def _metrics(self) -> dict[str, tuple[str, str]]:
        from prometheus_client.parser import text_string_to_metric_families

        code, body = self.collector.get("/metrics")
        if code != 200:
            raise BackendUnavailable(f"/metrics answered {code}")
        status: dict[str, str] = {}
        for family in text_string_to_metric_families(body.decode()):
            for s in family.samples:
                group = s.labels.get("group")
                if group not in self.by_group:
                    continue
                x = self.by_group[group]
                if s.name == "loomctl_group_status_code":
                    status[group] = s.labels.get("status", "")
                elif x.scenario.never_commit and s.name in PROMETHEUS_LAG_SERIES and s.value == 0:
                    where = f"[{s.labels.get('partition')}]" if "partition" in s.labels else ""
                    self._zero(x, "/metrics", f"{s.name}{where} 0")
        return {x.scenario.key: (verdict_of(status.get(x.group)), status.get(x.group, "no series")) for x in self.live}

    def _burrow(self) -> dict[str, tuple[str, str]]:
        from urllib.parse import quote

        out = {}
        base = f"/v3/kafka/{quote(self.options.cluster_name)}/consumer"
        for x in self.live:
            code, raw = self.collector.get(f"{base}/{quote(x.group)}/status")
            body = _json(raw)
            if code not in (200, 404) or body is None:
                raise BackendUnavailable(f"{base}/{x.group}/status answered {code}")
            status = body.get("status") or {}
            parts = sorted({p.get("status") for p in status.get("partitions") or []} - {None})
            out[x.scenario.key] = (burrow_verdict(code, body), f"{code} {status.get('status')} {','.join(parts)}")
            if x.scenario.never_commit:
                lag_code, lag_raw = self.collector.get(f"{base}/{quote(x.group)}/lag")
                for what in burrow_zero_reads(body, _json(lag_raw) if lag_code in (200, 404) else None):
                    self._zero(x, "burrow", what)
        return out

    def _group_states(self) -> None:
        from loomctl import kafka

        try:
            groups = kafka.describe_groups(self.admin, [x.group for x in self.live])
        except Exception:  # a missed look at the states: the next poll takes it
            return
        now = time.monotonic()
        for x in self.live:
            g = groups.get(x.group)
            if g is not None:
                with x.lock:
                    x.states.append((now, g.group_state, len(g.members)))

    def readings_of(self, key: str) -> list[tuple[float, str, str, str]]:
        with self.lock:
            return [(at, surface, verdict, detail) for at, k, surface, verdict, detail in self.readings if k == key]

    def current(self, key: str, surface: str) -> str | None:
        with self.lock:
            for _at, k, s, verdict, _ in reversed(self.readings):
                if k == key and s == surface and verdict != FAILED:
                    return verdict
        return None


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


# -- judging --


def _phase_bounds(x: _Live, end: float) -> list[tuple[Phase, float | None, float | None]]:
    """Each phase with its start and end (monotonic); a phase whose event never came has neither."""
    bounds = []
    starts = [x.events.get(p.starts) for p in x.scenario.phases]
    for i, phase in enumerate(x.scenario.phases):
        start = starts[i]
        later = [s for s in starts[i + 1 :] if s is not None]
        bounds.append((phase, start, (min(later) if later else end) if start is not None else None))
    return bounds


def _settled(live: Sequence[_Live], surfaces: _Surfaces) -> bool:
    """Every started phase that must reach its verdict has on every surface, and every scenario's last phase has
    started and reads right now."""
    now = time.monotonic()
    for x in live:
        readings = surfaces.readings_of(x.scenario.key)
        bounds = _phase_bounds(x, now)
        if bounds[-1][1] is None:
            return False
        for phase, start, stop in bounds:
            if start is None or not phase.must_reach:
                continue
            assert stop is not None  # a phase that started has an end: the next one's start, or now
            for surface in SURFACES:
                if not any(start <= at < stop and s == surface and v in phase.right for at, s, v, _ in readings):
                    return False
        last = bounds[-1][0]
        for surface in SURFACES:
            if surfaces.current(x.scenario.key, surface) not in last.right:
                return False
    return True


def _median_interval(times: Sequence[float]) -> float | None:
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    return statistics.median(gaps) if gaps else None


def _report(
    x: _Live,
    readings: Sequence[tuple[float, str, str, str]],
    zero_reads: Sequence[tuple[float, str]],
    t0: float,
    end: float,
    options: RunOptions,
) -> ScenarioReport:
    with x.lock:
        commits = [c for c in x.commits if c < t0]
        states = list(x.states)
        events = dict(x.events)
        errors = list(x.errors)
        warnings = x.warnings
    commit_interval = _median_interval(commits[-20:])
    empty_at = next((at for at, state, members in states if at >= t0 and (state in EMPTY_STATES or members == 0)), None)
    phases = []
    for phase, start, stop in _phase_bounds(x, end):
        target_s, reason = _target(phase, start, empty_at, commit_interval, options)
        report = PhaseReport(
            name=phase.name,
            starts=phase.starts,
            right=sorted(phase.right),
            interim=sorted(phase.interim),
            never=sorted(phase.never),
            must_reach=phase.must_reach,
            stays=phase.stays,
            started_at_s=None if start is None else round(start - t0, 1),
            ended_at_s=None if stop is None else round(stop - t0, 1),
            target_s=target_s,
            target_reason=reason,
        )
        if start is not None and stop is not None:
            for surface in SURFACES:
                mine = [(at, v) for at, s, v, _ in readings if s == surface]
                report.surfaces[surface] = judge(phase, mine, start, stop, t0)
        phases.append(report)
    return ScenarioReport(
        key=x.scenario.key,
        title=x.scenario.title,
        expected=x.scenario.expected,
        service_name=x.service,
        consumer_group_id=x.group,
        topic_name=x.topic,
        events_s={name: round(at - t0, 1) for name, at in sorted(events.items(), key=lambda item: item[1])},
        empty_at_s=None if empty_at is None else round(empty_at - t0, 1),
        commit_interval_s=None if commit_interval is None else round(commit_interval, 2),
        phases=phases,
        zero_reads=_first_zero_reads(zero_reads, t0),
        consumer_errors=errors[:10],
        consumer_warnings=warnings,
    )


def _first_zero_reads(found: Sequence[tuple[float, str]], t0: float) -> list[str]:
    """Each distinct zero read once, with the time it was first seen and how many polls saw it."""
    first: dict[str, tuple[float, int]] = {}
    for at, what in found:
        seen = first.get(what)
        first[what] = (seen[0], seen[1] + 1) if seen else (at, 1)
    return [f"{what} (from {at - t0:+.0f} s, {n} polls)" for what, (at, n) in sorted(first.items(), key=lambda i: i[1][0])]


def _target(
    phase: Phase, start: float | None, empty_at: float | None, commit_interval: float | None, options: RunOptions
) -> tuple[float | None, str]:
    three = 3 * options.interval_s
    if start is None or phase.target is None:
        return None, ""
    if phase.target == "empty":
        if empty_at is None:
            return None, "the group never went Empty"
        after = max(empty_at - start, 0.0)
        return round(after + three, 1), f"3 intervals ({three:g} s) after the group had no member (+{after:.1f} s)"
    if phase.target == "stall":
        usual = commit_interval or options.interval_s
        limit = max(3 * usual, three)
        return round(limit, 1), f"3 commit intervals ({usual:.1f} s), at least 3 collector intervals"
    return None, ""


def judge(phase: Phase, readings: Sequence[tuple[float, str]], start: float, stop: float, t0: float) -> SurfaceOutcome:
    """One surface's readings (monotonic time, verdict) over one phase [start, stop): each verdict holds until the
    next reading (or the phase's end), and the one read last before the phase holds from its start."""
    held = [(at, v) for at, v in readings if start <= at < stop and v != FAILED]
    failures = sum(1 for at, v in readings if start <= at < stop and v == FAILED)
    earlier = [v for at, v in readings if at < start and v != FAILED]
    timeline = ([(start, earlier[-1], True)] if earlier else []) + [(at, v, False) for at, v in held]
    wrong: dict[str, float] = {}
    interim: dict[str, float] = {}
    left: dict[str, float] = {}
    forbidden: list[tuple[float, str]] = []
    changes: list[tuple[float, str]] = []
    reached: float | None = None
    for i, (at, verdict, carried) in enumerate(timeline):
        span = max((timeline[i + 1][0] if i + 1 < len(timeline) else stop) - at, 0.0)
        if not changes or changes[-1][1] != verdict:
            changes.append((round(at - t0, 1), verdict))
        if verdict in phase.right:
            if reached is None:
                reached = at - start
            continue
        if verdict in phase.never and not carried:
            forbidden.append((round(at - start, 1), verdict))
        if reached is not None:
            left[verdict] = left.get(verdict, 0.0) + span
        bucket = interim if verdict in phase.interim else wrong
        bucket[verdict] = bucket.get(verdict, 0.0) + span
    return SurfaceOutcome(
        reached_after_s=None if reached is None else round(reached, 1),
        wrong_s={k: round(v, 1) for k, v in wrong.items()},
        interim_s={k: round(v, 1) for k, v in interim.items()},
        forbidden=forbidden,
        left_after_reaching_s={k: round(v, 1) for k, v in left.items()},
        polls=len(held),
        failures=failures,
        changes=changes,
    )


def report_dict(report: RunReport) -> dict[str, Any]:
    """The report as plain data (stable snake_case keys), for JSON."""
    from dataclasses import asdict

    return asdict(report)
