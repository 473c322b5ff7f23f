"""The `lag collect` collector's memory per partition row (issue 23: under 1 KB; 2.9 KB at 448k rows before).

On the local broker (LOOM_KAFKA_BOOTSTRAP_SERVERS and LOOM_DATABASE_URL, e.g. from
``eval "$(loomctl dev env --dir DIR)"`` after ``loomctl dev up --dir DIR``) it commits offsets for G groups on T
topics of P partitions (bench/many_groups.py's fast ``make``: one topic for an even group, two for an odd one, every
partition of each, so about G x 1.5 x P partition rows), writes 40 records to every partition (so the groups lag,
and their lag in time is carried from cycle to cycle) and gives every group a service config, then runs a few
collector cycles (``Collector(Settings.from_env(), 30 s, None).cycle()``, as bench/lag_snapshot.py's --collector
does) in a process of its own, twice: without an exporter, and with one (the ``--listen`` path, whose exporter keeps
the last cycle's figures and their rendered text; after each cycle a scrape and a Burrow client's consumer list are
served from them). For each it reports that process's peak RSS (ru_maxrss) minus its
RSS before the first cycle (every module the cycle uses already imported: the baseline), divided by the partition
rows of a cycle, against the 1 KB target; and what it still holds after the cycles, the same way.

With --against REV the same two runs are made with the collector of that git revision (a worktree of it), in the
same order, so before and after are measured side by side on the same groups, broker and database. --trace adds,
per run, tracemalloc's largest allocation sites (by line) at the end of the COPY and where the exporter renders
(the moments of the peak), in a run of its own (tracemalloc costs time and memory).

The benchmark never fails on slowness or size: it prints figures and ratios. Exit 2: cannot run here.

    PYTHONPATH=$PWD python bench/collector_memory.py [--groups 6000 --topics 40 --partitions 16] [--cycles 3]
        [--against REV] [--trace] [--keep] [--prefix cmem]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

TARGET_BYTES = 1024

CHILD = r"""
import datetime as dt, gc, json, resource, sys, time
root, mode, cycles, trace = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
sys.path.insert(0, root)
# every module a cycle uses, imported before the baseline
import psycopg, psycopg.rows, prometheus_client, prometheus_client.core  # noqa: E401
from loomctl import kafka, clusters, configs
from loomctl.lag import collector as module, cluster_loop, exporter as exp, http, live, samples, status, status_keeper, shares
from loomctl.lag import snapshot_worker, time_lag
from loomctl.settings import Settings


def rss_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


traces = []
if trace:
    import linecache, tracemalloc

    def top(label, limit=14):
        snap = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
        stats = snap.statistics("lineno")
        total = sum(s.size for s in stats)
        lines = [f"{label}: {total / 2**20:.1f} MB traced"]
        for s in stats[:limit]:
            f = s.traceback[0]
            code = linecache.getline(f.filename, f.lineno).strip()[:70]
            name = f.filename.replace(root, "").lstrip("/")[-48:]
            lines.append(f"  {s.size / 2**20:7.1f} MB {s.count:9d} blocks  {name}:{f.lineno}  {code}")
        traces.append("\n".join(lines))

    real_copy = cluster_loop.copy_samples

    def copy_then_trace(conn, rows):
        n = real_copy(conn, rows)
        top("end of the COPY")
        return n

    cluster_loop.copy_samples = copy_then_trace
    real_render = exp.render

    def render_then_trace(c):
        text = real_render(c)
        if isinstance(c, exp._FiguresCollector):
            top("the exporter's render")
        return text

    exp.render = render_then_trace
    renders = "render_members" if hasattr(exp, "render_members") else "render_figures"  # what publish calls
    real_figures = getattr(exp, renders)

    def figures_then_trace(*args, **kwargs):
        text = real_figures(*args, **kwargs)
        top("the exporter's render")
        return text

    setattr(exp, renders, figures_then_trace)

exporter = exp.Exporter() if mode == "exporter" else None
collector = module.Collector(Settings.from_env(), dt.timedelta(seconds=30), None, exporter=exporter)
gc.collect()
base_kb = rss_kb()
if trace:
    tracemalloc.start()
took, peaks, rows = [], [], 0
try:
    for n in range(cycles):
        start = time.perf_counter()
        result = collector.cycle()
        collector.settle(120)
        if exporter is not None:  # served as a scrape and a Burrow client find it: the gzipped figures, the consumer list
            exporter.metrics(compressed=True)
            http.Api(exporter).get("/v3/kafka/" + exporter.cluster_name + "/consumer")
        took.append(time.perf_counter() - start)
        peaks.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        rows = result.written
    gc.collect()
    held_kb = rss_kb()
finally:
    collector.close()
