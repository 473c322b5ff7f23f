CREATE OR REPLACE FUNCTION public.audit_db_user()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
-- Who made a change, as PostgreSQL knows it: the database user of the session (session_user,
-- which SET ROLE does not change), written into every row of an audit trail whatever its writer
-- says. The actor (loomctl.actor, `--actor`) records intent and may name anyone; this records who
-- did it, for raw SQL as for loomctl. A row inserted by hand gets it too, and an UPDATE of an
-- audit row keeps the db_user the row had.
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.db_user := session_user;
    ELSE
        NEW.db_user := OLD.db_user;
    END IF;
    RETURN NEW;
END
$function$
