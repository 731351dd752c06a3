//! The engine a daemon runs: the configured store (memory or PostgreSQL),
//! the fleet's BMC connector (firmflow-ops, the CLI's too), the vCenter
//! cluster manager when endpoints are configured, the catalog resolvers and
//! the executor over them. Two daemons on one PostgreSQL share the work
//! through the store's leases; one that is killed is taken over.

use crate::bmc_metrics::MeteredConnector;
use crate::config::{Config, StoreKind, Timing};
use crate::metrics::Metrics;
use crate::store_metrics::MeteredStore;
use anyhow::Context as _;
use firmflow_catalog::{CatalogSource, ModeResolver, PackageCache};
use firmflow_core::SystemClock;
use firmflow_core::bmc::BmcConnector;
use firmflow_core::checks::CheckRegistry;
use firmflow_core::cluster::ClusterManager;
use firmflow_core::executor::{Executor, ExecutorConfig, Services};
use firmflow_core::model::{EventType, NewEvent, Severity};
use firmflow_core::store::Store;
use firmflow_ops::bmc::{ConnectorDeps, FleetConnector};
use firmflow_store_memory::MemoryStore;
use firmflow_store_postgres::{PgConfig, PgStore};
use std::sync::Arc;
use std::time::Duration;

/// The composed engine.
pub struct Engine {
    /// The store.
    pub store: Arc<dyn Store>,
    /// The PostgreSQL handle, when the store is PostgreSQL.
    pub pg: Option<PgStore>,
    /// The executor (not yet spawned).
    pub executor: Executor,
    /// The connector (inventory refresh and compliance read through it).
    pub connector: Arc<dyn BmcConnector>,
    /// The catalog source (compliance, dry runs).
    pub catalogs: Arc<CatalogSource>,
    /// Whether a vCenter is configured.
    pub has_vcenter: bool,
    _scratch: Option<tempfile::TempDir>,
}

/// Executor tuning from the config.
pub fn executor_config(c: &Config) -> ExecutorConfig {
    let e = &c.executor;
    let mut x = ExecutorConfig::new(&e.worker_id);
    if e.timing == Timing::Sim {
        x.poll_interval = Duration::from_millis(100);
        x.job_poll_initial = Duration::from_millis(25);
        x.job_poll_max = Duration::from_millis(150);
        x.ready_poll_interval = Duration::from_millis(30);
        x.ready_stable_reads = 2;
        x.reclaim_delay = Duration::from_millis(500);
    }
    x.slots = e.slots.max(1);
    x.lease_ttl = Duration::from_secs(e.lease_ttl_secs.max(3));
    x.heartbeat_interval = Duration::from_secs(e.heartbeat_secs.max(1));
    // Stop acting a heartbeat before the lease could expire.
    x.safety_margin = x.heartbeat_interval.min(x.lease_ttl / 3);
    if e.timing == Timing::Real {
        x.reclaim_delay = x.lease_ttl / 2;
    }
    x
}

