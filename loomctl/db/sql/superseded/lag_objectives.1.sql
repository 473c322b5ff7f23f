CREATE OR REPLACE FUNCTION public.lag_objectives()
 RETURNS TABLE(service_name text, consumer_group_id text, lag_slo_seconds integer)
 LANGUAGE sql
 STABLE
AS $function$
-- Each service's lag objective: its own lag_slo_seconds, else its profile's default (the defaults
-- are loomctl.lag.slo.PROFILE_LAG_SLO_SECONDS). Inlined where it is used (the monitor view and the
-- groups' rollup), so the join on consumer_group_id reads pipeline_consumer_configs directly.
SELECT c.service_name, c.consumer_group_id,
       coalesce(c.lag_slo_seconds, CASE c.profile WHEN 'ai-model' THEN 600 WHEN 'fast' THEN 30
                                                  WHEN 'io-bound' THEN 120 WHEN 'database-writer' THEN 60 END)
  FROM public.pipeline_consumer_configs AS c
$function$
