//! `RunStore`: the claim (one admission transaction), batched lease
//! renewal, and fenced compare-and-set writes that record their audit event
//! in the same statement.
//!
//! Claim, in one READ COMMITTED transaction:
//! 1. lock the plan row (`FOR NO KEY UPDATE`): one admitter per plan at a
//!    time, so two workers never both fill the same `maxConcurrent` slot;
//! 2. read candidates in claim order: runs whose lease expired more than the
//!    reclaim delay ago, and due `pending`/`retrying` runs whose host has no
//!    running run in any plan;
//! 3. lock the candidates' clusters (advisory locks in a fixed order: cluster
//!    capacity is shared by every plan), then read cluster occupancy and the
//!    plan's run counts without SKIP LOCKED (skipping would under-count);
//! 4. let the pure admission policy choose;
//! 5. take the leases (epoch + 1; a takeover counts a resume), fail
//!    takeovers past the resume cap, write the claim events.
//!
//! The partial unique index `host_runs_one_running_per_host` backs the host
//! rule; two plans racing for one host make one claim fail on it, and that
//! claim is retried (its next snapshot no longer offers the host).

use crate::error::{db_err, is_host_busy_conflict};
use crate::group_commit::{EventRow, RunWrite};
use crate::rows::{self, RUN_COLS, get, secs};
use crate::{PgStore, with_conn};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use firmflow_core::model::*;
use firmflow_core::policy::{
    AdmissionSnapshot, Candidate, ClusterView, Deferral, PlanView, RunCounts,
};
use firmflow_core::store::{
    CancelOutcome, ClaimRequest, ClaimedRun, Error, Renewal, Result, RunStore, Transition,
    WriteOutcome,
};
use serde_json::json;
use sqlx::AssertSqlSafe;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::LazyLock;
use std::time::Duration;
use uuid::Uuid;

/// How often a claim that lost a host race to another plan is retried.
const CLAIM_RETRIES: usize = 3;

const CANDIDATE_COLS: &str = "r.id, r.host_id, r.state, r.priority, r.run_at, r.resumes, \
    r.cancel_requested_at IS NOT NULL AS cancel_requested, \
    h.vcenter_url, h.cluster_moid, coalesce(h.host_moid, h.id::text) AS member_key";

static CANDIDATES_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "(SELECT {CANDIDATE_COLS} FROM host_runs r JOIN hosts h ON h.id = r.host_id \
          WHERE r.plan_id = $1 AND r.state = 'running' AND r.lease_expires_at < $2 \
          ORDER BY r.priority DESC, r.run_at, r.id LIMIT $3) \
         UNION ALL \
         (SELECT {CANDIDATE_COLS} FROM host_runs r JOIN hosts h ON h.id = r.host_id \
          WHERE r.plan_id = $1 AND r.state IN ('pending', 'retrying') AND r.run_at <= $4 \
            AND NOT EXISTS (SELECT 1 FROM host_runs o \
                            WHERE o.host_id = r.host_id AND o.state = 'running') \
          ORDER BY r.priority DESC, r.run_at, r.id LIMIT $5)"
    )
});

fn qualified_run_cols(alias: &str) -> String {
    RUN_COLS
        .split(", ")
        .map(|c| format!("{alias}.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

static LEASE_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH old AS ( \
           SELECT id, state FROM host_runs WHERE id = ANY($1) AND plan_id = $6 FOR UPDATE), \
         w AS ( \
           INSERT INTO workers (id, started_at, heartbeat_at) VALUES ($2, $3, $3) \
           ON CONFLICT (id) DO UPDATE SET heartbeat_at = EXCLUDED.heartbeat_at), \
         moved AS ( \
           UPDATE host_runs r \
           SET state = 'running', lease_owner = $2, lease_epoch = r.lease_epoch + 1, \
               lease_expires_at = $3 + make_interval(secs => $4), \
               resumes = r.resumes + (old.state = 'running')::int, \
               started_at = coalesce(r.started_at, $3), updated_at = $3 \
           FROM old \
           WHERE r.id = old.id \
             AND (old.state IN ('pending', 'retrying') \
                  OR (old.state = 'running' AND r.lease_expires_at < $5)) \
           RETURNING {}, old.state = 'running' AS resumed), \
         ev AS ( \
           INSERT INTO system_events (event_type, severity, message, details, host_id, plan_id, \
             run_id, created_at) \
           SELECT CASE WHEN resumed THEN 'run_reclaimed' ELSE 'run_claimed' END, 'info', \
                  CASE WHEN resumed THEN 'expired lease taken over by ' ELSE 'claimed by ' END || $2, \
                  jsonb_build_object('epoch', lease_epoch, 'worker', $2::text, 'resumes', resumes), \
                  host_id, plan_id, id, $3 \
           FROM moved) \
         SELECT * FROM moved",
        qualified_run_cols("r")
    )
});

