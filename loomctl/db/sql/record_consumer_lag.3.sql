CREATE OR REPLACE FUNCTION public.record_consumer_lag(service_name text, topic_name text, partition integer, committed_offset bigint, log_end_offset bigint, consumer_group_id text DEFAULT NULL::text, sample_time timestamp with time zone DEFAULT now())
 RETURNS void
 LANGUAGE sql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'public', 'pg_temp'
AS $function$
-- SECURITY DEFINER: a service (loomctl_service) records its lag through this function and may not write
-- the history table itself.
-- For services that are not written in Python: one lag sample. A NULL committed offset means
-- the group has none (lag unknown, not zero); negative lag is clamped to 0. The sample belongs
-- to the service's cluster (the default cluster for a service without a config).
INSERT INTO public.consumer_lag_history
    (consumer_group_id, topic_name, partition, "timestamp", service_name, committed_offset,
     log_end_offset, lag, cluster_name)
SELECT coalesce($6, c.consumer_group_id, $1),
       $2, $3, $7, $1, $4, $5,
       CASE WHEN $4 IS NULL THEN NULL ELSE greatest($5 - $4, 0) END,
       coalesce(c.cluster_name, 'default')
  FROM (SELECT 1) AS one
  LEFT JOIN public.pipeline_consumer_configs AS c ON c.service_name = $1
ON CONFLICT DO NOTHING
$function$
