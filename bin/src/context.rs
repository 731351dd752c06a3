//! What every fleet command is built from: the global options, the config
//! file, the store (PostgreSQL with `--database-url`, else the in-memory
//! store, whose state ends with the process), the credential provider, the
//! BMC connector, the cluster manager and the executor.

use crate::config::{Config, Timing, VcenterSettings};
use crate::exit::usage;
use crate::setup::SingleCredential;
use anyhow::Context as _;
use firmflow_catalog::{CatalogSource, ModeResolver, PackageCache};
use firmflow_core::SystemClock;
use firmflow_core::checks::CheckRegistry;
use firmflow_core::cluster::ClusterManager;
use firmflow_core::credentials::{Credential, CredentialProvider};
use firmflow_core::executor::{Executor, ExecutorConfig, Services};
use firmflow_core::model::{ClusterKey, Host, HostId, Plan, UserId};
use firmflow_core::store::Store;
use firmflow_ops::bmc::{ConnectorDeps, FleetConnector};
use firmflow_ops::{TlsSettings, bmc};
use firmflow_store_memory::MemoryStore;
use firmflow_store_postgres::{PgConfig, PgStore};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Options every command takes.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct Global {
    /// PostgreSQL URL: state survives the process and is shared with other
    /// firmflow processes. Without it, state lives in memory and is LOST
    /// when the command ends.
    #[arg(
        long,
        global = true,
        env = "FIRMFLOW_DATABASE_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub database_url: Option<String>,
    /// Schema of the firmflow tables in that database.
    #[arg(
        long,
        global = true,
        env = "FIRMFLOW_DB_SCHEMA",
        default_value = "firmflow",
        value_name = "NAME"
    )]
    pub db_schema: String,
    /// Configuration file (BMC TLS and credentials, Vault, vCenter, timing).
    #[arg(long, global = true, env = "FIRMFLOW_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// No progress bars (also when stderr is not a terminal).
    #[arg(long, global = true)]
    pub no_progress: bool,
    /// Polling and lease timing: `real` BMCs, or the simulated fleet.
    #[arg(long, global = true, value_enum, env = "FIRMFLOW_TIMING")]
    pub timing: Option<Timing>,
    /// Credential reference for hosts without their own: `env:IDRAC`
    /// (IDRAC_USERNAME/IDRAC_PASSWORD), `file:/path/creds.toml#entry`,
    /// `vault:secret/path`.
    #[arg(long, global = true, env = "FIRMFLOW_CREDENTIAL", value_name = "REF")]
    pub credential: Option<String>,
    /// Environment variable holding the BMC password (with --user) for
    /// hosts without their own credential.
    #[arg(long, global = true, value_name = "VAR")]
    pub password_env: Option<String>,
    /// BMC user name for --password-env.
    #[arg(long, global = true, default_value = "root")]
    pub user: String,
    /// Trust only the CA certificates in this PEM file (all BMCs).
    #[arg(long, global = true, value_name = "PEM", conflicts_with_all = ["pin_sha256", "insecure"])]
    pub ca_file: Option<PathBuf>,
    /// Accept exactly the BMC certificate with this SHA-256 fingerprint.
    #[arg(long, global = true, value_name = "HEX", conflicts_with = "insecure")]
    pub pin_sha256: Option<String>,
    /// Accept any BMC certificate (logged as insecure on every connect).
    #[arg(long, global = true)]
    pub insecure: bool,
    /// Who you are, for approvals and the audit trail (default: $USER).
    #[arg(long, global = true, env = "FIRMFLOW_OPERATOR", value_name = "NAME")]
    pub operator: Option<String>,
}

/// The opened context.
pub struct Ctx {
    /// The options.
    pub g: Global,
    /// The configuration file's content (defaults when none).
    pub config: Config,
    /// The store.
    pub store: Arc<dyn Store>,
    pg: Option<PgStore>,
    /// Whether the store outlives this process.
    pub persistent: bool,
    /// Timing profile.
    pub timing: Timing,
    scratch: tempfile::TempDir,
}

