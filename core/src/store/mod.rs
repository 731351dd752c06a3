//! Persistence ports. `Store` is their union; `firmflow-store-memory` and
//! `firmflow-store-postgres` implement it, and both pass the same
//! [`conformance`] suite (feature `testkit`).
//!
//! The one way a run changes is a fenced compare-and-set carrying its
//! [`Lease`]: a write from a worker that lost the lease changes nothing and
//! says so ([`WriteOutcome::LeaseLost`]). Each transition writes its audit
//! event in the same atomic step.

#[cfg(any(test, feature = "testkit"))]
pub mod conformance;

use crate::model::*;
use crate::policy::{AdmissionPolicy, RunCounts};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Store errors. `Unavailable` is transient (connection lost, pool
/// exhausted); callers retry it. Everything else is a fact about the data.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No such entity.
    #[error("{what} not found")]
    NotFound {
        /// What was looked up (`plan 0195…`).
        what: String,
    },
    /// A uniqueness or state rule refused the write.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The plan is invalid.
    #[error(transparent)]
    InvalidPlan(#[from] crate::policy::InvalidPlan),
    /// The store cannot be reached now.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Stored data cannot be read back (corrupt JSON, unknown state).
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// The caller is not allowed (row-level security).
    #[error("permission denied: {0}")]
    PermissionDenied(String),
}

impl Error {
    /// Whether retrying may help.
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Unavailable(_))
    }
    /// A `NotFound` for `what`.
    pub fn not_found(what: impl std::fmt::Display) -> Self {
        Error::NotFound {
            what: what.to_string(),
        }
    }
}

/// Result alias.
pub type Result<T> = std::result::Result<T, Error>;

/// The outcome of a fenced write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Written.
    Applied,
    /// The caller no longer holds the lease (expired and taken over, or
    /// released): nothing was written; the caller must stop acting.
    LeaseLost,
    /// The run is not in the expected state: nothing was written.
    StateMismatch {
        /// The state found.
        actual: RunState,
    },
}

impl WriteOutcome {
    /// Whether the write happened.
    pub fn applied(&self) -> bool {
        matches!(self, WriteOutcome::Applied)
    }
}

/// Hosts and credential references.
#[async_trait]
pub trait HostStore: Send + Sync {
    /// Registers a host.
    async fn add_host(&self, host: NewHost) -> Result<Host>;
    /// A host.
    async fn get_host(&self, id: HostId) -> Result<Host>;
    /// All hosts, by fqdn.
    async fn list_hosts(&self) -> Result<Vec<Host>>;
    /// Replaces a host's fields (not its id or created_at).
    async fn update_host(&self, host: &Host) -> Result<()>;
    /// Stores a credential reference.
    async fn add_credential(
        &self,
        host_id: Option<HostId>,
        kind: CredentialKind,
        vault_path: &str,
    ) -> Result<CredentialRecord>;
    /// Credential references of a host, then fleet-wide ones, of `kind`.
    async fn credentials_for(
        &self,
        host_id: HostId,
        kind: CredentialKind,
    ) -> Result<Vec<CredentialRecord>>;
    /// Removes a host with its credential references and cached session.
    /// Refused (`Conflict`) while a plan that has not finished targets it.
    /// The default refuses: a store written before this method existed
    /// keeps every host.
    async fn remove_host(&self, id: HostId) -> Result<()> {
        Err(Error::Conflict(format!(
            "this store cannot remove hosts (host {id})"
        )))
    }
}

/// The result of creating a plan.
#[derive(Clone, Debug, PartialEq)]
pub struct PlanCreated {
    /// The plan.
    pub plan: Plan,
    /// `false` when the idempotency key matched an existing plan.
    pub created: bool,
}

/// Plans, targets and artifacts.
#[async_trait]
pub trait PlanStore: Send + Sync {
    /// Creates the plan, its targets and artifacts and one `pending` run per
    /// target, atomically. Status starts as `draft`. With an idempotency key
    /// already used, returns that plan unchanged (`created: false`). The
    /// caller validates first ([`crate::policy::validate_plan`]).
    async fn create_plan(&self, plan: NewPlan) -> Result<PlanCreated>;
    /// A plan.
    async fn get_plan(&self, id: PlanId) -> Result<Plan>;
    /// All plans, newest first.
    async fn list_plans(&self) -> Result<Vec<Plan>>;
    /// Plans that may have work for an executor: status `running` or
    /// `paused`, and plans of any status with a run in `running` (its lease
    /// may expire and need a takeover to finish cleanly). Oldest first.
    async fn active_plans(&self) -> Result<Vec<Plan>>;
    /// Targets of a plan, by priority descending.
    async fn plan_targets(&self, id: PlanId) -> Result<Vec<PlanTarget>>;
    /// Artifacts of a plan.
    async fn plan_artifacts(&self, id: PlanId) -> Result<Vec<Artifact>>;
    /// Compare-and-set of the plan status, with its audit event in the same
    /// step. `approved_by` is recorded when moving to `approved`. Returns
    /// `false` when the plan was not in `from`.
    async fn set_plan_status(
        &self,
        id: PlanId,
        from: PlanStatus,
        to: PlanStatus,
        reason: Option<&str>,
        by: Option<UserId>,
    ) -> Result<bool>;
}

