//! The store conformance suite: one call runs every case against a `Store`
//! implementation, each case on a fresh, empty store whose time is a
//! [`ManualClock`]. The memory and PostgreSQL stores both run it, which is
//! how they are kept to the same semantics.
//!
//! ```ignore
//! firmflow_core::store::conformance::run_all(&MyFactory).await;
//! ```

// Test support: a failed expectation here is a failed test, so it panics.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::*;
use crate::policy::StandardAdmission;
use crate::{Clock, ManualClock};
use std::sync::Arc;

/// Builds fresh, empty stores for the suite.
#[async_trait]
pub trait StoreFactory: Send + Sync {
    /// The store type.
    type Store: Store + 'static;
    /// A new empty store reading time from `clock`.
    async fn fresh(&self, clock: Arc<ManualClock>) -> Self::Store;
}

/// The suite's start time.
pub fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-06-01T08:00:00Z")
        .map(|d| d.with_timezone(&Utc))
        .unwrap_or_default()
}

const TTL: Duration = Duration::from_secs(60);
const DELAY: Duration = Duration::from_secs(30);

type Case<S> = for<'a> fn(
    &'a S,
    &'a ManualClock,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>>;

macro_rules! cases {
    ($($name:ident),* $(,)?) => {
        fn all_cases<S: Store + 'static>() -> Vec<(&'static str, Case<S>)> {
            vec![$((stringify!($name), |s, c| Box::pin($name(s, c)))),*]
        }
    };
}

cases!(
    hosts_and_credentials,
    remove_host_waits_for_unfinished_plans,
    plan_creation_is_idempotent_and_creates_runs,
    plan_status_is_compare_and_set,
    draft_plan_admits_nothing,
    active_plans_include_paused_and_busy_plans,
    claim_takes_lease_and_writes_event,
    transition_is_compare_and_set,
    stale_epoch_writes_nothing,
    lease_expiry_reclaim_counts_resume_not_attempt,
    resume_cap_fails_the_run,
    renew_returns_only_held_leases,
    release_keeps_attempts_and_is_reclaimable,
    release_all_releases_a_workers_runs,
    one_running_run_per_host_across_plans,
    max_concurrent_and_priority_order,
    min_hosts_online_per_cluster_across_plans,
    live_cluster_state_is_honoured,
    failure_budget_halts_admission,
    window_gates_admission,
    retry_waits_for_run_at_and_counts_attempts,
    cancel_pending_and_running,
    cancel_of_a_run_holding_maintenance_mode_leaves_it_to_a_worker,
    resume_cap_with_cleanup_pending_hands_out_then_parks,
    events_are_ordered_and_complete,
    events_filter_by_type_and_time,
    job_queue_claim_retry_backoff_max_attempts,
    job_lock_expiry_is_reclaimed,
    config_and_sessions,
);

