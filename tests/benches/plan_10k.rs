//! A 10,000-host plan on the memory store with an instant in-process driver:
//! prints wall time, fenced transitions per second and peak RSS.
//!
//! `cargo bench -p firmflow-tests --bench plan_10k` (release profile).
//! Options through the environment: `HOSTS` (10000), `MAX_CONCURRENT` (500).

use async_trait::async_trait;
use firmflow_core::bmc::{self, *};
use firmflow_core::checks::CheckRegistry;
use firmflow_core::executor::{Executor, ExecutorConfig, Services};
use firmflow_core::model::*;
use firmflow_core::store::{EventStore as _, HostStore as _, PlanStore as _, RunStore as _};
use firmflow_core::testkit::fakes::{ArtifactListResolver, FakeCluster};
use firmflow_core::{Clock, SystemClock};
use firmflow_store_memory::MemoryStore;
use std::sync::Arc;
use std::sync::Mutex;
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
    let fleet = InstantFleet::new(hosts);
    let mut targets = Vec::with_capacity(hosts);
    for i in 0..hosts {
        let fqdn = format!("h{i:05}.bench");
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
            bmc: Arc::new(fleet),
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

/// The instant in-process driver: every host answers at once, installs
/// finish on the next poll (BMC packages) or at the reset (host packages).
/// Its state is a few bytes per host, so the figures measure firmflow.
struct InstantFleet {
    hosts: Arc<Vec<Mutex<HostSlot>>>,
}

#[derive(Clone, Copy, Default)]
struct HostSlot {
    idrac_new: bool,
    bios_new: bool,
    bios_staged: bool,
}

const IDRAC: &str = "25227";
const BIOS: &str = "159";

impl InstantFleet {
    fn new(n: usize) -> Self {
        Self {
            hosts: Arc::new((0..n).map(|_| Mutex::new(HostSlot::default())).collect()),
        }
    }
}

#[async_trait]
impl BmcConnector for InstantFleet {
    async fn connect(&self, host: &Host) -> Result<Arc<dyn BmcDriver>, bmc::Error> {
        let index = host
            .fqdn
            .trim_start_matches('h')
            .split('.')
            .next()
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|i| *i < self.hosts.len())
            .ok_or_else(|| bmc::Error::new(&host.fqdn, ErrorKind::NotFound, "no such host"))?;
        Ok(Arc::new(InstantBmc {
            hosts: self.hosts.clone(),
            index,
        }))
    }
}

struct InstantBmc {
    hosts: Arc<Vec<Mutex<HostSlot>>>,
    index: usize,
}

impl InstantBmc {
    fn slot(&self) -> HostSlot {
        self.hosts
            .get(self.index)
            .map(|m| *m.lock().unwrap_or_else(|e| e.into_inner()))
            .unwrap_or_default()
    }
    fn update(&self, f: impl FnOnce(&mut HostSlot)) {
        if let Some(m) = self.hosts.get(self.index) {
            f(&mut m.lock().unwrap_or_else(|e| e.into_inner()));
        }
    }
}

fn component(
    id: &str,
    name: &str,
    kind: ComponentKind,
    version: &str,
    installed: bool,
) -> FirmwareComponent {
    FirmwareComponent {
        id: format!("{}-{id}", if installed { "Installed" } else { "Previous" }),
        name: name.into(),
        version: version.into(),
        component_id: Some(id.into()),
        kind,
        updateable: true,
        installed,
        pci: None,
        release_date: None,
    }
}

#[async_trait]
impl BmcDriver for InstantBmc {
    async fn system(&self) -> Result<SystemInfo, bmc::Error> {
        Ok(SystemInfo {
            model: Some("PowerEdge R650".into()),
            service_tag: None,
            system_id: Some(2300),
            power: PowerState::On,
            health: Health::Ok,
            bios_version: None,
            bmc_version: None,
            bmc_model: None,
            manufacturer: None,
        })
    }
    async fn inventory(&self) -> Result<Inventory, bmc::Error> {
        let s = self.slot();
        Ok(Inventory {
            components: vec![
                component(
                    IDRAC,
                    "Integrated Dell Remote Access Controller",
                    ComponentKind::Bmc,
                    if s.idrac_new {
                        "7.10.50.00"
                    } else {
                        "6.10.00.00"
                    },
                    true,
                ),
                component(
                    BIOS,
                    "BIOS",
                    ComponentKind::Bios,
                    if s.bios_new { "2.19.1" } else { "2.10.0" },
                    true,
                ),
            ],
        })
    }
    async fn readiness(&self) -> Result<Readiness, bmc::Error> {
        Ok(Readiness {
            ready: true,
            power: PowerState::On,
            detail: None,
        })
    }
    async fn start_update(
        &self,
        p: &Package,
        _o: &UpdateOptions,
    ) -> Result<UpdateStart, bmc::Error> {
        if p.component_id == BIOS {
            self.update(|s| s.bios_staged = true);
        } else {
            self.update(|s| s.idrac_new = true);
        }
        Ok(UpdateStart::Submitted(JobHandle::new(format!(
            "JID_{}",
            p.component_id
        ))))
    }
    async fn job_ids(&self) -> Result<Option<Vec<String>>, bmc::Error> {
        Ok(Some(Vec::new()))
    }
    async fn find_job(&self, _q: &JobQuery<'_>) -> Result<JobSearch, bmc::Error> {
        Ok(JobSearch::NotFound)
    }
    async fn poll_job(&self, job: &JobHandle) -> Result<bmc::JobStatus, bmc::Error> {
        let s = self.slot();
        let state = if job.id.ends_with(BIOS) && s.bios_staged && !s.bios_new {
            BmcJobState::AwaitingReboot
        } else {
            BmcJobState::Completed
        };
        Ok(bmc::JobStatus::of(state))
    }
    async fn reset(&self, _k: ResetKind) -> Result<(), bmc::Error> {
        self.update(|s| {
            if s.bios_staged {
                s.bios_new = true;
            }
        });
        Ok(())
    }
    async fn rollback(&self, _c: &FirmwareComponent) -> Result<Option<JobHandle>, bmc::Error> {
        Ok(None)
    }
    async fn clear_job_queue(&self) -> Result<(), bmc::Error> {
        Ok(())
    }
    async fn close(&self) -> Result<(), bmc::Error> {
        Ok(())
    }
}
