//! firmflow-store-memory: the embedded default [`Store`]. Same semantics as
//! the PostgreSQL store — leases with fencing epochs, admission inside the
//! claim, one running run per host across plans, events written with each
//! transition — kept in one mutex-guarded state, so every operation is
//! atomic. Nothing is persisted: a process restart loses everything, which
//! is what tests, demos and single-shot CLI runs want.
//!
//! Claims scan an ordered index of runnable runs (priority, run_at, id) and
//! stop after a bounded number of candidates, so a 10,000-host plan claims in
//! time independent of its size.

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use firmflow_core::Clock;
use firmflow_core::model::*;
use firmflow_core::policy::{AdmissionSnapshot, Candidate, ClusterView, PlanView, RunCounts};
use firmflow_core::store::*;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Ordered key of a runnable run: priority descending, then run_at, then id.
type RunnableKey = (Reverse<i32>, DateTime<Utc>, RunId);

#[derive(Default)]
struct PlanRow {
    plan: Option<Plan>,
    targets: Vec<PlanTarget>,
    artifacts: Vec<Artifact>,
    runs: Vec<RunId>,
    runnable: BTreeSet<RunnableKey>,
    running: BTreeSet<RunId>,
    counts: RunCounts,
    /// Pending/retrying runs marked for cleanup (cancelled while their ctx
    /// holds maintenance mode or jobs): claimable whatever the plan's status.
    cleanup: BTreeSet<RunId>,
}

#[derive(Default)]
struct State {
    hosts: HashMap<HostId, Host>,
    cluster_members: BTreeMap<ClusterKey, BTreeSet<HostId>>,
    credentials: Vec<CredentialRecord>,
    plans: HashMap<PlanId, PlanRow>,
    plan_order: Vec<PlanId>,
    idempotency: HashMap<String, PlanId>,
    /// Runs; their `ctx` field stays empty: the document lives serialised
    /// in `ctx_json`, as in PostgreSQL's jsonb, at about half the memory.
    runs: HashMap<RunId, HostRun>,
    ctx_json: HashMap<RunId, Box<str>>,
    host_running: HashMap<HostId, RunId>,
    /// The audit trail, kept compact (details as JSON text): a campaign
    /// writes about ten events per host and they are read rarely.
    events: EventLog,
    jobs: BTreeMap<JobId, BackgroundJob>,
    config: BTreeMap<String, ConfigEntry>,
    sessions: HashMap<HostId, RedfishSession>,
}

/// The in-memory store.
#[derive(Clone)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
    clock: Arc<dyn Clock>,
    fenced_writes: Arc<AtomicU64>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore").finish_non_exhaustive()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new(Arc::new(firmflow_core::SystemClock))
    }
}

fn member_key(h: &Host) -> String {
    h.host_moid.clone().unwrap_or_else(|| h.id.to_string())
}

