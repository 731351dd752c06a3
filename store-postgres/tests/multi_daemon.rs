//! Two executors (separate pools and worker ids: two daemons) share one
//! PostgreSQL and run a 200-host plan against the simulated iDRAC fleet
//! through the real Redfish driver: every run completes once, maxConcurrent
//! holds across both, no component is installed twice. Then one executor is
//! killed without releasing its leases, and the other takes its runs over
//! after they expire, resuming from their checkpoints.

mod common;

use firmflow_core::checks::CheckRegistry;
use firmflow_core::credentials::Credential;
use firmflow_core::executor::{Executor, ExecutorConfig, ExecutorHandle, Services};
use firmflow_core::model::*;
use firmflow_core::store::{HostStore, PlanStore, RunStore, Store};
use firmflow_core::testkit::fakes::ArtifactListResolver;
use firmflow_core::{Clock, SystemClock};
use firmflow_redfish::{Connector, ConnectorConfig};
use firmflow_sim::{Flavor, Fleet, PackageKind};
use firmflow_store_postgres::{PgConfig, PgCredentialProvider, PgStore};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

const HOSTS: usize = 200;
const MAX_CONCURRENT: u32 = 16;

fn executor(store: &PgStore, name: &str, connector: Arc<Connector>) -> Executor {
    let mut cfg = ExecutorConfig::new(name);
    cfg.slots = 12;
    cfg.lease_ttl = Duration::from_secs(3);
    cfg.heartbeat_interval = Duration::from_millis(500);
    cfg.safety_margin = Duration::from_millis(800);
    cfg.reclaim_delay = Duration::from_millis(500);
    cfg.poll_interval = Duration::from_millis(100);
    cfg.job_poll_initial = Duration::from_millis(20);
    cfg.job_poll_max = Duration::from_millis(100);
    cfg.ready_poll_interval = Duration::from_millis(20);
    cfg.ready_stable_reads = 1;
    let store: Arc<dyn Store> = Arc::new(store.clone());
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    Executor::new(
        Services {
            store,
            bmc: connector,
            cluster: None,
            resolver: Arc::new(ArtifactListResolver),
            checks: CheckRegistry::builtin(),
            clock,
        },
        cfg,
    )
}

async fn daemon(db: &str) -> PgStore {
    PgStore::connect(
        PgConfig::new(common::db_url(db))
            .max_connections(8)
            .secret_key(common::key()),
        Arc::new(SystemClock),
    )
    .await
    .expect("daemon store")
}

fn connector(store: &PgStore, reference: &str) -> Arc<Connector> {
    let cfg = ConnectorConfig {
        scheme: "http".into(),
        default_credential: Some(reference.into()),
        lc_settle: Duration::ZERO,
        ..ConnectorConfig::default()
    };
    let hosts: Arc<dyn HostStore> = Arc::new(store.clone());
    Arc::new(
        Connector::new(cfg, Arc::new(PgCredentialProvider::new(store.clone())))
            .with_host_store(hosts),
    )
}

