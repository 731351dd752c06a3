//! The simulated world the examples run in, so each example shows only
//! what it is about: a `firmflow-sim` fleet on 127.0.0.1 serving a
//! Dell-format catalog with one BIOS for every model, the Redfish
//! connector with the simulator's login (an `env:` reference resolved from
//! a map, never the process environment), the catalog resolver, and
//! executor timing for a simulator running 4000 times faster than a real
//! iDRAC.

use firmflow_catalog::{CatalogSource, ModeResolver, PackageCache};
use firmflow_core::executor::ExecutorConfig;
use firmflow_core::model::{NewHost, PlanTarget, Policy, UpdateMode};
use firmflow_core::store::HostStore;
use firmflow_credentials::EnvProvider;
use firmflow_redfish::{Connector, ConnectorConfig};
use firmflow_sim::catalog::{CatalogEntry, CatalogOptions};
use firmflow_sim::{Fleet, PackageKind};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The BIOS version the lab catalog offers.
pub const BIOS_TARGET: &str = "9.9.9";

/// A fleet of `hosts` simulated iDRACs (plain HTTP) and the URL of a
/// catalog it serves.
pub async fn fleet(hosts: usize) -> anyhow::Result<(Fleet, String)> {
    let fleet = Fleet::builder()
        .hosts(hosts)
        .http(true)
        .speed(4000.0)
        .start()
        .await?;
    let bios = firmflow_sim::Package {
        system_ids: vec![1814, 2300, 2973, 3290], // every simulated model
        component_id: "159".into(),
        name: "BIOS".into(),
        version: BIOS_TARGET.into(),
        reboot_required: true,
        kind: PackageKind::Bios,
    };
    let bytes = bios.to_bytes();
    let entry = CatalogEntry::new(bios, bytes);
    fleet.serve_file(&format!("repo/{}", entry.path), entry.bytes.clone());
    let xml = firmflow_sim::catalog::write(&[entry], &CatalogOptions::default())?;
    let catalog = fleet.serve_file("repo/Catalog.xml", xml);
    Ok((fleet, catalog))
}

/// The Redfish connector, logging in as the simulator's `root`.
pub fn connector() -> Connector {
    let creds = EnvProvider::from_map([("SIM_USERNAME", "root"), ("SIM_PASSWORD", "calvin")]);
    let cfg = ConnectorConfig {
        default_credential: Some("env:SIM".into()),
        lc_settle: Duration::ZERO,
        ..ConnectorConfig::default()
    };
    Connector::new(cfg, Arc::new(creds))
}

/// Resolves packages from catalogs, caching downloads under `dir`.
pub fn resolver(dir: &Path) -> anyhow::Result<Arc<ModeResolver>> {
    Ok(Arc::new(ModeResolver::new(
        Arc::new(CatalogSource::new()?),
        Arc::new(PackageCache::with_default_client(dir.join("packages"))?),
    )))
}

/// Executor timing for the fast simulator: short polls and leases.
pub fn fast(name: &str) -> ExecutorConfig {
    let mut c = ExecutorConfig::new(name);
    c.lease_ttl = Duration::from_secs(3);
    c.heartbeat_interval = Duration::from_millis(500);
    c.safety_margin = Duration::from_millis(500);
    c.reclaim_delay = Duration::from_millis(200);
    c.poll_interval = Duration::from_millis(50);
    c.job_poll_initial = Duration::from_millis(20);
    c.job_poll_max = Duration::from_millis(100);
    c.ready_poll_interval = Duration::from_millis(20);
    c.ready_stable_reads = 2;
    c
}

/// A rolling catalog policy for standalone hosts (no vCenter).
pub fn policy(catalog: &str) -> Policy {
    let mut p = Policy::new(UpdateMode::LatestFromCatalog);
    p.catalog_url = Some(catalog.into());
    p.max_concurrent = 2;
    p.require_maintenance_mode = false;
    p.allow_downtime = true;
    p.preflight_checks = vec!["connectivity".into(), "compatibility".into()];
    p.post_update_validation = vec!["firmware_version".into()];
    p
}

/// Registers every simulated host (`idrac-001.lab`, …) and returns them as
/// plan targets.
pub async fn register(store: &dyn HostStore, fleet: &Fleet) -> anyhow::Result<Vec<PlanTarget>> {
    let mut targets = Vec::new();
    for h in fleet.hosts() {
        let host = store
            .add_host(NewHost::idrac(format!("{}.lab", h.name), &h.url))
            .await?;
        targets.push(PlanTarget {
            host_id: host.id,
            priority: 0,
            conditions: serde_json::json!({}),
        });
    }
    Ok(targets)
}

/// Checks that every host's BIOS was flashed exactly `want` times.
pub fn assert_bios_flashes(fleet: &Fleet, want: usize) -> anyhow::Result<()> {
    for h in fleet.hosts() {
        let n = fleet.install_count(&h.name, "159");
        anyhow::ensure!(n == want, "{}: BIOS flashed {n} times, want {want}", h.name);
    }
    Ok(())
}
