//! Several "daemons" (stores with their own pools and worker ids) on one
//! database: admission limits hold across them, no run is ever held twice,
//! a crashed worker's runs are taken over after expiry with its late writes
//! fenced out, and the job queue hands each job to one worker.

mod common;

use firmflow_core::model::*;
use firmflow_core::policy::StandardAdmission;
use firmflow_core::store::*;
use firmflow_core::{Clock, ManualClock};
use firmflow_store_postgres::PgStore;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

async fn claim(s: &PgStore, w: &WorkerId, plan: PlanId, slots: usize) -> Vec<ClaimedRun> {
    s.claim(ClaimRequest {
        worker: w,
        plan,
        slots,
        lease_ttl: Duration::from_secs(60),
        reclaim_delay: Duration::from_secs(30),
        live_online: &BTreeMap::new(),
        admission: &StandardAdmission,
    })
    .await
    .expect("claim")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_daemons_respect_max_concurrent_and_cluster_capacity() {
    let (s, clock, guard) = common::store("multi").await;
    // 3 clusters of 12 hosts, keep 10 of each online (at most 2 down per
    // cluster), at most 5 runs of the plan at once.
    let mut targets = Vec::new();
    let mut cluster_of = HashMap::new();
    for c in 0..3 {
        for i in 0..12 {
            let h = s
                .add_host(
                    NewHost::idrac(format!("c{c}h{i}.example.net"), format!("10.{c}.0.{i}"))
                        .in_cluster(
                            "https://vc.example.net",
                            format!("domain-c{c}"),
                            format!("host-{c}-{i}"),
                        ),
                )
                .await
                .expect("host");
            cluster_of.insert(h.id, c);
            targets.push(PlanTarget {
                host_id: h.id,
                priority: i % 3,
                conditions: serde_json::json!({}),
            });
        }
    }
    let mut policy = Policy::new(UpdateMode::SpecificPackage);
    policy.max_concurrent = 5;
    policy.min_hosts_online = 10;
    let plan = s
        .create_plan(NewPlan {
            name: "rolling".into(),
            policy,
            maintenance_window: None,
            approval_required: false,
            targets,
            artifacts: vec![],
            created_by: None,
            idempotency_key: None,
        })
        .await
        .expect("plan")
        .plan;
    assert!(
        s.set_plan_status(plan.id, PlanStatus::Draft, PlanStatus::Running, None, None)
            .await
            .expect("start")
    );
    let db = common::db_of(&s);
    let held: Arc<Mutex<HashSet<RunId>>> = Arc::default();
    let completions: Arc<Mutex<HashMap<RunId, u32>>> = Arc::default();
    let max_seen = Arc::new(Mutex::new((0i64, 0i64)));
    let mut tasks = Vec::new();
    for d in 0..4 {
        let store = common::second_store(&s, &db, clock.clone()).await;
        let held = held.clone();
        let completions = completions.clone();
        let max_seen = max_seen.clone();
        let plan_id = plan.id;
        tasks.push(tokio::spawn(async move {
            let w = WorkerId(format!("daemon-{d}"));
            let mut idle = 0;
            while idle < 200 {
                let got = claim(&store, &w, plan_id, 3).await;
                // The limits, read straight from the database.
                let (running, worst_cluster): (i64, i64) = sqlx::query_as(
                    "SELECT (SELECT count(*) FROM host_runs WHERE plan_id = $1 AND state = 'running'), \
                            coalesce((SELECT max(n) FROM (SELECT count(*) AS n FROM host_runs r \
                              JOIN hosts h ON h.id = r.host_id WHERE r.state = 'running' \
                              GROUP BY h.cluster_moid) x), 0)",
                )
                .bind(plan_id.0)
                .fetch_one(store.pool())
                .await
                .expect("limits");
                {
                    let mut m = max_seen.lock().expect("lock");
                    m.0 = m.0.max(running);
                    m.1 = m.1.max(worst_cluster);
                }
                if got.is_empty() {
                    let counts = store.run_counts(plan_id).await.expect("counts");
                    if counts.unfinished() == 0 {
                        break;
                    }
                    idle += 1;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
                for c in &got {
                    assert!(held.lock().expect("lock").insert(c.run.id), "run held twice");
                }
                for c in got {
                    let mut ctx = c.run.ctx.clone();
                    ctx.progress.message = format!("installing on {d}");
                    assert_eq!(
                        store
                            .transition(&c.lease, Transition::checkpoint(ctx.clone()))
                            .await
                            .expect("cp"),
                        WriteOutcome::Applied
                    );
                    tokio::task::yield_now().await;
                    assert!(held.lock().expect("lock").remove(&c.run.id));
                    assert_eq!(
                        store
                            .transition(&c.lease, Transition::to(RunState::Completed, ctx))
                            .await
                            .expect("done"),
                        WriteOutcome::Applied
                    );
                    *completions.lock().expect("lock").entry(c.run.id).or_default() += 1;
                }
            }
            store.close().await;
        }));
    }
    for t in tasks {
        t.await.expect("daemon");
    }
    let counts = s.run_counts(plan.id).await.expect("counts");
    assert_eq!(counts.completed, 36, "{counts:?}");
    let completions = completions.lock().expect("lock").clone();
    assert_eq!(completions.len(), 36);
    assert!(
        completions.values().all(|&n| n == 1),
        "each run completed once"
    );
    let (max_running, max_cluster) = *max_seen.lock().expect("lock");
    assert!(max_running <= 5, "maxConcurrent exceeded: {max_running}");
    assert!(
        max_cluster <= 2,
        "a cluster went below minHostsOnline: {max_cluster}"
    );
    // Every run was claimed exactly once (no reclaims happened).
    let claims: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM system_events WHERE plan_id = $1 AND event_type = 'run_claimed'",
    )
    .bind(plan.id.0)
    .fetch_one(s.pool())
    .await
    .expect("claims");
    assert_eq!(claims, 36);
    let _ = clock.now();
    s.close().await;
    drop(guard);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashed_worker_is_taken_over_and_fenced_out() {
    let (a, clock, guard) = common::store("crash").await;
    let h = a
        .add_host(NewHost::idrac("a.example.net", "10.0.0.1"))
        .await
        .expect("host");
    let mut policy = Policy::new(UpdateMode::SpecificPackage);
    policy.min_hosts_online = 0;
    let plan = a
        .create_plan(NewPlan {
            name: "p".into(),
            policy,
            maintenance_window: None,
            approval_required: false,
            targets: vec![PlanTarget {
                host_id: h.id,
                priority: 0,
                conditions: serde_json::json!({}),
            }],
            artifacts: vec![],
            created_by: None,
            idempotency_key: None,
        })
        .await
        .expect("plan")
        .plan;
    a.set_plan_status(plan.id, PlanStatus::Draft, PlanStatus::Running, None, None)
        .await
        .expect("start");
    let b = common::second_store(&a, &common::db_of(&a), clock.clone() as Arc<dyn Clock>).await;
    let wa = WorkerId("daemon-a".into());
    let wb = WorkerId("daemon-b".into());
    let first = claim(&a, &wa, plan.id, 1).await.remove(0);
    let mut ctx = RunCtx::default();
    ctx.progress.message = "submitted JID_42".into();
    a.transition(&first.lease, Transition::checkpoint(ctx))
        .await
        .expect("cp");
    // Daemon A dies: no heartbeats. Before expiry + delay nobody takes over.
    clock.advance(Duration::from_secs(80));
    assert!(claim(&b, &wb, plan.id, 1).await.is_empty());
    clock.advance(Duration::from_secs(11));
    let taken = claim(&b, &wb, plan.id, 1).await.remove(0);
    assert!(taken.resumed);
    assert_eq!(taken.run.ctx.progress.message, "submitted JID_42");
    // A wakes up late: every write is fenced out, its heartbeat renews nothing.
    assert_eq!(
        a.transition(
            &first.lease,
            Transition::to(RunState::Failed, RunCtx::default())
        )
        .await
        .expect("late"),
        WriteOutcome::LeaseLost
    );
    assert!(
        a.renew(
            &wa,
            std::slice::from_ref(&first.lease),
            Duration::from_secs(60)
        )
        .await
        .expect("renew")
        .is_empty()
    );
    assert_eq!(a.release_all(&wa).await.expect("release"), 0);
    assert_eq!(
        b.transition(
            &taken.lease,
            Transition::to(RunState::Completed, RunCtx::default())
        )
        .await
        .expect("finish"),
        WriteOutcome::Applied
    );
    let r = a.get_run(first.run.id).await.expect("run");
    assert_eq!(
        (r.state, r.resumes, r.attempts),
        (RunState::Completed, 1, 0)
    );
    b.close().await;
    a.close().await;
    drop(guard);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn job_queue_hands_each_job_to_one_worker() {
    let (s, clock, guard) = common::store("jobs").await;
    let mut ids = HashSet::new();
    for i in 0..60 {
        ids.insert(
            s.enqueue(NewJob {
                job_type: if i % 2 == 0 {
                    "inventory_refresh"
                } else {
                    "catalog_download"
                }
                .into(),
                payload: serde_json::json!({ "n": i }),
                max_attempts: 3,
                scheduled_for: None,
            })
            .await
            .expect("enqueue"),
        );
    }
    let db = common::db_of(&s);
    let done: Arc<Mutex<Vec<JobId>>> = Arc::default();
    let mut tasks = Vec::new();
    for d in 0..4 {
        let store = common::second_store(&s, &db, clock.clone() as Arc<dyn Clock>).await;
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            let w = WorkerId(format!("jobs-{d}"));
            loop {
                let got = store
                    .claim_jobs(&w, &[], 4, Duration::from_secs(60))
                    .await
                    .expect("claim");
                if got.is_empty() {
                    break;
                }
                for j in got {
                    assert_eq!(j.attempts, 1);
                    assert!(
                        store
                            .complete_job(j.id, &w, serde_json::json!({"by": d}))
                            .await
                            .expect("complete")
                    );
                    done.lock().expect("lock").push(j.id);
                }
            }
            store.close().await;
        }));
    }
    for t in tasks {
        t.await.expect("worker");
    }
    let done = done.lock().expect("lock").clone();
    assert_eq!(done.len(), 60, "every job done once");
    assert_eq!(done.iter().copied().collect::<HashSet<_>>(), ids);
    let _: &ManualClock = &clock;
    s.close().await;
    drop(guard);
}

