CREATE OR REPLACE FUNCTION public.processing_metrics_rollup_sync()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
-- Keeps consumer_processing_metrics_rollup equal to the sums of consumer_processing_metrics per
-- service and minute, five minutes and half hour (bucket_seconds 60, 300, 1800), for every writer:
-- record_processing_metrics, the loaders, COPY and raw SQL alike. Statement-level, over the
-- statement's transition tables (added, removed): one upsert per statement, not per row.
--
-- A written batch adds to its buckets' totals (ON CONFLICT DO UPDATE, in key order so two writers
-- take the rows' locks in the same order): a writer of the same service and minute waits for the
-- other's commit and then adds to what it committed. A batch updated or deleted has its old buckets
-- recomputed from the rows that remain (a maximum cannot be subtracted), after their totals are
-- locked: each statement of this function sees what committed before it, so the recomputation sees
-- every batch committed before the lock, and one written after it waits for this commit and adds to
-- it. A bucket left without rows goes. TRUNCATE empties the rollup.
DECLARE
    services text[];
    widths integer[];
    starts timestamp with time zone[];
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        TRUNCATE public.consumer_processing_metrics_rollup;
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' OR TG_OP = 'UPDATE' THEN
        INSERT INTO public.consumer_processing_metrics_rollup AS r
            (bucket_seconds, bucket_start, service_name, batches, batch_size, messages_processed, messages_failed,
             processing_time_ms, max_processing_time_ms)
        SELECT w.seconds, date_bin(w.width, a."timestamp", '2000-01-01 00:00:00+00'::timestamp with time zone), a.service_name,
               count(*), sum(a.batch_size), sum(a.messages_processed), sum(a.messages_failed),
               sum(a.processing_time_ms), max(a.processing_time_ms)
          FROM added AS a
         CROSS JOIN (VALUES (60, interval '1 minute'), (300, interval '5 minutes'), (1800, interval '30 minutes')) AS w(seconds, width)
         GROUP BY 1, 2, 3
         ORDER BY 1, 2, 3
            ON CONFLICT (bucket_seconds, bucket_start, service_name) DO UPDATE
           SET batches = r.batches + excluded.batches,
               batch_size = r.batch_size + excluded.batch_size,
               messages_processed = r.messages_processed + excluded.messages_processed,
               messages_failed = r.messages_failed + excluded.messages_failed,
               processing_time_ms = r.processing_time_ms + excluded.processing_time_ms,
               max_processing_time_ms = greatest(r.max_processing_time_ms, excluded.max_processing_time_ms);
        IF TG_OP = 'INSERT' THEN
            RETURN NULL;
        END IF;
    END IF;
    -- UPDATE (its new rows were added above; its old buckets, counted again below, include them) or DELETE
    SELECT array_agg(k.service_name ORDER BY k.seconds, k.bucket_start, k.service_name),
           array_agg(k.seconds ORDER BY k.seconds, k.bucket_start, k.service_name),
           array_agg(k.bucket_start ORDER BY k.seconds, k.bucket_start, k.service_name)
      INTO services, widths, starts
      FROM (SELECT DISTINCT w.seconds, date_bin(w.width, x."timestamp", '2000-01-01 00:00:00+00'::timestamp with time zone) AS bucket_start,
                   x.service_name
              FROM removed AS x
             CROSS JOIN (VALUES (60, interval '1 minute'), (300, interval '5 minutes'), (1800, interval '30 minutes')) AS w(seconds, width)) AS k;
    IF services IS NULL THEN
        RETURN NULL;
    END IF;
    PERFORM 1
       FROM public.consumer_processing_metrics_rollup AS r
       JOIN unnest(widths, starts, services) AS k(seconds, bucket_start, service_name)
         ON r.bucket_seconds = k.seconds AND r.bucket_start = k.bucket_start AND r.service_name = k.service_name
      ORDER BY r.bucket_seconds, r.bucket_start, r.service_name
        FOR UPDATE OF r;
    WITH fresh AS (
        SELECT k.seconds, k.bucket_start, k.service_name, t.*
          FROM unnest(widths, starts, services) AS k(seconds, bucket_start, service_name)
         CROSS JOIN LATERAL (
               SELECT count(*) AS batches, sum(pm.batch_size) AS batch_size, sum(pm.messages_processed) AS messages_processed,
                      sum(pm.messages_failed) AS messages_failed, sum(pm.processing_time_ms) AS processing_time_ms,
                      max(pm.processing_time_ms) AS max_processing_time_ms
                 FROM public.consumer_processing_metrics AS pm
                WHERE pm.service_name = k.service_name
                  AND pm."timestamp" >= k.bucket_start AND pm."timestamp" < k.bucket_start + k.seconds * interval '1 second') AS t
    ), emptied AS (
        DELETE FROM public.consumer_processing_metrics_rollup AS r
         USING fresh AS f
         WHERE f.batches = 0
           AND r.bucket_seconds = f.seconds AND r.bucket_start = f.bucket_start AND r.service_name = f.service_name
    )
    INSERT INTO public.consumer_processing_metrics_rollup AS r
        (bucket_seconds, bucket_start, service_name, batches, batch_size, messages_processed, messages_failed,
         processing_time_ms, max_processing_time_ms)
    SELECT f.seconds, f.bucket_start, f.service_name, f.batches, f.batch_size, f.messages_processed, f.messages_failed,
           f.processing_time_ms, f.max_processing_time_ms
      FROM fresh AS f
     WHERE f.batches > 0
     ORDER BY 1, 2, 3
        ON CONFLICT (bucket_seconds, bucket_start, service_name) DO UPDATE
       SET batches = excluded.batches, batch_size = excluded.batch_size, messages_processed = excluded.messages_processed,
           messages_failed = excluded.messages_failed, processing_time_ms = excluded.processing_time_ms,
           max_processing_time_ms = excluded.max_processing_time_ms;
    RETURN NULL;
END
$function$