/// Takeovers past the resume cap whose cleanup kept failing: parked
/// `needs_attention` (the host may still be in maintenance mode).
const STRAND_SQL: &str = "WITH moved AS ( \
       UPDATE host_runs \
       SET state = 'needs_attention', lease_owner = NULL, lease_expires_at = NULL, \
           completed_at = $2, updated_at = $2, \
           last_error = 'cleanup did not finish after ' || resumes || ' takeovers: the host may \
still be in maintenance mode or hold staged jobs' \
       WHERE id = ANY($1) AND plan_id = $4 AND state = 'running' AND lease_expires_at < $3 \
       RETURNING id, plan_id, host_id, resumes, last_error) \
     INSERT INTO system_events (event_type, severity, message, details, host_id, plan_id, run_id, \
       created_at) \
     SELECT 'update_failed', 'critical', last_error, \
            jsonb_build_object('resumes', resumes, 'reason', 'resume_cap', 'to', 'needs_attention'), \
            host_id, plan_id, id, $2 \
     FROM moved";

const EXHAUST_SQL: &str = "WITH moved AS ( \
       UPDATE host_runs \
       SET state = 'failed', lease_owner = NULL, lease_expires_at = NULL, completed_at = $2, \
           updated_at = $2, last_error = 'lease lost ' || resumes || ' times: resume cap reached' \
       WHERE id = ANY($1) AND plan_id = $4 AND state = 'running' AND lease_expires_at < $3 \
       RETURNING id, plan_id, host_id, resumes) \
     INSERT INTO system_events (event_type, severity, message, details, host_id, plan_id, run_id, \
       created_at) \
     SELECT 'update_failed', 'error', 'run failed: its lease was lost too often (resume cap)', \
            jsonb_build_object('resumes', resumes, 'reason', 'resume_cap'), host_id, plan_id, id, $2 \
     FROM moved";

static TRANSITION_SQL: LazyLock<String> = LazyLock::new(|| {
    "WITH moved AS ( \
       UPDATE host_runs \
       SET state = $3, ctx = $4, attempts = attempts + $5, run_at = coalesce($6, run_at), \
           last_error = coalesce($7, last_error), \
           lease_owner = CASE WHEN $3 = 'running' THEN lease_owner END, \
           lease_expires_at = CASE WHEN $3 = 'running' THEN lease_expires_at END, \
           completed_at = CASE WHEN $3 IN ('completed', 'failed', 'cancelled', 'needs_attention') \
                               THEN coalesce($8, now()) END, \
           updated_at = coalesce($8, now()) \
       WHERE id = $1 AND state = $2 AND lease_owner = $9 AND lease_epoch = $10 \
       RETURNING id, plan_id, host_id), \
     ev AS ( \
       INSERT INTO system_events (event_type, severity, message, details, user_id, host_id, \
         plan_id, run_id, created_at) \
       SELECT $11, $12, $13, $14, $15, coalesce($16, m.host_id), coalesce($17, m.plan_id), \
              coalesce($18, m.id), coalesce($8, now()) \
       FROM moved m WHERE $11::text IS NOT NULL) \
     SELECT id, plan_id FROM moved"
        .to_string()
});