/// Runs every case, each on a fresh store; panics naming the failing case.
pub async fn run_all<F: StoreFactory>(factory: &F) {
    for (name, case) in all_cases::<F::Store>() {
        let clock = Arc::new(ManualClock::new(t0()));
        let store = factory.fresh(clock.clone()).await;
        let fut = case(&store, &clock);
        tracing::info!(case = name, "conformance case");
        // Name the case in any panic message.
        struct Guard(&'static str, bool);
        impl Drop for Guard {
            fn drop(&mut self) {
                if !self.1 {
                    eprintln!("store conformance case failed: {}", self.0);
                }
            }
        }
        let mut g = Guard(name, false);
        fut.await;
        g.1 = true;
    }
}

// ---------- helpers ----------

async fn host<S: Store>(s: &S, name: &str, cluster: Option<&str>) -> Host {
    let mut h = NewHost::idrac(
        format!("{name}.example.net"),
        format!("10.0.0.{}", name.len()),
    );
    if let Some(c) = cluster {
        h = h.in_cluster("https://vc.example.net", c, format!("host-{name}"));
    }
    s.add_host(h).await.expect("add host")
}

fn plan_for(hosts: &[(&Host, i32)], max_concurrent: u32, min_online: u32) -> NewPlan {
    let mut policy = Policy::new(UpdateMode::SpecificPackage);
    policy.max_concurrent = max_concurrent;
    policy.min_hosts_online = min_online;
    NewPlan {
        name: "conformance".into(),
        policy,
        maintenance_window: None,
        approval_required: false,
        targets: hosts
            .iter()
            .map(|(h, p)| PlanTarget {
                host_id: h.id,
                priority: *p,
                conditions: serde_json::json!({}),
            })
            .collect(),
        artifacts: vec![],
        created_by: None,
        idempotency_key: None,
    }
}

async fn running_plan<S: Store>(s: &S, new: NewPlan) -> Plan {
    let p = s.create_plan(new).await.expect("create plan").plan;
    assert!(
        s.set_plan_status(p.id, PlanStatus::Draft, PlanStatus::Running, None, None)
            .await
            .expect("start")
    );
    s.get_plan(p.id).await.expect("get plan")
}

fn worker(n: &str) -> WorkerId {
    WorkerId(format!("conformance/{n}"))
}

async fn claim<S: Store>(s: &S, w: &WorkerId, plan: PlanId, slots: usize) -> Vec<ClaimedRun> {
    claim_live(s, w, plan, slots, &BTreeMap::new()).await
}

async fn claim_live<S: Store>(
    s: &S,
    w: &WorkerId,
    plan: PlanId,
    slots: usize,
    live: &BTreeMap<ClusterKey, BTreeSet<String>>,
) -> Vec<ClaimedRun> {
    s.claim(ClaimRequest {
        worker: w,
        plan,
        slots,
        lease_ttl: TTL,
        reclaim_delay: DELAY,
        live_online: live,
        admission: &StandardAdmission,
    })
    .await
    .expect("claim")
}

fn ctx_msg(msg: &str) -> RunCtx {
    let mut c = RunCtx::default();
    c.progress.message = msg.to_string();
    c
}

async fn finish<S: Store>(s: &S, c: &ClaimedRun, to: RunState) {
    let o = s
        .transition(&c.lease, Transition::to(to, ctx_msg("done")))
        .await
        .expect("transition");
    assert_eq!(o, WriteOutcome::Applied);
}

// ---------- cases ----------

async fn hosts_and_credentials<S: Store>(s: &S, _c: &ManualClock) {
    let a = host(s, "a", Some("c1")).await;
    let b = host(s, "b", None).await;
    assert_eq!(s.get_host(a.id).await.expect("get").fqdn, "a.example.net");
    assert_eq!(s.list_hosts().await.expect("list").len(), 2);
    assert!(matches!(
        s.get_host(HostId::new()).await,
        Err(Error::NotFound { .. })
    ));
    let mut b2 = b.clone();
    b2.service_tag = Some("ABC1234".into());
    s.update_host(&b2).await.expect("update");
    assert_eq!(
        s.get_host(b.id).await.expect("get").service_tag.as_deref(),
        Some("ABC1234")
    );
    s.add_credential(Some(a.id), CredentialKind::Idrac, "vault:kv/a")
        .await
        .expect("cred");
    s.add_credential(None, CredentialKind::Idrac, "env:IDRAC")
        .await
        .expect("cred");
    s.add_credential(None, CredentialKind::Vcenter, "env:VC")
        .await
        .expect("cred");
    let creds = s
        .credentials_for(a.id, CredentialKind::Idrac)
        .await
        .expect("creds");
    let paths: Vec<_> = creds.iter().map(|c| c.vault_path.as_str()).collect();
    assert_eq!(paths, vec!["vault:kv/a", "env:IDRAC"], "host's own first");
}

async fn remove_host_waits_for_unfinished_plans<S: Store>(s: &S, _c: &ManualClock) {
    let a = host(s, "a", Some("c1")).await;
    let b = host(s, "b", Some("c1")).await;
    s.add_credential(Some(a.id), CredentialKind::Idrac, "env:A")
        .await
        .expect("cred");
    let p = s
        .create_plan(plan_for(&[(&a, 0)], 1, 0))
        .await
        .expect("create")
        .plan;
    // A draft plan targets it: refused, nothing removed.
    assert!(matches!(s.remove_host(a.id).await, Err(Error::Conflict(_))));
    assert!(s.get_host(a.id).await.is_ok());
    // A host no plan targets goes at once.
    s.remove_host(b.id).await.expect("remove b");
    assert!(matches!(
        s.get_host(b.id).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        s.remove_host(b.id).await,
        Err(Error::NotFound { .. })
    ));
    // Once the plan is over, the host and its credentials may go.
    assert!(
        s.set_plan_status(p.id, PlanStatus::Draft, PlanStatus::Cancelled, None, None)
            .await
            .expect("cancel")
    );
    s.remove_host(a.id).await.expect("remove a");
    assert!(s.list_hosts().await.expect("list").is_empty());
    let c = host(s, "c", None).await;
    let creds = s
        .credentials_for(c.id, CredentialKind::Idrac)
        .await
        .expect("creds");
    assert!(creds.is_empty(), "a's credential went with it: {creds:?}");
}

async fn plan_creation_is_idempotent_and_creates_runs<S: Store>(s: &S, _c: &ManualClock) {
    let a = host(s, "a", None).await;
    let b = host(s, "b", None).await;
    let mut np = plan_for(&[(&a, 1), (&b, 2)], 1, 0);
    np.idempotency_key = Some("req-42".into());
    let first = s.create_plan(np.clone()).await.expect("create");
    assert!(first.created);
    assert_eq!(first.plan.status, PlanStatus::Draft);
    let again = s.create_plan(np).await.expect("create again");
    assert!(!again.created);
    assert_eq!(again.plan.id, first.plan.id);
    assert_eq!(s.list_plans().await.expect("plans").len(), 1);
    let runs = s.list_runs(first.plan.id).await.expect("runs");
    assert_eq!(runs.len(), 2);
    assert!(
        runs.iter()
            .all(|r| r.state == RunState::Pending && r.attempts == 0)
    );
    assert!(runs.iter().all(|r| r.max_attempts == 3));
    let targets = s.plan_targets(first.plan.id).await.expect("targets");
    assert_eq!(targets[0].priority, 2, "targets by priority descending");
    let counts = s.run_counts(first.plan.id).await.expect("counts");
    assert_eq!(counts.pending, 2);
    // A target host that does not exist is refused and nothing is created.
    let mut bad = plan_for(&[(&a, 0)], 1, 0);
    bad.targets[0].host_id = HostId::new();
    assert!(s.create_plan(bad).await.is_err());
    assert_eq!(s.list_plans().await.expect("plans").len(), 1);
}

async fn plan_status_is_compare_and_set<S: Store>(s: &S, _c: &ManualClock) {
    let a = host(s, "a", None).await;
    let p = s
        .create_plan(plan_for(&[(&a, 0)], 1, 0))
        .await
        .expect("create")
        .plan;
    let user = UserId::new();
    assert!(
        s.set_plan_status(
            p.id,
            PlanStatus::Draft,
            PlanStatus::Approved,
            None,
            Some(user)
        )
        .await
        .expect("approve")
    );
    assert!(
        !s.set_plan_status(p.id, PlanStatus::Draft, PlanStatus::Running, None, None)
            .await
            .expect("stale from")
    );
    let got = s.get_plan(p.id).await.expect("get");
    assert_eq!(got.status, PlanStatus::Approved);
    assert_eq!(got.approved_by, Some(user));
    let ev = s
        .list_events(&EventFilter {
            plan_id: Some(p.id),
            ..Default::default()
        })
        .await
        .expect("events");
    assert!(
        ev.iter()
            .any(|e| e.event.event_type == EventType::PlanStatusChanged),
        "status change is audited"
    );
    assert!(
        s.active_plans().await.expect("active").is_empty(),
        "approved is not active"
    );
}

async fn draft_plan_admits_nothing<S: Store>(s: &S, _c: &ManualClock) {
    let a = host(s, "a", None).await;
    let p = s
        .create_plan(plan_for(&[(&a, 0)], 1, 0))
        .await
        .expect("create")
        .plan;
    assert!(claim(s, &worker("w1"), p.id, 5).await.is_empty());
}

async fn active_plans_include_paused_and_busy_plans<S: Store>(s: &S, _c: &ManualClock) {
    let a = host(s, "a", None).await;
    let b = host(s, "b", None).await;
    let p1 = running_plan(s, plan_for(&[(&a, 0)], 1, 0)).await;
    let p2 = running_plan(s, plan_for(&[(&b, 0)], 1, 0)).await;
    let _draft = s
        .create_plan(plan_for(&[(&a, 0)], 1, 0))
        .await
        .expect("create");
    let ids = |v: Vec<Plan>| -> Vec<PlanId> { v.into_iter().map(|p| p.id).collect() };
    assert_eq!(
        ids(s.active_plans().await.expect("active")),
        vec![p1.id, p2.id]
    );
    let c = claim(s, &worker("w"), p1.id, 1).await.remove(0);
    assert!(
        s.set_plan_status(
            p1.id,
            PlanStatus::Running,
            PlanStatus::Cancelled,
            None,
            None
        )
        .await
        .expect("cancel")
    );
    assert!(
        s.set_plan_status(p2.id, PlanStatus::Running, PlanStatus::Paused, None, None)
            .await
            .expect("pause")
    );
    assert_eq!(
        ids(s.active_plans().await.expect("active")),
        vec![p1.id, p2.id],
        "cancelled with a running run, and paused"
    );
    finish(s, &c, RunState::Cancelled).await;
    assert_eq!(ids(s.active_plans().await.expect("active")), vec![p2.id]);
}

async fn claim_takes_lease_and_writes_event<S: Store>(s: &S, clock: &ManualClock) {
    let a = host(s, "a", None).await;
    let p = running_plan(s, plan_for(&[(&a, 0)], 5, 0)).await;
    let w = worker("w1");
    let got = claim(s, &w, p.id, 5).await;
    assert_eq!(got.len(), 1);
    let c = &got[0];
    assert!(!c.resumed);
    assert_eq!(c.lease.owner, w);
    assert_eq!(c.run.state, RunState::Running);
    assert_eq!(c.run.lease_epoch, c.lease.epoch);
    assert_eq!(
        c.run.lease_expires_at,
        Some(clock.now() + chrono::Duration::seconds(60))
    );
    assert_eq!(c.run.started_at, Some(clock.now()));
    assert!(claim(s, &worker("w2"), p.id, 5).await.is_empty(), "held");
    let ev = s
        .list_events(&EventFilter {
            run_id: Some(c.run.id),
            ..Default::default()
        })
        .await
        .expect("events");
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].event.event_type, EventType::RunClaimed);
}

