//! Shared harness for firmflow's cross-crate scenario tests: builds a
//! memory store on tokio time, a fake fleet and cluster, an executor, and
//! plans; and replays the audit trail to check invariants at every instant.

use chrono::{DateTime, Utc};
use firmflow_core::TokioClock;
use firmflow_core::checks::CheckRegistry;
use firmflow_core::executor::{Executor, ExecutorConfig, ExecutorHandle, Services};
use firmflow_core::model::*;
use firmflow_core::store::{EventFilter, HostStore as _, Store};
use firmflow_core::testkit::fakes::{ArtifactListResolver, FakeCluster, FakeFleet, HostScript};
use firmflow_store_memory::MemoryStore;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

pub mod crash;
pub mod fault_soak;
pub mod sim_process;
pub mod sim_world;
pub use sim_world::{
    SIM_SPEED, SimHost, SimTls, SimWorld, SimWorldBuilder, realtime_config, realtime_plan,
    sim_package,
};

/// The vCenter URL the harness uses.
pub const VC: &str = "https://vc.test";

/// Fixed origin of the scenario clock.
pub fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-05-04T22:00:00Z")
        .map(|d| d.with_timezone(&Utc))
        .unwrap_or_default()
}

/// A scenario world: store, fleet, cluster, hosts.
pub struct World {
    /// The store.
    pub store: Arc<MemoryStore>,
    /// Fake BMCs.
    pub fleet: FakeFleet,
    /// Fake vCenter.
    pub cluster: FakeCluster,
    /// Hosts by name.
    pub hosts: BTreeMap<String, Host>,
    /// The one wall clock of this world (store and executors).
    pub clock: Arc<TokioClock>,
}

impl Default for World {
    fn default() -> Self {
        Self::new()
    }
}

impl World {
    /// An empty world on tokio time (call inside a paused-time test).
    pub fn new() -> Self {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".to_string()))
            .with_test_writer()
            .try_init();
        let clock = Arc::new(TokioClock::starting_at(t0()));
        Self {
            store: Arc::new(MemoryStore::new(clock.clone())),
            clock,
            fleet: FakeFleet::new(),
            cluster: FakeCluster::new(Duration::from_secs(120)),
            hosts: BTreeMap::new(),
        }
    }

    /// Adds a standalone host.
    pub async fn host(&mut self, name: &str, script: HostScript) -> Host {
        self.add(name, None, script).await
    }

    /// Adds a host in a vSphere cluster.
    pub async fn clustered(&mut self, name: &str, cluster: &str, script: HostScript) -> Host {
        self.add(name, Some(cluster), script).await
    }

    async fn add(&mut self, name: &str, cluster: Option<&str>, script: HostScript) -> Host {
        let fqdn = format!("{name}.lab.test");
        let mut nh = NewHost::idrac(&fqdn, format!("192.0.2.{}", self.hosts.len() + 1));
        if let Some(c) = cluster {
            nh = nh.in_cluster(VC, c, format!("host-{name}"));
            self.cluster
                .add_host(&cluster_key(c), &format!("host-{name}"));
        }
        self.fleet.add_host(&fqdn, script);
        let h = self.store.add_host(nh).await.expect("add host");
        self.hosts.insert(name.to_string(), h.clone());
        h
    }

    /// An executor over this world.
    pub fn executor(&self, name: &str, slots: usize) -> Executor {
        let mut cfg = ExecutorConfig::new(name);
        cfg.slots = slots;
        Executor::new(
            Services {
                store: self.store.clone(),
                bmc: Arc::new(self.fleet.clone()),
                cluster: Some(Arc::new(self.cluster.clone())),
                resolver: Arc::new(ArtifactListResolver),
                checks: CheckRegistry::builtin(),
                clock: self.clock.clone(),
            },
            cfg,
        )
    }

    /// Fqdn of a host by name.
    pub fn fqdn(&self, name: &str) -> String {
        format!("{name}.lab.test")
    }
}

/// The cluster key for a cluster moid under [`VC`].
pub fn cluster_key(moid: &str) -> ClusterKey {
    ClusterKey {
        vcenter_url: VC.into(),
        cluster_moid: moid.into(),
    }
}

