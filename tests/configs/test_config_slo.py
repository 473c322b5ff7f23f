"""`config set SERVICE lag_slo_seconds=N`: the service's lag objective, beside profile and description."""

from __future__ import annotations

import pytest

from support import unique

pytestmark = pytest.mark.integration


def test_set_show_history_and_clear_the_objective(cli):
    service = unique("slo-svc")
    assert cli("set", service, "--create", "max_poll_records=100").exit_code == 0
    result = cli("set", service, "lag_slo_seconds=90", "--reason", "pager at 90 s")
    assert result.exit_code == 0, result.output
    shown = cli.json("show", service)
    assert shown["lag_slo_seconds"] == 90 and shown["max_poll_records"] == 100
    [latest, *_] = cli.json("history", service)
    assert [(c["field"], c["old"], c["new"]) for c in latest["changes"]] == [("lag_slo_seconds", None, 90)]
    assert latest["reason"] == "pager at 90 s"
    # not a client setting: no client receives it
    for client in ("librdkafka", "java", "kafkajs"):
        assert "lag_slo" not in cli("show", service, "--client", client).stdout
    assert cli("set", service, "lag_slo_seconds=none").exit_code == 0
    assert cli.json("show", service)["lag_slo_seconds"] is None


@pytest.mark.parametrize(("value", "message"), [
    ("0", "out of range"), ("604801", "out of range"), ("1.5", "whole seconds"), ("-3", "whole seconds"),
    ("٣٠", "whole seconds"), ("ten", "whole seconds"),
])
def test_a_bad_objective_is_one_line_exit_2_and_changes_nothing(cli, value, message):
    service = unique("slo-bad")
    assert cli("set", service, "--create", "lag_slo_seconds=30").exit_code == 0
    result = cli("set", service, f"lag_slo_seconds={value}")
    assert result.exit_code == 2 and message in result.stderr, result.output
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert cli.json("show", service)["lag_slo_seconds"] == 30


def test_the_objective_and_settings_change_together_or_not_at_all(cli):
    service = unique("slo-both")
    assert cli("set", service, "--create").exit_code == 0
    both = cli("set", service, "lag_slo_seconds=45", "max_poll_records=7", "-o", "json")
    assert both.exit_code == 0, both.output
    shown = cli.json("show", service)
    assert (shown["lag_slo_seconds"], shown["max_poll_records"]) == (45, 7)
    refused = cli("set", service, "lag_slo_seconds=60", "max_poll_records=0")
    assert refused.exit_code == 2
    assert cli.json("show", service)["lag_slo_seconds"] == 45


def test_profiles_list_their_default_objective(cli):
    from loomctl.lag.slo import PROFILE_LAG_SLO_SECONDS

    listed = cli.json("profiles")
    assert {p["name"]: p["lag_slo_seconds"] for p in listed} == PROFILE_LAG_SLO_SECONDS
    assert {"ai-model": 600, "fast": 30}.items() <= PROFILE_LAG_SLO_SECONDS.items()  # minutes for a model, seconds for fast