async fn transition_is_compare_and_set<S: Store>(s: &S, _c: &ManualClock) {
    let a = host(s, "a", None).await;
    let p = running_plan(s, plan_for(&[(&a, 0)], 5, 0)).await;
    let c = claim(s, &worker("w1"), p.id, 1).await.remove(0);
    // Checkpoint.
    let o = s
        .transition(&c.lease, Transition::checkpoint(ctx_msg("step 1")))
        .await
        .expect("cp");
    assert_eq!(o, WriteOutcome::Applied);
    assert_eq!(
        s.get_run(c.run.id).await.expect("run").ctx.progress.message,
        "step 1"
    );
    assert_eq!(
        s.list_runs(p.id).await.expect("runs")[0]
            .ctx
            .progress
            .message,
        "step 1",
        "list_runs returns the ctx too"
    );
    // Wrong `from`.
    let mut t = Transition::to(RunState::Completed, ctx_msg("x"));
    t.from = RunState::Pending;
    let o = s.transition(&c.lease, t).await.expect("t");
    assert_eq!(
        o,
        WriteOutcome::StateMismatch {
            actual: RunState::Running
        }
    );
    assert_eq!(
        s.get_run(c.run.id).await.expect("run").ctx.progress.message,
        "step 1",
        "mismatch writes nothing"
    );
    finish(s, &c, RunState::Completed).await;
    let r = s.get_run(c.run.id).await.expect("run");
    assert_eq!(r.state, RunState::Completed);
    assert!(r.completed_at.is_some());
    assert!(r.lease_owner.is_none() && r.lease_expires_at.is_none());
    // After completion the old lease writes nothing.
    let o = s
        .transition(&c.lease, Transition::checkpoint(ctx_msg("late")))
        .await
        .expect("late");
    assert_ne!(o, WriteOutcome::Applied);
}

