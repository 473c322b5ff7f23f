"""A soak of `loomctl lag collect`: an hour over 5,000 groups while the broker and PostgreSQL are paused, killed and
restarted on a schedule (issue 22).

    python bench/soak.py [--duration 3600] [--groups 5000] [--interval 30] [--topics 4 --partitions 3]
    python bench/soak.py --duration 600 --groups 500 --interval 10      # a short run: about 12 minutes with the set-up

It starts a local stack of its own (`loomctl dev up --dir` in a new temporary folder), makes N groups with committed
offsets (bench/many_groups.py's ``make``: no consumer runs, so the figures stay put) and a service config for each (rows
in pipeline_consumer_configs, the groups the collector samples), then runs `loomctl lag collect --interval I --listen
127.0.0.1:PORT -v` of this checkout for the duration, its stderr kept in a file, while these faults come in turn, evenly
spaced after a quiet start and before a quiet end (the schedule is printed first; in a short run each outage shrinks to
at most 30% of the time between two faults):

    kafka-pause     SIGSTOP the broker, SIGCONT 60 s later
    kafka-kill      SIGKILL the broker, `loomctl dev up` 30 s later (it starts the dead server again, same data and port)
    kafka-restart   stop the broker cleanly (SIGTERM, as `loomctl dev down` does), then `loomctl dev up`
    pg-pause        SIGSTOP PostgreSQL (the postmaster and every backend), SIGCONT 60 s later
    pg-kill         SIGKILL the postmaster (its backends exit on their own), `loomctl dev up` 30 s later
    pg-restart      fast shutdown of PostgreSQL (SIGINT, as `loomctl dev down` does), then `loomctl dev up`
    both-down       SIGKILL both, `loomctl dev up` 20 s later

A backend counts as down from the fault until SIGCONT, or until `loomctl dev up` has it answering again. Every 2 s the
script also checks that the servers it counts as up are alive: one that died of itself is reported and started again.
The collector process is started again too when it exits (a crash).

Measured afterwards, per fault window (from one fault to the next) and in total:

    due              the interval's ticks in the window (duration / interval in all)
    written          cycles in consumer_lag_history, the truth: its distinct sample timestamps for these groups
    on time          written within two intervals of the cycle before it (within one interval of when it was due)
    late             written after a gap of two intervals or more: the first cycle after missed ones
    missed           a gap of g seconds between two cycles written (or the start, or the end) misses floor(g / I) - 1
    missed up        missed cycles due while both backends were up from one interval before until one after (the
                     collector retries a failed cycle after an interval while failures are few); the target is 0
    crashes          the collector process exiting, and its snapshot child dying: the 'Kafka client did not answer /
                     stopped mid-request' warnings on its stderr, and loomctl_collector_snapshot_crashes_total
                     scraped from /metrics every interval (the larger of the two counts in the total)
    lost             samples lost: rows short of groups x partitions in the cycles written
    back after       seconds from the fault's backends answering again to the next cycle written

It prints the faults as they happen and the collector's warnings, then for each minute whether both backends were up
and how many cycles were written, the collector's warnings by kind, the stack the first snapshot crash left, any
traceback on its stderr (a Python traceback, or a fatal error other than the snapshot child's stack that a crash warning
carries), and the table.

Target: 0 crashes, and no cycle missed while both backends were up. Exit status: 1 when the target is missed or the
collector's stderr holds a traceback, 2 when it cannot run here. Everything it started is stopped and removed at the
end, also on Ctrl-C or a failure; the collector's stderr stays in the temporary folder it prints.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

import many_groups  # noqa: E402

from loomctl.devstack import _process, kafka, postgres  # noqa: E402

PREFIX = "soak"
KAFKA, PG = "Kafka", "PostgreSQL"
CRASH_WARNINGS = ("the Kafka client did not answer a snapshot", "the Kafka client stopped mid-request")
EVENT = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ) (debug|info|warning): (.*)")
METRIC = re.compile(r"^(loomctl_collector_\w+?)(?:\{[^}]*\})? (\S+)$")
FAULTS = (
    # name, backends, action, outage in an hour's run
    ("kafka-pause", (KAFKA,), "pause", 60.0),
    ("kafka-kill", (KAFKA,), "kill", 30.0),
    ("kafka-restart", (KAFKA,), "stop", 0.0),
    ("pg-pause", (PG,), "pause", 60.0),
    ("pg-kill", (PG,), "kill", 30.0),
    ("pg-restart", (PG,), "stop", 0.0),
    ("both-down", (KAFKA, PG), "kill", 20.0),
)
OUTAGE_SHARE = 0.3


def _env() -> dict[str, str]:
    """This process's environment without LOOM_* settings, running this checkout's loomctl."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOM_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    return env


