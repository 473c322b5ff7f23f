"""What the exporter tests share: a `lag collect --listen` process, its HTTP answers, and groups in known states."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from support import clean_env, commit, create_topic, free_port, produce, unique, wait_for


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Sample:
    name: str
    labels: dict[str, str]
    value: float


@dataclass
class RunningCollector:
    process: subprocess.Popen
    address: str
    log: Path
    args: list[str] = field(default_factory=list)

    def get(self, path: str, timeout: float = 5.0) -> Response:
        try:
            with urllib.request.urlopen(f"http://{self.address}{path}", timeout=timeout) as r:
                return Response(r.status, dict(r.headers), r.read())
        except urllib.error.HTTPError as e:
            return Response(e.code, dict(e.headers), e.read())

    def samples(self) -> list[Sample]:
        from prometheus_client.parser import text_string_to_metric_families

        response = self.get("/metrics")
        assert response.status == 200 and response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return [Sample(s.name, s.labels, s.value) for f in text_string_to_metric_families(response.body.decode())
                for s in f.samples]

    def series(self, name: str, **labels: str) -> list[Sample]:
        return [s for s in self.samples() if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]

    def value(self, name: str, **labels: str) -> float | None:
        found = self.series(name, **labels)
        assert len(found) <= 1, found
        return found[0].value if found else None

    def cycles(self) -> float:
        return self.value("loomctl_collector_cycles_total") or 0

    def wait_cycles(self, more: int = 1, timeout: float = 60.0) -> None:
        target = self.cycles() + more
        wait_for(f"{more} more cycles", lambda: self.cycles() >= target, timeout)

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            assert self.process.wait(timeout=30) == 0, self.log.read_text()
        text = self.log.read_text()
        assert "Traceback" not in text, text
        return text


def start_collector(database_url: str, bootstrap: str, log: Path, *args: str, listen: str | None = None,
                    interval: str = "1s", env: dict[str, str] | None = None) -> RunningCollector:
    """`loomctl lag collect --listen ...` as a process; back once it serves and a cycle has succeeded."""
    listen = listen or f"127.0.0.1:{free_port()}"
    clean = clean_env(**(env or {}))
    argv = [sys.executable, "-m", "loomctl", "--database-url", database_url, "--bootstrap-servers", bootstrap,
            "lag", "collect", "--interval", interval, "--listen", listen, *args]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log.open("w"), env=clean)
    collector = RunningCollector(process, listen, log, argv)
    try:
        def ready() -> bool:
            assert process.poll() is None, log.read_text()
            try:
                return collector.get("/readyz", timeout=1).status == 200
            except OSError:
                return False

        wait_for("the collector's first cycle", ready)
    except BaseException:
        collector.process.kill()
        collector.process.wait()
        raise
    return collector


@dataclass(frozen=True)
class KnownGroups:
    """Three configured groups on the broker: caught up, stopped with lag (and records lost), half committed; the first
    two with lag objectives of 60 s and 3600 s. A fourth configured service never ran: its group is not on the broker."""

    ok_group: str
    ok_service: str
    stop_group: str
    stop_service: str
    partial_group: str
    partial_service: str
    ok_topic: str
    stop_topic: str
    partial_topic: str
    never_ran_group: str
    never_ran_service: str
    profile: str = "high-throughput"


def make_groups(database_url: str, bootstrap: str) -> KnownGroups:
    from confluent_kafka import TopicPartition

    from support import admin_client

    g = KnownGroups(
        ok_group=unique("g-ok"), ok_service=unique("svc-ok"), stop_group=unique("g-stop"), stop_service=unique("svc-stop"),
        partial_group=unique("g-part"), partial_service=unique("svc-part"),
        ok_topic=unique("t-ok"), stop_topic=unique("t-stop"), partial_topic=unique("t-part"),
        never_ran_group=unique("g-never"), never_ran_service=unique("svc-never"),
    )
    admin = admin_client(bootstrap)
    for topic in (g.ok_topic, g.stop_topic, g.partial_topic):
        create_topic(admin, topic, 2)
    produce(bootstrap, g.ok_topic, {0: 10, 1: 10})
    commit(bootstrap, g.ok_group, g.ok_topic, {0: 10, 1: 10})
    produce(bootstrap, g.stop_topic, {0: 20, 1: 20})
    commit(bootstrap, g.stop_group, g.stop_topic, {0: 5, 1: 5})
    # retention took records 0..7 of partition 0 before the group read past 5: 3 lost
    for future in admin.delete_records([TopicPartition(g.stop_topic, 0, 8)]).values():
        future.result(timeout=30)
    produce(bootstrap, g.partial_topic, {0: 6, 1: 6})
    commit(bootstrap, g.partial_group, g.partial_topic, {0: 2})  # partition 1: never committed
    with psycopg.connect(database_url, autocommit=True) as conn:
        # objectives: the caught-up group meets a minute, the stopped one ages towards an hour; the others have none
        for service, group, profile, objective in (
                (g.ok_service, g.ok_group, None, 60), (g.stop_service, g.stop_group, g.profile, 3600),
                (g.partial_service, g.partial_group, None, None), (g.never_ran_service, g.never_ran_group, None, None)):
            conn.execute("INSERT INTO pipeline_consumer_configs (service_name, consumer_group_id, profile, lag_slo_seconds)"
                         " VALUES (%s, %s, %s, %s)", (service, group, profile, objective))
    return g
