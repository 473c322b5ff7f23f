"""SQLAlchemy 2.0 models mirroring the tables that the Alembic migrations create.

The migrations own the DDL; these models are what the code reads and writes, and `db check`
(alembic's autogenerate comparison) fails when the two disagree.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Double,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Interval,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TIMESTAMP

from loomctl.consumer_config import FIELDS_BY_NAME, check_constraints

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Timestamp = TIMESTAMP(timezone=True)
LAG_HISTORY_PARTITION_PREFIX = "consumer_lag_history_p"
LAG_HISTORY_DEFAULT_PARTITION = "consumer_lag_history_default"
# The history view's time bucket. date_bin with a fixed origin is immutable (date_trunc on a
# timestamptz is not), so both tables can index (service_name, minute) and the guide's
# "WHERE service_name = ... AND timestamp > now() - interval '1 hour'" on the view is a range scan.
MINUTE_BUCKET_SQL = """date_bin('00:01:00'::interval, "timestamp", '2000-01-01 00:00:00+00'::timestamp with time zone)"""


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _setting_column(name: str) -> Any:
    field = FIELDS_BY_NAME[name]
    if field.kind is bool:
        return mapped_column(Boolean, nullable=False, server_default=text("true" if field.default else "false"))
    if field.kind is int:
        column_type = BigInteger if field.maximum and field.maximum > 2_000_000_000 else Integer
        return mapped_column(column_type, nullable=False, server_default=text(str(field.default)))
    return mapped_column(Text, nullable=False, server_default=text(f"'{field.default}'"))


class AuditTrail:
    """The columns of an audit trail written by a trigger (consumer_config_audit, kafka_cluster_audit): who changed
    which fields from what to what, when, why, and whether through loomctl or raw SQL."""

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    change_type: Mapped[str] = mapped_column(Text, nullable=False)
    changed_fields: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, server_default=text("'{}'"))
    old_values: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    new_values: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    reason: Mapped[str | None] = mapped_column(Text)
    changed_by: Mapped[str] = mapped_column(Text, nullable=False)
    """The actor: `--actor` (or LOOM_ACTOR, the OS user) for loomctl's changes, the database user for raw SQL."""
    changed_at: Mapped[dt.datetime] = mapped_column(Timestamp, nullable=False, server_default=text("now()"))
    source: Mapped[str] = mapped_column(Text, nullable=False, server_default=text("'sql'"))
    db_user: Mapped[str | None] = mapped_column(Text)
    """The database user whose session made the change (session_user), set by the audit_db_user trigger whatever
    the writer says; None for changes recorded before migration 0012 by loomctl (raw SQL's were that user)."""


DEFAULT_CLUSTER = "default"
"""The cluster every service, sample and partition change belongs to unless it names another: the one registry row
each database has from the start, whose brokers are `--bootstrap-servers` / LOOM_KAFKA_BOOTSTRAP_SERVERS (today's
single cluster) until an operator registers them."""
CLUSTER_NAME_CHECK = "cluster_name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$'"


def _cluster_column() -> Any:
    """The cluster a row belongs to (a registry row, which cannot be removed while rows name it); the default
    cluster when a writer does not say, as the guide's INSERTs do not."""
    return mapped_column(
        Text,
        ForeignKey("kafka_clusters.cluster_name", onupdate="CASCADE"),
        nullable=False,
        server_default=text(f"'{DEFAULT_CLUSTER}'"),
    )


