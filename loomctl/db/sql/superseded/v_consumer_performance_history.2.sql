CREATE OR REPLACE VIEW public.v_consumer_performance_history AS
-- Per service and minute: lag (per partition the highest sample of the minute, summed) beside
-- processing. A UNION ALL rather than a join, so that a filter on service_name and timestamp
-- reaches both tables. The minute is date_bin('1 minute', "timestamp", 2000-01-01 UTC), which
-- is immutable, so ix_consumer_lag_history_service_minute and
-- ix_consumer_processing_metrics_service_minute index exactly that expression: the guide's
-- WHERE service_name = ... AND timestamp > now() - interval '1 hour' is a range scan of one
-- service's last hour in each table, not of all its history.
SELECT u.service_name,
       u."timestamp",
       sum(u.lag) AS total_lag,
       round(avg(u.lag), 1) AS avg_lag,
       max(u.lag) AS max_lag,
       max(u.time_lag_ms) AS max_time_lag_ms,
       count(u.partition)::integer AS partitions,
       sum(u.batches)::integer AS batches,
       sum(u.messages_processed) AS messages_processed,
       sum(u.messages_failed) AS messages_failed,
       round((sum(u.processing_time_ms) / nullif(sum(u.batches), 0))::numeric, 1) AS avg_processing_time_ms,
       round((sum(u.messages_processed) * 1000.0 / nullif(sum(u.processing_time_ms), 0))::numeric, 1)
           AS messages_per_second
  FROM (
        SELECT h.service_name,
               date_bin('00:01:00'::interval, h."timestamp", '2000-01-01 00:00:00+00'::timestamp with time zone) AS "timestamp",
               h.topic_name, h.partition,
               max(h.lag) AS lag, max(h.time_lag_ms) AS time_lag_ms,
               NULL::bigint AS batches, NULL::bigint AS messages_processed, NULL::bigint AS messages_failed,
               NULL::double precision AS processing_time_ms
          FROM public.consumer_lag_history AS h
         GROUP BY h.service_name,
                  date_bin('00:01:00'::interval, h."timestamp", '2000-01-01 00:00:00+00'::timestamp with time zone),
                  h.topic_name, h.partition
        UNION ALL
        SELECT pm.service_name,
               date_bin('00:01:00'::interval, pm."timestamp", '2000-01-01 00:00:00+00'::timestamp with time zone),
               NULL, NULL, NULL, NULL,
               count(*), sum(pm.messages_processed), sum(pm.messages_failed), sum(pm.processing_time_ms)
          FROM public.consumer_processing_metrics AS pm
         GROUP BY pm.service_name,
                  date_bin('00:01:00'::interval, pm."timestamp", '2000-01-01 00:00:00+00'::timestamp with time zone)
       ) AS u
 GROUP BY u.service_name, u."timestamp"
