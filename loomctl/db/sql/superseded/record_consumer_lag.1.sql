CREATE OR REPLACE FUNCTION public.record_consumer_lag(service_name text, topic_name text, partition integer, committed_offset bigint, log_end_offset bigint, consumer_group_id text DEFAULT NULL::text, sample_time timestamp with time zone DEFAULT now())
 RETURNS void
 LANGUAGE sql
AS $function$
-- For services that are not written in Python: one lag sample. A NULL committed offset means
-- the group has none (lag unknown, not zero); negative lag is clamped to 0.
INSERT INTO public.consumer_lag_history
    (consumer_group_id, topic_name, partition, "timestamp", service_name, committed_offset,
     log_end_offset, lag)
SELECT coalesce($6, (SELECT c.consumer_group_id FROM public.pipeline_consumer_configs AS c
                      WHERE c.service_name = $1), $1),
       $2, $3, $7, $1, $4, $5,
       CASE WHEN $4 IS NULL THEN NULL ELSE greatest($5 - $4, 0) END
ON CONFLICT DO NOTHING
$function$
