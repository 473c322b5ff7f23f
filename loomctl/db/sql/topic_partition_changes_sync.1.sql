CREATE TRIGGER topic_partition_changes_sync BEFORE INSERT OR UPDATE ON public.topic_partition_changes FOR EACH ROW EXECUTE FUNCTION public.topic_partition_change_sync()
