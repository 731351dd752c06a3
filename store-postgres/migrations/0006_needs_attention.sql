-- A run that stopped on ambiguous evidence (the BMC cannot say whether an
-- update of ours reached it), or whose cleanup kept failing, parks in
-- 'needs_attention' for an operator: a final state, like failed.
ALTER TABLE host_runs DROP CONSTRAINT state_known;
ALTER TABLE host_runs ADD CONSTRAINT state_known CHECK (state IN
    ('pending', 'running', 'retrying', 'completed', 'failed', 'cancelled', 'needs_attention'));
ALTER TABLE host_runs DROP CONSTRAINT completed_iff_final;
ALTER TABLE host_runs ADD CONSTRAINT completed_iff_final CHECK
    ((state IN ('completed', 'failed', 'cancelled', 'needs_attention')) = (completed_at IS NOT NULL));

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
        completed_at     = CASE WHEN p_to IN ('completed', 'failed', 'cancelled', 'needs_attention')
                                THEN now() ELSE NULL END
    WHERE id = p_id AND state = p_from
    RETURNING plan_id INTO v_plan;
    IF v_plan IS NULL THEN
        RETURN false;
    END IF;
    PERFORM pg_notify(current_schema() || '.work', json_build_object('plan', v_plan)::text);
    RETURN true;
END$$;
