-- A lecturer without a working desk unit can still be shown as available, and the
-- board can say since when a lecturer shows what it shows ("available since 11:02").
--
-- always_available (a visible column, set by an admin): the board shows the faculty
--   as Available whatever the stored status and whether a desk is online. It does
--   not touch desk_online, which keeps telling the truth about the desk unit: the
--   offline sweeper, `consultease health` and status_change go on judging desks.
-- status_since (bookkeeping): when what the board shows for the row (see
--   faculty_shown_status_v1) last changed. Only an update that bumps the version
--   can change it, so it never adds a notification of its own.

ALTER TABLE faculty ADD COLUMN always_available boolean NOT NULL DEFAULT false;
ALTER TABLE faculty ADD COLUMN status_since timestamptz;
-- Under faculty_bump_version_v1 this is bookkeeping: no version bump, no NOTIFY.
UPDATE faculty SET status_since = updated_at;
ALTER TABLE faculty
    ALTER COLUMN status_since SET NOT NULL,
    ALTER COLUMN status_since SET DEFAULT now();

-- What the board shows for a row: the one rule, also in FacultyView.shown_status.
CREATE FUNCTION faculty_shown_status_v1(p_status text, p_desk_online boolean,
                                        p_always_available boolean) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN p_always_available THEN 'available'
        WHEN NOT p_desk_online THEN 'offline'
        ELSE p_status
    END
$$;

-- BEFORE INSERT: as v1, and the shown status starts now.
CREATE FUNCTION faculty_insert_defaults_v2() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.version      := 1;
    NEW.created_at   := now();
    NEW.updated_at   := now();
    NEW.status_since := now();
    RETURN NEW;
END;
$$;

-- BEFORE UPDATE: as v1 with always_available among the visible columns, and
-- status_since moved to now() exactly when the shown status changes.
CREATE FUNCTION faculty_bump_version_v2() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.name, NEW.department, NEW.email, NEW.room, NEW.status,
        NEW.status_source, NEW.desk_online, NEW.active, NEW.always_available)
       IS DISTINCT FROM
       (OLD.name, OLD.department, OLD.email, OLD.room, OLD.status,
        OLD.status_source, OLD.desk_online, OLD.active, OLD.always_available)
    THEN
        NEW.version    := OLD.version + 1;
        NEW.updated_at := now();
    ELSE
        NEW.version    := OLD.version;
        NEW.updated_at := OLD.updated_at;
    END IF;
    IF faculty_shown_status_v1(NEW.status, NEW.desk_online, NEW.always_available)
       IS DISTINCT FROM
       faculty_shown_status_v1(OLD.status, OLD.desk_online, OLD.always_available)
    THEN
        NEW.status_since := now();
    ELSE
        NEW.status_since := OLD.status_since;
    END IF;
    NEW.created_at := OLD.created_at;
    RETURN NEW;
END;
$$;

DROP TRIGGER faculty_insert_defaults ON faculty;
CREATE TRIGGER faculty_insert_defaults
    BEFORE INSERT ON faculty
    FOR EACH ROW EXECUTE FUNCTION faculty_insert_defaults_v2();

DROP TRIGGER faculty_bump_version ON faculty;
CREATE TRIGGER faculty_bump_version
    BEFORE UPDATE ON faculty
    FOR EACH ROW EXECUTE FUNCTION faculty_bump_version_v2();

DROP FUNCTION faculty_insert_defaults_v1();
DROP FUNCTION faculty_bump_version_v1();