async fn stale_epoch_writes_nothing<S: Store>(s: &S, clock: &ManualClock) {
    let a = host(s, "a", None).await;
    let p = running_plan(s, plan_for(&[(&a, 0)], 5, 0)).await;
    let old = claim(s, &worker("w1"), p.id, 1).await.remove(0);
    clock.advance(TTL + DELAY + Duration::from_secs(1));
    let new = claim(s, &worker("w2"), p.id, 1).await.remove(0);
    assert!(new.resumed);
    assert!(new.lease.epoch > old.lease.epoch);
    for t in [
        Transition::checkpoint(ctx_msg("stale")),
        Transition::to(RunState::Completed, ctx_msg("stale")),
    ] {
        assert_eq!(
            s.transition(&old.lease, t).await.expect("t"),
            WriteOutcome::LeaseLost
        );
    }
    assert_eq!(
        s.release(&old.lease, ctx_msg("stale")).await.expect("r"),
        WriteOutcome::LeaseLost
    );
    // A forged lease with the right epoch but another owner is refused too.
    let forged = Lease {
        owner: worker("w1"),
        ..new.lease.clone()
    };
    assert_eq!(
        s.transition(&forged, Transition::checkpoint(ctx_msg("forged")))
            .await
            .expect("t"),
        WriteOutcome::LeaseLost
    );
    let r = s.get_run(new.run.id).await.expect("run");
    assert_eq!(r.state, RunState::Running);
    assert_ne!(r.ctx.progress.message, "stale");
    assert_ne!(r.ctx.progress.message, "forged");
    finish(s, &new, RunState::Completed).await;
}

async fn lease_expiry_reclaim_counts_resume_not_attempt<S: Store>(s: &S, clock: &ManualClock) {
    let a = host(s, "a", None).await;
    let p = running_plan(s, plan_for(&[(&a, 0)], 1, 0)).await;
    let first = claim(s, &worker("w1"), p.id, 1).await.remove(0);
    s.transition(&first.lease, Transition::checkpoint(ctx_msg("job JID_1")))
        .await
        .expect("cp");
    // Expired but inside the reclaim delay: not yet.
    clock.advance(TTL + Duration::from_secs(5));
    assert!(claim(s, &worker("w2"), p.id, 1).await.is_empty());
    clock.advance(DELAY);
    let got = claim(s, &worker("w2"), p.id, 1).await;
    assert_eq!(got.len(), 1);
    let r = &got[0].run;
    assert!(got[0].resumed);
    assert_eq!(r.resumes, 1);
    assert_eq!(r.attempts, 0, "a reclaim is not a failed attempt");
    assert_eq!(r.ctx.progress.message, "job JID_1", "checkpoint survives");
    assert_eq!(r.started_at, first.run.started_at);
    let ev = s
        .list_events(&EventFilter {
            run_id: Some(r.id),
            ..Default::default()
        })
        .await
        .expect("ev");
    assert!(
        ev.iter()
            .any(|e| e.event.event_type == EventType::RunReclaimed)
    );
}

async fn resume_cap_fails_the_run<S: Store>(s: &S, clock: &ManualClock) {
    let a = host(s, "a", None).await;
    let mut np = plan_for(&[(&a, 0)], 1, 0);
    np.policy.max_resumes = Some(2);
    let p = running_plan(s, np).await;
    claim(s, &worker("w0"), p.id, 1).await;
    for i in 1..=2 {
        clock.advance(TTL + DELAY + Duration::from_secs(1));
        let got = claim(s, &worker(&format!("w{i}")), p.id, 1).await;
        assert_eq!(got.len(), 1, "resume {i}");
        assert_eq!(got[0].run.resumes, i);
    }
    clock.advance(TTL + DELAY + Duration::from_secs(1));
    assert!(claim(s, &worker("w9"), p.id, 1).await.is_empty());
    let r = &s.list_runs(p.id).await.expect("runs")[0];
    assert_eq!(r.state, RunState::Failed);
    assert!(r.lease_owner.is_none());
    assert!(r.last_error.as_deref().unwrap_or("").contains("resume"));
}

async fn renew_returns_only_held_leases<S: Store>(s: &S, clock: &ManualClock) {
    let a = host(s, "a", None).await;
    let b = host(s, "b", None).await;
    let p = running_plan(s, plan_for(&[(&a, 0), (&b, 0)], 5, 0)).await;
    let w1 = worker("w1");
    let got = claim(s, &w1, p.id, 2).await;
    assert_eq!(got.len(), 2);
    let leases: Vec<Lease> = got.iter().map(|c| c.lease.clone()).collect();
    clock.advance(Duration::from_secs(30));
    let r = s.renew(&w1, &leases, TTL).await.expect("renew");
    assert_eq!(r.len(), 2);
    assert!(
        r.iter()
            .all(|x| x.expires_at == clock.now() + chrono::Duration::seconds(60))
    );
    // Let the second lease lapse and be taken over; the first keeps renewing.
    clock.advance(Duration::from_secs(50));
    s.renew(&w1, &leases[..1], TTL).await.expect("renew");
    clock.advance(Duration::from_secs(45));
    let taken = claim(s, &worker("w2"), p.id, 5).await;
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].run.id, leases[1].run_id);
    let r = s.renew(&w1, &leases, TTL).await.expect("renew");
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].run_id, leases[0].run_id);
    // Another worker cannot renew w1's lease.
    assert!(
        s.renew(&worker("w2"), &leases[..1], TTL)
            .await
            .expect("renew")
            .is_empty()
    );
    // The same worker taking its own expired run back gets a new epoch; the
    // old lease no longer renews.
    clock.advance(TTL + DELAY + Duration::from_secs(1));
    let mine = claim(s, &w1, p.id, 5).await;
    let retaken = mine
        .iter()
        .find(|c| c.run.id == leases[0].run_id)
        .expect("own run reclaimed");
    assert!(retaken.lease.epoch > leases[0].epoch);
    assert!(
        s.renew(&w1, &leases[..1], TTL)
            .await
            .expect("renew")
            .is_empty()
    );
    assert_eq!(
        s.renew(&w1, std::slice::from_ref(&retaken.lease), TTL)
            .await
            .expect("renew")
            .len(),
        1
    );
}

