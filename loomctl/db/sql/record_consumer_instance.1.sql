CREATE OR REPLACE FUNCTION public.record_consumer_instance(instance_id text, service_name text, config_version integer, language text, consumer_group_id text DEFAULT NULL::text, host text DEFAULT NULL::text, pid integer DEFAULT NULL::integer, refused_version integer DEFAULT NULL::integer)
 RETURNS void
 LANGUAGE sql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'public', 'pg_temp'
AS $function$
-- A running consumer a loader made says which config version it runs (at start, at each change it applied or
-- refused, and every half minute while it runs), so that `config show` and `config drift` tell which instances
-- have not taken the newest version yet. SECURITY DEFINER: a service (loomctl_service) reports through this
-- function and may not write the table itself; the database user is recorded as for the audit trails.
INSERT INTO public.consumer_instances AS i
    (instance_id, service_name, consumer_group_id, language, host, pid, config_version, refused_version, db_user,
     started_at, reported_at)
VALUES ($1, $2, $5, $4, $6, $7, $3, $8, session_user, now(), now())
ON CONFLICT (instance_id) DO UPDATE
   SET service_name = EXCLUDED.service_name, consumer_group_id = EXCLUDED.consumer_group_id,
       config_version = EXCLUDED.config_version, refused_version = EXCLUDED.refused_version,
       host = EXCLUDED.host, pid = EXCLUDED.pid, db_user = EXCLUDED.db_user, reported_at = now()
$function$
