"""The one table of consumer settings: ranges, defaults, units and per-client names.

Validation, the database's CHECK constraints, `config profiles`, the exports and the docs are
all derived from FIELDS and RULES below, so the database cannot hold a config that a client
refuses. Names are the Java client's, in snake_case, as in the guide.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

ASSIGNORS = ("range", "roundrobin", "cooperative-sticky")
"""Assignors that librdkafka and the Java client both ship. librdkafka has no eager `sticky`."""
GROUP_PROTOCOLS = ("classic", "consumer", "share")
"""`classic`: the client-side rebalance protocol; `consumer`: KIP-848 (Kafka 4), where the broker assigns
partitions and owns the session timeout and heartbeat interval; `share`: a share group (KIP-932, Kafka 4.2),
whose members take records from the same partitions one by one, and whose broker owns the session timeout,
heartbeat interval, offset reset, isolation level and record lock duration."""
REMOTE_ASSIGNORS = ("uniform", "range")
"""The server-side assignors Kafka 4 ships (`group.consumer.assignors`), for the consumer protocol."""
BROKER_OWNED = ("session_timeout_ms", "heartbeat_interval_ms")
"""Settings the broker owns under the consumer protocol: set as group configs (`config push`), never by the client."""
GROUP_CONFIGS: Mapping[str, str] = {
    "session_timeout_ms": "consumer.session.timeout.ms",
    "heartbeat_interval_ms": "consumer.heartbeat.interval.ms",
}
"""The broker's group config (a GROUP resource's config) for each broker-owned setting."""
SHARE_GROUP_CONFIGS: Mapping[str, str] = {
    "session_timeout_ms": "share.session.timeout.ms",
    "heartbeat_interval_ms": "share.heartbeat.interval.ms",
    "auto_offset_reset": "share.auto.offset.reset",
    "isolation_level": "share.isolation.level",
    "record_lock_duration_ms": "share.record.lock.duration.ms",
}
"""A share group's group configs: the broker owns all of these, and a share consumer refuses each of them."""
GROUP_CONFIG_NAMES: tuple[str, ...] = (*GROUP_CONFIGS.values(), *SHARE_GROUP_CONFIGS.values())
"""Every group config loomctl reads and pushes."""
CLIENT_SIDE_ONLY = ("session_timeout_ms", "heartbeat_interval_ms", "partition_assignment_strategy")
"""What a consumer-protocol client must not be given: librdkafka refuses to build a consumer with any of them."""
SHARE_ACKNOWLEDGEMENT_MODES: Mapping[bool, str] = {True: "implicit", False: "explicit"}
"""A share consumer's share.acknowledgement.mode for enable_auto_commit: records accepted on the next poll, or
acknowledged by the application (the database writer's commit after each write)."""


LIVE, RECREATE, BROKER, UNUSED = "live", "recreate", "broker", "unused"
RELOAD_CLASSES: Mapping[str, str] = {
    LIVE: "applied by the loaders at the next poll",
    RECREATE: "applied by the loaders recreating the client at a safe point (processed records committed, then a rejoin)",
    BROKER: "applied on the broker, by `loomctl config push` (a group config)",
    UNUSED: "not used by this group type",
}
"""How a changed setting reaches a running service (issue of the guide's UPDATE): the loader's own batching at the
next poll; a client property, which librdkafka and KafkaJS fix per client, by a new client; a group config of the
consumer protocol or a share group on the broker."""


@dataclass(frozen=True)
class Field:
    name: str
    kind: type  # int, bool or str
    default: Any
    description: str
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[str, ...] | None = None
    unit: str | None = None
    java: str | None = None
    librdkafka: str | None = None  # None: librdkafka has no such property
    kafkajs: str | None = None  # None: KafkaJS has no such option
    reload: str = RECREATE  # LIVE: the loader's own; RECREATE: a client property (BROKER: see reload_class)

    def describe_range(self) -> str:
        if self.choices:
            return "one of " + ", ".join(self.choices)
        if self.kind is bool:
            return "true or false"
        unit = f" {self.unit}" if self.unit else ""
        return f"{self.minimum:,}..{self.maximum:,}{unit}"


MAX_INT32 = 2_147_483_647