async fn release_keeps_attempts_and_is_reclaimable<S: Store>(s: &S, _c: &ManualClock) {
    let a = host(s, "a", None).await;
    let p = running_plan(s, plan_for(&[(&a, 0)], 1, 0)).await;
    let c = claim(s, &worker("w1"), p.id, 1).await.remove(0);
    let o = s
        .release(&c.lease, ctx_msg("safe point"))
        .await
        .expect("release");
    assert_eq!(o, WriteOutcome::Applied);
    let r = s.get_run(c.run.id).await.expect("run");
    assert_eq!(r.state, RunState::Retrying);
    assert_eq!(r.attempts, 0);
    assert!(r.lease_owner.is_none());
    assert_eq!(r.ctx.progress.message, "safe point");
    let again = claim(s, &worker("w2"), p.id, 1).await;
    assert_eq!(again.len(), 1, "released run is due at once");
    assert!(!again[0].resumed, "a release is not a lost lease");
    assert_eq!(again[0].run.resumes, 0);
}

async fn release_all_releases_a_workers_runs<S: Store>(s: &S, _c: &ManualClock) {
    let hs = [
        host(s, "a", None).await,
        host(s, "b", None).await,
        host(s, "c", None).await,
    ];
    let p = running_plan(s, plan_for(&[(&hs[0], 0), (&hs[1], 0), (&hs[2], 0)], 5, 0)).await;
    claim(s, &worker("w1"), p.id, 2).await;
    let other = claim(s, &worker("w2"), p.id, 2).await;
    assert_eq!(other.len(), 1);
    assert_eq!(s.release_all(&worker("w1")).await.expect("release"), 2);
    let counts = s.run_counts(p.id).await.expect("counts");
    assert_eq!((counts.running, counts.retrying), (1, 2));
}

async fn one_running_run_per_host_across_plans<S: Store>(s: &S, _c: &ManualClock) {
    let a = host(s, "a", None).await;
    let p1 = running_plan(s, plan_for(&[(&a, 0)], 5, 0)).await;
    let p2 = running_plan(s, plan_for(&[(&a, 0)], 5, 0)).await;
    let c1 = claim(s, &worker("w1"), p1.id, 1).await;
    assert_eq!(c1.len(), 1);
    assert!(
        claim(s, &worker("w2"), p2.id, 1).await.is_empty(),
        "host busy in another plan"
    );
    finish(s, &c1[0], RunState::Completed).await;
    assert_eq!(claim(s, &worker("w2"), p2.id, 1).await.len(), 1);
}

async fn max_concurrent_and_priority_order<S: Store>(s: &S, _c: &ManualClock) {
    let mut hs = Vec::new();
    for (i, n) in ["a", "b", "c", "d", "e"].iter().enumerate() {
        hs.push((host(s, n, None).await, i as i32));
    }
    let targets: Vec<(&Host, i32)> = hs.iter().map(|(h, p)| (h, *p)).collect();
    let p = running_plan(s, plan_for(&targets, 2, 0)).await;
    let w = worker("w1");
    let first = claim(s, &w, p.id, 10).await;
    let names = |cs: &[ClaimedRun]| -> Vec<HostId> { cs.iter().map(|c| c.run.host_id).collect() };
    assert_eq!(
        names(&first),
        vec![hs[4].0.id, hs[3].0.id],
        "highest priority first"
    );
    assert!(
        claim(s, &w, p.id, 10).await.is_empty(),
        "maxConcurrent=2 reached"
    );
    finish(s, &first[0], RunState::Completed).await;
    let next = claim(s, &w, p.id, 10).await;
    assert_eq!(names(&next), vec![hs[2].0.id]);
}

async fn min_hosts_online_per_cluster_across_plans<S: Store>(s: &S, _c: &ManualClock) {
    // Cluster c1 has 3 hosts; keep 2 online. Two plans each target parts of it.
    let a = host(s, "a", Some("c1")).await;
    let b = host(s, "b", Some("c1")).await;
    let c = host(s, "c", Some("c1")).await;
    let p1 = running_plan(s, plan_for(&[(&a, 0), (&b, 0)], 5, 2)).await;
    let p2 = running_plan(s, plan_for(&[(&c, 0)], 5, 2)).await;
    let got = claim(s, &worker("w1"), p1.id, 5).await;
    assert_eq!(got.len(), 1, "only one of three may go down");
    assert!(
        claim(s, &worker("w2"), p2.id, 5).await.is_empty(),
        "the other plan sees the cluster's running run"
    );
    finish(s, &got[0], RunState::Completed).await;
    assert_eq!(claim(s, &worker("w2"), p2.id, 5).await.len(), 1);
}

async fn live_cluster_state_is_honoured<S: Store>(s: &S, _c: &ManualClock) {
    let a = host(s, "a", Some("c1")).await;
    let _b = host(s, "b", Some("c1")).await;
    let p = running_plan(s, plan_for(&[(&a, 0)], 5, 1)).await;
    let key = a.cluster_key().expect("cluster");
    // vCenter says b is already in maintenance: a must stay up.
    let mut live = BTreeMap::new();
    live.insert(key.clone(), BTreeSet::from(["host-a".to_string()]));
    assert!(
        claim_live(s, &worker("w1"), p.id, 5, &live)
            .await
            .is_empty()
    );
    // b came back, and a third host unknown to firmflow is online too.
    live.insert(
        key,
        BTreeSet::from(["host-a".to_string(), "host-b".into(), "host-x".into()]),
    );
    assert_eq!(claim_live(s, &worker("w1"), p.id, 5, &live).await.len(), 1);
}

