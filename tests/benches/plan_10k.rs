//! A 10,000-host plan on the memory store with an instant in-process driver:
//! prints wall time, fenced transitions per second and peak RSS.
//!
//! `cargo bench -p firmflow-tests --bench plan_10k` (release profile).
//! Options through the environment: `HOSTS` (10000), `MAX_CONCURRENT` (500).

use firmflow_core::checks::CheckRegistry;
use firmflow_core::executor::{Executor, ExecutorConfig, Services};
use firmflow_core::model::*;
use firmflow_core::store::{EventStore as _, HostStore as _, PlanStore as _, RunStore as _};
use firmflow_core::testkit::fakes::{ArtifactListResolver, FakeCluster, FakeFleet, HostScript};
use firmflow_core::{Clock, SystemClock};
use firmflow_store_memory::MemoryStore;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run());
}

async fn run() {
    let hosts = env_usize("HOSTS", 10_000);
    let max_concurrent = env_usize("MAX_CONCURRENT", 500);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = Arc::new(MemoryStore::new(clock.clone()));
    let fleet = FakeFleet::new();
    let instant = HostScript {
        install_time: Duration::ZERO,
        reboot_time: Duration::ZERO,
        ..HostScript::default()
    };
    let mut targets = Vec::with_capacity(hosts);
    for i in 0..hosts {
        let fqdn = format!("h{i:05}.bench");
        fleet.add_host(&fqdn, instant.clone());
        let h = store
            .add_host(NewHost::idrac(
                &fqdn,
                format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255),
            ))
            .await
            .expect("host");
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
    let mut cfg = ExecutorConfig::new("bench");
    cfg.slots = max_concurrent;
    cfg.poll_interval = Duration::from_millis(20);
    cfg.heartbeat_interval = Duration::from_secs(5);
    cfg.job_poll_initial = Duration::ZERO;
    cfg.job_poll_max = Duration::ZERO;
    cfg.ready_poll_interval = Duration::ZERO;
    cfg.progress_capacity = 1024;
    let exec = Executor::new(
        Services {
            store: store.clone(),
            bmc: Arc::new(fleet.clone()),
            cluster: Some(Arc::new(FakeCluster::new(Duration::ZERO))),
            resolver: Arc::new(ArtifactListResolver),
            checks: CheckRegistry::builtin(),
            clock,
        },
        cfg,
    );
    let plan = exec
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
    println!("plan_10k: RSS after setup  {:.1} MB", rss_mb());
    let handle = exec.spawn();
    let writes_before = store.fenced_writes();
    let started = Instant::now();
    exec.start(plan.id, None).await.expect("start");
    let status = loop {
        let p = store.get_plan(plan.id).await.expect("plan");
        if p.status.is_final() {
            break p.status;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let wall = started.elapsed();
    let writes = store.fenced_writes() - writes_before;
    handle.shutdown().await;
    let counts = store.run_counts(plan.id).await.expect("counts");
    assert_eq!(status, PlanStatus::Completed, "{counts:?}");
    assert_eq!(counts.completed as usize, hosts);
    println!(
        "plan_10k: hosts={hosts} max_concurrent={max_concurrent} packages/host=2 (iDRAC + BIOS with reboot)"
    );
    println!("plan_10k: wall time        {:.3} s", wall.as_secs_f64());
    println!(
        "plan_10k: fenced writes    {writes} ({:.1} per host)",
        writes as f64 / hosts as f64
    );
    println!(
        "plan_10k: transitions/s    {:.0}",
        writes as f64 / wall.as_secs_f64()
    );
    println!(
        "plan_10k: hosts/s          {:.0}",
        hosts as f64 / wall.as_secs_f64()
    );
    println!("plan_10k: peak RSS         {:.1} MB", peak_rss_mb());
    println!("plan_10k: RSS at the end   {:.1} MB", rss_mb());
    let events = store
        .list_events(&firmflow_core::store::EventFilter::default())
        .await
        .map(|e| e.len())
        .unwrap_or(0);
    println!("plan_10k: audit events     {events}");
    if std::env::var("PROBE").is_ok() {
        let runs = store.list_runs(plan.id).await.expect("runs");
        let ctx_bytes: usize = runs
            .iter()
            .map(|r| serde_json::to_string(&r.ctx).map(|s| s.len()).unwrap_or(0))
            .sum();
        println!(
            "probe: ctx json bytes/run {}",
            ctx_bytes / runs.len().max(1)
        );
        println!(
            "probe: {}",
            serde_json::to_string(&runs[0].ctx).unwrap_or_default()
        );
    }
}
