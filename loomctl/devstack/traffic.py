"""Demo traffic for the local stack: a steady producer and consumers built by ``loomctl.loader``.

The demo pipeline gives the lag commands three groups to tell apart:

* a consumer that keeps up (processes each batch at once and commits after it): status OK;
* a slow consumer (a member per partition, each sleeping on every message, so the group falls
  further behind at every sample): WARN;
* a stopped consumer (consumes a few batches, commits, closes; its group is then Empty while
  the producer keeps writing): STOP.

Every consumer reads its settings through the loader (so a ``loomctl config set`` shows in the
next run) and records each batch with ``track_batch``, which fills
``consumer_processing_metrics``. Offsets are stored only for handled messages, so a consumer
stopped in the middle of a batch never commits past what it processed.

Imports of confluent-kafka and psycopg happen inside the functions: importing this module is cheap.

Each Kafka client has one thread: the AdminClient is used by the calling thread only (topics), and is gone before the
producer and the consumers start, so no admin request is in flight or can time out while they run (a group-coordinator
admin request timing out beside others makes librdkafka abort or crash, confluentinc/librdkafka#4605). Whether the
stopped consumer already ran is asked by a consumer of its group that never joins it, not by the AdminClient: an
admin committed-offsets request that the broker answers NOT_COORDINATOR (as a cluster's first group requests are
answered while it creates __consumer_offsets) makes librdkafka dereference the group handle an admin client does not
have, a segfault (confluentinc/librdkafka#5040). A crash of the run leaves the Python stack of every thread on stderr.

With a cluster (``TrafficPlan.cluster``, ``loomctl dev traffic --cluster``), the plan runs on that Kafka cluster of the
stack, for services that belong to it.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loomctl.devstack._process import Progress
from loomctl.errors import BackendUnavailable, BadInput, LoomError, NotFound
from loomctl.kafka import error_message, quiet_logger
from loomctl.settings import Settings, libpq_url

if TYPE_CHECKING:
    from loomctl.devstack.stack import StackInfo

PROGRESS_EVERY_S = 5.0
POLL_TIMEOUT_S = 0.25
TOPIC_READY_TIMEOUT_S = 15.0
SLOW_SHARE_INVERSE = 5  # the slow service's members keep up with a fifth of what reaches their partitions
DEVICES = 48  # distinct message keys, so keyed partitioning spreads over every partition

ALL_COMMITTED = "every consumer has committed offsets"
"""Said once, when every consumer has committed: from then on each sample has an offset to compare."""
IMPORT_HINT = "load the example services with: loomctl config import examples/pipeline-services.yaml --yes"
EXAMPLE_FILES = {"": "examples/pipeline-services.yaml", "dev2-": "examples/dev-2-services.yaml"}
"""The example files that configure the demo's services, by service prefix (dev2-: those of the stack's cluster dev-2)."""


class Behaviour(str, enum.Enum):
    keeps_up = "keeps-up"
    slow = "slow"
    stopped = "stopped"


@dataclass(frozen=True)
class DemoTopic:
    name: str
    partitions: int


@dataclass(frozen=True)
class DemoConsumer:
    """One service of the demo pipeline and how its consumer behaves."""

    service_name: str
    topics: tuple[str, ...]
    behaviour: Behaviour
    members: int | None = 1
    """Consumers in the group; None for one per partition of its first topic (scaled out as far as it goes)."""
    message_delay_s: float = 0.0
    """Time spent on each message (the slow consumer's model inference)."""
    batch_delay_s: float = 0.0
    """Time spent once per batch (a writer's database round trip)."""
    failure_every: int = 0
    """Every Nth message fails (counted in messages_failed); 0 for none."""
    stop_after_batches: int = 3
    """The stopped consumer's batches before it commits and exits."""


@dataclass(frozen=True)
class TrafficPlan:
    topics: tuple[DemoTopic, ...]
    consumers: tuple[DemoConsumer, ...]
    rate: float
    """Messages per second produced into each topic."""
    duration_s: float
    cluster: str | None = None
    """The stack's Kafka cluster to run on, to which every service of the plan must belong (``loomctl dev status``
    names them); None for the stack's first, its services unchecked (as before clusters)."""
    import_hint: str = IMPORT_HINT
    """How to configure the plan's services, said when one is missing."""


@dataclass(frozen=True)
class TopicResult:
    topic_name: str
    partitions: int
    created: bool
    messages_produced: int
    messages_undelivered: int


@dataclass
class ConsumerResult:
    service_name: str
    behaviour: str
    topics: list[str]
    consumer_group_id: str | None = None
    config_version: int | None = None
    members: int = 0
    auto_commit: bool | None = None
    batches: int = 0
    messages_consumed: int = 0
    messages_failed: int = 0
    commits: int = 0
    """Commits made after a batch (with auto-commit, librdkafka commits in the background as well)."""
    state: str = "starting"
    """starting, running, finished, stopped (the stopped consumer exited), already stopped, failed."""
    error: str | None = None


@dataclass(frozen=True)
class TrafficReport:
    duration_s: float
    rate: float
    interrupted: bool
    topics: list[TopicResult]
    consumers: list[ConsumerResult]
    cluster_name: str | None = None
    """The stack's cluster the traffic ran on when the plan named one."""

    @property
    def failures(self) -> list[str]:
        return [f"{c.service_name}: {c.error}" for c in self.consumers if c.state == "failed"]

    def failure(self) -> LoomError | None:
        """The error to end with when a demo consumer failed (the report is shown first)."""
        if not self.failures:
            return None
        return LoomError(f"{len(self.failures)} demo consumers failed: " + "; ".join(self.failures))


def demo_plan(
    *, prefix: str = "", rate: float = 200.0, duration_s: float = 40.0, service_prefix: str = "", cluster: str | None = None
) -> TrafficPlan:
    """The demo pipeline over services of examples/pipeline-services.yaml; ``prefix`` goes before each topic name.

    ``service_prefix`` goes before each service name: the same pipeline over other services, such as those of
    examples/dev-2-services.yaml (``dev2-``), which belong to the stack's cluster dev-2. A group id names one
    group on one cluster in loomctl, so another cluster's demo needs services (and groups) of its own; the
    prefix keeps the plan's shape and behaviours, and the services say which cluster they belong to.
    ``cluster`` is the stack's cluster to run on (None: the first), to which those services must belong.

    Audio is read by speech-processor, an AI model service (5 clips per poll) scaled out to one
    member per partition, each of which handles only a fifth of its partition's share of
    ``rate`` (75 ms a clip at 200 messages/s on 3 partitions): every partition moves, and its lag
    grows at every sample. Accelerometer data is written by timescale-writer (database writer:
    large batches, commit after each write), which keeps up, and was read by
    motion-event-filter, which stopped after a few batches.
    """
    audio, accelerometer = f"{prefix}device.audio.raw", f"{prefix}device.sensor.accelerometer.raw"
    audio_partitions = 3
    clip_s = SLOW_SHARE_INVERSE * audio_partitions / rate if rate > 0 else 0.0
    writer, speech, motion = (
        f"{service_prefix}{name}" for name in ("timescale-writer", "speech-processor", "motion-event-filter")
    )
    example = EXAMPLE_FILES.get(service_prefix)
    return TrafficPlan(
        topics=(DemoTopic(audio, audio_partitions), DemoTopic(accelerometer, 4)),
        consumers=(
            DemoConsumer(writer, (accelerometer,), Behaviour.keeps_up, batch_delay_s=0.005),
            DemoConsumer(speech, (audio,), Behaviour.slow, members=None, message_delay_s=clip_s, failure_every=40),
            DemoConsumer(motion, (accelerometer,), Behaviour.stopped, batch_delay_s=0.002, stop_after_batches=3),
        ),
        rate=rate,
        duration_s=duration_s,
        cluster=cluster,
        import_hint=(
            f"load the example services with: loomctl config import {example} --yes"
            if example
            else f"configure them with: loomctl config set SERVICE --create --cluster {cluster or 'default'} ..."
        ),
    )


def check_plan(plan: TrafficPlan) -> None:
    if plan.rate <= 0:
        raise BadInput(f"--rate must be above 0 messages per second, got {plan.rate:g}")
    if plan.duration_s <= 0:
        raise BadInput("--duration must be longer than zero")
    names = [t.name for t in plan.topics]
    for topic in plan.topics:
        if topic.partitions < 1:
            raise BadInput(f"topic {topic.name}: at least one partition")
    for consumer in plan.consumers:
        unknown = [t for t in consumer.topics if t not in names]
        if unknown:
            raise BadInput(f"{consumer.service_name} reads {', '.join(unknown)}, which the plan does not produce")


# ---------------------------------------------------------------------------------------------


def _check_database(settings: Settings, plan: TrafficPlan) -> None:
    """Every service of the plan is configured, each with its own group, in a migrated database."""
    from loomctl import configs, db

    with db.connect(settings) as conn:
        table = conn.execute("SELECT to_regclass('public.consumer_processing_metrics')").fetchone()
        if table is None or table[0] is None:
            raise db.not_migrated(settings.require_database_url())
        found = configs.read_configs(conn, services=[c.service_name for c in plan.consumers])
    missing = sorted({c.service_name for c in plan.consumers} - {c.service_name for c in found})
    if missing:
        raise NotFound(f"no consumer config for {', '.join(missing)}: {plan.import_hint}")
    groups = [c.consumer_group_id for c in found]
    if len(set(groups)) != len(groups):
        raise BadInput("two services of the plan share a consumer group; each needs its own")
    # A service's lag is read on its own cluster: traffic for it elsewhere would be lag nobody measures.
    elsewhere = [
        f"{c.service_name} ({c.cluster_name})" for c in found if plan.cluster is not None and c.cluster_name != plan.cluster
    ]
    if elsewhere:
        raise BadInput(
            f"services of other clusters cannot run on cluster {plan.cluster}: {', '.join(elsewhere)}; "
            "run the services of that cluster (--service-prefix), or the traffic on theirs (--cluster)"
        )


def ensure_topics(admin: Any, topics: Sequence[DemoTopic], *, timeout: float = 10.0) -> dict[str, tuple[int, bool]]:
    """Create the topics that are missing; topic -> (partitions on the cluster, created now).

    An existing topic keeps its partition count (it may have been grown since it was created).
    """
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import NewTopic

    from loomctl import kafka

    existing = kafka.topic_partition_counts(admin, [t.name for t in topics], timeout=timeout)
    wanted = [t for t in topics if t.name not in existing]
    created: set[str] = set()
    if wanted:
        futures = admin.create_topics(
            [NewTopic(t.name, num_partitions=t.partitions, replication_factor=-1) for t in wanted],
            request_timeout=timeout,
        )
        for name, future in futures.items():
            try:
                future.result(timeout=timeout + 5)
                created.add(name)
            except KafkaException as exc:
                error = exc.args[0] if exc.args else None
                if getattr(error, "code", lambda: None)() == KafkaError.TOPIC_ALREADY_EXISTS:
                    continue  # somebody created it in between
                raise LoomError(f"cannot create topic {name}: {error_message(exc)}") from None
    # Wait until the metadata shows every topic with its leaders, so the first produce and
    # subscribe calls do not see an unknown topic.
    deadline = time.monotonic() + TOPIC_READY_TIMEOUT_S
    while True:
        counts = kafka.topic_partition_counts(admin, [t.name for t in topics], timeout=timeout)
        if len(counts) == len(topics):
            return {t.name: (counts[t.name], t.name in created) for t in topics}
        if time.monotonic() > deadline:
            missing = sorted(t.name for t in topics if t.name not in counts)
            raise BackendUnavailable(f"Kafka did not show the new topics {', '.join(missing)} within {TOPIC_READY_TIMEOUT_S:g} s")
        time.sleep(0.2)


@dataclass
class _Run:
    """What the threads of one run share."""

    settings: Settings
    plan: TrafficPlan
    loader: Any
    halt: threading.Event
    say: Progress
    partitions: dict[str, int]
    already_stopped: set[str] = field(default_factory=set)
    """The stopped services whose group committed in an earlier run (found before any client thread started)."""
    produced: dict[str, int] = field(default_factory=dict)
    undelivered: dict[str, int] = field(default_factory=dict)
    producer_error: str | None = None
    committed_members: dict[str, set[int]] = field(default_factory=dict)
    """Per service, the members that have committed offsets at least once (auto or explicit)."""

    def committed(self, service_name: str, index: int) -> None:
        with self.lock:
            self.committed_members.setdefault(service_name, set()).add(index)

    lock: threading.Lock = field(default_factory=threading.Lock)


def _produce(run: _Run) -> None:
    from confluent_kafka import Producer

    props: dict[str, Any] = dict(run.settings.kafka_properties())
    props.update({"client.id": "loomctl-traffic-producer", "linger.ms": 20, "logger": quiet_logger()})
    producer = Producer(props)
    topics = [t.name for t in run.plan.topics]

    def delivered(err: Any, msg: Any) -> None:
        if err is not None:
            with run.lock:
                run.undelivered[msg.topic()] = run.undelivered.get(msg.topic(), 0) + 1

    started = time.monotonic()
    sent = 0
    try:
        while not run.halt.is_set():
            due = int((time.monotonic() - started) * run.plan.rate)
            while sent < due and not run.halt.is_set():
                key = f"device-{sent % DEVICES:03d}"
                value = json.dumps({"device_id": key, "seq": sent, "produced_at": time.time()}).encode()
                for topic in topics:
                    while True:
                        try:
                            producer.produce(topic, key=key.encode(), value=value, on_delivery=delivered)
                            break
                        except BufferError:  # the local queue is full: let deliveries drain it
                            producer.poll(0.05)
                sent += 1
                with run.lock:
                    for topic in topics:
                        run.produced[topic] = sent
            producer.poll(0)
            run.halt.wait(0.01)
    finally:
        left = producer.flush(10)
        if left:
            run.say(f"producer: {left} messages were not delivered before the end")


def _producer_thread(run: _Run) -> None:
    try:
        _produce(run)
    except Exception as exc:  # without a producer the demo shows nothing: end the run and say why
        run.producer_error = error_message(exc)
        run.halt.set()


def _commit(consumer: Any) -> bool:
    """Commit the stored offsets synchronously; False when nothing was stored yet."""
    from confluent_kafka import KafkaError, KafkaException

    try:
        consumer.commit(asynchronous=False)
        return True
    except KafkaException as exc:
        error = exc.args[0] if exc.args else None
        if getattr(error, "code", lambda: None)() == KafkaError._NO_OFFSET:
            return False
        raise


def _has_committed(settings: Settings, group_id: str, partitions: Sequence[tuple[str, int]], stop: threading.Event) -> bool:
    """Whether ``group_id`` has a committed offset on any of ``partitions``, asked by a consumer of the group that
    never subscribes (so never joins it): its group handle finds the coordinator again where an AdminClient's
    request would crash (confluentinc/librdkafka#5040, see the module's docstring)."""
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    props: dict[str, Any] = dict(settings.kafka_properties())
    props.update(
        {"group.id": group_id, "enable.auto.commit": False, "client.id": "loomctl-traffic-check", "logger": quiet_logger()}
    )
    consumer = Consumer(props)
    # A broker that has just started answers "coordinator load in progress" for a few seconds.
    deadline = time.monotonic() + TOPIC_READY_TIMEOUT_S
    try:
        while True:
            try:
                found = consumer.committed([TopicPartition(t, p) for t, p in partitions], timeout=TOPIC_READY_TIMEOUT_S)
                break
            except KafkaException as exc:
                if time.monotonic() > deadline or stop.wait(0.5):
                    raise BackendUnavailable(f"committed offsets of group {group_id}: {error_message(exc)}") from None
    finally:
        consumer.close()  # it never joined: nothing to commit or leave
    return any(tp.error is None and tp.offset >= 0 for tp in found)


def _stopped_before(
    settings: Settings, loader: Any, plan: TrafficPlan, partitions: dict[str, int], stop: threading.Event
) -> set[str]:
    """The stopped services whose group committed in an earlier run, asked on the calling thread before any other
    client starts."""
    found = set()
    for spec in plan.consumers:
        if spec.behaviour is Behaviour.stopped:
            group_id = loader.load_config(spec.service_name).consumer_group_id
            wanted = [(topic, p) for topic in spec.topics for p in range(partitions[topic])]
            if _has_committed(settings, group_id, wanted, stop):
                found.add(spec.service_name)
    return found


def _run_service(run: _Run, spec: DemoConsumer, result: ConsumerResult) -> None:
    config = run.loader.load_config(spec.service_name)
    result.consumer_group_id, result.config_version = config.consumer_group_id, config.version
    result.auto_commit = bool(config["enable_auto_commit"])
    if spec.behaviour is Behaviour.stopped and spec.service_name in run.already_stopped:
        # A stopped consumer stays stopped: on a re-run its group keeps the offsets of the first
        # run, so the lag keeps growing behind a commit that never moves (status STOP), instead
        # of a fresh commit making it look alive within the status window.
        result.state = "already stopped"
        run.say(
            f"{spec.service_name}: stopped consumer already exited in an earlier run (group {config.consumer_group_id} keeps its offsets)"
        )
        return
    planned = next((t.partitions for t in run.plan.topics if t.name == spec.topics[0]), 0)
    actual = run.partitions[spec.topics[0]]
    if spec.behaviour is Behaviour.slow and planned and actual != planned:
        # the topic was grown (by `partitions apply` in an earlier demo): each member still
        # keeps up with only a fifth of its partition's share, so the service stays the slow one
        spec = replace(spec, message_delay_s=spec.message_delay_s * actual / planned)
    result.members = spec.members or actual
    result.state = "running"
    members = [
        threading.Thread(
            target=_member_thread, args=(run, spec, result, index), name=f"traffic-{spec.service_name}-{index}", daemon=True
        )
        for index in range(result.members)
    ]
    for member in members:
        member.start()
    for member in members:
        member.join()
    if result.state == "running":
        result.state = "finished"


def _member_thread(run: _Run, spec: DemoConsumer, result: ConsumerResult, index: int) -> None:
    try:
        _consume(run, spec, result, index)
    except Exception as exc:  # one failed consumer must not end the others: report it
        text = error_message(exc)
        with run.lock:
            result.state, result.error = "failed", text
        run.say(f"{spec.service_name}: consumer {index} failed: {text}")


def _consume(run: _Run, spec: DemoConsumer, result: ConsumerResult, index: int) -> None:
    """One member of the service's group: poll, handle, store offsets, record the batch."""
    loader = run.loader

    def on_commit(error: Any, partitions: Any) -> None:  # auto-commits too, served by consume()
        if error is None and any(tp.error is None and tp.offset >= 0 for tp in partitions):
            run.committed(spec.service_name, index)

    consumer = loader.create_consumer(
        spec.service_name,
        list(spec.topics),
        bootstrap_servers=run.settings.bootstrap_servers,
        config_overrides={
            "enable.auto.offset.store": False,  # store an offset only once its message is handled
            "client.id": f"loomctl-traffic-{spec.service_name}-{index}",
            "logger": quiet_logger(),
            "on_commit": on_commit,
        },
    )
    commit_each_batch = spec.behaviour is Behaviour.stopped or not result.auto_commit
    seen = batches = 0
    try:
        for messages in loader.poll_with_limit(consumer, spec.service_name, timeout=POLL_TIMEOUT_S, yield_empty=True):
            if run.halt.is_set():
                break
            if not messages:
                continue
            handled = failed = 0
            with loader.track_batch(spec.service_name, messages) as batch:
                for msg in messages:
                    if spec.message_delay_s and run.halt.wait(spec.message_delay_s):
                        break
                    handled += 1
                    if spec.failure_every and (seen + handled) % spec.failure_every == 0:
                        failed += 1  # a failed message is handled too (as if sent to a dead-letter topic)
                    consumer.store_offsets(message=msg)
                if spec.batch_delay_s:
                    time.sleep(spec.batch_delay_s)
                batch.failed, batch.processed = failed, handled - failed
            seen += handled
            batches += 1
            committed = commit_each_batch and _commit(consumer)
            if committed:
                run.committed(spec.service_name, index)
            with run.lock:
                result.batches += 1
                result.messages_consumed += handled
                result.messages_failed += failed
                result.commits += int(committed)
            if spec.behaviour is Behaviour.stopped and batches >= spec.stop_after_batches:
                break
    finally:
        consumer.close()  # commits what auto-commit has not yet, and leaves the group
    if spec.behaviour is Behaviour.stopped and not run.halt.is_set():
        with run.lock:
            result.state = "stopped"
        run.say(
            f"{spec.service_name}: stopped consumer committed {result.messages_consumed} messages in "
            f"{result.batches} batches and exited; group {result.consumer_group_id} is now Empty"
        )


def _service_thread(run: _Run, spec: DemoConsumer, result: ConsumerResult) -> None:
    try:
        _run_service(run, spec, result)
    except Exception as exc:  # one failed service must not end the others: report it
        text = error_message(exc)
        with run.lock:
            result.state, result.error = "failed", text
        run.say(f"{spec.service_name}: failed: {text}")


def _all_committed(run: _Run, results: Sequence[ConsumerResult]) -> bool:
    """Every member of every running consumer has committed once (the stopped one has also exited)."""
    with run.lock:
        for r in results:
            if r.state in ("already stopped", "stopped", "failed"):
                continue
            if r.state == "starting" or len(run.committed_members.get(r.service_name, ())) < r.members:
                return False
            if r.behaviour == Behaviour.stopped.value:  # committed but not yet exited
                return False
    return True


def _status_line(run: _Run, results: Sequence[ConsumerResult], elapsed: float) -> str:
    with run.lock:
        produced = max(run.produced.values(), default=0)
    parts = []
    for r in results:
        if r.state in ("stopped", "already stopped", "failed"):
            parts.append(f"{r.service_name} {r.state}")
        else:
            parts.append(f"{r.service_name} {r.messages_consumed:,} consumed")
    return f"{elapsed:4.0f}s: {produced:,} produced per topic; " + ", ".join(parts)


def run_on_stack(
    state_dir: Path | None, plan: TrafficPlan, *, stop: threading.Event, progress: Progress | None = None
) -> TrafficReport:
    """:func:`run` on the local stack of ``state_dir`` (never on the cluster the environment names), on its
    cluster ``plan.cluster`` (the first when None); a bad plan is refused before the stack is looked for."""
    from loomctl.devstack.stack import running

    check_plan(plan)
    stack = running(state_dir)
    return run(
        Settings(database_url=stack.database_url, bootstrap_servers=stack_cluster(stack, plan.cluster)),
        plan,
        stop=stop,
        progress=progress,
    )


def stack_cluster(stack: "StackInfo", name: str | None) -> str | None:
    """The bootstrap servers of the stack's Kafka cluster ``name`` (None: the first, which `dev env` names)."""
    if name is None:
        return stack.bootstrap_servers
    found = next((c for c in stack.clusters if c.name == name), None)
    if found is None:
        have = ", ".join(c.name for c in stack.clusters) or "none"
        raise NotFound(
            f"the local stack in {stack.state_dir} has no Kafka cluster {name} (it has {have}): "
            f"start the others with `loomctl dev up --clusters N`"
        )
    if not found.healthy or not found.bootstrap_servers:
        raise BackendUnavailable(f"Kafka cluster {name} of the local stack is not answering: restart it with `loomctl dev up`")
    return found.bootstrap_servers


def _said(say: Any) -> Any:
    """Each config change a consumer of the demo followed (the guide's UPDATE while it runs), as a progress line."""

    def said(change: Any) -> None:
        outcome = "applied" if change.applied else "refused by the new client"
        say(f"{change.service_name}: config version {change.old_version} -> {change.new_version} {outcome}: {change.describe()}")

    return said


def run(
    settings: Settings,
    plan: TrafficPlan,
    *,
    stop: threading.Event | None = None,
    progress: Progress | None = None,
    cache_dir: Path | str | None = None,
    progress_every_s: float = PROGRESS_EVERY_S,
) -> TrafficReport:
    """Produce for ``plan.duration_s`` (or until ``stop`` is set) while the plan's consumers run.

    Creates the topics that are missing, checks that every service is configured, then stops the
    producer and every consumer cleanly (consumers commit and leave their groups) before returning.
    """
    from psycopg_pool import ConnectionPool

    from loomctl import kafka
    from loomctl.loader import ConsumerConfigLoader

    check_plan(plan)
    kafka.enable_faulthandler()
    say = progress or (lambda _message: None)
    stop = stop or threading.Event()
    _check_database(settings, plan)
    admin = kafka.admin_client(settings)
    topics = ensure_topics(admin, plan.topics)
    for name, (count, created) in topics.items():
        say(f"topic {name}: {count} partitions{' (created)' if created else ''}")

    partitions = {name: count for name, (count, _) in topics.items()}
    members = sum(c.members or partitions[c.topics[0]] for c in plan.consumers)
    pool = ConnectionPool(  # a connection per member, so recording a batch never waits for another
        libpq_url(settings.require_database_url()),
        min_size=1,
        max_size=members + 1,
        kwargs={"autocommit": True, "application_name": "loomctl-traffic"},
        open=True,
    )
    halt = threading.Event()
    loader: ConsumerConfigLoader | None = None
    try:
        loader = ConsumerConfigLoader(pool, cache_dir=cache_dir, poll_timeout=POLL_TIMEOUT_S, on_config_change=_said(say))
        loader.kafka_config = settings.kafka_config  # the settings decide, not LOOM_KAFKA_CONFIG of the shell
        del admin  # destroyed here, on its own thread, with nothing in flight: no client outlives its use
        already_stopped = _stopped_before(settings, loader, plan, partitions, stop)
        shared = _Run(settings, plan, loader, halt, say, partitions, already_stopped=already_stopped)
        results = [ConsumerResult(c.service_name, c.behaviour.value, list(c.topics)) for c in plan.consumers]
        threads = [threading.Thread(target=_producer_thread, args=(shared,), name="traffic-producer", daemon=True)]
        threads += [
            threading.Thread(
                target=_service_thread, args=(shared, spec, result), name=f"traffic-{spec.service_name}", daemon=True
            )
            for spec, result in zip(plan.consumers, results, strict=True)
        ]
        say(
            f"producing {plan.rate:g} messages/s into each of {len(plan.topics)} topics"
            + (f" of cluster {plan.cluster}" if plan.cluster is not None else "")
            + f" for {plan.duration_s:g} s; "
            + ", ".join(f"{c.service_name} ({c.behaviour.value})" for c in plan.consumers)
        )
        started = time.monotonic()
        for thread in threads:
            thread.start()
        try:
            next_report = started + progress_every_s
            all_committed = False
            while not stop.is_set() and not halt.is_set():
                now = time.monotonic()
                if now - started >= plan.duration_s:
                    break
                if not all_committed and _all_committed(shared, results):
                    all_committed = True
                    say(ALL_COMMITTED)
                if now >= next_report:
                    say(_status_line(shared, results, now - started))
                    next_report += progress_every_s
                stop.wait(min(0.2, max(0.0, plan.duration_s - (now - started))))
        finally:
            halt.set()  # also on KeyboardInterrupt: every thread ends, consumers close cleanly
            for thread in threads:
                thread.join(timeout=30)
        elapsed = time.monotonic() - started
        say(_status_line(shared, results, elapsed).replace(": ", ": done, ", 1))
    finally:
        if loader is not None:
            loader.close()
        pool.close()
    if shared.producer_error:
        raise LoomError(f"the producer failed: {shared.producer_error}")
    return TrafficReport(
        duration_s=round(elapsed, 1),
        rate=plan.rate,
        interrupted=stop.is_set(),
        topics=[
            TopicResult(name, partitions, created, shared.produced.get(name, 0), shared.undelivered.get(name, 0))
            for name, (partitions, created) in topics.items()
        ],
        consumers=[dataclasses.replace(r) for r in results],
        cluster_name=plan.cluster,
    )
