CREATE OR REPLACE VIEW public.v_consumer_alerts AS
-- Active alerts, one row each, from measured lag and processing (never from hand-entered
-- expectations). severity is 'warning' or 'critical'.
SELECT mon.service_name, mon.consumer_group_id, a.alert_type, a.severity, a.message, a.value, a.threshold,
       coalesce(mon.last_sample_at, now()) AS detected_at
  FROM public.v_consumer_performance_monitor AS mon
 CROSS JOIN LATERAL (VALUES
    ('consumer_stopped', 'critical', mon.status = 'STOP',
     format('no member commits while lag is %s', mon.total_lag), mon.total_lag::numeric, 0::numeric),
    ('consumer_stalled', 'critical', mon.status = 'STALL',
     format('committed offset has not moved while lag is %s', mon.total_lag), mon.total_lag::numeric, 0::numeric),
    ('offset_rewind', 'warning', mon.status = 'REWIND',
     'committed offset went back: messages are being re-processed', NULL::numeric, NULL::numeric),
    ('no_committed_offset', 'warning', mon.status = 'ERR',
     format('%s partitions have data but no committed offset', mon.partitions_without_commit),
     mon.partitions_without_commit::numeric, 0::numeric),
    ('lag_growing', 'warning', mon.status = 'WARN',
     format('lag grew by %s to %s over 15 minutes', mon.lag_change, mon.total_lag), mon.lag_change::numeric, 0::numeric),
    ('high_time_lag', CASE WHEN mon.time_lag_ms >= 300000 THEN 'critical' ELSE 'warning' END, mon.time_lag_ms >= 60000,
     format('oldest unconsumed message is %s s behind', round(mon.time_lag_ms / 1000.0)),
     mon.time_lag_ms::numeric, 60000::numeric),
    ('rebalance_risk', CASE WHEN mon.poll_interval_usage >= 0.95 THEN 'critical' ELSE 'warning' END,
     mon.poll_interval_usage >= 0.8,
     format('slowest batch %s ms is %s%% of max_poll_interval_ms', mon.max_processing_time_ms,
            round(mon.poll_interval_usage * 100)),
     mon.poll_interval_usage, 0.8::numeric),
    ('high_error_rate', CASE WHEN mon.error_rate >= 0.2 THEN 'critical' ELSE 'warning' END, mon.error_rate >= 0.05,
     format('%s%% of messages failed in the last hour', round(mon.error_rate * 100, 1)), mon.error_rate, 0.05::numeric)
 ) AS a(alert_type, severity, active, message, value, threshold)
 WHERE a.active
