CREATE OR REPLACE FUNCTION public.lag_status_cache_current(status_window interval DEFAULT '00:15:00'::interval)
 RETURNS TABLE(current boolean)
 LANGUAGE sql
 STABLE
AS $function$
-- Whether the statuses refresh_lag_partition_status kept (lag_status_cache_rows, and the groups'
-- rollup of them in lag_status_cache_groups) may be served for status_window now: kept for this
-- window, within the last fifteenth of it (so the window's start has not slid by more than that),
-- and with no sample written since (the newest sample of the window is the one the copy saw).
-- The one rule of lag_partition_status and lag_group_status, so the two never disagree on it.
-- One row, read as (SELECT k.current FROM lag_status_cache_current(w) AS k): a set-returning SQL
-- function is inlined into its caller's plan, where a scalar one with a subquery would be planned
-- again at each call (a few milliseconds of the monitor's time in a new session).
SELECT EXISTS (
    SELECT 1
      FROM public.lag_status_cache AS c
     WHERE c.computed_window = lag_status_cache_current.status_window
       AND c.computed_at > now() - lag_status_cache_current.status_window / 15
       AND c.latest_sample IS NOT DISTINCT FROM (
               SELECT max(h."timestamp") FROM public.consumer_lag_history AS h
                WHERE h."timestamp" > now() - lag_status_cache_current.status_window)
)
$function$
