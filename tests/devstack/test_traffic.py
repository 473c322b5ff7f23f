"""`loomctl dev traffic`: the demo producer and the loader-built consumers, on the session's broker."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from support import runner as make_runner
from support import suffix as random_suffix

from loomctl import kafka
from loomctl.cli import app
from loomctl.consumer_config import PROFILES
from loomctl.devstack import traffic
from loomctl.devstack.traffic import Behaviour, DemoConsumer, DemoTopic, TrafficPlan
from loomctl.errors import BackendUnavailable, BadInput, NotFound
from loomctl.settings import ENV_BOOTSTRAP_SERVERS, ENV_DATABASE_URL, ENV_KAFKA_CONFIG, Settings

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def configure(database_url: str, service_name: str, profile: str, *, cluster: str | None = None, **settings: Any) -> None:
    from loomctl import configs
    from loomctl.db import session_scope

    values = {**PROFILES[profile].full_settings(), **settings}
    with session_scope(Settings(database_url=database_url)) as session:
        configs.set_config(session, service_name, values, actor="test", profile=profile, create=True, cluster=cluster)


@pytest.fixture
def names() -> dict[str, str]:
    suffix = random_suffix(8)
    return {
        "writer": f"writer-{suffix}",
        "speech": f"speech-{suffix}",
        "motion": f"motion-{suffix}",
        "audio": f"traffic-{suffix}.audio",
        "accel": f"traffic-{suffix}.accel",
    }


@pytest.fixture
def plan(names: dict[str, str], database_url: str) -> TrafficPlan:
    configure(database_url, names["writer"], "database-writer")
    configure(database_url, names["speech"], "ai-model", max_poll_records=5)
    configure(database_url, names["motion"], "fast")
    return TrafficPlan(
        topics=(DemoTopic(names["audio"], 3), DemoTopic(names["accel"], 2)),
        consumers=(
            DemoConsumer(names["writer"], (names["accel"],), Behaviour.keeps_up, batch_delay_s=0.002),
            DemoConsumer(names["speech"], (names["audio"],), Behaviour.slow, members=None, message_delay_s=0.1, failure_every=5),
            DemoConsumer(names["motion"], (names["accel"],), Behaviour.stopped, stop_after_batches=2),
        ),
        rate=60,
        duration_s=6,
    )


@pytest.fixture
def settings(services: Any, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    # everything comes from the settings passed in, never from the shell's LOOM_* variables
    for name in (ENV_BOOTSTRAP_SERVERS, ENV_DATABASE_URL, ENV_KAFKA_CONFIG):
        monkeypatch.delenv(name, raising=False)
    return Settings(database_url=database_url, bootstrap_servers=services.bootstrap_servers)


@pytest.fixture
def admin(settings: Settings) -> Any:
    return kafka.admin_client(settings)


def group_lag(admin: Any, group_id: str, topic: str) -> tuple[dict[int, int | None], int]:
    """Committed offset per partition of ``topic`` and the group's total lag there."""
    committed = kafka.committed_offsets(admin, [group_id])[group_id]
    count = kafka.topic_partition_counts(admin, [topic])[topic]
    ends = kafka.log_offsets(admin, [(topic, p) for p in range(count)])
    offsets = {p: committed.get((topic, p)) for p in range(count)}
    lag = sum(ends[(topic, p)].end - (offsets[p] or 0) for p in range(count))
    return offsets, lag


