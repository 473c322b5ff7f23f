"""One real consumer for the verdict scenarios (:mod:`loomctl.devstack.scenarios`), in a process of its own.

    python -m loomctl.devstack.scenario_consumer --database-url URL --bootstrap-servers HOST:PORT \\
        --service SVC --topic T [--never-commit] [--cache-dir DIR]

It is built as a service builds its consumer: :mod:`loomctl.loader` reads the service's row of
``pipeline_consumer_configs`` (group id, session timeout, heartbeat, auto commit off, ...), so what loomctl
judges is what the consumer runs with. The common per-batch pattern: poll a batch (``consume``, up to
``max_poll_records``, about half a second), handle it, commit the next offsets synchronously, record the
batch in ``consumer_processing_metrics``. A batch with no messages commits nothing.

Controlled by lines on stdin, handled between batches (at most half a second later):

- ``pause``: every assigned partition paused; it keeps polling (the member stays in the group) and neither
  handles nor commits. ``resume`` undoes it, from where it had handled.
- ``slow R``: handle at most R messages a second (``fast``: no limit again).
- ``rewind N [R]``: seek every assigned partition back N messages from what it had handled, commit that lower
  offset, then read on (at most R messages a second until it is past its old high, then as fast as before).
- ``close``: ``consumer.close()`` (it leaves the group) and exit 0. SIGTERM and the end of stdin do the same;
  SIGKILL from outside is the hard death.

With ``--never-commit`` it joins, polls and handles, and never commits.

What it does goes to stdout as JSON lines, one per event, with ``at`` (Unix time): ``started``,
``assigned``, ``committed`` (offsets and the lag each partition had at that commit, from the cached high
watermarks), ``batch`` (never-commit mode: messages handled), ``paused``, ``resumed``, ``rate``, ``rewound``
(old and new offsets), ``passed`` (read past its old high again), ``closed``; ``warning`` for an error librdkafka
reports on a message (it retries), ``failed`` for one that ends the consumer (or a command it does not know).
"""

from __future__ import annotations

import argparse
import json
import queue
import signal
import sys
import threading
import time
from typing import Any

POLL_TIMEOUT_S = 0.5
"""How long a batch waits for messages: batches (and commits) come about twice a second under load."""


def emit(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, "at": time.time(), **fields}) + "\n")
    sys.stdout.flush()


def _read_commands(commands: "queue.Queue[str]") -> None:
    for line in sys.stdin:
        if line.strip():
            commands.put(line.strip())
    commands.put("close")  # stdin closed: the harness is gone