async fn failure_budget_halts_admission<S: Store>(s: &S, _c: &ManualClock) {
    let hs = [
        host(s, "a", None).await,
        host(s, "b", None).await,
        host(s, "c", None).await,
    ];
    let mut np = plan_for(&[(&hs[0], 3), (&hs[1], 2), (&hs[2], 1)], 1, 0);
    np.policy.failure_budget = Some(FailureBudget {
        max_failures: Some(1),
        max_failure_percent: None,
    });
    let p = running_plan(s, np).await;
    let c = claim(s, &worker("w1"), p.id, 5).await.remove(0);
    finish(s, &c, RunState::Failed).await;
    assert!(claim(s, &worker("w1"), p.id, 5).await.is_empty());
    assert_eq!(s.run_counts(p.id).await.expect("counts").pending, 2);
}

async fn window_gates_admission<S: Store>(s: &S, clock: &ManualClock) {
    let a = host(s, "a", None).await;
    let mut np = plan_for(&[(&a, 0)], 1, 0);
    np.policy.expected_host_duration_secs = Some(1800);
    np.maintenance_window = Some(MaintenanceWindow {
        start: t0() + chrono::Duration::hours(2),
        end: t0() + chrono::Duration::hours(4),
    });
    let p = running_plan(s, np).await;
    assert!(
        claim(s, &worker("w"), p.id, 1).await.is_empty(),
        "before the window"
    );
    clock.advance(Duration::from_secs(3 * 3600 + 40 * 60));
    assert!(
        claim(s, &worker("w"), p.id, 1).await.is_empty(),
        "20 minutes left, a run needs 30"
    );
    clock.set(t0() + chrono::Duration::hours(2));
    assert_eq!(claim(s, &worker("w"), p.id, 1).await.len(), 1);
}

async fn retry_waits_for_run_at_and_counts_attempts<S: Store>(s: &S, clock: &ManualClock) {
    let a = host(s, "a", None).await;
    let p = running_plan(s, plan_for(&[(&a, 0)], 1, 0)).await;
    let c = claim(s, &worker("w1"), p.id, 1).await.remove(0);
    let mut t = Transition::to(RunState::Retrying, ctx_msg("busy"));
    t.count_failure = true;
    t.retry_at = Some(clock.now() + chrono::Duration::seconds(120));
    t.error = Some("BMC busy".into());
    assert_eq!(
        s.transition(&c.lease, t).await.expect("t"),
        WriteOutcome::Applied
    );
    let r = s.get_run(c.run.id).await.expect("run");
    assert_eq!((r.state, r.attempts), (RunState::Retrying, 1));
    assert_eq!(r.last_error.as_deref(), Some("BMC busy"));
    assert!(claim(s, &worker("w1"), p.id, 1).await.is_empty(), "backoff");
    clock.advance(Duration::from_secs(121));
    let again = claim(s, &worker("w1"), p.id, 1).await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].run.attempts, 1);
    assert!(again[0].lease.epoch > c.lease.epoch);
}

async fn cancel_pending_and_running<S: Store>(s: &S, _c: &ManualClock) {
    let a = host(s, "a", None).await;
    let b = host(s, "b", None).await;
    let p = running_plan(s, plan_for(&[(&a, 1), (&b, 0)], 1, 0)).await;
    let w = worker("w1");
    let c = claim(s, &w, p.id, 1).await.remove(0);
    let pending = s
        .list_runs(p.id)
        .await
        .expect("runs")
        .into_iter()
        .find(|r| r.state == RunState::Pending)
        .expect("pending run");
    assert_eq!(
        s.request_cancel(pending.id).await.expect("cancel"),
        CancelOutcome::Cancelled
    );
    assert_eq!(
        s.get_run(pending.id).await.expect("run").state,
        RunState::Cancelled
    );
    assert_eq!(
        s.request_cancel(c.run.id).await.expect("cancel"),
        CancelOutcome::Requested
    );
    let r = s
        .renew(&w, std::slice::from_ref(&c.lease), TTL)
        .await
        .expect("renew");
    assert!(r[0].cancel_requested, "the holder learns it on heartbeat");
    assert!(s.get_run(c.run.id).await.expect("run").cancel_requested);
    finish(s, &c, RunState::Cancelled).await;
    assert_eq!(
        s.request_cancel(c.run.id).await.expect("cancel"),
        CancelOutcome::AlreadyFinal
    );
}

fn ctx_in_maintenance() -> RunCtx {
    let mut c = ctx_msg("in maintenance mode");
    c.checkpoint.maintenance = MaintenanceState::EnteredByUs;
    c
}

/// The cleanup rule: a cancel (plan cancel, budget halt) of a run that is not
/// running but whose ctx holds maintenance mode does not finalise it: it is
/// marked, made due, counted as cleanup, keeps its plan active whatever the
/// plan's status, and is handed to a worker that sees the cancel.
async fn cancel_of_a_run_holding_maintenance_mode_leaves_it_to_a_worker<S: Store>(
    s: &S,
    clock: &ManualClock,
) {
    let a = host(s, "a", None).await;
    let p = running_plan(s, plan_for(&[(&a, 0)], 1, 0)).await;
    let c = claim(s, &worker("w1"), p.id, 1).await.remove(0);
    let mut t = Transition::to(RunState::Retrying, ctx_in_maintenance());
    t.retry_at = Some(clock.now() + chrono::Duration::hours(1));
    assert!(s.transition(&c.lease, t).await.expect("retry").applied());
    assert_eq!(
        s.request_cancel(c.run.id).await.expect("cancel"),
        CancelOutcome::Requested
    );
    let r = s.get_run(c.run.id).await.expect("run");
    assert_eq!(r.state, RunState::Retrying, "not finalised by the store");
    assert!(r.cancel_requested);
    assert!(r.run_at <= clock.now(), "due now, not at its retry time");
    assert_eq!(s.run_counts(p.id).await.expect("counts").cleanup, 1);
    // The plan is cancelled: it must still be active until the run is cleaned.
    assert!(
        s.set_plan_status(p.id, PlanStatus::Running, PlanStatus::Cancelled, None, None)
            .await
            .expect("cancel plan")
    );
    assert!(
        s.active_plans()
            .await
            .expect("active")
            .iter()
            .any(|x| x.id == p.id),
        "a plan with a run to clean up stays active"
    );
    let got = claim(s, &worker("w2"), p.id, 1).await;
    assert_eq!(
        got.len(),
        1,
        "handed to a worker despite the cancelled plan"
    );
    assert!(got[0].run.cancel_requested);
    assert_eq!(
        got[0].run.ctx.checkpoint.maintenance,
        MaintenanceState::EnteredByUs
    );
    assert_eq!(s.run_counts(p.id).await.expect("counts").cleanup, 0);
    finish(s, &got[0], RunState::Cancelled).await;
    // A run with nothing to clean is still cancelled at once.
    let b = host(s, "b", None).await;
    let p2 = running_plan(s, plan_for(&[(&b, 0)], 1, 0)).await;
    let r2 = s.list_runs(p2.id).await.expect("runs").remove(0);
    assert_eq!(
        s.request_cancel(r2.id).await.expect("cancel"),
        CancelOutcome::Cancelled
    );
}

