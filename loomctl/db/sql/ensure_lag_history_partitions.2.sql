CREATE OR REPLACE FUNCTION public.ensure_lag_history_partitions(days_back integer DEFAULT 1, days_ahead integer DEFAULT 7)
 RETURNS integer
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'public', 'pg_temp'
AS $function$
-- SECURITY DEFINER: creating a partition needs the owner of consumer_lag_history, which the collector
-- (loomctl_collector) is not.
-- Daily partitions of consumer_lag_history (UTC days), so that retention drops whole
-- partitions instead of deleting rows. Rows that already landed in the default partition
-- for a day are moved into that day's new partition.
DECLARE
    today date := (now() AT TIME ZONE 'UTC')::date;
    day date;
    part text;
    lo timestamptz;
    hi timestamptz;
    created integer := 0;
BEGIN
    FOR day IN SELECT generate_series(today - days_back, today + days_ahead, interval '1 day')::date LOOP
        part := 'consumer_lag_history_p' || to_char(day, 'YYYYMMDD');
        CONTINUE WHEN to_regclass('public.' || part) IS NOT NULL;
        lo := day::timestamp AT TIME ZONE 'UTC';
        hi := (day + 1)::timestamp AT TIME ZONE 'UTC';
        CREATE TEMP TABLE IF NOT EXISTS loom_moved_lag_rows (LIKE public.consumer_lag_history) ON COMMIT DROP;
        WITH moved AS (
            DELETE FROM public.consumer_lag_history_default
             WHERE "timestamp" >= lo AND "timestamp" < hi
            RETURNING *
        )
        INSERT INTO loom_moved_lag_rows SELECT * FROM moved;
        EXECUTE format('CREATE TABLE public.%I PARTITION OF public.consumer_lag_history FOR VALUES FROM (%L) TO (%L)',
                       part, lo, hi);
        INSERT INTO public.consumer_lag_history SELECT * FROM loom_moved_lag_rows;
        TRUNCATE loom_moved_lag_rows;
        created := created + 1;
    END LOOP;
    RETURN created;
END
$function$