print(json.dumps({"base_kb": base_kb, "peak_kb": peaks, "held_kb": held_kb, "rows": rows, "cycle_s": took,
                  "child_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, "traces": traces}))
"""


def produce(prefix: str, topics: int, partitions: int, records: int) -> None:
    """``records`` records on every partition, so each group's commits (0 to 16) lag and its lag in time is carried
    from cycle to cycle, as in a collector watching consumers that fell behind."""
    import many_groups
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": os.environ["LOOM_KAFKA_BOOTSTRAP_SERVERS"], "linger.ms": 50})
    for topic in many_groups._topics(prefix, topics):
        for partition in range(partitions):
            for _ in range(records):
                producer.produce(topic, b"x", partition=partition)
            producer.poll(0)
    if producer.flush(120):
        raise SystemExit("records still unsent after 120 s")


def configure(prefix: str, groups: list[str]) -> None:
    """A service config for every group (`config import`, 2,000 at a time, through this tree's loomctl)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for start in range(0, len(groups), 2000):
        services = [{"service_name": f"{g}-svc", "consumer_group_id": g} for g in groups[start : start + 2000]]
        with tempfile.NamedTemporaryFile("w", suffix=".json", prefix=f"{prefix}-") as file:
            json.dump({"services": services}, file)
            file.flush()
            done = subprocess.run(
                [sys.executable, "-m", "loomctl", "config", "import", file.name, "--yes", "--reason", "collector memory bench"],
                capture_output=True, text=True, env=env,
            )  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(f"loomctl config import failed: {done.stderr.strip()}")


def unconfigure(groups: list[str]) -> None:
    from loomctl import configs
    from loomctl.db import session_scope
    from loomctl.settings import Settings

    with session_scope(Settings.from_env()) as session:
        for g in groups:
            configs.delete_config(session, f"{g}-svc", actor="collector-memory-bench", reason="bench done")


def run_child(root: Path, mode: str, cycles: int, trace: bool) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(root), mode, str(cycles), "1" if trace else "0"],
        capture_output=True,
        text=True,
        env=env,
    )
    if done.returncode != 0:
        raise SystemExit(f"the collector's run ({mode}, {root}) failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def per_row(r: dict[str, Any]) -> tuple[float, float]:
    rows = max(r["rows"], 1)
    return (max(r["peak_kb"]) - r["base_kb"]) * 1024 / rows, max(r["held_kb"] - r["base_kb"], 0) * 1024 / rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--groups", type=int, default=6000)
    parser.add_argument("--topics", type=int, default=40)
    parser.add_argument("--partitions", type=int, default=16)
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--records", type=int, default=40, help="records per partition (the commits are 0 to 16)")
    parser.add_argument("--prefix", default="cmem")
    parser.add_argument("--against", metavar="REV", help="also measure the collector of this git revision, side by side")
    parser.add_argument("--trace", action="store_true", help="also print tracemalloc's largest sites (a run of its own)")
    parser.add_argument("--keep", action="store_true", help="leave the groups, topics and configs for the next run")
    parser.add_argument("--reuse", action="store_true", help="the groups and configs are there from a --keep run")
    args = parser.parse_args()
    if not os.environ.get("LOOM_KAFKA_BOOTSTRAP_SERVERS") or not os.environ.get("LOOM_DATABASE_URL"):
        print('set LOOM_KAFKA_BOOTSTRAP_SERVERS and LOOM_DATABASE_URL (eval "$(loomctl dev env --dir DIR)")', file=sys.stderr)
        return 2
    import many_groups

    groups = [many_groups.group_id(args.prefix, i) for i in range(args.groups)]
    started = time.monotonic()
    if not args.reuse:
        many_groups.make(args.prefix, args.groups, args.topics, args.partitions)
        produce(args.prefix, args.topics, args.partitions, args.records)
        configure(args.prefix, groups)
        print(f"{args.groups} groups committed and configured in {time.monotonic() - started:.0f} s", flush=True)
    trees = [("this tree", ROOT)]
    checkout: Path | None = None
    if args.against:
        checkout = Path(tempfile.mkdtemp(prefix="cmem-against-")) / "tree"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(checkout), args.against], check=True)
        trees.insert(0, (args.against, checkout))
    results: dict[tuple[str, str], dict[str, Any]] = {}
    try:
        for mode in ("plain", "exporter"):
            for name, root in trees:
                r = results[(name, mode)] = run_child(root, mode, args.cycles, False)
                peak, held = per_row(r)
                peaks = ", ".join(f"+{(k - r['base_kb']) / 1024:.0f}" for k in r["peak_kb"])
                print(f"  {name:>12} {mode:>8}: {r['rows']} rows, cycles {', '.join(f'{s:.1f}' for s in r['cycle_s'])} s,"
                      f" baseline {r['base_kb'] / 1024:.0f} MB, peak after each cycle {peaks} MB"
                      f" ({peak:.0f} B/row), held after +{(r['held_kb'] - r['base_kb']) / 1024:.0f} MB ({held:.0f} B/row),"
                      f" snapshot child {r['child_kb'] / 1024:.0f} MB", flush=True)  # fmt: skip
        if args.trace:
            for mode in ("plain", "exporter"):
                r = run_child(ROOT, mode, 2, True)
                print(f"\ntracemalloc, this tree, {mode} (second cycle):")
                print("\n".join(r["traces"][-2 if mode == "exporter" else -1 :]))
    finally:
        if checkout is not None:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(checkout)], check=False)
        if not args.keep:
            try:
                unconfigure(groups)
            except Exception as exc:
                print(f"warning: the bench's configs were not deleted: {exc}", file=sys.stderr)
            many_groups.drop(args.prefix)
    rows = next(iter(results.values()))["rows"]
    print(f"\npeak RSS over the baseline per partition row ({rows} rows, {args.groups} groups; target {TARGET_BYTES} B):")
    print(f"  {'':>12} {'plain':>16} {'with exporter':>16}")
    for name, _ in trees:
        cells = []
        for mode in ("plain", "exporter"):
            peak, _ = per_row(results[(name, mode)])
            cells.append(f"{peak:6.0f} B {peak / TARGET_BYTES:5.2f}x")
        print(f"  {name:>12} {cells[0]:>16} {cells[1]:>16}")
    if args.against:
        for mode in ("plain", "exporter"):
            before, after = per_row(results[(args.against, mode)])[0], per_row(results[("this tree", mode)])[0]
            print(f"  {mode}: this tree / {args.against} = {after / before:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
