CREATE OR REPLACE VIEW public.v_consumer_performance_monitor AS
-- One row per configured service, computed from what was measured: lag from the last 15
-- minutes of samples (or the window a session sets: SET loomctl.status_window = '1h', which
-- `loomctl alerts --window` and `loomctl recommend --window` do) (status per partition by lag_partition_status, the group takes its worst
-- partition's), processing from the last hour of metrics against the service's own settings,
-- and a recommendation that quotes the numbers it is based on. group_type is what the broker
-- reports the group runs (classic or consumer), group_protocol what the service's config says.
--
-- Each service against its lag objective (lag_slo_seconds: its own, else its profile's default), the
-- arithmetic of loomctl/lag/slo.py (tests/lag/test_slo_views.py compares the two on the same rows), per
-- partition over the window: produce and consume rates from the offset deltas; caught up when the lag is 0
-- or at most one sampling interval's production; catch_up_seconds = lag / (consume - produce) where the
-- consumer gains, 0 when caught up, NULL with catch_up_never where it does not gain; lag in time grows
-- 1 - consume / produce seconds a second (idle topic: 1 while nothing is consumed, else 0), so
-- breach_in_seconds = (objective - lag in time) / growth, 0 when over it already. The group follows its
-- slowest partition: the latest catch-up (never if any partition never), the highest lag in time, the
-- soonest breach. slo_state: no_slo, no_data (no lag in time known), breached (over the objective),
-- at_risk (a breach within the window, or a catch-up longer than the objective or never), else met.
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
), objective AS (
    -- the profiles' defaults are loomctl.lag.slo.PROFILE_LAG_SLO_SECONDS
    SELECT c.consumer_group_id,
           coalesce(c.lag_slo_seconds, CASE c.profile WHEN 'ai-model' THEN 600 WHEN 'fast' THEN 30
                                                      WHEN 'io-bound' THEN 120 WHEN 'database-writer' THEN 60 END)
               AS lag_slo_seconds
      FROM public.pipeline_consumer_configs AS c
), sr AS (
    SELECT st.consumer_group_id, st.topic_name, st.partition, st.samples, st.last_lag, st.time_lag_ms,
           st.first_committed_offset, st.last_committed_offset,
           st.time_lag_ms / 1000.0 AS time_lag_seconds, o.lag_slo_seconds,
           st.log_end_offset - st.first_log_end_offset AS produced,
           CASE WHEN extract(epoch FROM st.last_timestamp - st.first_timestamp) > 0
                     AND st.log_end_offset - st.first_log_end_offset >= 0
                THEN (st.log_end_offset - st.first_log_end_offset) / extract(epoch FROM st.last_timestamp - st.first_timestamp)
           END AS produce_rate,
           extract(epoch FROM st.last_timestamp - st.first_timestamp) AS span
      FROM st
      LEFT JOIN objective AS o ON o.consumer_group_id = st.consumer_group_id
), sc AS (
    SELECT sr.*,
           CASE WHEN sr.produce_rate IS NOT NULL
                THEN (sr.last_committed_offset - sr.first_committed_offset) / sr.span END AS consume_rate,
           coalesce(sr.last_lag = 0 OR (sr.samples >= 2 AND sr.last_lag <= sr.produced::numeric / (sr.samples - 1)),
                    false) AS caught_up
      FROM sr
), sg AS (
    SELECT sc.*,
           CASE WHEN sc.last_lag IS NULL THEN NULL
                WHEN sc.caught_up THEN 0
                WHEN sc.consume_rate - sc.produce_rate > 0 THEN sc.last_lag / (sc.consume_rate - sc.produce_rate)
           END AS catch_up_seconds,
           coalesce(sc.last_lag IS NOT NULL AND NOT sc.caught_up AND sc.consume_rate - sc.produce_rate <= 0, false)
               AS catch_up_never,
           CASE WHEN sc.consume_rate IS NULL THEN NULL
                WHEN sc.produce_rate > 0 THEN 1 - greatest(sc.consume_rate, 0) / sc.produce_rate
                WHEN sc.consume_rate <= 0 AND coalesce(sc.last_lag, 0) > 0 THEN 1
                ELSE 0
           END AS time_lag_growth
      FROM sc
), sp AS (
    SELECT sg.*,
           CASE WHEN sg.lag_slo_seconds IS NULL OR sg.time_lag_seconds IS NULL THEN NULL
                WHEN sg.time_lag_seconds > sg.lag_slo_seconds THEN 0
                WHEN NOT sg.caught_up AND sg.time_lag_growth > 0
                    THEN (sg.lag_slo_seconds - sg.time_lag_seconds) / sg.time_lag_growth
           END AS breach_in_seconds
      FROM sg
), slo AS (
    SELECT sp.consumer_group_id,
           bool_or(sp.catch_up_never) AS catch_up_never,
           CASE WHEN NOT bool_or(sp.catch_up_never) THEN max(sp.catch_up_seconds) END AS catch_up_seconds,
           max(sp.time_lag_seconds) AS time_lag_seconds,
           min(sp.breach_in_seconds) AS breach_in_seconds,
           CASE WHEN bool_or(sp.catch_up_never) OR max(sp.catch_up_seconds) > 0 OR max(sp.time_lag_seconds) IS NOT NULL THEN
               (array_agg(sp.topic_name || '[' || sp.partition || ']'
                          ORDER BY sp.catch_up_never DESC, CASE WHEN sp.catch_up_never THEN sp.last_lag END DESC NULLS LAST,
                                   nullif(sp.catch_up_seconds, 0) DESC NULLS LAST, sp.time_lag_seconds DESC NULLS LAST,
                                   sp.topic_name, sp.partition))[1]
           END AS slowest_partition
      FROM sp
     GROUP BY sp.consumer_group_id
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
           max(st.group_type) AS group_type,
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
           l.time_lag_ms, l.member_count, l.group_state, l.group_type, c.group_protocol, l.last_sample_at, l.sampled_seconds, l.produce_rate, l.consume_rate,
           m.batches, m.avg_batch_size,
           round(m.avg_batch_size / c.max_poll_records, 3) AS batch_efficiency,
           m.avg_processing_time_ms, m.max_processing_time_ms, m.ms_per_message,
           round(m.max_processing_time_ms / c.max_poll_interval_ms, 3) AS poll_interval_usage,
           round(m.ms_per_message * c.max_poll_records / c.max_poll_interval_ms, 3) AS full_batch_poll_usage,
           m.messages_per_second, m.messages_received, m.messages_failed,
           round(m.messages_failed::numeric / nullif(m.messages_received, 0), 4) AS error_rate,
           l.flagged_partitions, l.evidence,
           o.lag_slo_seconds,
           round(s.time_lag_seconds, 3) AS time_lag_seconds,
           round(s.catch_up_seconds, 1) AS catch_up_seconds,
           coalesce(s.catch_up_never, false) AS catch_up_never,
           round(s.breach_in_seconds, 1) AS breach_in_seconds,
           CASE
               WHEN o.lag_slo_seconds IS NULL THEN 'no_slo'
               WHEN s.time_lag_seconds IS NULL THEN 'no_data'
               WHEN s.time_lag_seconds > o.lag_slo_seconds THEN 'breached'
               WHEN s.breach_in_seconds <= extract(epoch FROM
                        coalesce(nullif(current_setting('loomctl.status_window', true), '')::interval, '00:15:00'::interval))
                    OR s.catch_up_never OR s.catch_up_seconds > o.lag_slo_seconds THEN 'at_risk'
               ELSE 'met'
           END AS slo_state,
           s.slowest_partition
      FROM public.pipeline_consumer_configs AS c
      LEFT JOIN objective AS o ON o.consumer_group_id = c.consumer_group_id
      LEFT JOIN lag AS l ON l.consumer_group_id = c.consumer_group_id
      LEFT JOIN slo AS s ON s.consumer_group_id = c.consumer_group_id
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
