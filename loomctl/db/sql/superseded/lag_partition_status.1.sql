CREATE OR REPLACE FUNCTION public.lag_partition_status(status_window interval DEFAULT '00:15:00'::interval)
 RETURNS TABLE(service_name text, consumer_group_id text, topic_name text, partition integer, status text, samples integer, first_timestamp timestamp with time zone, last_timestamp timestamp with time zone, first_committed_offset bigint, last_committed_offset bigint, first_lag bigint, last_lag bigint, log_end_offset bigint, time_lag_ms bigint, member_count integer)
 LANGUAGE sql
 STABLE
AS $function$
-- Burrow-like evaluation of the stored samples of each partition over a time window:
--   REWIND  the committed offset went back;
--   OK      no lag at the end of the window (a quiet topic is never flagged);
--   ERR     lag with no committed offset at all (the group never committed here);
--   STOP    the committed offset did not move while lag > 0 and the group has no members;
--   STALL   the committed offset did not move while lag > 0, with members present (stuck);
--   WARN    lag grew at every sample (the consumer moves, but slower than the producers);
--   OK      otherwise.
WITH w AS (
    SELECT h.*,
           lag(h.lag) OVER p AS previous_lag,
           row_number() OVER p AS n,
           count(*) OVER (PARTITION BY h.consumer_group_id, h.topic_name, h.partition) AS total
      FROM public.consumer_lag_history AS h
     WHERE h."timestamp" > now() - status_window
    WINDOW p AS (PARTITION BY h.consumer_group_id, h.topic_name, h.partition ORDER BY h."timestamp")
), s AS (
    SELECT w.consumer_group_id, w.topic_name, w.partition,
           max(w.service_name) FILTER (WHERE w.n = w.total) AS service_name,
           count(*)::integer AS samples,
           min(w."timestamp") AS first_timestamp,
           max(w."timestamp") AS last_timestamp,
           max(w.committed_offset) FILTER (WHERE w.n = 1) AS first_committed_offset,
           max(w.committed_offset) FILTER (WHERE w.n = w.total) AS last_committed_offset,
           max(w.lag) FILTER (WHERE w.n = 1) AS first_lag,
           max(w.lag) FILTER (WHERE w.n = w.total) AS last_lag,
           max(w.log_end_offset) FILTER (WHERE w.n = w.total) AS log_end_offset,
           max(w.time_lag_ms) FILTER (WHERE w.n = w.total) AS time_lag_ms,
           max(w.member_count) FILTER (WHERE w.n = w.total) AS member_count,
           max(w.group_state) FILTER (WHERE w.n = w.total) AS group_state,
           bool_and(w.previous_lag IS NULL OR w.lag > w.previous_lag) AS lag_always_grew
      FROM w
     GROUP BY w.consumer_group_id, w.topic_name, w.partition
)
SELECT s.service_name, s.consumer_group_id, s.topic_name, s.partition,
       CASE
           WHEN s.last_committed_offset < s.first_committed_offset THEN 'REWIND'
           WHEN coalesce(s.last_lag, 0) = 0 AND s.last_committed_offset IS NOT NULL THEN 'OK'
           WHEN s.last_committed_offset IS NULL THEN
               CASE WHEN s.log_end_offset = 0 THEN 'OK' ELSE 'ERR' END
           WHEN s.samples >= 2 AND s.last_committed_offset = s.first_committed_offset THEN
               CASE WHEN s.member_count = 0 OR s.group_state IN ('Empty', 'Dead') THEN 'STOP' ELSE 'STALL' END
           WHEN s.samples >= 2 AND s.lag_always_grew THEN 'WARN'
           ELSE 'OK'
       END,
       s.samples, s.first_timestamp, s.last_timestamp, s.first_committed_offset,
       s.last_committed_offset, s.first_lag, s.last_lag, s.log_end_offset, s.time_lag_ms,
       s.member_count
  FROM s
$function$
