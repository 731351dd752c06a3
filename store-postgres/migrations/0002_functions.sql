-- Functions and triggers: the seed's set_host_run_state and updated_at
-- triggers, notifications, and the monthly partitions of system_events.
-- Functions capture the migration's search_path (SET search_path FROM
-- CURRENT) so they work on this installation's schema whatever the caller's
-- search_path is.

-- The seed's state-machine compare-and-set, kept for operators and scripts.
-- firmflow itself writes runs through fenced statements carrying a lease;
-- this function is the unfenced override (e.g. failed -> pending to retry a
-- host by hand). Entering `running` needs a lease, so only a claim does it.
CREATE FUNCTION set_host_run_state(p_id uuid, p_from text, p_to text, p_ctx jsonb)
RETURNS boolean LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF p_to = 'running' THEN
        RAISE EXCEPTION 'host run % can enter running only through a claim (it needs a lease)', p_id
            USING ERRCODE = 'check_violation';
    END IF;
    UPDATE host_runs
    SET state            = p_to,
        ctx              = COALESCE(p_ctx, ctx),
        updated_at       = now(),
        lease_owner      = NULL,
        lease_expires_at = NULL,
        completed_at     = CASE WHEN p_to IN ('completed', 'failed', 'cancelled')
                                THEN now() ELSE NULL END
    WHERE id = p_id AND state = p_from;
    RETURN FOUND;
END$$;

-- The seed's timestamp trigger, with one change: a statement that sets
-- updated_at itself (the store passes the injected clock's time) keeps it.
CREATE FUNCTION update_updated_at_column() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at THEN
        NEW.updated_at = now();
    END IF;
    RETURN NEW;
END$$;

CREATE TRIGGER update_hosts_updated_at BEFORE UPDATE ON hosts
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();
CREATE TRIGGER update_users_updated_at BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();
CREATE TRIGGER update_plans_updated_at BEFORE UPDATE ON update_plans
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();
CREATE TRIGGER update_system_config_updated_at BEFORE UPDATE ON system_config
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();
-- Heartbeats only move lease_expires_at: they must not touch updated_at
-- (which is indexed, and would make every heartbeat a non-HOT update).
CREATE TRIGGER update_host_runs_updated_at BEFORE UPDATE ON host_runs
    FOR EACH ROW
    WHEN (OLD.state IS DISTINCT FROM NEW.state OR OLD.ctx IS DISTINCT FROM NEW.ctx)
    EXECUTE FUNCTION update_updated_at_column();

-- --------------------------------------------------------------- NOTIFY
-- Channels carry the schema name so two installations in one database do
-- not wake each other. Payloads are ids only. PostgreSQL folds identical
-- notifications of one transaction into one, so a statement moving many
-- runs of a plan sends one notification for it. Notifications are hints;
-- polling stays correct without them.
CREATE FUNCTION firmflow_notify_run() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.state IS DISTINCT FROM OLD.state AND NEW.state <> 'running' THEN
        -- A run became claimable or freed a slot of its plan.
        PERFORM pg_notify(TG_TABLE_SCHEMA || '.work', json_build_object('plan', NEW.plan_id)::text);
    END IF;
    IF NEW.cancel_requested_at IS NOT NULL AND OLD.cancel_requested_at IS NULL THEN
        PERFORM pg_notify(TG_TABLE_SCHEMA || '.control',
            json_build_object('run', NEW.id, 'plan', NEW.plan_id, 'action', 'cancel')::text);
    END IF;
    RETURN NULL;
END$$;
CREATE TRIGGER host_runs_notify AFTER UPDATE OF state, cancel_requested_at ON host_runs
    FOR EACH ROW
    WHEN ((OLD.state IS DISTINCT FROM NEW.state AND NEW.state <> 'running')
          OR (NEW.cancel_requested_at IS NOT NULL AND OLD.cancel_requested_at IS NULL))
    EXECUTE FUNCTION firmflow_notify_run();

CREATE FUNCTION firmflow_notify_plan() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'running' THEN
        PERFORM pg_notify(TG_TABLE_SCHEMA || '.work', json_build_object('plan', NEW.id)::text);
    ELSE
        PERFORM pg_notify(TG_TABLE_SCHEMA || '.control',
            json_build_object('plan', NEW.id, 'action', NEW.status)::text);
    END IF;
    RETURN NULL;
END$$;
CREATE TRIGGER update_plans_notify AFTER UPDATE OF status ON update_plans
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION firmflow_notify_plan();

-- The seed's sync hook, on this installation's channel.
CREATE FUNCTION sync_to_local_api(table_name text, record_id uuid)
RETURNS void LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    PERFORM pg_notify(current_schema() || '.sync_update', json_build_object(
        'table', table_name,
        'id', record_id,
        'timestamp', extract(epoch from now())
    )::text);
END$$;

-- ------------------------------------------------ system_events partitions
-- One partition per UTC month, named system_events_pYYYYMM. Creating one
-- first moves that month's rows out of the default partition (attaching a
-- partition fails while the default one holds rows of its range).
CREATE FUNCTION firmflow_ensure_event_partition(p_at timestamptz)
RETURNS boolean LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    lo_local timestamp := date_trunc('month', p_at AT TIME ZONE 'UTC');
    lo timestamptz := lo_local AT TIME ZONE 'UTC';
    hi timestamptz := (lo_local + interval '1 month') AT TIME ZONE 'UTC';
    part text := 'system_events_p' || to_char(lo_local, 'YYYYMM');
    sch text := current_schema();
BEGIN
    IF to_regclass(format('%I.%I', sch, part)) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format('CREATE TABLE %I.%I (LIKE %I.system_events INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
                   sch, part, sch);
    EXECUTE format('WITH moved AS (DELETE FROM %I.system_events_default
                                   WHERE created_at >= $1 AND created_at < $2 RETURNING *)
                    INSERT INTO %I.%I SELECT * FROM moved', sch, sch, part)
        USING lo, hi;
    EXECUTE format('ALTER TABLE %I.system_events ATTACH PARTITION %I.%I FOR VALUES FROM (%L) TO (%L)',
                   sch, sch, part, lo, hi);
    RETURN true;
END$$;

-- Retention: drops every monthly partition that ends at or before p_before,
-- and deletes older rows from the default partition. Returns the number of
-- partitions dropped.
CREATE FUNCTION firmflow_drop_event_partitions(p_before timestamptz)
RETURNS integer LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    r record;
    n integer := 0;
    sch text := current_schema();
BEGIN
    FOR r IN
        SELECT c.relname
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = format('%I.system_events', sch)::regclass
          AND c.relname ~ '^system_events_p[0-9]{6}$'
    LOOP
        IF ((to_date(substr(r.relname, 16), 'YYYYMM')::timestamp + interval '1 month')
                AT TIME ZONE 'UTC') <= p_before THEN
            EXECUTE format('DROP TABLE %I.%I', sch, r.relname);
            n := n + 1;
        END IF;
    END LOOP;
    DELETE FROM system_events_default WHERE created_at < p_before;
    RETURN n;
END$$;

SELECT firmflow_ensure_event_partition(now() + make_interval(months => m))
FROM generate_series(-1, 2) AS m;
