CREATE OR REPLACE FUNCTION public.mark_partition_changes_applied()
 RETURNS integer
 LANGUAGE sql
AS $function$
-- For operators who ran generate_partition_update_script() by hand: every pending change
-- becomes applied, by the database user. `loomctl partitions apply` marks each change itself,
-- and only after the cluster shows the new count.
WITH done AS (
    UPDATE public.topic_partition_changes
       SET status = 'applied', applied = true, applied_at = now(), applied_by = session_user, error = NULL
     WHERE status = 'pending'
    RETURNING 1
)
SELECT count(*)::integer FROM done
$function$
