-- Work notifications move from a per-row trigger to the store, which sends
-- them after commit and debounced per plan. NOTIFY serialises every
-- notifying commit in the cluster behind one lock held through the WAL
-- flush, so one notification per finished run capped throughput at about
-- one commit per disk flush. Cancel requests (rare) keep their trigger.

DROP TRIGGER host_runs_notify ON host_runs;

CREATE OR REPLACE FUNCTION firmflow_notify_run() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(TG_TABLE_SCHEMA || '.control',
        json_build_object('run', NEW.id, 'plan', NEW.plan_id, 'action', 'cancel')::text);
    RETURN NULL;
END$$;
CREATE TRIGGER host_runs_notify_cancel AFTER UPDATE OF cancel_requested_at ON host_runs
    FOR EACH ROW
    WHEN (NEW.cancel_requested_at IS NOT NULL AND OLD.cancel_requested_at IS NULL)
    EXECUTE FUNCTION firmflow_notify_run();

-- The seed's compare-and-set is used by hand and rarely: it wakes workers itself.
CREATE OR REPLACE FUNCTION set_host_run_state(p_id uuid, p_from text, p_to text, p_ctx jsonb)
RETURNS boolean LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    v_plan uuid;
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
    WHERE id = p_id AND state = p_from
    RETURNING plan_id INTO v_plan;
    IF v_plan IS NULL THEN
        RETURN false;
    END IF;
    PERFORM pg_notify(current_schema() || '.work', json_build_object('plan', v_plan)::text);
    RETURN true;
END$$;
