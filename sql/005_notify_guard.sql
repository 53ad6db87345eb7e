-- Guarding the NOTIFY queue (README "The NOTIFY queue").
--
-- pg_notify's queue is shared by the whole cluster and can only be trimmed up
-- to the oldest position any listening session still has to read. A session
-- that LISTENs and then stops reading holds it there: one idle inside a
-- transaction (notifications are delivered only between transactions), or one
-- whose client no longer reads its socket (the server process then blocks
-- writing to it, wait event ClientWrite). The queue then grows with every
-- change until it is full, and from then on every transaction that notifies,
-- every faculty update, fails.
--
-- PostgreSQL does not say which sessions LISTEN, so the evidence is the stall
-- itself, judged on the server: in this database, a client session that has
-- been idle inside a transaction, or idle and blocked writing to its client,
-- for at least p_stalled_after. The caller decides when to look (the ingest
-- service's sweeper does when the queue usage passes its threshold, and drops
-- a session only when two looks in a row found it; an operator runs
-- `consultease health --fix`).
--
-- SECURITY DEFINER, so that the ingest and admin logins can see other logins'
-- sessions and end the stalled ones without being granted pg_read_all_stats or
-- pg_signal_backend themselves: the functions run with the privileges of the
-- role that ran the migration, and can only ever end a session that meets the
-- evidence above. That role needs to be a superuser, or a member of
-- pg_read_all_stats and pg_signal_backend, for them to see and end sessions of
-- other logins (`consultease health` says when it is not).

CREATE FUNCTION consultease_stalled_sessions_v1(
    p_stalled_after interval,
    p_drop_pids integer[] DEFAULT '{}',
    p_drop_started timestamptz[] DEFAULT '{}'
)
RETURNS TABLE (
    pid integer,
    backend_start timestamptz,
    usename text,
    application_name text,
    client_addr text,
    state text,
    wait_event text,
    stalled_seconds double precision,
    dropped boolean
)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_stalled_after IS NULL OR p_stalled_after < interval '1 second' THEN
        RAISE EXCEPTION 'a session must be stalled for at least 1 second, not %', p_stalled_after
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
    SELECT a.pid,
           a.backend_start,
           a.usename::text,
           a.application_name,
           host(a.client_addr),
           a.state,
           a.wait_event,
           extract(epoch FROM clock_timestamp() - a.state_change)::double precision,
           -- Only the sessions named (by pid and start time, so a reused pid is
           -- never hit) are ended, and only when they still show the evidence.
           CASE WHEN (a.pid, a.backend_start) IN (
                    SELECT d.pid, d.started FROM unnest(p_drop_pids, p_drop_started) AS d(pid, started))
                THEN pg_terminate_backend(a.pid)
                ELSE false
           END
    FROM pg_stat_activity AS a
    WHERE a.datname = current_database()
      AND a.backend_type = 'client backend'
      AND a.pid <> pg_backend_pid()
      AND clock_timestamp() - a.state_change >= p_stalled_after
      AND (a.state IN ('idle in transaction', 'idle in transaction (aborted)')
           OR (a.state = 'idle' AND a.wait_event = 'ClientWrite'))
    ORDER BY a.state_change;
END;
$$;

REVOKE ALL ON FUNCTION consultease_stalled_sessions_v1(interval, integer[], timestamptz[])
    FROM PUBLIC;
SELECT consultease_grant_v1(r,
    'GRANT EXECUTE ON FUNCTION consultease_stalled_sessions_v1(interval, integer[], timestamptz[]) '
    'TO %I')
FROM unnest(ARRAY['consultease_ingest', 'consultease_admin']::name[]) AS r;