def test_traffic_tells_a_consumer_that_keeps_up_from_a_slow_and_a_stopped_one(
    plan: TrafficPlan, names: dict[str, str], settings: Settings, admin: Any, database_url: str, tmp_path: Any
) -> None:
    messages: list[str] = []
    report = traffic.run(settings, plan, progress=messages.append, cache_dir=tmp_path)

    assert not report.interrupted
    assert kafka.topic_partition_counts(admin, [names["audio"], names["accel"]]) == {names["audio"]: 3, names["accel"]: 2}
    assert [(t.topic_name, t.partitions, t.created) for t in report.topics] == [
        (names["audio"], 3, True), (names["accel"], 2, True)
    ]
    produced = {t.topic_name: t.messages_produced for t in report.topics}
    assert all(count > 0 for count in produced.values())
    assert all(t.messages_undelivered == 0 for t in report.topics)
    results = {r.service_name: r for r in report.consumers}
    assert {r.state for r in report.consumers} == {"finished", "stopped"}, report.consumers
    assert report.failures == []

    # keeps up: committed on every partition, close to the end of the log
    writer = results[names["writer"]]
    assert writer.consumer_group_id == names["writer"] and writer.members == 1
    assert writer.commits == writer.batches > 0
    offsets, writer_lag = group_lag(admin, names["writer"], names["accel"])
    assert all(offset is not None for offset in offsets.values()), offsets
    assert writer_lag <= produced[names["accel"]] // 4, (writer_lag, produced)

    # slow: a member per partition, falling behind, a few failures
    speech = results[names["speech"]]
    assert speech.members == 3 and speech.state == "finished"
    assert speech.messages_failed > 0
    _, speech_lag = group_lag(admin, names["speech"], names["audio"])
    assert speech_lag > writer_lag

    # stopped: committed, left its group, and the producer kept writing behind it
    motion = results[names["motion"]]
    assert motion.state == "stopped" and motion.batches == 2 and motion.commits == 2
    assert kafka.describe_groups(admin, [names["motion"]])[names["motion"]].group_state == "Empty"
    offsets, motion_lag = group_lag(admin, names["motion"], names["accel"])
    assert any(offset is not None for offset in offsets.values())
    assert motion_lag > 0
    assert any("stopped consumer committed" in m for m in messages)

    # every batch went through the loader into consumer_processing_metrics, with its group
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT service_name, consumer_group_id, count(*), sum(messages_processed + messages_failed),"
            " sum(messages_failed) FROM consumer_processing_metrics WHERE service_name = ANY(%s)"
            " GROUP BY service_name, consumer_group_id",
            ([names["writer"], names["speech"], names["motion"]],),
        ).fetchall()
    recorded = {name: (group, batches, handled, failed) for name, group, batches, handled, failed in rows}
    for result in report.consumers:
        assert recorded[result.service_name] == (
            result.service_name, result.batches, result.messages_consumed, result.messages_failed
        )

    # a second run: the topics exist, and the stopped consumer stays stopped with its offsets
    offsets_before, _ = group_lag(admin, names["motion"], names["accel"])
    again = traffic.run(settings, TrafficPlan(plan.topics, plan.consumers, rate=20, duration_s=1), cache_dir=tmp_path)
    assert [t.created for t in again.topics] == [False, False]
    assert {r.service_name: r.state for r in again.consumers}[names["motion"]] == "already stopped"
    assert group_lag(admin, names["motion"], names["accel"])[0] == offsets_before


def test_stop_event_ends_the_run_cleanly(plan: TrafficPlan, settings: Settings, admin: Any, tmp_path: Any) -> None:
    stop = threading.Event()
    long_plan = TrafficPlan(plan.topics, plan.consumers, rate=plan.rate, duration_s=600)
    messages: list[str] = []

    def progress(message: str) -> None:
        messages.append(message)
        if message.startswith("producing"):
            threading.Timer(2.0, stop.set).start()

    report = traffic.run(settings, long_plan, stop=stop, progress=progress, cache_dir=tmp_path)
    assert report.interrupted
    assert all(r.state in ("finished", "stopped") for r in report.consumers), report.consumers
    group = plan.consumers[0].service_name
    assert kafka.describe_groups(admin, [group])[group].group_state in ("Empty", "Dead")


def test_unconfigured_services_are_refused_before_any_topic_is_made(
    names: dict[str, str], settings: Settings, admin: Any, database_url: str
) -> None:
    plan = traffic.demo_plan(prefix=f"{names['audio']}.")
    unconfigured = TrafficPlan(
        plan.topics, tuple(DemoConsumer(c.service_name + "-x" + names["writer"], c.topics, c.behaviour) for c in plan.consumers),
        rate=10, duration_s=1,
    )
    with pytest.raises(NotFound, match="config import examples/pipeline-services.yaml"):
        traffic.run(settings, unconfigured)
    assert kafka.topic_partition_counts(admin, [t.name for t in plan.topics]) == {}


def test_demo_plan_prefixes_topics_and_makes_the_slow_service_slower_than_its_share() -> None:
    plan = traffic.demo_plan(prefix="t1.", rate=300, duration_s=5)
    assert [t.name for t in plan.topics] == ["t1.device.audio.raw", "t1.device.sensor.accelerometer.raw"]
    assert {c.service_name: c.behaviour for c in plan.consumers} == {
        "timescale-writer": Behaviour.keeps_up, "speech-processor": Behaviour.slow, "motion-event-filter": Behaviour.stopped,
    }
    slow = next(c for c in plan.consumers if c.behaviour is Behaviour.slow)
    audio = next(t for t in plan.topics if t.name in slow.topics)
    per_member_rate = 1 / slow.message_delay_s
    assert per_member_rate * audio.partitions < plan.rate / 2
    traffic.check_plan(plan)


