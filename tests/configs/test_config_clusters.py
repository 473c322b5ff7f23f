"""`config push` and `config drift` across two real clusters: each service's group configs go to, and are compared
with, its own cluster's brokers."""

from __future__ import annotations

import pytest

from support import Cli, admin_client, commit, create_topic, forget_cluster, unique, wait_for

pytestmark = pytest.mark.integration


def test_push_and_drift_reach_each_services_own_cluster(database_url, services, broker, admin) -> None:
    root = Cli(database_url, services.bootstrap_servers)
    cli = Cli(database_url, services.bootstrap_servers, group=["config"])
    second = f"c-{unique('x', 6)}"
    assert root("cluster", "add", second, "--bootstrap-servers", broker.bootstrap_servers).exit_code == 0
    try:
        check_push_and_drift(cli, second, broker, admin)
    finally:
        forget_cluster(database_url, second)  # the session's database: its broker stops with this module


def check_push_and_drift(cli: Cli, second: str, broker, admin) -> None:
    from loomctl import kafka

    theirs, ours = unique("push-theirs"), unique("push-ours")
    for service, cluster, timeout in ((theirs, second, "50000"), (ours, "default", "46000")):
        result = cli("set", service, "--create", "--cluster", cluster, "group_protocol=consumer", f"session_timeout_ms={timeout}",
                     "heartbeat_interval_ms=5000")
        assert result.exit_code == 0, result.output

    report = cli.json("push", theirs, ours, "--yes")
    assert {i["service_name"]: i["action"] for i in report["items"]} == {theirs: "set", ours: "set"}
    name = "consumer.session.timeout.ms"
    on_second = kafka.describe_group_configs(admin_client(broker.bootstrap_servers), [theirs, ours], [name])
    on_default = kafka.describe_group_configs(admin, [theirs, ours], [name])
    assert on_second[theirs][name].value == "50000" and on_default[ours][name].value == "46000"
    # neither cluster was given the other's group: there it keeps the broker's default
    assert on_second[ours][name].value != "46000" and on_default[theirs][name].value != "50000"

    # a broker that never had a consumer-protocol group answers ConsumerGroupDescribe once its coordinator has loaded
    topic = create_topic(broker.bootstrap_servers, unique("in-use"), 1)
    commit(broker.bootstrap_servers, unique("g-in-use"), topic, {0: 0})
    drift = cli("drift", theirs, ours, "--fail")  # each compared with its own cluster: both in sync
    assert drift.exit_code == 0 and "0 of 2 service(s) drift" in drift.stderr, drift.output
