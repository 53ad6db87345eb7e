-- The existing ESP32 desk firmware (SPEC 3.4a), unchanged on the desks.
--
-- desk_uptime_ms, desk_uptime_at (bookkeeping, never bump the version): the uptime
--   (the legacy payload's "timestamp", milliseconds since the desk booted) of the
--   legacy status last applied live, and when, by the database clock. With them the
--   ingest service recognises the firmware's offline queue, drained after the fresh
--   status on reconnect: older by the desk's own uptime, in the same boot (ordering
--   rule 5a). Cleared, like desk_version and desk_ts, by every status without one.
-- desk_name_mismatch: a desk whose payload faculty_name is not the row's name. The
--   update is still applied; the first time a name is seen it is kept here (and
--   logged once), and `consultease health` lists the desks whose rows still differ.

ALTER TABLE faculty ADD COLUMN desk_uptime_ms bigint CHECK (desk_uptime_ms >= 0);
ALTER TABLE faculty ADD COLUMN desk_uptime_at timestamptz;

CREATE TABLE desk_name_mismatch (
    faculty_id   bigint      NOT NULL REFERENCES faculty (id),
    payload_name text        NOT NULL,
    row_name     text        NOT NULL,
    first_seen   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (faculty_id, payload_name)
);

SELECT consultease_grant_v1('consultease_ingest',
    'GRANT UPDATE (desk_uptime_ms, desk_uptime_at) ON faculty TO %I');
SELECT consultease_grant_v1('consultease_ingest', 'GRANT SELECT, INSERT ON desk_name_mismatch TO %I');
SELECT consultease_grant_v1('consultease_admin', 'GRANT SELECT ON desk_name_mismatch TO %I');

-- `consultease faculty add --id N` and `faculty import` keep given ids (desks have them
-- compiled in): the admin then moves the id sequence past them (setval).
SELECT consultease_grant_v1('consultease_admin', 'GRANT SELECT, UPDATE ON SEQUENCE faculty_id_seq TO %I');