FIELDS: tuple[Field, ...] = (
    Field(
        "max_poll_records",
        int,
        500,
        "Most records handed to the application per poll (batch size).",
        1,
        100_000,
        unit="records",
        java="max.poll.records",
        librdkafka=None,
        kafkajs=None,
        reload=LIVE,
    ),
    Field(
        "max_poll_interval_ms",
        int,
        300_000,
        "Longest time between polls before the member is evicted.",
        1_000,
        86_400_000,
        unit="ms",
        java="max.poll.interval.ms",
        librdkafka="max.poll.interval.ms",
        kafkajs="rebalanceTimeout",
    ),
    Field(
        "session_timeout_ms",
        int,
        45_000,
        "Time without heartbeats before the broker drops the member.",
        1_000,
        3_600_000,
        unit="ms",
        java="session.timeout.ms",
        librdkafka="session.timeout.ms",
        kafkajs="sessionTimeout",
    ),
    Field(
        "heartbeat_interval_ms",
        int,
        3_000,
        "How often the consumer heartbeats to the group coordinator.",
        100,
        1_200_000,
        unit="ms",
        java="heartbeat.interval.ms",
        librdkafka="heartbeat.interval.ms",
        kafkajs="heartbeatInterval",
    ),
    Field(
        "fetch_min_bytes",
        int,
        1,
        "Least data the broker waits for before answering a fetch.",
        1,
        100_000_000,
        unit="bytes",
        java="fetch.min.bytes",
        librdkafka="fetch.min.bytes",
        kafkajs="minBytes",
    ),
    Field(
        "fetch_max_bytes",
        int,
        52_428_800,
        "Most data returned by one fetch request.",
        1_024,
        2_147_483_135,
        unit="bytes",
        java="fetch.max.bytes",
        librdkafka="fetch.max.bytes",
        kafkajs="maxBytes",
    ),
    Field(
        "fetch_max_wait_ms",
        int,
        500,
        "Longest the broker waits to fill fetch_min_bytes.",
        0,
        300_000,
        unit="ms",
        java="fetch.max.wait.ms",
        librdkafka="fetch.wait.max.ms",
        kafkajs="maxWaitTimeInMs",
    ),
    Field(
        "max_partition_fetch_bytes",
        int,
        1_048_576,
        "Most data returned per partition by one fetch.",
        1,
        1_000_000_000,
        unit="bytes",
        java="max.partition.fetch.bytes",
        librdkafka="max.partition.fetch.bytes",
        kafkajs="maxBytesPerPartition",
    ),
    Field(
        "request_timeout_ms",
        int,
        30_000,
        "Network request timeout (librdkafka: socket.timeout.ms).",
        1_000,
        300_000,
        unit="ms",
        java="request.timeout.ms",
        librdkafka="socket.timeout.ms",
        kafkajs="requestTimeout",
    ),
    Field(
        "retry_backoff_ms",
        int,
        100,
        "Pause before retrying a failed request.",
        1,
        300_000,
        unit="ms",
        java="retry.backoff.ms",
        librdkafka="retry.backoff.ms",
        kafkajs="retry.initialRetryTime",
    ),
    Field(
        "reconnect_backoff_ms",
        int,
        50,
        "First pause before reconnecting to a broker.",
        0,
        3_600_000,
        unit="ms",
        java="reconnect.backoff.ms",
        librdkafka="reconnect.backoff.ms",
        kafkajs=None,
    ),
    Field(
        "reconnect_backoff_max_ms",
        int,
        1_000,
        "Longest pause between reconnects (exponential backoff cap).",
        0,
        3_600_000,
        unit="ms",
        java="reconnect.backoff.max.ms",
        librdkafka="reconnect.backoff.max.ms",
        kafkajs=None,
    ),
    Field(
        "enable_auto_commit",
        bool,
        True,
        "Commit offsets in the background; false to commit after processing.",
        java="enable.auto.commit",
        librdkafka="enable.auto.commit",
        kafkajs="autoCommit",
    ),
    Field(
        "auto_commit_interval_ms",
        int,
        5_000,
        "How often auto-commit commits.",
        0,
        86_400_000,
        unit="ms",
        java="auto.commit.interval.ms",
        librdkafka="auto.commit.interval.ms",
        kafkajs="autoCommitInterval",
    ),
    Field(
        "auto_offset_reset",
        str,
        "latest",
        "Where to start without a committed offset.",
        choices=("earliest", "latest", "none"),
        java="auto.offset.reset",
        librdkafka="auto.offset.reset",
        kafkajs="fromBeginning",
    ),
    Field(
        "partition_assignment_strategy",
        str,
        "range",
        "How partitions are spread over group members.",
        choices=ASSIGNORS,
        java="partition.assignment.strategy",
        librdkafka="partition.assignment.strategy",
        kafkajs="partitionAssigners",
    ),
    Field(
        "isolation_level",
        str,
        "read_committed",
        "Whether to read records of open or aborted transactions.",
        choices=("read_committed", "read_uncommitted"),
        java="isolation.level",
        librdkafka="isolation.level",
        kafkajs="readUncommitted",
    ),
    Field(
        "group_protocol",
        str,
        "classic",
        "Group protocol: classic (client-side rebalances), consumer (KIP-848, Kafka 4: the broker assigns "
        "partitions and owns the session timeout and heartbeat; see `config push`) or share (a share group, KIP-932: "
        "queue-like delivery; the broker also owns the offset reset, isolation level and record lock duration).",
        choices=GROUP_PROTOCOLS,
        java="group.protocol",
        librdkafka="group.protocol",
        kafkajs=None,
    ),
    Field(
        "group_remote_assignor",
        str,
        "uniform",
        "Server-side assignor the consumer protocol asks the broker for (unused under classic).",
        choices=REMOTE_ASSIGNORS,
        java="group.remote.assignor",
        librdkafka="group.remote.assignor",
        kafkajs=None,
    ),
    Field(
        "record_lock_duration_ms",
        int,
        30_000,
        "Share groups: how long a delivered record stays acquired by its consumer before it is released to "
        "another (group config share.record.lock.duration.ms, set by `config push`; unused by other groups).",
        1_000,
        3_600_000,
        unit="ms",
        java=None,
        librdkafka=None,
        kafkajs=None,
    ),
)