/// A BIOS update artifact to `version`.
pub fn bios(version: &str) -> Artifact {
    Artifact {
        id: ArtifactId::new(),
        component: "159".into(),
        image_uri: format!("https://repo.test/BIOS_{version}.EXE"),
        version: Some(version.into()),
        checksum: None,
        size_bytes: None,
        metadata: serde_json::json!({ "rebootRequired": true }),
    }
}

/// An iDRAC update artifact to `version` (no host reboot).
pub fn idrac(version: &str) -> Artifact {
    Artifact {
        id: ArtifactId::new(),
        component: "25227".into(),
        image_uri: format!("https://repo.test/iDRAC_{version}.EXE"),
        version: Some(version.into()),
        checksum: None,
        size_bytes: None,
        metadata: serde_json::json!({ "rebootRequired": false }),
    }
}

/// A SPECIFIC_PACKAGE plan over `targets` (host, priority).
pub fn plan(targets: &[(&Host, i32)], artifacts: Vec<Artifact>) -> NewPlan {
    let mut policy = Policy::new(UpdateMode::SpecificPackage);
    policy.preflight_checks = vec![
        "connectivity".into(),
        "compatibility".into(),
        "cluster_health".into(),
    ];
    policy.post_update_validation = vec![
        "firmware_version".into(),
        "system_health".into(),
        "network_connectivity".into(),
    ];
    policy.allow_downtime = true;
    policy.retry = Some(RetrySettings {
        max_attempts: 3,
        initial_backoff_secs: 60,
        multiplier: 2.0,
        max_backoff_secs: 600,
        jitter: 0.0,
    });
    NewPlan {
        name: "scenario".into(),
        policy,
        maintenance_window: None,
        approval_required: false,
        targets: targets
            .iter()
            .map(|(h, p)| PlanTarget {
                host_id: h.id,
                priority: *p,
                conditions: serde_json::json!({}),
            })
            .collect(),
        artifacts,
        created_by: None,
        idempotency_key: None,
    }
}

/// Creates and starts a plan, returns its id.
pub async fn start(exec: &Executor, np: NewPlan) -> PlanId {
    let p = exec.create_plan(np).await.expect("create plan").plan;
    exec.start(p.id, None).await.expect("start plan");
    p.id
}

/// Runs until the plan is final (24 simulated hours at most).
pub async fn finish(handle: &ExecutorHandle, plan: PlanId) -> PlanStatus {
    handle
        .wait_plan(plan, Duration::from_secs(24 * 3600))
        .await
        .expect("plan did not finish within 24 simulated hours")
}

/// The highest number of runs of `plan` in flight at any instant, replayed
/// from the audit trail (claims in, final transitions and releases out).
pub async fn max_in_flight(store: &dyn Store, plan: PlanId) -> usize {
    let ev = store
        .list_events(&EventFilter {
            plan_id: Some(plan),
            ..Default::default()
        })
        .await
        .expect("events");
    let mut running: BTreeSet<RunId> = BTreeSet::new();
    let mut max = 0;
    for e in ev {
        let Some(run) = e.event.run_id else { continue };
        match e.event.event_type {
            EventType::RunClaimed | EventType::RunReclaimed => {
                running.insert(run);
            }
            _ => {
                let to = e.event.details.get("to").and_then(|v| v.as_str());
                if matches!(to, Some("completed" | "failed" | "cancelled" | "retrying")) {
                    running.remove(&run);
                }
            }
        }
        max = max.max(running.len());
    }
    max
}

/// Order in which hosts of `plan` were first claimed.
pub async fn claim_order(store: &dyn Store, plan: PlanId) -> Vec<HostId> {
    let ev = store
        .list_events(&EventFilter {
            plan_id: Some(plan),
            ..Default::default()
        })
        .await
        .expect("events");
    let mut seen = BTreeSet::new();
    ev.into_iter()
        .filter(|e| e.event.event_type == EventType::RunClaimed)
        .filter_map(|e| e.event.host_id)
        .filter(|h| seen.insert(*h))
        .collect()
}
