CREATE OR REPLACE VIEW public.v_partition_efficiency AS
-- Per topic over the last hour: produce rate from log-end-offset deltas, how many partitions
-- the consuming groups see and how many members they run, per-consumer throughput from the
-- processing metrics, and the consumers (so partitions) the produce rate needs.
WITH p AS (
    SELECT h.topic_name, h.partition,
           (max(h.log_end_offset) - min(h.log_end_offset))::numeric
               / nullif(extract(epoch FROM max(h."timestamp") - min(h."timestamp")), 0) AS produce_rate
      FROM public.consumer_lag_history AS h
     WHERE h."timestamp" > now() - interval '1 hour'
     GROUP BY h.topic_name, h.partition
), latest AS (
    SELECT DISTINCT ON (h.consumer_group_id, h.topic_name, h.partition)
           h.consumer_group_id, h.service_name, h.topic_name, h.partition, h.lag, h.member_count
      FROM public.consumer_lag_history AS h
     WHERE h."timestamp" > now() - interval '1 hour'
     ORDER BY h.consumer_group_id, h.topic_name, h.partition, h."timestamp" DESC
), g AS (
    SELECT latest.topic_name,
           count(DISTINCT latest.consumer_group_id)::integer AS consumer_groups,
           max(latest.member_count) AS max_group_members,
           sum(latest.lag) AS total_lag,
           array_agg(DISTINCT latest.service_name) AS services
      FROM latest
     GROUP BY latest.topic_name
), rate AS (
    -- messages per second one consumer (one member) sustains, the slowest consuming service
    SELECT t.topic_name,
           min(t.per_member) AS per_consumer_rate
      FROM (SELECT DISTINCT latest.topic_name, latest.service_name FROM latest) AS s
      JOIN LATERAL (
           SELECT s.topic_name,
                  (sum(pm.messages_processed) * 1000.0 / nullif(sum(pm.processing_time_ms), 0))::numeric AS per_member
             FROM public.consumer_processing_metrics AS pm
            WHERE pm.service_name = s.service_name AND pm."timestamp" > now() - interval '1 hour'
           ) AS t ON true
     GROUP BY t.topic_name
), t AS (
    SELECT p.topic_name, count(*)::integer AS current_partitions, round(sum(p.produce_rate), 2) AS produce_rate_per_sec
      FROM p
     GROUP BY p.topic_name
)
SELECT t.topic_name,
       t.current_partitions,
       t.produce_rate_per_sec,
       g.consumer_groups,
       g.services,
       g.max_group_members,
       g.total_lag,
       round(rate.per_consumer_rate, 2) AS per_consumer_rate,
       ceil(t.produce_rate_per_sec / nullif(rate.per_consumer_rate, 0))::integer AS consumers_needed,
       round(g.max_group_members::numeric / t.current_partitions, 2) AS partition_utilization,
       pc.recommended_partitions AS pending_partitions,
       CASE
           WHEN rate.per_consumer_rate IS NULL OR t.produce_rate_per_sec IS NULL THEN 'unknown'
           WHEN ceil(t.produce_rate_per_sec / nullif(rate.per_consumer_rate, 0)) > t.current_partitions THEN 'under-partitioned'
           WHEN g.max_group_members < t.current_partitions THEN 'partitions idle in the group'
           ELSE 'balanced'
       END AS efficiency
  FROM t
  LEFT JOIN g ON g.topic_name = t.topic_name
  LEFT JOIN rate ON rate.topic_name = t.topic_name
  LEFT JOIN public.topic_partition_changes AS pc ON pc.topic_name = t.topic_name AND pc.status = 'pending'