FIELDS_BY_NAME: Mapping[str, Field] = {f.name: f for f in FIELDS}
DEFAULTS: Mapping[str, Any] = {f.name: f.default for f in FIELDS}


@dataclass(frozen=True)
class Rule:
    """A rule across fields, held by the validator and by a CHECK constraint alike."""

    name: str
    fields: tuple[str, ...]
    sql: str
    holds: Callable[[Mapping[str, Any]], bool]
    reason: str


RULES: tuple[Rule, ...] = (
    Rule(
        "poll_interval_covers_session",
        ("max_poll_interval_ms", "session_timeout_ms"),
        "max_poll_interval_ms >= session_timeout_ms",
        lambda c: c["max_poll_interval_ms"] >= c["session_timeout_ms"],
        "librdkafka refuses max_poll_interval_ms below session_timeout_ms",
    ),
    Rule(
        "heartbeat_third_of_session",
        ("heartbeat_interval_ms", "session_timeout_ms"),
        "heartbeat_interval_ms * 3 <= session_timeout_ms",
        lambda c: c["heartbeat_interval_ms"] * 3 <= c["session_timeout_ms"],
        "heartbeat_interval_ms must be at most a third of session_timeout_ms, or one lost heartbeat evicts the member",
    ),
    Rule(
        "reconnect_backoff_ordered",
        ("reconnect_backoff_ms", "reconnect_backoff_max_ms"),
        "reconnect_backoff_max_ms >= reconnect_backoff_ms",
        lambda c: c["reconnect_backoff_max_ms"] >= c["reconnect_backoff_ms"],
        "reconnect_backoff_max_ms must not be below reconnect_backoff_ms",
    ),
    Rule(
        "request_timeout_covers_fetch_wait",
        ("request_timeout_ms", "fetch_max_wait_ms"),
        "request_timeout_ms >= fetch_max_wait_ms + 1000",
        lambda c: c["request_timeout_ms"] >= c["fetch_max_wait_ms"] + 1000,
        "librdkafka needs request_timeout_ms (socket.timeout.ms) at least 1000 ms above fetch_max_wait_ms",
    ),
    Rule(
        "fetch_min_within_fetch_max",
        ("fetch_min_bytes", "fetch_max_bytes"),
        "fetch_min_bytes <= fetch_max_bytes",
        lambda c: c["fetch_min_bytes"] <= c["fetch_max_bytes"],
        "fetch_min_bytes above fetch_max_bytes can never be satisfied, so every fetch waits fetch_max_wait_ms",
    ),
    Rule(
        "share_offset_reset",
        ("group_protocol", "auto_offset_reset"),
        "group_protocol <> 'share' OR auto_offset_reset IN ('earliest', 'latest')",
        lambda c: c["group_protocol"] != "share" or c["auto_offset_reset"] in ("earliest", "latest"),
        "a share group starts at the earliest or the latest offset (share.auto.offset.reset): auto_offset_reset=none "
        "has no share-group form",
    ),
)