class KafkaCluster(Base):
    """One Kafka cluster loomctl watches: where its brokers are and where its client properties come from. Secrets
    never live here: ``properties_file`` names a librdkafka properties file, ``properties_env`` an environment
    variable holding that file's path, on the machine that runs loomctl."""

    __tablename__ = "kafka_clusters"
    __table_args__ = (
        CheckConstraint(CLUSTER_NAME_CHECK, name="cluster_name_format"),
        CheckConstraint(
            "bootstrap_servers IS NULL OR length(bootstrap_servers) BETWEEN 1 AND 4096", name="bootstrap_servers_length"
        ),
        CheckConstraint("num_nonnulls(properties_file, properties_env) <= 1", name="one_properties_source"),
        CheckConstraint(
            "properties_env IS NULL OR properties_env ~ '^[A-Za-z_][A-Za-z0-9_]{0,127}$'", name="properties_env_name"
        ),
        CheckConstraint("jsonb_typeof(labels) = 'object'", name="labels_object"),
        CheckConstraint("version >= 1", name="version_positive"),
    )

    cluster_name: Mapped[str] = mapped_column(Text, primary_key=True)
    bootstrap_servers: Mapped[str | None] = mapped_column(Text)
    """NULL: `--bootstrap-servers` / LOOM_KAFKA_BOOTSTRAP_SERVERS (the default cluster, as before the registry)."""
    properties_file: Mapped[str | None] = mapped_column(Text)
    properties_env: Mapped[str | None] = mapped_column(Text)
    labels: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default=text("'{}'::jsonb"))
    description: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("1"))
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, nullable=False, server_default=text("now()"))
    updated_at: Mapped[dt.datetime] = mapped_column(Timestamp, nullable=False, server_default=text("now()"))
    updated_by: Mapped[str | None] = mapped_column(Text)


class KafkaClusterCheck(Base):
    """What `cluster check` found the cluster can do, the last time it asked (not audited: a fact, not a setting)."""

    __tablename__ = "kafka_cluster_checks"

    cluster_name: Mapped[str] = mapped_column(
        Text, ForeignKey("kafka_clusters.cluster_name", onupdate="CASCADE", ondelete="CASCADE"), primary_key=True
    )
    checked_at: Mapped[dt.datetime] = mapped_column(Timestamp, nullable=False, server_default=text("now()"))
    checked_by: Mapped[str | None] = mapped_column(Text)
    capabilities: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)


class KafkaClusterChange(AuditTrail, Base):
    """The audit trail of `kafka_clusters`, written by a trigger as the configs' is."""

    __tablename__ = "kafka_cluster_changes"
    __table_args__ = (
        CheckConstraint("change_type IN ('create', 'update', 'delete')", name="change_type_allowed"),
        Index("ix_kafka_cluster_changes_cluster_changed_at", "cluster_name", "changed_at"),
    )

    cluster_name: Mapped[str] = mapped_column(Text, nullable=False)
    cluster_version: Mapped[int | None] = mapped_column(Integer)