LOOMCTL = [sys.executable, "-m", "loomctl"]


class Log:
    def __init__(self) -> None:
        self.start = time.time()
        self._lock = threading.Lock()

    def __call__(self, message: str) -> None:
        with self._lock:
            print(f"[{_clock(time.time() - self.start)}] {message}", flush=True)


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60:3d}:{seconds % 60:02d}"


@dataclass
class Timeline:
    """When each backend was down: [from, to) in Unix time, ``to`` None while it still is."""

    down: dict[str, list[list[float | None]]] = field(default_factory=lambda: {KAFKA: [], PG: []})

    def went_down(self, backend: str) -> None:
        if not self.is_down(backend):
            self.down[backend].append([time.time(), None])

    def came_up(self, backend: str) -> float:
        now = time.time()
        if self.is_down(backend):
            self.down[backend][-1][1] = now
        return now

    def is_down(self, backend: str) -> bool:
        return bool(self.down[backend]) and self.down[backend][-1][1] is None

    def down_in(self, backend: str, a: float, b: float) -> float:
        """Seconds of [a, b) the backend was down."""
        total = 0.0
        for start, end in self.down[backend]:
            assert start is not None
            total += max(0.0, min(b, end if end is not None else b) - max(a, start))
        return total

    def both_up(self, a: float, b: float) -> bool:
        return not any(self.down_in(backend, a, b) for backend in (KAFKA, PG))