def _sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def check_constraints() -> dict[str, str]:
    """CHECK constraint name suffix -> SQL condition, for the `pipeline_consumer_configs` table."""
    checks: dict[str, str] = {}
    for f in FIELDS:
        if f.choices:
            checks[f.name] = f"{f.name} IN ({', '.join(_sql_literal(c) for c in f.choices)})"
        elif f.kind is int:
            checks[f.name] = f"{f.name} BETWEEN {f.minimum} AND {f.maximum}"
    for rule in RULES:
        checks[rule.name] = rule.sql
    return checks


# --- profiles: the guide's four "Configuration Guidelines", with concrete values in its ranges ---


@dataclass(frozen=True)
class Profile:
    name: str
    title: str
    description: str
    settings: Mapping[str, Any]
    """Only the fields the guideline names (and what the rules then require); the rest stay default."""
    examples: tuple[str, ...] = ()
    lag_slo_seconds: int | None = None
    """The lag objective of a service of this profile that sets none of its own."""

    def full_settings(self) -> dict[str, Any]:
        """Every field: the defaults overlaid with this profile."""
        return {**DEFAULTS, **self.settings}


PROFILES: Mapping[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            "ai-model",
            "AI model services (GPU-intensive)",
            "One message at a time with a long poll interval, so a slow inference never triggers a rebalance.",
            # The guide's 600000-1200000 ms poll interval: the middle of it. A 60 s session needs a
            # heartbeat of at most 20 s; 15 s leaves room for one late heartbeat.
            {
                "max_poll_records": 1,
                "max_poll_interval_ms": 900_000,
                "session_timeout_ms": 60_000,
                "heartbeat_interval_ms": 15_000,
            },
            ("moondream-vision-processor", "minicpm-ocr-processor"),
            600,
        ),
        Profile(
            "fast",
            "Fast processing services",
            "Large batches collected for up to 500 ms; a stuck member is noticed within a minute.",
            # The guide says 500-1000 records; its best practice 1 says start conservative.
            {"max_poll_records": 500, "max_poll_interval_ms": 60_000, "fetch_max_wait_ms": 500},
            ("silero-vad-processor", "motion-event-filter"),
            30,
        ),
        Profile(
            "io-bound",
            "I/O bound services",
            "Small batches, patient retries and long request timeouts for services that wait on other systems.",
            {"max_poll_records": 10, "retry_backoff_ms": 5_000, "request_timeout_ms": 60_000},
            ("geocoding-processor", "url-scraper"),
            120,
        ),
        Profile(
            "database-writer",
            "Database writers",
            "Large batches, offsets committed by the service after each database write.",
            {"max_poll_records": 1_000, "enable_auto_commit": False},
            ("timescale-writer", "analytics-aggregator"),
            60,
        ),
    )
}


# Each profile's default objective, after the guide's categories: a GPU model takes minutes a message and polls within
# 15 minutes, so ten minutes behind; fast processing seconds; I/O-bound services retry remote calls for seconds at a
# time, so two minutes; database writers commit after each bulk write, so a minute.


def profile_objective_sql(profile: str) -> str:
    """SQL for the lag objective of the profile named by the expression ``profile`` (NULL for none): the profiles'
    objectives as the SQL function lag_objectives (version 2 on) reads them, generated from :data:`PROFILES`."""
    whens = " ".join(f"WHEN {_sql_literal(p.name)} THEN {p.lag_slo_seconds}" for p in PROFILES.values() if p.lag_slo_seconds)
    return f"CASE {profile} {whens} END"


# --- per-client names and values ---

CLIENTS = ("librdkafka", "java", "kafkajs")

# Values a client spells differently from the Java client (field -> stored value -> client value).
LIBRDKAFKA_VALUES: Mapping[str, Mapping[Any, str]] = {
    "auto_offset_reset": {"none": "error"},  # librdkafka's name for "raise when there is no offset"
}
JAVA_VALUES: Mapping[str, Mapping[Any, str]] = {
    "partition_assignment_strategy": {
        "range": "org.apache.kafka.clients.consumer.RangeAssignor",
        "roundrobin": "org.apache.kafka.clients.consumer.RoundRobinAssignor",
        "cooperative-sticky": "org.apache.kafka.clients.consumer.CooperativeStickyAssignor",
    },
}

