CREATE OR REPLACE FUNCTION public.forget_consumer_instance(instance_id text)
 RETURNS void
 LANGUAGE sql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'public', 'pg_temp'
AS $function$
-- A consumer a loader made was closed by its service: it runs no version any more, and `config show` and
-- `config drift` stop counting it (an instance that stops without closing ages out instead). SECURITY DEFINER
-- for loomctl_service, which may not write the table itself.
DELETE FROM public.consumer_instances AS i WHERE i.instance_id = $1
$function$
