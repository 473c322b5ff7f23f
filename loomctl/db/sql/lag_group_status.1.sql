CREATE OR REPLACE FUNCTION public.lag_group_status(status_window interval DEFAULT '00:15:00'::interval)
 RETURNS TABLE(consumer_group_id text, partitions integer, partitions_without_commit integer, total_lag numeric, avg_lag numeric, max_lag bigint, lag_change numeric, time_lag_ms bigint, member_count integer, group_state text, group_type text, last_sample_at timestamp with time zone, sampled_seconds integer, produce_rate numeric, consume_rate numeric, status text, flagged_partitions text, evidence text, lag_slo_seconds integer, time_lag_seconds numeric, catch_up_seconds numeric, catch_up_never boolean, breach_in_seconds numeric, slowest_partition text)
 LANGUAGE sql
 STABLE
AS $function$
-- Each group's figures over status_window (lag_group_status_live's columns and rules), served
-- from the copy refresh_lag_partition_status keeps beside the partitions' (lag_status_cache_groups)
-- while that copy holds: lag_status_cache_current(window), as for lag_partition_status, and the
-- objectives still those breach_in_seconds was computed against (lag_objectives_digest unchanged:
-- an objective changed since, by `config set` or raw SQL, computes them all until the next
-- refresh). Otherwise it computes them now.
--
-- Rolling the partitions up per group took ~220 ms of the monitor's time at 2,000 services
-- (15,000 partitions) even from the kept partitions; the kept groups are 2,000 rows. Inlined: the
-- check is a one-time filter of each branch, so only the branch it picks runs, and the computed
-- branch is a call of lag_group_status_live (not inlined: SET jit = off), which keeps this plan's
-- cost, and so the monitor's, far below jit_above_cost whichever branch runs.
WITH cache AS (
    SELECT k.current
           AND EXISTS (SELECT 1 FROM public.lag_status_cache AS c
                        WHERE c.computed_window = lag_group_status.status_window
                          AND c.objectives = (SELECT d.digest FROM public.lag_objectives_digest() AS d)) AS current
      FROM public.lag_status_cache_current(lag_group_status.status_window) AS k
)
SELECT g.consumer_group_id, g.partitions, g.partitions_without_commit, g.total_lag, g.avg_lag, g.max_lag, g.lag_change,
       g.time_lag_ms, g.member_count, g.group_state, g.group_type, g.last_sample_at, g.sampled_seconds, g.produce_rate,
       g.consume_rate, g.status, g.flagged_partitions, g.evidence, g.lag_slo_seconds, g.time_lag_seconds,
       g.catch_up_seconds, g.catch_up_never, g.breach_in_seconds, g.slowest_partition
  FROM public.lag_status_cache_groups AS g
 WHERE (SELECT cache.current FROM cache)
UNION ALL
SELECT l.consumer_group_id, l.partitions, l.partitions_without_commit, l.total_lag, l.avg_lag, l.max_lag, l.lag_change,
       l.time_lag_ms, l.member_count, l.group_state, l.group_type, l.last_sample_at, l.sampled_seconds, l.produce_rate,
       l.consume_rate, l.status, l.flagged_partitions, l.evidence, l.lag_slo_seconds, l.time_lag_seconds,
       l.catch_up_seconds, l.catch_up_never, l.breach_in_seconds, l.slowest_partition
  FROM public.lag_group_status_live(lag_group_status.status_window) AS l
 WHERE NOT (SELECT cache.current FROM cache)
$function$