impl Ctx {
    /// Reads the config and opens the store.
    pub async fn open(g: &Global) -> anyhow::Result<Self> {
        let config = match &g.config {
            Some(p) => Config::load(p).map_err(|e| usage(format!("{e:#}")))?,
            None => Config::default(),
        };
        let timing = g.timing.or(config.timing).unwrap_or_default();
        let (store, pg): (Arc<dyn Store>, Option<PgStore>) = match &g.database_url {
            Some(url) => {
                let cfg = PgConfig::new(url.clone())
                    .schema(g.db_schema.clone())
                    .max_connections(8);
                let pg = PgStore::connect(cfg, Arc::new(SystemClock))
                    .await
                    .context("opening the PostgreSQL store (--database-url)")?;
                (Arc::new(pg.clone()), Some(pg))
            }
            None => (Arc::new(MemoryStore::new(Arc::new(SystemClock))), None),
        };
        Ok(Self {
            g: g.clone(),
            config,
            persistent: pg.is_some(),
            store,
            pg,
            timing,
            scratch: tempfile::tempdir().context("creating a scratch directory")?,
        })
    }

    /// Closes the database pool.
    pub async fn close(&self) {
        if let Some(pg) = &self.pg {
            pg.close().await;
        }
    }

    /// Refuses a command whose effect would vanish with the memory store.
    pub fn require_persistent(&self, command: &str) -> anyhow::Result<()> {
        if self.persistent {
            return Ok(());
        }
        Err(usage(format!(
            "`firmflow {command}` keeps state for later commands, which needs PostgreSQL: \
             pass --database-url (or set FIRMFLOW_DATABASE_URL). Without it firmflow uses \
             an in-memory store that is lost when each command ends; for a one-shot \
             campaign use `firmflow run PLAN --hosts HOSTS.csv`"
        )))
    }

