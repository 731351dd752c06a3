//! A 10,000-host plan on PostgreSQL driven by the real executor with an
//! instant in-process driver (core's fake BMC fleet: installs and reboots
//! take no time): several executors, each with its own pool and worker id
//! like separate daemons. Prints wall time, fenced writes per second and
//! claim latency percentiles.
//!
//! `cargo bench -p firmflow-store-postgres --bench plan_10k_pg` (release
//! profile). Environment: `HOSTS` (10000), `EXECUTORS` (2), `SLOTS` per
//! executor (300), `MAX_CONCURRENT` (500), `POOL` per executor (16),
//! `FIRMFLOW_BENCH_DATABASE_URL` (a server where the role may create databases).
//! Run by `cargo test --all-targets` (no `--bench` argument) it plans 100
//! hosts only, as a smoke test.

use firmflow_core::checks::CheckRegistry;
use firmflow_core::executor::{Executor, ExecutorConfig, Services};
use firmflow_core::model::*;
use firmflow_core::store::{PlanStore as _, RunStore as _, Store};
use firmflow_core::testkit::fakes::{ArtifactListResolver, FakeFleet, HostScript};
use firmflow_core::{Clock, SystemClock};
use firmflow_store_postgres::{PgConfig, PgStore};
use sqlx::{AssertSqlSafe, Executor as _};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run());
}

async fn run() {
    let url = std::env::var("FIRMFLOW_BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let admin = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .expect("database server");
    let db = format!(
        "ffbench_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    admin
        .execute(AssertSqlSafe(format!("CREATE DATABASE \"{db}\"")))
        .await
        .expect("create database");
    let mut u = url::Url::parse(&url).expect("url");
    u.set_path(&format!("/{db}"));
    bench(u.as_str()).await;
    let _ = admin
        .execute(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"
        )))
        .await;
}

