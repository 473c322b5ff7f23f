CREATE OR REPLACE FUNCTION public.consumer_config_stamp()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
-- Keeps version, updated_at and updated_by right for every writer, loomctl and raw SQL alike.
DECLARE
    meta text[] := ARRAY['version', 'created_at', 'updated_at', 'updated_by'];
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF (to_jsonb(NEW) - meta) IS NOT DISTINCT FROM (to_jsonb(OLD) - meta) THEN
            -- a no-op update keeps the version, so it cannot make a concurrent writer fail
            NEW.version := OLD.version;
            NEW.updated_at := OLD.updated_at;
            NEW.updated_by := OLD.updated_by;
            RETURN NEW;
        END IF;
        NEW.version := OLD.version + 1;
        NEW.created_at := OLD.created_at;
    ELSE
        NEW.version := 1;
        NEW.created_at := now();
    END IF;
    NEW.updated_at := now();
    NEW.updated_by := coalesce(nullif(current_setting('loomctl.actor', true), ''), session_user);
    RETURN NEW;
END
$function$