/// Many runs' writes at once go through group commit: each is fenced on
/// its own (a stale epoch among valid ones writes nothing, and says so),
/// each applied write has its event, and none is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_in_one_group_are_each_fenced() {
    let (s, _clock, guard) = common::store("group").await;
    let mut targets = Vec::new();
    for i in 0..120 {
        let h = s
            .add_host(NewHost::idrac(
                format!("g{i}.example.net"),
                format!("10.9.{}.{}", i / 200, i % 200),
            ))
            .await
            .expect("host");
        targets.push(PlanTarget {
            host_id: h.id,
            priority: 0,
            conditions: serde_json::json!({}),
        });
    }
    let mut policy = Policy::new(UpdateMode::SpecificPackage);
    policy.max_concurrent = 1000;
    let plan = s
        .create_plan(NewPlan {
            name: "group".into(),
            policy,
            maintenance_window: None,
            approval_required: false,
            targets,
            artifacts: vec![],
            created_by: None,
            idempotency_key: None,
        })
        .await
        .expect("plan")
        .plan;
    assert!(
        s.set_plan_status(plan.id, PlanStatus::Draft, PlanStatus::Running, None, None)
            .await
            .expect("start")
    );
    let w = WorkerId::generate("w");
    let claimed = claim(&s, &w, plan.id, 120).await;
    assert_eq!(claimed.len(), 120);
    let before = s
        .list_events(&EventFilter {
            plan_id: Some(plan.id),
            ..Default::default()
        })
        .await
        .expect("events")
        .len();
    // Every third write carries a stale epoch; every other one completes.
    let mut writes = tokio::task::JoinSet::new();
    for (i, c) in claimed.iter().enumerate() {
        let s = s.clone();
        let mut lease = c.lease.clone();
        if i % 3 == 0 {
            lease.epoch += 1;
        }
        let mut ctx = c.run.ctx.clone();
        ctx.progress.message = format!("write {i}");
        let t = if i % 2 == 0 {
            Transition::to(RunState::Completed, ctx)
        } else {
            let mut t = Transition::checkpoint(ctx);
            t.event = Some(NewEvent::info(EventType::RunStep, format!("step {i}")));
            t
        };
        writes.spawn(async move { (i, s.transition(&lease, t).await.expect("write")) });
    }
    let outcomes = writes.join_all().await;
    let mut applied = 0;
    for (i, o) in &outcomes {
        if i % 3 == 0 {
            assert_eq!(*o, WriteOutcome::LeaseLost, "write {i}");
        } else {
            assert_eq!(*o, WriteOutcome::Applied, "write {i}");
            applied += 1;
        }
    }
    for (i, c) in claimed.iter().enumerate() {
        let r = s.get_run(c.run.id).await.expect("run");
        if i % 3 == 0 {
            assert_eq!(r.state, RunState::Running, "fenced out: {i}");
            assert_ne!(r.ctx.progress.message, format!("write {i}"));
        } else {
            assert_eq!(r.ctx.progress.message, format!("write {i}"));
            let want = if i % 2 == 0 {
                RunState::Completed
            } else {
                RunState::Running
            };
            assert_eq!(r.state, want, "{i}");
        }
    }
    let events = s
        .list_events(&EventFilter {
            plan_id: Some(plan.id),
            ..Default::default()
        })
        .await
        .expect("events");
    assert_eq!(
        events.len() - before,
        applied,
        "one event per applied write"
    );
    assert!(events.windows(2).all(|p| p[0].seq < p[1].seq));
    let m = s.metrics();
    assert!(
        m.largest_batch > 1 && m.write_batches < 120,
        "the writes went in groups: {m:?}"
    );
    drop(guard);
}

