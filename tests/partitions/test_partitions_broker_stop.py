"""A broker that stops in the middle of `apply`: no change is marked applied unless its topic changed,
and `apply` run again after the restart finishes the rest."""

from __future__ import annotations

import pytest

from partitions_support import insert_change, rows
from support import admin_client, create_topics, unique

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def counts(bootstrap_servers: str, topics: list[str]) -> dict[str, int]:
    metadata = admin_client(bootstrap_servers).list_topics(timeout=20)
    return {t: len(metadata.topics[t].partitions) for t in topics if t in metadata.topics}


def apply(database_url: str, bootstrap_servers: str, topics: list[str], on_step=None):
    from loomctl import kafka, partitions
    from loomctl.db import session_scope
    from loomctl.settings import Settings

    settings = Settings(database_url=database_url, bootstrap_servers=bootstrap_servers)
    with session_scope(settings) as session:
        admin = kafka.admin_client(settings, timeout=2)
        plan = partitions.plan_changes(session, admin, topics, lock=True, timeout=5)
        return partitions.apply_plan(session, admin, plan, actor="tester", timeout=2, on_step=on_step)


def test_a_broker_stopped_mid_apply_marks_nothing_it_did_not_change(broker, database_url, pg):
    # before the request: the broker goes away between validate_only and create_partitions
    early = create_topics(broker.bootstrap_servers, [unique("pt-stop") for _ in range(2)])
    # after the request: the topics grow, but the broker is gone before the new count is read back
    late = create_topics(broker.bootstrap_servers, [unique("pt-stop") for _ in range(2)])
    for topic in early + late:
        insert_change(pg, topic, 1, 3)

    def stop_at(step: str):
        def hook(name: str) -> None:
            if name == step:
                broker.stop()
        return hook

    results = apply(database_url, broker.bootstrap_servers, early, on_step=stop_at("validated"))
    assert {r.outcome for r in results} == {"pending"} and not any(r.altered for r in results)
    assert all(r.error for r in results)
    broker.start()
    assert counts(broker.bootstrap_servers, early) == {t: 1 for t in early}
    for topic in early:
        [row] = rows(pg, topic)
        assert (row["status"], row["applied_at"]) == ("pending", None) and row["error"]

    results = apply(database_url, broker.bootstrap_servers, late, on_step=stop_at("altered"))
    assert {(r.outcome, r.altered) for r in results} == {("pending", True)}
    assert all("run apply again" in r.error for r in results)
    broker.start()
    assert counts(broker.bootstrap_servers, late) == {t: 3 for t in late}  # changed, yet not marked applied
    assert all(rows(pg, t)[0]["status"] == "pending" for t in late)

    # running it again finishes the rest: the early topics are altered now, the late ones verified
    results = apply(database_url, broker.bootstrap_servers, early + late)
    assert {r.topic_name: (r.outcome, r.altered) for r in results} == {
        **{t: ("applied", True) for t in early}, **{t: ("already satisfied", False) for t in late}}
    assert counts(broker.bootstrap_servers, early + late) == {t: 3 for t in early + late}
    for topic in early + late:
        [row] = rows(pg, topic)
        assert (row["status"], row["applied_by"], row["error"]) == ("applied", "tester", None)