# librdkafka defaults that a stored value can collide with (see librdkafka_properties).
LIBRDKAFKA_MESSAGE_MAX_BYTES = 1_000_000
LIBRDKAFKA_MESSAGE_MAX_BYTES_MIN = 1_000
LIBRDKAFKA_RETRY_BACKOFF_MAX_MS = 1_000


def _property_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def uses_consumer_protocol(settings: Mapping[str, Any]) -> bool:
    return settings.get("group_protocol", "classic") == "consumer"


def uses_share_group(settings: Mapping[str, Any]) -> bool:
    return settings.get("group_protocol", "classic") == "share"


def broker_owned(settings: Mapping[str, Any]) -> Mapping[str, str]:
    """Field -> the group config the broker owns it as, for these settings' group type (empty for classic)."""
    protocol = settings.get("group_protocol", "classic")
    if protocol == "share":
        return SHARE_GROUP_CONFIGS
    if protocol == "consumer":
        return GROUP_CONFIGS
    return {}


def reload_class(name: str, settings: Mapping[str, Any]) -> str:
    """How a change of ``name`` reaches a running service with these settings, the changed ones
    (:data:`RELOAD_CLASSES`): on the broker for what the group type's broker owns, not at all for what its clients are
    not given, else the field's own class. A new consumer group id or group protocol is a new client."""
    if name in ("consumer_group_id", "group_protocol"):
        return RECREATE  # another group, or another protocol (whose broker side `config push` then sets)
    if name in broker_owned(settings):
        return BROKER
    field = FIELDS_BY_NAME[name]
    if field.reload == LIVE:
        return LIVE
    if uses_share_group(settings) and name == "enable_auto_commit":
        return RECREATE  # a share consumer's share.acknowledgement.mode
    if field not in client_fields(settings) or (field.librdkafka is None and field.kafkajs is None):
        return UNUSED
    return RECREATE


def reload_class_sql(field: str) -> str:
    """SQL for :func:`reload_class` of the field named by the expression ``field``, for the group protocol named by
    ``protocol`` in the same scope (NULL for a column that is no client setting): generated from the field table, so
    the raw UPDATE's notice and `config set` say the same."""
    whens = ["WHEN {f} IN ('consumer_group_id', 'group_protocol') THEN 'recreate'"]
    for protocol in GROUP_PROTOCOLS:
        settings = {**DEFAULTS, "group_protocol": protocol}
        for cls in (BROKER, LIVE, UNUSED, RECREATE):
            names = [f.name for f in FIELDS if reload_class(f.name, settings) == cls]
            if names:
                listed = ", ".join(_sql_literal(n) for n in names)
                whens.append(f"WHEN protocol = {_sql_literal(protocol)} AND {{f}} IN ({listed}) THEN {_sql_literal(cls)}")
    return "CASE " + " ".join(w.format(f=field) for w in whens) + " END"


SHARE_CLIENT_EXCLUDED = frozenset(
    {*SHARE_GROUP_CONFIGS, "partition_assignment_strategy", "group_protocol", "group_remote_assignor"}
    | {"enable_auto_commit", "auto_commit_interval_ms"}
)
"""What a share consumer is not given: librdkafka's and the Java client's share consumers both refuse the group
configs, the assignor and the group protocol; enable_auto_commit becomes share.acknowledgement.mode, and the commit
interval means nothing to them."""


def client_fields(settings: Mapping[str, Any]) -> tuple[Field, ...]:
    """The fields a librdkafka or Java client is given for these settings.

    Classic: every client setting, and no group.protocol (the default of every client, so older
    clients keep working). Consumer protocol: group.protocol and group.remote.assignor, and not
    the session timeout, heartbeat interval or assignment strategy: the broker owns those
    (librdkafka refuses to build such a consumer; see `config push` for the broker side).
    Share group: the fetch, poll and network settings only (see :data:`SHARE_CLIENT_EXCLUDED`).
    """
    if uses_share_group(settings):
        return tuple(f for f in FIELDS if f.name not in SHARE_CLIENT_EXCLUDED)
    if uses_consumer_protocol(settings):
        return tuple(f for f in FIELDS if f.name not in CLIENT_SIDE_ONLY)
    return tuple(f for f in FIELDS if f.name not in ("group_protocol", "group_remote_assignor"))


