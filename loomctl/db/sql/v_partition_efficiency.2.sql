CREATE OR REPLACE VIEW public.v_partition_efficiency AS
-- Per topic of each cluster over the last hour: produce rate from log-end-offset deltas, how many
-- partitions the consuming groups see and how many members they run, per-consumer throughput from
-- the processing metrics, and the consumers (so partitions) the produce rate needs. A topic of the
-- same name on two clusters is two rows (cluster_name, the last column).
WITH p AS (
    SELECT h.cluster_name, h.topic_name, h.partition,
           (max(h.log_end_offset) - min(h.log_end_offset))::numeric
               / nullif(extract(epoch FROM max(h."timestamp") - min(h."timestamp")), 0) AS produce_rate
      FROM public.consumer_lag_history AS h
     WHERE h."timestamp" > now() - interval '1 hour'
     GROUP BY h.cluster_name, h.topic_name, h.partition
), latest AS (
    SELECT DISTINCT ON (h.cluster_name, h.consumer_group_id, h.topic_name, h.partition)
           h.cluster_name, h.consumer_group_id, h.service_name, h.topic_name, h.partition, h.lag, h.member_count
      FROM public.consumer_lag_history AS h
     WHERE h."timestamp" > now() - interval '1 hour'
     ORDER BY h.cluster_name, h.consumer_group_id, h.topic_name, h.partition, h."timestamp" DESC
), g AS (
    SELECT latest.cluster_name, latest.topic_name,
           count(DISTINCT latest.consumer_group_id)::integer AS consumer_groups,
           max(latest.member_count) AS max_group_members,
           sum(latest.lag) AS total_lag,
           array_agg(DISTINCT latest.service_name) AS services
      FROM latest
     GROUP BY latest.cluster_name, latest.topic_name
), rate AS (
    -- messages per second one consumer (one member) sustains, the slowest consuming service
    SELECT t.cluster_name, t.topic_name,
           min(t.per_member) AS per_consumer_rate
      FROM (SELECT DISTINCT latest.cluster_name, latest.topic_name, latest.service_name FROM latest) AS s
      JOIN LATERAL (
           SELECT s.cluster_name, s.topic_name,
                  (sum(pm.messages_processed) * 1000.0 / nullif(sum(pm.processing_time_ms), 0))::numeric AS per_member
             FROM public.consumer_processing_metrics AS pm
            WHERE pm.service_name = s.service_name AND pm."timestamp" > now() - interval '1 hour'
           ) AS t ON true
     GROUP BY t.cluster_name, t.topic_name
), t AS (
    SELECT p.cluster_name, p.topic_name, count(*)::integer AS current_partitions,
           round(sum(p.produce_rate), 2) AS produce_rate_per_sec
      FROM p
     GROUP BY p.cluster_name, p.topic_name
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
       END AS efficiency,
       t.cluster_name
  FROM t
  LEFT JOIN g ON g.cluster_name = t.cluster_name AND g.topic_name = t.topic_name
  LEFT JOIN rate ON rate.cluster_name = t.cluster_name AND rate.topic_name = t.topic_name
  LEFT JOIN public.topic_partition_changes AS pc
         ON pc.cluster_name = t.cluster_name AND pc.topic_name = t.topic_name AND pc.status = 'pending'
