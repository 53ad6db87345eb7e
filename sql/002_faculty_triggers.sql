-- The row version and the change notification of SPEC 5.1 and 5.3, kept in
-- the database so that no client (ingest, admin, a psql session) can forget
-- them. Functions carry a version suffix so a later migration can replace
-- them side by side.

-- BEFORE INSERT: a new row starts at version 1; timestamps from the database clock.
CREATE FUNCTION faculty_insert_defaults_v1() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.version    := 1;
    NEW.created_at := now();
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

-- BEFORE UPDATE: bump version by exactly 1 when a visible column changes,
-- otherwise keep it (bookkeeping such as last_seen never bumps it, and no
-- client can set version by hand).
CREATE FUNCTION faculty_bump_version_v1() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.name, NEW.department, NEW.email, NEW.room, NEW.status,
        NEW.status_source, NEW.desk_online, NEW.active)
       IS DISTINCT FROM
       (OLD.name, OLD.department, OLD.email, OLD.room, OLD.status,
        OLD.status_source, OLD.desk_online, OLD.active)
    THEN
        NEW.version    := OLD.version + 1;
        NEW.updated_at := now();
    ELSE
        NEW.version    := OLD.version;
        NEW.updated_at := OLD.updated_at;
    END IF;
    NEW.created_at := OLD.created_at;
    RETURN NEW;
END;
$$;

-- AFTER: a small hint on channel faculty_changed. Readers fetch the row.
CREATE FUNCTION faculty_notify_v1() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    r faculty%ROWTYPE;
BEGIN
    IF TG_OP = 'DELETE' THEN
        r := OLD;
    ELSE
        r := NEW;
    END IF;
    PERFORM pg_notify('faculty_changed', json_build_object(
        'op', TG_OP,
        'id', r.id,
        'version', r.version,
        'status', r.status,
        'desk_online', r.desk_online,
        'desk_version', r.desk_version,
        'active', r.active
    )::text);
    RETURN NULL;
END;
$$;

CREATE TRIGGER faculty_insert_defaults
    BEFORE INSERT ON faculty
    FOR EACH ROW EXECUTE FUNCTION faculty_insert_defaults_v1();

CREATE TRIGGER faculty_bump_version
    BEFORE UPDATE ON faculty
    FOR EACH ROW EXECUTE FUNCTION faculty_bump_version_v1();

CREATE TRIGGER faculty_notify_insert_delete
    AFTER INSERT OR DELETE ON faculty
    FOR EACH ROW EXECUTE FUNCTION faculty_notify_v1();

-- Exactly the updates that bumped version notify.
CREATE TRIGGER faculty_notify_update
    AFTER UPDATE ON faculty
    FOR EACH ROW
    WHEN (NEW.version IS DISTINCT FROM OLD.version)
    EXECUTE FUNCTION faculty_notify_v1();
