"""A real Prometheus scrapes a real collector: PromQL gives the lag `lag show` gives; the alert rules load, check and fire."""

from __future__ import annotations

import json
import shutil
import subprocess
import textwrap
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from served import RunningCollector
from support import Cli, free_port, wait_for

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "examples" / "prometheus" / "loomctl-rules.yml"
DASHBOARD = ROOT / "examples" / "grafana" / "loomctl.json"


def _tool(name: str) -> str:
    found = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
    if found is None:
        pytest.skip(f"needs {name} (scripts/install-system-deps.sh installs Debian's prometheus package)")
    return found


class Prometheus:
    def __init__(self, address: str, process: subprocess.Popen, log: Path) -> None:
        self.address, self.process, self.log = address, process, log

    def api(self, path: str, **params: str) -> Any:
        url = f"http://{self.address}/api/v1/{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
        with urllib.request.urlopen(url, timeout=10) as response:
            body = json.loads(response.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.api("query", query=expr)
        assert data["resultType"] == "vector", data
        return data["result"]


@pytest.fixture(scope="module")
def prometheus(served_collector: RunningCollector, tmp_path_factory) -> Iterator[Prometheus]:
    binary = _tool("prometheus")
    folder = tmp_path_factory.mktemp("prometheus")
    config = folder / "prometheus.yml"
    config.write_text(textwrap.dedent(f"""\
        global:
          scrape_interval: 1s
          evaluation_interval: 1s
        rule_files:
          - {RULES}
        scrape_configs:
          - job_name: loomctl
            static_configs:
              - targets: ["{served_collector.address}"]
        """))
    address = f"127.0.0.1:{free_port()}"
    log = folder / "prometheus.log"
    process = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={folder / 'data'}", f"--web.listen-address={address}",
         "--storage.tsdb.retention.time=1h", "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=log.open("w"),
    )
    server = Prometheus(address, process, log)
    try:
        def scraped() -> bool:
            assert process.poll() is None, log.read_text()
            try:
                return any(t["health"] == "up" for t in server.api("targets")["activeTargets"])
            except OSError:
                return False

        wait_for("Prometheus to scrape the collector", scraped, timeout=60)
        yield server
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_promql_gives_the_lag_that_lag_show_reports(prometheus, served_collector, known_groups, served_db, services) -> None:
    cli = Cli(served_db, services.bootstrap_servers)
    [summary] = cli.json("lag", "show", "--group", known_groups.stop_group, "--by", "service")
    per_partition = {r["partition"]: r["lag"] for r in cli.json("lag", "show", "--group", known_groups.stop_group)}

    def summed() -> list[dict[str, Any]]:
        return prometheus.query(f'kafka_consumergroup_group_sum_lag{{group="{known_groups.stop_group}"}}')

    [series] = wait_for("the group's lag in Prometheus", summed)
    assert float(series["value"][1]) == summary["total_lag"] == 30
    assert series["metric"]["cluster_name"] == "pipeline-eu" and series["metric"]["job"] == "loomctl"
    rows = prometheus.query(f'sum by (partition) (kafka_consumergroup_group_lag{{group="{known_groups.stop_group}"}})')
    assert {int(r["metric"]["partition"]): float(r["value"][1]) for r in rows} == per_partition
    [up] = prometheus.query('loomctl_collector_up{job="loomctl"}')
    assert up["value"][1] == "1"
    [stopped] = prometheus.query(f'loomctl_group_status_code{{group="{known_groups.stop_group}"}}')
    assert (stopped["metric"]["status"], stopped["value"][1], stopped["metric"]["service"]) == ("STOP", "4", known_groups.stop_service)


def test_the_alert_rules_load_in_prometheus_and_the_stop_alert_is_pending(prometheus, known_groups) -> None:
    groups = prometheus.api("rules")["groups"]
    assert {g["name"] for g in groups} == {"loomctl-consumer-groups", "loomctl-collector"}
    assert all(r["health"] == "ok" for g in groups for r in g["rules"]), groups

    def stop_alert() -> list[dict[str, Any]]:
        return [a for a in prometheus.api("alerts")["alerts"]
                if a["labels"]["alertname"] == "KafkaConsumerGroupStopped" and a["labels"]["group"] == known_groups.stop_group]

    [alert] = wait_for("the STOP alert", stop_alert, timeout=30)
    assert alert["state"] in ("pending", "firing")  # firing once `for: 1m` has passed
    assert known_groups.stop_service in alert["annotations"]["summary"]


def test_every_dashboard_query_runs_in_prometheus(prometheus, known_groups) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert queries
    for expr in queries:
        concrete = (expr.replace("$cluster", ".*").replace("$group", known_groups.stop_group).replace("$topic", ".*")
                    .replace("$__rate_interval", "1m").replace("$__range", "5m").replace("$__interval", "15s"))
        prometheus.api("query", query=concrete)  # a query Prometheus cannot parse fails here
    answered = [e for e in queries if "$group" in e and prometheus.query(
        e.replace("$cluster", ".*").replace("$group", known_groups.stop_group).replace("$topic", ".*")
        .replace("$__rate_interval", "1m").replace("$__range", "5m").replace("$__interval", "15s"))]
    assert len(answered) >= 5, answered  # the group's panels have data


