//! The seed's database functions and triggers, event partitions and
//! retention, and LISTEN/NOTIFY wake-ups.

mod common;

use firmflow_core::Clock;
use firmflow_core::model::*;
use firmflow_core::policy::StandardAdmission;
use firmflow_core::store::*;
use firmflow_store_postgres::{PgStore, PgWaker};
use std::collections::BTreeMap;
use std::time::Duration;

async fn one_host_plan(s: &PgStore, n: usize) -> (Vec<Host>, Plan) {
    let mut hosts = Vec::new();
    for i in 0..n {
        hosts.push(
            s.add_host(NewHost::idrac(
                format!("h{i}.example.net"),
                format!("10.0.1.{i}"),
            ))
            .await
            .expect("host"),
        );
    }
    let mut policy = Policy::new(UpdateMode::SpecificPackage);
    policy.max_concurrent = 10;
    policy.min_hosts_online = 0;
    let p = s
        .create_plan(NewPlan {
            name: "p".into(),
            policy,
            maintenance_window: None,
            approval_required: false,
            targets: hosts
                .iter()
                .map(|h| PlanTarget {
                    host_id: h.id,
                    priority: 0,
                    conditions: serde_json::json!({}),
                })
                .collect(),
            artifacts: vec![],
            created_by: None,
            idempotency_key: None,
        })
        .await
        .expect("plan")
        .plan;
    (hosts, p)
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_host_run_state_is_the_seeds_compare_and_set() {
    let (s, _clock, guard) = common::store("shrs").await;
    let (_h, p) = one_host_plan(&s, 1).await;
    let run = s.list_runs(p.id).await.expect("runs").remove(0);
    let cas = |from: &'static str, to: &'static str| {
        let pool = s.pool().clone();
        async move {
            sqlx::query_scalar::<_, bool>("SELECT set_host_run_state($1, $2, $3, NULL)")
                .bind(run.id.0)
                .bind(from)
                .bind(to)
                .fetch_one(&pool)
                .await
        }
    };
    assert!(cas("pending", "cancelled").await.expect("cas"));
    assert!(!cas("pending", "cancelled").await.expect("stale cas"));
    let r = s.get_run(run.id).await.expect("run");
    assert_eq!(r.state, RunState::Cancelled);
    assert!(r.completed_at.is_some());
    // Back to pending by hand, then `running` is refused: it needs a lease.
    assert!(cas("cancelled", "pending").await.expect("cas"));
    assert!(s.get_run(run.id).await.expect("run").completed_at.is_none());
    assert!(cas("pending", "running").await.is_err());
    // The state CHECK holds.
    assert!(cas("pending", "exploded").await.is_err());
    s.close().await;
    drop(guard);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_leave_updated_at_alone_and_transitions_move_it() {
    let (s, clock, guard) = common::store("upd").await;
    let (_h, p) = one_host_plan(&s, 1).await;
    assert!(
        s.set_plan_status(p.id, PlanStatus::Draft, PlanStatus::Running, None, None)
            .await
            .expect("start")
    );
    let w = WorkerId("w".into());
    let c = claim(&s, &w, p.id, 1).await.remove(0);
    let before = s.get_run(c.run.id).await.expect("run").updated_at;
    clock.advance(Duration::from_secs(10));
    let r = s
        .renew(&w, std::slice::from_ref(&c.lease), Duration::from_secs(60))
        .await
        .expect("renew");
    assert_eq!(r.len(), 1);
    let after = s.get_run(c.run.id).await.expect("run");
    assert_eq!(after.updated_at, before, "a heartbeat is not a change");
    assert_eq!(
        after.lease_expires_at,
        Some(clock.now() + chrono::Duration::seconds(60))
    );
    // A renewal with raw SQL (no explicit updated_at) keeps it too: the
    // trigger only fires when state or ctx change.
    sqlx::query("UPDATE host_runs SET lease_expires_at = lease_expires_at + interval '1 s'")
        .execute(s.pool())
        .await
        .expect("raw renew");
    assert_eq!(s.get_run(c.run.id).await.expect("run").updated_at, before);
    // A raw ctx change without updated_at: the trigger stamps it.
    sqlx::query("UPDATE host_runs SET ctx = ctx || '{\"x\": 1}'")
        .execute(s.pool())
        .await
        .expect("raw ctx");
    assert_ne!(s.get_run(c.run.id).await.expect("run").updated_at, before);
    clock.advance(Duration::from_secs(5));
    let mut ctx = RunCtx::default();
    ctx.progress.message = "step".into();
    s.transition(&c.lease, Transition::checkpoint(ctx))
        .await
        .expect("cp");
    assert_eq!(
        s.get_run(c.run.id).await.expect("run").updated_at,
        clock.now()
    );
    s.close().await;
    drop(guard);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_partition_by_month_and_retention_drops_old_months() {
    let (s, clock, guard) = common::store("part").await;
    // Far in the past: no partition exists, the row lands in the default one.
    clock.set(
        chrono::DateTime::parse_from_rfc3339("2024-01-15T12:00:00Z")
            .map(|d| d.with_timezone(&chrono::Utc))
            .expect("date"),
    );
    let old = s
        .append_event(NewEvent::info(EventType::SystemError, "old"))
        .await
        .expect("old event");
    let rep = s
        .maintain_events(1, Duration::from_secs(3650 * 86400))
        .await
        .expect("maintain");
    assert!(!rep.skipped);
    assert!(rep.created >= 2, "{rep:?}");
    let parts = s.event_partitions().await.expect("parts");
    assert!(
        parts.contains(&"system_events_p202401".to_string()),
        "{parts:?}"
    );
    assert!(
        parts.contains(&"system_events_p202402".to_string()),
        "{parts:?}"
    );
    let in_part: i64 = sqlx::query_scalar("SELECT count(*) FROM system_events_p202401")
        .fetch_one(s.pool())
        .await
        .expect("count");
    assert_eq!(in_part, 1, "moved out of the default partition");
    // Eight months later with 90 days of retention: January 2024 goes.
    clock.set(
        chrono::DateTime::parse_from_rfc3339("2024-09-10T00:00:00Z")
            .map(|d| d.with_timezone(&chrono::Utc))
            .expect("date"),
    );
    let recent = s
        .append_event(NewEvent::info(EventType::SystemError, "recent"))
        .await
        .expect("event");
    let rep = s
        .maintain_events(1, Duration::from_secs(90 * 86400))
        .await
        .expect("maintain");
    assert!(rep.dropped >= 2, "{rep:?}");
    let parts = s.event_partitions().await.expect("parts");
    assert!(
        !parts.contains(&"system_events_p202401".to_string()),
        "{parts:?}"
    );
    assert!(
        parts.contains(&"system_events_p202409".to_string()),
        "{parts:?}"
    );
    let all = s
        .list_events(&EventFilter::default())
        .await
        .expect("events");
    assert!(all.iter().all(|e| e.id != old.id), "old event dropped");
    assert!(all.iter().any(|e| e.id == recent.id));
    s.close().await;
    drop(guard);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waker_wakes_on_notifications_times_out_and_reports_reconnects() {
    let (s, _clock, guard) = common::store("wake").await;
    let (_h, p) = one_host_plan(&s, 2).await;
    let waker = PgWaker::start(&s, Duration::from_millis(200))
        .await
        .expect("waker");
    // Nothing yet: a short wait times out.
    assert!(waker.wait(Duration::from_millis(100)).await.timed_out());
    // Starting the plan notifies `<schema>.work`.
    assert!(
        s.set_plan_status(p.id, PlanStatus::Draft, PlanStatus::Running, None, None)
            .await
            .expect("start")
    );
    let w = waker.wait(Duration::from_secs(10)).await;
    assert!(w.plans.contains(&p.id), "{w:?}");
    // A cancel request on a running run notifies `<schema>.control`; the
    // debounce holds the next wake-up back a little and gathers both.
    let c = claim(&s, &WorkerId("w".into()), p.id, 1).await.remove(0);
    let t = tokio::time::Instant::now();
    assert_eq!(
        s.request_cancel(c.run.id).await.expect("cancel"),
        CancelOutcome::Requested
    );
    s.release(&c.lease, RunCtx::default())
        .await
        .expect("release");
    let w = waker.wait(Duration::from_secs(10)).await;
    assert!(w.cancel_runs.contains(&c.run.id), "{w:?}");
    assert!(t.elapsed() >= Duration::from_millis(150), "debounced");
    let w = if w.plans.contains(&p.id) {
        w
    } else {
        waker.wait(Duration::from_secs(10)).await
    };
    assert!(
        w.plans.contains(&p.id),
        "release makes the run claimable: {w:?}"
    );

    // Kill the listening connection: the waker says "poll everything".
    let killed: i64 = sqlx::query_scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE datname = current_database() AND query ILIKE 'LISTEN%' AND pid <> pg_backend_pid()",
    )
    .fetch_one(s.pool())
    .await
    .expect("terminate");
    assert!(killed >= 1);
    let mut reconnected = false;
    for _ in 0..20 {
        let w = waker.wait(Duration::from_millis(500)).await;
        if w.reconnected {
            reconnected = true;
            break;
        }
    }
    assert!(reconnected, "reconnect reported");
    // And it listens again afterwards.
    assert!(
        s.set_plan_status(p.id, PlanStatus::Running, PlanStatus::Paused, None, None)
            .await
            .expect("pause")
    );
    assert!(
        s.set_plan_status(p.id, PlanStatus::Paused, PlanStatus::Running, None, None)
            .await
            .expect("resume")
    );
    let mut seen = false;
    for _ in 0..20 {
        let w = waker.wait(Duration::from_millis(500)).await;
        if w.plans.contains(&p.id) {
            seen = true;
            break;
        }
    }
    assert!(seen, "notifications flow after the reconnect");
    drop(waker);
    s.close().await;
    drop(guard);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_installations_in_one_database_stay_apart() {
    use firmflow_store_postgres::PgConfig;
    let (db, guard) = common::fresh_db("schemas").await;
    let clock: std::sync::Arc<dyn Clock> = std::sync::Arc::new(firmflow_core::SystemClock);
    let connect = |schema: &'static str| {
        let (db, clock) = (db.clone(), clock.clone());
        async move {
            PgStore::connect(
                PgConfig::new(common::db_url(&db))
                    .schema(schema)
                    .max_connections(2),
                clock,
            )
            .await
            .expect("connect")
        }
    };
    let a = connect("tenant_a").await;
    let b = connect("tenant_b").await;
    // Connecting again finds the migrations applied.
    let a2 = connect("tenant_a").await;
    let (_, pa) = one_host_plan(&a, 2).await;
    b.add_host(NewHost::idrac("only-b.example.net", "10.9.9.9"))
        .await
        .expect("host");
    assert_eq!(a2.list_hosts().await.expect("a").len(), 2);
    assert_eq!(b.list_hosts().await.expect("b").len(), 1);
    assert!(b.get_plan(pa.id).await.is_err());
    // Notifications carry the schema: B's waker hears nothing of A's plan.
    let wb = PgWaker::start(&b, Duration::from_millis(10))
        .await
        .expect("waker");
    let wa = PgWaker::start(&a, Duration::from_millis(10))
        .await
        .expect("waker");
    assert!(
        a.set_plan_status(pa.id, PlanStatus::Draft, PlanStatus::Running, None, None)
            .await
            .expect("start")
    );
    assert!(
        wa.wait(Duration::from_secs(10))
            .await
            .plans
            .contains(&pa.id)
    );
    assert!(wb.wait(Duration::from_millis(300)).await.timed_out());
    // A bad schema name is refused before any SQL is sent.
    assert!(
        PgStore::connect(
            PgConfig::new(common::db_url(&db)).schema("x\"; DROP TABLE hosts; --"),
            clock.clone(),
        )
        .await
        .is_err()
    );
    drop((wa, wb));
    for s in [a, a2, b] {
        s.close().await;
    }
    drop(guard);
}
