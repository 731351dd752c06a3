-- firmflow schema: the seed's tables (hosts, credentials, update_plans,
-- plan_targets, artifacts, host_runs, system_config, system_events,
-- background_jobs, task_queue, redfish_sessions) plus the lease and fencing
-- columns of the engine design, a local `users` table in place of Supabase's
-- `auth.users`, and `datacenters` / `user_datacenter_access` for row-level
-- security.
--
-- Every object is created unqualified: the store sets `search_path` to its
-- configured schema on each connection, so one database can hold several
-- firmflow installations (and the tests use one schema per case).

-- ---------------------------------------------------------------- identity
CREATE TABLE datacenters (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Replaces the seed's auth.users. `role` is the application role that the
-- row-level security policies read.
CREATE TABLE users (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL UNIQUE,
    role        text NOT NULL DEFAULT 'viewer',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_role_known CHECK (role IN ('admin', 'operator', 'viewer'))
);

CREATE TABLE user_datacenter_access (
    user_id        uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    datacenter_id  uuid NOT NULL REFERENCES datacenters (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, datacenter_id)
);
CREATE INDEX idx_uda_datacenter ON user_datacenter_access (datacenter_id);

-- ------------------------------------------------------------------- hosts
-- datacenter_id has no foreign key: hosts are registered through the store
-- port, which knows no datacenter registry; RLS treats an unknown datacenter
-- like any other one nobody was granted.
CREATE TABLE hosts (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    fqdn           text NOT NULL,
    mgmt_ip        varchar(45) NOT NULL,
    model          text,
    service_tag    text,
    mgmt_kind      text,
    vcenter_url    text,
    cluster_moid   text,
    host_moid      text,
    tags           text[] NOT NULL DEFAULT '{}',
    datacenter_id  uuid,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_hosts_cluster ON hosts (cluster_moid);
CREATE INDEX idx_hosts_mgmt_ip ON hosts (mgmt_ip);
CREATE INDEX idx_hosts_service_tag ON hosts (service_tag);
CREATE INDEX idx_hosts_fqdn ON hosts (fqdn);
CREATE INDEX idx_hosts_datacenter ON hosts (datacenter_id);

-- ------------------------------------------------------------- credentials
-- The seed keeps a vault path; the local variant keeps the secret itself.
-- Here both exist: `vault_path` is the reference a CredentialProvider
-- resolves, and credentials stored in the database carry `username_enc` /
-- `secret_enc`: AES-256-GCM, nonce || ciphertext, never plain text.
CREATE TABLE credentials (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    host_id       uuid REFERENCES hosts (id) ON DELETE CASCADE,
    kind          text NOT NULL,
    vault_path    text NOT NULL,
    username_enc  bytea,
    secret_enc    bytea,
    key_id        text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT credentials_sealed_pair CHECK ((username_enc IS NULL) = (secret_enc IS NULL))
);
CREATE INDEX idx_credentials_host ON credentials (host_id);
CREATE INDEX idx_credentials_kind ON credentials (kind);

-- ------------------------------------------------------------------- plans
-- created_by / approved_by carry no foreign key: users may be managed
-- outside this database (the seed's were Supabase auth users).
CREATE TABLE update_plans (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name                text NOT NULL,
    policy              jsonb NOT NULL DEFAULT '{}',
    created_at          timestamptz NOT NULL DEFAULT now(),
    status              text NOT NULL DEFAULT 'draft',
    created_by          uuid,
    maintenance_window  jsonb,
    approval_required   boolean NOT NULL DEFAULT false,
    approved_by         uuid,
    status_reason       text,
    idempotency_key     text UNIQUE,
    -- The one datacenter all targets are in, else NULL (admin-only plan).
    datacenter_id       uuid,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT plan_status_known CHECK (status IN
        ('draft', 'approved', 'running', 'paused', 'completed', 'failed', 'cancelled'))
);
CREATE INDEX idx_plans_status ON update_plans (status);
CREATE INDEX idx_plans_created_by ON update_plans (created_by);
CREATE INDEX idx_plans_created_at ON update_plans (created_at DESC, id DESC);

CREATE TABLE plan_targets (
    plan_id     uuid NOT NULL REFERENCES update_plans (id) ON DELETE CASCADE,
    host_id     uuid NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    priority    integer NOT NULL DEFAULT 0,
    conditions  jsonb NOT NULL DEFAULT '{}',
    -- Order given by the plan (ties of priority keep it).
    position    integer NOT NULL DEFAULT 0,
    PRIMARY KEY (plan_id, host_id)
);
CREATE INDEX idx_plan_targets_plan ON plan_targets (plan_id);
CREATE INDEX idx_plan_targets_host ON plan_targets (host_id);
CREATE INDEX idx_plan_targets_priority ON plan_targets (plan_id, priority);

CREATE TABLE artifacts (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    plan_id     uuid REFERENCES update_plans (id) ON DELETE CASCADE,
    component   text NOT NULL,
    image_uri   text NOT NULL,
    version     text,
    checksum    text,
    size_bytes  bigint,
    metadata    jsonb NOT NULL DEFAULT '{}',
    -- Order given by the plan (install order matters).
    position    integer NOT NULL DEFAULT 0
);
CREATE INDEX idx_artifacts_plan ON artifacts (plan_id);
CREATE INDEX idx_artifacts_component ON artifacts (component);

-- --------------------------------------------------------------- host runs
CREATE TABLE host_runs (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    plan_id              uuid NOT NULL REFERENCES update_plans (id) ON DELETE CASCADE,
    host_id              uuid NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    state                text NOT NULL DEFAULT 'pending',
    ctx                  jsonb NOT NULL DEFAULT '{}',
    attempts             integer NOT NULL DEFAULT 0,
    max_attempts         integer NOT NULL DEFAULT 3,
    resumes              integer NOT NULL DEFAULT 0,
    priority             integer NOT NULL DEFAULT 0,
    run_at               timestamptz NOT NULL DEFAULT now(),
    lease_owner          text,
    lease_epoch          bigint NOT NULL DEFAULT 0,
    lease_expires_at     timestamptz,
    cancel_requested_at  timestamptz,
    last_error           text,
    started_at           timestamptz,
    completed_at         timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT state_known CHECK (state IN
        ('pending', 'running', 'retrying', 'completed', 'failed', 'cancelled')),
    CONSTRAINT lease_iff_running CHECK
        ((state = 'running') = (lease_owner IS NOT NULL AND lease_expires_at IS NOT NULL)),
    CONSTRAINT completed_iff_final CHECK
        ((state IN ('completed', 'failed', 'cancelled')) = (completed_at IS NOT NULL)),
    CONSTRAINT counters_non_negative CHECK (attempts >= 0 AND resumes >= 0 AND lease_epoch >= 0),
    CONSTRAINT one_run_per_plan_host UNIQUE (plan_id, host_id)
) WITH (fillfactor = 80);   -- room for HOT heartbeat updates

-- The seed's indexes.
CREATE INDEX idx_host_runs_plan_host ON host_runs (plan_id, host_id);
CREATE INDEX idx_host_runs_state ON host_runs (state);
CREATE INDEX idx_host_runs_updated ON host_runs (updated_at);
-- Invariant: at most one running run per host, across all plans.
CREATE UNIQUE INDEX host_runs_one_running_per_host ON host_runs (host_id) WHERE state = 'running';
-- Claim path.
CREATE INDEX host_runs_runnable ON host_runs (plan_id, priority DESC, run_at, id)
    WHERE state IN ('pending', 'retrying');
-- In-flight and expired-lease scans. lease_expires_at is deliberately not
-- indexed so that a heartbeat changes no indexed column (HOT update).
CREATE INDEX host_runs_running ON host_runs (plan_id) WHERE state = 'running';
CREATE INDEX host_runs_owner ON host_runs (lease_owner) WHERE lease_owner IS NOT NULL;

-- Informational registry of executor processes.
CREATE TABLE workers (
    id            text PRIMARY KEY,
    started_at    timestamptz NOT NULL DEFAULT now(),
    heartbeat_at  timestamptz NOT NULL DEFAULT now(),
    meta          jsonb NOT NULL DEFAULT '{}'
);

-- ---------------------------------------------------------- system config
CREATE TABLE system_config (
    key          text PRIMARY KEY,
    value        jsonb NOT NULL,
    description  text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- ----------------------------------------------------------- system events
-- Partitioned by month (created_at); the primary key must carry the
-- partition key. `seq` orders events store-wide. No foreign keys: the audit
-- trail outlives the hosts and plans it mentions.
CREATE SEQUENCE system_events_seq AS bigint;
CREATE TABLE system_events (
    id          uuid NOT NULL DEFAULT gen_random_uuid(),
    seq         bigint NOT NULL DEFAULT nextval('system_events_seq'),
    event_type  text NOT NULL,
    severity    text NOT NULL DEFAULT 'info',
    message     text NOT NULL,
    details     jsonb NOT NULL DEFAULT '{}',
    user_id     uuid,
    host_id     uuid,
    plan_id     uuid,
    run_id      uuid,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
ALTER SEQUENCE system_events_seq OWNED BY system_events.seq;
-- Catches rows of months that have no partition yet; maintenance moves them
-- into their month's partition when it creates it.
CREATE TABLE system_events_default PARTITION OF system_events DEFAULT;
CREATE INDEX idx_events_type ON system_events (event_type);
CREATE INDEX idx_events_severity ON system_events (severity);
CREATE INDEX idx_events_created ON system_events (created_at);
CREATE INDEX idx_events_user ON system_events (user_id);
CREATE INDEX idx_events_seq ON system_events (seq);
CREATE INDEX idx_events_plan ON system_events (plan_id, seq);
CREATE INDEX idx_events_run ON system_events (run_id, seq);
CREATE INDEX idx_events_host ON system_events (host_id, seq);

-- --------------------------------------------------------- background jobs
CREATE TABLE background_jobs (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    job_type       text NOT NULL,
    status         text NOT NULL DEFAULT 'queued',
    payload        jsonb NOT NULL DEFAULT '{}',
    result         jsonb,
    error_message  text,
    attempts       integer NOT NULL DEFAULT 0,
    max_attempts   integer NOT NULL DEFAULT 3,
    scheduled_for  timestamptz NOT NULL DEFAULT now(),
    locked_by      text,
    locked_until   timestamptz,
    started_at     timestamptz,
    completed_at   timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT job_status_known CHECK (status IN ('queued', 'running', 'completed', 'failed')),
    CONSTRAINT job_lock_iff_running CHECK ((status = 'running') = (locked_by IS NOT NULL))
);
CREATE INDEX idx_jobs_status ON background_jobs (status);
CREATE INDEX idx_jobs_scheduled ON background_jobs (scheduled_for);
CREATE INDEX idx_jobs_type ON background_jobs (job_type);
CREATE INDEX background_jobs_due ON background_jobs (scheduled_for, id) WHERE status = 'queued';

-- The seed's local task queue, kept for schema compatibility.
CREATE TABLE task_queue (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    task_type      text NOT NULL,
    status         text NOT NULL DEFAULT 'pending',
    payload        jsonb NOT NULL,
    priority       integer NOT NULL DEFAULT 0,
    scheduled_for  timestamptz NOT NULL DEFAULT now(),
    attempts       integer NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL DEFAULT now()
);

-- -------------------------------------------------------- redfish sessions
-- session_token holds the AES-256-GCM sealed token, never the token itself.
CREATE TABLE redfish_sessions (
    host_id        uuid PRIMARY KEY REFERENCES hosts (id) ON DELETE CASCADE,
    session_token  bytea NOT NULL,
    session_uri    text NOT NULL,
    expires_at     timestamptz NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);
