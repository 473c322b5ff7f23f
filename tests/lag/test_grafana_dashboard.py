"""examples/grafana/loomctl.json against Grafana's dashboard JSON model (no Grafana can be installed here).

Checked: the model's required fields and types, panel types Grafana ships, a grid that fits 24 columns with no
overlaps, one Prometheus datasource variable behind every panel, target and variable references that resolve,
and every metric an expression names is one the exporter emits. That each expression parses and answers is
checked against a real Prometheus in test_prometheus.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from loomctl.lag.exporter import BURROW_CODES, UNKNOWN_CODE, metric_names

DASHBOARD = Path(__file__).resolve().parents[2] / "examples" / "grafana" / "loomctl.json"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
CORE_PANELS = {"timeseries", "stat", "table", "row", "gauge", "bargauge", "state-timeline", "status-history", "text",
               "heatmap", "piechart", "barchart", "logs"}
BUILTIN_VARIABLES = {"__rate_interval", "__interval", "__range", "__all", "__auto"}


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def expressions(dashboard: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in panels(dashboard) for t in p["targets"]] + [
        v["query"]["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"]


def test_the_dashboards_top_level_fields(dashboard) -> None:
    assert isinstance(dashboard["title"], str) and dashboard["title"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", dashboard["uid"])
    assert isinstance(dashboard["schemaVersion"], int) and dashboard["schemaVersion"] >= 36  # timeseries, state-timeline
    assert "id" not in dashboard or dashboard["id"] is None  # an import gets its own id
    assert set(dashboard["time"]) == {"from", "to"} and re.fullmatch(r"\d+[smhd]", dashboard["refresh"])
    assert all(isinstance(t, str) for t in dashboard["tags"]) and isinstance(dashboard["editable"], bool)
    assert isinstance(dashboard["annotations"]["list"], list) and isinstance(dashboard["templating"]["list"], list)


def test_panels_are_grafana_panel_types_on_a_grid_without_overlaps(dashboard) -> None:
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)) and all(isinstance(i, int) for i in ids)
    cells: dict[tuple[int, int], int] = {}
    for p in dashboard["panels"]:
        assert p["type"] in CORE_PANELS, p["type"]
        assert isinstance(p["title"], str) and p["title"]
        g = p["gridPos"]
        assert set(g) == {"h", "w", "x", "y"} and all(isinstance(v, int) and v >= 0 for v in g.values())
        assert 1 <= g["w"] and g["x"] + g["w"] <= 24 and g["h"] >= 1
        if p["type"] == "row":
            assert (g["w"], g["h"], g["x"]) == (24, 1, 0) and p["panels"] == [] and p["collapsed"] is False
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"panel {p['id']} overlaps panel {cells[(x, y)]}"
                cells[(x, y)] = p["id"]
    kinds = {p["type"] for p in panels(dashboard)}
    assert {"timeseries", "stat", "table", "state-timeline"} <= kinds


def test_every_panel_queries_the_datasource_variable_with_resolvable_targets(dashboard) -> None:
    for p in panels(dashboard):
        assert p["datasource"] == DATASOURCE, p["title"]
        assert set(p["fieldConfig"]) == {"defaults", "overrides"}
        ref_ids = [t["refId"] for t in p["targets"]]
        assert p["targets"] and len(ref_ids) == len(set(ref_ids)), p["title"]
        for t in p["targets"]:
            assert t["datasource"] == DATASOURCE and isinstance(t["expr"], str) and t["expr"].strip()
        for override in p["fieldConfig"]["overrides"]:
            named = re.fullmatch(r"Value #([A-Z])", override["matcher"]["options"])
            assert named is None or named.group(1) in ref_ids, override


def test_template_variables_are_defined_once_and_every_reference_resolves(dashboard) -> None:
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert len(variables) == len(dashboard["templating"]["list"])
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    for v in variables.values():
        if v["type"] == "query":
            assert v["datasource"] == DATASOURCE and v["query"]["query"].startswith("label_values(")
    used = {m for e in expressions(dashboard) for m in re.findall(r"\$\{?(\w+)", e)}
    assert used - BUILTIN_VARIABLES <= set(variables), used - set(variables)
    assert {"cluster", "group", "topic"} <= used


def test_every_metric_named_is_one_the_exporter_emits(dashboard) -> None:
    exported = set(metric_names("partition")) | set(metric_names("topic"))
    named = {m for e in expressions(dashboard) for m in re.findall(r"\b(?:kafka|loomctl)_[a-z_]+\b", e)}
    assert named and named <= exported, named - exported
    # the panels cover lag, lag in time, status, lost records and the collector's health
    assert {"kafka_consumergroup_group_max_lag_seconds", "kafka_consumergroup_group_topic_sum_lag", "loomctl_group_status_code",
            "loomctl_group_topic_lost_records", "loomctl_collector_up", "loomctl_collector_stale"} <= named


def test_status_mappings_name_every_code_the_exporter_emits(dashboard) -> None:
    codes = {str(c) for c in (*BURROW_CODES.values(), UNKNOWN_CODE)}
    for p in panels(dashboard):
        mappings = [m for m in p["fieldConfig"]["defaults"].get("mappings", [])] + [
            prop["value"][0] for o in p["fieldConfig"]["overrides"] for prop in o["properties"] if prop["id"] == "mappings"]
        for mapping in mappings:
            if "STOP" in {o["text"] for o in mapping["options"].values()}:
                assert set(mapping["options"]) == codes
                assert {mapping["options"][str(code)]["text"] for code in BURROW_CODES.values()} == set(BURROW_CODES)
