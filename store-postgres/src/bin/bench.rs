//! `firmflow-pg-bench`: a 10,000-host plan through the PostgreSQL store
//! with an instant "driver": several concurrent workers (each with its own
//! pool and worker id, like separate daemons) loop claim → heartbeat →
//! fenced checkpoints → fenced completion until the plan is done. Reports
//! wall time, fenced transitions per second and claim latency percentiles.
//!
//! ```text
//! firmflow-pg-bench [--url URL] [--hosts N] [--workers N] [--slots N]
//!                   [--checkpoints N] [--max-concurrent N] [--cluster-size N] [--pool N] [--keep]
//! ```
//! The URL names a server and a database the role may create databases
//! from; the bench works in a fresh database and drops it afterwards.

use firmflow_core::model::*;
use firmflow_core::policy::StandardAdmission;
use firmflow_core::store::{
    ClaimRequest, ClaimedRun, HostStore, PlanStore, RunStore, Transition, WriteOutcome,
};
use firmflow_core::{Clock, SystemClock};
use firmflow_store_postgres::{PgConfig, PgStore};
use sqlx::{AssertSqlSafe, Executor as _};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

struct Args {
    url: String,
    hosts: usize,
    workers: usize,
    slots: usize,
    checkpoints: usize,
    max_concurrent: u32,
    cluster_size: usize,
    pool: u32,
    keep: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        url: std::env::var("FIRMFLOW_BENCH_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into()),
        hosts: 10_000,
        workers: 16,
        slots: 64,
        checkpoints: 3,
        max_concurrent: 1000,
        cluster_size: 40,
        pool: 4,
        keep: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let num = |v: String| v.parse::<usize>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--url" => a.url = val()?,
            "--hosts" => a.hosts = num(val()?)?,
            "--workers" => a.workers = num(val()?)?.max(1),
            "--slots" => a.slots = num(val()?)?.max(1),
            "--checkpoints" => a.checkpoints = num(val()?)?,
            "--max-concurrent" => {
                a.max_concurrent = u32::try_from(num(val()?)?).map_err(|e| e.to_string())?
            }
            "--cluster-size" => a.cluster_size = num(val()?)?,
            "--keep" => a.keep = true,
            "--pool" => a.pool = u32::try_from(num(val()?)?.max(1)).map_err(|e| e.to_string())?,
            "--help" | "-h" => {
                return Err("usage: firmflow-pg-bench [--url URL] [--hosts N] [--workers N] \
                     [--slots N] [--checkpoints N] [--max-concurrent N] [--cluster-size N] [--pool N] [--keep]"
                    .into());
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

fn with_db(url: &str, db: &str) -> Result<String, String> {
    let mut u = url::Url::parse(url).map_err(|e| format!("--url: {e}"))?;
    u.set_path(&format!("/{db}"));
    Ok(u.to_string())
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    match run().await {
        Ok(()) => {}
        Err(e) => {
            eprintln!("firmflow-pg-bench: {e}");
            std::process::exit(1);
        }
    }
}

async fn run() -> Result<(), String> {
    let args = parse_args()?;
    let admin = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&args.url)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let db = format!(
        "ffbench_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    admin
        .execute(AssertSqlSafe(format!("CREATE DATABASE \"{db}\"")))
        .await
        .map_err(|e| format!("create database: {e}"))?;
    let result = bench(&args, &with_db(&args.url, &db)?).await;
    if args.keep {
        eprintln!("kept database {db}");
        admin.close().await;
        return result;
    }
    let _ = admin
        .execute(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"
        )))
        .await;
    admin.close().await;
    result
}

async fn bench(args: &Args, url: &str) -> Result<(), String> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = PgStore::connect(PgConfig::new(url).max_connections(4), clock.clone())
        .await
        .map_err(|e| e.to_string())?;

    // Hosts in bulk (setup, not measured): clusters of `cluster_size`.
    let t = Instant::now();
    let cluster_size = args.cluster_size.max(1);
    sqlx::query(
        "INSERT INTO hosts (fqdn, mgmt_ip, mgmt_kind, vcenter_url, cluster_moid, host_moid) \
         SELECT 'h' || i || '.bench.example.net', '10.' || (i / 65536) || '.' || (i / 256 % 256) \
                || '.' || (i % 256), 'idrac', \
                CASE WHEN $2 > 0 THEN 'https://vc.bench.example.net' END, \
                CASE WHEN $2 > 0 THEN 'domain-c' || (i / $2) END, \
                CASE WHEN $2 > 0 THEN 'host-' || i END \
         FROM generate_series(0, $1 - 1) AS i",
    )
    .bind(i64::try_from(args.hosts).map_err(|e| e.to_string())?)
    .bind(i64::try_from(args.cluster_size).map_err(|e| e.to_string())?)
    .execute(store.pool())
    .await
    .map_err(|e| format!("hosts: {e}"))?;
    let hosts = store.list_hosts().await.map_err(|e| e.to_string())?;
    eprintln!("{} hosts registered in {:.1?}", hosts.len(), t.elapsed());

