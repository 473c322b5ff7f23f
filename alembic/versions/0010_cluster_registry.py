"""The cluster registry: kafka_clusters (with its audit trail and the capabilities last checked), and the cluster
every service, lag sample and partition change belongs to. Every existing row belongs to the one cluster a database
knew until now, registered as "default" with no brokers of its own (they stay --bootstrap-servers /
LOOM_KAFKA_BOOTSTRAP_SERVERS), so a single-cluster database keeps working as it did: the guide's SQL, the loaders and
the import files do not name a cluster. The views gain cluster_name as their last column; a topic's pending change
is one per topic of each cluster.

The lag history's primary key gains cluster_name: its index is rebuilt on every day partition (the column itself is
added with a constant default, which PostgreSQL stores without rewriting the rows).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 00:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from loomctl.sql_entities import entity

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_REPLACED = {
    "record_consumer_lag": (1, 2),
    "generate_partition_update_script": (1, 2),
    "topic_partition_change_sync": (1, 2),
    "v_consumer_performance_monitor": (5, 6),
    "v_consumer_alerts": (4, 5),
    "v_consumer_performance_history": (2, 3),
}
_CLUSTER_CHECK = "cluster_name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$'"


def _cluster_column() -> sa.Column:
    return sa.Column(
        "cluster_name",
        sa.Text(),
        sa.ForeignKey("kafka_clusters.cluster_name", onupdate="CASCADE"),
        nullable=False,
        server_default=sa.text("'default'"),
    )


def upgrade() -> None:
    ts = sa.TIMESTAMP(timezone=True)
    op.create_table(
        "kafka_clusters",
        sa.Column("cluster_name", sa.Text(), primary_key=True),
        sa.Column("bootstrap_servers", sa.Text()),
        sa.Column("properties_file", sa.Text()),
        sa.Column("properties_env", sa.Text()),
        sa.Column("labels", postgresql.JSONB(), nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("description", sa.Text()),
        sa.Column("version", sa.Integer(), nullable=False, server_default=sa.text("1")),
        sa.Column("created_at", ts, nullable=False, server_default=sa.text("now()")),
        sa.Column("updated_at", ts, nullable=False, server_default=sa.text("now()")),
        sa.Column("updated_by", sa.Text()),
        sa.CheckConstraint(_CLUSTER_CHECK, name="cluster_name_format"),
        sa.CheckConstraint(
            "bootstrap_servers IS NULL OR length(bootstrap_servers) BETWEEN 1 AND 4096", name="bootstrap_servers_length"
        ),
        sa.CheckConstraint("num_nonnulls(properties_file, properties_env) <= 1", name="one_properties_source"),
        sa.CheckConstraint("properties_env IS NULL OR properties_env ~ '^[A-Za-z_][A-Za-z0-9_]{0,127}$'", name="properties_env_name"),
        sa.CheckConstraint("jsonb_typeof(labels) = 'object'", name="labels_object"),
        sa.CheckConstraint("version >= 1", name="version_positive"),
    )
    op.create_table(
        "kafka_cluster_checks",
        sa.Column(
            "cluster_name",
            sa.Text(),
            sa.ForeignKey("kafka_clusters.cluster_name", onupdate="CASCADE", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("checked_at", ts, nullable=False, server_default=sa.text("now()")),
        sa.Column("checked_by", sa.Text()),
        sa.Column("capabilities", postgresql.JSONB(), nullable=False),
    )
    op.create_table(
        "kafka_cluster_changes",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), primary_key=True),
        sa.Column("cluster_name", sa.Text(), nullable=False),
        sa.Column("change_type", sa.Text(), nullable=False),
        sa.Column("changed_fields", postgresql.ARRAY(sa.Text()), nullable=False, server_default=sa.text("'{}'")),
        sa.Column("old_values", postgresql.JSONB()),
        sa.Column("new_values", postgresql.JSONB()),
        sa.Column("reason", sa.Text()),
        sa.Column("changed_by", sa.Text(), nullable=False),
        sa.Column("changed_at", ts, nullable=False, server_default=sa.text("now()")),
        sa.Column("cluster_version", sa.Integer()),
        sa.Column("source", sa.Text(), nullable=False, server_default=sa.text("'sql'")),
        sa.CheckConstraint("change_type IN ('create', 'update', 'delete')", name="change_type_allowed"),
    )
    op.create_index("ix_kafka_cluster_changes_cluster_changed_at", "kafka_cluster_changes", ["cluster_name", "changed_at"])
    op.create_entity(entity("kafka_cluster_audit", 1))
    op.create_entity(entity("kafka_clusters_stamp", 1))
    op.create_entity(entity("kafka_clusters_audit", 1))
    # the one cluster every database had: its brokers stay the flag's and the environment's
    op.execute(
        "SELECT set_config('loomctl.actor', 'loomctl db upgrade', true),"
        " set_config('loomctl.reason', 'the cluster this database watched before the registry', true)"
    )
    op.execute(
        "INSERT INTO public.kafka_clusters (cluster_name, description) VALUES "
        "('default', 'the cluster of --bootstrap-servers / LOOM_KAFKA_BOOTSTRAP_SERVERS')"
    )
    op.execute("SELECT set_config('loomctl.actor', '', true), set_config('loomctl.reason', '', true)")

    op.add_column("pipeline_consumer_configs", _cluster_column())
    op.add_column("topic_partition_changes", _cluster_column())
    op.drop_index("uq_topic_partition_changes_one_pending", table_name="topic_partition_changes")
    op.create_index(
        "uq_topic_partition_changes_one_pending",
        "topic_partition_changes",
        ["cluster_name", "topic_name"],
        unique=True,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.add_column(
        "consumer_lag_history", sa.Column("cluster_name", sa.Text(), nullable=False, server_default=sa.text("'default'"))
    )
    op.drop_constraint("pk_consumer_lag_history", "consumer_lag_history", type_="primary")
    op.create_primary_key(
        "pk_consumer_lag_history",
        "consumer_lag_history",
        ["timestamp", "consumer_group_id", "topic_name", "partition", "cluster_name"],
    )
    for name, (_old, new) in _REPLACED.items():
        op.replace_entity(entity(name, new))
    # a view's new column can only be appended; this one's groups gain the cluster in the middle
    op.execute("DROP VIEW public.v_partition_efficiency")
    op.create_entity(entity("v_partition_efficiency", 2))


def downgrade() -> None:
    op.execute("DROP VIEW public.v_partition_efficiency")
    op.create_entity(entity("v_partition_efficiency", 1))
    # views first: v_consumer_alerts reads the monitor's last column, which the old monitor does not have
    op.execute("DROP VIEW public.v_consumer_alerts")
    op.execute("DROP VIEW public.v_consumer_performance_monitor")
    op.execute("DROP VIEW public.v_consumer_performance_history")
    op.create_entity(entity("v_consumer_performance_monitor", 5))
    op.create_entity(entity("v_consumer_alerts", 4))
    op.create_entity(entity("v_consumer_performance_history", 2))
    for name in ("record_consumer_lag", "generate_partition_update_script", "topic_partition_change_sync"):
        op.replace_entity(entity(name, _REPLACED[name][0]))
    op.drop_constraint("pk_consumer_lag_history", "consumer_lag_history", type_="primary")
    # samples of other clusters would collide on the old key: only the default cluster's stay
    op.execute("DELETE FROM public.consumer_lag_history WHERE cluster_name <> 'default'")
    op.create_primary_key(
        "pk_consumer_lag_history", "consumer_lag_history", ["timestamp", "consumer_group_id", "topic_name", "partition"]
    )
    op.drop_column("consumer_lag_history", "cluster_name")
    op.drop_index("uq_topic_partition_changes_one_pending", table_name="topic_partition_changes")
    # one pending change per topic again: keep the newest of each topic's
    op.execute(
        "UPDATE public.topic_partition_changes AS c SET status = 'superseded' WHERE c.status = 'pending' AND EXISTS ("
        " SELECT 1 FROM public.topic_partition_changes AS n WHERE n.topic_name = c.topic_name"
        " AND n.status = 'pending' AND n.id > c.id)"
    )
    op.create_index(
        "uq_topic_partition_changes_one_pending",
        "topic_partition_changes",
        ["topic_name"],
        unique=True,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.drop_column("topic_partition_changes", "cluster_name")
    op.drop_column("pipeline_consumer_configs", "cluster_name")
    op.drop_entity(entity("kafka_clusters_audit", 1))
    op.drop_entity(entity("kafka_clusters_stamp", 1))
    op.drop_entity(entity("kafka_cluster_audit", 1))
    op.drop_table("kafka_cluster_changes")
    op.drop_table("kafka_cluster_checks")
    op.drop_table("kafka_clusters")
