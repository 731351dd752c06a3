-- Identity a session cannot forge (issue 14).
--
-- Until now the scoped identity was the custom setting `firmflow.user_id`,
-- which any session may set: a connection as `firmflow_scoped` could name an
-- admin's id (readable by everyone in `users`) and see everything.
--
-- Now the identity is the database role a statement runs as. Each firmflow
-- user has a NOLOGIN role `ff_u_<the user id's 32 hex digits>` (created by
-- `PgStore::create_user`, below for users that exist already). Such a role is
-- a member of `firmflow_scoped` (which holds the table grants) and of nothing
-- else; the store's login role (the tables' owner) is a member of every user
-- role and switches to one with `SET LOCAL ROLE` for each scoped transaction.
-- A session running as a user role can only become roles that role is a
-- member of: `firmflow_scoped`, which is nobody (it sees nothing). A setting
-- it sets is read by no policy.
--
-- The SECURITY DEFINER helpers (they read `users`, `hosts` and plans as the
-- owner, unfiltered) cannot see the caller's role themselves (inside them
-- `current_user` is the owner), so the policy-facing functions are invoker
-- functions passing `current_user` to a `*_for(who, ...)` helper, and every
-- helper checks `who` through `firmflow_identity`: a role the session's login
-- role (`session_user`, which no SET ROLE changes) is a member of. A tenant
-- logged in as its own role can therefore ask only about itself; only the
-- owner's login (the trusted daemon) may act as any user.

-- --------------------------------------------------------------- identity
CREATE FUNCTION firmflow_identity(who name) RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT AS $$
    SELECT CASE
        WHEN who::text ~ '^ff_u_[0-9a-f]{32}$'
             AND to_regrole(who::text) IS NOT NULL
             AND pg_has_role(session_user, who, 'MEMBER')
        THEN substr(who::text, 6)::uuid
    END
$$;

CREATE OR REPLACE FUNCTION firmflow_current_user() RETURNS uuid
LANGUAGE sql STABLE SECURITY INVOKER AS $$
    SELECT firmflow_identity(current_user)
$$;

CREATE FUNCTION firmflow_role_for(who name) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT AS $$
    SELECT role FROM users WHERE id = firmflow_identity(who)
$$;

