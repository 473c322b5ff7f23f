"""Lag objectives on the real database: synthetic history in a database of this module's own, judged by
Python (lag status, lag slo) and by SQL (v_consumer_performance_monitor, v_consumer_alerts) on the same rows.

One sample every 30 s over the last 13.5 minutes (28 samples; the window is 15 minutes), written through the
collector's path. Produce rate 100 records a sample = 3.33 msg/s where not said otherwise.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
from psycopg.rows import dict_row
from support import Cli, own_database, suffix

from loomctl.lag import LagSample, copy_samples, slo, slo_report, status_report

pytestmark = pytest.mark.integration

SAMPLES = 28
SUFFIX = suffix(6)
WINDOW = dt.timedelta(minutes=15)


def name(kind: str) -> str:
    return f"{kind}-{SUFFIX}"


@dataclass(frozen=True)
class Kind:
    objective: int | None
    profile: str | None = None


KINDS = {
    "steady": Kind(30),            # keeps 2..7 behind: caught up, met
    "gaining": Kind(1200),         # lag 3000 -> 1650, gains 1.67 msg/s: catch-up 990 s, met
    "gaining-tight": Kind(600),    # the same: catch-up 990 s longer than 600: at risk
    "gaining-over": Kind(30),      # the same, 33 s behind against 30: breached
    "falling": Kind(600),          # lag 100 -> 1450: never; 425 s behind growing 0.5 s/s: breach in 350 s
    "stopped": Kind(300),          # an Empty group, offset still: 1410 s behind, breached, never
    "skewed": Kind(3000),          # partition 0 catches up in 190 s, partition 1 in 2190 s: the group 2190 s
    "idle": Kind(10),              # nothing produced, nothing to consume: met
    "idle-behind": Kind(900),      # nothing produced, 100 left by a stopped consumer: 860 s behind, +1 s/s
    "no-commit": Kind(60),         # data, never a commit: no_data
    "no-objective": Kind(None),    # falling behind, but no objective: no_slo
    "profiled": Kind(None, "fast"),  # the fast profile's default, 30 s: steady, met
    "unsampled": Kind(60),         # configured, never sampled: no_data
}


def sample(kind: str, partition: int, at: dt.datetime, committed: int | None, log_end: int, *, time_lag_ms: int | None,
           state: str = "Stable", members: int = 1) -> LagSample:
    return LagSample(
        consumer_group_id=f"{name(kind)}-group", topic_name=f"topic.{kind}.{SUFFIX}", partition=partition, timestamp=at,
        service_name=name(kind), committed_offset=committed, log_end_offset=log_end, log_start_offset=0,
        lag=None if committed is None else max(log_end - committed, 0), time_lag_ms=time_lag_ms,
        group_state=state, member_count=members,
    )


def history(base: dt.datetime) -> list[LagSample]:
    rows = []
    for i in range(SAMPLES):
        at = base - dt.timedelta(seconds=30 * (SAMPLES - 1 - i))
        leo = 1000 + 100 * i
        steady = 2 + i % 6
        rows.append(sample("steady", 0, at, leo - steady, leo, time_lag_ms=steady * 10))
        rows.append(sample("profiled", 0, at, leo - steady, leo, time_lag_ms=steady * 10))
        gaining = 3000 - 50 * i
        for kind in ("gaining", "gaining-tight", "gaining-over"):
            rows.append(sample(kind, 0, at, leo - gaining, leo, time_lag_ms=gaining * 20))
        falling = 100 + 50 * i
        for kind in ("falling", "no-objective"):
            rows.append(sample(kind, 0, at, leo - falling, leo, time_lag_ms=20_000 + 15_000 * i))
        rows.append(sample("stopped", 0, at, 7000, 7020 + 20 * i, time_lag_ms=600_000 + 30_000 * i, state="Empty", members=0))
        rows.append(sample("skewed", 0, at, leo - (2000 - 60 * i), leo, time_lag_ms=10_000))
        rows.append(sample("skewed", 1, at, leo - (3000 - 30 * i), leo, time_lag_ms=40_000))
        rows.append(sample("idle", 0, at, 500, 500, time_lag_ms=0))
        rows.append(sample("idle-behind", 0, at, 400, 500, time_lag_ms=50_000 + 30_000 * i, state="Empty", members=0))
        rows.append(sample("no-commit", 0, at, None, leo, time_lag_ms=None))
    return rows


@pytest.fixture(scope="module")
def url(database_factory) -> Iterator[str]:
    with own_database(database_factory, "loomslo") as url:
        with psycopg.connect(url) as conn:
            base = conn.execute("SELECT date_trunc('second', now())").fetchone()[0]
            for kind, spec in KINDS.items():
                conn.execute("INSERT INTO pipeline_consumer_configs (service_name, consumer_group_id, profile, lag_slo_seconds)"
                             " VALUES (%s, %s, %s, %s)", (name(kind), f"{name(kind)}-group", spec.profile, spec.objective))
            copy_samples(conn, history(base))
            # the stopped and the falling services processed at 4 msg/s a member while they ran
            for kind in ("falling", "stopped"):
                conn.execute("SELECT record_processing_metrics(%s, 40, 40, 10000, 0, NULL, NULL, now() - interval '5 minutes')",
                             (name(kind),))
        yield url


def ours(rows):
    return {r["service_name"].removesuffix(f"-{SUFFIX}"): r for r in rows if r["service_name"].endswith(SUFFIX)}


@pytest.fixture(scope="module")
def monitor(url) -> dict[str, dict]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return ours(conn.execute("SELECT * FROM v_consumer_performance_monitor").fetchall())


@pytest.fixture(scope="module")
def groups(url) -> dict[str, object]:
    with psycopg.connect(url) as conn:
        report = status_report(conn, WINDOW)
    return {g.service_name.removesuffix(f"-{SUFFIX}"): g for g in report.groups}


EXPECTED = {
    # kind: (slo_state, catch_up_seconds, catch_up_never, breach_in_seconds, slowest_partition)
    "steady": (slo.MET, 0.0, False, None, "[0]"),
    "gaining": (slo.MET, 990.0, False, None, "[0]"),
    "gaining-tight": (slo.AT_RISK, 990.0, False, None, "[0]"),
    "gaining-over": (slo.BREACHED, 990.0, False, 0.0, "[0]"),
    "falling": (slo.AT_RISK, None, True, 350.0, "[0]"),
    "stopped": (slo.BREACHED, None, True, 0.0, "[0]"),
    "skewed": (slo.MET, 2190.0, False, None, "[1]"),
    "idle": (slo.MET, 0.0, False, None, "[0]"),
    "idle-behind": (slo.AT_RISK, None, True, 40.0, "[0]"),
    "no-commit": (slo.NO_DATA, None, False, None, None),
    "no-objective": (slo.NO_SLO, None, True, None, "[0]"),
    "profiled": (slo.MET, 0.0, False, None, "[0]"),
    "unsampled": (slo.NO_DATA, None, False, None, None),
}


def _slowest(value: str | None) -> str | None:
    return None if value is None else value[value.index("["):]


def test_python_predictions_have_the_values_worked_by_hand(groups):
    got = {k: (g.slo_state, g.catch_up_seconds, g.catch_up_never, g.breach_in_seconds, _slowest(g.slowest_partition))
           for k, g in groups.items()}
    assert got == EXPECTED
    assert groups["falling"].time_lag_seconds == 425.0  # 20 s + 27 x 15 s
    assert groups["profiled"].lag_slo_seconds == slo.PROFILE_LAG_SLO_SECONDS["fast"] == 30
    assert groups["no-objective"].lag_slo_seconds is None


def test_the_monitor_view_agrees_with_python_on_every_service(groups, monitor):
    assert set(monitor) == set(KINDS)
    for kind, g in groups.items():
        row = monitor[kind]
        assert row["lag_slo_seconds"] == g.lag_slo_seconds, kind
        assert row["slo_state"] == g.slo_state, kind
        assert row["catch_up_never"] == g.catch_up_never, kind
        assert row["slowest_partition"] == g.slowest_partition, kind
        for key in ("catch_up_seconds", "breach_in_seconds", "time_lag_seconds"):
            sql, python = row[key], getattr(g, key)
            assert (sql is None) == (python is None), (kind, key, sql, python)
            if sql is not None:
                assert float(sql) == pytest.approx(python, abs=0.051), (kind, key)


def test_every_profile_default_is_the_same_in_sql_and_python(url):
    with psycopg.connect(url) as conn:
        for profile, seconds in slo.PROFILE_LAG_SLO_SECONDS.items():
            service = f"prof-{profile}-{SUFFIX}"
            conn.execute("INSERT INTO pipeline_consumer_configs (service_name, consumer_group_id, profile) VALUES (%s, %s, %s)",
                         (service, service, profile))
            row = conn.execute("SELECT lag_slo_seconds, slo_state FROM v_consumer_performance_monitor WHERE service_name = %s",
                               (service,)).fetchone()
            assert row == (seconds, slo.NO_DATA), profile
        conn.rollback()
    from loomctl.consumer_config import PROFILES

    assert set(slo.PROFILE_LAG_SLO_SECONDS) == set(PROFILES)


def test_partition_rows_carry_their_rates_and_predictions(url):
    with psycopg.connect(url) as conn:
        report = status_report(conn, WINDOW, [name("skewed"), name("falling")])
    rows = {(p["service_name"].removesuffix(f"-{SUFFIX}"), p["partition"]): p for p in report.partitions}
    p0, p1, falling = rows[("skewed", 0)], rows[("skewed", 1)], rows[("falling", 0)]
    assert (p0["produce_rate"], p0["consume_rate"], p0["catch_up_seconds"]) == (3.33, 5.33, 190.0)
    assert (p1["consume_rate"], p1["catch_up_seconds"], p1["lag_slo_seconds"]) == (4.33, 2190.0, 3000)
    assert (falling["catch_up_seconds"], falling["catch_up_never"], falling["breach_in_seconds"]) == (None, True, 350.0)


def test_alerts_carry_the_objective_with_its_figures(url):
    with psycopg.connect(url, row_factory=dict_row) as conn:
        rows = conn.execute("SELECT * FROM v_consumer_alerts WHERE alert_type LIKE 'slo_%'").fetchall()
    kinds = {(r["service_name"].removesuffix(f"-{SUFFIX}"), r["alert_type"], r["severity"]) for r in rows}
    assert kinds == {
        ("gaining-over", "slo_breached", "critical"), ("stopped", "slo_breached", "critical"),
        ("gaining-tight", "slo_at_risk", "warning"), ("falling", "slo_at_risk", "warning"),
        ("idle-behind", "slo_at_risk", "warning"),
    }
    falling = next(r for r in rows if r["service_name"] == name("falling"))
    assert falling["message"] == (f"425.0 s behind against the objective of 600 s; breach in 350.0 s, catch-up never "
                                  f"(slowest topic.falling.{SUFFIX}[0], lag 1450)")
    assert (float(falling["value"]), falling["threshold"]) == (425.0, 600)
    stopped = next(r for r in rows if r["service_name"] == name("stopped"))
    assert stopped["message"].startswith("1410.0 s behind, over the objective of 300 s; catch-up never")
    # the objective is the only trouble of these: lag shrinks, 33 s behind is no high_time_lag
    with psycopg.connect(url) as conn:
        others = conn.execute("SELECT alert_type FROM v_consumer_alerts WHERE service_name = ANY(%s)",
                              ([name("gaining-over"), name("gaining-tight")],)).fetchall()
    assert sorted(others) == [("slo_at_risk",), ("slo_breached",)]


def test_lag_slo_lists_worst_first_with_the_numbers_and_the_partitions_that_fix_it(url):
    cli = Cli(url)
    data = cli.json("lag", "slo", "--window", "15m")
    services = [s for s in data["services"] if s["service_name"].endswith(SUFFIX)]
    ranks = [slo.slo_rank(s["slo_state"]) for s in services]
    assert ranks == sorted(ranks, reverse=True)
    by = {s["service_name"].removesuffix(f"-{SUFFIX}"): s for s in services}
    stopped = by["stopped"]
    assert (stopped["slo_state"], stopped["catch_up_seconds"], stopped["catch_up_never"]) == ("breached", None, True)
    assert stopped["lag_slo_from"] == "service" and by["profiled"]["lag_slo_from"] == "profile fast"
    assert stopped["per_consumer_rate"] == 4.0  # 40 messages in 10 s
    assert "the group has no members: nothing consumes until the consumer is started" in stopped["reason"]
    [fix] = stopped["fixes"]
    # lag 560 within 300 s: gain 1.87 msg/s; at 4 msg/s a partition may take 2.13 of the 0.67 produced: 1 is enough
    assert (fix["current_partitions"], fix["recommended_partitions"], fix["meets_objective"]) == (1, 1, True)
    assert fix["drain_seconds"] == slo.rounded(560 / (4 - 20 / 30))
    falling = by["falling"]
    [fix] = falling["fixes"]
    # lag 1450 within 600 s: gain 2.42 msg/s; 4 - 2.42 = 1.58 msg/s a partition of the 3.33 produced: 3 partitions
    assert (fix["recommended_partitions"], fix["meets_objective"], falling["partitions_needed"]) == (3, True, 3)
    assert fix["max_partition_lag"] / (fix["per_consumer_rate"] - fix["produce_rate"] / 3) <= 600
    assert "never catches up" in falling["reason"] and "breaches in 350 s" in falling["reason"]
    assert by["steady"]["fixes"] == [] and by["steady"]["slo_state"] == "met"
    table = cli("lag", "slo", name("stopped"), name("steady"))
    assert table.exit_code == 0 and "never" in table.stdout and "breached" in table.stdout


def test_lag_status_shows_the_objective_columns(url):
    cli = Cli(url)
    data = cli.json("lag", "status", name("falling"))
    [group] = data["groups"]
    assert {k: group[k] for k in ("lag_slo_seconds", "slo_state", "catch_up_seconds", "catch_up_never",
                                  "breach_in_seconds")} == {
        "lag_slo_seconds": 600, "slo_state": "at_risk", "catch_up_seconds": None, "catch_up_never": True,
        "breach_in_seconds": 350.0}
    table = cli("lag", "status", name("falling"))
    assert table.exit_code == 0
    assert "slo_state" in table.stdout and "at_risk" in table.stdout and "never" in table.stdout


def test_lag_slo_refuses_a_stranger_and_a_bad_window(url):
    cli = Cli(url)
    stranger = cli("lag", "slo", "no-such-service")
    assert stranger.exit_code == 3 and "no config for service no-such-service" in stranger.output
    bad = cli("lag", "slo", "--window", "soon")
    assert bad.exit_code == 2


def test_alerts_fail_on_counts_the_objectives_alerts(database_factory):
    """Only an at-risk objective (lag shrinking, 33 s behind, catch-up 990 s over 600): a warning, not critical."""
    with own_database(database_factory, "loomsloalert") as url:
        with psycopg.connect(url) as conn:
            base = conn.execute("SELECT date_trunc('second', now())").fetchone()[0]
            conn.execute("INSERT INTO pipeline_consumer_configs (service_name, consumer_group_id, lag_slo_seconds)"
                         " VALUES (%s, %s, 600)", (name("gaining-tight"), f"{name('gaining-tight')}-group"))
            copy_samples(conn, [s for s in history(base) if s.service_name == name("gaining-tight")])
        cli = Cli(url)
        rows = cli.json("alerts")
        assert [(r["alert_type"], r["severity"]) for r in rows] == [("slo_at_risk", "warning")]
        warn = cli("alerts", "--fail-on", "warn")
        assert warn.exit_code == 1 and "1 alert at warn or above" in warn.stderr
        assert cli("alerts", "--fail-on", "critical").exit_code == 0
        with psycopg.connect(url) as conn:  # tightened by hand in psql: breached, critical
            conn.execute("UPDATE pipeline_consumer_configs SET lag_slo_seconds = 20")
        assert cli("alerts", "--fail-on", "critical").exit_code == 1
        assert [r["alert_type"] for r in cli.json("alerts")] == ["slo_breached"]


def test_an_objective_set_in_psql_is_audited_and_checked(url):
    service = name("steady")
    with psycopg.connect(url) as conn:
        conn.execute("UPDATE pipeline_consumer_configs SET lag_slo_seconds = 45 WHERE service_name = %s", (service,))
        fields, old, new, source = conn.execute(
            "SELECT changed_fields, old_values ->> 'lag_slo_seconds', new_values ->> 'lag_slo_seconds', source"
            "  FROM consumer_config_changes WHERE service_name = %s ORDER BY id DESC LIMIT 1", (service,)).fetchone()
        assert (fields, old, new, source) == (["lag_slo_seconds"], "30", "45", "sql")
        for bad in (0, -5, 604_801):
            with pytest.raises(psycopg.errors.CheckViolation, match="lag_slo_seconds_range"):
                with conn.transaction():
                    conn.execute("UPDATE pipeline_consumer_configs SET lag_slo_seconds = %s WHERE service_name = %s",
                                 (bad, service))
        conn.rollback()


def test_import_and_export_round_trip_the_objective(database_factory, tmp_path):
    with own_database(database_factory, "loomsloio") as url:
        cli = Cli(url)
        source = tmp_path / "services.yaml"
        source.write_text("services:\n"
                          "  - service_name: writer\n    profile: database-writer\n    lag_slo_seconds: 45\n"
                          "  - service_name: model\n    profile: ai-model\n")
        assert cli("config", "import", str(source), "--yes").exit_code == 0
        assert cli.json("config", "show", "writer")["lag_slo_seconds"] == 45
        assert cli.json("config", "show", "model")["lag_slo_seconds"] is None  # the profile's default applies
        exported = cli("config", "export", "--format", "yaml")
        assert exported.exit_code == 0 and "lag_slo_seconds: 45" in exported.stdout
        again = tmp_path / "again.yaml"
        again.write_text(exported.stdout)
        plan = cli("config", "import", str(again), "--dry-run", "-o", "json")
        assert plan.exit_code == 0, plan.output
        assert {i["action"] for i in json.loads(plan.stdout)["items"]} == {"unchanged"}
        history = cli.json("config", "history", "writer")
        assert any(c["field"] == "lag_slo_seconds" and c["new"] == 45 for h in history for c in h["changes"])
        for text, message in (("lag_slo_seconds: 0", "out of range"), ('lag_slo_seconds: "300"', "whole seconds"),
                              ("lag_slo_seconds: 1.5", "whole seconds"),
                              ("settings: {lag_slo_seconds: 300}", "not a client setting")):
            bad = tmp_path / "bad.yaml"
            bad.write_text(f"services:\n  - service_name: writer\n    {text}\n")
            result = cli("config", "import", str(bad), "--yes")
            assert result.exit_code == 2 and message in result.stderr, (text, result.output)
            assert "\n" not in result.stderr.strip()
        assert cli.json("config", "show", "writer")["lag_slo_seconds"] == 45  # nothing changed


def test_recommend_counts_the_consumers_that_meet_the_objective(url):
    cli = Cli(url)
    [row] = cli.json("recommend", name("falling"), "--window", "15m")
    assert (row["slo_state"], row["consumers_needed"]) == ("at_risk", 3)
    assert "1 -> 3 partitions" in row["slo_recommendation"] and "4.0 msg/s" in row["slo_recommendation"]
    every = {r["service_name"].removesuffix(f"-{SUFFIX}"): r for r in cli.json("recommend") if r["service_name"].endswith(SUFFIX)}
    # lag shrinking, status OK: the objective alone makes the recommendation, quoting its numbers
    tight = every["gaining-tight"]
    assert tight["status"] == "OK" and tight["recommendation"].startswith(
        "33.0 s behind against the objective of 600 s (at_risk), catch-up 990.0 s")
    assert "steady" not in every and "gaining" not in every
    [steady] = cli.json("recommend", name("steady"))
    assert (steady["consumers_needed"], steady["slo_recommendation"], steady["recommendation"]) == (None, None, None)
