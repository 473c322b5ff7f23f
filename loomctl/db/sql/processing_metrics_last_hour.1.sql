CREATE OR REPLACE FUNCTION public.processing_metrics_last_hour()
 RETURNS TABLE(service_name text, batches integer, avg_batch_size numeric, messages_received bigint, messages_processed bigint, messages_failed bigint, avg_processing_time_ms numeric, max_processing_time_ms numeric, ms_per_message numeric, messages_per_second numeric)
 LANGUAGE sql
 STABLE
 SET jit TO 'off'
AS $function$
-- Each service's batches of the last hour ("timestamp" > now() - 1 hour), as avg(), sum() and max()
-- over those rows of consumer_processing_metrics give them (v_consumer_performance_monitor's
-- processing figures), from consumer_processing_metrics_rollup: the sums per service and minute,
-- five minutes and half hour that a trigger keeps at every write (processing_metrics_rollup_sync).
-- At 2,000 services reporting a batch every 30 s the hour is 240,000 rows, and hashing them took
-- ~140 ms of the monitor's time; this reads at most 11 rollup rows per service (~8 on average) and
-- the rows of the hour's first, partial minute (ix_consumer_processing_metrics_timestamp), ~25 ms.
-- The figures are exactly those of the rows (sums, counts, the maximum); only float sums may differ
-- in their last bit with the order they are added in, as they do between two plans of one query.
--
-- SET jit = off, which also keeps it from being inlined: the rollup's reads are costed at ~20 per
-- service, so the monitor's plan would cross jit_above_cost at ~5,000 services, and compiling it
-- took ~70 ms, twice the query. A filter on one service is not pushed into it: that service still
-- costs the whole hour of every service (~25 ms at 2,000).
WITH mp AS (
    -- The hour ("timestamp" > now() - 1 hour) in rows up to its first whole minute, then in minutes
    -- up to its first five, then in five minutes up to its first half hour, then in half hours (any
    -- later too): the first bucket of each size wholly inside it starts at the start of the hour
    -- binned to that size, plus the size. Written out rather than in a CTE: the planner estimates
    -- these ranges from now(), where a subquery's value is unknown to it and it guesses a third of
    -- the rollup (at 13 million batches, bitmap scans of millions of rows, costed far over JIT's bar).
    SELECT pm.service_name, count(*) AS batches, sum(pm.batch_size) AS batch_size,
           sum(pm.messages_processed) AS messages_processed, sum(pm.messages_failed) AS messages_failed,
           sum(pm.processing_time_ms) AS processing_time_ms, max(pm.processing_time_ms) AS max_processing_time_ms
      FROM public.consumer_processing_metrics AS pm
     WHERE pm."timestamp" > now() - interval '1 hour'
       AND pm."timestamp" < date_bin('00:01:00'::interval, now() - interval '1 hour', '2000-01-01 00:00:00+00'::timestamp with time zone) + interval '1 minute'
     GROUP BY pm.service_name
    UNION ALL
    SELECT r.service_name, r.batches, r.batch_size, r.messages_processed, r.messages_failed, r.processing_time_ms,
           r.max_processing_time_ms
      FROM public.consumer_processing_metrics_rollup AS r
     WHERE r.bucket_seconds = 60
       AND r.bucket_start >= date_bin('00:01:00'::interval, now() - interval '1 hour', '2000-01-01 00:00:00+00'::timestamp with time zone) + interval '1 minute'
       AND r.bucket_start < date_bin('00:05:00'::interval, now() - interval '1 hour', '2000-01-01 00:00:00+00'::timestamp with time zone) + interval '5 minutes'
    UNION ALL
    SELECT r.service_name, r.batches, r.batch_size, r.messages_processed, r.messages_failed, r.processing_time_ms,
           r.max_processing_time_ms
      FROM public.consumer_processing_metrics_rollup AS r
     WHERE r.bucket_seconds = 300
       AND r.bucket_start >= date_bin('00:05:00'::interval, now() - interval '1 hour', '2000-01-01 00:00:00+00'::timestamp with time zone) + interval '5 minutes'
       AND r.bucket_start < date_bin('00:30:00'::interval, now() - interval '1 hour', '2000-01-01 00:00:00+00'::timestamp with time zone) + interval '30 minutes'
    UNION ALL
    SELECT r.service_name, r.batches, r.batch_size, r.messages_processed, r.messages_failed, r.processing_time_ms,
           r.max_processing_time_ms
      FROM public.consumer_processing_metrics_rollup AS r
     WHERE r.bucket_seconds = 1800
       AND r.bucket_start >= date_bin('00:30:00'::interval, now() - interval '1 hour', '2000-01-01 00:00:00+00'::timestamp with time zone) + interval '30 minutes'
)
    SELECT mp.service_name,
           sum(mp.batches)::integer AS batches,
           round(sum(mp.batch_size) / sum(mp.batches), 1) AS avg_batch_size,
           sum(mp.batch_size)::bigint AS messages_received,
           sum(mp.messages_processed)::bigint AS messages_processed,
           sum(mp.messages_failed)::bigint AS messages_failed,
           round((sum(mp.processing_time_ms) / sum(mp.batches)::double precision)::numeric, 1) AS avg_processing_time_ms,
           round(max(mp.max_processing_time_ms)::numeric, 1) AS max_processing_time_ms,
           round((sum(mp.processing_time_ms) / nullif(sum(mp.batch_size), 0)::double precision)::numeric, 3) AS ms_per_message,
           round((sum(mp.messages_processed) * 1000.0 / nullif(sum(mp.processing_time_ms), 0))::numeric, 1)
               AS messages_per_second
      FROM mp
     GROUP BY mp.service_name
$function$
