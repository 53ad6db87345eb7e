-- Tables of SPEC section 5. PostgreSQL is the single source of truth; every
-- server-side timestamp comes from the database clock (now()).

CREATE TABLE faculty (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name           text        NOT NULL CHECK (btrim(name) <> '' AND length(name) <= 200),
    department     text        NOT NULL CHECK (btrim(department) <> '' AND length(department) <= 200),
    email          text        NOT NULL CHECK (length(email) <= 320 AND email LIKE '%_@_%'),
    room           text                 CHECK (length(room) <= 100),
    status         text        NOT NULL DEFAULT 'away'
                               CHECK (status IN ('available', 'away', 'busy')),
    desk_online    boolean     NOT NULL DEFAULT false,
    desk_version   bigint               CHECK (desk_version >= 0),
    desk_ts        timestamptz,
    last_seen      timestamptz,
    status_source  text        NOT NULL DEFAULT 'admin'
                               CHECK (status_source IN ('desk', 'admin')),
    active         boolean     NOT NULL DEFAULT true,
    version        bigint      NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Case-insensitive uniqueness: "A@x.edu" and "a@X.EDU" are the same person.
CREATE UNIQUE INDEX faculty_email_key ON faculty (lower(email));
-- The offline sweeper scans online desks by last_seen.
CREATE INDEX faculty_online_last_seen_idx ON faculty (last_seen) WHERE desk_online AND active;

-- The audit trail of applied changes of status or desk_online.
CREATE TABLE status_change (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    faculty_id       bigint      NOT NULL REFERENCES faculty (id),
    old_status       text        NOT NULL,
    new_status       text        NOT NULL,
    old_desk_online  boolean     NOT NULL,
    new_desk_online  boolean     NOT NULL,
    source           text        NOT NULL CHECK (source IN ('desk', 'admin', 'sweeper')),
    desk_version     bigint,
    device_ts        timestamptz,
    changed_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (old_status IS DISTINCT FROM new_status
           OR old_desk_online IS DISTINCT FROM new_desk_online)
);
CREATE INDEX status_change_faculty_idx ON status_change (faculty_id, changed_at);

-- Every stale or rejected desk message, kept with its reason.
CREATE TABLE ingest_rejection (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic        text        NOT NULL,
    payload      bytea       NOT NULL CHECK (octet_length(payload) <= 4096),
    reason       text        NOT NULL,
    detail       text,
    received_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ingest_rejection_received_idx ON ingest_rejection (received_at);

CREATE TABLE admin_user (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username         text        NOT NULL CHECK (username ~ '^[A-Za-z0-9_.@-]{1,64}$'),
    password_hash    text        NOT NULL,
    failed_attempts  integer     NOT NULL DEFAULT 0 CHECK (failed_attempts >= 0),
    first_failed_at  timestamptz,
    locked_until     timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    password_changed_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX admin_user_username_key ON admin_user (lower(username));

CREATE TABLE audit_log (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    actor   text        NOT NULL,
    action  text        NOT NULL,
    target  text,
    before  jsonb,
    after   jsonb,
    at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_at_idx ON audit_log (at);