class PipelineConsumerConfig(Base):
    """One row per service: the consumer settings of its group (Java-style names)."""

    __tablename__ = "pipeline_consumer_configs"
    __table_args__ = (
        *(CheckConstraint(sql, name=name) for name, sql in check_constraints().items()),
        CheckConstraint("service_name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,248}$'", name="service_name_format"),
        CheckConstraint("length(consumer_group_id) BETWEEN 1 AND 249", name="consumer_group_id_length"),
        CheckConstraint("version >= 1", name="version_positive"),
        CheckConstraint("lag_slo_seconds IS NULL OR lag_slo_seconds BETWEEN 1 AND 604800", name="lag_slo_seconds_range"),
    )

    service_name: Mapped[str] = mapped_column(Text, primary_key=True)
    consumer_group_id: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    """Unique across clusters: the lag history, its statuses and the collector's shares key a group by its id."""
    max_poll_records: Mapped[int] = _setting_column("max_poll_records")
    max_poll_interval_ms: Mapped[int] = _setting_column("max_poll_interval_ms")
    session_timeout_ms: Mapped[int] = _setting_column("session_timeout_ms")
    heartbeat_interval_ms: Mapped[int] = _setting_column("heartbeat_interval_ms")
    fetch_min_bytes: Mapped[int] = _setting_column("fetch_min_bytes")
    fetch_max_bytes: Mapped[int] = _setting_column("fetch_max_bytes")
    fetch_max_wait_ms: Mapped[int] = _setting_column("fetch_max_wait_ms")
    max_partition_fetch_bytes: Mapped[int] = _setting_column("max_partition_fetch_bytes")
    request_timeout_ms: Mapped[int] = _setting_column("request_timeout_ms")
    retry_backoff_ms: Mapped[int] = _setting_column("retry_backoff_ms")
    reconnect_backoff_ms: Mapped[int] = _setting_column("reconnect_backoff_ms")
    reconnect_backoff_max_ms: Mapped[int] = _setting_column("reconnect_backoff_max_ms")
    enable_auto_commit: Mapped[bool] = _setting_column("enable_auto_commit")
    auto_commit_interval_ms: Mapped[int] = _setting_column("auto_commit_interval_ms")
    auto_offset_reset: Mapped[str] = _setting_column("auto_offset_reset")
    partition_assignment_strategy: Mapped[str] = _setting_column("partition_assignment_strategy")
    isolation_level: Mapped[str] = _setting_column("isolation_level")
    group_protocol: Mapped[str] = _setting_column("group_protocol")
    group_remote_assignor: Mapped[str] = _setting_column("group_remote_assignor")
    record_lock_duration_ms: Mapped[int] = _setting_column("record_lock_duration_ms")
    profile: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    lag_slo_seconds: Mapped[int | None] = mapped_column(Integer)
    """The service's objective for its lag in time (a service attribute, not a client setting); NULL: its profile's default."""
    version: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("1"))
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, nullable=False, server_default=text("now()"))
    updated_at: Mapped[dt.datetime] = mapped_column(Timestamp, nullable=False, server_default=text("now()"))
    updated_by: Mapped[str | None] = mapped_column(Text)
    cluster_name: Mapped[str] = _cluster_column()
    """The Kafka cluster the service's group lives on (``kafka_clusters``)."""


class ConsumerConfigChange(AuditTrail, Base):
    """The audit trail of `pipeline_consumer_configs`, written by a trigger (raw SQL updates too)."""

    __tablename__ = "consumer_config_changes"
    __table_args__ = (
        CheckConstraint("change_type IN ('create', 'update', 'delete', 'push')", name="change_type_allowed"),
        Index("ix_consumer_config_changes_service_changed_at", "service_name", "changed_at"),
    )

    service_name: Mapped[str] = mapped_column(Text, nullable=False)
    config_version: Mapped[int | None] = mapped_column(Integer)


class TopicPartitionChange(Base):
    """A proposed partition count for a topic, and what became of it."""

    __tablename__ = "topic_partition_changes"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'applied', 'failed', 'superseded', 'cancelled')", name="status_allowed"),
        CheckConstraint("current_partitions >= 1", name="current_partitions_positive"),
        CheckConstraint("recommended_partitions > current_partitions", name="increase_only"),
        CheckConstraint("applied = (status = 'applied')", name="applied_matches_status"),
        CheckConstraint("(status = 'cancelled') = (cancelled_at IS NOT NULL)", name="cancelled_matches_status"),
        Index(
            "uq_topic_partition_changes_one_pending",
            "cluster_name",
            "topic_name",
            unique=True,
            postgresql_where=text("status = 'pending'"),
        ),
        Index("ix_topic_partition_changes_topic_created_at", "topic_name", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    topic_name: Mapped[str] = mapped_column(Text, nullable=False)
    current_partitions: Mapped[int] = mapped_column(Integer, nullable=False)
    recommended_partitions: Mapped[int] = mapped_column(Integer, nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False, server_default=text("''"))
    applied: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    applied_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    applied_by: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, nullable=False, server_default=text("'pending'"))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, nullable=False, server_default=text("now()"))
    source: Mapped[str] = mapped_column(Text, nullable=False, server_default=text("'manual'"))
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    cancelled_by: Mapped[str | None] = mapped_column(Text)
    cancel_reason: Mapped[str | None] = mapped_column(Text)
    cluster_name: Mapped[str] = _cluster_column()
    """The cluster whose topic this is: one pending change per topic of each cluster."""


