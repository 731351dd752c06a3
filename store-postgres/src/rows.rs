//! Reading rows into the domain model. Anything unreadable (unknown state,
//! JSON that does not fit) is `Corrupt` naming the row, never a panic.

use crate::error::corrupt;
use chrono::{DateTime, Utc};
use firmflow_core::model::*;
use firmflow_core::store::Result;
use sqlx::postgres::PgRow;
use sqlx::{Decode, Postgres, Row, Type};
use uuid::Uuid;

/// Columns of `host_runs` in the order [`run`] reads them by name.
pub(crate) const RUN_COLS: &str = "id, plan_id, host_id, state, ctx, attempts, max_attempts, \
    resumes, priority, run_at, lease_owner, lease_epoch, lease_expires_at, cancel_requested_at, \
    last_error, started_at, completed_at, created_at, updated_at";

pub(crate) const HOST_COLS: &str = "id, fqdn, mgmt_ip, model, service_tag, mgmt_kind, \
    vcenter_url, cluster_moid, host_moid, tags, datacenter_id, created_at, updated_at";

pub(crate) const PLAN_COLS: &str = "id, name, policy, status, maintenance_window, \
    approval_required, approved_by, created_by, idempotency_key, status_reason, created_at";

pub(crate) const EVENT_COLS: &str = "id, seq, event_type, severity, message, details, user_id, \
    host_id, plan_id, run_id, created_at";

pub(crate) const JOB_COLS: &str = "id, job_type, status, payload, result, error_message, \
    attempts, max_attempts, scheduled_for, locked_by, locked_until, started_at, completed_at, \
    created_at";

/// A column, or `Corrupt` naming it.
pub(crate) fn get<'r, T>(row: &'r PgRow, col: &str) -> Result<T>
where
    T: Decode<'r, Postgres> + Type<Postgres>,
{
    row.try_get(col)
        .map_err(|e| corrupt(format!("column {col}: {e}")))
}

fn u32_col(row: &PgRow, col: &str) -> Result<u32> {
    let v: i32 = get(row, col)?;
    u32::try_from(v).map_err(|_| corrupt(format!("column {col}: negative value {v}")))
}

fn json<T: serde::de::DeserializeOwned>(v: serde_json::Value, what: &str) -> Result<T> {
    serde_json::from_value(v).map_err(|e| corrupt(format!("{what}: {e}")))
}

pub(crate) fn host(row: &PgRow) -> Result<Host> {
    let kind: Option<String> = get(row, "mgmt_kind")?;
    Ok(Host {
        id: HostId(get(row, "id")?),
        fqdn: get(row, "fqdn")?,
        mgmt_ip: get(row, "mgmt_ip")?,
        model: get(row, "model")?,
        service_tag: get(row, "service_tag")?,
        mgmt_kind: MgmtKind::from(kind.unwrap_or_default().as_str()),
        vcenter_url: get(row, "vcenter_url")?,
        cluster_moid: get(row, "cluster_moid")?,
        host_moid: get(row, "host_moid")?,
        tags: get::<Option<Vec<String>>>(row, "tags")?.unwrap_or_default(),
        datacenter_id: get::<Option<Uuid>>(row, "datacenter_id")?.map(DatacenterId),
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
    })
}

pub(crate) fn credential_kind_str(k: &CredentialKind) -> &'static str {
    match k {
        CredentialKind::Idrac => "idrac",
        CredentialKind::Vcenter => "vcenter",
        CredentialKind::Ipmi => "ipmi",
        CredentialKind::Ssh => "ssh",
    }
}

pub(crate) fn credential(row: &PgRow) -> Result<CredentialRecord> {
    let id: Uuid = get(row, "id")?;
    let kind: String = get(row, "kind")?;
    let kind = match kind.as_str() {
        "idrac" => CredentialKind::Idrac,
        "vcenter" => CredentialKind::Vcenter,
        "ipmi" => CredentialKind::Ipmi,
        "ssh" => CredentialKind::Ssh,
        other => return Err(corrupt(format!("credential {id}: unknown kind {other:?}"))),
    };
    Ok(CredentialRecord {
        id: CredentialId(id),
        host_id: get::<Option<Uuid>>(row, "host_id")?.map(HostId),
        kind,
        vault_path: get(row, "vault_path")?,
        created_at: get(row, "created_at")?,
    })
}

pub(crate) fn plan(row: &PgRow) -> Result<Plan> {
    let id: Uuid = get(row, "id")?;
    let status: String = get(row, "status")?;
    let window: Option<serde_json::Value> = get(row, "maintenance_window")?;
    Ok(Plan {
        id: PlanId(id),
        name: get(row, "name")?,
        policy: json(get(row, "policy")?, &format!("plan {id} policy"))?,
        status: PlanStatus::parse(&status)
            .ok_or_else(|| corrupt(format!("plan {id}: unknown status {status:?}")))?,
        maintenance_window: match window {
            None | Some(serde_json::Value::Null) => None,
            Some(v) => Some(json(v, &format!("plan {id} maintenance_window"))?),
        },
        approval_required: get(row, "approval_required")?,
        approved_by: get::<Option<Uuid>>(row, "approved_by")?.map(UserId),
        created_by: get::<Option<Uuid>>(row, "created_by")?.map(UserId),
        idempotency_key: get(row, "idempotency_key")?,
        status_reason: get(row, "status_reason")?,
        created_at: get(row, "created_at")?,
    })
}

