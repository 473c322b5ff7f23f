CREATE OR REPLACE FUNCTION public.lag_objectives()
 RETURNS TABLE(service_name text, consumer_group_id text, lag_slo_seconds integer)
 LANGUAGE sql
 STABLE
AS $function$
-- Each service's lag objective: its own lag_slo_seconds, else its profile's default. The defaults are
-- generated from loomctl.consumer_config.PROFILES (each profile's lag_slo_seconds) when this file is read.
-- Inlined where it is used (the monitor view and the groups' rollup), so the join on consumer_group_id
-- reads pipeline_consumer_configs directly.
SELECT config.service_name,
       config.consumer_group_id,
       coalesce(config.lag_slo_seconds, {{ profile_objective(config.profile) }})
  FROM public.pipeline_consumer_configs AS config
$function$