class ConsumerLagHistory(Base):
    """One lag sample of one partition for one group. Range-partitioned by day on `timestamp`.

    The primary key makes a sample unique per partition and instant, so two collectors that
    sample the same moment cannot double it. It leads with the time: each cycle's rows append
    at the index's right edge instead of landing in one place per partition, which is what
    lets the collector's COPY write 100,000+ rows/s (bench/ingest.py), and time-window scans
    (the status window, produce rates) read it directly. Per service, (service_name,
    timestamp) serves the guide's queries and the latest sample per partition.
    """

    __tablename__ = "consumer_lag_history"
    __table_args__ = (
        CheckConstraint("partition >= 0", name="partition_nonnegative"),
        CheckConstraint("lag IS NULL OR lag >= 0", name="lag_nonnegative"),
        PrimaryKeyConstraint("timestamp", "consumer_group_id", "topic_name", "partition", "cluster_name"),
        Index("ix_consumer_lag_history_service_timestamp", "service_name", "timestamp"),
        # The status window of every group at once (v_consumer_performance_monitor). The primary
        # key leads with the time too, but the planner costs a scan of that wide index high
        # enough to push the monitor over jit_above_cost, where JIT compilation alone takes
        # longer (~200 ms) than the query; this narrow one appends as cheaply as the key.
        Index("ix_consumer_lag_history_timestamp", "timestamp"),
        # the guide's history query filters the view's per-minute bucket, not the raw time
        Index("ix_consumer_lag_history_service_minute", "service_name", text(MINUTE_BUCKET_SQL)),
        {"postgresql_partition_by": 'RANGE ("timestamp")'},
    )

    consumer_group_id: Mapped[str] = mapped_column(Text, primary_key=True)
    topic_name: Mapped[str] = mapped_column(Text, primary_key=True)
    partition: Mapped[int] = mapped_column(Integer, primary_key=True)
    timestamp: Mapped[dt.datetime] = mapped_column(Timestamp, primary_key=True, server_default=text("now()"))
    service_name: Mapped[str] = mapped_column(Text, nullable=False)
    committed_offset: Mapped[int | None] = mapped_column(BigInteger)
    log_end_offset: Mapped[int] = mapped_column(BigInteger, nullable=False)
    log_start_offset: Mapped[int | None] = mapped_column(BigInteger)
    lag: Mapped[int | None] = mapped_column(BigInteger)
    time_lag_ms: Mapped[int | None] = mapped_column(BigInteger)
    group_state: Mapped[str | None] = mapped_column(Text)
    member_count: Mapped[int | None] = mapped_column(Integer)
    group_type: Mapped[str | None] = mapped_column(Text)
    """classic or consumer (KIP-848), as the broker described the group; NULL where a service reported the sample."""
    cluster_name: Mapped[str] = mapped_column(Text, primary_key=True, server_default=text(f"'{DEFAULT_CLUSTER}'"))
    """The cluster the group was sampled on (no foreign key: the history outlives a registry row, and a COPY of a
    cycle checks nothing per row)."""


class LagStatusCache(Base):
    """What ``lag_status_cache_rows`` holds: lag_partition_status over ``computed_window`` as of
    ``computed_at``, when the window's newest sample was ``latest_sample`` (one row).

    UNLOGGED, as is the copy: the next collector cycle rebuilds it, and until then (after a
    crash, on a standby) lag_partition_status computes from the history.
    """

    __tablename__ = "lag_status_cache"
    __table_args__ = {"prefixes": ["UNLOGGED"]}

    computed_window: Mapped[dt.timedelta] = mapped_column(Interval, primary_key=True)
    computed_at: Mapped[dt.datetime] = mapped_column(Timestamp, nullable=False)
    latest_sample: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    partitions: Mapped[int] = mapped_column(Integer, nullable=False)
    objectives: Mapped[Decimal | None] = mapped_column(Numeric)
    """lag_objectives_digest() when the groups' figures beside the copy were computed (lag_status_cache_groups)."""