async fn bench(url: &str) {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this
    // binary without it: then a 100-host smoke run keeps CI quick.
    let benching = std::env::args().any(|a| a == "--bench");
    let hosts = env_usize("HOSTS", if benching { 10_000 } else { 100 });
    let executors = env_usize("EXECUTORS", 2).max(1);
    let slots = env_usize("SLOTS", 300);
    let max_concurrent = env_usize("MAX_CONCURRENT", 500);
    let pool = u32::try_from(env_usize("POOL", 16)).unwrap_or(16);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let setup = PgStore::connect(PgConfig::new(url).max_connections(4), clock.clone())
        .await
        .expect("store");
    let fleet = FakeFleet::new();
    let instant = HostScript {
        install_time: Duration::ZERO,
        reboot_time: Duration::ZERO,
        ..HostScript::default()
    };
    sqlx::query(
        "INSERT INTO hosts (fqdn, mgmt_ip, mgmt_kind) \
         SELECT 'h' || lpad(i::text, 5, '0') || '.bench', \
                '10.' || (i / 65536) || '.' || (i / 256 % 256) || '.' || (i % 256), 'idrac' \
         FROM generate_series(0, $1 - 1) AS i",
    )
    .bind(i64::try_from(hosts).unwrap_or(0))
    .execute(setup.pool())
    .await
    .expect("hosts");
    let all = firmflow_core::store::HostStore::list_hosts(&setup)
        .await
        .expect("hosts");
    let mut targets = Vec::with_capacity(hosts);
    for (i, h) in all.iter().enumerate() {
        fleet.add_host(&h.fqdn, instant.clone());
        targets.push(PlanTarget {
            host_id: h.id,
            priority: (i % 7) as i32,
            conditions: serde_json::json!({}),
        });
    }
    let mut policy = Policy::new(UpdateMode::SpecificPackage);
    policy.max_concurrent = max_concurrent as u32;
    policy.allow_downtime = true;
    policy.require_maintenance_mode = false;
    policy.preflight_checks = vec!["connectivity".into()];
    policy.post_update_validation = vec!["firmware_version".into()];
    let artifacts = vec![
        Artifact {
            id: ArtifactId::new(),
            component: "25227".into(),
            image_uri: "https://repo.bench/idrac.exe".into(),
            version: Some("7.10.50.00".into()),
            checksum: None,
            size_bytes: None,
            metadata: serde_json::json!({"rebootRequired": false}),
        },
        Artifact {
            id: ArtifactId::new(),
            component: "159".into(),
            image_uri: "https://repo.bench/bios.exe".into(),
            version: Some("2.19.1".into()),
            checksum: None,
            size_bytes: None,
            metadata: serde_json::json!({"rebootRequired": true}),
        },
    ];
    let mut stores = Vec::new();
    let mut execs = Vec::new();
    for n in 0..executors {
        let store = PgStore::connect(PgConfig::new(url).max_connections(pool), clock.clone())
            .await
            .expect("executor store");
        let mut cfg = ExecutorConfig::new(&format!("bench-{n}"));
        cfg.slots = slots;
        cfg.poll_interval = Duration::from_millis(50);
        cfg.heartbeat_interval = Duration::from_secs(5);
        cfg.job_poll_initial = Duration::ZERO;
        cfg.job_poll_max = Duration::ZERO;
        cfg.ready_poll_interval = Duration::ZERO;
        cfg.progress_capacity = 1024;
        let dyn_store: Arc<dyn Store> = Arc::new(store.clone());
        execs.push(Executor::new(
            Services {
                store: dyn_store,
                bmc: Arc::new(fleet.clone()),
                cluster: None,
                resolver: Arc::new(ArtifactListResolver),
                checks: CheckRegistry::builtin(),
                clock: clock.clone(),
            },
            cfg,
        ));
        stores.push(store);
    }
    let t = Instant::now();
    let plan = execs[0]
        .create_plan(NewPlan {
            name: "bench".into(),
            policy,
            maintenance_window: None,
            approval_required: false,
            targets,
            artifacts,
            created_by: None,
            idempotency_key: None,
        })
        .await
        .expect("plan")
        .plan;
    let create = t.elapsed();
    let handles: Vec<_> = execs.iter().map(|e| e.spawn()).collect();
    let started = Instant::now();
    execs[0].start(plan.id, None).await.expect("start");
    for e in &execs {
        e.wake();
    }
    let status = loop {
        let p = setup.get_plan(plan.id).await.expect("plan");
        if p.status.is_final() {
            break p.status;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let wall = started.elapsed();
    for h in handles {
        h.shutdown().await;
    }
    let counts = setup.run_counts(plan.id).await.expect("counts");
    assert_eq!(status, PlanStatus::Completed, "{counts:?}");
    assert_eq!(counts.completed as usize, hosts);
    let mut writes = 0;
    let mut claims = 0;
    let mut p50 = Duration::ZERO;
    let mut p99 = Duration::ZERO;
    let mut batches = 0;
    let mut largest = 0;
    for s in &stores {
        let m = s.metrics();
        writes += m.fenced_writes;
        batches += m.write_batches;
        largest = largest.max(m.largest_batch);
        claims += m.claims;
        p50 = p50.max(m.claim_p50);
        p99 = p99.max(m.claim_p99);
    }
    println!(
        "plan_10k_pg: hosts={hosts} executors={executors} slots={slots} max_concurrent={max_concurrent} pool={pool} packages/host=2 (iDRAC + BIOS with reboot)"
    );
    println!("plan_10k_pg: create_plan     {:.2} s", create.as_secs_f64());
    println!("plan_10k_pg: plan wall time  {:.2} s", wall.as_secs_f64());
    println!(
        "plan_10k_pg: fenced writes   {writes} ({:.1} per host), {:.0}/s",
        writes as f64 / hosts as f64,
        writes as f64 / wall.as_secs_f64()
    );
    println!(
        "plan_10k_pg: group commit    {batches} statements carried the run writes, {:.1} writes each, largest {largest}",
        writes as f64 / batches.max(1) as f64
    );
    println!(
        "plan_10k_pg: claims          {claims}, latency p50 {:.1} ms, p99 {:.1} ms (worst executor)",
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3
    );
    for s in stores {
        s.close().await;
    }
    setup.close().await;
}