impl Engine {
    /// Opens the store and builds everything around it.
    /// With `metrics`, BMC operations and store writes are measured (the
    /// engine and the API go through the same metered connector and store).
    pub async fn open(c: &Config, metrics: Option<&Metrics>) -> anyhow::Result<Self> {
        let (store, pg): (Arc<dyn Store>, Option<PgStore>) = match c.store.kind {
            StoreKind::Memory => (Arc::new(MemoryStore::new(Arc::new(SystemClock))), None),
            StoreKind::Postgres => {
                let url = c.store.url.clone().unwrap_or_default();
                let cfg = PgConfig::new(url)
                    .schema(c.store.schema.clone())
                    .max_connections(c.store.pool_size.max(1));
                let pg = PgStore::connect(cfg, Arc::new(SystemClock))
                    .await
                    .context("opening the PostgreSQL store (store.url)")?;
                (Arc::new(pg.clone()), Some(pg))
            }
        };
        let store: Arc<dyn Store> = match metrics {
            Some(m) => Arc::new(MeteredStore::new(store, m.store_writes.clone())),
            None => store,
        };
        let provider = firmflow_ops::bmc::credential_provider(c.credentials.vault.as_ref())
            .context("credentials.vault")?;
        let provider: Arc<dyn firmflow_core::credentials::CredentialProvider> = Arc::new(provider);
        let mut bmc = c.bmc.clone();
        if c.executor.timing == Timing::Sim && bmc.lc_settle_secs.is_none() {
            bmc.lc_settle_secs = Some(0);
        }
        let mut deps = ConnectorDeps::new(provider.clone()).with_dyn_store(store.clone());
        let audit = store.clone();
        deps.on_insecure = Some(Arc::new(move |r: &firmflow_redfish::InsecureTls| {
            // The audit trail records every unverified connection.
            let mut ev = NewEvent::info(
                EventType::TlsVerificationDisabled,
                format!("TLS verification disabled for BMC {}", r.address),
            )
            .severity(Severity::Warning);
            ev.host_id = Some(r.host_id);
            let s = audit.clone();
            tokio::spawn(async move {
                let _ = s.append_event(ev).await;
            });
        }));
        let fleet: Arc<dyn BmcConnector> =
            Arc::new(FleetConnector::new(&bmc, deps).context("bmc")?);
        // Engine and API read the BMCs through the same metered connector.
        let connector: Arc<dyn BmcConnector> = match metrics {
            Some(m) => Arc::new(MeteredConnector::new(fleet, m.bmc.clone())),
            None => fleet,
        };
        let cluster = cluster_manager(c, provider)?;
        let has_vcenter = cluster.is_some();
        let (cache_dir, scratch) = match &c.artifacts.cache_dir {
            Some(d) => (d.clone(), None),
            None => {
                let t = tempfile::tempdir().context("creating a package cache folder")?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        let mut source = CatalogSource::new().context("catalog source")?;
        if let Some(m) = &c.artifacts.mirror {
            source = source.with_dell_host(m.clone());
        }
        let catalogs = Arc::new(source);
        let cache = PackageCache::with_default_client(cache_dir).context("package cache")?;
        let resolver = Arc::new(ModeResolver::new(catalogs.clone(), Arc::new(cache)));
        let executor = Executor::new(
            Services {
                store: store.clone(),
                bmc: connector.clone(),
                cluster,
                resolver,
                checks: CheckRegistry::builtin(),
                clock: Arc::new(SystemClock),
            },
            executor_config(c),
        );
        Ok(Self {
            store,
            pg,
            executor,
            connector,
            catalogs,
            has_vcenter,
            _scratch: scratch,
        })
    }
}

fn cluster_manager(
    c: &Config,
    provider: Arc<dyn firmflow_core::credentials::CredentialProvider>,
) -> anyhow::Result<Option<Arc<dyn ClusterManager>>> {
    if c.vcenter.endpoints.is_empty() {
        return Ok(None);
    }
    let mut configs = Vec::new();
    for ep in &c.vcenter.endpoints {
        let mut v = firmflow_vcenter::VcenterConfig::new(
            ep.url.clone(),
            firmflow_vcenter::Auth::Provider {
                provider: provider.clone(),
                reference: ep.credential.clone(),
            },
        )
        .with_tls(firmflow_vcenter::TlsOptions {
            ca_file: ep.ca_file.clone(),
            accept_invalid_certs: ep.insecure,
        });
        if c.executor.timing == Timing::Sim {
            v = v.with_task_poll(Duration::from_millis(50), Duration::from_millis(200));
        }
        configs.push(v);
    }
    let m = firmflow_vcenter::VcenterClusterManager::from_configs(configs)
        .map_err(|e| anyhow::anyhow!("vcenter: {e}"))?;
    Ok(Some(Arc::new(m)))
}
