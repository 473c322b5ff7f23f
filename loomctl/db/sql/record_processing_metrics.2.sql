CREATE OR REPLACE FUNCTION public.record_processing_metrics(service_name text, batch_size integer, messages_processed integer, processing_time_ms double precision, messages_failed integer DEFAULT 0, consumer_group_id text DEFAULT NULL::text, topic_name text DEFAULT NULL::text, sample_time timestamp with time zone DEFAULT now())
 RETURNS bigint
 LANGUAGE sql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'public', 'pg_temp'
AS $function$
-- SECURITY DEFINER: a service (loomctl_service) records its batches through this function and may not
-- write the metrics table (or its rollup) itself.
-- For services that are not written in Python: what one processed batch cost.
INSERT INTO public.consumer_processing_metrics
    ("timestamp", service_name, consumer_group_id, topic_name, batch_size, messages_processed,
     messages_failed, processing_time_ms, messages_per_second)
VALUES ($8, $1,
        coalesce($6, (SELECT c.consumer_group_id FROM public.pipeline_consumer_configs AS c
                       WHERE c.service_name = $1)),
        $7, $2, $3, coalesce($5, 0), $4,
        CASE WHEN $4 > 0 THEN $3 * 1000.0 / $4 END)
RETURNING id
$function$