/// A takeover past the resume cap whose ctx holds maintenance mode is still
/// handed out (to clean up and end failed); past the cap and
/// `CLEANUP_RESUMES` more, it is parked `needs_attention`, not failed.
async fn resume_cap_with_cleanup_pending_hands_out_then_parks<S: Store>(
    s: &S,
    clock: &ManualClock,
) {
    let a = host(s, "a", None).await;
    let mut np = plan_for(&[(&a, 0)], 1, 0);
    np.policy.max_resumes = Some(1);
    let p = running_plan(s, np).await;
    let c = claim(s, &worker("w0"), p.id, 1).await.remove(0);
    assert!(
        s.transition(&c.lease, Transition::checkpoint(ctx_in_maintenance()))
            .await
            .expect("cp")
            .applied()
    );
    let extra = crate::policy::CLEANUP_RESUMES;
    for i in 1..=(1 + extra) {
        clock.advance(TTL + DELAY + Duration::from_secs(1));
        let got = claim(s, &worker(&format!("w{i}")), p.id, 1).await;
        assert_eq!(got.len(), 1, "takeover {i} handed out to clean up");
        assert_eq!(got[0].run.resumes, i);
    }
    clock.advance(TTL + DELAY + Duration::from_secs(1));
    assert!(claim(s, &worker("w9"), p.id, 1).await.is_empty());
    let r = s.get_run(c.run.id).await.expect("run");
    assert_eq!(r.state, RunState::NeedsAttention);
    assert!(r.lease_owner.is_none());
    assert!(r.completed_at.is_some());
    assert_eq!(s.run_counts(p.id).await.expect("counts").needs_attention, 1);
    let ev = s
        .list_events(&EventFilter {
            run_id: Some(c.run.id),
            ..Default::default()
        })
        .await
        .expect("events");
    assert!(ev.iter().any(|e| e.event.severity == Severity::Critical
        && e.event.details.get("to").and_then(|v| v.as_str()) == Some("needs_attention")));
}

async fn events_filter_by_type_and_time<S: Store>(s: &S, clock: &ManualClock) {
    let first = s
        .append_event(NewEvent::info(EventType::HostDiscovered, "early"))
        .await
        .expect("append");
    clock.advance(Duration::from_secs(60));
    let cut = first.created_at + chrono::Duration::seconds(30);
    s.append_event(NewEvent::info(EventType::SystemError, "late error"))
        .await
        .expect("append");
    s.append_event(NewEvent::info(EventType::HostDiscovered, "late"))
        .await
        .expect("append");
    let by_type = s
        .list_events(&EventFilter {
            event_type: Some(EventType::HostDiscovered),
            ..Default::default()
        })
        .await
        .expect("by type");
    let msgs: Vec<_> = by_type.iter().map(|e| e.event.message.as_str()).collect();
    assert_eq!(msgs, ["early", "late"]);
    let since = s
        .list_events(&EventFilter {
            since: Some(cut),
            ..Default::default()
        })
        .await
        .expect("since");
    let msgs: Vec<_> = since.iter().map(|e| e.event.message.as_str()).collect();
    assert_eq!(msgs, ["late error", "late"]);
    let until = s
        .list_events(&EventFilter {
            until: Some(cut),
            event_type: Some(EventType::HostDiscovered),
            ..Default::default()
        })
        .await
        .expect("until");
    assert_eq!(until.len(), 1);
    assert_eq!(until[0].seq, first.seq);
}

async fn events_are_ordered_and_complete<S: Store>(s: &S, _c: &ManualClock) {
    let a = host(s, "a", None).await;
    let p = running_plan(s, plan_for(&[(&a, 0)], 1, 0)).await;
    let c = claim(s, &worker("w1"), p.id, 1).await.remove(0);
    s.transition(&c.lease, Transition::checkpoint(ctx_msg("no event")))
        .await
        .expect("cp");
    let mut cp = Transition::checkpoint(ctx_msg("with event"));
    cp.event = Some(NewEvent::info(EventType::RunStep, "submitted JID_1"));
    s.transition(&c.lease, cp).await.expect("cp");
    finish(s, &c, RunState::Completed).await;
    let ev = s
        .list_events(&EventFilter {
            run_id: Some(c.run.id),
            ..Default::default()
        })
        .await
        .expect("events");
    let types: Vec<_> = ev.iter().map(|e| e.event.event_type.clone()).collect();
    assert_eq!(
        types,
        vec![
            EventType::RunClaimed,
            EventType::RunStep,
            EventType::RunTransition
        ]
    );
    assert!(ev.windows(2).all(|w| w[0].seq < w[1].seq), "ordered");
    assert!(
        ev.iter()
            .all(|e| e.event.plan_id == Some(p.id) && e.event.host_id == Some(a.id))
    );
    // after_seq and limit page through the trail.
    let all = s.list_events(&EventFilter::default()).await.expect("all");
    let page = s
        .list_events(&EventFilter {
            after_seq: Some(all[0].seq),
            limit: Some(2),
            ..Default::default()
        })
        .await
        .expect("page");
    assert_eq!(page.len(), 2);
    assert_eq!(page[0].seq, all[1].seq);
    // Unknown event types round-trip.
    let e = s
        .append_event(NewEvent::info(EventType::Other("custom_thing".into()), "x"))
        .await
        .expect("append");
    assert_eq!(e.event.event_type, EventType::Other("custom_thing".into()));
    let last = s.list_events(&EventFilter::default()).await.expect("all");
    assert_eq!(
        last.last().map(|e| e.event.event_type.clone()),
        Some(EventType::Other("custom_thing".into()))
    );
}