/// A worker's claim request.
pub struct ClaimRequest<'a> {
    /// The worker.
    pub worker: &'a WorkerId,
    /// The plan to admit from.
    pub plan: PlanId,
    /// Runs the worker can take.
    pub slots: usize,
    /// Lease time to live.
    pub lease_ttl: Duration,
    /// Wait this long past a lease's expiry before taking it over.
    pub reclaim_delay: Duration,
    /// Live cluster state from the cluster manager: per cluster, the member
    /// keys (host moids) online now. Clusters absent here are judged by
    /// firmflow's own records.
    pub live_online: &'a BTreeMap<ClusterKey, BTreeSet<String>>,
    /// The admission rules.
    pub admission: &'a dyn AdmissionPolicy,
}

/// A run handed to a worker.
#[derive(Clone, Debug, PartialEq)]
pub struct ClaimedRun {
    /// The run as it is now (state `running`, new epoch).
    pub run: HostRun,
    /// The lease to write with.
    pub lease: Lease,
    /// Whether this is a takeover of an expired lease (a resume).
    pub resumed: bool,
}

/// A change of a run's state, ctx and counters.
#[derive(Clone, Debug, PartialEq)]
pub struct Transition {
    /// Expected state.
    pub from: RunState,
    /// New state. `running` to `running` is a checkpoint.
    pub to: RunState,
    /// New ctx (whole document; the lease holder is its only writer).
    pub ctx: RunCtx,
    /// Count this as a failed attempt.
    pub count_failure: bool,
    /// For `retrying`: not before.
    pub retry_at: Option<DateTime<Utc>>,
    /// Error text to keep as `last_error`.
    pub error: Option<String>,
    /// Audit event written with it (a transition without one gets a
    /// generic `run_transition` event; a checkpoint without one gets none).
    pub event: Option<NewEvent>,
}

impl Transition {
    /// A checkpoint: `running` to `running` with a new ctx.
    pub fn checkpoint(ctx: RunCtx) -> Self {
        Self {
            from: RunState::Running,
            to: RunState::Running,
            ctx,
            count_failure: false,
            retry_at: None,
            error: None,
            event: None,
        }
    }
    /// A move from `running` to `to`.
    pub fn to(to: RunState, ctx: RunCtx) -> Self {
        Self {
            to,
            ..Self::checkpoint(ctx)
        }
    }
}

/// A renewed lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Renewal {
    /// Run.
    pub run_id: RunId,
    /// New expiry.
    pub expires_at: DateTime<Utc>,
    /// An operator asked to cancel it.
    pub cancel_requested: bool,
}

/// What a cancel request did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CancelOutcome {
    /// The run was not running: cancelled at once.
    Cancelled,
    /// The run is running: its holder stops at the next safe point.
    Requested,
    /// Already final: nothing to do.
    AlreadyFinal,
}

