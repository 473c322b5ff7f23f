CREATE OR REPLACE FUNCTION public.refresh_lag_partition_status(status_window interval DEFAULT '00:15:00'::interval)
 RETURNS integer
 LANGUAGE plpgsql
AS $function$
-- Compute lag_partition_status_live over status_window once and keep it for lag_partition_status
-- to serve until the history changes, and its rollup per group (lag_group_status_live) for
-- lag_group_status, so v_consumer_performance_monitor and v_consumer_alerts read 2,000 kept group
-- rows rather than rolling 15,000 partitions up on every read. The collector calls this after
-- each cycle's commit; until it commits, readers see samples newer than the copy and compute.
-- Returns the number of partitions kept.
--
-- latest_sample is the newest sample of the rows kept, not a second look at the history: a sample
-- committed while this runs (the next cycle, a service's record_consumer_lag) is then newer than
-- it, and the copy is never served with statuses older than the samples. The groups are rolled up
-- from the kept partitions (lag_partition_status serves them once lag_status_cache says so); if a
-- sample came in between, they are computed from the newer history, but the copy does not hold then.
-- objectives is the digest of the objectives the groups' breach_in_seconds was computed against,
-- taken before them: an objective changed meanwhile leaves the digest stale and the groups unserved.
DECLARE
    kept integer;
BEGIN
    -- one refresh at a time (two collectors handing over): the second waits, then redoes it
    PERFORM pg_advisory_xact_lock(hashtext('loomctl.lag_status_cache'));
    DELETE FROM public.lag_status_cache_rows;
    INSERT INTO public.lag_status_cache_rows SELECT * FROM public.lag_partition_status_live(status_window);
    GET DIAGNOSTICS kept = ROW_COUNT;
    DELETE FROM public.lag_status_cache;
    INSERT INTO public.lag_status_cache (computed_window, computed_at, latest_sample, partitions, objectives)
    SELECT status_window, now(), max(r.last_timestamp), kept, (SELECT d.digest FROM public.lag_objectives_digest() AS d)
      FROM public.lag_status_cache_rows AS r;
    DELETE FROM public.lag_status_cache_groups;
    INSERT INTO public.lag_status_cache_groups SELECT * FROM public.lag_group_status_live(status_window);
    RETURN kept;
END
$function$