    let mut policy = Policy::new(UpdateMode::SpecificPackage);
    policy.max_concurrent = args.max_concurrent;
    // Each cluster may lose a tenth of its hosts at once.
    policy.min_hosts_online = u32::try_from(cluster_size - cluster_size.div_ceil(10)).unwrap_or(0);
    let targets: Vec<PlanTarget> = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| PlanTarget {
            host_id: h.id,
            priority: (i % 5) as i32,
            conditions: serde_json::json!({}),
        })
        .collect();
    let t = Instant::now();
    let plan = store
        .create_plan(NewPlan {
            name: "bench".into(),
            policy,
            maintenance_window: None,
            approval_required: false,
            targets,
            artifacts: vec![],
            created_by: None,
            idempotency_key: Some("bench".into()),
        })
        .await
        .map_err(|e| e.to_string())?
        .plan;
    let create_time = t.elapsed();
    eprintln!(
        "plan with {} runs created in {create_time:.1?}",
        hosts.len()
    );

    let transitions = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    store
        .set_plan_status(plan.id, PlanStatus::Draft, PlanStatus::Running, None, None)
        .await
        .map_err(|e| e.to_string())?;
    let mut tasks = Vec::new();
    for w in 0..args.workers {
        let store = PgStore::connect(PgConfig::new(url).max_connections(args.pool), clock.clone())
            .await
            .map_err(|e| e.to_string())?;
        let transitions = transitions.clone();
        let (slots, checkpoints, plan_id) = (args.slots, args.checkpoints, plan.id);
        tasks.push(tokio::spawn(async move {
            worker(store, w, plan_id, slots, checkpoints, transitions).await
        }));
    }
    let mut latencies = Vec::new();
    let mut claimed = 0usize;
    for t in tasks {
        let (lat, n) = t
            .await
            .map_err(|e| format!("worker: {e}"))?
            .map_err(|e| format!("worker: {e}"))?;
        latencies.extend(lat);
        claimed += n;
    }
    let wall = started.elapsed();
    let counts = store.run_counts(plan.id).await.map_err(|e| e.to_string())?;
    if counts.completed as usize != hosts.len() || claimed != hosts.len() {
        return Err(format!(
            "plan did not complete exactly once per host: {counts:?}, {claimed} claims"
        ));
    }
    latencies.sort();
    let n = transitions.load(Ordering::Relaxed);
    println!(
        "hosts={} workers={} slots={} checkpoints/run={} create_plan={:.2}s plan_wall={:.2}s \
         fenced_transitions={} transitions_per_s={:.0} claims={} claim_p50={:.1}ms claim_p99={:.1}ms",
        hosts.len(),
        args.workers,
        args.slots,
        args.checkpoints,
        create_time.as_secs_f64(),
        wall.as_secs_f64(),
        n,
        n as f64 / wall.as_secs_f64(),
        latencies.len(),
        pct(&latencies, 0.50).as_secs_f64() * 1e3,
        pct(&latencies, 0.99).as_secs_f64() * 1e3,
    );
    store.close().await;
    Ok(())
}

/// One worker: claim a batch, renew its leases once (a heartbeat), walk each
/// run through `checkpoints` fenced checkpoints and a fenced completion.
async fn worker(
    store: PgStore,
    n: usize,
    plan: PlanId,
    slots: usize,
    checkpoints: usize,
    transitions: Arc<AtomicU64>,
) -> Result<(Vec<Duration>, usize), String> {
    let w = WorkerId(format!("bench-{n}"));
    let live = BTreeMap::new();
    let mut latencies = Vec::new();
    let mut claimed = 0;
    let ttl = Duration::from_secs(60);
    loop {
        let t = Instant::now();
        let got = store
            .claim(ClaimRequest {
                worker: &w,
                plan,
                slots,
                lease_ttl: ttl,
                reclaim_delay: Duration::from_secs(30),
                live_online: &live,
                admission: &StandardAdmission,
            })
            .await
            .map_err(|e| e.to_string())?;
        latencies.push(t.elapsed());
        if got.is_empty() {
            let c = store.run_counts(plan).await.map_err(|e| e.to_string())?;
            if c.unfinished() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        claimed += got.len();
        let leases: Vec<Lease> = got.iter().map(|c| c.lease.clone()).collect();
        store
            .renew(&w, &leases, ttl)
            .await
            .map_err(|e| e.to_string())?;
        // One task per claimed run, as the executor drives them; the pool
        // bounds how many talk to the database at once.
        let mut set = tokio::task::JoinSet::new();
        for c in got {
            let store = store.clone();
            let transitions = transitions.clone();
            set.spawn(async move { drive(&store, c, checkpoints, &transitions).await });
        }
        while let Some(r) = set.join_next().await {
            r.map_err(|e| format!("run task: {e}"))??;
        }
    }
    store.close().await;
    Ok((latencies, claimed))
}

/// One run: `checkpoints` fenced checkpoints, then a fenced completion.
async fn drive(
    store: &PgStore,
    c: ClaimedRun,
    checkpoints: usize,
    transitions: &AtomicU64,
) -> Result<(), String> {
    let mut ctx = c.run.ctx.clone();
    for step in 0..checkpoints {
        ctx.progress.percentage = u8::try_from(step * 100 / (checkpoints + 1)).unwrap_or(0);
        ctx.progress.message = format!("step {step}");
        let o = store
            .transition(&c.lease, Transition::checkpoint(ctx.clone()))
            .await
            .map_err(|e| e.to_string())?;
        if o != WriteOutcome::Applied {
            return Err(format!("checkpoint of {} not applied: {o:?}", c.run.id));
        }
        transitions.fetch_add(1, Ordering::Relaxed);
    }
    ctx.progress.percentage = 100;
    let o = store
        .transition(&c.lease, Transition::to(RunState::Completed, ctx))
        .await
        .map_err(|e| e.to_string())?;
    if o != WriteOutcome::Applied {
        return Err(format!("completion of {} not applied: {o:?}", c.run.id));
    }
    transitions.fetch_add(1, Ordering::Relaxed);
    Ok(())
}
