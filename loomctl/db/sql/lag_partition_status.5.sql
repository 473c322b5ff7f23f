CREATE OR REPLACE FUNCTION public.lag_partition_status(status_window interval DEFAULT '00:15:00'::interval)
 RETURNS TABLE(service_name text, consumer_group_id text, topic_name text, partition integer, status text, samples integer, first_timestamp timestamp with time zone, last_timestamp timestamp with time zone, first_committed_offset bigint, last_committed_offset bigint, first_lag bigint, last_lag bigint, log_end_offset bigint, time_lag_ms bigint, member_count integer, group_state text, first_log_end_offset bigint, log_start_offset bigint, evidence text, group_type text)
 LANGUAGE sql
 STABLE
AS $function$
-- The status of each partition from its stored samples of the last status_window, with the
-- evidence: the rules and columns of lag_partition_status_live, which computes them.
--
-- Served from a copy where one is current. Computing the window at 2,000 services (15,000
-- partitions sampled every 30 s: 450,000 rows in 15 minutes) takes seconds, and the monitor and
-- alerts views ask for it on every read; but the answer only changes when the history does, and
-- the history only changes when a collector writes a cycle. So the collector calls
-- refresh_lag_partition_status(window) after each cycle, and this returns that copy
-- (lag_status_cache_rows) while lag_status_cache_current(window) says it holds (see there).
-- Otherwise (a service's record_consumer_lag wrote since, another window, no collector) it
-- computes the window now. Both branches carry the caller's filter (WHERE consumer_group_id =
-- ...): a single SELECT in a STABLE SQL function is inlined, and the planner runs only the
-- branch the check picks.
WITH cache AS (
    SELECT k.current FROM public.lag_status_cache_current(lag_partition_status.status_window) AS k
)
SELECT r.service_name, r.consumer_group_id, r.topic_name, r.partition, r.status, r.samples, r.first_timestamp,
       r.last_timestamp, r.first_committed_offset, r.last_committed_offset, r.first_lag, r.last_lag, r.log_end_offset,
       r.time_lag_ms, r.member_count, r.group_state, r.first_log_end_offset, r.log_start_offset, r.evidence, r.group_type
  FROM public.lag_status_cache_rows AS r
 WHERE (SELECT cache.current FROM cache)
UNION ALL
SELECT l.service_name, l.consumer_group_id, l.topic_name, l.partition, l.status, l.samples, l.first_timestamp,
       l.last_timestamp, l.first_committed_offset, l.last_committed_offset, l.first_lag, l.last_lag, l.log_end_offset,
       l.time_lag_ms, l.member_count, l.group_state, l.first_log_end_offset, l.log_start_offset, l.evidence, l.group_type
  FROM public.lag_partition_status_live(lag_partition_status.status_window) AS l
 WHERE NOT (SELECT cache.current FROM cache)
$function$
