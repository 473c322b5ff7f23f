CREATE TRIGGER kafka_cluster_changes_db_user BEFORE INSERT OR UPDATE ON public.kafka_cluster_changes FOR EACH ROW EXECUTE FUNCTION public.audit_db_user()