@pytest.mark.parametrize(
    ("plan", "text"),
    [
        (TrafficPlan((DemoTopic("a", 1),), (), rate=0, duration_s=1), "--rate"),
        (TrafficPlan((DemoTopic("a", 0),), (), rate=1, duration_s=1), "partition"),
        (TrafficPlan((DemoTopic("a", 1),), (DemoConsumer("s", ("b",), Behaviour.slow),), rate=1, duration_s=1), "does not produce"),
    ],
)
def test_bad_plans_are_refused(plan: TrafficPlan, text: str) -> None:
    with pytest.raises(BadInput, match=text):
        traffic.check_plan(plan)


def test_cli_refuses_bad_options_and_a_missing_stack(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = make_runner()
    result = runner.invoke(app, ["dev", "traffic", "--duration", "soon", "--dir", str(tmp_path)], catch_exceptions=False)
    assert result.exit_code == 2 and "--duration" in result.stderr
    result = runner.invoke(app, ["dev", "traffic", "--rate", "-1", "--dir", str(tmp_path)], catch_exceptions=False)
    assert result.exit_code == 2 and "--rate" in result.stderr
    result = runner.invoke(app, ["dev", "traffic", "--duration", "1s", "--dir", str(tmp_path / "none")], catch_exceptions=False)
    assert result.exit_code == 3


# --- another cluster: `dev traffic --cluster NAME --service-prefix P` ------------------------------------------


@pytest.fixture
def other_cluster(broker: Any, database_url: str) -> Iterator[str]:
    """The module's own broker, registered as a cluster of the database (as `dev up --clusters 2` registers dev-2),
    and taken out again after the test (the database is the session's; the broker stops with the module)."""
    from loomctl import clusters
    from loomctl.db import session_scope
    from support import forget_cluster

    name = f"other-{random_suffix(8)}"
    with session_scope(Settings(database_url=database_url)) as session:
        clusters.add_cluster(session, name, bootstrap_servers=broker.bootstrap_servers, actor="test")
    yield name
    forget_cluster(database_url, name)


def demo_services(database_url: str, service_prefix: str, cluster: str | None) -> None:
    """The demo's three services under ``service_prefix``, as examples/dev-2-services.yaml has them (on ``cluster``)."""
    configure(database_url, f"{service_prefix}timescale-writer", "database-writer", cluster=cluster)
    configure(database_url, f"{service_prefix}speech-processor", "ai-model", cluster=cluster, max_poll_records=5)
    configure(database_url, f"{service_prefix}motion-event-filter", "fast", cluster=cluster)


def test_traffic_runs_on_another_cluster_for_the_services_of_that_cluster(
    names: dict[str, str], settings: Settings, admin: Any, broker: Any, other_cluster: str, database_url: str, tmp_path: Any
) -> None:
    service_prefix = f"o{random_suffix(6)}-"
    demo_services(database_url, service_prefix, other_cluster)
    # long enough for any broker; the run ends once every consumer has committed and the stopped one has exited
    plan = traffic.demo_plan(
        prefix=f"{names['audio']}.", service_prefix=service_prefix, cluster=other_cluster, rate=60, duration_s=120
    )
    writer, speech, motion = (c.service_name for c in plan.consumers)
    assert (writer, speech, motion) == tuple(
        f"{service_prefix}{n}" for n in ("timescale-writer", "speech-processor", "motion-event-filter")
    )
    topics = [t.name for t in plan.topics]
    other = dataclasses.replace(settings, bootstrap_servers=broker.bootstrap_servers)
    messages: list[str] = []
    stop = threading.Event()

    def progress(message: str) -> None:
        messages.append(message)
        if message == traffic.ALL_COMMITTED:
            stop.set()

    report = traffic.run(other, plan, stop=stop, progress=progress, cache_dir=tmp_path)

    assert traffic.ALL_COMMITTED in messages, messages
    assert report.cluster_name == other_cluster and report.failures == []
    assert {r.service_name: r.state for r in report.consumers} == {writer: "finished", speech: "finished", motion: "stopped"}
    assert any(m.startswith("producing") and f"of cluster {other_cluster}" in m for m in messages), messages
    # topics and groups on the other cluster only: the session's broker never saw them
    other_admin = kafka.admin_client(other)
    assert kafka.topic_partition_counts(other_admin, topics) == dict(zip(topics, (3, 4), strict=True))
    assert kafka.topic_partition_counts(admin, topics) == {}
    for group in (writer, speech, motion):
        assert any(o is not None for o in kafka.committed_offsets(other_admin, [group])[group].values()), group
    # (the session's broker is only listed: an AdminClient asking it for the offsets of a group it never saw may be
    # answered NOT_COORDINATOR, which crashes librdkafka, confluentinc/librdkafka#5040)
    assert not {writer, speech, motion} & set(kafka.list_group_listings(admin))
    assert kafka.describe_groups(other_admin, [motion])[motion].group_state == "Empty"
    # what the loader recorded names each service, whichever cluster it reads
    with psycopg.connect(database_url) as conn:
        recorded = dict(
            conn.execute(
                "SELECT service_name, sum(messages_processed + messages_failed) FROM consumer_processing_metrics"
                " WHERE service_name = ANY(%s) GROUP BY service_name",
                ([writer, speech, motion],),
            ).fetchall()
        )
    assert recorded == {r.service_name: r.messages_consumed for r in report.consumers}
    # the table's title says the cluster; a run without one reads as it always did
    from loomctl.devstack import views

    title = views.TRAFFIC.tables[0].title
    assert callable(title)
    assert title(report) == f"demo consumers on cluster {other_cluster} after {report.duration_s:g} s"
    assert title(dataclasses.replace(report, cluster_name=None)) == f"demo consumers after {report.duration_s:g} s"


def test_services_of_another_cluster_are_refused_before_any_topic_is_made(
    names: dict[str, str], settings: Settings, admin: Any, broker: Any, other_cluster: str, database_url: str
) -> None:
    service_prefix = f"d{random_suffix(6)}-"
    demo_services(database_url, service_prefix, None)  # the default cluster's
    other = dataclasses.replace(settings, bootstrap_servers=broker.bootstrap_servers)
    plan = traffic.demo_plan(prefix=f"{names['audio']}.", service_prefix=service_prefix, cluster=other_cluster, duration_s=1)
    with pytest.raises(BadInput, match=rf"cannot run on cluster {other_cluster}: .*{service_prefix}timescale-writer \(default\)"):
        traffic.run(other, plan)
    # unconfigured services of a prefix: the hint says how to make them on that cluster
    missing = traffic.demo_plan(prefix=f"{names['audio']}.", service_prefix=f"x{service_prefix}", cluster=other_cluster)
    with pytest.raises(NotFound, match=f"config set SERVICE --create --cluster {other_cluster}"):
        traffic.run(other, missing)
    other_admin = kafka.admin_client(other)
    assert kafka.topic_partition_counts(other_admin, [t.name for t in plan.topics]) == {}
    # without a cluster the plan runs as it always did: its services are not asked where they belong
    assert traffic.demo_plan(service_prefix=service_prefix).cluster is None


def test_the_stack_cluster_is_picked_by_name(services: Any, broker: Any, tmp_path: Path) -> None:
    from loomctl import devstack
    from loomctl.devstack.stack import DevCluster

    if services.state_dir is None:
        pytest.skip("the session's services came from the environment: no local stack to read")
    stack = devstack.status(services.state_dir)
    second = DevCluster("dev-2", broker.bootstrap_servers, True, stack.kafka)
    two = dataclasses.replace(stack, clusters=(*stack.clusters, second))
    assert traffic.stack_cluster(two, None) == stack.bootstrap_servers
    assert traffic.stack_cluster(two, "default") == stack.bootstrap_servers
    assert traffic.stack_cluster(two, "dev-2") == broker.bootstrap_servers
    with pytest.raises(NotFound, match=r"no Kafka cluster dev-3 \(it has default, dev-2\).*--clusters"):
        traffic.stack_cluster(two, "dev-3")
    down = dataclasses.replace(stack, clusters=(*stack.clusters, dataclasses.replace(second, healthy=False)))
    with pytest.raises(BackendUnavailable, match="dev-2"):
        traffic.stack_cluster(down, "dev-2")
    # the command: a cluster the stack does not run is not found (exit 3) before anything is made
    runner = make_runner()
    result = runner.invoke(
        app,
        ["dev", "traffic", "--cluster", "dev-9", "--service-prefix", "dev2-", "--duration", "1s", "--dir", str(services.state_dir)],
        catch_exceptions=False,
    )
    assert result.exit_code == 3 and "no Kafka cluster dev-9" in result.stderr


def test_the_dev_2_example_services_are_the_demo_plan_of_cluster_dev_2() -> None:
    from loomctl.configs.files import read_specs

    plan = traffic.demo_plan(service_prefix="dev2-", cluster="dev-2")
    specs = read_specs(EXAMPLES / "dev-2-services.yaml")
    assert sorted(s.service_name for s in specs) == sorted(c.service_name for c in plan.consumers)
    assert {s.cluster_name for s in specs} == {"dev-2"}
    # group ids are unique across clusters: none of them is a group of the default cluster's examples
    default_groups = {s.consumer_group_id for s in read_specs(EXAMPLES / "pipeline-services.yaml")}
    assert not {s.consumer_group_id for s in specs} & default_groups
    assert "examples/dev-2-services.yaml" in plan.import_hint
    assert "examples/pipeline-services.yaml" in traffic.demo_plan().import_hint
    assert all((EXAMPLES.parent / path).is_file() for path in traffic.EXAMPLE_FILES.values())
