CREATE OR REPLACE FUNCTION public.lag_group_status_live(status_window interval DEFAULT '00:15:00'::interval)
 RETURNS TABLE(consumer_group_id text, partitions integer, partitions_without_commit integer, total_lag numeric, avg_lag numeric, max_lag bigint, lag_change numeric, time_lag_ms bigint, member_count integer, group_state text, group_type text, last_sample_at timestamp with time zone, sampled_seconds integer, produce_rate numeric, consume_rate numeric, status text, flagged_partitions text, evidence text, lag_slo_seconds integer, time_lag_seconds numeric, catch_up_seconds numeric, catch_up_never boolean, breach_in_seconds numeric, slowest_partition text)
 LANGUAGE sql
 STABLE
 SET jit TO 'off'
AS $function$
-- Each group's figures over status_window, from its partitions' statuses (lag_partition_status):
-- what v_consumer_performance_monitor shows per service, computed now. lag_group_status serves the
-- copy of this that refresh_lag_partition_status keeps (lag_status_cache_groups) while it holds,
-- and calls this otherwise.
--
-- The lag: the group takes its worst partition's status (the ranking of loomctl.lag.status_rank,
-- tests/lag/test_views.py holds the two equal), sums and extremes of its partitions' lag, the
-- rates over the span of its samples, the flagged partitions worst first and the worst one's
-- evidence.
--
-- Against its lag objective (lag_slo_seconds: its own, else its profile's; lag_objectives), the
-- arithmetic of loomctl/lag/slo.py (tests/lag/test_slo_views.py compares the two on the same rows), per
-- partition over the window: produce and consume rates from the offset deltas; caught up when the lag is 0
-- or at most one sampling interval's production; catch_up_seconds = lag / (consume - produce) where the
-- consumer gains, 0 when caught up, NULL with catch_up_never where it does not gain; lag in time grows
-- 1 - consume / produce seconds a second (idle topic: 1 while nothing is consumed, else 0), so
-- breach_in_seconds = (objective - lag in time) / growth, 0 when over it already. The group follows its
-- slowest partition: the latest catch-up (never if any partition never), the highest lag in time, the
-- soonest breach. Only breach_in_seconds depends on the objective; lag_slo_seconds is the one it was
-- computed against (lag_group_status serves a kept copy only while every group's is unchanged).
--
-- SET jit = off, which also keeps this from being inlined: the planner costs the window's
-- hundreds of thousands of rows above jit_above_cost, and compiling this query's expressions took
-- ~400 ms at 2,000 services (bench/views.py) against ~550 ms for the query itself without it.
WITH st AS (
    SELECT * FROM public.lag_partition_status(lag_group_status_live.status_window)
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
      LEFT JOIN public.lag_objectives() AS o ON o.consumer_group_id = st.consumer_group_id
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
           max(sp.lag_slo_seconds) AS lag_slo_seconds,
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
)
SELECT l.consumer_group_id, l.partitions, l.partitions_without_commit, l.total_lag, l.avg_lag, l.max_lag, l.lag_change,
       l.time_lag_ms, l.member_count, l.group_state, l.group_type, l.last_sample_at, l.sampled_seconds, l.produce_rate,
       l.consume_rate, l.status, l.flagged_partitions, l.evidence,
       s.lag_slo_seconds, s.time_lag_seconds, s.catch_up_seconds, s.catch_up_never, s.breach_in_seconds, s.slowest_partition
  FROM lag AS l
  JOIN slo AS s ON s.consumer_group_id = l.consumer_group_id
$function$