async fn job_queue_claim_retry_backoff_max_attempts<S: Store>(s: &S, clock: &ManualClock) {
    let w = worker("w1");
    let id = s
        .enqueue(NewJob {
            job_type: "inventory_refresh".into(),
            payload: serde_json::json!({"host": "a"}),
            max_attempts: 2,
            scheduled_for: None,
        })
        .await
        .expect("enqueue");
    let later = s
        .enqueue(NewJob {
            job_type: "catalog_download".into(),
            payload: serde_json::json!({}),
            max_attempts: 3,
            scheduled_for: Some(clock.now() + chrono::Duration::hours(1)),
        })
        .await
        .expect("enqueue");
    let got = s
        .claim_jobs(&w, &["inventory_refresh".into()], 10, TTL)
        .await
        .expect("claim");
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].id, got[0].attempts), (id, 1));
    assert!(
        s.claim_jobs(&worker("w2"), &[], 10, TTL)
            .await
            .expect("claim")
            .is_empty(),
        "locked, and the other is not due"
    );
    assert!(
        !s.complete_job(id, &worker("w2"), serde_json::json!({}))
            .await
            .expect("c")
    );
    assert!(
        s.fail_job(id, &w, "BMC busy", Duration::from_secs(60))
            .await
            .expect("f")
    );
    let j = s.get_job(id).await.expect("job");
    assert_eq!(j.status, JobStatus::Queued);
    assert_eq!(j.error_message.as_deref(), Some("BMC busy"));
    assert!(
        s.claim_jobs(&w, &[], 10, TTL).await.expect("c").is_empty(),
        "backoff"
    );
    clock.advance(Duration::from_secs(61));
    let got = s.claim_jobs(&w, &[], 10, TTL).await.expect("claim");
    assert_eq!(got.len(), 1);
    assert!(
        s.fail_job(id, &w, "still busy", Duration::from_secs(60))
            .await
            .expect("f")
    );
    assert_eq!(s.get_job(id).await.expect("job").status, JobStatus::Failed);
    clock.advance(Duration::from_secs(3600));
    let got = s.claim_jobs(&w, &[], 10, TTL).await.expect("claim");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].id, later);
    assert!(
        s.complete_job(later, &w, serde_json::json!({"ok": true}))
            .await
            .expect("c")
    );
    let j = s.get_job(later).await.expect("job");
    assert_eq!(j.status, JobStatus::Completed);
    assert_eq!(j.result, Some(serde_json::json!({"ok": true})));
}

async fn job_lock_expiry_is_reclaimed<S: Store>(s: &S, clock: &ManualClock) {
    let id = s
        .enqueue(NewJob {
            job_type: "t".into(),
            payload: serde_json::json!({}),
            max_attempts: 3,
            scheduled_for: None,
        })
        .await
        .expect("enqueue");
    assert_eq!(
        s.claim_jobs(&worker("w1"), &[], 1, TTL)
            .await
            .expect("c")
            .len(),
        1
    );
    clock.advance(TTL + Duration::from_secs(1));
    let got = s.claim_jobs(&worker("w2"), &[], 1, TTL).await.expect("c");
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].id, got[0].attempts), (id, 2));
    assert!(
        !s.complete_job(id, &worker("w1"), serde_json::json!({}))
            .await
            .expect("c")
    );
    assert!(
        s.complete_job(id, &worker("w2"), serde_json::json!({}))
            .await
            .expect("c")
    );
}

async fn config_and_sessions<S: Store>(s: &S, clock: &ManualClock) {
    assert!(s.get_config("setup_complete").await.expect("get").is_none());
    s.set_config(
        "setup_complete",
        serde_json::json!(true),
        Some("setup done"),
    )
    .await
    .expect("set");
    s.set_config("setup_complete", serde_json::json!(false), None)
        .await
        .expect("set");
    let e = s
        .get_config("setup_complete")
        .await
        .expect("get")
        .expect("entry");
    assert_eq!(e.value, serde_json::json!(false));
    assert_eq!(e.description.as_deref(), Some("setup done"));
    assert_eq!(s.list_config().await.expect("list").len(), 1);
    let a = host(s, "a", None).await;
    s.put_session(RedfishSession {
        host_id: a.id,
        session_token: secrecy::SecretString::from("tok".to_string()),
        session_uri: "/redfish/v1/SessionService/Sessions/1".into(),
        expires_at: clock.now() + chrono::Duration::minutes(30),
        created_at: clock.now(),
    })
    .await
    .expect("put");
    let got = s.get_session(a.id).await.expect("get").expect("session");
    assert_eq!(got.session_uri, "/redfish/v1/SessionService/Sessions/1");
    clock.advance(Duration::from_secs(31 * 60));
    assert!(s.get_session(a.id).await.expect("get").is_none(), "expired");
    s.delete_session(a.id).await.expect("delete");
}
