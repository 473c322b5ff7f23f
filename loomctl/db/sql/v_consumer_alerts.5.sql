CREATE OR REPLACE VIEW public.v_consumer_alerts AS
-- Active alerts, one row each, from measured lag and processing (never from hand-entered
-- expectations): the status of the group's partitions over the last 15 minutes (or loomctl.status_window), lag in time,
-- processing time against max_poll_interval_ms and the error rate of the last hour.
-- severity is 'warning' or 'critical'; value is compared with threshold; evidence is what the
-- status rests on (the first and last sample of the window of the worst partition).
-- slo_breached (critical) and slo_at_risk (warning) judge the lag in time against the service's
-- objective (v_consumer_performance_monitor's slo_state): value is the lag in time in seconds,
-- threshold the objective.
--
-- A message is formatted only for the alerts that are active (the CASE on alert_type, after the
-- filter), not for every kind of every service: at 2,000 services the 20,000 format() calls took
-- about as long as the monitor view under it.
SELECT mon.service_name, mon.consumer_group_id, a.alert_type, a.severity,
       CASE a.alert_type
           WHEN 'consumer_stopped' THEN
               format('committed offsets stopped while lag is %s and the group has no members (%s): %s',
                      mon.total_lag, coalesce(mon.group_state, '0 members'), mon.flagged_partitions)
           WHEN 'consumer_stalled' THEN
               format('committed offsets do not move while lag is %s with %s members: %s',
                      mon.total_lag, coalesce(mon.member_count::text, 'unknown'), mon.flagged_partitions)
           WHEN 'offset_rewind' THEN
               format('committed offset went back, messages are processed again: %s', mon.flagged_partitions)
           WHEN 'no_committed_offset' THEN
               format('%s of %s partitions hold messages but have no committed offset (lag unknown)',
                      mon.partitions_without_commit, mon.partitions)
           WHEN 'lag_growing' THEN
               format('lag keeps growing: by %s to %s in %s s (%s msg/s produced, %s msg/s consumed)',
                      mon.lag_change, mon.total_lag, mon.sampled_seconds, mon.produce_rate, mon.consume_rate)
           WHEN 'high_time_lag' THEN
               format('oldest unconsumed message is %s s behind (lag %s)', round(mon.time_lag_ms / 1000.0), mon.total_lag)
           WHEN 'rebalance_risk' THEN
               format('slowest batch %s ms, a full batch of %s about %s ms: %s%% of max_poll_interval_ms %s',
                      mon.max_processing_time_ms, mon.max_poll_records, round(mon.ms_per_message * mon.max_poll_records),
                      round(greatest(mon.poll_interval_usage, mon.full_batch_poll_usage) * 100), mon.max_poll_interval_ms)
           WHEN 'high_error_rate' THEN
               format('%s%% of messages failed in the last hour (%s of %s)', round(mon.error_rate * 100, 1),
                      mon.messages_failed, mon.messages_received)
           WHEN 'slo_breached' THEN
               format('%s s behind, over the objective of %s s; catch-up %s (slowest %s, lag %s)',
                      round(mon.time_lag_seconds, 1), mon.lag_slo_seconds,
                      CASE WHEN mon.catch_up_never THEN 'never' ELSE coalesce(mon.catch_up_seconds || ' s', 'unknown') END,
                      coalesce(mon.slowest_partition, 'unknown'), mon.total_lag)
           WHEN 'slo_at_risk' THEN
               format('%s s behind against the objective of %s s; breach in %s, catch-up %s (slowest %s, lag %s)',
                      round(mon.time_lag_seconds, 1), mon.lag_slo_seconds,
                      coalesce(mon.breach_in_seconds || ' s', 'none predicted'),
                      CASE WHEN mon.catch_up_never THEN 'never' ELSE coalesce(mon.catch_up_seconds || ' s', 'unknown') END,
                      coalesce(mon.slowest_partition, 'unknown'), mon.total_lag)
       END AS message,
       a.value, a.threshold, coalesce(mon.last_sample_at, now()) AS detected_at, mon.status, mon.evidence,
       mon.cluster_name
  FROM public.v_consumer_performance_monitor AS mon
 CROSS JOIN LATERAL (VALUES
    ('consumer_stopped', 'critical', mon.status = 'STOP', mon.total_lag::numeric, 0::numeric),
    ('consumer_stalled', 'critical', mon.status = 'STALL', mon.total_lag::numeric, 0::numeric),
    ('offset_rewind', 'warning', mon.status = 'REWIND', mon.total_lag::numeric, NULL::numeric),
    ('no_committed_offset', 'warning', mon.status = 'ERR', mon.partitions_without_commit::numeric, 0::numeric),
    ('lag_growing', 'warning', mon.status = 'WARN', mon.lag_change::numeric, 0::numeric),
    ('high_time_lag', CASE WHEN mon.time_lag_ms >= 300000 THEN 'critical' ELSE 'warning' END, mon.time_lag_ms >= 60000,
     mon.time_lag_ms::numeric, 60000::numeric),
    ('rebalance_risk',
     CASE WHEN greatest(mon.poll_interval_usage, mon.full_batch_poll_usage) >= 0.95 THEN 'critical' ELSE 'warning' END,
     greatest(mon.poll_interval_usage, mon.full_batch_poll_usage) >= 0.8,
     greatest(mon.poll_interval_usage, mon.full_batch_poll_usage), 0.8::numeric),
    ('high_error_rate', CASE WHEN mon.error_rate >= 0.2 THEN 'critical' ELSE 'warning' END, mon.error_rate >= 0.05,
     mon.error_rate, 0.05::numeric),
    ('slo_breached', 'critical', mon.slo_state = 'breached', mon.time_lag_seconds, mon.lag_slo_seconds::numeric),
    ('slo_at_risk', 'warning', mon.slo_state = 'at_risk', mon.time_lag_seconds, mon.lag_slo_seconds::numeric)
 ) AS a(alert_type, severity, active, value, threshold)
 WHERE a.active