class LagStatusCacheRow(Base):
    """One partition's row of lag_partition_status, kept by refresh_lag_partition_status (same columns)."""

    __tablename__ = "lag_status_cache_rows"
    __table_args__ = {"prefixes": ["UNLOGGED"]}

    service_name: Mapped[str | None] = mapped_column(Text)
    consumer_group_id: Mapped[str] = mapped_column(Text, primary_key=True)
    topic_name: Mapped[str] = mapped_column(Text, primary_key=True)
    partition: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str | None] = mapped_column(Text)
    samples: Mapped[int | None] = mapped_column(Integer)
    first_timestamp: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    last_timestamp: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    first_committed_offset: Mapped[int | None] = mapped_column(BigInteger)
    last_committed_offset: Mapped[int | None] = mapped_column(BigInteger)
    first_lag: Mapped[int | None] = mapped_column(BigInteger)
    last_lag: Mapped[int | None] = mapped_column(BigInteger)
    log_end_offset: Mapped[int | None] = mapped_column(BigInteger)
    time_lag_ms: Mapped[int | None] = mapped_column(BigInteger)
    member_count: Mapped[int | None] = mapped_column(Integer)
    group_state: Mapped[str | None] = mapped_column(Text)
    first_log_end_offset: Mapped[int | None] = mapped_column(BigInteger)
    log_start_offset: Mapped[int | None] = mapped_column(BigInteger)
    evidence: Mapped[str | None] = mapped_column(Text)
    group_type: Mapped[str | None] = mapped_column(Text)


class LagStatusCacheGroup(Base):
    """One group's row of lag_group_status (its partitions rolled up: lag, status, the objective's
    predictions), kept by refresh_lag_partition_status beside lag_status_cache_rows (same columns as
    lag_group_status_live). UNLOGGED like them: emptied together after a crash."""

    __tablename__ = "lag_status_cache_groups"
    __table_args__ = {"prefixes": ["UNLOGGED"]}

    consumer_group_id: Mapped[str] = mapped_column(Text, primary_key=True)
    partitions: Mapped[int | None] = mapped_column(Integer)
    partitions_without_commit: Mapped[int | None] = mapped_column(Integer)
    total_lag: Mapped[Decimal | None] = mapped_column(Numeric)
    avg_lag: Mapped[Decimal | None] = mapped_column(Numeric)
    max_lag: Mapped[int | None] = mapped_column(BigInteger)
    lag_change: Mapped[Decimal | None] = mapped_column(Numeric)
    time_lag_ms: Mapped[int | None] = mapped_column(BigInteger)
    member_count: Mapped[int | None] = mapped_column(Integer)
    group_state: Mapped[str | None] = mapped_column(Text)
    group_type: Mapped[str | None] = mapped_column(Text)
    last_sample_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    sampled_seconds: Mapped[int | None] = mapped_column(Integer)
    produce_rate: Mapped[Decimal | None] = mapped_column(Numeric)
    consume_rate: Mapped[Decimal | None] = mapped_column(Numeric)
    status: Mapped[str | None] = mapped_column(Text)
    flagged_partitions: Mapped[str | None] = mapped_column(Text)
    evidence: Mapped[str | None] = mapped_column(Text)
    lag_slo_seconds: Mapped[int | None] = mapped_column(Integer)
    """The objective breach_in_seconds was computed against (lag_group_status serves the copy only while it holds)."""
    time_lag_seconds: Mapped[Decimal | None] = mapped_column(Numeric)
    catch_up_seconds: Mapped[Decimal | None] = mapped_column(Numeric)
    catch_up_never: Mapped[bool | None] = mapped_column(Boolean)
    breach_in_seconds: Mapped[Decimal | None] = mapped_column(Numeric)
    slowest_partition: Mapped[str | None] = mapped_column(Text)