fn chrono_dur(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl PgStore {
    /// One claim transaction reading at most `fresh_limit` fresh
    /// candidates. `Ok(None)`: admission left slots unused because of
    /// cluster capacity and more candidates exist, so the caller retries
    /// with a wider scan (in a new transaction, so the cluster locks are
    /// again taken in one sorted pass and cannot deadlock).
    async fn claim_once(
        &self,
        req: &ClaimRequest<'_>,
        fresh_limit: usize,
    ) -> Result<Option<Vec<ClaimedRun>>> {
        let mut tx = self.begin().await?;
        // 1. The plan, locked: one admitter per plan at a time.
        let prow = sqlx::query(
            "SELECT status, policy, maintenance_window, coalesce($2::timestamptz, now()) AS now \
             FROM update_plans WHERE id = $1 FOR NO KEY UPDATE",
        )
        .bind(req.plan.0)
        .bind(self.now_param())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?
        .ok_or_else(|| Error::not_found(format!("plan {}", req.plan)))?;
        let now: DateTime<Utc> = get(&prow, "now")?;
        let status: String = get(&prow, "status")?;
        let status = PlanStatus::parse(&status).ok_or_else(|| {
            Error::Corrupt(format!("plan {}: unknown status {status:?}", req.plan))
        })?;
        let policy: Policy = serde_json::from_value(get(&prow, "policy")?)
            .map_err(|e| Error::Corrupt(format!("plan {} policy: {e}", req.plan)))?;
        let window: Option<serde_json::Value> = get(&prow, "maintenance_window")?;
        let window: Option<MaintenanceWindow> = match window {
            None | Some(serde_json::Value::Null) => None,
            Some(v) => Some(serde_json::from_value(v).map_err(|e| {
                Error::Corrupt(format!("plan {} maintenance_window: {e}", req.plan))
            })?),
        };
        let plan_view = PlanView {
            id: req.plan,
            status,
            max_concurrent: policy.max_concurrent,
            min_hosts_online: policy.min_hosts_online,
            failure_budget: policy.failure_budget.clone(),
            window,
            expected_run_duration: policy.expected_host_duration(),
            max_resumes: policy.max_resumes(),
        };
        let reclaim_before = now - chrono_dur(req.reclaim_delay);

        // 2. Candidates in claim order (reclaims and fresh runs, bounded).
        let scan = self.inner.scan_limit;
        let crows = sqlx::query(AssertSqlSafe(CANDIDATES_SQL.as_str()))
            .bind(req.plan.0)
            .bind(reclaim_before)
            .bind(i64::try_from(scan).unwrap_or(i64::MAX))
            .bind(now)
            .bind(i64::try_from(fresh_limit).unwrap_or(i64::MAX))
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err)?;
        let mut candidates = Vec::with_capacity(crows.len());
        // Takeovers past the resume cap: whether their ctx needs cleanup
        // decides between failing them and handing them out to clean up.
        let over_cap: Vec<Uuid> = crows
            .iter()
            .filter(|r| {
                get::<String>(r, "state").is_ok_and(|s| s == "running")
                    && get::<i32>(r, "resumes")
                        .is_ok_and(|n| u32::try_from(n).unwrap_or(0) >= plan_view.max_resumes)
            })
            .filter_map(|r| get::<Uuid>(r, "id").ok())
            .collect();
        let mut dirty_ids: BTreeSet<Uuid> = BTreeSet::new();
        if !over_cap.is_empty() {
            let drows = sqlx::query("SELECT id, ctx FROM host_runs WHERE id = ANY($1)")
                .bind(&over_cap)
                .fetch_all(&mut *tx)
                .await
                .map_err(db_err)?;
            for d in &drows {
                let id: Uuid = get(d, "id")?;
                let ctx: RunCtx = serde_json::from_value(get(d, "ctx")?)
                    .map_err(|e| Error::Corrupt(format!("ctx of run {id}: {e}")))?;
                if ctx.checkpoint.needs_cleanup() {
                    dirty_ids.insert(id);
                }
            }
        }
        for r in &crows {
            let id: Uuid = get(r, "id")?;
            let state: String = get(r, "state")?;
            let vc: Option<String> = get(r, "vcenter_url")?;
            let moid: Option<String> = get(r, "cluster_moid")?;
            let resumes: i32 = get(r, "resumes")?;
            candidates.push(Candidate {
                run_id: RunId(id),
                host_id: HostId(get(r, "host_id")?),
                cluster: moid.map(|m| ClusterKey {
                    vcenter_url: vc.unwrap_or_default(),
                    cluster_moid: m,
                }),
                member_key: get(r, "member_key")?,
                priority: get(r, "priority")?,
                run_at: get(r, "run_at")?,
                state: rows::run_state(&state, id)?,
                resumes: u32::try_from(resumes).unwrap_or(0),
                cleanup: state != "running" && get::<bool>(r, "cancel_requested")?,
                dirty: dirty_ids.contains(&id),
            });
        }
        candidates.sort_by(|a, b| {
            b.priority
                .cmp(&a.priority)
                .then(a.run_at.cmp(&b.run_at))
                .then(a.run_id.cmp(&b.run_id))
        });

        // 3. Cluster occupancy (locked across plans) and the plan's counts.
        let keys: BTreeSet<ClusterKey> = candidates
            .iter()
            .filter_map(|c| c.cluster.clone())
            .collect();
        let mut clusters: BTreeMap<ClusterKey, ClusterView> = BTreeMap::new();
        if !keys.is_empty() {
            let texts: Vec<String> = keys
                .iter()
                .map(|k| format!("{}:{}#{}", self.inner.schema, k.vcenter_url, k.cluster_moid))
                .collect();
            sqlx::query(
                "SELECT pg_advisory_xact_lock(k) FROM ( \
                   SELECT DISTINCT hashtextextended('firmflow.cluster:' || c, 0) AS k \
                   FROM unnest($1::text[]) AS c ORDER BY k) AS s",
            )
            .bind(&texts)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
            let moids: Vec<String> = keys.iter().map(|k| k.cluster_moid.clone()).collect();
            let hrows = sqlx::query(
                "SELECT coalesce(h.vcenter_url, '') AS vc, h.cluster_moid, \
                        coalesce(h.host_moid, h.id::text) AS member_key, \
                        EXISTS (SELECT 1 FROM host_runs o \
                                WHERE o.host_id = h.id AND o.state = 'running') AS busy \
                 FROM hosts h WHERE h.cluster_moid = ANY($1)",
            )
            .bind(&moids)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err)?;
            for k in &keys {
                clusters.insert(
                    k.clone(),
                    ClusterView {
                        live_online: req.live_online.get(k).cloned(),
                        ..ClusterView::default()
                    },
                );
            }
            for h in &hrows {
                let key = ClusterKey {
                    vcenter_url: get(h, "vc")?,
                    cluster_moid: get(h, "cluster_moid")?,
                };
                if let Some(view) = clusters.get_mut(&key) {
                    let member: String = get(h, "member_key")?;
                    if get::<bool>(h, "busy")? {
                        view.in_flight.insert(member.clone());
                    }
                    view.members.insert(member);
                }
            }
        }
        let counts = counts_on(&mut tx, req.plan).await?;

        // 4. The pure decision.
        let snapshot = AdmissionSnapshot {
            now,
            plan: plan_view,
            counts,
            candidates,
            clusters,
            slots: req.slots,
        };
        let decision = req.admission.select(&snapshot);
        let fresh_seen = snapshot
            .candidates
            .iter()
            .filter(|c| !c.is_reclaim())
            .count();
        let cluster_blocked = decision
            .deferred
            .iter()
            .any(|(_, d)| matches!(d, Deferral::ClusterCapacity { .. }));
        if cluster_blocked
            && decision.admit.len() < req.slots
            && fresh_seen >= fresh_limit
            && fresh_limit < scan
        {
            tx.rollback().await.map_err(db_err)?;
            return Ok(None);
        }
        let offered: HashMap<RunId, &Candidate> =
            snapshot.candidates.iter().map(|c| (c.run_id, c)).collect();

        // 5. Fail exhausted takeovers, take the leases, write the events.
        let exhausted: Vec<Uuid> = decision
            .exhausted
            .iter()
            .filter(|id| offered.get(id).is_some_and(|c| c.is_reclaim()))
            .map(|id| id.0)
            .collect();
        if !exhausted.is_empty() {
            sqlx::query(EXHAUST_SQL)
                .bind(&exhausted)
                .bind(now)
                .bind(reclaim_before)
                .bind(req.plan.0)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        let stranded: Vec<Uuid> = decision
            .stranded
            .iter()
            .filter(|id| offered.get(id).is_some_and(|c| c.is_reclaim()))
            .map(|id| id.0)
            .collect();
        if !stranded.is_empty() {
            sqlx::query(STRAND_SQL)
                .bind(&stranded)
                .bind(now)
                .bind(reclaim_before)
                .bind(req.plan.0)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        let admit: Vec<Uuid> = decision
            .admit
            .iter()
            .filter(|id| offered.contains_key(id))
            .map(|id| id.0)
            .collect();
        let mut claimed = Vec::new();
        if !admit.is_empty() {
            let lrows = sqlx::query(AssertSqlSafe(LEASE_SQL.as_str()))
                .bind(&admit)
                .bind(req.worker.as_str())
                .bind(now)
                .bind(secs(req.lease_ttl))
                .bind(reclaim_before)
                .bind(req.plan.0)
                .fetch_all(&mut *tx)
                .await
                .map_err(db_err)?;
            let mut by_id: HashMap<RunId, ClaimedRun> = HashMap::with_capacity(lrows.len());
            for r in &lrows {
                let run = rows::run(r)?;
                let resumed: bool = get(r, "resumed")?;
                let lease = Lease {
                    run_id: run.id,
                    owner: req.worker.clone(),
                    epoch: run.lease_epoch,
                };
                by_id.insert(
                    run.id,
                    ClaimedRun {
                        run,
                        lease,
                        resumed,
                    },
                );
            }
            // In the order admission chose them.
            for id in &decision.admit {
                if let Some(c) = by_id.remove(id) {
                    claimed.push(c);
                }
            }
        }
        tx.commit().await.map_err(db_err)?;
        if !exhausted.is_empty() {
            // Failed takeovers free their plan's slots.
            self.inner.notifier.wake(req.plan);
        }
        Ok(Some(claimed))
    }

    /// Why a fenced write did not apply.
    async fn diagnose(c: &mut sqlx::PgConnection, lease: &Lease) -> Result<WriteOutcome> {
        let row =
            sqlx::query("SELECT state, lease_owner, lease_epoch FROM host_runs WHERE id = $1")
                .bind(lease.run_id.0)
                .fetch_optional(&mut *c)
                .await
                .map_err(db_err)?
                .ok_or_else(|| Error::not_found(format!("run {}", lease.run_id)))?;
        let owner: Option<String> = get(&row, "lease_owner")?;
        let epoch: i64 = get(&row, "lease_epoch")?;
        let state: String = get(&row, "state")?;
        if owner.as_deref() != Some(lease.owner.as_str())
            || u64::try_from(epoch).ok() != Some(lease.epoch)
        {
            return Ok(WriteOutcome::LeaseLost);
        }
        Ok(WriteOutcome::StateMismatch {
            actual: rows::run_state(&state, lease.run_id.0)?,
        })
    }
}

async fn counts_on(c: &mut sqlx::PgConnection, plan: PlanId) -> Result<RunCounts> {
    let rs =
        sqlx::query("SELECT state, count(*) AS n FROM host_runs WHERE plan_id = $1 GROUP BY state")
            .bind(plan.0)
            .fetch_all(&mut *c)
            .await
            .map_err(db_err)?;
    let mut counts = RunCounts::default();
    for r in &rs {
        let state: String = get(r, "state")?;
        let n: i64 = get(r, "n")?;
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        match rows::run_state(&state, Uuid::nil())? {
            RunState::Pending => counts.pending = n,
            RunState::Running => counts.running = n,
            RunState::Retrying => counts.retrying = n,
            RunState::Completed => counts.completed = n,
            RunState::Failed => counts.failed = n,
            RunState::Cancelled => counts.cancelled = n,
            RunState::NeedsAttention => counts.needs_attention = n,
        }
    }
    let cleanup: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM host_runs \
         WHERE plan_id = $1 AND state IN ('pending', 'retrying') \
           AND cancel_requested_at IS NOT NULL",
    )
    .bind(plan.0)
    .fetch_one(&mut *c)
    .await
    .map_err(db_err)?;
    counts.cleanup = u32::try_from(cleanup).unwrap_or(u32::MAX);
    Ok(counts)
}

