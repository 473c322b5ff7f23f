CREATE OR REPLACE FUNCTION public.drop_lag_history_before(cutoff timestamp with time zone)
 RETURNS TABLE(partitions_dropped integer, rows_deleted bigint)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'public', 'pg_temp'
AS $function$
-- SECURITY DEFINER: dropping a partition needs the owner of consumer_lag_history, which the collector
-- (loomctl_collector) is not.
-- Retention in bulk: a day wholly before the cutoff goes with DROP TABLE; only the day that
-- straddles the cutoff (and the default partition) is trimmed row by row.
DECLARE
    part record;
    deleted bigint;
BEGIN
    partitions_dropped := 0;
    rows_deleted := 0;
    FOR part IN
        SELECT c.relname
          FROM pg_inherits AS i
          JOIN pg_class AS c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'public.consumer_lag_history'::regclass
           AND c.relname ~ '^consumer_lag_history_p[0-9]{8}$'
         ORDER BY c.relname
    LOOP
        IF (to_date(right(part.relname, 8), 'YYYYMMDD') + 1)::timestamp AT TIME ZONE 'UTC' <= cutoff THEN
            EXECUTE format('DROP TABLE public.%I', part.relname);
            partitions_dropped := partitions_dropped + 1;
        END IF;
    END LOOP;
    DELETE FROM public.consumer_lag_history WHERE "timestamp" < cutoff;
    GET DIAGNOSTICS deleted = ROW_COUNT;
    rows_deleted := deleted;
    RETURN NEXT;
END
$function$
