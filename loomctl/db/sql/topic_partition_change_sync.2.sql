CREATE OR REPLACE FUNCTION public.topic_partition_change_sync()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
-- `applied` (the guide's column) and `status` say the same thing; keep them in step whichever
-- one a writer sets, and let a new pending change supersede the topic's older pending one of the same cluster.
BEGIN
    IF NEW.applied AND NEW.status = 'pending' THEN
        NEW.status := 'applied';
    END IF;
    NEW.applied := (NEW.status = 'applied');
    IF NEW.applied THEN
        NEW.applied_at := coalesce(NEW.applied_at, now());
        NEW.applied_by := coalesce(NEW.applied_by, session_user);
    END IF;
    IF NEW.status = 'pending' AND (TG_OP = 'INSERT' OR OLD.status <> 'pending') THEN
        UPDATE public.topic_partition_changes
           SET status = 'superseded'
         WHERE topic_name = NEW.topic_name AND cluster_name = NEW.cluster_name AND status = 'pending' AND id <> NEW.id;
    END IF;
    RETURN NEW;
END
$function$
