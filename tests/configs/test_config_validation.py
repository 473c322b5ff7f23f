"""The validator, the profiles and the per-client translations, derived from the field table."""

from __future__ import annotations

import pytest
from confluent_kafka import Consumer, KafkaException, ShareConsumer
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from loomctl import validation
from loomctl.consumer_config import (
    DEFAULTS,
    FIELDS,
    FIELDS_BY_NAME,
    PROFILES,
    RULES,
    client_fields,
    java_properties,
    kafkajs_options,
    librdkafka_properties,
)
from loomctl.errors import BadInput


def build_consumer(props: dict[str, str], *, share: bool = False) -> None:
    """Construct (and close) a real librdkafka consumer (a share consumer for a share group): no broker is contacted."""
    kind = ShareConsumer if share else Consumer
    kind({"group.id": "validator-oracle", "bootstrap.servers": "127.0.0.1:9", "log_level": 0, **props}).close()


def librdkafka_refuses(props: dict[str, str]) -> bool:
    try:
        build_consumer(props)
    except (KafkaException, ValueError, TypeError):
        return True
    return False


def naive_librdkafka(settings) -> dict[str, str]:
    """Straight name mapping without the translation's adjustments: what a client would get naively
    (of the fields its group protocol gives a client)."""
    props = {}
    for f in client_fields(settings):
        if f.librdkafka:
            value = settings[f.name]
            props[f.librdkafka] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return props


def in_range(f):
    if f.kind is bool:
        return st.booleans()
    if f.choices:
        return st.sampled_from(f.choices)
    return st.one_of(
        st.sampled_from([f.minimum, f.maximum, f.default]), st.integers(f.minimum, f.maximum),
        st.integers(f.minimum, max(f.minimum, min(f.maximum, f.default * 10))),
    )


def out_of_range(f):
    if f.kind is bool:
        return st.sampled_from(["maybe", 2])
    if f.choices:
        return st.sampled_from(["sticky", "smallest", "bogus", ""])
    return st.one_of(st.sampled_from([f.minimum - 1, f.maximum + 1]), st.integers(-(2**31), f.minimum - 1),
                     st.integers(f.maximum + 1, 2**40))