def broker_group_configs(settings: Mapping[str, Any]) -> dict[str, str]:
    """The group configs the broker owns for these settings (consumer protocol, share group; empty for classic)."""
    return {name: _property_text(settings[f]) for f, name in broker_owned(settings).items()}


def librdkafka_properties(settings: Mapping[str, Any]) -> dict[str, str]:
    """What confluent-kafka / librdkafka receives for these settings (no group or servers)."""
    props: dict[str, str] = {}
    for f in client_fields(settings):
        if f.librdkafka is None:
            continue
        value = settings[f.name]
        props[f.librdkafka] = _property_text(LIBRDKAFKA_VALUES.get(f.name, {}).get(value, value))
    # librdkafka refuses a fetch.max.bytes below message.max.bytes (default 1000000); the Java
    # client has no such rule, so lower message.max.bytes (a producer limit) along with it.
    if settings["fetch_max_bytes"] < LIBRDKAFKA_MESSAGE_MAX_BYTES:
        props["message.max.bytes"] = str(max(LIBRDKAFKA_MESSAGE_MAX_BYTES_MIN, settings["fetch_max_bytes"]))
    # Above retry.backoff.max.ms (default 1000) librdkafka silently caps the backoff at 1000 ms.
    if settings["retry_backoff_ms"] > LIBRDKAFKA_RETRY_BACKOFF_MAX_MS:
        props["retry.backoff.max.ms"] = str(settings["retry_backoff_ms"])
    if uses_share_group(settings):
        # librdkafka's share consumer (preview) hands out batches of max.poll.records itself
        props["max.poll.records"] = str(settings["max_poll_records"])
        props["share.acknowledgement.mode"] = SHARE_ACKNOWLEDGEMENT_MODES[bool(settings["enable_auto_commit"])]
    return props


def java_properties(settings: Mapping[str, Any]) -> dict[str, str]:
    """The Java client's consumer properties for these settings (a KafkaShareConsumer's for a share group)."""
    props = {
        f.java: _property_text(JAVA_VALUES.get(f.name, {}).get(settings[f.name], settings[f.name]))
        for f in client_fields(settings)
        if f.java is not None
    }
    if uses_share_group(settings):
        props["share.acknowledgement.mode"] = SHARE_ACKNOWLEDGEMENT_MODES[bool(settings["enable_auto_commit"])]
        # KIP-1206 (Kafka 4.2): the broker acquires at most max.poll.records per fetch, rather than finishing a batch
        props["share.acquire.mode"] = "record_limit"
    return props


def kafkajs_options(settings: Mapping[str, Any]) -> dict[str, Any]:
    """KafkaJS options, split the way KafkaJS takes them: consumer(), subscribe() and run().

    KafkaJS has no max.poll.records or reconnect backoff options, and ships only a round-robin
    assigner; the assignor is passed by name for the service's loader to resolve. A dotted KafkaJS
    name is a nested option (``retry.initialRetryTime`` -> ``{"retry": {"initialRetryTime": ...}}``).
    """
    consumer: dict[str, Any] = {}
    for f in FIELDS:
        if f.kafkajs is None or f.name in ("enable_auto_commit", "auto_commit_interval_ms", "auto_offset_reset"):
            continue
        value = settings[f.name]
        if f.name == "isolation_level":
            value = value == "read_uncommitted"
        elif f.name == "partition_assignment_strategy":
            value = [value]
        outer, _, inner = f.kafkajs.partition(".")
        if inner:
            consumer.setdefault(outer, {})[inner] = value
        else:
            consumer[f.kafkajs] = value
    return {
        "consumer": consumer,
        "subscribe": {"fromBeginning": settings["auto_offset_reset"] == "earliest"},
        "run": {
            "autoCommit": settings["enable_auto_commit"],
            "autoCommitInterval": settings["auto_commit_interval_ms"],
        },
    }


def client_properties(client: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    if client == "librdkafka":
        return librdkafka_properties(settings)
    if client == "java":
        return java_properties(settings)
    if client == "kafkajs":
        return kafkajs_options(settings)
    raise ValueError(f"unknown client {client!r}")
