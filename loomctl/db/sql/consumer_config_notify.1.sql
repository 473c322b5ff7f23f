CREATE OR REPLACE FUNCTION public.consumer_config_notify()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
-- Running loaders hear each new version of their service's config on the channel loomctl_config, at commit:
-- {"service": ..., "version": ..., "deleted": ...}. A raw SQL change (no loomctl.actor; the guide's UPDATE) is
-- told in a NOTICE how each changed setting reaches the running services.
DECLARE
    meta text[] := ARRAY['version', 'created_at', 'updated_at', 'updated_by'];
    told text;
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.version = OLD.version THEN
        RETURN NULL;
    END IF;
    PERFORM pg_notify('loomctl_config', json_build_object(
        'service', CASE WHEN TG_OP = 'DELETE' THEN OLD.service_name ELSE NEW.service_name END,
        'version', CASE WHEN TG_OP = 'DELETE' THEN OLD.version ELSE NEW.version END,
        'deleted', TG_OP = 'DELETE')::text);
    IF TG_OP = 'UPDATE' AND nullif(current_setting('loomctl.actor', true), '') IS NULL THEN
        SELECT string_agg(format('%s %s', c.key, CASE c.class
                   WHEN 'live' THEN 'applies at the next poll'
                   WHEN 'recreate' THEN 'applies when the loaders recreate the client'
                   WHEN 'broker' THEN 'applies on the broker: run loomctl config push ' || NEW.service_name
                   ELSE 'is not used by a ' || NEW.group_protocol || ' group' END), '; ' ORDER BY c.key)
          INTO told
          FROM (SELECT k.key, public.consumer_config_reload_class(k.key, NEW.group_protocol) AS class
                  FROM jsonb_object_keys(to_jsonb(NEW) - meta) AS k(key)
                 WHERE (to_jsonb(OLD) -> k.key) IS DISTINCT FROM (to_jsonb(NEW) -> k.key)) AS c
         WHERE c.class IS NOT NULL;
        IF told IS NOT NULL THEN
            RAISE NOTICE '% version %: %', NEW.service_name, NEW.version, told;
        END IF;
    END IF;
    RETURN NULL;
END
$function$
