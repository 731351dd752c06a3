-- Row-level security (the seed's policy, made local).
--
-- A store handle scoped to a user runs each transaction as the NOLOGIN role
-- `firmflow_scoped` with `firmflow.user_id` set for that transaction only
-- (set_config(..., true)). The user's application role (users.role) decides:
--   admin    sees and changes everything;
--   operator sees and changes hosts, plans and runs of the datacenters granted
--            in user_datacenter_access, and nothing else;
--   viewer   sees the same rows as an operator would, and changes nothing.
-- A plan belongs to the datacenter all its targets are in; a plan spanning
-- datacenters, a host without one and a fleet-wide credential are admin-only.
-- The unscoped store (the daemon's own connection, the tables' owner) is not
-- subject to these policies.

DO $$
BEGIN
    CREATE ROLE firmflow_scoped NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL; -- another installation in this cluster created it
END$$;
GRANT firmflow_scoped TO CURRENT_USER;
DO $$
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO firmflow_scoped', current_schema());
END$$;
GRANT SELECT, INSERT, UPDATE, DELETE ON
    datacenters, users, user_datacenter_access, hosts, credentials, update_plans,
    plan_targets, artifacts, host_runs, workers, system_config, system_events,
    background_jobs, task_queue, redfish_sessions
TO firmflow_scoped;
GRANT USAGE ON SEQUENCE system_events_seq TO firmflow_scoped;

-- The caller's identity, from the transaction-local setting.
CREATE FUNCTION firmflow_current_user() RETURNS uuid LANGUAGE sql STABLE AS $$
    SELECT nullif(current_setting('firmflow.user_id', true), '')::uuid
$$;

-- Helpers run as the owner (SECURITY DEFINER) so that a policy reading
-- users / hosts / plans is not itself filtered by their policies.
CREATE FUNCTION firmflow_current_role() RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT AS $$
    SELECT role FROM users WHERE id = firmflow_current_user()
$$;

CREATE FUNCTION firmflow_dc_visible(dc uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT AS $$
    SELECT coalesce(firmflow_current_role() = 'admin', false)
        OR (dc IS NOT NULL AND firmflow_current_role() IS NOT NULL AND EXISTS (
                SELECT 1 FROM user_datacenter_access a
                WHERE a.user_id = firmflow_current_user() AND a.datacenter_id = dc))
$$;

CREATE FUNCTION firmflow_dc_writable(dc uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT AS $$
    SELECT coalesce(firmflow_current_role() = 'admin', false)
        OR (dc IS NOT NULL AND firmflow_current_role() = 'operator' AND EXISTS (
                SELECT 1 FROM user_datacenter_access a
                WHERE a.user_id = firmflow_current_user() AND a.datacenter_id = dc))
$$;

CREATE FUNCTION firmflow_host_visible(h uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT AS $$
    SELECT firmflow_dc_visible((SELECT datacenter_id FROM hosts WHERE id = h))
$$;
CREATE FUNCTION firmflow_host_writable(h uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT AS $$
    SELECT firmflow_dc_writable((SELECT datacenter_id FROM hosts WHERE id = h))
$$;
CREATE FUNCTION firmflow_plan_visible(p uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT AS $$
    SELECT firmflow_dc_visible((SELECT datacenter_id FROM update_plans WHERE id = p))
$$;
CREATE FUNCTION firmflow_plan_writable(p uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT AS $$
    SELECT firmflow_dc_writable((SELECT datacenter_id FROM update_plans WHERE id = p))
$$;

ALTER TABLE datacenters ENABLE ROW LEVEL SECURITY;
ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE user_datacenter_access ENABLE ROW LEVEL SECURITY;
ALTER TABLE hosts ENABLE ROW LEVEL SECURITY;
ALTER TABLE credentials ENABLE ROW LEVEL SECURITY;
ALTER TABLE update_plans ENABLE ROW LEVEL SECURITY;
ALTER TABLE plan_targets ENABLE ROW LEVEL SECURITY;
ALTER TABLE artifacts ENABLE ROW LEVEL SECURITY;
ALTER TABLE host_runs ENABLE ROW LEVEL SECURITY;
ALTER TABLE workers ENABLE ROW LEVEL SECURITY;
ALTER TABLE system_config ENABLE ROW LEVEL SECURITY;
ALTER TABLE system_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE background_jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE task_queue ENABLE ROW LEVEL SECURITY;
ALTER TABLE redfish_sessions ENABLE ROW LEVEL SECURITY;

-- Directory tables: everyone known reads, admins write.
CREATE POLICY directory_read ON datacenters FOR SELECT USING (firmflow_current_role() IS NOT NULL);
CREATE POLICY directory_admin ON datacenters FOR ALL
    USING (firmflow_current_role() = 'admin') WITH CHECK (firmflow_current_role() = 'admin');
CREATE POLICY directory_read ON users FOR SELECT USING (firmflow_current_role() IS NOT NULL);
CREATE POLICY directory_admin ON users FOR ALL
    USING (firmflow_current_role() = 'admin') WITH CHECK (firmflow_current_role() = 'admin');
CREATE POLICY directory_read ON user_datacenter_access FOR SELECT
    USING (firmflow_current_role() = 'admin' OR user_id = firmflow_current_user());
CREATE POLICY directory_admin ON user_datacenter_access FOR ALL
    USING (firmflow_current_role() = 'admin') WITH CHECK (firmflow_current_role() = 'admin');

-- Hosts: by datacenter.
CREATE POLICY hosts_read ON hosts FOR SELECT USING (firmflow_dc_visible(datacenter_id));
CREATE POLICY hosts_insert ON hosts FOR INSERT WITH CHECK (firmflow_dc_writable(datacenter_id));
CREATE POLICY hosts_update ON hosts FOR UPDATE
    USING (firmflow_dc_writable(datacenter_id)) WITH CHECK (firmflow_dc_writable(datacenter_id));
CREATE POLICY hosts_delete ON hosts FOR DELETE USING (firmflow_dc_writable(datacenter_id));

-- Credentials, runs and sessions: through their host.
CREATE POLICY credentials_read ON credentials FOR SELECT USING (firmflow_host_visible(host_id));
CREATE POLICY credentials_write ON credentials FOR ALL
    USING (firmflow_host_writable(host_id)) WITH CHECK (firmflow_host_writable(host_id));
CREATE POLICY host_runs_read ON host_runs FOR SELECT USING (firmflow_host_visible(host_id));
CREATE POLICY host_runs_write ON host_runs FOR ALL
    USING (firmflow_host_writable(host_id)) WITH CHECK (firmflow_host_writable(host_id));
CREATE POLICY sessions_read ON redfish_sessions FOR SELECT USING (firmflow_host_visible(host_id));
CREATE POLICY sessions_write ON redfish_sessions FOR ALL
    USING (firmflow_host_writable(host_id)) WITH CHECK (firmflow_host_writable(host_id));

-- Plans by their datacenter; targets and artifacts through their plan.
CREATE POLICY plans_read ON update_plans FOR SELECT USING (firmflow_dc_visible(datacenter_id));
CREATE POLICY plans_write ON update_plans FOR ALL
    USING (firmflow_dc_writable(datacenter_id)) WITH CHECK (firmflow_dc_writable(datacenter_id));
CREATE POLICY targets_read ON plan_targets FOR SELECT USING (firmflow_plan_visible(plan_id));
CREATE POLICY targets_write ON plan_targets FOR ALL
    USING (firmflow_plan_writable(plan_id)) WITH CHECK (firmflow_plan_writable(plan_id));
CREATE POLICY artifacts_read ON artifacts FOR SELECT USING (firmflow_plan_visible(plan_id));
CREATE POLICY artifacts_write ON artifacts FOR ALL
    USING (firmflow_plan_writable(plan_id)) WITH CHECK (firmflow_plan_writable(plan_id));

-- Events: through the host, else the plan; others are admin-only.
CREATE POLICY events_read ON system_events FOR SELECT USING (
    firmflow_current_role() = 'admin'
    OR (host_id IS NOT NULL AND firmflow_host_visible(host_id))
    OR (host_id IS NULL AND plan_id IS NOT NULL AND firmflow_plan_visible(plan_id)));
CREATE POLICY events_insert ON system_events FOR INSERT WITH CHECK (
    firmflow_current_role() IN ('admin', 'operator')
    AND (host_id IS NULL OR firmflow_host_writable(host_id))
    AND (plan_id IS NULL OR firmflow_plan_writable(plan_id)));

-- Configuration: everyone known reads, admins write.
CREATE POLICY config_read ON system_config FOR SELECT USING (firmflow_current_role() IS NOT NULL);
CREATE POLICY config_admin ON system_config FOR ALL
    USING (firmflow_current_role() = 'admin') WITH CHECK (firmflow_current_role() = 'admin');

-- Auxiliary work: everyone known reads, operators and admins write.
CREATE POLICY jobs_read ON background_jobs FOR SELECT USING (firmflow_current_role() IS NOT NULL);
CREATE POLICY jobs_write ON background_jobs FOR ALL
    USING (firmflow_current_role() IN ('admin', 'operator'))
    WITH CHECK (firmflow_current_role() IN ('admin', 'operator'));
CREATE POLICY tasks_read ON task_queue FOR SELECT USING (firmflow_current_role() IS NOT NULL);
CREATE POLICY tasks_write ON task_queue FOR ALL
    USING (firmflow_current_role() IN ('admin', 'operator'))
    WITH CHECK (firmflow_current_role() IN ('admin', 'operator'));
CREATE POLICY workers_read ON workers FOR SELECT USING (firmflow_current_role() IS NOT NULL);
CREATE POLICY workers_write ON workers FOR ALL
    USING (firmflow_current_role() IN ('admin', 'operator'))
    WITH CHECK (firmflow_current_role() IN ('admin', 'operator'));
