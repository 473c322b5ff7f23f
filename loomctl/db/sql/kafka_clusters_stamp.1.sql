CREATE TRIGGER kafka_clusters_stamp BEFORE INSERT OR UPDATE ON public.kafka_clusters FOR EACH ROW EXECUTE FUNCTION public.consumer_config_stamp()
