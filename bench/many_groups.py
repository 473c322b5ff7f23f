"""Many groups with committed offsets, and how long loomctl's snapshot of them takes (issue 22).

    python bench/many_groups.py make --groups 5000 [--prefix manyg] [--topics 4 --partitions 3]
    python bench/many_groups.py measure --groups 5000 [--prefix manyg] --chunk 50 --chunk 250 ... [--runs 3]
    python bench/many_groups.py drop [--prefix manyg]

``make`` creates a few topics and commits an offset on every partition of one or two of them for each group id
``PREFIX-gNNNNN`` through ``alter_consumer_group_offsets`` (as `kafka-consumer-groups --reset-offsets` would), no
consumer running. ``measure`` takes the collector's snapshot of those groups in a child process of its own per run
(the collector's own arrangement), once per chunk size, and says how long it took and whether the child died (a
librdkafka abort kills the child, not this script). ``--unchunked`` measures the snapshot before issue 22: every
group's description in one request and one offset request per group, 64 in flight, all with one timeout.
The cluster is $LOOM_KAFKA_BOOTSTRAP_SERVERS (a dev stack: ``eval "$(loomctl dev env)"``).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def _admin() -> Any:
    from confluent_kafka.admin import AdminClient

    from loomctl.kafka import client_properties

    return AdminClient(client_properties({"bootstrap.servers": os.environ["LOOM_KAFKA_BOOTSTRAP_SERVERS"]}, timeout=30))


def _topics(prefix: str, count: int) -> list[str]:
    return [f"{prefix}-t{i}" for i in range(count)]


def group_id(prefix: str, index: int) -> str:
    return f"{prefix}-g{index:05d}"


def group_topics(prefix: str, index: int, topics: int) -> list[str]:
    """The topics group ``index`` commits on, every partition of each: one, and a second for an odd index."""
    names = _topics(prefix, topics)
    return list(dict.fromkeys([names[index % topics]] + ([names[(index * 7 + 1) % topics]] if index % 2 else [])))


def make(prefix: str, groups: int, topics: int, partitions: int) -> None:
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
    from confluent_kafka.admin import NewTopic

    admin = _admin()
    names = _topics(prefix, topics)
    existing = set(admin.list_topics(timeout=30).topics)
    fresh = [NewTopic(t, partitions, 1) for t in names if t not in existing]
    for future in (admin.create_topics(fresh, operation_timeout=60).values() if fresh else []):
        future.result(timeout=90)
    time.sleep(2)  # the new partitions' leaders; a commit on a partition without one is refused, and retried below
    pending: list[Any] = []
    started = time.monotonic()

    def drain(limit: int) -> None:
        while len(pending) > limit:
            group, offsets, future = pending.pop(0)
            try:
                refused = [tp for tp in future.result(timeout=60).topic_partitions if tp.error is not None]
                if refused:  # a partition without its leader yet: the request succeeds, that partition says so
                    raise RuntimeError(f"{group}: {refused[0].error}")
            except Exception:  # a coordinator still loading, or a partition refused: once more
                pending.append((group, offsets, admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(group, offsets)])[group]))

    for index in range(groups):
        group = group_id(prefix, index)
        offsets = [TopicPartition(t, p, index % 17) for t in group_topics(prefix, index, topics) for p in range(partitions)]
        pending.append((group, offsets, admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(group, offsets)])[group]))
        drain(64)
    drain(0)
    print(f"{groups} groups committed on {topics} topics of {partitions} partitions in {time.monotonic() - started:.1f} s")


def _child(group_ids: list[str], chunk: int | None, timeout: float, out: Any, scaled: bool) -> None:
    import faulthandler

    faulthandler.enable()
    from loomctl import kafka
    from loomctl.kafka import groups

    if not scaled:
        groups.QUEUED_REQUEST_S = 0.0  # every request with the bare timeout, whatever is queued ahead of it

    admin = _admin()
    started = time.monotonic()
    try:
        if chunk is None:
            snap = _unchunked(admin, group_ids, timeout)
        else:
            snap = kafka.snapshot(admin, group_ids, timeout=timeout, chunk_size=chunk)
        out.send(("ok", time.monotonic() - started, len(snap.committed), sum(len(c) for c in snap.committed.values())))
    except Exception as exc:
        out.send(("error", time.monotonic() - started, f"{type(exc).__name__}: {exc}", 0))


def _unchunked(admin: Any, group_ids: list[str], timeout: float) -> Any:
    """The snapshot's requests as they were before chunking: one describe of all, one offset request per group."""
    from confluent_kafka import ConsumerGroupTopicPartitions

    from loomctl.kafka import ClusterSnapshot, bounded, result_within

    described = admin.describe_consumer_groups(list(group_ids), request_timeout=timeout)
    pairs = bounded(
        lambda g: admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(g)], request_timeout=timeout)[g],
        group_ids, 64, timeout + 5, "list_consumer_group_offsets",
    )
    snap = ClusterSnapshot()
    for group_id, future in pairs:
        answer = result_within(future, timeout + 5, "list_consumer_group_offsets")
        snap.committed[group_id] = {(tp.topic, tp.partition): tp.offset for tp in answer.topic_partitions}
    for future in described.values():
        result_within(future, timeout + 5, "describe_consumer_groups")
    return snap


