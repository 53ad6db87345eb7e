-- Least-privilege database roles (README "Database roles").
--
-- Three NOLOGIN group roles hold the privileges; nobody logs in as them.
-- An operator gives each process its own LOGIN role inside one of them:
--     CREATE ROLE kiosk1 LOGIN PASSWORD '...' IN ROLE consultease_kiosk;
--
--   consultease_ingest  reads faculty; updates only the desk-driven columns
--                       (status, status_source, desk_online, desk_version,
--                       desk_ts, last_seen); appends status_change and
--                       ingest_rejection. It cannot touch name, email, etc.
--   consultease_kiosk   reads faculty (and LISTENs, which needs no grant).
--   consultease_admin   manages faculty and admin accounts; the audit trail
--                       is append-only for it (INSERT and SELECT, never
--                       UPDATE or DELETE), and nothing is ever deleted.
--
-- Roles are cluster-wide and outlive any one database, so they are created
-- only when missing, and only when the migrating user may create roles;
-- otherwise a NOTICE says so and a DBA can create them (then run the grants
-- below by hand, or use consultease_grant_v1). GRANTs belong to this database.

-- Run a GRANT-like statement for a role only when the role exists; the
-- statement names the role with %I. Later migrations use it for their own
-- tables, so they keep working on clusters where the roles were not created.
CREATE FUNCTION consultease_grant_v1(p_role name, p_statement text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = p_role) THEN
        RAISE NOTICE 'role % does not exist; skipped: %', p_role, format(p_statement, p_role);
        RETURN false;
    END IF;
    EXECUTE format(p_statement, p_role);
    RETURN true;
END;
$$;
REVOKE ALL ON FUNCTION consultease_grant_v1(name, text) FROM PUBLIC;

DO $$
DECLARE
    may_create boolean;
    wanted text[][] := ARRAY[
        ['consultease_ingest', 'ConsultEase ingest service: desk-driven faculty columns only'],
        ['consultease_kiosk',  'ConsultEase kiosk: reads faculty and listens'],
        ['consultease_admin',  'ConsultEase admin: faculty and admin accounts, append-only audit']
    ];
    i integer;
BEGIN
    SELECT rolcreaterole OR rolsuper INTO may_create FROM pg_roles WHERE rolname = current_user;
    FOR i IN 1 .. array_length(wanted, 1) LOOP
        IF EXISTS (SELECT FROM pg_roles WHERE rolname = wanted[i][1]) THEN
            CONTINUE;
        END IF;
        IF NOT coalesce(may_create, false) THEN
            RAISE NOTICE '% may not create roles: role % not created (ask a DBA, see README)',
                current_user, wanted[i][1];
            CONTINUE;
        END IF;
        BEGIN
            EXECUTE format('CREATE ROLE %I NOLOGIN', wanted[i][1]);
            EXECUTE format('COMMENT ON ROLE %I IS %L', wanted[i][1], wanted[i][2]);
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            -- Another database's migration created it at the same moment.
            NULL;
        END;
    END LOOP;
END;
$$;

-- Schema access, for whichever schema the tables live in.
SELECT consultease_grant_v1(r, format('GRANT USAGE ON SCHEMA %I TO %%I', current_schema()))
FROM unnest(ARRAY['consultease_ingest', 'consultease_kiosk', 'consultease_admin']::name[]) AS r;

-- Every role may see which migrations ran (health checks).
SELECT consultease_grant_v1(r, 'GRANT SELECT ON schema_migration TO %I')
FROM unnest(ARRAY['consultease_ingest', 'consultease_kiosk', 'consultease_admin']::name[]) AS r;

-- Ingest: SELECT to lock and read rows (SELECT ... FOR UPDATE also needs an
-- UPDATE privilege on some column, which the column-level grant provides).
SELECT consultease_grant_v1('consultease_ingest', 'GRANT SELECT ON faculty TO %I');
SELECT consultease_grant_v1('consultease_ingest',
    'GRANT UPDATE (status, status_source, desk_online, desk_version, desk_ts, last_seen) '
    'ON faculty TO %I');
SELECT consultease_grant_v1('consultease_ingest', 'GRANT SELECT, INSERT ON status_change TO %I');
SELECT consultease_grant_v1('consultease_ingest', 'GRANT SELECT, INSERT ON ingest_rejection TO %I');

-- Kiosk: what the board shows. LISTEN needs no privilege.
SELECT consultease_grant_v1('consultease_kiosk', 'GRANT SELECT ON faculty TO %I');

-- Admin: faculty (no DELETE: deactivation keeps history), admin accounts,
-- the audit trail (append-only), hand-set status changes.
SELECT consultease_grant_v1('consultease_admin', 'GRANT SELECT, INSERT, UPDATE ON faculty TO %I');
SELECT consultease_grant_v1('consultease_admin',
    'GRANT SELECT, INSERT, UPDATE ON admin_user TO %I');
SELECT consultease_grant_v1('consultease_admin', 'GRANT SELECT, INSERT ON audit_log TO %I');
SELECT consultease_grant_v1('consultease_admin', 'GRANT SELECT, INSERT ON status_change TO %I');
SELECT consultease_grant_v1('consultease_admin', 'GRANT SELECT ON ingest_rejection TO %I');

-- Tables added by later migrations (run by this same user) are readable by
-- admins for inspection; every other privilege on them is granted
-- explicitly by the migration that adds them, through consultease_grant_v1.
SELECT consultease_grant_v1('consultease_admin',
    format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT ON TABLES TO %%I',
           current_schema()));