    /// The operator's identity: a stable id from the name.
    pub fn operator(&self) -> (String, UserId) {
        let name = self
            .g
            .operator
            .clone()
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| "operator".into());
        let digest = Sha256::digest(format!("firmflow-user:{name}"));
        let mut b = [0u8; 16];
        b.copy_from_slice(&digest[..16]);
        (name, UserId(uuid::Uuid::new_v8(b)))
    }

    /// Whether progress bars are drawn.
    pub fn progress(&self) -> bool {
        use std::io::IsTerminal as _;
        !self.g.no_progress && !self.g.json && std::io::stderr().is_terminal()
    }

    /// The credential provider: `env:`, `file:`, `vault:` (when configured
    /// or `VAULT_ADDR` is set) and the `--password-env` login.
    pub fn credentials(&self) -> anyhow::Result<Arc<dyn CredentialProvider>> {
        let vault = self.config.vault.clone().or_else(|| {
            std::env::var_os("VAULT_ADDR").map(|_| firmflow_ops::VaultSettings::default())
        });
        let mut p = bmc::credential_provider(vault.as_ref()).map_err(|e| usage(e.to_string()))?;
        if let Some(var) = &self.g.password_env {
            let Some(pw) = std::env::var_os(var) else {
                return Err(usage(format!(
                    "environment variable {var} (--password-env) is not set"
                )));
            };
            let pw = pw
                .into_string()
                .map_err(|_| usage(format!("{var} (--password-env) is not valid UTF-8")))?;
            p = p.with(
                "cli",
                SingleCredential::new(Credential::new(self.g.user.clone(), pw)),
            );
        }
        Ok(Arc::new(p))
    }

    /// BMC settings: the config's, with the command line's TLS and
    /// credential flags on top.
    pub fn bmc_settings(&self) -> anyhow::Result<firmflow_ops::BmcSettings> {
        let mut s = self.config.bmc.clone();
        if self.g.ca_file.is_some() || self.g.pin_sha256.is_some() || self.g.insecure {
            s.tls = TlsSettings {
                ca_file: self.g.ca_file.clone(),
                pin_sha256: self.g.pin_sha256.clone(),
                insecure: self.g.insecure,
            };
        }
        if self.g.password_env.is_some() {
            s.credential = Some(crate::setup::CLI_CREDENTIAL.into());
        }
        if let Some(c) = &self.g.credential {
            let mut c = c.clone();
            if let Ok(cwd) = std::env::current_dir() {
                crate::config::anchor_file_ref(&mut c, &cwd);
            }
            s.credential = Some(c);
        }
        if self.timing == Timing::Sim && s.lc_settle_secs.is_none() {
            s.lc_settle_secs = Some(0);
        }
        s.validate().map_err(|e| usage(e.to_string()))?;
        Ok(s)
    }

    /// The fleet's BMC connector (credentials of each host from the store).
    pub fn connector(&self) -> anyhow::Result<Arc<FleetConnector>> {
        let settings = self.bmc_settings()?;
        let store = self.store.clone();
        let audit = self.store.clone();
        let mut deps = ConnectorDeps::new(self.credentials()?);
        deps.sessions = Some(store.clone());
        deps.hosts = Some(store);
        deps.on_insecure = Some(Arc::new(move |r: &firmflow_redfish::InsecureTls| {
            // The audit trail records every unverified connection.
            let ev = firmflow_core::model::NewEvent::info(
                firmflow_core::model::EventType::TlsVerificationDisabled,
                format!("TLS verification disabled for BMC {}", r.address),
            )
            .severity(firmflow_core::model::Severity::Warning);
            let mut ev = ev;
            ev.host_id = Some(r.host_id);
            let s = audit.clone();
            tokio::spawn(async move {
                let _ = s.append_event(ev).await;
            });
        }));
        Ok(Arc::new(
            FleetConnector::new(&settings, deps).map_err(|e| usage(e.to_string()))?,
        ))
    }

    /// The cluster manager for `hosts`: none when no host is in a cluster;
    /// the simulated one when configured; else vCenter.
    pub fn cluster_manager(
        &self,
        hosts: &[Host],
    ) -> anyhow::Result<Option<Arc<dyn ClusterManager>>> {
        let clustered: Vec<&Host> = hosts.iter().filter(|h| h.cluster_moid.is_some()).collect();
        if clustered.is_empty() {
            return Ok(None);
        }
        let settings = self.config.vcenter.clone().unwrap_or_default();
        if settings.simulated {
            let fake = firmflow_core::testkit::fakes::FakeCluster::new(match self.timing {
                Timing::Sim => Duration::from_millis(50),
                Timing::Real => Duration::from_secs(1),
            });
            for h in &clustered {
                if let (Some(k), Some(m)) = (h.cluster_key(), &h.host_moid) {
                    fake.add_host(&k, m);
                }
            }
            return Ok(Some(Arc::new(fake)));
        }
        let urls: BTreeSet<String> = clustered
            .iter()
            .filter_map(|h| h.vcenter_url.clone())
            .collect();
        if urls.is_empty() {
            return Ok(None);
        }
        let provider = self.credentials()?;
        let mut configs = Vec::new();
        for url in urls {
            let reference = vcenter_reference(&settings, &url).ok_or_else(|| {
                usage(format!(
                    "hosts are in vCenter {url}, but no vCenter credential is configured: \
                     set [vcenter] credential = \"env:VCENTER\" (or a file:/vault: reference) \
                     in the config file"
                ))
            })?;
            let mut c = firmflow_vcenter::VcenterConfig::new(
                url.clone(),
                firmflow_vcenter::Auth::Provider {
                    provider: provider.clone(),
                    reference,
                },
            )
            .with_tls(firmflow_vcenter::TlsOptions {
                ca_file: settings.ca_file.clone(),
                accept_invalid_certs: settings.insecure,
            });
            if self.timing == Timing::Sim {
                c = c.with_task_poll(Duration::from_millis(50), Duration::from_millis(200));
            }
            configs.push(c);
        }
        let m = firmflow_vcenter::VcenterClusterManager::from_configs(configs)
            .map_err(|e| usage(format!("vCenter: {e}")))?;
        Ok(Some(Arc::new(m)))
    }

    /// The artifact resolver for every update mode.
    pub fn resolver(&self) -> anyhow::Result<Arc<ModeResolver>> {
        let cache = PackageCache::with_default_client(self.scratch.path().join("packages"))?;
        Ok(Arc::new(ModeResolver::new(
            Arc::new(CatalogSource::new()?),
            Arc::new(cache),
        )))
    }

    /// Executor tuning for the timing profile and config.
    pub fn executor_config(&self) -> ExecutorConfig {
        let mut c = ExecutorConfig::new("firmflow-cli");
        if self.timing == Timing::Sim {
            c.slots = 32;
            c.lease_ttl = Duration::from_secs(5);
            c.heartbeat_interval = Duration::from_secs(1);
            c.safety_margin = Duration::from_secs(1);
            c.reclaim_delay = Duration::from_millis(500);
            c.poll_interval = Duration::from_millis(100);
            c.job_poll_initial = Duration::from_millis(25);
            c.job_poll_max = Duration::from_millis(150);
            c.ready_poll_interval = Duration::from_millis(30);
            c.ready_stable_reads = 2;
        }
        if let Some(s) = self.config.executor.lease_secs {
            c.lease_ttl = Duration::from_secs(s.max(3));
            c.heartbeat_interval = (c.lease_ttl / 6).max(Duration::from_millis(500));
            c.safety_margin = (c.lease_ttl / 6).max(Duration::from_millis(500));
        }
        if let Some(n) = self.config.executor.slots {
            c.slots = n.max(1);
        }
        c
    }

    /// An executor over the store for the hosts of `plans`.
    pub async fn executor(&self, plans: &[&Plan]) -> anyhow::Result<Executor> {
        let mut hosts = Vec::new();
        for p in plans {
            for t in self.store.plan_targets(p.id).await? {
                hosts.push(self.store.get_host(t.host_id).await?);
            }
        }
        self.executor_for_hosts(&hosts, plans).await
    }

    /// An executor whose cluster manager knows `hosts`.
    pub async fn executor_for_hosts(
        &self,
        hosts: &[Host],
        plans: &[&Plan],
    ) -> anyhow::Result<Executor> {
        let cluster = self.cluster_manager(hosts)?;
        for p in plans {
            if p.policy.require_maintenance_mode
                && cluster.is_none()
                && let Some(h) = hosts.iter().find(|h| h.cluster_moid.is_some())
            {
                return Err(usage(format!(
                    "plan {:?} puts hosts in maintenance mode, but {} (cluster {}) has no \
                     vCenter to do it: give the host a vcenter_url and configure [vcenter]",
                    p.name,
                    h.fqdn,
                    h.cluster_moid.as_deref().unwrap_or_default()
                )));
            }
        }
        Ok(Executor::new(
            Services {
                store: self.store.clone(),
                bmc: self.connector()?,
                cluster,
                resolver: self.resolver()?,
                checks: CheckRegistry::builtin(),
                clock: Arc::new(SystemClock),
            },
            self.executor_config(),
        ))
    }

    /// Finds a host by fqdn, management address, id or id prefix.
    pub async fn find_host(&self, reference: &str) -> anyhow::Result<Host> {
        let hosts = self.store.list_hosts().await?;
        find_host_in(&hosts, reference)
    }
}