class Stack:
    """The dev stack of the soak, through `loomctl dev` and the pids it records in stack.json."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.lock = threading.Lock()  # one fault or restart at a time
        self.paused: list[int] = []

    def loomctl(self, *args: str, timeout: float = 600) -> str:
        result = subprocess.run(
            [*LOOMCTL, *args, "--dir", str(self.folder)], capture_output=True, text=True, env=_env(), timeout=timeout
        )
        if result.returncode != 0:
            raise RuntimeError(f"loomctl {' '.join(args)} failed (exit {result.returncode}): {result.stderr.strip()[-2000:]}")
        return result.stdout

    def up(self) -> None:
        self.loomctl("dev", "up")

    def env(self) -> dict[str, str]:
        return dict(shlex.split(line.removeprefix("export "))[0].split("=", 1) for line in self.loomctl("dev", "env").splitlines())

    def down(self) -> None:
        self.resume()
        if (self.folder / "stack.json").is_file():
            self.loomctl("dev", "down")

    def _record(self) -> dict:
        import json

        return json.loads((self.folder / "stack.json").read_text())

    def pid(self, backend: str) -> int:
        return int(self._record()["kafka" if backend == KAFKA else "postgres"]["pid"])

    def _pg_root(self) -> Path:
        return Path(self._record()["postgres"]["root"])

    def alive(self, backend: str) -> bool:
        if backend == KAFKA:
            return kafka.is_running(self.pid(KAFKA), self.folder)
        return postgres.is_running(self.pid(PG), self._pg_root())

    def pause(self, backend: str) -> list[int]:
        """SIGSTOP the broker, or the postmaster first (no new backends) and then every process of PostgreSQL."""
        pids = [self.pid(backend)]
        if backend == PG:
            os.kill(pids[0], signal.SIGSTOP)
            pids += [p for p in postgres.server_processes(self._pg_root()) if p != pids[0]]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
            self.paused.append(pid)
        return pids

    def resume(self) -> None:
        for pid in reversed(self.paused):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        self.paused.clear()

    def kill(self, backend: str) -> int:
        pid = self.pid(backend)
        os.kill(pid, signal.SIGKILL)
        return pid

    def stop(self, backend: str) -> bool:
        if backend == KAFKA:
            return kafka.stop(self.pid(KAFKA), self.folder)
        return postgres.stop(self.pid(PG), self._pg_root())


@dataclass
class Fault:
    name: str
    backends: tuple[str, ...]
    action: str
    at: float
    """Seconds after the collector started."""
    hold: float
    started: float | None = None
    recovered: float | None = None

    def describe(self) -> str:
        who = " and ".join(self.backends)
        if self.action == "pause":
            return f"SIGSTOP {who}, SIGCONT after {self.hold:.0f} s"
        if self.action == "kill":
            return f"SIGKILL {who}, `loomctl dev up` after {self.hold:.0f} s"
        return f"stop {who} cleanly, then `loomctl dev up`"


def schedule(duration: float, interval: float) -> list[Fault]:
    """The faults in turn, evenly spaced between a quiet start and a quiet end of 5% of the run (3 intervals at least)."""
    quiet = max(3 * interval, 0.05 * duration)
    spacing = (duration - 2 * quiet) / len(FAULTS)
    if spacing < 2 * interval:
        raise SystemExit(f"--duration {duration:g} is too short for {len(FAULTS)} faults at --interval {interval:g}")
    return [
        Fault(name, backends, action, quiet + i * spacing, min(hold, OUTAGE_SHARE * spacing))
        for i, (name, backends, action, hold) in enumerate(FAULTS)
    ]


def inflict(fault: Fault, stack: Stack, timeline: Timeline, say: Callable[[str], None]) -> None:
    with stack.lock:
        fault.started = time.time()
        for backend in fault.backends:
            timeline.went_down(backend)
        if fault.action == "pause":
            (backend,) = fault.backends
            pids = stack.pause(backend)
            say(f"{fault.name}: SIGSTOP {backend} (pids {' '.join(map(str, pids))})")
            time.sleep(fault.hold)
            stack.resume()
        elif fault.action == "kill":
            killed = [f"{backend} (pid {stack.kill(backend)})" for backend in fault.backends]
            say(f"{fault.name}: SIGKILL {' and '.join(killed)}")
            time.sleep(fault.hold)
            stack.up()
        else:
            (backend,) = fault.backends
            pid = stack.pid(backend)
            stopped = stack.stop(backend)
            say(f"{fault.name}: stopped {backend} (pid {pid}) {'cleanly' if stopped else 'NOT: still running'}")
            stack.up()
        for backend in fault.backends:
            fault.recovered = timeline.came_up(backend)
        say(f"{fault.name}: {' and '.join(fault.backends)} up again after {fault.recovered - fault.started:.0f} s")


class Watcher(threading.Thread):
    """Every 2 s: a server counted as up that is not running died of itself; it is reported and started again."""

    def __init__(self, stack: Stack, timeline: Timeline, say: Callable[[str], None]) -> None:
        super().__init__(daemon=True)
        self.stack, self.timeline, self.say = stack, timeline, say
        self.halt = threading.Event()
        self.deaths: list[tuple[float, str]] = []

    def run(self) -> None:
        while not self.halt.wait(2.0):
            if not self.stack.lock.acquire(blocking=False):
                continue  # a fault is under way
            try:
                for backend in (KAFKA, PG):
                    if self.timeline.is_down(backend) or self.stack.alive(backend):
                        continue
                    self.timeline.went_down(backend)
                    self.deaths.append((time.time(), backend))
                    self.say(f"{backend} died on its own: starting it again")
                    self.stack.up()
                    self.timeline.came_up(backend)
            except Exception as exc:  # keep watching; the table shows what was down
                self.say(f"the watcher failed: {exc}")
            finally:
                self.stack.lock.release()


class CollectorRun(threading.Thread):
    """`loomctl lag collect` as a subprocess: started again when it exits, /metrics scraped every interval, its stderr
    followed to echo the warnings."""

    def __init__(self, env: dict[str, str], interval: int, log: Path, say: Callable[[str], None]) -> None:
        super().__init__(daemon=True)
        self.env, self.interval, self.log, self.say = env, interval, log, say
        self.address = f"127.0.0.1:{_process.free_port()}"
        self.halt = threading.Event()
        self.process: subprocess.Popen[bytes] | None = None
        self.exits: list[tuple[float, int]] = []
        self.earlier_crashes = 0.0  # loomctl_collector_snapshot_crashes_total of the processes that exited
        self.metrics: dict[str, float] = {}
        self.scrapes_failed = 0
        self._read = 0
        self._in_crash = False  # following the stack attached to a snapshot crash warning

    def start_process(self) -> None:
        with open(self.log, "ab") as stderr:
            self.process = subprocess.Popen(
                [*LOOMCTL, "lag", "collect", "--interval", f"{self.interval}s", "--listen", self.address, "-v"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr, env=self.env, start_new_session=True,
            )

    @property
    def snapshot_crashes(self) -> int:
        return int(self.earlier_crashes + self.metrics.get("loomctl_collector_snapshot_crashes_total", 0))

    def run(self) -> None:
        next_scrape = time.monotonic() + self.interval
        while not self.halt.wait(1.0):
            self._follow()
            assert self.process is not None
            if self.process.poll() is not None:
                self.exits.append((time.time(), self.process.returncode))
                self.earlier_crashes += self.metrics.get("loomctl_collector_snapshot_crashes_total", 0)
                self.metrics = {}
                self.say(f"COLLECTOR EXITED with {self.process.returncode}: starting it again")
                self.start_process()
            if time.monotonic() >= next_scrape:
                next_scrape += self.interval
                self._scrape()
        self._follow()

    def _scrape(self) -> None:
        try:
            with urllib.request.urlopen(f"http://{self.address}/metrics", timeout=5) as response:
                text = response.read().decode()
        except OSError:
            self.scrapes_failed += 1
            return
        for line in text.splitlines():
            match = METRIC.match(line)
            if match:
                self.metrics[match.group(1)] = float(match.group(2))

    def _follow(self) -> None:
        """Echo what the collector said since the last look, but its 'wrote' lines and the stacks under its warnings."""
        try:
            with open(self.log, "rb") as file:
                file.seek(self._read)
                text = file.read()
        except OSError:
            return
        complete = text.rfind(b"\n") + 1
        self._read += complete
        for line in text[:complete].decode(errors="replace").splitlines():
            match = EVENT.match(line)
            if match:
                self._in_crash = any(w in match.group(3) for w in CRASH_WARNINGS)
                if match.group(2) != "debug":
                    self.say(f"  collector {match.group(2)}: {match.group(3)[:220]}")
            elif _traceback(line, self._in_crash):
                self.say(f"  collector: {line}")

    def stop(self) -> None:
        self.halt.set()
        if self.is_alive():
            self.join(10)
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def make_groups(groups: int, topics: int, partitions: int, url: str) -> int:
    """The groups with their offsets (bench/many_groups.py) and a config each; returns the rows a cycle should write."""
    import psycopg

    many_groups.make(PREFIX, groups, topics, partitions)
    ids = [many_groups.group_id(PREFIX, i) for i in range(groups)]
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO pipeline_consumer_configs (service_name, consumer_group_id, description, updated_by)"
            " SELECT g || '-svc', g, 'bench/soak.py', 'soak' FROM unnest(%s::text[]) AS g",
            (ids,),
        )
    return sum(len(many_groups.group_topics(PREFIX, i, topics)) * partitions for i in range(groups))


def written_cycles(url: str, t0: float, end: float) -> list[tuple[float, int]]:
    """(timestamp, rows) of every cycle the collector wrote for the soak's groups between t0 and end."""
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT timestamp, count(*) FROM consumer_lag_history WHERE consumer_group_id LIKE %s"
            " AND timestamp >= %s AND timestamp < %s GROUP BY 1 ORDER BY 1",
            (f"{PREFIX}-g%", _utc(t0), _utc(end)),
        ).fetchall()
    return [(ts.timestamp(), int(count)) for ts, count in rows]


