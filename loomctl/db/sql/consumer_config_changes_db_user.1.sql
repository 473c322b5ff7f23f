CREATE TRIGGER consumer_config_changes_db_user BEFORE INSERT OR UPDATE ON public.consumer_config_changes FOR EACH ROW EXECUTE FUNCTION public.audit_db_user()
