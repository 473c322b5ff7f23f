CREATE OR REPLACE FUNCTION public.lag_objectives_digest()
 RETURNS TABLE(digest numeric)
 LANGUAGE sql
 STABLE
AS $function$
-- A digest of every group's objective (lag_objectives): the sum of a 64-bit hash of each
-- (group, objective), so that any objective set, changed or removed, and any service added or
-- deleted, changes it (two digests of different objectives agree with a chance of 2^-64).
-- refresh_lag_partition_status keeps it beside the groups' figures, whose breach_in_seconds depends
-- on the objectives, and lag_group_status serves those only while it is unchanged: one scan of
-- pipeline_consumer_configs (under a millisecond at 2,000 services) rather than a join of the kept
-- groups with the objectives on each read. One row, inlined like lag_status_cache_current.
SELECT coalesce(sum(hashtextextended(o.consumer_group_id || '=' || coalesce(o.lag_slo_seconds::text, '-'), 0)), 0)
  FROM public.lag_objectives() AS o
$function$
