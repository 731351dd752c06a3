//! End-to-end over real HTTP: the executor, the memory store, the real
//! Redfish connector and the real resolvers against a simulated iDRAC fleet
//! on 127.0.0.1 (HTTPS, the fleet's certificate as the only trust anchor).
//! Real sockets mean real time: the simulator runs at a high speed factor
//! and the executor with short poll intervals.

use firmflow_catalog::{CatalogIndex, CatalogSource, assess_host};
use firmflow_core::bmc::BmcConnector as _;
use firmflow_core::model::*;
use firmflow_core::store::RunStore as _;
use firmflow_sim::{Fault, FaultRule, Flavor, PackageKind};
use firmflow_tests::*;
use std::collections::BTreeMap;
use std::time::Duration;

/// Real-time bound for one plan; a healthy run takes a few seconds.
const PLAN_TIMEOUT: Duration = Duration::from_secs(40);

const BIOS: &str = "159";
const IDRAC: &str = "25227";

fn bios_pkg(version: &str, systems: &[u32]) -> firmflow_sim::Package {
    sim_package(BIOS, "BIOS", version, PackageKind::Bios, systems)
}

fn idrac_pkg(version: &str, systems: &[u32]) -> firmflow_sim::Package {
    sim_package(
        IDRAC,
        "Integrated Dell Remote Access Controller",
        version,
        PackageKind::Idrac,
        systems,
    )
}

async fn runs_by_host(w: &SimWorld, plan: PlanId) -> BTreeMap<String, HostRun> {
    w.store
        .list_runs(plan)
        .await
        .expect("runs")
        .into_iter()
        .map(|r| (w.sim_name(r.host_id).to_string(), r))
        .collect()
}

fn components_in_install_order(w: &SimWorld, sim_name: &str) -> Vec<String> {
    w.fleet
        .installs(sim_name)
        .into_iter()
        .map(|r| r.component_id)
        .collect()
}