def measure(prefix: str, groups: int, chunks: list[int], runs: int, timeout: float, unchunked: bool, scaled: bool) -> None:
    context = multiprocessing.get_context("spawn")
    group_ids = [group_id(prefix, i) for i in range(groups)]
    print(f"{groups} groups, timeout {timeout:g} s{'' if scaled else ' (not scaled with the requests queued)'}, {runs} runs each")
    print("chunk  | seconds per snapshot (each run)          | groups with offsets | aborts")
    for chunk in ([None] if unchunked else []) + list(chunks):
        times: list[str] = []
        aborts = 0
        answered = 0
        for _ in range(runs):
            parent, child = context.Pipe()
            process = context.Process(target=_child, args=(group_ids, chunk, timeout, child, scaled))
            process.start()
            child.close()
            try:
                kind, took, detail, _partitions = parent.recv() if parent.poll(600) else ("hung", 600.0, "", 0)
            except EOFError:
                kind, took, detail = "died", float("nan"), ""
            process.join(30)
            if kind == "died":
                aborts += 1
                times.append(f"died (exit {process.exitcode})")
            elif kind == "ok":
                answered = int(detail)
                times.append(f"{took:.2f}")
            else:
                times.append(f"{kind}: {str(detail)[:160]}")
        label = "all/64" if chunk is None else str(chunk)
        print(f"{label:6} | {', '.join(times):40} | {answered:19} | {aborts}/{runs}", flush=True)


def drop(prefix: str) -> None:
    admin = _admin()
    groups = [g.group_id for g in admin.list_consumer_groups(request_timeout=30).result(timeout=60).valid if g.group_id.startswith(f"{prefix}-g")]
    for start in range(0, len(groups), 500):
        for future in admin.delete_consumer_groups(groups[start:start + 500], request_timeout=60).values():
            try:
                future.result(timeout=90)
            except Exception:
                pass
    topics = [t for t in admin.list_topics(timeout=30).topics if t.startswith(f"{prefix}-t")]
    if topics:
        for future in admin.delete_topics(topics, operation_timeout=60).values():
            future.result(timeout=90)
    print(f"dropped {len(groups)} groups and {len(topics)} topics")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["make", "measure", "drop"])
    parser.add_argument("--prefix", default="manyg")
    parser.add_argument("--groups", type=int, default=5000)
    parser.add_argument("--topics", type=int, default=4)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--chunk", type=int, action="append", default=[])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=2.0, help="the request timeout (the collector's: its interval, 2 to 10 s)")
    parser.add_argument("--unchunked", action="store_true")
    parser.add_argument("--unscaled", action="store_true", help="each request's timeout --timeout, whatever is queued ahead")
    args = parser.parse_args()
    if args.action == "make":
        make(args.prefix, args.groups, args.topics, args.partitions)
    elif args.action == "measure":
        measure(args.prefix, args.groups, args.chunk, args.runs, args.timeout, args.unchunked, not args.unscaled)
    else:
        drop(args.prefix)


if __name__ == "__main__":
    main()