/// Lease renewals have connections of their own: with every connection of
/// the main pool held by run traffic, a heartbeat still renews at once
/// instead of waiting for one (under load that wait outlived the leases:
/// `fleet_10k` on PostgreSQL saw 11,095 needless takeovers).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_renew_while_the_main_pool_is_exhausted() {
    let (s, _clock, guard) = common::store("lease_pool").await;
    let h = s
        .add_host(NewHost::idrac("lp.example.net", "10.8.0.1"))
        .await
        .expect("host");
    let plan = s
        .create_plan(NewPlan {
            name: "lease pool".into(),
            policy: Policy::new(UpdateMode::SpecificPackage),
            maintenance_window: None,
            approval_required: false,
            targets: vec![PlanTarget {
                host_id: h.id,
                priority: 0,
                conditions: serde_json::json!({}),
            }],
            artifacts: vec![],
            created_by: None,
            idempotency_key: None,
        })
        .await
        .expect("plan")
        .plan;
    assert!(
        s.set_plan_status(plan.id, PlanStatus::Draft, PlanStatus::Running, None, None)
            .await
            .expect("start")
    );
    let w = WorkerId::generate("w");
    let claimed = claim(&s, &w, plan.id, 1).await;
    assert_eq!(claimed.len(), 1);
    // The test store's main pool has 4 connections: hold them all.
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(s.pool().acquire().await.expect("connection"));
    }
    let renewed = tokio::time::timeout(
        Duration::from_secs(3),
        s.renew(&w, &[claimed[0].lease.clone()], Duration::from_secs(60)),
    )
    .await
    .expect("the renewal waited for a connection of the main pool")
    .expect("renew");
    assert_eq!(renewed.len(), 1);
    assert_eq!(renewed[0].run_id, claimed[0].run.id);
    drop(held);
    drop(s);
    drop(guard);
}
