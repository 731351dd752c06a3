//! Two executors ("daemons") sharing one PostgreSQL: both claim hosts of
//! the same plan; one is dropped mid-campaign without releasing anything
//! (what a crash does); the other takes its runs over once their leases
//! expire and finishes the plan, and no component is flashed twice.
//!
//! Needs PostgreSQL: it creates (and drops) its own database on the server
//! of `FIRMFLOW_EXAMPLE_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`).
//!
//! `cargo run -p firmflow-examples --example postgres_workers`

use firmflow_core::SystemClock;
use firmflow_core::executor::{Executor, Services};
use firmflow_core::model::{NewPlan, PlanStatus, UserId};
use firmflow_examples as lab;
use firmflow_store_postgres::{PgConfig, PgStore};
use sqlx::Executor as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn server() -> String {
    std::env::var("FIRMFLOW_EXAMPLE_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

async fn admin(sql: String) -> anyhow::Result<()> {
    let pool = sqlx::PgPool::connect(&server()).await?;
    pool.execute(sqlx::AssertSqlSafe(sql)).await?;
    pool.close().await;
    Ok(())
}

async fn worker(
    url: &str,
    name: &str,
    scratch: &std::path::Path,
) -> anyhow::Result<(Executor, PgStore)> {
    let store = PgStore::connect(PgConfig::new(url), Arc::new(SystemClock)).await?;
    let mut cfg = lab::fast(name);
    cfg.slots = 2;
    let exec = Executor::new(
        Services {
            store: Arc::new(store.clone()),
            bmc: Arc::new(lab::connector()),
            cluster: None,
            resolver: lab::resolver(&scratch.join(name))?,
            checks: Default::default(),
            clock: Arc::new(SystemClock),
        },
        cfg,
    );
    Ok((exec, store))
}

async fn campaign(url: &str) -> anyhow::Result<()> {
    let (fleet, catalog) = lab::fleet(4).await?;
    let scratch = tempfile::tempdir()?;
    let (a, store_a) = worker(url, "worker-a", scratch.path()).await?;
    let (b, store_b) = worker(url, "worker-b", scratch.path()).await?;
    let mut policy = lab::policy(&catalog);
    policy.max_concurrent = 4;
    let plan = a
        .create_plan(NewPlan {
            name: "two workers, one crash".into(),
            policy,
            maintenance_window: None,
            approval_required: false,
            targets: lab::register(&store_a, &fleet).await?,
            artifacts: vec![],
            created_by: None,
            idempotency_key: None,
        })
        .await?
        .plan;
    let ha = a.spawn();
    a.start(plan.id, Some(UserId::new())).await?;
    // Worker A is busy with hosts: now B joins, and A dies.
    let began = Instant::now();
    while ha.active_runs() == 0 {
        anyhow::ensure!(began.elapsed() < Duration::from_secs(30), "A never claimed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let hb = b.spawn();
    let held = ha.active_runs();
    ha.abort(); // no release: its leases expire and B takes over
    println!("worker A dropped holding {held} run(s)");
    let status = hb.wait_plan(plan.id, Duration::from_secs(90)).await;
    hb.shutdown().await;
    println!("plan {}: {status:?}", plan.id);
    anyhow::ensure!(
        status == Some(PlanStatus::Completed),
        "plan ended {status:?}"
    );
    lab::assert_bios_flashes(&fleet, 1)?;
    store_a.close().await;
    store_b.close().await;
    fleet.shutdown().await;
    Ok(())
}

async fn run() -> anyhow::Result<()> {
    let db = format!("ff_example_workers_{}", std::process::id());
    admin(format!("CREATE DATABASE {db}")).await?;
    let base = server();
    let url = match base.rfind('/') {
        Some(i) if base[..i].contains("://") && base[..i].matches('/').count() >= 2 => {
            format!("{}/{db}", &base[..i])
        }
        _ => anyhow::bail!("FIRMFLOW_EXAMPLE_DATABASE_URL must end in /<database>: {base}"),
    };
    let r = campaign(&url).await;
    admin(format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")).await?;
    r
}

#[cfg_attr(test, allow(dead_code))]
#[tokio::main]
async fn main() -> anyhow::Result<()> {
    run().await
}

#[cfg(test)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_workers_run() {
    run().await.expect("postgres_workers");
}