def _utc(t: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc)


@dataclass
class Window:
    name: str
    start: float
    end: float
    fault: Fault | None = None
    due: int = 0
    written: int = 0
    on_time: int = 0
    late: int = 0
    missed: int = 0
    missed_up: int = 0
    exits: int = 0
    snapshot_crashes: int = 0
    lost: int = 0
    short: int = 0
    back_after: float | None = None


def analyse(
    writes: list[tuple[float, int]],
    faults: list[Fault],
    timeline: Timeline,
    t0: float,
    end: float,
    interval: float,
    expected_rows: int,
    crash_times: list[float],
    exit_times: list[float],
) -> tuple[list[Window], list[float]]:
    """The windows with their counts, and the due times of the cycles missed while both backends were up."""
    bounds = [t0] + [t0 + f.at for f in faults] + [end]
    windows = [Window("quiet start", bounds[0], bounds[1])]
    windows += [Window(f.name, bounds[i + 1], bounds[i + 2], fault=f) for i, f in enumerate(faults)]

    def window_of(t: float) -> Window:
        return next((w for w in reversed(windows) if w.start <= t), windows[0])

    ticks = int((end - t0) // interval)
    for k in range(ticks):
        window_of(t0 + k * interval).due += 1
    missed_up: list[float] = []

    def missed(previous: float, gap: float) -> None:
        for j in range(1, int(gap // interval)):
            due = previous + j * interval
            window = window_of(due)
            window.missed += 1
            if timeline.both_up(due - interval, due + interval):
                window.missed_up += 1
                missed_up.append(due)

    previous = t0 - interval  # the first cycle is due at the start
    for ts, rows in writes:
        window = window_of(ts)
        window.written += 1
        gap = ts - previous
        if gap < 2 * interval:
            window.on_time += 1
        else:
            window.late += 1
            missed(previous, gap)
        if rows < expected_rows:
            window.lost += expected_rows - rows
            window.short += 1
        previous = ts
    missed(previous, end - previous)
    for t in crash_times:
        window_of(t).snapshot_crashes += 1
    for t in exit_times:
        window_of(t).exits += 1
    for window in windows:
        if window.fault is not None and window.fault.recovered is not None:
            after = [ts for ts, _ in writes if ts >= window.fault.recovered]
            window.back_after = after[0] - window.fault.recovered if after else None
    return windows, missed_up


def _traceback(line: str, in_crash: bool) -> bool:
    """A Python traceback of the collector, or a fatal error outside the stack a snapshot crash warning carries (the
    child's faulthandler dump, which that warning already counts)."""
    return line.startswith("Traceback (most recent call last)") or (line.startswith("Fatal Python error") and not in_crash)


def stderr_report(log: Path) -> tuple[list[float], Counter[str], list[str], str]:
    """From the collector's stderr: the times of its snapshot crash warnings, its warnings by kind, its tracebacks,
    and the stack the first snapshot crash warning carried."""
    crash_times: list[float] = []
    kinds: Counter[str] = Counter()
    tracebacks: list[str] = []
    first_crash: list[str] = []
    in_crash = False
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    for i, line in enumerate(lines):
        match = EVENT.match(line)
        if match:
            in_crash = any(w in match.group(3) for w in CRASH_WARNINGS)
            if match.group(2) == "warning":
                kinds[re.sub(r"\d+(\.\d+)?", "N", match.group(3))[:150]] += 1
            if in_crash:
                when = dt.datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
                crash_times.append(when.timestamp())
        elif in_crash and len(crash_times) == 1 and line.strip():
            first_crash.append(line)
        if _traceback(line, in_crash):
            tracebacks.append("\n".join(lines[i:i + 30]))
    return crash_times, kinds, tracebacks, "\n".join(first_crash[:25])


def print_minutes(timeline: Timeline, writes: list[tuple[float, int]], t0: float, end: float) -> None:
    print("\neach minute: . both backends up throughout, K Kafka down, P PostgreSQL down, B both down at some point in it;"
          " below it, the cycles written in that minute")
    marks, counts = [], []
    for m in range(int(-(-(end - t0) // 60))):
        a, b = t0 + 60 * m, min(t0 + 60 * (m + 1), end)
        k, p = timeline.down_in(KAFKA, a, b) > 0, timeline.down_in(PG, a, b) > 0
        marks.append("B" if k and p else "K" if k else "P" if p else ".")
        n = sum(1 for ts, _ in writes if a <= ts < b)
        counts.append(str(n) if n < 10 else "+")
    for start in range(0, len(marks), 30):
        print(f"  min {start:3d}  up       {''.join(marks[start:start + 30])}")
        print(f"           written  {''.join(counts[start:start + 30])}")


def print_table(windows: list[Window], timeline: Timeline, t0: float, metric_crashes: int) -> dict[str, int]:
    head = (f"{'window':14} {'from':>6} {'to':>6} {'Kafka down':>10} {'PG down':>8} {'due':>4} {'written':>7} {'on time':>7}"
            f" {'late':>4} {'missed':>6} {'missed up':>9} {'crashes':>7} {'lost':>6} {'back after':>10}")
    print("\n" + head)
    print("-" * len(head))
    total = Counter()
    for w in windows:
        crashes = w.exits + w.snapshot_crashes
        kd, pd = timeline.down_in(KAFKA, w.start, w.end), timeline.down_in(PG, w.start, w.end)
        back = "-" if w.fault is None else ("never" if w.back_after is None else f"{w.back_after:.0f} s")
        print(f"{w.name:14} {_clock(w.start - t0):>6} {_clock(w.end - t0):>6} {kd:8.0f} s {pd:6.0f} s {w.due:4d} {w.written:7d}"
              f" {w.on_time:7d} {w.late:4d} {w.missed:6d} {w.missed_up:9d} {crashes:7d} {w.lost:6d} {back:>10}")
        total.update(due=w.due, written=w.written, on_time=w.on_time, late=w.late, missed=w.missed, missed_up=w.missed_up,
                     exits=w.exits, stderr_crashes=w.snapshot_crashes, lost=w.lost, short=w.short)
        total["kafka_down"] += int(kd)
        total["pg_down"] += int(pd)
    total["crashes"] = total["exits"] + max(total["stderr_crashes"], metric_crashes)
    print("-" * len(head))
    print(f"{'total':14} {_clock(windows[0].start - t0):>6} {_clock(windows[-1].end - t0):>6} {total['kafka_down']:8d} s"
          f" {total['pg_down']:6d} s {total['due']:4d} {total['written']:7d} {total['on_time']:7d} {total['late']:4d}"
          f" {total['missed']:6d} {total['missed_up']:9d} {total['crashes']:7d} {total['lost']:6d}")
    return dict(total)


def _interrupted(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=3600, help="seconds the collector runs (default 3600)")
    parser.add_argument("--groups", type=int, default=5000, help="consumer groups, each configured (default 5000)")
    parser.add_argument("--interval", type=int, default=30, help="the collector's --interval in seconds (default 30)")
    parser.add_argument("--topics", type=int, default=4, help="topics the groups commit on (default 4)")
    parser.add_argument("--partitions", type=int, default=3, help="partitions per topic (default 3)")
    args = parser.parse_args()
    faults = schedule(args.duration, args.interval)

    folder = Path(tempfile.mkdtemp(prefix="loomctl-soak-"))
    stack = Stack(folder / "stack")
    log = folder / "collector.stderr"
    say = Log()
    timeline = Timeline()
    watcher = Watcher(stack, timeline, say)
    collector: CollectorRun | None = None
    signal.signal(signal.SIGTERM, _interrupted)
    try:
        say(f"starting a local stack in {stack.folder}")
        try:
            stack.up()
        except RuntimeError as exc:
            print(f"cannot run here: {exc}", file=sys.stderr)
            return 2
        env = stack.env()
        os.environ.update(env)  # many_groups talks to the stack's broker
        say(f"making {args.groups} groups with committed offsets on {args.topics} topics x {args.partitions} partitions")
        expected_rows = make_groups(args.groups, args.topics, args.partitions, env["LOOM_DATABASE_URL"])
        say(f"{args.groups} groups configured: {expected_rows} samples a cycle")

        print(f"\nschedule (after the collector starts; every {args.interval} s a cycle, {args.duration // args.interval} due):")
        for fault in faults:
            print(f"  {_clock(fault.at)}  {fault.name:14} {fault.describe()}")
        print(f"  {_clock(args.duration)}  end\n", flush=True)

        collector = CollectorRun({**_env(), **env}, args.interval, log, say)
        t0 = time.time()
        say.start = t0
        collector.start_process()
        collector.start()
        watcher.start()
        say(f"collector started, serving http://{collector.address}/metrics; its stderr: {log}")
        for fault in faults:
            time.sleep(max(0.0, t0 + fault.at - time.time()))
            inflict(fault, stack, timeline, say)
        end = t0 + args.duration
        time.sleep(max(0.0, end - time.time()))
        watcher.halt.set()
        collector.stop()
        say("collector stopped")

        writes = written_cycles(env["LOOM_DATABASE_URL"], t0, end)
        crash_times, kinds, tracebacks, first_crash = stderr_report(log)
        windows, missed_up = analyse(
            writes, faults, timeline, t0, end, args.interval, expected_rows, crash_times, [t for t, _ in collector.exits]
        )
        print_minutes(timeline, writes, t0, end)
        if kinds:
            print("\nthe collector's warnings, by kind (digits as N):")
            for kind, count in kinds.most_common(12):
                print(f"  {count:4d}  {kind}")
        if first_crash:
            print(f"\nthe stack the first snapshot crash warning carried:\n{first_crash}")
        for trace in tracebacks[:3]:
            print(f"\nTRACEBACK on the collector's stderr:\n{trace}")
        if watcher.deaths:
            print(f"\nservers that died of themselves: {', '.join(f'{b} at {_clock(t - t0)}' for t, b in watcher.deaths)}")
        total = print_table(windows, timeline, t0, collector.snapshot_crashes)
        print(f"\n{args.groups} groups, {expected_rows} samples a cycle, --interval {args.interval}s for {args.duration} s;"
              f" collector exits {total['exits']}, snapshot crashes {total['stderr_crashes']} on stderr and"
              f" {collector.snapshot_crashes} in /metrics ({collector.scrapes_failed} scrapes failed; its last counted"
              f" {collector.metrics.get('loomctl_collector_cycles_total', 0):.0f} cycles and"
              f" {collector.metrics.get('loomctl_collector_cycle_failures_total', 0):.0f} failures),"
              f" {total['short']} cycles short of samples, tracebacks {len(tracebacks)}")
        if missed_up:
            print(f"missed while both backends were up: the cycles due at {', '.join(_clock(u - t0) for u in missed_up)}")
        met = total["crashes"] == 0 and total["missed_up"] == 0 and not tracebacks
        print(f"target (0 crashes, no cycle missed while both backends were up, no traceback): {'met' if met else 'MISSED'}")
        print(f"the collector's stderr: {log}")
        return 0 if met else 1
    except KeyboardInterrupt:
        say("interrupted: cleaning up")
        return 130
    finally:
        watcher.halt.set()
        if collector is not None:
            collector.stop()
        if watcher.is_alive():
            watcher.join(120)  # it may be starting a server again
        try:
            stack.down()
        except Exception as exc:
            print(f"warning: `loomctl dev down --dir {stack.folder}` failed: {exc}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