#[async_trait]
impl RunStore for PgStore {
    async fn claim(&self, request: ClaimRequest<'_>) -> Result<Vec<ClaimedRun>> {
        let started = std::time::Instant::now();
        let scan = self.inner.scan_limit;
        // Start with a scan just past the slots; widen it only when cluster
        // capacity defers the first candidates and slots stay unused.
        let mut fresh_limit = request
            .slots
            .saturating_add(16)
            .min(scan.max(request.slots));
        let mut attempt = 0;
        loop {
            match self.claim_once(&request, fresh_limit).await {
                Ok(Some(claimed)) => {
                    self.record_claim(started.elapsed());
                    return Ok(claimed);
                }
                Ok(None) => fresh_limit = fresh_limit.saturating_mul(4).min(scan),
                Err(e) if is_host_busy_conflict(&e) && attempt + 1 < CLAIM_RETRIES => {
                    attempt += 1;
                    tracing::debug!(plan = %request.plan, "claim lost a host race; retrying");
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn renew(
        &self,
        worker: &WorkerId,
        leases: &[Lease],
        ttl: Duration,
    ) -> Result<Vec<Renewal>> {
        let mine: Vec<&Lease> = leases.iter().filter(|l| &l.owner == worker).collect();
        if mine.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Uuid> = mine.iter().map(|l| l.run_id.0).collect();
        let epochs: Vec<i64> = mine
            .iter()
            .map(|l| i64::try_from(l.epoch).unwrap_or(-1))
            .collect();
        let now = self.now_param();
        // Its own pool: a renewal must not wait behind run traffic.
        with_conn!(self, lease_pool, c => {
            let rs = sqlx::query(
                "WITH w AS ( \
                   INSERT INTO workers (id, started_at, heartbeat_at) \
                   VALUES ($1, coalesce($4, now()), coalesce($4, now())) \
                   ON CONFLICT (id) DO UPDATE SET heartbeat_at = EXCLUDED.heartbeat_at) \
                 UPDATE host_runs r \
                 SET lease_expires_at = coalesce($4, now()) + make_interval(secs => $5) \
                 FROM unnest($2::uuid[], $3::bigint[]) AS l(run_id, epoch) \
                 WHERE r.id = l.run_id AND r.lease_epoch = l.epoch AND r.lease_owner = $1 \
                   AND r.state = 'running' \
                 RETURNING r.id, r.lease_expires_at, r.cancel_requested_at IS NOT NULL AS cancel",
            )
            .bind(worker.as_str())
            .bind(&ids)
            .bind(&epochs)
            .bind(now)
            .bind(secs(ttl))
            .fetch_all(&mut *c)
            .await
            .map_err(db_err)?;
            let mut out = Vec::with_capacity(rs.len());
            for r in &rs {
                out.push(Renewal {
                    run_id: RunId(get(r, "id")?),
                    expires_at: get(r, "lease_expires_at")?,
                    cancel_requested: get(r, "cancel")?,
                });
            }
            // In the caller's order.
            let pos: HashMap<RunId, usize> =
                mine.iter().enumerate().map(|(i, l)| (l.run_id, i)).collect();
            out.sort_by_key(|r| pos.get(&r.run_id).copied().unwrap_or(usize::MAX));
            Ok(out)
        })
    }

    async fn transition(&self, lease: &Lease, change: Transition) -> Result<WriteOutcome> {
        let now = self.now_param();
        let ctx = serde_json::to_value(&change.ctx)
            .map_err(|e| Error::Corrupt(format!("run {} ctx: {e}", lease.run_id)))?;
        let event = match change.event {
            Some(e) => Some(e),
            None if change.from != change.to => Some(
                NewEvent::info(
                    EventType::RunTransition,
                    format!("run {} -> {}", change.from, change.to),
                )
                .severity(if change.to == RunState::Failed {
                    Severity::Error
                } else {
                    Severity::Info
                })
                .details(json!({
                    "from": change.from.as_str(), "to": change.to.as_str(),
                    "epoch": lease.epoch, "worker": lease.owner.as_str(),
                    "error": change.error,
                })),
            ),
            None => None,
        };
        let epoch = i64::try_from(lease.epoch).unwrap_or(-1);
        if self.identity.is_none() {
            // The daemon's own writes: group commit with other runs' writes.
            let write = RunWrite {
                run_id: lease.run_id.0,
                from: change.from.as_str(),
                to: change.to.as_str(),
                ctx,
                add_attempts: i32::from(change.count_failure),
                retry_at: change.retry_at,
                error: change.error.clone(),
                now,
                owner: lease.owner.as_str().to_string(),
                epoch,
                event: event.map(|e| EventRow {
                    event_type: e.event_type.as_str().to_string(),
                    severity: e.severity.as_str(),
                    message: e.message,
                    details: e.details,
                    user_id: e.user_id.map(|u| u.0),
                    host_id: e.host_id.map(|h| h.0),
                    plan_id: e.plan_id.map(|p| p.0),
                    run_id: e.run_id.map(|r| r.0),
                }),
            };
            return match self.inner.group_commit.write(write).await? {
                Some(plan) => {
                    self.count_fenced_write();
                    if change.to != RunState::Running {
                        // A slot freed, or the run is claimable again.
                        self.inner.notifier.wake(plan);
                    }
                    Ok(WriteOutcome::Applied)
                }
                None => {
                    let mut c = self.inner.pool.acquire().await.map_err(db_err)?;
                    Self::diagnose(&mut c, lease).await
                }
            };
        }
        with_conn!(self, c => {
            let q = sqlx::query(AssertSqlSafe(TRANSITION_SQL.as_str()))
                .bind(lease.run_id.0)
                .bind(change.from.as_str())
                .bind(change.to.as_str())
                .bind(&ctx)
                .bind(i32::from(change.count_failure))
                .bind(change.retry_at)
                .bind(&change.error)
                .bind(now)
                .bind(lease.owner.as_str())
                .bind(epoch);
            let q = match &event {
                Some(e) => q
                    .bind(Some(e.event_type.as_str()))
                    .bind(e.severity.as_str())
                    .bind(&e.message)
                    .bind(&e.details)
                    .bind(e.user_id.map(|u| u.0))
                    .bind(e.host_id.map(|h| h.0))
                    .bind(e.plan_id.map(|p| p.0))
                    .bind(e.run_id.map(|r| r.0)),
                None => q
                    .bind(None::<&str>)
                    .bind("info")
                    .bind("")
                    .bind(serde_json::Value::Null)
                    .bind(None::<Uuid>)
                    .bind(None::<Uuid>)
                    .bind(None::<Uuid>)
                    .bind(None::<Uuid>),
            };
            let moved = q.fetch_optional(&mut *c).await.map_err(db_err)?;
            match moved {
                Some(row) => {
                    self.count_fenced_write();
                    if change.to != RunState::Running {
                        // A slot freed, or the run is claimable again.
                        self.inner.notifier.wake(PlanId(get(&row, "plan_id")?));
                    }
                    Ok(WriteOutcome::Applied)
                }
                None => Self::diagnose(c, lease).await,
            }
        })
    }

    async fn release(&self, lease: &Lease, ctx: RunCtx) -> Result<WriteOutcome> {
        let now = self.now_param();
        let ctx = serde_json::to_value(&ctx)
            .map_err(|e| Error::Corrupt(format!("run {} ctx: {e}", lease.run_id)))?;
        let epoch = i64::try_from(lease.epoch).unwrap_or(-1);
        with_conn!(self, c => {
            let moved = sqlx::query(
                "WITH moved AS ( \
                   UPDATE host_runs \
                   SET state = 'retrying', run_at = coalesce($5, now()), lease_owner = NULL, \
                       lease_expires_at = NULL, ctx = $4, updated_at = coalesce($5, now()) \
                   WHERE id = $1 AND state = 'running' AND lease_owner = $2 AND lease_epoch = $3 \
                   RETURNING id, plan_id, host_id) \
                 INSERT INTO system_events (event_type, severity, message, details, host_id, \
                   plan_id, run_id, created_at) \
                 SELECT 'run_released', 'info', 'run released at a safe point by ' || $2, \
                        jsonb_build_object('epoch', $3, 'worker', $2::text), host_id, plan_id, id, \
                        coalesce($5, now()) \
                 FROM moved RETURNING plan_id",
            )
            .bind(lease.run_id.0)
            .bind(lease.owner.as_str())
            .bind(epoch)
            .bind(&ctx)
            .bind(now)
            .fetch_optional(&mut *c)
            .await
            .map_err(db_err)?;
            match moved {
                Some(row) => {
                    self.count_fenced_write();
                    self.inner.notifier.wake(PlanId(get(&row, "plan_id")?));
                    Ok(WriteOutcome::Applied)
                }
                None => Self::diagnose(c, lease).await,
            }
        })
    }

    async fn release_all(&self, worker: &WorkerId) -> Result<u64> {
        let now = self.now_param();
        with_conn!(self, c => {
            let rows = sqlx::query(
                "WITH moved AS ( \
                   UPDATE host_runs \
                   SET state = 'retrying', run_at = coalesce($2, now()), lease_owner = NULL, \
                       lease_expires_at = NULL, updated_at = coalesce($2, now()) \
                   WHERE lease_owner = $1 AND state = 'running' \
                   RETURNING id, plan_id, host_id, lease_epoch), \
                 ev AS ( \
                   INSERT INTO system_events (event_type, severity, message, details, host_id, \
                     plan_id, run_id, created_at) \
                   SELECT 'run_released', 'info', 'run released at shutdown by ' || $1, \
                          jsonb_build_object('epoch', lease_epoch, 'worker', $1::text), host_id, \
                          plan_id, id, coalesce($2, now()) \
                   FROM moved) \
                 SELECT plan_id, count(*) AS n FROM moved GROUP BY plan_id",
            )
            .bind(worker.as_str())
            .bind(now)
            .fetch_all(&mut *c)
            .await
            .map_err(db_err)?;
            let mut total = 0u64;
            for r in &rows {
                let n: i64 = get(r, "n")?;
                total += u64::try_from(n).unwrap_or(0);
                self.inner.notifier.wake(PlanId(get(r, "plan_id")?));
            }
            Ok(total)
        })
    }

    async fn request_cancel(&self, run: RunId) -> Result<CancelOutcome> {
        let now = self.now_param();
        let mut tx = self.begin().await?;
        let row = sqlx::query(
            "SELECT state, plan_id, host_id, ctx, cancel_requested_at IS NOT NULL AS asked \
             FROM host_runs WHERE id = $1 FOR NO KEY UPDATE",
        )
        .bind(run.0)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?
        .ok_or_else(|| Error::not_found(format!("run {run}")))?;
        let state: String = get(&row, "state")?;
        let state = rows::run_state(&state, run.0)?;
        let plan = PlanId(get(&row, "plan_id")?);
        let host = HostId(get(&row, "host_id")?);
        let ctx: RunCtx = serde_json::from_value(get(&row, "ctx")?)
            .map_err(|e| Error::Corrupt(format!("ctx of run {run}: {e}")))?;
        let already: bool = get(&row, "asked")?;
        let outcome = match state {
            s if s.is_final() => CancelOutcome::AlreadyFinal,
            from if from != RunState::Running && ctx.checkpoint.needs_cleanup() => {
                // The cleanup rule: never finalised here; a worker claims it
                // now, leaves maintenance mode, settles its jobs, then ends it.
                sqlx::query(
                    "UPDATE host_runs SET cancel_requested_at = coalesce(cancel_requested_at, \
                     coalesce($2, now())), run_at = least(run_at, coalesce($2, now())), \
                     updated_at = coalesce($2, now()) WHERE id = $1",
                )
                .bind(run.0)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
                if !already {
                    crate::events::insert_event(
                        &mut tx,
                        &NewEvent::info(
                            EventType::RunTransition,
                            "cancel requested: the run holds maintenance mode or BMC jobs; a \
                             worker cleans up first",
                        )
                        .for_run(run, plan, host)
                        .details(json!({"from": from, "cleanup": true})),
                        now,
                    )
                    .await?;
                }
                CancelOutcome::Requested
            }
            RunState::Running => {
                sqlx::query(
                    "UPDATE host_runs SET cancel_requested_at = coalesce(cancel_requested_at, \
                     coalesce($2, now())) WHERE id = $1",
                )
                .bind(run.0)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
                crate::events::insert_event(
                    &mut tx,
                    &NewEvent::info(
                        EventType::Other("run_cancel_requested".into()),
                        "cancel requested; the run stops at its next safe point",
                    )
                    .for_run(run, plan, host),
                    now,
                )
                .await?;
                CancelOutcome::Requested
            }
            from => {
                sqlx::query(
                    "UPDATE host_runs SET state = 'cancelled', completed_at = coalesce($2, now()), \
                     updated_at = coalesce($2, now()), cancel_requested_at = coalesce($2, now()) \
                     WHERE id = $1",
                )
                .bind(run.0)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
                crate::events::insert_event(
                    &mut tx,
                    &NewEvent::info(EventType::RunTransition, format!("run {from} -> cancelled"))
                        .for_run(run, plan, host)
                        .details(json!({"from": from.as_str(), "to": "cancelled", "reason": "cancel requested"})),
                    now,
                )
                .await?;
                CancelOutcome::Cancelled
            }
        };
        tx.commit().await.map_err(db_err)?;
        if outcome == CancelOutcome::Cancelled {
            self.inner.notifier.wake(plan);
        }
        Ok(outcome)
    }

    async fn get_run(&self, id: RunId) -> Result<HostRun> {
        let sql = format!("SELECT {RUN_COLS} FROM host_runs WHERE id = $1");
        with_conn!(self, c => {
            let row = sqlx::query(AssertSqlSafe(sql))
                .bind(id.0)
                .fetch_optional(&mut *c)
                .await
                .map_err(db_err)?
                .ok_or_else(|| Error::not_found(format!("run {id}")))?;
            rows::run(&row)
        })
    }

    async fn list_runs(&self, plan: PlanId) -> Result<Vec<HostRun>> {
        let sql = format!("SELECT {RUN_COLS} FROM host_runs WHERE plan_id = $1 ORDER BY id");
        with_conn!(self, c => {
            crate::plans::ensure_plan(&mut *c, plan).await?;
            let rs = sqlx::query(AssertSqlSafe(sql))
                .bind(plan.0)
                .fetch_all(&mut *c)
                .await
                .map_err(db_err)?;
            rs.iter().map(rows::run).collect::<Result<Vec<_>>>()
        })
    }

    async fn run_counts(&self, plan: PlanId) -> Result<RunCounts> {
        with_conn!(self, c => {
            crate::plans::ensure_plan(&mut *c, plan).await?;
            counts_on(c, plan).await
        })
    }
}
