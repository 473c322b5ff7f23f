CREATE OR REPLACE FUNCTION public.consumer_config_audit()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
-- The audit trail lives in a trigger so that the guide's raw SQL UPDATEs are recorded too.
-- loomctl sets loomctl.actor and loomctl.reason for its transaction; psql users are recorded
-- as their database user.
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
    INSERT INTO public.consumer_config_changes
        (service_name, change_type, changed_fields, old_values, new_values, reason, changed_by,
         config_version, source)
    VALUES (
        CASE WHEN TG_OP = 'DELETE' THEN OLD.service_name ELSE NEW.service_name END,
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