class ScenarioConsumer:
    """The consumer loop and its controls; see the module's docstring."""

    def __init__(self, consumer: Any, loader: Any, service: str, *, never_commit: bool) -> None:
        self.consumer = consumer
        self.loader = loader
        self.service = service
        self.never_commit = never_commit
        self.handled: dict[tuple[str, int], int] = {}
        """Per partition, the offset after the last message handled: what the next commit says."""
        self.committed: dict[tuple[str, int], int] = {}
        self.paused = False
        self.rate: float | None = None
        self.rewind_rate: float | None = None
        self.old_high: dict[tuple[str, int], int] | None = None
        """Set while re-reading after a rewind: the offsets handled before it."""
        self.closing = False

    # -- controls --

    def command(self, line: str) -> None:
        from confluent_kafka import TopicPartition

        words = line.split()
        verb, args = words[0].lower(), words[1:]
        if verb == "close":
            self.closing = True
        elif verb == "pause":
            assigned = self.consumer.assignment()
            self.consumer.pause(assigned)
            self.paused = True
            emit("paused", partitions=[[tp.topic, tp.partition] for tp in assigned])
        elif verb == "resume":
            assigned = self.consumer.assignment()
            for tp in assigned:  # from what was handled: messages fetched before the pause were dropped
                offset = self.handled.get((tp.topic, tp.partition))
                if offset is not None:
                    self.consumer.seek(TopicPartition(tp.topic, tp.partition, offset))
            self.consumer.resume(assigned)
            self.paused = False
            emit("resumed")
        elif verb == "slow":
            self.rate = float(args[0]) if args and float(args[0]) > 0 else None
            emit("rate", rate=self.rate)
        elif verb == "fast":
            self.rate = None
            emit("rate", rate=None)
        elif verb == "rewind":
            self.rewind(int(args[0]), float(args[1]) if len(args) > 1 else None)
        else:
            emit("failed", message=f"unknown command {line!r}")

    def rewind(self, count: int, rate: float | None) -> None:
        from confluent_kafka import TopicPartition

        before = dict(self.handled)
        target = []
        for tp in self.consumer.assignment():
            key = (tp.topic, tp.partition)
            if key not in before:
                continue
            low, _ = self.consumer.get_watermark_offsets(tp, timeout=5, cached=False)
            offset = max(before[key] - count, low)
            self.consumer.seek(TopicPartition(tp.topic, tp.partition, offset))
            self.handled[key] = offset
            target.append(TopicPartition(tp.topic, tp.partition, offset))
        if target:
            self.consumer.commit(offsets=target, asynchronous=False)
            self.committed.update({(t.topic, t.partition): t.offset for t in target})
        self.old_high = {k: v for k, v in before.items() if any((t.topic, t.partition) == k for t in target)}
        self.rewind_rate = rate
        emit("rewound", old=_pairs(before), new=_pairs({(t.topic, t.partition): t.offset for t in target}))

    # -- the loop --

    def _limit(self) -> float | None:
        if self.old_high is not None and self.rewind_rate:
            return self.rewind_rate
        return self.rate

    def batch(self) -> None:
        rate = self._limit()
        size = self.loader.load_config(self.service).max_poll_records
        if rate is not None:
            size = max(1, min(size, int(rate * POLL_TIMEOUT_S)))
        messages = self.consumer.consume(num_messages=size, timeout=POLL_TIMEOUT_S)
        if self.paused:
            return  # fetched before the pause took hold: dropped, read again on resume
        good = [m for m in messages if m.error() is None]
        for m in messages:
            if m.error() is not None:  # librdkafka retries what it can: reported, not fatal
                emit("warning", message=m.error().str())
        if not good:
            return
        started = time.monotonic()
        with self.loader.track_batch(self.service, good) as metrics:
            for i, m in enumerate(good):
                if rate is not None:  # handling takes 1/rate a message
                    delay = started + (i + 1) / rate - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                self.handled[(m.topic(), m.partition())] = m.offset() + 1
            metrics.processed = len(good)
        if self.never_commit:
            emit("batch", messages=len(good), handled=_pairs(self.handled))
        else:
            self.commit()
        if self.old_high is not None and all(self.handled.get(k, 0) >= v for k, v in self.old_high.items()):
            self.old_high = None
            emit("passed", handled=_pairs(self.handled))

    def commit(self) -> None:
        from confluent_kafka import TopicPartition

        offsets = [TopicPartition(t, p, o) for (t, p), o in self.handled.items() if self.committed.get((t, p)) != o]
        if not offsets:
            return
        self.consumer.commit(offsets=offsets, asynchronous=False)
        self.committed.update({(tp.topic, tp.partition): tp.offset for tp in offsets})
        lags = {}
        for (t, p), o in self.committed.items():
            _, high = self.consumer.get_watermark_offsets(TopicPartition(t, p), cached=True)
            lags[f"{t}[{p}]"] = max(high - o, 0) if high >= 0 else None
        emit("committed", offsets=_pairs(self.committed), lag=lags)

    def run(self, commands: "queue.Queue[str]") -> None:
        announced = False
        while not self.closing:
            while not commands.empty():
                self.command(commands.get_nowait())
            if self.closing:
                break
            self.batch()
            if not announced and self.consumer.assignment():
                announced = True
                emit("assigned", partitions=[[tp.topic, tp.partition] for tp in self.consumer.assignment()])


def _pairs(offsets: dict[tuple[str, int], int]) -> dict[str, int]:
    return {f"{t}[{p}]": o for (t, p), o in sorted(offsets.items())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--bootstrap-servers", required=True)
    parser.add_argument("--service", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--never-commit", action="store_true")
    parser.add_argument("--cache-dir", default=None, help="the loader's config cache (default: its own)")
    args = parser.parse_args(argv)

    import psycopg

    from loomctl.kafka import quiet_logger
    from loomctl.loader import ConsumerConfigLoader

    commands: queue.Queue[str] = queue.Queue()
    signal.signal(signal.SIGTERM, lambda *_: commands.put("close"))
    with psycopg.connect(args.database_url, autocommit=True) as conn:
        loader = ConsumerConfigLoader(conn, cache_dir=args.cache_dir)
        config = loader.load_config(args.service)
        if config.source != "database":
            emit("failed", message=f"no config of {args.service} in the database")
            return 1
        consumer = loader.create_consumer(
            args.service,
            [args.topic],
            bootstrap_servers=args.bootstrap_servers,
            config_overrides={"client.id": f"scenario-{args.service}", "logger": quiet_logger()},
        )
        emit(
            "started",
            group=config.consumer_group_id,
            session_timeout_ms=config["session_timeout_ms"],
            enable_auto_commit=config["enable_auto_commit"],
        )
        threading.Thread(target=_read_commands, args=(commands,), daemon=True).start()
        loop = ScenarioConsumer(consumer, loader, args.service, never_commit=args.never_commit)
        try:
            loop.run(commands)
        except Exception as exc:  # say why on the event stream, then leave the group as a crash would not
            emit("failed", message=f"{type(exc).__name__}: {exc}")
            consumer.close()
            return 1
        consumer.close()
        emit("closed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
