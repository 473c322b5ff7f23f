CREATE OR REPLACE VIEW public.v_consumer_performance_monitor AS
-- One row per configured service: lag from the last 15 minutes of samples (status by
-- lag_partition_status), processing from the last hour of metrics, and a recommendation
-- that quotes the numbers it is based on.
WITH st AS (
    SELECT * FROM public.lag_partition_status('00:15:00'::interval)
), lag AS (
    SELECT st.consumer_group_id,
           count(*)::integer AS partitions,
           count(*) FILTER (WHERE st.last_committed_offset IS NULL)::integer AS partitions_without_commit,
           sum(st.last_lag) AS total_lag,
           round(avg(st.last_lag), 1) AS avg_lag,
           max(st.last_lag) AS max_lag,
           sum(st.last_lag) - sum(st.first_lag) AS lag_change,
           max(st.time_lag_ms) AS time_lag_ms,
           max(st.member_count) AS member_count,
           max(st.last_timestamp) AS last_sample_at,
           (ARRAY['OK', 'WARN', 'REWIND', 'ERR', 'STALL', 'STOP'])[
               max(array_position(ARRAY['OK', 'WARN', 'REWIND', 'ERR', 'STALL', 'STOP'], st.status))] AS status
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
           round((sum(pm.messages_processed) * 1000.0 / nullif(sum(pm.processing_time_ms), 0))::numeric, 1)
               AS messages_per_second
      FROM public.consumer_processing_metrics AS pm
     WHERE pm."timestamp" > now() - interval '1 hour'
     GROUP BY pm.service_name
), j AS (
    SELECT c.service_name, c.consumer_group_id, c.profile, c.max_poll_records, c.max_poll_interval_ms,
           coalesce(l.status, 'NO_DATA') AS status,
           l.partitions, l.partitions_without_commit, l.total_lag, l.avg_lag, l.max_lag, l.lag_change,
           l.time_lag_ms, l.member_count, l.last_sample_at,
           m.batches, m.avg_batch_size,
           round(m.avg_batch_size / c.max_poll_records, 3) AS batch_efficiency,
           m.avg_processing_time_ms, m.max_processing_time_ms,
           round(m.max_processing_time_ms / c.max_poll_interval_ms, 3) AS poll_interval_usage,
           m.messages_per_second,
           round(m.messages_failed::numeric / nullif(m.messages_received, 0), 4) AS error_rate
      FROM public.pipeline_consumer_configs AS c
      LEFT JOIN lag AS l ON l.consumer_group_id = c.consumer_group_id
      LEFT JOIN m ON m.service_name = c.service_name
)
SELECT j.*,
       CASE
           WHEN j.poll_interval_usage >= 0.8 THEN
               format('slowest batch took %s ms, %s%% of max_poll_interval_ms %s: lower max_poll_records (now %s) or raise max_poll_interval_ms before the group rebalances',
                      j.max_processing_time_ms, round(j.poll_interval_usage * 100), j.max_poll_interval_ms, j.max_poll_records)
           WHEN j.status IN ('STALL', 'STOP') THEN
               format('committed offsets have not moved for 15 minutes while lag is %s (%s members): the consumer is %s',
                      j.total_lag, coalesce(j.member_count::text, 'unknown'),
                      CASE j.status WHEN 'STOP' THEN 'stopped' ELSE 'stuck' END)
           WHEN j.error_rate >= 0.05 THEN
               format('%s%% of messages failed in the last hour: fix the failures before tuning throughput',
                      round(j.error_rate * 100, 1))
           WHEN j.status = 'WARN' AND j.batch_efficiency >= 0.9 THEN
               format('batches are full (avg %s of max_poll_records %s) while lag grows by %s: raise max_poll_records or add consumers and partitions',
                      j.avg_batch_size, j.max_poll_records, j.lag_change)
           WHEN j.status = 'WARN' AND j.batch_efficiency < 0.5 THEN
               format('avg batch %s of max_poll_records %s while lag grows by %s: fetches return too little, raise fetch_max_bytes / max_partition_fetch_bytes or lower fetch_min_bytes',
                      j.avg_batch_size, j.max_poll_records, j.lag_change)
           WHEN j.status = 'WARN' THEN
               format('lag grows by %s over 15 minutes at %s messages/s: add consumers (partitions permitting)',
                      j.lag_change, coalesce(j.messages_per_second::text, 'unknown'))
       END AS recommendation
  FROM j
