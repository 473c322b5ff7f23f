CREATE TRIGGER kafka_clusters_audit AFTER INSERT OR DELETE OR UPDATE ON public.kafka_clusters FOR EACH ROW EXECUTE FUNCTION public.kafka_cluster_audit()