class ConsumerProcessingMetric(Base):
    """What a service reports after each batch it processed."""

    __tablename__ = "consumer_processing_metrics"
    __table_args__ = (
        CheckConstraint("batch_size >= 0", name="batch_size_nonnegative"),
        CheckConstraint("messages_processed >= 0", name="messages_processed_nonnegative"),
        CheckConstraint("messages_failed >= 0", name="messages_failed_nonnegative"),
        CheckConstraint("processing_time_ms >= 0", name="processing_time_nonnegative"),
        Index("ix_consumer_processing_metrics_service_timestamp", "service_name", "timestamp"),
        Index("ix_consumer_processing_metrics_service_minute", "service_name", text(MINUTE_BUCKET_SQL)),
        # The last hour of every service at once (v_consumer_performance_monitor).
        Index("ix_consumer_processing_metrics_timestamp", "timestamp"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    timestamp: Mapped[dt.datetime] = mapped_column(Timestamp, nullable=False, server_default=text("now()"))
    service_name: Mapped[str] = mapped_column(Text, nullable=False)
    consumer_group_id: Mapped[str | None] = mapped_column(Text)
    topic_name: Mapped[str | None] = mapped_column(Text)
    batch_size: Mapped[int] = mapped_column(Integer, nullable=False)
    messages_processed: Mapped[int] = mapped_column(Integer, nullable=False)
    messages_failed: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    processing_time_ms: Mapped[float] = mapped_column(Double, nullable=False)
    messages_per_second: Mapped[float | None] = mapped_column(Double)


class ConsumerProcessingMetricsRollup(Base):
    """The sums of consumer_processing_metrics per service and minute, five minutes and half hour (bucket_seconds 60,
    300, 1800), kept by triggers at every write (processing_metrics_rollup_sync), so that the monitor's last hour
    reads at most 11 rows per service rather than every batch. Logged: it is kept, not rebuilt."""

    __tablename__ = "consumer_processing_metrics_rollup"
    __table_args__ = (
        CheckConstraint("bucket_seconds IN (60, 300, 1800)", name="bucket_seconds"),
        PrimaryKeyConstraint("bucket_seconds", "bucket_start", "service_name"),
    )

    bucket_seconds: Mapped[int] = mapped_column(Integer)
    bucket_start: Mapped[dt.datetime] = mapped_column(Timestamp)
    service_name: Mapped[str] = mapped_column(Text)
    batches: Mapped[int] = mapped_column(BigInteger, nullable=False)
    batch_size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    messages_processed: Mapped[int] = mapped_column(BigInteger, nullable=False)
    messages_failed: Mapped[int] = mapped_column(BigInteger, nullable=False)
    processing_time_ms: Mapped[float] = mapped_column(Double, nullable=False)
    max_processing_time_ms: Mapped[float] = mapped_column(Double, nullable=False)


class ConsumerInstance(Base):
    """A running consumer a loader made, as it last reported itself (record_consumer_instance): the config version it
    runs, so that `config show` and `config drift` say which instances have not taken the newest one yet."""

    __tablename__ = "consumer_instances"
    __table_args__ = (
        CheckConstraint("language IN ('python', 'node')", name="language"),
        Index("ix_consumer_instances_service_reported", "service_name", "reported_at"),
    )

    instance_id: Mapped[str] = mapped_column(Text, primary_key=True)
    service_name: Mapped[str] = mapped_column(Text, nullable=False)
    consumer_group_id: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str] = mapped_column(Text, nullable=False)
    host: Mapped[str | None] = mapped_column(Text)
    pid: Mapped[int | None] = mapped_column(Integer)
    config_version: Mapped[int | None] = mapped_column(Integer)
    """The version the running client was built with or followed to (None: the defaults or a cached config)."""
    refused_version: Mapped[int | None] = mapped_column(Integer)
    """The newest version the instance's new client refused (it runs config_version instead)."""
    db_user: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[dt.datetime] = mapped_column(Timestamp, nullable=False, server_default=text("now()"))
    reported_at: Mapped[dt.datetime] = mapped_column(Timestamp, nullable=False, server_default=text("now()"))
