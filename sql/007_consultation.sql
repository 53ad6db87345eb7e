-- Consultation requests (SPEC 9): a student asks at the kiosk, the desk shows it,
-- the lecturer answers with a button. The rules live here as well as in
-- consultease/consultation.py, so that no client (ingest, kiosk, admin, psql)
-- can break them.
--
-- student: the people an RFID card (a USB keyboard-wedge reader at the kiosk)
--   can name. Admins manage it; a kiosk looks one card up at a time through
--   consultease_student_by_rfid_v1, never by reading the table.
-- consultation: one request, from pending to a final state:
--   pending  -> accepted | declined | cancelled | expired
--   accepted -> completed | cancelled
--   declined, cancelled, expired, completed are final.
--   Visible columns (what the kiosk and the desk show) bump version and notify;
--   the dispatcher's bookkeeping (delivered_at, delivery_attempts,
--   cancel_sent_at) never does.

CREATE TABLE student (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    student_id  text        NOT NULL CHECK (student_id ~ '^[A-Za-z0-9][A-Za-z0-9._/-]{0,31}$'),
    name        text        NOT NULL CHECK (btrim(name) <> '' AND length(name) <= 100),
    course_code text                 CHECK (btrim(course_code) <> '' AND length(course_code) <= 32),
    -- A card UID as the reader types it: digits or hex, upper case.
    rfid_uid    text                 CHECK (rfid_uid ~ '^[0-9A-F]{4,32}$'),
    active      boolean     NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX student_student_id_key ON student (lower(student_id));
CREATE UNIQUE INDEX student_rfid_uid_key ON student (rfid_uid);

CREATE TABLE consultation (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    faculty_id        bigint      NOT NULL REFERENCES faculty (id),
    student_name      text        NOT NULL
                                  CHECK (btrim(student_name) <> '' AND length(student_name) <= 100),
    student_id        text                 CHECK (btrim(student_id) <> '' AND length(student_id) <= 32),
    course_code       text                 CHECK (btrim(course_code) <> '' AND length(course_code) <= 32),
    message           text        NOT NULL
                                  CHECK (btrim(message) <> '' AND length(message) BETWEEN 1 AND 500),
    status            text        NOT NULL DEFAULT 'pending'
                                  CHECK (status IN ('pending', 'accepted', 'declined',
                                                    'cancelled', 'expired', 'completed')),
    version           bigint      NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    responded_at      timestamptz,
    closed_at         timestamptz,
    closed_by         text        CHECK (closed_by IN ('student', 'desk', 'admin', 'system')),
    -- The login that created it: a kiosk reads and cancels only its own.
    created_by        text        NOT NULL DEFAULT session_user,
    -- Dispatcher bookkeeping: when the CID text last went to the desk (PUBACK
    -- received), how often, and when the cancellation went.
    delivered_at      timestamptz,
    delivery_attempts integer     NOT NULL DEFAULT 0 CHECK (delivery_attempts >= 0),
    cancel_sent_at    timestamptz,
    -- Open requests have no closer; closed ones name theirs.
    CHECK ((status IN ('pending', 'accepted')) = (closed_by IS NULL)),
    CHECK ((status IN ('pending', 'accepted')) = (closed_at IS NULL)),
    -- The desk answered exactly the accepted and declined ones (and an accepted
    -- one stays answered when it is later completed or cancelled).
    CHECK (status NOT IN ('accepted', 'declined', 'completed') OR responded_at IS NOT NULL),
    CHECK (status NOT IN ('pending', 'expired') OR responded_at IS NULL)
);

-- One open request per student per lecturer: the student id when given, else the name.
CREATE UNIQUE INDEX consultation_one_open_per_student_key
    ON consultation (faculty_id,
                     coalesce('sid:' || lower(btrim(student_id)),
                              'name:' || lower(btrim(student_name))))
    WHERE status IN ('pending', 'accepted');
-- The dispatcher and the expiry sweeper look at open requests per desk.
CREATE INDEX consultation_open_idx ON consultation (faculty_id, id)
    WHERE status IN ('pending', 'accepted');
CREATE INDEX consultation_pending_created_idx ON consultation (created_at)
    WHERE status = 'pending';
CREATE INDEX consultation_faculty_created_idx ON consultation (faculty_id, created_at);
-- The dispatcher's cancellations still to send.
CREATE INDEX consultation_cancel_unsent_idx ON consultation (id)
    WHERE status IN ('cancelled', 'expired') AND cancel_sent_at IS NULL;

-- The transition rule, the same table as consultease.consultation.TRANSITIONS.
CREATE FUNCTION consultation_transition_allowed_v1(p_old text, p_new text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (p_old, p_new) IN (
        ('pending', 'accepted'), ('pending', 'declined'),
        ('pending', 'cancelled'), ('pending', 'expired'),
        ('accepted', 'completed'), ('accepted', 'cancelled'))
$$;

-- BEFORE INSERT: every request starts pending at version 1, on the database clock,
-- with no answer and no bookkeeping.
CREATE FUNCTION consultation_insert_defaults_v1() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status IS DISTINCT FROM 'pending' THEN
        RAISE EXCEPTION 'a consultation request starts pending, not %', NEW.status
            USING ERRCODE = 'check_violation', CONSTRAINT = 'consultation_transition';
    END IF;
    NEW.version           := 1;
    NEW.created_at        := now();
    NEW.updated_at        := now();
    NEW.responded_at      := NULL;
    NEW.closed_at         := NULL;
    NEW.closed_by         := NULL;
    NEW.delivered_at      := NULL;
    NEW.delivery_attempts := 0;
    NEW.cancel_sent_at    := NULL;
    RETURN NEW;
END;
$$;

-- BEFORE UPDATE: refuse every transition the rule does not allow, whoever writes;
-- stamp responded_at and closed_at from the database clock; keep what never
-- changes; bump version by exactly one when a visible column changes.
CREATE FUNCTION consultation_before_update_v1() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status IS DISTINCT FROM OLD.status THEN
        IF NOT consultation_transition_allowed_v1(OLD.status, NEW.status) THEN
            RAISE EXCEPTION 'consultation %: % -> % is not a valid transition',
                OLD.id, OLD.status, NEW.status
                USING ERRCODE = 'check_violation', CONSTRAINT = 'consultation_transition';
        END IF;
        IF OLD.status = 'pending' AND NEW.status IN ('accepted', 'declined') THEN
            NEW.responded_at := now();
        ELSE
            NEW.responded_at := OLD.responded_at;
        END IF;
        IF NEW.status IN ('pending', 'accepted') THEN
            NEW.closed_at := NULL;
        ELSE
            NEW.closed_at := now();
        END IF;
    ELSE
        NEW.responded_at := OLD.responded_at;
        NEW.closed_at    := OLD.closed_at;
        NEW.closed_by    := OLD.closed_by;
    END IF;
    NEW.id         := OLD.id;
    NEW.faculty_id := OLD.faculty_id;
    NEW.created_at := OLD.created_at;
    NEW.created_by := OLD.created_by;
    IF (NEW.student_name, NEW.student_id, NEW.course_code, NEW.message, NEW.status,
        NEW.responded_at, NEW.closed_at, NEW.closed_by)
       IS DISTINCT FROM
       (OLD.student_name, OLD.student_id, OLD.course_code, OLD.message, OLD.status,
        OLD.responded_at, OLD.closed_at, OLD.closed_by)
    THEN
        NEW.version    := OLD.version + 1;
        NEW.updated_at := now();
    ELSE
        NEW.version    := OLD.version;
        NEW.updated_at := OLD.updated_at;
    END IF;
    RETURN NEW;
END;
$$;

-- AFTER: a small hint on channel consultation_changed. Readers fetch the row.
CREATE FUNCTION consultation_notify_v1() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    r consultation%ROWTYPE;
BEGIN
    IF TG_OP = 'DELETE' THEN
        r := OLD;
    ELSE
        r := NEW;
    END IF;
    PERFORM pg_notify('consultation_changed', json_build_object(
        'op', TG_OP,
        'id', r.id,
        'faculty_id', r.faculty_id,
        'version', r.version,
        'status', r.status
    )::text);
    RETURN NULL;
END;
$$;

CREATE TRIGGER consultation_insert_defaults
    BEFORE INSERT ON consultation
    FOR EACH ROW EXECUTE FUNCTION consultation_insert_defaults_v1();

CREATE TRIGGER consultation_before_update
    BEFORE UPDATE ON consultation
    FOR EACH ROW EXECUTE FUNCTION consultation_before_update_v1();

CREATE TRIGGER consultation_notify_insert_delete
    AFTER INSERT OR DELETE ON consultation
    FOR EACH ROW EXECUTE FUNCTION consultation_notify_v1();

-- Exactly the updates that bumped version notify.
CREATE TRIGGER consultation_notify_update
    AFTER UPDATE ON consultation
    FOR EACH ROW
    WHEN (NEW.version IS DISTINCT FROM OLD.version)
    EXECUTE FUNCTION consultation_notify_v1();

-- AFTER UPDATE of a faculty row that becomes online and available (its desk came
-- back, or the lecturer is back from away or busy), when requests wait for that
-- desk: a hint on channel consultation_due, so the dispatcher sends them again
-- (the installed firmware keeps no session and drops requests while away). Only
-- these transitions, and only with pending requests, so desk traffic does not
-- flood the dispatcher with faculty notifications.
DO $$
BEGIN
    EXECUTE format(
        'CREATE FUNCTION consultation_due_v1() RETURNS trigger '
        'LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS '
        '$f$ BEGIN '
        '  IF EXISTS (SELECT FROM %I.consultation AS c '
        '             WHERE c.faculty_id = NEW.id AND c.status = ''pending'') THEN '
        '    PERFORM pg_notify(''consultation_due'', '
        '                      json_build_object(''faculty_id'', NEW.id)::text); '
        '  END IF; '
        '  RETURN NULL; '
        'END $f$',
        current_schema());
END;
$$;
REVOKE ALL ON FUNCTION consultation_due_v1() FROM PUBLIC;

CREATE TRIGGER faculty_consultation_due
    AFTER UPDATE ON faculty
    FOR EACH ROW
    WHEN (NEW.desk_online AND NEW.status = 'available'
          AND NOT (OLD.desk_online AND OLD.status = 'available'))
    EXECUTE FUNCTION consultation_due_v1();

CREATE FUNCTION student_touch_v1() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.created_at := now();
    ELSE
        NEW.created_at := OLD.created_at;
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

CREATE TRIGGER student_touch
    BEFORE INSERT OR UPDATE ON student
    FOR EACH ROW EXECUTE FUNCTION student_touch_v1();

-- The one thing a kiosk may learn from the student table: who holds this card.
-- SECURITY DEFINER with a fixed search path, so the table is named with its schema.
DO $$
BEGIN
    EXECUTE format(
        'CREATE FUNCTION consultease_student_by_rfid_v1(p_uid text) '
        'RETURNS TABLE (student_id text, name text, course_code text) '
        'LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS '
        '$f$ SELECT s.student_id, s.name, s.course_code FROM %I.student AS s '
        'WHERE s.rfid_uid = upper(btrim(p_uid)) AND s.active $f$',
        current_schema());
END;
$$;
REVOKE ALL ON FUNCTION consultease_student_by_rfid_v1(text) FROM PUBLIC;

-- Who may see and change which requests. The table owner (the migrating user)
-- is not subject to these policies; a policy for a role covers its members.
ALTER TABLE consultation ENABLE ROW LEVEL SECURITY;
SELECT consultease_grant_v1(r,
    'CREATE POLICY consultation_' || replace(r, 'consultease_', '') || '_all '
    'ON consultation FOR ALL TO %I USING (true) WITH CHECK (true)')
FROM unnest(ARRAY['consultease_ingest', 'consultease_admin']::name[]) AS r;
-- A kiosk: its own requests only; it creates them pending and may only cancel them.
SELECT consultease_grant_v1('consultease_kiosk',
    'CREATE POLICY consultation_kiosk_read ON consultation FOR SELECT TO %I '
    'USING (created_by = session_user)');
SELECT consultease_grant_v1('consultease_kiosk',
    'CREATE POLICY consultation_kiosk_create ON consultation FOR INSERT TO %I '
    'WITH CHECK (created_by = session_user AND status = ''pending'')');
SELECT consultease_grant_v1('consultease_kiosk',
    'CREATE POLICY consultation_kiosk_cancel ON consultation FOR UPDATE TO %I '
    'USING (created_by = session_user) '
    'WITH CHECK (created_by = session_user AND status = ''cancelled'' AND closed_by = ''student'')');

-- Ingest: read requests; apply desk answers (status, closed_by), expire them
-- (the sweeper) and keep the dispatcher's bookkeeping. responded_at and
-- closed_at are stamped by the trigger, so no client writes them.
SELECT consultease_grant_v1('consultease_ingest', 'GRANT SELECT ON consultation TO %I');
SELECT consultease_grant_v1('consultease_ingest',
    'GRANT UPDATE (status, closed_by, delivered_at, delivery_attempts, cancel_sent_at) '
    'ON consultation TO %I');

-- Kiosk: create a request, read it, cancel it (the policies above say which rows);
-- look a card up.
SELECT consultease_grant_v1('consultease_kiosk', 'GRANT SELECT ON consultation TO %I');
SELECT consultease_grant_v1('consultease_kiosk',
    'GRANT INSERT (faculty_id, student_name, student_id, course_code, message) '
    'ON consultation TO %I');
SELECT consultease_grant_v1('consultease_kiosk',
    'GRANT UPDATE (status, closed_by) ON consultation TO %I');
SELECT consultease_grant_v1('consultease_kiosk',
    'GRANT EXECUTE ON FUNCTION consultease_student_by_rfid_v1(text) TO %I');

-- Admin: everything but DELETE (history is kept).
SELECT consultease_grant_v1('consultease_admin',
    'GRANT SELECT, INSERT, UPDATE ON consultation TO %I');
SELECT consultease_grant_v1('consultease_admin', 'GRANT SELECT, INSERT, UPDATE ON student TO %I');
SELECT consultease_grant_v1('consultease_admin',
    'GRANT EXECUTE ON FUNCTION consultease_student_by_rfid_v1(text) TO %I');
