CREATE OR REPLACE FUNCTION public.generate_partition_update_script()
 RETURNS text
 LANGUAGE sql
 STABLE
AS $function$
-- The guide's script, one kafka-topics line per pending change. Kafka 3+ tools need
-- --bootstrap-server, which the guide's example left out; it is read from the shell.
SELECT coalesce(
    string_agg(
        format('kafka-topics --bootstrap-server "${KAFKA_BOOTSTRAP_SERVERS:-localhost:9092}" --alter --topic %s --partitions %s',
               CASE WHEN c.topic_name ~ '^[A-Za-z0-9._-]+$' THEN c.topic_name
                    ELSE '''' || replace(c.topic_name, '''', '''"''"''') || '''' END,
               c.recommended_partitions),
        E'\n' ORDER BY c.topic_name),
    '# no pending partition changes')
  FROM public.topic_partition_changes AS c
 WHERE c.status = 'pending'
$function$
