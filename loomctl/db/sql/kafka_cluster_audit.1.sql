CREATE OR REPLACE FUNCTION public.kafka_cluster_audit()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
-- The cluster registry's audit trail, kept as the configs' is (consumer_config_audit): raw SQL
-- changes are recorded too, loomctl's with its actor and reason.
DECLARE
    meta text[] := ARRAY['version', 'created_at', 'updated_at', 'updated_by'];
    old_row jsonb;
    new_row jsonb;
    fields text[];
    actor text := nullif(current_setting('loomctl.actor', true), '');
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.version = OLD.version THEN
        RETURN NULL;
    END IF;
    IF TG_OP <> 'INSERT' THEN
        old_row := to_jsonb(OLD) - meta;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        new_row := to_jsonb(NEW) - meta;
    END IF;
    SELECT coalesce(array_agg(k.key ORDER BY k.key), '{}')
      INTO fields
      FROM jsonb_object_keys(coalesce(new_row, old_row)) AS k(key)
     WHERE (old_row -> k.key) IS DISTINCT FROM (new_row -> k.key);
    INSERT INTO public.kafka_cluster_changes
        (cluster_name, change_type, changed_fields, old_values, new_values, reason, changed_by,
         cluster_version, source)
    VALUES (
        CASE WHEN TG_OP = 'DELETE' THEN OLD.cluster_name ELSE NEW.cluster_name END,
        CASE TG_OP WHEN 'INSERT' THEN 'create' ELSE lower(TG_OP) END,
        fields,
        old_row,
        new_row,
        nullif(current_setting('loomctl.reason', true), ''),
        coalesce(actor, session_user),
        CASE WHEN TG_OP = 'DELETE' THEN OLD.version ELSE NEW.version END,
        CASE WHEN actor IS NULL THEN 'sql' ELSE 'loomctl' END
    );
    RETURN NULL;
END
$function$
