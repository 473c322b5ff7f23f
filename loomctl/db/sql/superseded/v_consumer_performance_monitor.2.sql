CREATE OR REPLACE VIEW public.v_consumer_performance_monitor AS
-- One row per configured service, computed from what was measured: lag from the last 15
-- minutes of samples (or the window a session sets: SET loomctl.status_window = '1h', which
-- `loomctl alerts --window` and `loomctl recommend --window` do) (status per partition by lag_partition_status, the group takes its worst
-- partition's), processing from the last hour of metrics against the service's own settings,
-- and a recommendation that quotes the numbers it is based on.
--
-- Plan (10 million history rows, 200 services; bench/views.py): the lag part reads only the
-- window's rows (partition pruning on "timestamp", then ix_consumer_lag_history_timestamp),
-- hashed by partition (see lag_partition_status); the metrics part is one range
-- scan of the last hour on ix_consumer_processing_metrics_timestamp, never a scan of the
-- whole table. Both keep the plan's cost far below jit_above_cost: JIT compilation alone
-- would take longer than the query.
WITH st AS (
    SELECT * FROM public.lag_partition_status(
        coalesce(nullif(current_setting('loomctl.status_window', true), '')::interval, '00:15:00'::interval))
), lag AS (
    SELECT st.consumer_group_id,
           count(*)::integer AS partitions,
           count(*) FILTER (WHERE st.status = 'ERR')::integer AS partitions_without_commit,
           sum(st.last_lag) AS total_lag,
           round(avg(st.last_lag), 1) AS avg_lag,
           max(st.last_lag) AS max_lag,
           sum(st.last_lag) - sum(st.first_lag) AS lag_change,
           max(st.time_lag_ms) AS time_lag_ms,
           max(st.member_count) AS member_count,
           max(st.group_state) AS group_state,
           max(st.last_timestamp) AS last_sample_at,
           round(extract(epoch FROM max(st.last_timestamp) - min(st.first_timestamp)))::integer AS sampled_seconds,
           round(sum(st.log_end_offset - st.first_log_end_offset)
                 / nullif(extract(epoch FROM max(st.last_timestamp) - min(st.first_timestamp)), 0), 1) AS produce_rate,
           round(sum(st.last_committed_offset - st.first_committed_offset)
                 / nullif(extract(epoch FROM max(st.last_timestamp) - min(st.first_timestamp)), 0), 1) AS consume_rate,
           (ARRAY['OK', 'WARN', 'REWIND', 'ERR', 'STALL', 'STOP'])[
               max(array_position(ARRAY['OK', 'WARN', 'REWIND', 'ERR', 'STALL', 'STOP'], st.status))] AS status,
           string_agg(st.status || ' ' || st.topic_name || '[' || st.partition || ']', ', '
                      ORDER BY array_position(ARRAY['OK', 'WARN', 'REWIND', 'ERR', 'STALL', 'STOP'], st.status) DESC,
                               st.topic_name, st.partition)
               FILTER (WHERE st.status <> 'OK') AS flagged_partitions,
           (array_agg(st.topic_name || '[' || st.partition || ']: ' || st.evidence
                      ORDER BY array_position(ARRAY['OK', 'WARN', 'REWIND', 'ERR', 'STALL', 'STOP'], st.status) DESC,
                               st.last_lag DESC NULLS FIRST))[1] AS evidence
      FROM st
     GROUP BY st.consumer_group_id
), m AS (
    SELECT pm.service_name,
           count(*)::integer AS batches,
           round(avg(pm.batch_size), 1) AS avg_batch_size,
           sum(pm.batch_size) AS messages_received,
           sum(pm.messages_processed) AS messages_processed,
           sum(pm.messages_failed) AS messages_failed,
           round(avg(pm.processing_time_ms)::numeric, 1) AS avg_processing_time_ms,
           round(max(pm.processing_time_ms)::numeric, 1) AS max_processing_time_ms,
           round((sum(pm.processing_time_ms) / nullif(sum(pm.batch_size), 0))::numeric, 3) AS ms_per_message,
           round((sum(pm.messages_processed) * 1000.0 / nullif(sum(pm.processing_time_ms), 0))::numeric, 1)
               AS messages_per_second
      FROM public.consumer_processing_metrics AS pm
     WHERE pm."timestamp" > now() - interval '1 hour'
     GROUP BY pm.service_name
), j AS (
    SELECT c.service_name, c.consumer_group_id, c.profile, c.max_poll_records, c.max_poll_interval_ms,
           coalesce(l.status, 'NO_DATA') AS status,
           l.partitions, l.partitions_without_commit, l.total_lag, l.avg_lag, l.max_lag, l.lag_change,
           l.time_lag_ms, l.member_count, l.group_state, l.last_sample_at, l.sampled_seconds, l.produce_rate, l.consume_rate,
           m.batches, m.avg_batch_size,
           round(m.avg_batch_size / c.max_poll_records, 3) AS batch_efficiency,
           m.avg_processing_time_ms, m.max_processing_time_ms, m.ms_per_message,
           round(m.max_processing_time_ms / c.max_poll_interval_ms, 3) AS poll_interval_usage,
           round(m.ms_per_message * c.max_poll_records / c.max_poll_interval_ms, 3) AS full_batch_poll_usage,
           m.messages_per_second, m.messages_received, m.messages_failed,
           round(m.messages_failed::numeric / nullif(m.messages_received, 0), 4) AS error_rate,
           l.flagged_partitions, l.evidence
      FROM public.pipeline_consumer_configs AS c
      LEFT JOIN lag AS l ON l.consumer_group_id = c.consumer_group_id
      LEFT JOIN m ON m.service_name = c.service_name
)
SELECT j.*,
       CASE
           WHEN greatest(j.poll_interval_usage, j.full_batch_poll_usage) >= 0.8 THEN
               format('slowest batch took %s ms and a full batch of max_poll_records %s would take %s ms (%s ms per message), %s%% of max_poll_interval_ms %s: lower max_poll_records to %s or raise max_poll_interval_ms to %s before the group rebalances',
                      j.max_processing_time_ms, j.max_poll_records, round(j.ms_per_message * j.max_poll_records),
                      j.ms_per_message, round(greatest(j.poll_interval_usage, j.full_batch_poll_usage) * 100),
                      j.max_poll_interval_ms,
                      greatest(least(floor(j.max_poll_interval_ms * 0.5 / nullif(j.ms_per_message, 0)), j.max_poll_records - 1), 1),
                      least(ceil(greatest(j.max_processing_time_ms, j.ms_per_message * j.max_poll_records) * 2 / 1000.0) * 1000, 86400000))
           WHEN j.status = 'STOP' THEN
               format('committed offsets have not moved in %s s of samples while lag is %s (%s s behind) and the group has no members (%s): the consumer is stopped, start it',
                      j.sampled_seconds, j.total_lag, coalesce(round(j.time_lag_ms / 1000.0)::text, 'unknown'), coalesce(j.group_state, '0 members'))
           WHEN j.status = 'STALL' THEN
               format('committed offsets have not moved in %s s of samples while lag is %s (%s s behind) with %s members: the consumer is stuck (a failing message or a blocked commit)',
                      j.sampled_seconds, j.total_lag, coalesce(round(j.time_lag_ms / 1000.0)::text, 'unknown'), coalesce(j.member_count::text, 'unknown'))
           WHEN j.status = 'ERR' THEN
               format('%s of %s partitions hold messages but have no committed offset: the group has never committed there, lag is unknown',
                      j.partitions_without_commit, j.partitions)
           WHEN j.error_rate >= 0.05 THEN
               format('%s%% of messages failed in the last hour (%s of %s): fix the failures before tuning throughput',
                      round(j.error_rate * 100, 1), j.messages_failed, j.messages_received)
           WHEN j.status = 'REWIND' THEN
               format('a committed offset went back (%s): messages are being processed again', j.evidence)
           WHEN j.status = 'WARN' AND j.batch_efficiency >= 0.9 THEN
               format('batches are full (avg %s of max_poll_records %s) while lag grows by %s in %s s (%s msg/s produced, %s msg/s consumed): raise max_poll_records or add consumers and partitions',
                      j.avg_batch_size, j.max_poll_records, j.lag_change, j.sampled_seconds, j.produce_rate, j.consume_rate)
           WHEN j.status = 'WARN' AND j.batch_efficiency < 0.5 THEN
               format('avg batch %s of max_poll_records %s while lag grows by %s in %s s: fetches return too little, raise fetch_max_bytes / max_partition_fetch_bytes or lower fetch_min_bytes',
                      j.avg_batch_size, j.max_poll_records, j.lag_change, j.sampled_seconds)
           WHEN j.status = 'WARN' THEN
               format('lag grows by %s in %s s: %s msg/s produced, %s msg/s consumed (%s msg/s per member measured): add consumers (partitions permitting)',
                      j.lag_change, j.sampled_seconds, j.produce_rate, j.consume_rate, coalesce(j.messages_per_second::text, 'unknown'))
       END AS recommendation
  FROM j
