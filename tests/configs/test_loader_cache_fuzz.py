"""The loader's disk cache never fails a service: whatever a cache file holds, load_config with the
config database unreachable gives a config a client accepts (from the file, with the table's default
for each value it refuses, or the defaults), with at most one warning, in well under a second.

The property runs over arbitrary bytes, arbitrary JSON (NaN, huge numbers, deep nesting) and cache
documents with every field of the wrong type, out of range, or missing; a subprocess then builds real
confluent-kafka consumers from the files that once aborted the process, and a FIFO and a sparse
300 MB file are never waited on or read.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg_pool import ConnectionPool

from loomctl.consumer_config import DEFAULTS, FIELDS, RULES
from loomctl.loader import CACHE_MAX_BYTES, ConsumerConfigLoader, ConsumerSettings
from loomctl.validation import check_group_id, check_settings

SCALE = float(os.environ.get("LOOM_FUZZ_SCALE", "1"))
"""``LOOM_FUZZ_SCALE=0.1`` runs a tenth of the cases, as in tests/test_fuzz.py."""
EXAMPLES = 2000
SERVICE = "fuzzed-service"
SECRET = "Zq7-secret-Xv9"
"""Planted in cache files: no warning may repeat it (a warning names the field, never its value)."""
DOWN_URL = "postgresql://loom:secret@127.0.0.1:1/loom?connect_timeout=2"


class _Down:
    """A psycopg pool whose database is down: every connection fails at once (a refused port takes a second a try)."""

    @contextlib.contextmanager
    def connection(self, timeout: float | None = None) -> Iterator[Any]:
        raise psycopg.OperationalError("connection refused")
        yield  # pragma: no cover


class _Warnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzzed-cache")


@pytest.fixture
def warnings() -> Iterator[_Warnings]:
    handler = _Warnings()
    logger = logging.getLogger("loomctl.loader")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


# --- what a cache file may hold ---

_numbers = st.one_of(
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 1, 2**31, 2**63, 10**30, 10**400, 1e30, 1e308, -5, 0.5, 500.0, True, False]),
)
_scalars = st.one_of(st.none(), st.booleans(), _numbers, st.text(max_size=30), st.just(SECRET), st.just(""))
_json = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=20,
)


def _field_values(name: str) -> st.SearchStrategy[Any]:
    """Values for one setting: its good ones, its edges and one past them, and the wrong kinds."""
    f = next(f for f in FIELDS if f.name == name)
    good: list[Any] = [f.default]
    if f.choices:
        good += [*f.choices, f.choices[0].upper(), f.choices[0] + " ", "sideways"]
    elif f.kind is bool:
        good += [True, False, "true", 1, 0]
    else:
        assert f.minimum is not None and f.maximum is not None
        good += [f.minimum, f.maximum, f.minimum - 1, f.maximum + 1, float(f.default), str(f.default), -f.maximum]
    return st.one_of(st.sampled_from(good), _scalars, _json)


_settings = st.one_of(
    st.fixed_dictionaries({}, optional={f.name: _field_values(f.name) for f in FIELDS}),
    st.dictionaries(st.sampled_from([f.name for f in FIELDS] + ["unknown", "", "max.poll.records"]), _json, max_size=6),
    _json,
)
_group_ids = st.one_of(
    st.just(f"{SERVICE}-group"),
    st.none(),
    st.just(""),
    st.just(" "),
    st.just("a\x00b"),
    st.just("tab\there"),
    st.just("x" * 300),
    st.text(max_size=20),
    _json,
)
_documents = st.fixed_dictionaries(
    {},
    optional={
        "service_name": st.one_of(st.just(SERVICE), st.just(SERVICE), st.just("other-service"), _scalars),
        "consumer_group_id": _group_ids,
        "version": st.one_of(st.integers(min_value=-1, max_value=10**6), _scalars),
        "loaded_at": st.one_of(st.floats(), _scalars),
        "settings": _settings,
    },
)


def _dumped(document: Any) -> bytes:
    return json.dumps(document, allow_nan=True).encode()  # NaN and Infinity as Python writes them


@st.composite
def _nested(draw: st.DrawFn) -> bytes:
    depth = draw(st.integers(min_value=1, max_value=100_000))
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
    inner = f'{{"service_name": "{SERVICE}", "consumer_group_id": "g", "settings": ' + opener * depth + "1" + closer * depth + "}"
    return draw(st.sampled_from([(opener * depth + closer * depth).encode(), inner.encode()]))


@st.composite
def _mangled(draw: st.DrawFn) -> bytes:
    """A good document with bytes cut, flipped or inserted."""
    raw = bytearray(_dumped({"service_name": SERVICE, "consumer_group_id": "g", "version": 3, "settings": dict(DEFAULTS)}))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        at = draw(st.integers(min_value=0, max_value=len(raw) - 1))
        action = draw(st.sampled_from(["cut", "flip", "insert"]))
        if action == "cut":
            del raw[at:]
        elif action == "flip":
            raw[at] = draw(st.integers(min_value=0, max_value=255))
        else:
            raw[at:at] = draw(st.binary(min_size=1, max_size=8))
        if not raw:
            break
    return bytes(raw)


cache_files = st.one_of(
    _documents.map(_dumped),
    _documents.map(_dumped),
    _json.map(_dumped),
    st.binary(max_size=2000),
    _nested(),
    _mangled(),
)


# --- what load_config must give ---


def _assert_usable(config: ConsumerSettings, loader: ConsumerConfigLoader) -> None:
    assert isinstance(config, ConsumerSettings) and config.source in ("cache", "defaults")
    assert config.service_name == SERVICE
    check_group_id(config.consumer_group_id)
    assert set(config) == set(DEFAULTS)
    check_settings(dict(config))  # every value of the right type and in range: raises InvalidSettings otherwise
    for f in FIELDS:
        assert type(config[f.name]) is f.kind, (f.name, config[f.name])
    assert all(rule.holds(config) for rule in RULES)
    assert 1 <= config.max_poll_records <= 100_000
    assert config.version is None or type(config.version) is int
    assert math.isfinite(config.loaded_at)
    props = loader.consumer_properties(config, "127.0.0.1:9", None)
    assert isinstance(props["group.id"], str) and props["group.id"].strip()
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in props.items())


@settings(
    max_examples=max(1, int(EXAMPLES * SCALE)),
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)
@given(raw=cache_files)
def test_any_cache_file_gives_a_usable_config_with_at_most_one_warning(cache_dir, warnings, raw):
    (cache_dir / f"{SERVICE}.json").write_bytes(raw)
    warnings.messages.clear()
    loader = ConsumerConfigLoader(_Down(), cache_dir=cache_dir, retry_seconds=0)
    started = time.monotonic()
    config = loader.load_config(SERVICE)  # any exception, RecursionError and TypeError included, fails the test
    assert time.monotonic() - started < 5
    _assert_usable(config, loader)
    assert len(warnings.messages) == 1, warnings.messages
    assert "config database unavailable" in warnings.messages[0] and SECRET not in warnings.messages[0]
    if config.source == "defaults":
        assert dict(config) == dict(DEFAULTS) and config.consumer_group_id == SERVICE


def _write(cache_dir: Path, document: Any) -> None:
    (cache_dir / f"{SERVICE}.json").write_bytes(_dumped(document) if not isinstance(document, bytes) else document)


def _load(cache_dir: Path) -> ConsumerSettings:
    return ConsumerConfigLoader(_Down(), cache_dir=cache_dir, retry_seconds=0).load_config(SERVICE)


GOOD = {"service_name": SERVICE, "consumer_group_id": "svc-group", "version": 4, "loaded_at": 1.5}


@pytest.mark.parametrize(
    ("settings_", "expected", "named"),
    [
        ({"max_poll_records": "abc", "fetch_max_wait_ms": 100}, {"max_poll_records": 500, "fetch_max_wait_ms": 100}, "max_poll_records"),
        ({"max_poll_records": -5}, {"max_poll_records": 500}, "max_poll_records"),
        ({"max_poll_records": 1e30}, {"max_poll_records": 500}, "max_poll_records"),
        ({"max_poll_records": math.nan}, {"max_poll_records": 500}, "max_poll_records"),
        ({"max_poll_records": True}, {"max_poll_records": 500}, "max_poll_records"),
        ({"max_poll_records": 7.0}, {"max_poll_records": 500}, "max_poll_records"),
        ({"auto_offset_reset": "sideways", "max_poll_records": 7}, {"auto_offset_reset": "latest", "max_poll_records": 7}, "auto_offset_reset"),
        ({"enable_auto_commit": "false"}, {"enable_auto_commit": True}, "enable_auto_commit"),
        # each value in range, together breaking a rule librdkafka enforces: both take their defaults
        ({"session_timeout_ms": 60_000, "max_poll_interval_ms": 10_000}, {"session_timeout_ms": 45_000, "max_poll_interval_ms": 300_000}, "max_poll_interval_ms"),
    ],
)
def test_a_refused_value_takes_the_tables_default_and_the_rest_is_used(cache_dir, warnings, settings_, expected, named):
    _write(cache_dir, {**GOOD, "settings": {**settings_, "isolation_level": "read_uncommitted"}})
    config = _load(cache_dir)
    assert config.source == "cache" and config.consumer_group_id == "svc-group" and config.version == 4
    assert {k: config[k] for k in expected} == expected and config["isolation_level"] == "read_uncommitted"
    assert len(warnings.messages) == 1
    message = warnings.messages[0]
    assert "using the cached config" in message and str(cache_dir / f"{SERVICE}.json") in message and named in message


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ({**GOOD, "consumer_group_id": None, "settings": {}}, "consumer_group_id"),
        ({**GOOD, "consumer_group_id": "", "settings": {}}, "consumer_group_id"),
        ({**GOOD, "settings": [1, 2]}, "settings are no JSON object"),
        ({**GOOD, "settings": "max_poll_records=5"}, "settings are no JSON object"),
        ({**GOOD, "settings": None}, "settings are no JSON object"),
        ({**GOOD, "service_name": "other-service", "settings": {}}, "another service"),
        ([GOOD], "no JSON object"),
        (b"[" * 100_000 + b"]" * 100_000, "nests too deeply"),
        (b'{"settings": ' + b'{"a":' * 5_000 + b"1" + b"}" * 5_001, "nests too deeply"),
        (b"\xff\xfe{}", "not valid JSON"),
        (b'{"service_name": "' + SERVICE.encode() + b'", "version": ' + b"9" * 5000 + b"}", "not valid JSON"),
    ],
)
def test_a_file_that_is_no_usable_cache_means_the_defaults_with_one_warning(cache_dir, warnings, document, reason):
    _write(cache_dir, document)
    config = _load(cache_dir)
    assert config.source == "defaults" and dict(config) == dict(DEFAULTS) and config.consumer_group_id == SERVICE
    assert len(warnings.messages) == 1 and reason in warnings.messages[0], warnings.messages
    assert str(cache_dir / f"{SERVICE}.json") in warnings.messages[0] and "using the defaults" in warnings.messages[0]


def test_a_fifo_in_the_cache_folder_is_never_waited_on(tmp_path, warnings):
    os.mkfifo(tmp_path / f"{SERVICE}.json")
    with ConnectionPool(DOWN_URL, min_size=0, max_size=1, open=True) as down:
        loader = ConsumerConfigLoader(down, cache_dir=tmp_path, connect_timeout=1, retry_seconds=0)
        started = time.monotonic()
        config = loader.load_config(SERVICE)
    assert time.monotonic() - started < 10
    assert config.source == "defaults"
    assert [m for m in warnings.messages if "not a regular file" in m and "using the defaults" in m]
    assert "secret" not in " ".join(warnings.messages)


def test_a_directory_in_the_place_of_the_cache_file_is_no_cache(tmp_path, warnings):
    (tmp_path / f"{SERVICE}.json").mkdir()
    config = ConsumerConfigLoader(_Down(), cache_dir=tmp_path).load_config(SERVICE)
    assert config.source == "defaults" and "not a regular file" in warnings.messages[0]


def test_an_oversized_cache_file_is_not_read(tmp_path, warnings):
    path = tmp_path / f"{SERVICE}.json"
    path.write_bytes(_dumped({**GOOD, "settings": {"max_poll_records": 7}}))
    os.truncate(path, 300 * 1024 * 1024)  # sparse: no 300 MB written
    started = time.monotonic()
    config = ConsumerConfigLoader(_Down(), cache_dir=tmp_path).load_config(SERVICE)
    assert time.monotonic() - started < 1, "the file was read"
    assert config.source == "defaults" and "314,572,800 bytes" in warnings.messages[0]
    # one byte under the limit is read (and here refused as JSON with trailing NULs), one byte over is not
    os.truncate(path, CACHE_MAX_BYTES)
    warnings.messages.clear()
    assert _load(tmp_path).source == "defaults" and "not valid JSON" in warnings.messages[0]


def test_a_good_cache_file_is_used_as_it_was_written(cache_dir, warnings):
    stored = {**DEFAULTS, "max_poll_records": 7, "auto_offset_reset": "earliest", "session_timeout_ms": 60_000}
    _write(cache_dir, {**GOOD, "settings": {**stored, "a_field_from_a_newer_table": 1}})
    config = _load(cache_dir)
    assert config.source == "cache" and dict(config) == stored and config.loaded_at == 1.5
    assert len(warnings.messages) == 1 and "refuses" not in warnings.messages[0]


ABORTED_ONCE = [
    {**GOOD, "consumer_group_id": None, "settings": {}},
    {**GOOD, "consumer_group_id": "", "settings": {}},
    {**GOOD, "consumer_group_id": "   ", "settings": {}},
    {**GOOD, "settings": {"auto_offset_reset": "sideways", "max_poll_records": "abc"}},
    {**GOOD, "settings": {"max_poll_records": 1e30, "fetch_max_bytes": -1, "isolation_level": None}},
    {**GOOD, "settings": {"session_timeout_ms": 60_000, "max_poll_interval_ms": 10_000, "heartbeat_interval_ms": 59_000}},
    {**GOOD, "settings": {"group_protocol": "consumer", "session_timeout_ms": 10**12}},
    {**GOOD, "settings": [1]},
]


def test_consumers_built_from_bad_cache_files_never_abort_the_process(tmp_path):
    """In a subprocess, since librdkafka's assertion kills the interpreter: each file, then a real Consumer from it."""
    for i, document in enumerate(ABORTED_ONCE):
        (tmp_path / f"case-{i}").mkdir()
        _write(tmp_path / f"case-{i}", document)
    code = textwrap.dedent(
        f"""
        import contextlib, logging, sys
        import psycopg
        from pathlib import Path
        from loomctl.loader import ConsumerConfigLoader

        class Down:
            @contextlib.contextmanager
            def connection(self, timeout=None):
                raise psycopg.OperationalError("connection refused")
                yield

        logging.disable(logging.CRITICAL)
        for i in range({len(ABORTED_ONCE)}):
            loader = ConsumerConfigLoader(Down(), cache_dir=Path(sys.argv[1]) / f"case-{{i}}")
            consumer = loader.create_consumer({SERVICE!r}, [], bootstrap_servers="127.0.0.1:9",
                                              config_overrides={{"log_level": 0}})
            consumer.close()
            print("built", i, flush=True)
        """
    )
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr[-3000:]}"
    assert result.stdout.split("\n").count("") == 1 and f"built {len(ABORTED_ONCE) - 1}" in result.stdout


@pytest.mark.parametrize("group", [None, "", "  ", 5])
def test_no_group_id_that_aborts_librdkafka_reaches_the_consumer(cache_dir, group):
    loader = ConsumerConfigLoader(_Down(), cache_dir=cache_dir)
    with pytest.raises(ValueError, match="group.id must be a consumer group id"):
        loader.create_consumer(SERVICE, [], bootstrap_servers="127.0.0.1:9", config_overrides={"group.id": group})