pub(crate) fn target(row: &PgRow) -> Result<PlanTarget> {
    Ok(PlanTarget {
        host_id: HostId(get(row, "host_id")?),
        priority: get(row, "priority")?,
        conditions: get(row, "conditions")?,
    })
}

pub(crate) fn artifact(row: &PgRow) -> Result<Artifact> {
    Ok(Artifact {
        id: ArtifactId(get(row, "id")?),
        component: get(row, "component")?,
        image_uri: get(row, "image_uri")?,
        version: get(row, "version")?,
        checksum: get(row, "checksum")?,
        size_bytes: get(row, "size_bytes")?,
        metadata: get(row, "metadata")?,
    })
}

pub(crate) fn run_state(s: &str, id: Uuid) -> Result<RunState> {
    RunState::parse(s).ok_or_else(|| corrupt(format!("run {id}: unknown state {s:?}")))
}

pub(crate) fn run(row: &PgRow) -> Result<HostRun> {
    let id: Uuid = get(row, "id")?;
    let state: String = get(row, "state")?;
    let epoch: i64 = get(row, "lease_epoch")?;
    let cancel: Option<DateTime<Utc>> = get(row, "cancel_requested_at")?;
    Ok(HostRun {
        id: RunId(id),
        plan_id: PlanId(get(row, "plan_id")?),
        host_id: HostId(get(row, "host_id")?),
        state: run_state(&state, id)?,
        ctx: json(get(row, "ctx")?, &format!("run {id} ctx"))?,
        attempts: u32_col(row, "attempts")?,
        max_attempts: u32_col(row, "max_attempts")?,
        resumes: u32_col(row, "resumes")?,
        priority: get(row, "priority")?,
        run_at: get(row, "run_at")?,
        lease_owner: get::<Option<String>>(row, "lease_owner")?.map(WorkerId),
        lease_epoch: u64::try_from(epoch)
            .map_err(|_| corrupt(format!("run {id}: negative epoch")))?,
        lease_expires_at: get(row, "lease_expires_at")?,
        cancel_requested: cancel.is_some(),
        last_error: get(row, "last_error")?,
        started_at: get(row, "started_at")?,
        completed_at: get(row, "completed_at")?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
    })
}

pub(crate) fn event(row: &PgRow) -> Result<SystemEvent> {
    let severity: String = get(row, "severity")?;
    let id: Uuid = get(row, "id")?;
    let event_type: String = get(row, "event_type")?;
    Ok(SystemEvent {
        id: EventId(id),
        seq: get(row, "seq")?,
        event: NewEvent {
            event_type: EventType::from(event_type.as_str()),
            severity: match severity.as_str() {
                "info" => Severity::Info,
                "warning" => Severity::Warning,
                "error" => Severity::Error,
                "critical" => Severity::Critical,
                other => return Err(corrupt(format!("event {id}: unknown severity {other:?}"))),
            },
            message: get(row, "message")?,
            details: get(row, "details")?,
            user_id: get::<Option<Uuid>>(row, "user_id")?.map(UserId),
            host_id: get::<Option<Uuid>>(row, "host_id")?.map(HostId),
            plan_id: get::<Option<Uuid>>(row, "plan_id")?.map(PlanId),
            run_id: get::<Option<Uuid>>(row, "run_id")?.map(RunId),
        },
        created_at: get(row, "created_at")?,
    })
}

pub(crate) fn job(row: &PgRow) -> Result<BackgroundJob> {
    let id: Uuid = get(row, "id")?;
    let status: String = get(row, "status")?;
    Ok(BackgroundJob {
        id: JobId(id),
        job_type: get(row, "job_type")?,
        status: JobStatus::parse(&status)
            .ok_or_else(|| corrupt(format!("job {id}: unknown status {status:?}")))?,
        payload: get(row, "payload")?,
        result: get(row, "result")?,
        error_message: get(row, "error_message")?,
        attempts: u32_col(row, "attempts")?,
        max_attempts: u32_col(row, "max_attempts")?,
        scheduled_for: get(row, "scheduled_for")?,
        locked_by: get::<Option<String>>(row, "locked_by")?.map(WorkerId),
        locked_until: get(row, "locked_until")?,
        started_at: get(row, "started_at")?,
        completed_at: get(row, "completed_at")?,
        created_at: get(row, "created_at")?,
    })
}

pub(crate) fn config_entry(row: &PgRow) -> Result<ConfigEntry> {
    Ok(ConfigEntry {
        key: get(row, "key")?,
        value: get(row, "value")?,
        description: get(row, "description")?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
    })
}

/// A `u32` count as the `i32` PostgreSQL stores.
pub(crate) fn i32_of(v: u32, what: &str) -> Result<i32> {
    i32::try_from(v).map_err(|_| {
        firmflow_core::store::Error::Conflict(format!("{what} {v} is larger than the store allows"))
    })
}

/// Seconds of a duration, as the float `interval` arithmetic takes.
pub(crate) fn secs(d: std::time::Duration) -> f64 {
    d.as_secs_f64()
}

pub(crate) const CREDENTIAL_COLS: &str = "id, host_id, kind, vault_path, created_at";