@st.composite
def configs(draw):
    """Mostly in-range values (so the cross-field rules are what decides), sometimes one out of range."""
    config = {f.name: draw(in_range(f)) for f in FIELDS}
    if draw(st.booleans()):  # half the time, pull the related fields into line so more configs pass
        config["max_poll_interval_ms"] = max(config["max_poll_interval_ms"], config["session_timeout_ms"])
        config["heartbeat_interval_ms"] = max(100, min(config["heartbeat_interval_ms"], config["session_timeout_ms"] // 3))
        config["reconnect_backoff_max_ms"] = max(config["reconnect_backoff_max_ms"], config["reconnect_backoff_ms"])
        config["fetch_max_wait_ms"] = min(config["fetch_max_wait_ms"], config["request_timeout_ms"] - 1000)
        config["fetch_min_bytes"] = min(config["fetch_min_bytes"], config["fetch_max_bytes"])
    if draw(st.integers(0, 3)) == 0:
        f = draw(st.sampled_from(FIELDS))
        config[f.name] = draw(out_of_range(f))
    return config


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs())
def test_accepted_configs_build_a_real_consumer_and_refused_ones_break_a_client_or_a_documented_rule(config):
    try:
        accepted = validation.check_settings(config)
    except validation.InvalidSettings as exc:
        event("refused")
        for problem in exc.problems:
            assert any(name in problem.message for name in problem.fields)
        out_of_range = [p for p in exc.problems if any(w in p.message for w in ("out of range", "not allowed", "not a "))]
        broken_rules = [r for r in RULES if all(n in config for n in r.fields) and not out_of_range and not r.holds(config)]
        assert out_of_range or broken_rules or librdkafka_refuses(naive_librdkafka(config))
        for problem in out_of_range:
            (name,) = problem.fields
            assert FIELDS_BY_NAME[name].describe_range() in problem.message
        return
    event("accepted")
    assert accepted == config
    build_consumer(librdkafka_properties(accepted), share=accepted["group_protocol"] == "share")
    # Every accepted config builds a consumer under both group protocols: the consumer protocol's
    # properties leave out what the broker owns, which librdkafka refuses to be given.
    if accepted["auto_offset_reset"] != "none":  # the one setting a share group has no form of
        event("accepted as a share group")
        build_consumer(librdkafka_properties({**accepted, "group_protocol": "share"}), share=True)
    for protocol in ("classic", "consumer"):
        event(f"accepted under {protocol}")
        props = librdkafka_properties({**accepted, "group_protocol": protocol})
        build_consumer(props)
        assert (props.get("group.protocol") == "consumer") == (protocol == "consumer")
        if protocol == "consumer":
            assert not {"session.timeout.ms", "heartbeat.interval.ms", "partition.assignment.strategy"} & props.keys()
            assert props["group.remote.assignor"] == accepted["group_remote_assignor"]
            assert librdkafka_refuses({**props, "session.timeout.ms": str(accepted["session_timeout_ms"])})


@pytest.mark.parametrize("name", list(PROFILES))
def test_profiles_are_valid_and_build_a_consumer(name):
    settings_ = PROFILES[name].full_settings()
    assert validation.check_settings(settings_) == settings_
    build_consumer(librdkafka_properties(settings_))


def test_profiles_follow_the_guide():
    ai, fast, io, writer = (PROFILES[n].full_settings() for n in ("ai-model", "fast", "io-bound", "database-writer"))
    assert ai["max_poll_records"] == 1 and 600_000 <= ai["max_poll_interval_ms"] <= 1_200_000
    assert ai["session_timeout_ms"] == 60_000
    assert 500 <= fast["max_poll_records"] <= 1000 and fast["max_poll_interval_ms"] == 60_000
    assert fast["fetch_max_wait_ms"] == 500
    assert 10 <= io["max_poll_records"] <= 20 and io["retry_backoff_ms"] == 5000 and io["request_timeout_ms"] == 60_000
    assert writer["max_poll_records"] == 1000 and writer["enable_auto_commit"] is False


def test_librdkafka_translation():
    props = librdkafka_properties({**DEFAULTS, "auto_offset_reset": "none", "retry_backoff_ms": 5000,
                                   "fetch_max_bytes": 4096})
    assert "max.poll.records" not in props and "fetch.max.wait.ms" not in props and "request.timeout.ms" not in props
    assert props["fetch.wait.max.ms"] == "500" and props["socket.timeout.ms"] == "30000"
    assert props["auto.offset.reset"] == "error"
    assert props["retry.backoff.max.ms"] == "5000"
    assert props["message.max.bytes"] == "4096"
    assert librdkafka_refuses(naive_librdkafka({**DEFAULTS, "fetch_max_bytes": 4096}))
    build_consumer(props)


def test_java_and_kafkajs_translation():
    java = java_properties(DEFAULTS)
    assert java["max.poll.records"] == "500" and java["request.timeout.ms"] == "30000"
    assert java["partition.assignment.strategy"] == "org.apache.kafka.clients.consumer.RangeAssignor"
    js = kafkajs_options({**DEFAULTS, "auto_offset_reset": "earliest"})
    assert js["consumer"]["sessionTimeout"] == 45_000 and js["consumer"]["maxWaitTimeInMs"] == 500
    assert js["consumer"]["rebalanceTimeout"] == 300_000 and js["consumer"]["readUncommitted"] is False
    assert js["subscribe"] == {"fromBeginning": True} and js["run"]["autoCommit"] is True


@pytest.mark.parametrize(("typo", "closest"), [("max_poll_record", "max_poll_records"), ("sesion_timeout_ms", "session_timeout_ms"),
                                               ("fetch-max-wait", "fetch_max_wait_ms")])
def test_unknown_key_names_the_closest_match_and_the_valid_keys(typo, closest):
    with pytest.raises(validation.UnknownField) as info:
        validation.parse_assignments([f"{typo}=5"])
    assert info.value.exit_code == 2
    assert f"did you mean {closest}?" in str(info.value)
    assert all(f.name in str(info.value) for f in FIELDS)


def test_client_spellings_are_accepted():
    assert validation.parse_assignments(["max.poll.records=7", "fetch.wait.max.ms=100", "enable.auto.commit=no"]) == {
        "max_poll_records": 7, "fetch_max_wait_ms": 100, "enable_auto_commit": False}


@pytest.mark.parametrize(("assignment", "words"), [
    ("max_poll_records=0", ["max_poll_records=0", "1..100,000 records"]),
    ("max_poll_records=lots", ["max_poll_records=lots", "whole number"]),
    ("enable_auto_commit=maybe", ["enable_auto_commit", "true or false"]),
    ("partition_assignment_strategy=sticky", ["sticky", "cooperative-sticky", "librdkafka"]),
])
def test_bad_value_names_field_value_and_allowed_range(assignment, words):
    with pytest.raises(BadInput) as info:
        validation.check_settings(validation.parse_assignments([assignment]))
    assert info.value.exit_code == 2
    for word in words:
        assert word in str(info.value)


def test_cross_field_rule_names_the_reason():
    with pytest.raises(validation.InvalidSettings) as info:
        validation.check_settings({"session_timeout_ms": 60_000, "max_poll_interval_ms": 30_000})
    assert "librdkafka refuses max_poll_interval_ms below session_timeout_ms" in str(info.value)
    assert "max_poll_interval_ms=30000" in str(info.value)


@given(st.text(min_size=1, max_size=30).filter(lambda s: "=" not in s))
def test_any_unknown_key_is_bad_input(key):
    try:
        name = validation.normalize_key(key)
    except validation.UnknownField as exc:
        assert exc.exit_code == 2 and "valid settings:" in str(exc)
    else:
        assert name in FIELDS_BY_NAME


@pytest.mark.parametrize(("name", "value"), [("enable_auto_commit", 2), ("enable_auto_commit", "maybe"),
                                             ("max_poll_records", True), ("max_poll_records", "5"),
                                             ("auto_offset_reset", 1)])
def test_values_of_the_wrong_type_are_refused(name, value):
    with pytest.raises(validation.InvalidSettings) as info:
        validation.check_settings({name: value})
    assert name in str(info.value)


def test_consumer_protocol_properties_leave_out_what_the_broker_owns():
    consumer = {**DEFAULTS, "group_protocol": "consumer", "group_remote_assignor": "range"}
    for props in (librdkafka_properties(consumer), java_properties(consumer)):
        assert props["group.protocol"] == "consumer" and props["group.remote.assignor"] == "range"
        assert not {"session.timeout.ms", "heartbeat.interval.ms", "partition.assignment.strategy"} & props.keys()
    # classic output is what it was before the consumer protocol existed: no group.protocol at all
    for props in (librdkafka_properties(DEFAULTS), java_properties(DEFAULTS)):
        assert "group.protocol" not in props and "group.remote.assignor" not in props
        assert props["session.timeout.ms"] == "45000"
    build_consumer(librdkafka_properties(consumer))
