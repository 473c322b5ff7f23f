"""initial schema: the tables, views, SQL functions and triggers of the guide

Revision ID: 0001
Revises: 
Create Date: 2026-11-27 13:32:47.697111
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from loomctl.sql_entities import entity

# The SQL objects this revision creates, each at the version it had then (see sql_entities).
ENTITIES = [
    ("consumer_config_stamp", 1),
    ("consumer_config_audit", 1),
    ("topic_partition_change_sync", 1),
    ("generate_partition_update_script", 1),
    ("mark_partition_changes_applied", 1),
    ("record_consumer_lag", 1),
    ("record_processing_metrics", 1),
    ("ensure_lag_history_partitions", 1),
    ("drop_lag_history_before", 1),
    ("lag_partition_status", 1),
    ("pipeline_consumer_configs_stamp", 1),
    ("pipeline_consumer_configs_audit", 1),
    ("topic_partition_changes_sync", 1),
    ("v_consumer_performance_monitor", 1),
    ("v_consumer_alerts", 1),
    ("v_consumer_performance_history", 1),
    ("v_partition_efficiency", 1),
]

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('consumer_config_changes',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=True), nullable=False),
    sa.Column('service_name', sa.Text(), nullable=False),
    sa.Column('change_type', sa.Text(), nullable=False),
    sa.Column('changed_fields', postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'"), nullable=False),
    sa.Column('old_values', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('new_values', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('changed_by', sa.Text(), nullable=False),
    sa.Column('changed_at', sa.TIMESTAMP(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('config_version', sa.Integer(), nullable=True),
    sa.Column('source', sa.Text(), server_default=sa.text("'sql'"), nullable=False),
    sa.CheckConstraint("change_type IN ('create', 'update', 'delete')", name=op.f('ck_consumer_config_changes_change_type_allowed')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consumer_config_changes'))
    )
    op.create_index('ix_consumer_config_changes_service_changed_at', 'consumer_config_changes', ['service_name', 'changed_at'], unique=False)
    op.create_table('consumer_lag_history',
    sa.Column('consumer_group_id', sa.Text(), nullable=False),
    sa.Column('topic_name', sa.Text(), nullable=False),
    sa.Column('partition', sa.Integer(), nullable=False),
    sa.Column('timestamp', sa.TIMESTAMP(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('service_name', sa.Text(), nullable=False),
    sa.Column('committed_offset', sa.BigInteger(), nullable=True),
    sa.Column('log_end_offset', sa.BigInteger(), nullable=False),
    sa.Column('log_start_offset', sa.BigInteger(), nullable=True),
    sa.Column('lag', sa.BigInteger(), nullable=True),
    sa.Column('time_lag_ms', sa.BigInteger(), nullable=True),
    sa.Column('group_state', sa.Text(), nullable=True),
    sa.Column('member_count', sa.Integer(), nullable=True),
    sa.CheckConstraint('lag IS NULL OR lag >= 0', name=op.f('ck_consumer_lag_history_lag_nonnegative')),
    sa.CheckConstraint('partition >= 0', name=op.f('ck_consumer_lag_history_partition_nonnegative')),
    sa.PrimaryKeyConstraint('consumer_group_id', 'topic_name', 'partition', 'timestamp', name=op.f('pk_consumer_lag_history')),
    postgresql_partition_by='RANGE ("timestamp")'
    )
    op.create_index('ix_consumer_lag_history_service_timestamp', 'consumer_lag_history', ['service_name', 'timestamp'], unique=False)
    op.create_index('ix_consumer_lag_history_topic_timestamp', 'consumer_lag_history', ['topic_name', 'timestamp'], unique=False)
    op.create_table('consumer_processing_metrics',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('timestamp', sa.TIMESTAMP(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('service_name', sa.Text(), nullable=False),
    sa.Column('consumer_group_id', sa.Text(), nullable=True),
    sa.Column('topic_name', sa.Text(), nullable=True),
    sa.Column('batch_size', sa.Integer(), nullable=False),
    sa.Column('messages_processed', sa.Integer(), nullable=False),
    sa.Column('messages_failed', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('processing_time_ms', sa.Double(), nullable=False),
    sa.Column('messages_per_second', sa.Double(), nullable=True),
    sa.CheckConstraint('batch_size >= 0', name=op.f('ck_consumer_processing_metrics_batch_size_nonnegative')),
    sa.CheckConstraint('messages_failed >= 0', name=op.f('ck_consumer_processing_metrics_messages_failed_nonnegative')),
    sa.CheckConstraint('messages_processed >= 0', name=op.f('ck_consumer_processing_metrics_messages_processed_nonnegative')),
    sa.CheckConstraint('processing_time_ms >= 0', name=op.f('ck_consumer_processing_metrics_processing_time_nonnegative')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consumer_processing_metrics'))
    )
    op.create_index('ix_consumer_processing_metrics_service_timestamp', 'consumer_processing_metrics', ['service_name', 'timestamp'], unique=False)
    op.create_table('pipeline_consumer_configs',
    sa.Column('service_name', sa.Text(), nullable=False),
    sa.Column('consumer_group_id', sa.Text(), nullable=False),
    sa.Column('max_poll_records', sa.Integer(), server_default=sa.text('500'), nullable=False),
    sa.Column('max_poll_interval_ms', sa.Integer(), server_default=sa.text('300000'), nullable=False),
    sa.Column('session_timeout_ms', sa.Integer(), server_default=sa.text('45000'), nullable=False),
    sa.Column('heartbeat_interval_ms', sa.Integer(), server_default=sa.text('3000'), nullable=False),
    sa.Column('fetch_min_bytes', sa.Integer(), server_default=sa.text('1'), nullable=False),
    sa.Column('fetch_max_bytes', sa.BigInteger(), server_default=sa.text('52428800'), nullable=False),
    sa.Column('fetch_max_wait_ms', sa.Integer(), server_default=sa.text('500'), nullable=False),
    sa.Column('max_partition_fetch_bytes', sa.Integer(), server_default=sa.text('1048576'), nullable=False),
    sa.Column('request_timeout_ms', sa.Integer(), server_default=sa.text('30000'), nullable=False),
    sa.Column('retry_backoff_ms', sa.Integer(), server_default=sa.text('100'), nullable=False),
    sa.Column('reconnect_backoff_ms', sa.Integer(), server_default=sa.text('50'), nullable=False),
    sa.Column('reconnect_backoff_max_ms', sa.Integer(), server_default=sa.text('1000'), nullable=False),
    sa.Column('enable_auto_commit', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('auto_commit_interval_ms', sa.Integer(), server_default=sa.text('5000'), nullable=False),
    sa.Column('auto_offset_reset', sa.Text(), server_default=sa.text("'latest'"), nullable=False),
    sa.Column('partition_assignment_strategy', sa.Text(), server_default=sa.text("'range'"), nullable=False),
    sa.Column('isolation_level', sa.Text(), server_default=sa.text("'read_committed'"), nullable=False),
    sa.Column('profile', sa.Text(), nullable=True),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('version', sa.Integer(), server_default=sa.text('1'), nullable=False),
    sa.Column('created_at', sa.TIMESTAMP(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.TIMESTAMP(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_by', sa.Text(), nullable=True),
    sa.CheckConstraint("auto_offset_reset IN ('earliest', 'latest', 'none')", name=op.f('ck_pipeline_consumer_configs_auto_offset_reset')),
    sa.CheckConstraint("isolation_level IN ('read_committed', 'read_uncommitted')", name=op.f('ck_pipeline_consumer_configs_isolation_level')),
    sa.CheckConstraint("partition_assignment_strategy IN ('range', 'roundrobin', 'cooperative-sticky')", name=op.f('ck_pipeline_consumer_configs_partition_assignment_strategy')),
    sa.CheckConstraint("service_name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,248}$'", name=op.f('ck_pipeline_consumer_configs_service_name_format')),
    sa.CheckConstraint('auto_commit_interval_ms BETWEEN 0 AND 86400000', name=op.f('ck_pipeline_consumer_configs_auto_commit_interval_ms')),
    sa.CheckConstraint('fetch_max_bytes BETWEEN 1024 AND 2147483135', name=op.f('ck_pipeline_consumer_configs_fetch_max_bytes')),
    sa.CheckConstraint('fetch_max_wait_ms BETWEEN 0 AND 300000', name=op.f('ck_pipeline_consumer_configs_fetch_max_wait_ms')),
    sa.CheckConstraint('fetch_min_bytes <= fetch_max_bytes', name=op.f('ck_pipeline_consumer_configs_fetch_min_within_fetch_max')),
    sa.CheckConstraint('fetch_min_bytes BETWEEN 1 AND 100000000', name=op.f('ck_pipeline_consumer_configs_fetch_min_bytes')),
    sa.CheckConstraint('heartbeat_interval_ms * 3 <= session_timeout_ms', name=op.f('ck_pipeline_consumer_configs_heartbeat_third_of_session')),
    sa.CheckConstraint('heartbeat_interval_ms BETWEEN 100 AND 1200000', name=op.f('ck_pipeline_consumer_configs_heartbeat_interval_ms')),
    sa.CheckConstraint('length(consumer_group_id) BETWEEN 1 AND 249', name=op.f('ck_pipeline_consumer_configs_consumer_group_id_length')),
    sa.CheckConstraint('max_partition_fetch_bytes BETWEEN 1 AND 1000000000', name=op.f('ck_pipeline_consumer_configs_max_partition_fetch_bytes')),
    sa.CheckConstraint('max_poll_interval_ms >= session_timeout_ms', name=op.f('ck_pipeline_consumer_configs_poll_interval_covers_session')),
    sa.CheckConstraint('max_poll_interval_ms BETWEEN 1000 AND 86400000', name=op.f('ck_pipeline_consumer_configs_max_poll_interval_ms')),
    sa.CheckConstraint('max_poll_records BETWEEN 1 AND 100000', name=op.f('ck_pipeline_consumer_configs_max_poll_records')),
    sa.CheckConstraint('reconnect_backoff_max_ms >= reconnect_backoff_ms', name=op.f('ck_pipeline_consumer_configs_reconnect_backoff_ordered')),
    sa.CheckConstraint('reconnect_backoff_max_ms BETWEEN 0 AND 3600000', name=op.f('ck_pipeline_consumer_configs_reconnect_backoff_max_ms')),
    sa.CheckConstraint('reconnect_backoff_ms BETWEEN 0 AND 3600000', name=op.f('ck_pipeline_consumer_configs_reconnect_backoff_ms')),
    sa.CheckConstraint('request_timeout_ms >= fetch_max_wait_ms + 1000', name=op.f('ck_pipeline_consumer_configs_request_timeout_covers_fetch_wait')),
    sa.CheckConstraint('request_timeout_ms BETWEEN 1000 AND 300000', name=op.f('ck_pipeline_consumer_configs_request_timeout_ms')),
    sa.CheckConstraint('retry_backoff_ms BETWEEN 1 AND 300000', name=op.f('ck_pipeline_consumer_configs_retry_backoff_ms')),
    sa.CheckConstraint('session_timeout_ms BETWEEN 1000 AND 3600000', name=op.f('ck_pipeline_consumer_configs_session_timeout_ms')),
    sa.CheckConstraint('version >= 1', name=op.f('ck_pipeline_consumer_configs_version_positive')),
    sa.PrimaryKeyConstraint('service_name', name=op.f('pk_pipeline_consumer_configs')),
    sa.UniqueConstraint('consumer_group_id', name=op.f('uq_pipeline_consumer_configs_consumer_group_id'))
    )
    op.create_table('topic_partition_changes',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('topic_name', sa.Text(), nullable=False),
    sa.Column('current_partitions', sa.Integer(), nullable=False),
    sa.Column('recommended_partitions', sa.Integer(), nullable=False),
    sa.Column('reason', sa.Text(), server_default=sa.text("''"), nullable=False),
    sa.Column('applied', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('applied_at', sa.TIMESTAMP(timezone=True), nullable=True),
    sa.Column('applied_by', sa.Text(), nullable=True),
    sa.Column('status', sa.Text(), server_default=sa.text("'pending'"), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.TIMESTAMP(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('source', sa.Text(), server_default=sa.text("'manual'"), nullable=False),
    sa.CheckConstraint("applied = (status = 'applied')", name=op.f('ck_topic_partition_changes_applied_matches_status')),
    sa.CheckConstraint("status IN ('pending', 'applied', 'failed', 'superseded')", name=op.f('ck_topic_partition_changes_status_allowed')),
    sa.CheckConstraint('current_partitions >= 1', name=op.f('ck_topic_partition_changes_current_partitions_positive')),
    sa.CheckConstraint('recommended_partitions > current_partitions', name=op.f('ck_topic_partition_changes_increase_only')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_topic_partition_changes'))
    )
    op.create_index('ix_topic_partition_changes_topic_created_at', 'topic_partition_changes', ['topic_name', 'created_at'], unique=False)
    op.create_index('uq_topic_partition_changes_one_pending', 'topic_partition_changes', ['topic_name'], unique=True, postgresql_where=sa.text("status = 'pending'"))
    # Samples outside every daily partition land here instead of failing the insert.
    op.execute('CREATE TABLE consumer_lag_history_default PARTITION OF consumer_lag_history DEFAULT')
    for name, version in ENTITIES:
        op.create_entity(entity(name, version))
    op.execute('SELECT ensure_lag_history_partitions(1, 7)')


def downgrade() -> None:
    for name, version in reversed(ENTITIES):
        op.drop_entity(entity(name, version))
    op.drop_index('uq_topic_partition_changes_one_pending', table_name='topic_partition_changes', postgresql_where=sa.text("status = 'pending'"))
    op.drop_index('ix_topic_partition_changes_topic_created_at', table_name='topic_partition_changes')
    op.drop_table('topic_partition_changes')
    op.drop_table('pipeline_consumer_configs')
    op.drop_index('ix_consumer_processing_metrics_service_timestamp', table_name='consumer_processing_metrics')
    op.drop_table('consumer_processing_metrics')
    op.drop_index('ix_consumer_lag_history_topic_timestamp', table_name='consumer_lag_history')
    op.drop_index('ix_consumer_lag_history_service_timestamp', table_name='consumer_lag_history')
    op.drop_table('consumer_lag_history')
    op.drop_index('ix_consumer_config_changes_service_changed_at', table_name='consumer_config_changes')
    op.drop_table('consumer_config_changes')
