from pathlib import Path

import pytest

from loomctl.errors import BadInput
from loomctl.settings import Settings, libpq_url, read_properties_file, sqlalchemy_url


def test_url_dialects_round_trip():
    assert sqlalchemy_url("postgresql://h/db") == "postgresql+psycopg://h/db"
    assert libpq_url(sqlalchemy_url("postgres://h/db")) == "postgresql://h/db"


def test_properties_file_and_flags(tmp_path: Path):
    props = tmp_path / "client.properties"
    props.write_text("# SASL\nsecurity.protocol=SASL_SSL\nsasl.mechanism : PLAIN\n! other comment\nbootstrap.servers=a:9092\n")
    settings = Settings(kafka_config=props)
    assert settings.kafka_properties() == {"security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN", "bootstrap.servers": "a:9092"}
    assert Settings(kafka_config=props, bootstrap_servers="b:9092").kafka_properties()["bootstrap.servers"] == "b:9092"


def test_properties_file_errors(tmp_path: Path):
    with pytest.raises(BadInput, match="cannot read"):
        read_properties_file(tmp_path / "missing.properties")
    bad = tmp_path / "bad.properties"
    bad.write_text("just words\n")
    with pytest.raises(BadInput, match="bad.properties:1"):
        read_properties_file(bad)
    with pytest.raises(BadInput, match="bootstrap"):
        Settings().kafka_properties()


def test_env_then_flags(monkeypatch):
    monkeypatch.setenv("LOOM_DATABASE_URL", "postgresql://env/db")
    monkeypatch.setenv("LOOM_KAFKA_BOOTSTRAP_SERVERS", "env:9092")
    settings = Settings.from_env(database_url="postgresql://flag/db", bootstrap_servers=None)
    assert settings.database_url == "postgresql://flag/db"
    assert settings.bootstrap_servers == "env:9092"