async fn wait_until<F, Fut>(what: &str, limit: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while !f().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_daemons_run_a_200_host_plan_and_survive_a_crash() {
    let fleet = Fleet::builder()
        .hosts(HOSTS)
        .flavor(Flavor::Idrac9)
        .http(true)
        .speed(20_000.0)
        .seed(11)
        .start()
        .await
        .expect("sim fleet");
    let bios = firmflow_sim::Package {
        system_ids: vec![],
        component_id: "159".into(),
        name: "BIOS".into(),
        version: "9.9.9".into(),
        reboot_required: true,
        kind: PackageKind::Bios,
    };
    let image = fleet.serve_file("BIOS_9.9.9.EXE", bios.to_bytes());

    let (db, guard) = common::fresh_db("daemons").await;
    let admin = daemon(&db).await;
    let sim0 = &fleet.hosts()[0];
    // The fleet's login, sealed in the database, resolved through pg:<id>.
    let cred = admin
        .store_credential(
            None,
            CredentialKind::Idrac,
            &Credential::new(&sim0.username, &sim0.password),
        )
        .await
        .expect("credential");
    let mut targets = Vec::new();
    for h in fleet.hosts() {
        let mut n = NewHost::idrac(format!("{}.lab.test", h.name), h.addr.to_string());
        n.service_tag = Some(h.service_tag.clone());
        let host = admin.add_host(n).await.expect("host");
        targets.push(PlanTarget {
            host_id: host.id,
            priority: 0,
            conditions: serde_json::json!({}),
        });
    }
    let mut policy = Policy::new(UpdateMode::SpecificPackage);
    policy.max_concurrent = MAX_CONCURRENT;
    policy.min_hosts_online = 0;
    policy.allow_downtime = true;
    policy.require_maintenance_mode = false;
    policy.retry = Some(RetrySettings {
        max_attempts: 5,
        initial_backoff_secs: 0,
        ..RetrySettings::default()
    });

    // Two daemons: own pools, own worker ids, own connectors.
    let store_a = daemon(&db).await;
    let store_b = daemon(&db).await;
    let exec_a = executor(&store_a, "daemon-a", connector(&store_a, &cred.vault_path));
    let exec_b = executor(&store_b, "daemon-b", connector(&store_b, &cred.vault_path));
    let plan = exec_a
        .create_plan(NewPlan {
            name: "bios 9.9.9".into(),
            policy,
            maintenance_window: None,
            approval_required: false,
            targets,
            artifacts: vec![Artifact {
                id: ArtifactId::new(),
                component: "159".into(),
                image_uri: image,
                version: Some("9.9.9".into()),
                checksum: None,
                size_bytes: None,
                metadata: serde_json::json!({ "rebootRequired": true }),
            }],
            created_by: None,
            idempotency_key: Some("multi-daemon".into()),
        })
        .await
        .expect("plan")
        .plan;

    // Sample in-flight runs straight from the database all along.
    let stop = Arc::new(AtomicBool::new(false));
    let max_running = Arc::new(AtomicI64::new(0));
    let sampler = {
        let (pool, stop, max_running, pid) = (
            admin.pool().clone(),
            stop.clone(),
            max_running.clone(),
            plan.id,
        );
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if let Ok(n) = sqlx::query_scalar::<_, i64>(
                    "SELECT count(*) FROM host_runs WHERE plan_id = $1 AND state = 'running'",
                )
                .bind(pid.0)
                .fetch_one(&pool)
                .await
                {
                    max_running.fetch_max(n, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };

    let handle_a: ExecutorHandle = exec_a.spawn();
    let handle_b: ExecutorHandle = exec_b.spawn();
    exec_a.start(plan.id, None).await.expect("start");
    exec_b.wake();

    // Let both work, then kill A while it holds runs: no release, no
    // further heartbeats.
    let runs = store_a.clone();
    wait_until("daemon A holds runs mid-plan", Duration::from_secs(60), || {
        let runs = runs.clone();
        let pid = plan.id;
        async move {
            let c = runs.run_counts(pid).await.expect("counts");
            let held: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM host_runs WHERE state = 'running' AND lease_owner LIKE 'daemon-a/%'",
            )
            .fetch_one(runs.pool())
            .await
            .unwrap_or(0);
            c.completed >= 40 && held > 0
        }
    })
    .await;
    handle_a.abort();
    // Statements already sent by A's aborted tasks settle; then whatever A
    // still holds is orphaned: leases that nobody renews or releases.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let orphaned: Vec<RunId> = sqlx::query_scalar::<_, uuid::Uuid>(
        "SELECT id FROM host_runs WHERE state = 'running' AND lease_owner LIKE 'daemon-a/%'",
    )
    .fetch_all(admin.pool())
    .await
    .expect("orphans")
    .into_iter()
    .map(RunId)
    .collect();
    assert!(!orphaned.is_empty());

    let status = handle_b.wait_plan(plan.id, Duration::from_secs(120)).await;
    if status != Some(PlanStatus::Completed) {
        let runs = admin.list_runs(plan.id).await.unwrap_or_default();
        let bad: Vec<String> = runs
            .iter()
            .filter(|r| r.state != RunState::Completed)
            .take(5)
            .map(|r| {
                format!(
                    "{} {:?} resumes={} attempts={} err={:?} msg={:?}",
                    r.id, r.state, r.resumes, r.attempts, r.last_error, r.ctx.progress.message
                )
            })
            .collect();
        let p = admin.get_plan(plan.id).await.map(|p| p.status_reason);
        panic!("plan ended {status:?} ({p:?}); unfinished/failed runs: {bad:#?}");
    }
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.await;

    // Every run completed, exactly once per host.
    let all = admin.list_runs(plan.id).await.expect("runs");
    assert_eq!(all.len(), HOSTS);
    assert!(
        all.iter().all(|r| r.state == RunState::Completed),
        "all completed"
    );
    let completions: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM system_events WHERE plan_id = $1 AND run_id IS NOT NULL \
           AND details->>'to' = 'completed'",
    )
    .bind(plan.id.0)
    .fetch_one(admin.pool())
    .await
    .expect("completions");
    assert!(
        completions <= HOSTS as i64,
        "{completions} completion events"
    );
    // maxConcurrent held across both daemons.
    let peak = max_running.load(Ordering::Relaxed);
    assert!(peak <= i64::from(MAX_CONCURRENT), "peak in flight {peak}");
    assert!(peak > 1, "both daemons worked in parallel (peak {peak})");
    // Both daemons claimed runs.
    let owners: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT split_part(details->>'worker', '/', 1) FROM system_events \
         WHERE plan_id = $1 AND event_type IN ('run_claimed', 'run_reclaimed') ORDER BY 1",
    )
    .bind(plan.id.0)
    .fetch_all(admin.pool())
    .await
    .expect("owners");
    assert_eq!(owners, vec!["daemon-a".to_string(), "daemon-b".to_string()]);
    // A's runs were taken over (a resume, not an attempt) and finished by B.
    for id in &orphaned {
        let r = admin.get_run(*id).await.expect("run");
        assert_eq!(r.state, RunState::Completed);
        assert!(r.resumes >= 1, "run {id} was resumed");
    }
    // No component installed twice, and every BIOS is at 9.9.9.
    for h in fleet.hosts() {
        assert_eq!(
            fleet.install_count(&h.name, "159"),
            1,
            "BIOS installs on {}",
            h.name
        );
        assert!(
            fleet
                .firmware(&h.name)
                .iter()
                .any(|(id, _, v)| id == "159" && v == "9.9.9"),
            "{} BIOS version: {:?}",
            h.name,
            fleet.firmware(&h.name)
        );
    }
    handle_b.shutdown().await;
    store_a.close().await;
    store_b.close().await;
    admin.close().await;
    fleet.shutdown().await;
    drop(guard);
}
