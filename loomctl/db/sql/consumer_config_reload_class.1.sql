CREATE OR REPLACE FUNCTION public.consumer_config_reload_class(field text, protocol text)
 RETURNS text
 LANGUAGE sql
 IMMUTABLE
AS $function$
-- How a change of one column of pipeline_consumer_configs reaches a running service of this group protocol:
-- 'live' (the loaders, at the next poll), 'recreate' (the loaders, by a new client at a safe point), 'broker'
-- (a group config, by loomctl config push) or 'unused'; NULL for a column that is no client setting.
-- Generated from loomctl's field table (loomctl.consumer_config.reload_class), as `config set` says it.
SELECT {{ reload_class(field) }}
$function$