/// Host runs: claim, lease, fenced writes.
#[async_trait]
pub trait RunStore: Send + Sync {
    /// Admission and lease in one atomic step: reads the plan, its due and
    /// expired-lease runs and cluster occupancy, lets `admission` choose,
    /// takes leases (epoch + 1; a takeover counts as a resume, not an
    /// attempt), fails takeovers past the resume cap, and writes the claim
    /// events. Never hands out a host that has a running run in any plan.
    async fn claim(&self, request: ClaimRequest<'_>) -> Result<Vec<ClaimedRun>>;
    /// Renews many leases of one worker at once; the result lists those
    /// still held (a missing run has lost its lease).
    async fn renew(
        &self,
        worker: &WorkerId,
        leases: &[Lease],
        ttl: Duration,
    ) -> Result<Vec<Renewal>>;
    /// Fenced compare-and-set (see [`Transition`]).
    async fn transition(&self, lease: &Lease, change: Transition) -> Result<WriteOutcome>;
    /// Gives a running run back at a safe point (shutdown): `retrying`, due
    /// now, lease cleared, attempts untouched, ctx kept as written.
    async fn release(&self, lease: &Lease, ctx: RunCtx) -> Result<WriteOutcome>;
    /// Releases every lease of a worker the same way (ctx unchanged).
    async fn release_all(&self, worker: &WorkerId) -> Result<u64>;
    /// Cancels a run (at once when not running, else flags it).
    async fn request_cancel(&self, run: RunId) -> Result<CancelOutcome>;
    /// A run.
    async fn get_run(&self, id: RunId) -> Result<HostRun>;
    /// Runs of a plan.
    async fn list_runs(&self, plan: PlanId) -> Result<Vec<HostRun>>;
    /// Run counts of a plan by state.
    async fn run_counts(&self, plan: PlanId) -> Result<RunCounts>;
}

/// Filter for reading events.
#[derive(Clone, Debug, Default)]
pub struct EventFilter {
    /// Only this plan.
    pub plan_id: Option<PlanId>,
    /// Only this run.
    pub run_id: Option<RunId>,
    /// Only this host.
    pub host_id: Option<HostId>,
    /// Only events with `seq` greater than this.
    pub after_seq: Option<i64>,
    /// Only events of this type.
    pub event_type: Option<EventType>,
    /// Only events created at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only events created before this time.
    pub until: Option<DateTime<Utc>>,
    /// At most this many (oldest first).
    pub limit: Option<usize>,
}

/// The audit trail.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Appends an event.
    async fn append_event(&self, event: NewEvent) -> Result<SystemEvent>;
    /// Events in `seq` order.
    async fn list_events(&self, filter: &EventFilter) -> Result<Vec<SystemEvent>>;
}

/// Auxiliary work (inventory refresh, catalog download): `background_jobs`,
/// claimed with a lock that expires, retried with backoff.
#[async_trait]
pub trait JobQueue: Send + Sync {
    /// Enqueues a job.
    async fn enqueue(&self, job: NewJob) -> Result<JobId>;
    /// Claims up to `limit` due jobs of `types` (all types when empty),
    /// oldest `scheduled_for` first; also takes jobs whose lock expired.
    /// Each claim counts one attempt.
    async fn claim_jobs(
        &self,
        worker: &WorkerId,
        types: &[String],
        limit: usize,
        lock_ttl: Duration,
    ) -> Result<Vec<BackgroundJob>>;
    /// Marks a claimed job completed. `false` when the worker no longer holds it.
    async fn complete_job(
        &self,
        id: JobId,
        worker: &WorkerId,
        result: serde_json::Value,
    ) -> Result<bool>;
    /// Records a failure: requeued after `backoff` while attempts remain,
    /// else `failed`. `false` when the worker no longer holds it.
    async fn fail_job(
        &self,
        id: JobId,
        worker: &WorkerId,
        error: &str,
        backoff: Duration,
    ) -> Result<bool>;
    /// A job.
    async fn get_job(&self, id: JobId) -> Result<BackgroundJob>;
}

/// `system_config`.
#[async_trait]
pub trait ConfigStore: Send + Sync {
    /// A value.
    async fn get_config(&self, key: &str) -> Result<Option<ConfigEntry>>;
    /// Sets a value (with a `configuration_changed` event).
    async fn set_config(
        &self,
        key: &str,
        value: serde_json::Value,
        description: Option<&str>,
    ) -> Result<ConfigEntry>;
    /// All entries, by key.
    async fn list_config(&self) -> Result<Vec<ConfigEntry>>;
}

/// Cached Redfish sessions, so a restart reuses a valid token.
#[async_trait]
pub trait SessionCache: Send + Sync {
    /// The cached session of a host, if one is stored and not expired.
    async fn get_session(&self, host: HostId) -> Result<Option<RedfishSession>>;
    /// Stores (replaces) a host's session.
    async fn put_session(&self, session: RedfishSession) -> Result<()>;
    /// Forgets a host's session.
    async fn delete_session(&self, host: HostId) -> Result<()>;
}

/// Everything a firmflow store does.
pub trait Store:
    HostStore + PlanStore + RunStore + EventStore + JobQueue + ConfigStore + SessionCache
{
}

impl<T> Store for T where
    T: HostStore + PlanStore + RunStore + EventStore + JobQueue + ConfigStore + SessionCache
{
}

#[cfg(test)]
mod tests {
    use super::*;
    fn _object_safe(_: &dyn Store) {}
}
