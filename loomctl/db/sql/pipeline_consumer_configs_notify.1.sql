CREATE TRIGGER pipeline_consumer_configs_notify AFTER INSERT OR DELETE OR UPDATE ON public.pipeline_consumer_configs FOR EACH ROW EXECUTE FUNCTION public.consumer_config_notify()
