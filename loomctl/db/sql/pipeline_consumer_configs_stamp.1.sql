CREATE TRIGGER pipeline_consumer_configs_stamp BEFORE INSERT OR UPDATE ON public.pipeline_consumer_configs FOR EACH ROW EXECUTE FUNCTION public.consumer_config_stamp()