fn chrono_dur(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl MemoryStore {
    /// An empty store reading time from `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            state: Arc::new(Mutex::new(State::default())),
            clock,
            fenced_writes: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Fenced writes applied so far (transitions, checkpoints, releases):
    /// the figure the benchmarks report as transitions.
    pub fn fenced_writes(&self) -> u64 {
        self.fenced_writes.load(Ordering::Relaxed)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-written row:
        // every operation validates before it mutates, so the data is usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }
}

/// Events in fixed-size chunks: appending never copies the whole trail, so
/// a large campaign's memory does not double at each growth step.
#[derive(Default)]
struct EventLog {
    chunks: Vec<Vec<StoredEvent>>,
    len: usize,
}

const EVENT_CHUNK: usize = 4096;

impl EventLog {
    fn push(&mut self, e: StoredEvent) {
        if self.chunks.last().is_none_or(|c| c.len() == EVENT_CHUNK) {
            self.chunks.push(Vec::with_capacity(EVENT_CHUNK));
        }
        if let Some(c) = self.chunks.last_mut() {
            c.push(e);
            self.len += 1;
        }
    }

    fn len(&self) -> usize {
        self.len
    }

    /// Events from index `start` on, with their index.
    fn iter_from(&self, start: usize) -> impl Iterator<Item = (usize, &StoredEvent)> {
        let first = start / EVENT_CHUNK;
        self.chunks
            .iter()
            .enumerate()
            .skip(first)
            .flat_map(|(ci, c)| {
                c.iter()
                    .enumerate()
                    .map(move |(i, e)| (ci * EVENT_CHUNK + i, e))
            })
            .skip(start - first * EVENT_CHUNK)
    }
}

/// An event as stored: the same facts as [`SystemEvent`] in less memory.
struct StoredEvent {
    id: EventId,
    created_at: DateTime<Utc>,
    event_type: EventType,
    severity: Severity,
    message: Box<str>,
    details: Box<str>,
    user_id: Option<UserId>,
    host_id: Option<HostId>,
    plan_id: Option<PlanId>,
    run_id: Option<RunId>,
}

impl StoredEvent {
    fn to_event(&self, seq: i64) -> SystemEvent {
        SystemEvent {
            id: self.id,
            seq,
            event: NewEvent {
                event_type: self.event_type.clone(),
                severity: self.severity,
                message: self.message.to_string(),
                details: serde_json::from_str(&self.details).unwrap_or(serde_json::Value::Null),
                user_id: self.user_id,
                host_id: self.host_id,
                plan_id: self.plan_id,
                run_id: self.run_id,
            },
            created_at: self.created_at,
        }
    }
}

impl State {
    /// A run with its ctx document decoded.
    fn full_run(&self, r: &HostRun) -> Result<HostRun> {
        let mut out = r.clone();
        if let Some(j) = self.ctx_json.get(&r.id) {
            out.ctx = serde_json::from_str(j)
                .map_err(|e| Error::Corrupt(format!("ctx of run {}: {e}", r.id)))?;
        }
        Ok(out)
    }

    fn store_ctx(&mut self, id: RunId, ctx: &RunCtx) -> Result<()> {
        let j = serde_json::to_string(ctx)
            .map_err(|e| Error::Corrupt(format!("ctx of run {id} cannot be encoded: {e}")))?;
        self.ctx_json.insert(id, j.into_boxed_str());
        Ok(())
    }

    fn push_event(&mut self, event: NewEvent, now: DateTime<Utc>) -> SystemEvent {
        let seq = self.events.len() as i64 + 1;
        let stored = StoredEvent {
            id: EventId::new(),
            created_at: now,
            event_type: event.event_type.clone(),
            severity: event.severity,
            message: event.message.clone().into_boxed_str(),
            details: serde_json::to_string(&event.details)
                .unwrap_or_else(|_| "null".into())
                .into_boxed_str(),
            user_id: event.user_id,
            host_id: event.host_id,
            plan_id: event.plan_id,
            run_id: event.run_id,
        };
        let id = stored.id;
        self.events.push(stored);
        SystemEvent {
            id,
            seq,
            event,
            created_at: now,
        }
    }

    /// Moves a run to a new state, keeping every index right.
    fn set_state(&mut self, id: RunId, to: RunState) {
        let Some(run) = self.runs.get(&id) else {
            return;
        };
        let (from, plan_id, host_id) = (run.state, run.plan_id, run.host_id);
        let key = (Reverse(run.priority), run.run_at, id);
        if let Some(p) = self.plans.get_mut(&plan_id) {
            match from {
                RunState::Pending | RunState::Retrying => {
                    p.runnable.remove(&key);
                    p.cleanup.remove(&id);
                }
                RunState::Running => {
                    p.running.remove(&id);
                }
                _ => {}
            }
            dec(&mut p.counts, from);
            p.counts.add(to);
        }
        if from == RunState::Running && self.host_running.get(&host_id) == Some(&id) {
            self.host_running.remove(&host_id);
        }
        let Some(run) = self.runs.get_mut(&id) else {
            return;
        };
        run.state = to;
        let key = (Reverse(run.priority), run.run_at, id);
        if let Some(p) = self.plans.get_mut(&plan_id) {
            match to {
                RunState::Pending | RunState::Retrying => {
                    p.runnable.insert(key);
                }
                RunState::Running => {
                    p.running.insert(id);
                }
                _ => {}
            }
        }
        if to == RunState::Running {
            self.host_running.insert(host_id, id);
        }
    }

    /// Changes run_at of a runnable run, keeping the index right.
    fn set_run_at(&mut self, id: RunId, at: DateTime<Utc>) {
        let Some(run) = self.runs.get_mut(&id) else {
            return;
        };
        let old = (Reverse(run.priority), run.run_at, id);
        run.run_at = at;
        let new = (Reverse(run.priority), at, id);
        if let Some(p) = self.plans.get_mut(&run.plan_id)
            && p.runnable.remove(&old)
        {
            p.runnable.insert(new);
        }
    }

    fn check_lease(&self, lease: &Lease, from: RunState) -> Result<Option<WriteOutcome>> {
        let run = self
            .runs
            .get(&lease.run_id)
            .ok_or_else(|| Error::not_found(format!("run {}", lease.run_id)))?;
        if run.lease_owner.as_ref() != Some(&lease.owner) || run.lease_epoch != lease.epoch {
            return Ok(Some(WriteOutcome::LeaseLost));
        }
        if run.state != from {
            return Ok(Some(WriteOutcome::StateMismatch { actual: run.state }));
        }
        Ok(None)
    }
}

fn dec(c: &mut RunCounts, s: RunState) {
    let f = match s {
        RunState::Pending => &mut c.pending,
        RunState::Running => &mut c.running,
        RunState::Retrying => &mut c.retrying,
        RunState::Completed => &mut c.completed,
        RunState::Failed => &mut c.failed,
        RunState::Cancelled => &mut c.cancelled,
        RunState::NeedsAttention => &mut c.needs_attention,
    };
    *f = f.saturating_sub(1);
}

#[async_trait]
impl HostStore for MemoryStore {
    async fn add_host(&self, host: NewHost) -> Result<Host> {
        let host = host.into_host(self.now());
        let mut s = self.lock();
        if let Some(k) = host.cluster_key() {
            s.cluster_members.entry(k).or_default().insert(host.id);
        }
        s.hosts.insert(host.id, host.clone());
        Ok(host)
    }

    async fn get_host(&self, id: HostId) -> Result<Host> {
        self.lock()
            .hosts
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::not_found(format!("host {id}")))
    }

    async fn list_hosts(&self) -> Result<Vec<Host>> {
        let mut v: Vec<Host> = self.lock().hosts.values().cloned().collect();
        v.sort_by(|a, b| a.fqdn.cmp(&b.fqdn).then(a.id.cmp(&b.id)));
        Ok(v)
    }

    async fn update_host(&self, host: &Host) -> Result<()> {
        let now = self.now();
        let mut s = self.lock();
        let old = s
            .hosts
            .get(&host.id)
            .cloned()
            .ok_or_else(|| Error::not_found(format!("host {}", host.id)))?;
        if let Some(k) = old.cluster_key()
            && let Some(m) = s.cluster_members.get_mut(&k)
        {
            m.remove(&host.id);
        }
        let mut h = host.clone();
        h.created_at = old.created_at;
        h.updated_at = now;
        if let Some(k) = h.cluster_key() {
            s.cluster_members.entry(k).or_default().insert(h.id);
        }
        s.hosts.insert(h.id, h);
        Ok(())
    }

    async fn add_credential(
        &self,
        host_id: Option<HostId>,
        kind: CredentialKind,
        vault_path: &str,
    ) -> Result<CredentialRecord> {
        let mut s = self.lock();
        if let Some(h) = host_id
            && !s.hosts.contains_key(&h)
        {
            return Err(Error::not_found(format!("host {h}")));
        }
        let rec = CredentialRecord {
            id: CredentialId::new(),
            host_id,
            kind,
            vault_path: vault_path.to_string(),
            created_at: self.clock.now(),
        };
        s.credentials.push(rec.clone());
        Ok(rec)
    }

    async fn credentials_for(
        &self,
        host_id: HostId,
        kind: CredentialKind,
    ) -> Result<Vec<CredentialRecord>> {
        let s = self.lock();
        let mut own: Vec<_> = s
            .credentials
            .iter()
            .filter(|c| c.kind == kind && c.host_id == Some(host_id))
            .cloned()
            .collect();
        own.extend(
            s.credentials
                .iter()
                .filter(|c| c.kind == kind && c.host_id.is_none())
                .cloned(),
        );
        Ok(own)
    }

    async fn remove_host(&self, id: HostId) -> Result<()> {
        let mut s = self.lock();
        let Some(host) = s.hosts.get(&id).cloned() else {
            return Err(Error::not_found(format!("host {id}")));
        };
        // A host in an unfinished campaign stays: its run would lose its host.
        let busy = s.runs.values().find(|r| {
            r.host_id == id
                && (r.state == RunState::Running
                    || s.plans
                        .get(&r.plan_id)
                        .and_then(|p| p.plan.as_ref())
                        .is_some_and(|p| !p.status.is_final()))
        });
        if let Some(r) = busy {
            return Err(Error::Conflict(format!(
                "host {} is a target of plan {}, which has not finished",
                host.fqdn, r.plan_id
            )));
        }
        if let Some(k) = host.cluster_key()
            && let Some(m) = s.cluster_members.get_mut(&k)
        {
            m.remove(&id);
        }
        s.hosts.remove(&id);
        s.credentials.retain(|c| c.host_id != Some(id));
        s.sessions.remove(&id);
        Ok(())
    }
}

#[async_trait]
impl PlanStore for MemoryStore {
    async fn create_plan(&self, new: NewPlan) -> Result<PlanCreated> {
        let now = self.now();
        let mut s = self.lock();
        if let Some(k) = &new.idempotency_key
            && let Some(id) = s.idempotency.get(k)
        {
            let plan = s
                .plans
                .get(id)
                .and_then(|p| p.plan.clone())
                .ok_or_else(|| Error::Corrupt(format!("idempotency key {k} without plan")))?;
            return Ok(PlanCreated {
                plan,
                created: false,
            });
        }
        for t in &new.targets {
            if !s.hosts.contains_key(&t.host_id) {
                return Err(Error::not_found(format!("host {}", t.host_id)));
            }
        }
        let mut seen = BTreeSet::new();
        if let Some(t) = new.targets.iter().find(|t| !seen.insert(t.host_id)) {
            return Err(Error::Conflict(format!(
                "host {} targeted twice",
                t.host_id
            )));
        }
        let plan = Plan {
            id: PlanId::new(),
            name: new.name.clone(),
            policy: new.policy.clone(),
            status: PlanStatus::Draft,
            maintenance_window: new.maintenance_window.clone(),
            approval_required: new.approval_required,
            approved_by: None,
            created_by: new.created_by,
            idempotency_key: new.idempotency_key.clone(),
            status_reason: None,
            created_at: now,
        };
        let max_attempts = new.policy.retry().max_attempts;
        let mut row = PlanRow {
            plan: Some(plan.clone()),
            targets: new.targets.clone(),
            artifacts: new.artifacts.clone(),
            ..Default::default()
        };
        row.targets.sort_by_key(|t| Reverse(t.priority));
        let mut runs = Vec::new();
        for t in &new.targets {
            let run = HostRun {
                id: RunId::new(),
                plan_id: plan.id,
                host_id: t.host_id,
                state: RunState::Pending,
                ctx: RunCtx::default(),
                attempts: 0,
                max_attempts,
                resumes: 0,
                priority: t.priority,
                run_at: now,
                lease_owner: None,
                lease_epoch: 0,
                lease_expires_at: None,
                cancel_requested: false,
                last_error: None,
                started_at: None,
                completed_at: None,
                created_at: now,
                updated_at: now,
            };
            row.runs.push(run.id);
            row.runnable
                .insert((Reverse(run.priority), run.run_at, run.id));
            row.counts.add(RunState::Pending);
            runs.push(run);
        }
        for r in runs {
            s.runs.insert(r.id, r);
        }
        s.plans.insert(plan.id, row);
        s.plan_order.push(plan.id);
        if let Some(k) = &new.idempotency_key {
            s.idempotency.insert(k.clone(), plan.id);
        }
        s.push_event(
            NewEvent::info(
                EventType::PlanCreated,
                format!("plan {} created", plan.name),
            )
            .for_plan(plan.id)
            .by(new.created_by)
            .details(serde_json::json!({ "targets": new.targets.len() })),
            now,
        );
        Ok(PlanCreated {
            plan,
            created: true,
        })
    }

    async fn get_plan(&self, id: PlanId) -> Result<Plan> {
        self.lock()
            .plans
            .get(&id)
            .and_then(|p| p.plan.clone())
            .ok_or_else(|| Error::not_found(format!("plan {id}")))
    }

    async fn list_plans(&self) -> Result<Vec<Plan>> {
        let s = self.lock();
        Ok(s.plan_order
            .iter()
            .rev()
            .filter_map(|id| s.plans.get(id).and_then(|p| p.plan.clone()))
            .collect())
    }

    async fn active_plans(&self) -> Result<Vec<Plan>> {
        let s = self.lock();
        Ok(s.plan_order
            .iter()
            .filter_map(|id| s.plans.get(id))
            .filter(|row| {
                row.plan
                    .as_ref()
                    .is_some_and(|p| matches!(p.status, PlanStatus::Running | PlanStatus::Paused))
                    || !row.running.is_empty()
                    || !row.cleanup.is_empty()
            })
            .filter_map(|row| row.plan.clone())
            .collect())
    }

    async fn plan_targets(&self, id: PlanId) -> Result<Vec<PlanTarget>> {
        self.lock()
            .plans
            .get(&id)
            .map(|p| p.targets.clone())
            .ok_or_else(|| Error::not_found(format!("plan {id}")))
    }

    async fn plan_artifacts(&self, id: PlanId) -> Result<Vec<Artifact>> {
        self.lock()
            .plans
            .get(&id)
            .map(|p| p.artifacts.clone())
            .ok_or_else(|| Error::not_found(format!("plan {id}")))
    }

    async fn set_plan_status(
        &self,
        id: PlanId,
        from: PlanStatus,
        to: PlanStatus,
        reason: Option<&str>,
        by: Option<UserId>,
    ) -> Result<bool> {
        let now = self.now();
        let mut s = self.lock();
        let row = s
            .plans
            .get_mut(&id)
            .ok_or_else(|| Error::not_found(format!("plan {id}")))?;
        let Some(plan) = row.plan.as_mut() else {
            return Err(Error::not_found(format!("plan {id}")));
        };
        if plan.status != from {
            return Ok(false);
        }
        plan.status = to;
        if to == PlanStatus::Approved {
            plan.approved_by = by;
        }
        if let Some(r) = reason {
            plan.status_reason = Some(r.to_string());
        }
        let name = plan.name.clone();
        s.push_event(
            NewEvent::info(
                EventType::PlanStatusChanged,
                format!("plan {name}: {from} -> {to}"),
            )
            .for_plan(id)
            .by(by)
            .details(serde_json::json!({ "from": from, "to": to, "reason": reason })),
            now,
        );
        Ok(true)
    }
}

#[async_trait]
impl RunStore for MemoryStore {
    async fn claim(&self, req: ClaimRequest<'_>) -> Result<Vec<ClaimedRun>> {
        let now = self.now();
        let mut s = self.lock();
        let row = s
            .plans
            .get(&req.plan)
            .ok_or_else(|| Error::not_found(format!("plan {}", req.plan)))?;
        let Some(plan) = row.plan.clone() else {
            return Err(Error::not_found(format!("plan {}", req.plan)));
        };
        let reclaim_before = now - chrono_dur(req.reclaim_delay);
        let mut candidates = Vec::new();
        // Expired leases first: they are reclaimed ahead of new runs.
        for id in &row.running {
            if let Some(r) = s.runs.get(id)
                && r.lease_expires_at.is_some_and(|e| e < reclaim_before)
            {
                candidates.push(r.clone());
            }
        }
        // Bounded scan of the runnable index, in claim order.
        let scan_limit = req.slots.saturating_mul(4).max(64);
        let mut fresh = 0usize;
        for (_, run_at, id) in &row.runnable {
            if fresh >= scan_limit {
                break;
            }
            if *run_at > now {
                continue;
            }
            let Some(r) = s.runs.get(id) else { continue };
            if s.host_running.contains_key(&r.host_id) {
                continue; // busy in another plan
            }
            candidates.push(r.clone());
            fresh += 1;
        }
        candidates.sort_by(|a, b| {
            (Reverse(a.priority), a.run_at, a.id).cmp(&(Reverse(b.priority), b.run_at, b.id))
        });
        let mut clusters: BTreeMap<ClusterKey, ClusterView> = BTreeMap::new();
        let mut snap_candidates = Vec::with_capacity(candidates.len());
        let max_resumes = plan.policy.max_resumes();
        for r in &candidates {
            // Only a takeover past the resume cap needs its ctx read here.
            let dirty = r.state == RunState::Running
                && r.resumes >= max_resumes
                && s.full_run(r)?.ctx.checkpoint.needs_cleanup();
            let host = s
                .hosts
                .get(&r.host_id)
                .ok_or_else(|| Error::Corrupt(format!("run {} without host", r.id)))?;
            let key = host.cluster_key();
            if let Some(k) = &key
                && !clusters.contains_key(k)
            {
                let mut view = ClusterView::default();
                for hid in s.cluster_members.get(k).into_iter().flatten() {
                    if let Some(h) = s.hosts.get(hid) {
                        let mk = member_key(h);
                        if s.host_running.contains_key(hid) {
                            view.in_flight.insert(mk.clone());
                        }
                        view.members.insert(mk);
                    }
                }
                view.live_online = req.live_online.get(k).cloned();
                clusters.insert(k.clone(), view);
            }
            snap_candidates.push(Candidate {
                run_id: r.id,
                host_id: r.host_id,
                cluster: key,
                member_key: member_key(host),
                priority: r.priority,
                run_at: r.run_at,
                state: r.state,
                resumes: r.resumes,
                cleanup: r.cancel_requested && r.state != RunState::Running,
                dirty,
            });
        }
        let snapshot = AdmissionSnapshot {
            now,
            plan: PlanView {
                id: plan.id,
                status: plan.status,
                max_concurrent: plan.policy.max_concurrent,
                min_hosts_online: plan.policy.min_hosts_online,
                failure_budget: plan.policy.failure_budget.clone(),
                window: plan.maintenance_window.clone(),
                expected_run_duration: plan.policy.expected_host_duration(),
                max_resumes: plan.policy.max_resumes(),
            },
            counts: row.counts,
            candidates: snap_candidates,
            clusters,
            slots: req.slots,
        };
        let decision = req.admission.select(&snapshot);
        for id in &decision.exhausted {
            s.set_state(*id, RunState::Failed);
            if let Some(r) = s.runs.get_mut(id) {
                r.lease_owner = None;
                r.lease_expires_at = None;
                r.completed_at = Some(now);
                r.updated_at = now;
                r.last_error = Some(format!("gave up after {} resumes", r.resumes));
                let (pid, hid) = (r.plan_id, r.host_id);
                s.push_event(
                    NewEvent::info(EventType::UpdateFailed, "resume cap reached")
                        .severity(Severity::Error)
                        .for_run(*id, pid, hid)
                        .details(serde_json::json!({"from": "running", "to": "failed"})),
                    now,
                );
            }
        }
        for id in &decision.stranded {
            s.set_state(*id, RunState::NeedsAttention);
            if let Some(r) = s.runs.get_mut(id) {
                r.lease_owner = None;
                r.lease_expires_at = None;
                r.completed_at = Some(now);
                r.updated_at = now;
                let msg = format!(
                    "cleanup did not finish after {} takeovers: the host may still be in \
                     maintenance mode or hold staged jobs",
                    r.resumes
                );
                r.last_error = Some(msg.clone());
                let (pid, hid) = (r.plan_id, r.host_id);
                s.push_event(
                    NewEvent::info(EventType::UpdateFailed, msg)
                        .severity(Severity::Critical)
                        .for_run(*id, pid, hid)
                        .details(serde_json::json!({"from": "running", "to": "needs_attention", "reason": "resume_cap"})),
                    now,
                );
            }
        }
        let mut claimed = Vec::with_capacity(decision.admit.len());
        for id in &decision.admit {
            let Some(r) = s.runs.get(id) else { continue };
            let resumed = r.state == RunState::Running;
            if !resumed && s.host_running.contains_key(&r.host_id) {
                continue; // admission may not know two candidates share a host
            }
            if !resumed {
                s.set_state(*id, RunState::Running);
            }
            let Some(r) = s.runs.get_mut(id) else {
                continue;
            };
            r.lease_owner = Some(req.worker.clone());
            r.lease_epoch += 1;
            r.lease_expires_at = Some(now + chrono_dur(req.lease_ttl));
            if resumed {
                r.resumes += 1;
            }
            r.started_at.get_or_insert(now);
            r.updated_at = now;
            let lease = Lease {
                run_id: r.id,
                owner: req.worker.clone(),
                epoch: r.lease_epoch,
            };
            let run = r.clone();
            let run = s.full_run(&run)?;
            let (etype, msg) = if resumed {
                (EventType::RunReclaimed, "expired lease taken over")
            } else {
                (EventType::RunClaimed, "run claimed")
            };
            s.push_event(
                NewEvent::info(etype, msg)
                    .for_run(run.id, run.plan_id, run.host_id)
                    .details(serde_json::json!({
                        "worker": req.worker, "epoch": run.lease_epoch, "resumes": run.resumes
                    })),
                now,
            );
            claimed.push(ClaimedRun {
                run,
                lease,
                resumed,
            });
        }
        Ok(claimed)
    }

    async fn renew(
        &self,
        worker: &WorkerId,
        leases: &[Lease],
        ttl: Duration,
    ) -> Result<Vec<Renewal>> {
        let now = self.now();
        let mut s = self.lock();
        let mut out = Vec::with_capacity(leases.len());
        for l in leases {
            if &l.owner != worker {
                continue;
            }
            if let Some(r) = s.runs.get_mut(&l.run_id)
                && r.state == RunState::Running
                && r.lease_owner.as_ref() == Some(worker)
                && r.lease_epoch == l.epoch
            {
                let exp = now + chrono_dur(ttl);
                r.lease_expires_at = Some(exp);
                out.push(Renewal {
                    run_id: r.id,
                    expires_at: exp,
                    cancel_requested: r.cancel_requested,
                });
            }
        }
        Ok(out)
    }

    async fn transition(&self, lease: &Lease, t: Transition) -> Result<WriteOutcome> {
        let now = self.now();
        let mut s = self.lock();
        if let Some(o) = s.check_lease(lease, t.from)? {
            return Ok(o);
        }
        let id = lease.run_id;
        if t.from != t.to {
            s.set_state(id, t.to);
        }
        let Some(r) = s.runs.get_mut(&id) else {
            return Ok(WriteOutcome::LeaseLost);
        };
        self.fenced_writes.fetch_add(1, Ordering::Relaxed);
        if t.count_failure {
            r.attempts = (r.attempts + 1).min(r.max_attempts);
        }
        let ctx = t.ctx;
        if let Some(e) = t.error {
            r.last_error = Some(e);
        }
        r.updated_at = now;
        if t.to != RunState::Running {
            r.lease_owner = None;
            r.lease_expires_at = None;
        }
        if t.to.is_final() {
            r.completed_at = Some(now);
        }
        let (pid, hid) = (r.plan_id, r.host_id);
        s.store_ctx(id, &ctx)?;
        if let Some(at) = t.retry_at {
            s.set_run_at(id, at);
        } else if t.to.is_runnable() {
            s.set_run_at(id, now);
        }
        let event = match t.event {
            Some(e) => Some(e),
            None if t.from != t.to => Some(
                NewEvent::info(
                    EventType::RunTransition,
                    format!("run {}: {} -> {}", id, t.from, t.to),
                )
                .details(serde_json::json!({"from": t.from, "to": t.to, "epoch": lease.epoch})),
            ),
            None => None,
        };
        if let Some(mut e) = event {
            e.run_id = Some(id);
            e.plan_id = Some(pid);
            e.host_id = Some(hid);
            s.push_event(e, now);
        }
        Ok(WriteOutcome::Applied)
    }

    async fn release(&self, lease: &Lease, ctx: RunCtx) -> Result<WriteOutcome> {
        let now = self.now();
        let mut s = self.lock();
        if let Some(o) = s.check_lease(lease, RunState::Running)? {
            return Ok(o);
        }
        release_locked(&mut s, lease.run_id, Some(ctx), now);
        Ok(WriteOutcome::Applied)
    }

    async fn release_all(&self, worker: &WorkerId) -> Result<u64> {
        let now = self.now();
        let mut s = self.lock();
        let ids: Vec<RunId> = s
            .runs
            .values()
            .filter(|r| r.state == RunState::Running && r.lease_owner.as_ref() == Some(worker))
            .map(|r| r.id)
            .collect();
        for id in &ids {
            release_locked(&mut s, *id, None, now);
        }
        Ok(ids.len() as u64)
    }

    async fn request_cancel(&self, run: RunId) -> Result<CancelOutcome> {
        let now = self.now();
        let mut s = self.lock();
        let r = s
            .runs
            .get(&run)
            .ok_or_else(|| Error::not_found(format!("run {run}")))?;
        match r.state {
            RunState::Running => {
                if let Some(r) = s.runs.get_mut(&run) {
                    r.cancel_requested = true;
                }
                Ok(CancelOutcome::Requested)
            }
            st if st.is_final() => Ok(CancelOutcome::AlreadyFinal),
            st if s.full_run(r)?.ctx.checkpoint.needs_cleanup() => {
                // The cleanup rule: never finalised here; a worker claims it
                // now, leaves maintenance mode, settles its jobs, then ends it.
                let (pid, hid, already) = (r.plan_id, r.host_id, r.cancel_requested);
                if let Some(r) = s.runs.get_mut(&run) {
                    r.cancel_requested = true;
                    r.updated_at = now;
                }
                s.set_run_at(run, now);
                if let Some(p) = s.plans.get_mut(&pid) {
                    p.cleanup.insert(run);
                }
                if !already {
                    s.push_event(
                        NewEvent::info(
                            EventType::RunTransition,
                            "cancel requested: the run holds maintenance mode or BMC jobs; a worker cleans up first",
                        )
                        .for_run(run, pid, hid)
                        .details(serde_json::json!({"from": st, "cleanup": true})),
                        now,
                    );
                }
                Ok(CancelOutcome::Requested)
            }
            st => {
                s.set_state(run, RunState::Cancelled);
                let Some(r) = s.runs.get_mut(&run) else {
                    return Ok(CancelOutcome::Cancelled);
                };
                r.cancel_requested = true;
                r.completed_at = Some(now);
                r.updated_at = now;
                let (pid, hid) = (r.plan_id, r.host_id);
                s.push_event(
                    NewEvent::info(EventType::RunTransition, "run cancelled before it started")
                        .for_run(run, pid, hid)
                        .details(serde_json::json!({"from": st, "to": "cancelled"})),
                    now,
                );
                Ok(CancelOutcome::Cancelled)
            }
        }
    }

    async fn get_run(&self, id: RunId) -> Result<HostRun> {
        let s = self.lock();
        let r = s
            .runs
            .get(&id)
            .ok_or_else(|| Error::not_found(format!("run {id}")))?;
        s.full_run(r)
    }

    async fn list_runs(&self, plan: PlanId) -> Result<Vec<HostRun>> {
        let s = self.lock();
        let row = s
            .plans
            .get(&plan)
            .ok_or_else(|| Error::not_found(format!("plan {plan}")))?;
        row.runs
            .iter()
            .filter_map(|id| s.runs.get(id))
            .map(|r| s.full_run(r))
            .collect()
    }

    async fn run_counts(&self, plan: PlanId) -> Result<RunCounts> {
        self.lock()
            .plans
            .get(&plan)
            .map(|p| RunCounts {
                cleanup: u32::try_from(p.cleanup.len()).unwrap_or(u32::MAX),
                ..p.counts
            })
            .ok_or_else(|| Error::not_found(format!("plan {plan}")))
    }
}

fn release_locked(s: &mut State, id: RunId, ctx: Option<RunCtx>, now: DateTime<Utc>) {
    s.set_state(id, RunState::Retrying);
    s.set_run_at(id, now);
    if let Some(c) = ctx
        && let Err(e) = s.store_ctx(id, &c)
    {
        // Keep the previous checkpoint rather than lose the release.
        tracing::warn!(run = %id, error = %e, "released without the new checkpoint");
    }
    let Some(r) = s.runs.get_mut(&id) else { return };
    let owner = r.lease_owner.take();
    r.lease_expires_at = None;
    r.updated_at = now;
    let (pid, hid, epoch) = (r.plan_id, r.host_id, r.lease_epoch);
    s.push_event(
        NewEvent::info(EventType::RunReleased, "run released at a safe point")
            .for_run(id, pid, hid)
            .details(serde_json::json!({"from": "running", "to": "retrying", "worker": owner, "epoch": epoch})),
        now,
    );
}

#[async_trait]
impl EventStore for MemoryStore {
    async fn append_event(&self, event: NewEvent) -> Result<SystemEvent> {
        let now = self.now();
        Ok(self.lock().push_event(event, now))
    }

    async fn list_events(&self, f: &EventFilter) -> Result<Vec<SystemEvent>> {
        let s = self.lock();
        let start = f.after_seq.map(|a| a.max(0) as usize).unwrap_or(0);
        let it = s
            .events
            .iter_from(start.min(s.events.len()))
            .filter(|(_, e)| {
                f.plan_id.is_none_or(|p| e.plan_id == Some(p))
                    && f.run_id.is_none_or(|r| e.run_id == Some(r))
                    && f.host_id.is_none_or(|h| e.host_id == Some(h))
                    && f.event_type.as_ref().is_none_or(|t| &e.event_type == t)
                    && f.since.is_none_or(|t| e.created_at >= t)
                    && f.until.is_none_or(|t| e.created_at < t)
            })
            .map(|(i, e)| e.to_event(i as i64 + 1));
        Ok(match f.limit {
            Some(n) => it.take(n).collect(),
            None => it.collect(),
        })
    }
}

#[async_trait]
impl JobQueue for MemoryStore {
    async fn enqueue(&self, job: NewJob) -> Result<JobId> {
        let now = self.now();
        let j = BackgroundJob {
            id: JobId::new(),
            job_type: job.job_type,
            status: JobStatus::Queued,
            payload: job.payload,
            result: None,
            error_message: None,
            attempts: 0,
            max_attempts: job.max_attempts.max(1),
            scheduled_for: job.scheduled_for.unwrap_or(now),
            locked_by: None,
            locked_until: None,
            started_at: None,
            completed_at: None,
            created_at: now,
        };
        let id = j.id;
        self.lock().jobs.insert(id, j);
        Ok(id)
    }

    async fn claim_jobs(
        &self,
        worker: &WorkerId,
        types: &[String],
        limit: usize,
        lock_ttl: Duration,
    ) -> Result<Vec<BackgroundJob>> {
        let now = self.now();
        let mut s = self.lock();
        let mut due: Vec<&BackgroundJob> = s
            .jobs
            .values()
            .filter(|j| types.is_empty() || types.contains(&j.job_type))
            .filter(|j| match j.status {
                JobStatus::Queued => j.scheduled_for <= now,
                JobStatus::Running => j.locked_until.is_some_and(|u| u < now),
                _ => false,
            })
            .collect();
        due.sort_by_key(|j| (j.scheduled_for, j.id));
        let ids: Vec<JobId> = due.iter().take(limit).map(|j| j.id).collect();
        let mut out = Vec::new();
        for id in ids {
            let Some(j) = s.jobs.get_mut(&id) else {
                continue;
            };
            if j.status == JobStatus::Running && j.attempts >= j.max_attempts {
                // Its last holder died with no attempts left.
                j.status = JobStatus::Failed;
                j.locked_by = None;
                j.locked_until = None;
                j.completed_at = Some(now);
                j.error_message
                    .get_or_insert_with(|| "lock expired with no attempts left".into());
                continue;
            }
            j.status = JobStatus::Running;
            j.attempts += 1;
            j.locked_by = Some(worker.clone());
            j.locked_until = Some(now + chrono_dur(lock_ttl));
            j.started_at.get_or_insert(now);
            out.push(j.clone());
        }
        Ok(out)
    }

    async fn complete_job(
        &self,
        id: JobId,
        worker: &WorkerId,
        result: serde_json::Value,
    ) -> Result<bool> {
        let now = self.now();
        let mut s = self.lock();
        let j = s
            .jobs
            .get_mut(&id)
            .ok_or_else(|| Error::not_found(format!("job {id}")))?;
        if j.status != JobStatus::Running || j.locked_by.as_ref() != Some(worker) {
            return Ok(false);
        }
        j.status = JobStatus::Completed;
        j.result = Some(result);
        j.locked_by = None;
        j.locked_until = None;
        j.completed_at = Some(now);
        Ok(true)
    }

    async fn fail_job(
        &self,
        id: JobId,
        worker: &WorkerId,
        error: &str,
        backoff: Duration,
    ) -> Result<bool> {
        let now = self.now();
        let mut s = self.lock();
        let j = s
            .jobs
            .get_mut(&id)
            .ok_or_else(|| Error::not_found(format!("job {id}")))?;
        if j.status != JobStatus::Running || j.locked_by.as_ref() != Some(worker) {
            return Ok(false);
        }
        j.error_message = Some(error.to_string());
        j.locked_by = None;
        j.locked_until = None;
        if j.attempts >= j.max_attempts {
            j.status = JobStatus::Failed;
            j.completed_at = Some(now);
        } else {
            j.status = JobStatus::Queued;
            j.scheduled_for = now + chrono_dur(backoff);
        }
        Ok(true)
    }

    async fn get_job(&self, id: JobId) -> Result<BackgroundJob> {
        self.lock()
            .jobs
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::not_found(format!("job {id}")))
    }
}

