-- A login that may only ingest (in consultease_ingest, not in consultease_admin)
-- speaks for desks, never for an admin: it may not set faculty.status_source to
-- 'admin' nor append a status_change with source 'admin'. Column privileges
-- cannot say which values a column may take, so a trigger does, and refuses
-- with insufficient_privilege (SQLSTATE 42501) like any other missing right.
-- Superusers and owners are members of every role, so they stay unrestricted;
-- a missing group role (a DBA has not created it) restricts nobody.

CREATE FUNCTION consultease_ingest_only_v1() RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce(
        pg_has_role(current_user, to_regrole('consultease_ingest'), 'MEMBER')
        AND NOT coalesce(
            pg_has_role(current_user, to_regrole('consultease_admin'), 'MEMBER'), false),
        false)
$$;

CREATE FUNCTION faculty_desk_source_only_v1() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status_source = 'admin'
       AND NEW.status_source IS DISTINCT FROM OLD.status_source
       AND consultease_ingest_only_v1() THEN
        RAISE EXCEPTION 'an ingest login may not set status_source to admin'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER faculty_desk_source_only
    BEFORE UPDATE OF status_source ON faculty
    FOR EACH ROW EXECUTE FUNCTION faculty_desk_source_only_v1();

CREATE FUNCTION status_change_desk_source_only_v1() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.source = 'admin' AND consultease_ingest_only_v1() THEN
        RAISE EXCEPTION 'an ingest login may not record a change made by an admin'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER status_change_desk_source_only
    BEFORE INSERT ON status_change
    FOR EACH ROW EXECUTE FUNCTION status_change_desk_source_only_v1();

-- Login back-off per source (consultease.admin.accounts). A source is where a
-- login comes from: the kiosk or host and OS user running the CLI or the panel.
-- Every failed login from a source, for any username (unknown ones too), counts;
-- past a few, the source must wait, twice as long after each further failure.
-- It is judged on the database clock, like the account lock.
CREATE TABLE admin_login_source (
    source          text        PRIMARY KEY CHECK (length(source) BETWEEN 1 AND 200),
    failures        integer     NOT NULL DEFAULT 0 CHECK (failures >= 0),
    last_failed_at  timestamptz,
    blocked_until   timestamptz
);

SELECT consultease_grant_v1('consultease_admin',
    'GRANT SELECT, INSERT, UPDATE ON admin_login_source TO %I');
