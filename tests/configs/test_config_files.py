"""`config export` and `config import`: declarative files of services, in one transaction."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from confluent_kafka import Consumer

from loomctl import configs
from loomctl.consumer_config import PROFILES
from loomctl.settings import read_properties_file

from support import Cli

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pipeline-services.yaml"
GUIDE_SERVICES = {
    "moondream-vision-processor": "ai-model", "minicpm-ocr-processor": "ai-model",
    "silero-vad-processor": "fast", "motion-event-filter": "fast",
    "geocoding-processor": "io-bound", "url-scraper": "io-bound",
    "timescale-writer": "database-writer", "analytics-aggregator": "database-writer",
    "speech-processor": "ai-model",
}


def test_example_file_has_the_guides_services_with_their_profiles():
    items = configs.read_specs(EXAMPLE)
    assert {s.service_name: s.profile for s in items} == GUIDE_SERVICES
    for spec in items:
        for name in PROFILES[spec.profile].settings:
            if spec.service_name != "speech-processor":
                assert spec.settings[name] == PROFILES[spec.profile].settings[name]
    speech = next(s for s in items if s.service_name == "speech-processor")
    assert speech.settings["max_poll_records"] == 5 and speech.settings["max_poll_interval_ms"] == 900_000


def test_import_example_then_export_and_import_again_changes_nothing(fresh_database_url, tmp_path):
    cli = Cli(fresh_database_url, group=["config"])
    plan = cli.json("import", str(EXAMPLE), "--dry-run")
    assert plan["counts"] == {"create": 9, "change": 0, "unchanged": 0, "delete": 0}
    assert cli.json("list") == []
    result = cli("import", str(EXAMPLE), "--yes", "--reason", "initial load")
    assert result.exit_code == 0, result.output
    listed = cli.json("list")
    assert {r["service_name"]: r["profile"] for r in listed} == GUIDE_SERVICES
    assert cli.json("history", "url-scraper")[0]["reason"] == "initial load"

    for fmt in ("yaml", "json"):
        exported = cli("export", "--format", fmt)
        assert exported.exit_code == 0
        path = tmp_path / f"services.{fmt}"
        path.write_text(exported.stdout)
        plan = cli.json("import", str(path), "--prune")
        assert plan["counts"] == {"create": 0, "change": 0, "unchanged": 9, "delete": 0}, fmt
    versions = {r["service_name"]: r["version"] for r in cli.json("list")}
    assert set(versions.values()) == {1}

    # a change in the file shows as change; --prune deletes what the file lacks
    doc = yaml.safe_load((tmp_path / "services.yaml").read_text())
    doc["services"] = [s for s in doc["services"] if s["service_name"] != "url-scraper"]
    doc["services"][0]["settings"]["max_poll_records"] = 2
    doc["services"].append({"service_name": "new-service", "profile": "fast"})
    (tmp_path / "edited.yaml").write_text(yaml.safe_dump(doc))
    plan = cli.json("import", str(tmp_path / "edited.yaml"), "--prune", "--dry-run")
    assert plan["counts"] == {"create": 1, "change": 1, "unchanged": 7, "delete": 1}
    assert cli("import", str(tmp_path / "edited.yaml"), "--prune", input="n\n").exit_code == 1
    assert len(cli.json("list")) == 9
    assert cli("import", str(tmp_path / "edited.yaml"), "--prune", "--yes").exit_code == 0
    names = {r["service_name"] for r in cli.json("list")}
    assert "url-scraper" not in names and "new-service" in names and len(names) == 9


def test_import_is_one_transaction_and_refuses_bad_files(fresh_database_url, tmp_path):
    cli = Cli(fresh_database_url, group=["config"])
    cli("set", "taken", "--create", "--group", "shared-group")
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"services": [
        {"service_name": "first-ok", "profile": "fast"},
        {"service_name": "second", "consumer_group_id": "shared-group"},
    ]}))
    result = cli("import", str(bad), "--yes")
    assert result.exit_code == 4, result.output  # the group id is taken: nothing of the file is written
    assert {r["service_name"] for r in cli.json("list")} == {"taken"}
    bad.write_text(yaml.safe_dump({"services": [{"service_name": "x", "settings": {"max_poll_record": 5}}]}))
    result = cli("import", str(bad), "--yes")
    assert result.exit_code == 2 and "did you mean max_poll_records?" in result.stderr
    bad.write_text(yaml.safe_dump({"services": [{"service_name": "x", "settings": {"max_poll_interval_ms": 1000}}]}))
    result = cli("import", str(bad), "--yes")
    assert result.exit_code == 2 and "service 1 (x)" in result.stderr and "session_timeout_ms" in result.stderr
    bad.write_text(yaml.safe_dump({"services": [{"service_name": "x"}, {"service_name": "x"}]}))
    assert cli("import", str(bad), "--yes").exit_code == 2
    assert cli("import", str(tmp_path / "missing.yaml"), "--yes").exit_code == 2


def test_client_exports(fresh_database_url, tmp_path):
    cli = Cli(fresh_database_url, group=["config"])
    assert cli("import", str(EXAMPLE), "--yes").exit_code == 0
    text = cli("export", "url-scraper", "--format", "librdkafka").stdout
    path = tmp_path / "url-scraper.properties"
    path.write_text(text)
    props = read_properties_file(path)
    assert props["group.id"] == "url-scraper" and props["socket.timeout.ms"] == "60000"
    assert props["retry.backoff.max.ms"] == "5000" and "max.poll.records" not in props
    Consumer({**props, "bootstrap.servers": "127.0.0.1:9"}).close()
    java = cli("export", "timescale-writer", "--format", "java").stdout
    assert "max.poll.records=1000" in java and "enable.auto.commit=false" in java
    # the example's consumer-protocol service: the broker owns its session timeout and heartbeat
    assert "group.protocol=consumer" in java and "session.timeout.ms" not in java and "heartbeat.interval.ms" not in java
    js = json.loads(cli("export", "--format", "kafkajs").stdout)
    assert js["moondream-vision-processor"]["consumer"]["sessionTimeout"] == 60_000
    env = cli("export", "speech-processor", "--format", "env").stdout
    assert "LOOM_SPEECH_PROCESSOR_MAX_POLL_RECORDS=5" in env.splitlines()
    assert cli("export", "nope", "--format", "yaml").exit_code == 3
