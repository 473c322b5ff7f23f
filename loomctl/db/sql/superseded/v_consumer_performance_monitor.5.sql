CREATE OR REPLACE VIEW public.v_consumer_performance_monitor AS
-- One row per configured service, computed from what was measured: lag from the last 15
-- minutes of samples (or the window a session sets: SET loomctl.status_window = '1h', which
-- `loomctl alerts --window` and `loomctl recommend --window` do) (status per partition by lag_partition_status, the group takes its worst
-- partition's), processing from the last hour of metrics against the service's own settings,
-- and a recommendation that quotes the numbers it is based on. group_type is what the broker
-- reports the group runs (classic or consumer), group_protocol what the service's config says.
--
-- Each service against its lag objective (lag_slo_seconds: its own, else its profile's default;
-- lag_objectives): lag in time, catch-up and breach predictions per partition, the group following its
-- slowest partition (the arithmetic and its rules: lag_group_status_live). slo_state: no_slo, no_data
-- (no lag in time known), breached (over the objective), at_risk (a breach within the window, or a
-- catch-up longer than the objective or never), else met.
--
-- Plan (2,000 services, 15,000 partitions sampled every 30 s, one batch per service every 30 s;
-- bench/views.py). Nothing here reads the window's samples or the hour's batches row by row:
--   the groups' figures come from lag_group_status: the copy the collector keeps after each cycle
--   (2,000 rows) while it holds, else computed from the history (lag_group_status_live);
--   the processing figures from processing_metrics_last_hour: the sums per service and minute,
--   five minutes and half hour that a trigger keeps at every write of consumer_processing_metrics
--   (consumer_processing_metrics_rollup), at most 11 rows per service where the hour's rows were
--   120 at one batch every 30 s (hashing them took ~140 ms).
-- Either way this plan's cost stays far below jit_above_cost, whatever the number of services: what
-- scales with them (the groups' computation when it runs, the hour's batches) are functions with
-- jit off. JIT compilation of this view took ~400 ms at 2,000 services, longer than the query.
WITH g AS (
    SELECT * FROM public.lag_group_status(
        coalesce(nullif(current_setting('loomctl.status_window', true), '')::interval, '00:15:00'::interval))
), m AS (
    SELECT * FROM public.processing_metrics_last_hour()
), j AS (
    SELECT c.service_name, c.consumer_group_id, c.profile, c.max_poll_records, c.max_poll_interval_ms,
           coalesce(g.status, 'NO_DATA') AS status,
           g.partitions, g.partitions_without_commit, g.total_lag, g.avg_lag, g.max_lag, g.lag_change,
           g.time_lag_ms, g.member_count, g.group_state, g.group_type, c.group_protocol, g.last_sample_at, g.sampled_seconds, g.produce_rate, g.consume_rate,
           m.batches, m.avg_batch_size,
           round(m.avg_batch_size / c.max_poll_records, 3) AS batch_efficiency,
           m.avg_processing_time_ms, m.max_processing_time_ms, m.ms_per_message,
           round(m.max_processing_time_ms / c.max_poll_interval_ms, 3) AS poll_interval_usage,
           round(m.ms_per_message * c.max_poll_records / c.max_poll_interval_ms, 3) AS full_batch_poll_usage,
           m.messages_per_second, m.messages_received, m.messages_failed,
           round(m.messages_failed::numeric / nullif(m.messages_received, 0), 4) AS error_rate,
           g.flagged_partitions, g.evidence,
           o.lag_slo_seconds,
           round(g.time_lag_seconds, 3) AS time_lag_seconds,
           round(g.catch_up_seconds, 1) AS catch_up_seconds,
           coalesce(g.catch_up_never, false) AS catch_up_never,
           round(g.breach_in_seconds, 1) AS breach_in_seconds,
           CASE
               WHEN o.lag_slo_seconds IS NULL THEN 'no_slo'
               WHEN g.time_lag_seconds IS NULL THEN 'no_data'
               WHEN g.time_lag_seconds > o.lag_slo_seconds THEN 'breached'
               WHEN g.breach_in_seconds <= extract(epoch FROM
                        coalesce(nullif(current_setting('loomctl.status_window', true), '')::interval, '00:15:00'::interval))
                    OR g.catch_up_never OR g.catch_up_seconds > o.lag_slo_seconds THEN 'at_risk'
               ELSE 'met'
           END AS slo_state,
           g.slowest_partition
      FROM public.pipeline_consumer_configs AS c
      LEFT JOIN public.lag_objectives() AS o ON o.consumer_group_id = c.consumer_group_id
      LEFT JOIN g ON g.consumer_group_id = c.consumer_group_id
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
           WHEN j.slo_state IN ('breached', 'at_risk') THEN
               format('%s s behind against the objective of %s s (%s), catch-up %s at %s msg/s produced, %s msg/s consumed: add consumers and partitions (`loomctl lag slo %s` counts them)',
                      round(j.time_lag_seconds, 1), j.lag_slo_seconds, j.slo_state,
                      CASE WHEN j.catch_up_never THEN 'never' ELSE j.catch_up_seconds || ' s' END,
                      j.produce_rate, j.consume_rate, j.service_name)
       END AS recommendation
  FROM j
