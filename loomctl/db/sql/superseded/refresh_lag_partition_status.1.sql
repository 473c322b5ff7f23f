CREATE OR REPLACE FUNCTION public.refresh_lag_partition_status(status_window interval DEFAULT '00:15:00'::interval)
 RETURNS integer
 LANGUAGE plpgsql
AS $function$
-- Compute lag_partition_status_live over status_window once and keep it for lag_partition_status
-- (and so the monitor and alerts views) to serve until the history changes. The collector calls
-- this in the transaction of its COPY, so no reader sees new samples without the statuses they
-- give. Returns the number of partitions kept.
DECLARE
    kept integer;
BEGIN
    -- one refresh at a time (two collectors handing over): the second waits, then redoes it
    PERFORM pg_advisory_xact_lock(hashtext('loomctl.lag_status_cache'));
    DELETE FROM public.lag_status_cache_rows;
    INSERT INTO public.lag_status_cache_rows SELECT * FROM public.lag_partition_status_live(status_window);
    GET DIAGNOSTICS kept = ROW_COUNT;
    DELETE FROM public.lag_status_cache;
    INSERT INTO public.lag_status_cache (computed_window, computed_at, latest_sample, partitions)
    SELECT status_window, now(), max(h."timestamp"), kept
      FROM public.consumer_lag_history AS h
     WHERE h."timestamp" > now() - status_window;
    RETURN kept;
END
$function$
