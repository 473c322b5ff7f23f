CREATE OR REPLACE FUNCTION public.generate_partition_update_script()
 RETURNS text
 LANGUAGE sql
 STABLE
AS $function$
-- The guide's script, one kafka-topics line per pending change. Kafka 3+ tools need
-- --bootstrap-server, which the guide's example left out: a registered cluster's brokers, else
-- (the default cluster, as before the registry) read from the shell. Grouped by cluster, a
-- comment line naming each when the changes span more than one.
WITH pending AS (
    SELECT c.cluster_name, c.topic_name, c.recommended_partitions, k.bootstrap_servers,
           (SELECT count(DISTINCT o.cluster_name) FROM public.topic_partition_changes AS o
             WHERE o.status = 'pending') AS clusters
      FROM public.topic_partition_changes AS c
      LEFT JOIN public.kafka_clusters AS k ON k.cluster_name = c.cluster_name
     WHERE c.status = 'pending'
), lines AS (
    SELECT p.cluster_name, p.topic_name,
           format('kafka-topics --bootstrap-server %s --alter --topic %s --partitions %s',
                  CASE WHEN p.bootstrap_servers IS NULL THEN '"${KAFKA_BOOTSTRAP_SERVERS:-localhost:9092}"'
                       WHEN p.bootstrap_servers ~ '^[A-Za-z0-9._:,\[\]-]+$' THEN p.bootstrap_servers
                       ELSE '''' || replace(p.bootstrap_servers, '''', '''"''"''') || '''' END,
                  CASE WHEN p.topic_name ~ '^[A-Za-z0-9._-]+$' THEN p.topic_name
                       ELSE '''' || replace(p.topic_name, '''', '''"''"''') || '''' END,
                  p.recommended_partitions) AS line,
           p.clusters
      FROM pending AS p
)
SELECT coalesce(
    (SELECT string_agg(x.line, E'\n' ORDER BY x.cluster_name, x.sort_topic)
       FROM (SELECT l.cluster_name, '' AS sort_topic, '# cluster ' || l.cluster_name AS line
               FROM lines AS l WHERE l.clusters > 1 GROUP BY l.cluster_name
             UNION ALL
             SELECT l.cluster_name, ' ' || l.topic_name, l.line FROM lines AS l) AS x),
    '# no pending partition changes')
$function$