def test_promtool_checks_the_rules() -> None:
    result = subprocess.run([_tool("promtool"), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 12 rules found" in result.stdout


def test_promtool_unit_tests_fire_the_alerts(tmp_path) -> None:
    """Series as a collector exports them, through the rules' own evaluation: the alerts fire when they should."""
    tests = tmp_path / "rules_test.yml"
    tests.write_text(textwrap.dedent(f"""\
        rule_files:
          - {RULES}
        evaluation_interval: 1m
        tests:
          - interval: 1m
            input_series:
              - series: 'loomctl_group_status_code{{cluster_name="eu",group="g1",service="billing",profile="",status="STOP"}}'
                values: '4x20'
              - series: 'loomctl_group_status_code{{cluster_name="eu",group="g2",service="search",profile="",status="OK"}}'
                values: '1x20'
              - series: 'kafka_consumergroup_group_max_lag_seconds{{cluster_name="eu",group="g2",is_simple_consumer="false"}}'
                values: '10 400x20'
              - series: 'loomctl_collector_info{{cluster_name="eu",granularity="partition",version="0.1.0"}}'
                values: '1x2'
              - series: 'loomctl_collector_up{{cluster_name="eu",instance="c1"}}'
                values: '1 1 0x20'
              - series: 'loomctl_group_slo_state_code{{cluster_name="eu",group="g3",service="alerts",profile="fast",slo_state="breached"}}'
                values: '2x20'
              - series: 'loomctl_group_slo_state_code{{cluster_name="eu",group="g4",service="ocr",profile="ai-model",slo_state="at_risk"}}'
                values: '1x20'
              - series: 'loomctl_group_slo_state_code{{cluster_name="eu",group="g5",service="writer",profile="",slo_state="met"}}'
                values: '0x20'
            alert_rule_test:
              - eval_time: 3m
                alertname: KafkaConsumerGroupLagObjectiveBreached
                exp_alerts:
                  - exp_labels: {{severity: critical, cluster_name: eu, group: g3, service: alerts, profile: fast, slo_state: breached}}
                    exp_annotations:
                      summary: "Consumer group g3 (alerts) is over its lag objective on eu"
                      description: "Its lag in time is above lag_slo_seconds. `loomctl lag slo alerts` shows the catch-up and the partitions that would fix it."
              - eval_time: 4m
                alertname: KafkaConsumerGroupLagObjectiveAtRisk
                exp_alerts: []
              - eval_time: 6m
                alertname: KafkaConsumerGroupLagObjectiveAtRisk
                exp_alerts:
                  - exp_labels: {{severity: warning, cluster_name: eu, group: g4, service: ocr, profile: ai-model, slo_state: at_risk}}
                    exp_annotations:
                      summary: "Consumer group g4 (ocr) will miss its lag objective on eu"
                      description: "At the current rates its lag in time will cross lag_slo_seconds, or it does not catch up within it. See `loomctl lag slo ocr`."
              - eval_time: 0m
                alertname: KafkaConsumerGroupStopped
                exp_alerts: []
              - eval_time: 2m
                alertname: KafkaConsumerGroupStopped
                exp_alerts:
                  - exp_labels: {{severity: critical, cluster_name: eu, group: g1, service: billing, status: STOP}}
                    exp_annotations:
                      summary: "Consumer group g1 (billing) stopped on eu"
                      description: "Lag grows, no offset was committed for longer than the group usually takes and the group has no members. Start the service, or run `loomctl lag status billing` for the evidence."
              - eval_time: 7m
                alertname: KafkaConsumerGroupLagSecondsHigh
                exp_alerts:
                  - exp_labels: {{severity: warning, cluster_name: eu, group: g2}}
                    exp_annotations:
                      summary: "Consumer group g2 is 6m 40s behind on eu"
                      description: "The next record to consume was produced more than 5 minutes ago."
              - eval_time: 5m
                alertname: LoomctlCollectorCyclesFailing
                exp_alerts:
                  - exp_labels: {{severity: warning, cluster_name: eu, instance: c1}}
                    exp_annotations:
                      summary: "loomctl collector for eu fails its cycles (c1)"
                      description: "It serves the last good figures; see the collector's log for the failure."
              - eval_time: 12m
                alertname: LoomctlCollectorDown
                exp_alerts:
                  - exp_labels: {{severity: critical}}
                    exp_annotations:
                      summary: "No loomctl collector has been scraped for 5 minutes"
                      description: "Lag, status and these alerts are blind. Check `loomctl lag collect --listen` and the scrape target."
        """))
    result = subprocess.run([_tool("promtool"), "test", "rules", str(tests)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