CREATE FUNCTION firmflow_dc_visible_for(who name, dc uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT AS $$
    SELECT coalesce(firmflow_role_for(who) = 'admin', false)
        OR (dc IS NOT NULL AND firmflow_role_for(who) IS NOT NULL AND EXISTS (
                SELECT 1 FROM user_datacenter_access a
                WHERE a.user_id = firmflow_identity(who) AND a.datacenter_id = dc))
$$;

CREATE FUNCTION firmflow_dc_writable_for(who name, dc uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT AS $$
    SELECT coalesce(firmflow_role_for(who) = 'admin', false)
        OR (dc IS NOT NULL AND firmflow_role_for(who) = 'operator' AND EXISTS (
                SELECT 1 FROM user_datacenter_access a
                WHERE a.user_id = firmflow_identity(who) AND a.datacenter_id = dc))
$$;

CREATE FUNCTION firmflow_host_visible_for(who name, h uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT AS $$
    SELECT firmflow_dc_visible_for(who, (SELECT datacenter_id FROM hosts WHERE id = h))
$$;
CREATE FUNCTION firmflow_host_writable_for(who name, h uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT AS $$
    SELECT firmflow_dc_writable_for(who, (SELECT datacenter_id FROM hosts WHERE id = h))
$$;
CREATE FUNCTION firmflow_plan_visible_for(who name, p uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT AS $$
    SELECT firmflow_dc_visible_for(who, (SELECT datacenter_id FROM update_plans WHERE id = p))
$$;
CREATE FUNCTION firmflow_plan_writable_for(who name, p uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT AS $$
    SELECT firmflow_dc_writable_for(who, (SELECT datacenter_id FROM update_plans WHERE id = p))
$$;

-- The names the policies of 0003 call keep their signatures; they become
-- invoker functions asking about the role the statement runs as.
CREATE OR REPLACE FUNCTION firmflow_current_role() RETURNS text
LANGUAGE sql STABLE SECURITY INVOKER AS $$ SELECT firmflow_role_for(current_user) $$;
CREATE OR REPLACE FUNCTION firmflow_dc_visible(dc uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY INVOKER AS $$ SELECT firmflow_dc_visible_for(current_user, dc) $$;
CREATE OR REPLACE FUNCTION firmflow_dc_writable(dc uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY INVOKER AS $$ SELECT firmflow_dc_writable_for(current_user, dc) $$;
CREATE OR REPLACE FUNCTION firmflow_host_visible(h uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY INVOKER AS $$ SELECT firmflow_host_visible_for(current_user, h) $$;
CREATE OR REPLACE FUNCTION firmflow_host_writable(h uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY INVOKER AS $$ SELECT firmflow_host_writable_for(current_user, h) $$;
CREATE OR REPLACE FUNCTION firmflow_plan_visible(p uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY INVOKER AS $$ SELECT firmflow_plan_visible_for(current_user, p) $$;
CREATE OR REPLACE FUNCTION firmflow_plan_writable(p uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY INVOKER AS $$ SELECT firmflow_plan_writable_for(current_user, p) $$;

-- Maintenance functions are the owner's: nobody else calls them.
REVOKE EXECUTE ON FUNCTION firmflow_ensure_event_partition(timestamptz) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION firmflow_drop_event_partitions(timestamptz) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION sync_to_local_api(text, uuid) FROM PUBLIC;

-- A role per existing user (new users get theirs from PgStore::create_user).
DO $$
DECLARE
    u record;
    r text;
BEGIN
    FOR u IN SELECT id FROM users LOOP
        r := 'ff_u_' || replace(u.id::text, '-', '');
        BEGIN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r);
        EXCEPTION WHEN duplicate_object THEN
            NULL;
        END;
        EXECUTE format('GRANT firmflow_scoped TO %I', r);
        EXECUTE format('GRANT %I TO CURRENT_USER', r);
    END LOOP;
END$$;

-- ------------------------------------------------------------- directory
-- A datacenter is seen by those granted it; a user sees itself (admins all).
DROP POLICY directory_read ON datacenters;
CREATE POLICY directory_read ON datacenters FOR SELECT USING (firmflow_dc_visible(id));
DROP POLICY directory_read ON users;
CREATE POLICY directory_read ON users FOR SELECT
    USING (id = firmflow_current_user() OR firmflow_current_role() = 'admin');

-- ---------------------------------------------------------------- targets
-- A target row is the plan's and the host's: both must be in reach.
DROP POLICY targets_read ON plan_targets;
CREATE POLICY targets_read ON plan_targets FOR SELECT
    USING (firmflow_plan_visible(plan_id) AND firmflow_host_visible(host_id));
DROP POLICY targets_write ON plan_targets;
CREATE POLICY targets_write ON plan_targets FOR ALL
    USING (firmflow_plan_writable(plan_id) AND firmflow_host_writable(host_id))
    WITH CHECK (firmflow_plan_writable(plan_id) AND firmflow_host_writable(host_id));

-- ----------------------------------------------------------------- events
-- An event naming a host and a plan needs both in reach; naming neither, it
-- is the admins'.
DROP POLICY events_read ON system_events;
CREATE POLICY events_read ON system_events FOR SELECT USING (
    firmflow_current_role() = 'admin'
    OR ((host_id IS NOT NULL OR plan_id IS NOT NULL)
        AND (host_id IS NULL OR firmflow_host_visible(host_id))
        AND (plan_id IS NULL OR firmflow_plan_visible(plan_id))));

-- Writing one: the same, and a non-admin's event names a host or a plan.
DROP POLICY events_insert ON system_events;
CREATE POLICY events_insert ON system_events FOR INSERT WITH CHECK (
    firmflow_current_role() = 'admin'
    OR (firmflow_current_role() = 'operator'
        AND (host_id IS NOT NULL OR plan_id IS NOT NULL)
        AND (host_id IS NULL OR firmflow_host_writable(host_id))
        AND (plan_id IS NULL OR firmflow_plan_writable(plan_id))));

-- ---------------------------------------------------------- auxiliary work
-- Jobs, tasks and the worker registry name no datacenter: they are the
-- daemon's (unscoped) and the admins'.
DROP POLICY jobs_read ON background_jobs;
DROP POLICY jobs_write ON background_jobs;
CREATE POLICY jobs_admin ON background_jobs FOR ALL
    USING (firmflow_current_role() = 'admin') WITH CHECK (firmflow_current_role() = 'admin');
DROP POLICY tasks_read ON task_queue;
DROP POLICY tasks_write ON task_queue;
CREATE POLICY tasks_admin ON task_queue FOR ALL
    USING (firmflow_current_role() = 'admin') WITH CHECK (firmflow_current_role() = 'admin');
DROP POLICY workers_read ON workers;
DROP POLICY workers_write ON workers;
CREATE POLICY workers_admin ON workers FOR ALL
    USING (firmflow_current_role() = 'admin') WITH CHECK (firmflow_current_role() = 'admin');

-- ------------------------------------------------------------ search path
-- Every function of the schema resolves names in the schema and then in
-- pg_temp, never pg_temp first: otherwise a tenant's temporary `users`
-- table (anyone may create temporary tables) or a function of the same name
-- in a schema of its own would stand in for ours inside a SECURITY DEFINER
-- helper or a policy's wrapper.
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure FROM pg_proc p
        WHERE p.pronamespace = current_schema()::regnamespace AND p.prokind = 'f'
    LOOP
        EXECUTE format('ALTER FUNCTION %s SET search_path = %I, pg_temp', f, current_schema());
    END LOOP;
END$$;