/// Update jobs (`JID_`) the simulated iDRAC ever created, reboot jobs aside.
fn update_jobs(w: &SimWorld, sim_name: &str) -> usize {
    w.fleet
        .jobs(sim_name)
        .iter()
        .filter(|(id, ..)| id.starts_with("JID_"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn specific_package_rolling_update_over_https() {
    let w = SimWorld::builder().hosts(5).start().await;
    let artifacts = vec![
        w.artifact(&bios_pkg("3.0.0", &[])),
        w.artifact(&idrac_pkg("7.00.00.00", &[])),
    ];
    let hosts: Vec<&Host> = w.hosts.iter().map(|h| &h.host).collect();
    let mut np = realtime_plan(&hosts, UpdateMode::SpecificPackage, artifacts);
    np.policy.max_concurrent = 2;
    let exec = w.executor("e2e-a");
    let handle = exec.spawn();
    let pid = start(&exec, np).await;
    assert_eq!(
        handle.wait_plan(pid, PLAN_TIMEOUT).await,
        Some(PlanStatus::Completed)
    );
    let runs = runs_by_host(&w, pid).await;
    for h in &w.hosts {
        let name = h.sim.name.as_str();
        assert_eq!(w.version(name, BIOS).as_deref(), Some("3.0.0"), "{name}");
        assert_eq!(
            w.version(name, IDRAC).as_deref(),
            Some("7.00.00.00"),
            "{name}"
        );
        assert_eq!(w.fleet.install_count(name, BIOS), 1, "{name}: BIOS once");
        assert_eq!(w.fleet.install_count(name, IDRAC), 1, "{name}: iDRAC once");
        assert_eq!(
            components_in_install_order(&w, name),
            vec![IDRAC.to_string(), BIOS.to_string()],
            "{name}: BMC first"
        );
        assert_eq!(w.fleet.power_state(name).as_deref(), Some("On"));
        assert_eq!(w.fleet.live_sessions(name), 0, "{name}: sessions closed");
        let r = &runs[name];
        assert_eq!(r.state, RunState::Completed, "{name}: {:?}", r.last_error);
        assert_eq!(r.ctx.progress.percentage, 100);
        let outcomes: Vec<(&str, Option<&str>)> = r
            .ctx
            .results
            .components
            .iter()
            .map(|c| (c.outcome.as_str(), c.to_version.as_deref()))
            .collect();
        assert_eq!(
            outcomes,
            vec![
                ("installed", Some("7.00.00.00")),
                ("installed", Some("3.0.0"))
            ],
            "{name}"
        );
    }
    assert!(max_in_flight(w.store.as_ref(), pid).await <= 2);
    assert!(
        w.connector.insecure_connections().is_empty(),
        "verified TLS only"
    );
    handle.shutdown().await;
    w.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_from_catalog_brings_every_model_to_compliance() {
    // Three hosts, one of each iDRAC9 model; a catalog with one BIOS per
    // model and one iDRAC package, written by the simulator's writer.
    let w = SimWorld::builder().hosts(3).start().await;
    let sids: Vec<u32> = w.hosts.iter().map(|h| h.sim.system_id).collect();
    let bios_for: BTreeMap<u32, &str> = [(1814, "2.19.1"), (2300, "2.16.0"), (2973, "1.9.2")]
        .into_iter()
        .collect();
    let mut pkgs: Vec<firmflow_sim::Package> = bios_for
        .iter()
        .map(|(sid, v)| bios_pkg(v, &[*sid]))
        .collect();
    pkgs.push(idrac_pkg("7.10.50.00", &sids));
    let url = w.serve_catalog(&pkgs);
    let hosts: Vec<&Host> = w.hosts.iter().map(|h| &h.host).collect();
    let mut np = realtime_plan(&hosts, UpdateMode::LatestFromCatalog, vec![]);
    np.policy.catalog_url = Some(url.clone());
    np.policy.max_concurrent = 3;
    let exec = w.executor("e2e-b");
    let handle = exec.spawn();
    let pid = start(&exec, np.clone()).await;
    assert_eq!(
        handle.wait_plan(pid, PLAN_TIMEOUT).await,
        Some(PlanStatus::Completed)
    );
    // Re-read every host through the driver: nothing left to upgrade.
    let loaded = CatalogSource::new()
        .expect("client")
        .load(&url)
        .await
        .expect("catalog");
    let index = CatalogIndex::new(loaded.catalog.clone());
    for h in &w.hosts {
        let name = h.sim.name.as_str();
        let want = bios_for[&h.sim.system_id];
        assert_eq!(w.version(name, BIOS).as_deref(), Some(want), "{name}");
        assert_eq!(w.version(name, IDRAC).as_deref(), Some("7.10.50.00"));
        assert_eq!(w.fleet.install_count(name, BIOS), 1);
        assert_eq!(w.fleet.install_count(name, IDRAC), 1);
        let d = w.connector.connect(&h.host).await.expect("driver");
        let system = d.system().await.expect("system");
        let inv = d.inventory().await.expect("inventory");
        d.close().await.expect("logout");
        let report = assess_host(&index, &h.host.fqdn, &system, &inv, &np.policy).expect("assess");
        assert_eq!(report.summary.upgrade, 0, "{}", report.table());
        assert!(report.summary.same >= 2, "{}", report.table());
    }
    handle.shutdown().await;
    w.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_job_id_resumes_on_another_executor_without_reflashing() {
    let w = SimWorld::builder().hosts(1).start().await;
    let name = w.hosts[0].sim.name.clone();
    let artifacts = vec![w.artifact(&bios_pkg("3.0.0", &[]))];
    let np = realtime_plan(&[&w.hosts[0].host], UpdateMode::SpecificPackage, artifacts);
    let mut cfg = realtime_config("e2e-c1");
    cfg.lease_ttl = Duration::from_secs(2);
    let exec_a = w.executor_with(cfg);
    let handle_a = exec_a.spawn();
    let pid = start(&exec_a, np).await;
    let deadline = tokio::time::Instant::now() + PLAN_TIMEOUT;
    loop {
        let r = w.store.list_runs(pid).await.expect("runs").remove(0);
        if r.ctx
            .checkpoint
            .packages
            .iter()
            .any(|p| matches!(p.status, PackageStatus::Submitted { .. }))
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "job id never checkpointed"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    handle_a.abort(); // the process dies: no release, no more heartbeats
    assert_eq!(update_jobs(&w, &name), 1);
    let exec_b = w.executor("e2e-c2");
    let handle_b = exec_b.spawn();
    assert_eq!(
        handle_b.wait_plan(pid, PLAN_TIMEOUT).await,
        Some(PlanStatus::Completed)
    );
    assert_eq!(update_jobs(&w, &name), 1, "never submitted again");
    assert_eq!(w.fleet.install_count(&name, BIOS), 1, "flashed once");
    assert_eq!(w.version(&name, BIOS).as_deref(), Some("3.0.0"));
    let r = w.store.list_runs(pid).await.expect("runs").remove(0);
    assert_eq!((r.resumes, r.attempts), (1, 0), "a takeover is a resume");
    assert!(r.lease_epoch >= 2);
    handle_b.shutdown().await;
    w.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_faults_are_survived() {
    let w = SimWorld::builder().hosts(2).start().await;
    let burst = w.hosts[0].sim.name.clone();
    let lc = w.hosts[1].sim.name.clone();
    let artifacts = vec![w.artifact(&bios_pkg("3.0.0", &[]))];
    let hosts: Vec<&Host> = w.hosts.iter().map(|h| &h.host).collect();
    let mut np = realtime_plan(&hosts, UpdateMode::SpecificPackage, artifacts);
    np.policy.max_concurrent = 2;
    // Retries one real second apart: the LC outage (2 s real) must be
    // outlived by the retry policy, not by luck.
    np.policy.retry = Some(RetrySettings {
        max_attempts: 5,
        initial_backoff_secs: 1,
        multiplier: 1.0,
        max_backoff_secs: 1,
        jitter: 0.0,
    });
    // The first two requests to one iDRAC get 500 SYS518; the other's
    // Lifecycle Controller is not ready for 8000 Dell-seconds (2 s real:
    // long enough to be met even on a loaded machine).
    w.fleet.inject(&burst, Fault::ServerErrorBurst { count: 2 });
    w.fleet.inject(&lc, Fault::LcNotReady { secs: 8000 });
    let exec = w.executor("e2e-d1");
    let handle = exec.spawn();
    let pid = start(&exec, np).await;
    assert_eq!(
        handle.wait_plan(pid, PLAN_TIMEOUT).await,
        Some(PlanStatus::Completed)
    );
    let runs = runs_by_host(&w, pid).await;
    for name in [&burst, &lc] {
        assert_eq!(runs[name].state, RunState::Completed);
        assert_eq!(w.fleet.install_count(name, BIOS), 1, "{name}");
        assert_eq!(w.version(name, BIOS).as_deref(), Some("3.0.0"));
    }
    for name in [&burst, &lc] {
        let r = &runs[name];
        assert!(r.attempts >= 1, "{name}: the fault cost an attempt");
        assert!(
            r.ctx.results.errors.iter().all(|e| e.class == "transient"),
            "{name}: {:?}",
            r.ctx.results.errors
        );
    }
    let burst_run = &runs[&burst];
    assert!(
        burst_run
            .ctx
            .results
            .errors
            .iter()
            .any(|e| e.message.contains("SYS518")),
        "{:?}",
        burst_run.ctx.results.errors
    );
    handle.shutdown().await;
    w.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_job_fails_the_run_without_retry() {
    let w = SimWorld::builder().hosts(1).start().await;
    let name = w.hosts[0].sim.name.clone();
    let before = w.version(&name, BIOS);
    let artifacts = vec![w.artifact(&bios_pkg("3.0.0", &[]))];
    let np = realtime_plan(&[&w.hosts[0].host], UpdateMode::SpecificPackage, artifacts);
    w.fleet.inject(&name, Fault::FailJob);
    let exec = w.executor("e2e-d2");
    let handle = exec.spawn();
    let pid = start(&exec, np).await;
    assert_eq!(
        handle.wait_plan(pid, PLAN_TIMEOUT).await,
        Some(PlanStatus::Failed)
    );
    let r = w.store.list_runs(pid).await.expect("runs").remove(0);
    assert_eq!(r.state, RunState::Failed);
    assert_eq!(r.attempts, 1, "terminal: no retry");
    assert!(
        r.last_error.as_deref().unwrap_or("").contains("SUP0538"),
        "{:?}",
        r.last_error
    );
    assert_eq!(update_jobs(&w, &name), 1, "submitted once");
    assert_eq!(w.fleet.install_count(&name, BIOS), 0);
    assert_eq!(w.version(&name, BIOS), before);
    handle.shutdown().await;
    w.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_version_after_install_fails_and_rolls_back() {
    let w = SimWorld::builder().hosts(1).start().await;
    let name = w.hosts[0].sim.name.clone();
    let before = w.version(&name, BIOS).expect("BIOS");
    let artifacts = vec![w.artifact(&bios_pkg("3.0.0", &[]))];
    let mut np = realtime_plan(&[&w.hosts[0].host], UpdateMode::SpecificPackage, artifacts);
    np.policy.rollback_on_failure = true;
    // The install "completes" but the BIOS reports another version (once:
    // the rollback install behaves).
    w.fleet.inject_rule(
        FaultRule::new(Fault::WrongVersion {
            version: Some("2.99.9".into()),
        })
        .on_host(&name)
        .times(1),
    );
    let exec = w.executor("e2e-d3");
    let handle = exec.spawn();
    let pid = start(&exec, np).await;
    assert_eq!(
        handle.wait_plan(pid, PLAN_TIMEOUT).await,
        Some(PlanStatus::Failed)
    );
    let r = w.store.list_runs(pid).await.expect("runs").remove(0);
    assert!(
        r.last_error
            .as_deref()
            .unwrap_or("")
            .contains("installed version is 2.99.9"),
        "{:?}",
        r.last_error
    );
    assert_eq!(r.attempts, 1, "terminal: no retry");
    assert_eq!(r.ctx.results.components[0].outcome, "rolled_back");
    assert_eq!(
        w.version(&name, BIOS).as_deref(),
        Some(before.as_str()),
        "rolled back to the previous image"
    );
    let installs: Vec<(String, String)> = w
        .fleet
        .installs(&name)
        .into_iter()
        .map(|i| (i.from_version, i.to_version))
        .collect();
    assert_eq!(
        installs,
        vec![
            (before.clone(), "3.0.0".to_string()),
            ("2.99.9".to_string(), before.clone())
        ],
        "the update, then the rollback"
    );
    assert_eq!(w.fleet.power_state(&name).as_deref(), Some("On"));
    handle.shutdown().await;
    w.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idrac10_and_generic_redfish_complete_a_single_package_update() {
    // Host 0 is an iDRAC10 (task monitors), host 1 a generic DMTF BMC
    // reached with accept-invalid TLS, which the connector records.
    let w = SimWorld::builder()
        .hosts(2)
        .flavor_for(0, Flavor::Idrac10)
        .flavor_for(1, Flavor::Generic)
        .tls_for(1, SimTls::AcceptInvalid)
        .start()
        .await;
    assert_eq!(w.hosts[1].host.mgmt_kind, MgmtKind::Redfish);
    let artifacts = vec![w.artifact(&bios_pkg("3.0.0", &[]))];
    let hosts: Vec<&Host> = w.hosts.iter().map(|h| &h.host).collect();
    let mut np = realtime_plan(&hosts, UpdateMode::SpecificPackage, artifacts);
    np.policy.max_concurrent = 2;
    let exec = w.executor("e2e-e");
    let handle = exec.spawn();
    let pid = start(&exec, np).await;
    assert_eq!(
        handle.wait_plan(pid, PLAN_TIMEOUT).await,
        Some(PlanStatus::Completed)
    );
    let runs = runs_by_host(&w, pid).await;
    for h in &w.hosts {
        let name = h.sim.name.as_str();
        assert_eq!(runs[name].state, RunState::Completed, "{name}");
        assert_eq!(w.version(name, BIOS).as_deref(), Some("3.0.0"), "{name}");
        assert_eq!(w.fleet.install_count(name, BIOS), 1, "{name}");
    }
    let insecure = w.connector.insecure_connections();
    assert!(!insecure.is_empty(), "accept-invalid is recorded");
    assert!(insecure.iter().all(|i| i.host_id == w.hosts[1].host.id));
    handle.shutdown().await;
    w.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_between_intent_and_job_id_adopts_the_idrac_job() {
    // The run journaled "submitting", the iDRAC took the job, and the
    // process died before the job id was recorded: the successor must find
    // the job in the iDRAC's queue (the real driver's find_job), not submit.
    let w = SimWorld::builder().hosts(1).start().await;
    let name = w.hosts[0].sim.name.clone();
    let artifacts = vec![w.artifact(&bios_pkg("3.0.0", &[]))];
    let np = realtime_plan(&[&w.hosts[0].host], UpdateMode::SpecificPackage, artifacts);
    let mut cfg = realtime_config("e2e-f1");
    cfg.lease_ttl = Duration::from_secs(1);
    cfg.safety_margin = Duration::from_millis(300);
    cfg.heartbeat_interval = Duration::from_millis(200);
    let exec_a = w.executor_with(cfg);
    let handle_a = exec_a.spawn();
    let pid = start(&exec_a, np).await;
    let deadline = tokio::time::Instant::now() + PLAN_TIMEOUT;
    while update_jobs(&w, &name) == 0 {
        assert!(tokio::time::Instant::now() < deadline, "never submitted");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    handle_a.abort();
    // Rewind the checkpoint to the intent only, through a fenced claim by a
    // helper worker once A's lease has expired.
    let claimed = loop {
        let mut c = w
            .store
            .claim(firmflow_core::store::ClaimRequest {
                worker: &WorkerId("surgeon".into()),
                plan: pid,
                slots: 1,
                lease_ttl: Duration::from_secs(10),
                reclaim_delay: Duration::from_millis(50),
                live_online: &Default::default(),
                admission: &firmflow_core::policy::StandardAdmission,
            })
            .await
            .expect("claim");
        if let Some(c) = c.pop() {
            break c;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "lease never expired"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // (A may also have died inside that very window: then it is left as is.)
    let mut ctx = claimed.run.ctx.clone();
    for p in &mut ctx.checkpoint.packages {
        // The intent as journaled (the simulated iDRAC's queue was empty).
        let intent = match &p.status {
            PackageStatus::Submitted {
                intent: Some(i), ..
            } => Some(i.clone()),
            PackageStatus::Submitted { .. } | PackageStatus::AwaitingReboot { .. } => {
                Some(Intent {
                    token: uuid::Uuid::new_v4(),
                    at: chrono::Utc::now(),
                    known_jobs: Some(Vec::new()),
                })
            }
            _ => None,
        };
        if let Some(intent) = intent {
            p.status = PackageStatus::Submitting {
                intent: Some(intent),
            };
        }
    }
    assert!(
        ctx.checkpoint
            .packages
            .iter()
            .all(|p| matches!(p.status, PackageStatus::Submitting { .. })),
        "{:?}",
        ctx.checkpoint.packages
    );
    w.store.release(&claimed.lease, ctx).await.expect("release");
    let exec_b = w.executor("e2e-f2");
    let handle_b = exec_b.spawn();
    assert_eq!(
        handle_b.wait_plan(pid, PLAN_TIMEOUT).await,
        Some(PlanStatus::Completed)
    );
    assert_eq!(update_jobs(&w, &name), 1, "the iDRAC's job was adopted");
    assert_eq!(w.fleet.install_count(&name, BIOS), 1);
    assert_eq!(w.version(&name, BIOS).as_deref(), Some("3.0.0"));
    handle_b.shutdown().await;
    w.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_file_mode_uploads_and_installs() {
    // MULTIPART_FILE: a local package, verified into the cache, pushed by
    // the driver (iDRAC9 multipart push, and the generic BMC's).
    let w = SimWorld::builder()
        .hosts(2)
        .flavor_for(1, Flavor::Generic)
        .start()
        .await;
    let pkg = bios_pkg("3.0.0", &[]);
    let bytes = pkg.to_bytes();
    let file = w.dir().join(pkg.file_name());
    std::fs::write(&file, &bytes).expect("write package");
    let d = firmflow_catalog::verify::digest_bytes(&bytes);
    let artifact = Artifact {
        id: ArtifactId::new(),
        component: BIOS.into(),
        image_uri: file.display().to_string(),
        version: Some("3.0.0".into()),
        checksum: Some(format!("sha256:{}", d.sha256)),
        size_bytes: Some(d.size as i64),
        metadata: serde_json::json!({ "rebootRequired": true }),
    };
    let hosts: Vec<&Host> = w.hosts.iter().map(|h| &h.host).collect();
    let mut np = realtime_plan(&hosts, UpdateMode::MultipartFile, vec![artifact]);
    np.policy.max_concurrent = 2;
    let exec = w.executor("e2e-g");
    let handle = exec.spawn();
    let pid = start(&exec, np).await;
    assert_eq!(
        handle.wait_plan(pid, PLAN_TIMEOUT).await,
        Some(PlanStatus::Completed)
    );
    for h in &w.hosts {
        let name = h.sim.name.as_str();
        assert_eq!(w.version(name, BIOS).as_deref(), Some("3.0.0"), "{name}");
        assert_eq!(w.fleet.install_count(name, BIOS), 1, "{name}");
        let stats = w.fleet.requests(name);
        assert_eq!(
            stats.count("POST", "/redfish/v1/UpdateService/MultipartUpload"),
            1,
            "{name}: pushed once: {:?}",
            stats.by_endpoint
        );
    }
    handle.shutdown().await;
    w.shutdown().await;
}

// An iDRAC RepositoryUpdate job reads Completed once its child
// FirmwareUpdate jobs are created and downloaded (the children then
// install, or wait for a reboot): the driver follows each package's child.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_repository_delivery_installs_each_component_once() {
    // LATEST_FROM_CATALOG delivered as iDRAC InstallFromRepository: the
    // iDRAC reads the catalog share itself. One repository job may carry
    // every applicable package; nothing may be flashed twice.
    let w = SimWorld::builder().hosts(1).start().await;
    let name = w.hosts[0].sim.name.clone();
    let sid = w.hosts[0].sim.system_id;
    let url = w.serve_catalog(&[bios_pkg("3.0.0", &[sid]), idrac_pkg("7.10.50.00", &[sid])]);
    let repo = url.trim_end_matches("/Catalog.xml").to_string();
    let cache = std::sync::Arc::new(
        firmflow_catalog::PackageCache::with_default_client(w.dir().join("repo-cache"))
            .expect("cache"),
    );
    let source = std::sync::Arc::new(CatalogSource::new().expect("source"));
    let resolver = firmflow_catalog::CatalogResolver::with_options(
        source,
        cache,
        firmflow_catalog::CatalogResolverOptions {
            delivery: firmflow_catalog::Delivery::Repository {
                repository_uri: repo,
                catalog_file: "Catalog.xml".into(),
            },
            verify: false,
            ..Default::default()
        },
    );
    let exec = firmflow_core::executor::Executor::new(
        firmflow_core::executor::Services {
            store: w.store.clone(),
            bmc: w.connector.clone(),
            cluster: None,
            resolver: std::sync::Arc::new(resolver),
            checks: firmflow_core::checks::CheckRegistry::builtin(),
            clock: std::sync::Arc::new(firmflow_core::SystemClock),
        },
        realtime_config("e2e-h"),
    );
    let mut np = realtime_plan(&[&w.hosts[0].host], UpdateMode::LatestFromCatalog, vec![]);
    np.policy.catalog_url = Some(url);
    let handle = exec.spawn();
    let pid = start(&exec, np).await;
    let status = handle.wait_plan(pid, PLAN_TIMEOUT).await;
    let r = w.store.list_runs(pid).await.expect("runs").remove(0);
    assert_eq!(
        status,
        Some(PlanStatus::Completed),
        "{:?} {:?}",
        r.last_error,
        r.ctx.results
    );
    assert_eq!(w.version(&name, BIOS).as_deref(), Some("3.0.0"));
    assert_eq!(w.version(&name, IDRAC).as_deref(), Some("7.10.50.00"));
    assert_eq!(
        w.fleet.install_count(&name, BIOS),
        1,
        "{:?}",
        w.fleet.installs(&name)
    );
    assert_eq!(
        w.fleet.install_count(&name, IDRAC),
        1,
        "{:?}",
        w.fleet.installs(&name)
    );
    handle.shutdown().await;
    w.shutdown().await;
}