#[async_trait]
impl ConfigStore for MemoryStore {
    async fn get_config(&self, key: &str) -> Result<Option<ConfigEntry>> {
        Ok(self.lock().config.get(key).cloned())
    }

    async fn set_config(
        &self,
        key: &str,
        value: serde_json::Value,
        description: Option<&str>,
    ) -> Result<ConfigEntry> {
        let now = self.now();
        let mut s = self.lock();
        let created_at = s.config.get(key).map(|e| e.created_at).unwrap_or(now);
        let old_desc = s.config.get(key).and_then(|e| e.description.clone());
        let e = ConfigEntry {
            key: key.to_string(),
            value,
            description: description.map(str::to_string).or(old_desc),
            created_at,
            updated_at: now,
        };
        s.config.insert(key.to_string(), e.clone());
        s.push_event(
            NewEvent::info(EventType::ConfigurationChanged, format!("config {key} set"))
                .details(serde_json::json!({ "key": key })),
            now,
        );
        Ok(e)
    }

    async fn list_config(&self) -> Result<Vec<ConfigEntry>> {
        Ok(self.lock().config.values().cloned().collect())
    }
}

#[async_trait]
impl SessionCache for MemoryStore {
    async fn get_session(&self, host: HostId) -> Result<Option<RedfishSession>> {
        let now = self.now();
        Ok(self
            .lock()
            .sessions
            .get(&host)
            .filter(|s| s.expires_at > now)
            .cloned())
    }

    async fn put_session(&self, session: RedfishSession) -> Result<()> {
        self.lock().sessions.insert(session.host_id, session);
        Ok(())
    }

    async fn delete_session(&self, host: HostId) -> Result<()> {
        self.lock().sessions.remove(&host);
        Ok(())
    }
}