fn vcenter_reference(s: &VcenterSettings, url: &str) -> Option<String> {
    s.credentials
        .iter()
        .find(|(k, _)| k.trim_end_matches('/') == url.trim_end_matches('/'))
        .map(|(_, v)| v.clone())
        .or_else(|| s.credential.clone())
}

/// A host by fqdn, management address, id or unique id prefix.
pub fn find_host_in(hosts: &[Host], reference: &str) -> anyhow::Result<Host> {
    let r = reference.trim();
    if let Some(h) = hosts.iter().find(|h| {
        h.fqdn.eq_ignore_ascii_case(r)
            || h.mgmt_ip.eq_ignore_ascii_case(r)
            || h.id.to_string().eq_ignore_ascii_case(r)
    }) {
        return Ok(h.clone());
    }
    let by_prefix: Vec<&Host> = hosts
        .iter()
        .filter(|h| r.len() >= 4 && h.id.to_string().starts_with(&r.to_ascii_lowercase()))
        .collect();
    match by_prefix.as_slice() {
        [h] => Ok((*h).clone()),
        [] => Err(usage(format!(
            "no registered host is called {r:?} (fqdn, mgmt_ip or id; see `firmflow hosts list`)"
        ))),
        _ => Err(usage(format!(
            "{r:?} matches several host ids; give more of it"
        ))),
    }
}

/// Cluster keys of hosts (for messages).
pub fn clusters_of(hosts: &[Host]) -> BTreeSet<ClusterKey> {
    hosts.iter().filter_map(Host::cluster_key).collect()
}

/// Host ids to hosts, in the order given.
pub async fn hosts_by_id(store: &dyn Store, ids: &[HostId]) -> anyhow::Result<Vec<Host>> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        out.push(store.get_host(*id).await?);
    }
    Ok(out)
}
