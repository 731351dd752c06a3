//! End-to-end world over real HTTP: a `firmflow-sim` fleet on 127.0.0.1
//! (HTTPS with the fleet's certificate as the only trust anchor), the
//! memory store on the system clock, the real Redfish `Connector`, and the
//! real catalog/artifact resolvers. Real sockets mean real tokio time, so
//! the executor runs with small poll intervals and the simulator with a
//! high speed factor (Dell minutes become milliseconds).

use chrono::Utc;
use firmflow_catalog::verify::digest_bytes;
use firmflow_catalog::{CatalogSource, ModeResolver, PackageCache};
use firmflow_core::SystemClock;
use firmflow_core::checks::CheckRegistry;
use firmflow_core::credentials::{self, Credential, CredentialProvider};
use firmflow_core::executor::{Executor, ExecutorConfig, Services};
use firmflow_core::model::*;
use firmflow_core::store::HostStore as _;
use firmflow_redfish::{Connector, ConnectorConfig, TlsMode};
use firmflow_sim::{Flavor, Fleet, PackageKind, SimHostInfo};
use firmflow_store_memory::MemoryStore;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Simulator speed factor of the e2e tests: a 10-minute Dell install takes
/// 0.15 s, a reboot with POST 45 ms.
pub const SIM_SPEED: f64 = 4000.0;

/// The credential reference every simulated host uses.
const SIM_CREDENTIAL: &str = "sim:root";

/// The simulator's fixed login, handed out for [`SIM_CREDENTIAL`] only.
struct SimCredentials {
    username: String,
    password: String,
}

#[async_trait::async_trait]
impl CredentialProvider for SimCredentials {
    async fn resolve(&self, reference: &str) -> Result<Credential, credentials::Error> {
        if reference == SIM_CREDENTIAL {
            Ok(Credential::new(&self.username, &self.password))
        } else {
            Err(credentials::Error::NotFound {
                reference: reference.into(),
                message: "only the simulator credential is known here".into(),
            })
        }
    }
}

/// How the connector checks the simulated iDRACs' certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SimTls {
    /// Trust only the fleet's self-signed certificate (a CA file).
    CaFile,
    /// Accept any certificate (recorded by the connector as insecure).
    AcceptInvalid,
}

/// Settings of a [`SimWorld`].
#[derive(Clone, Debug)]
pub struct SimWorldBuilder {
    hosts: usize,
    flavor: Flavor,
    flavor_for: Vec<(usize, Flavor)>,
    tls_for: Vec<(usize, SimTls)>,
    speed: f64,
    seed: u64,
    racadm: Option<std::path::PathBuf>,
    virtual_hosts: bool,
    plain_http: bool,
}

impl SimWorldBuilder {
    /// Manage every iDRAC through remote racadm, run from `binary` (the
    /// tests' fake racadm, which speaks to the simulator).
    pub fn racadm(mut self, binary: impl Into<std::path::PathBuf>) -> Self {
        self.racadm = Some(binary.into());
        self
    }
    /// Number of simulated iDRACs.
    pub fn hosts(mut self, n: usize) -> Self {
        self.hosts = n;
        self
    }
    /// Flavour of every host.
    pub fn flavor(mut self, f: Flavor) -> Self {
        self.flavor = f;
        self
    }
    /// Flavour of host `i`.
    pub fn flavor_for(mut self, i: usize, f: Flavor) -> Self {
        self.flavor_for.push((i, f));
        self
    }
    /// TLS setting of host `i` (default: the fleet certificate as CA file).
    pub fn tls_for(mut self, i: usize, tls: SimTls) -> Self {
        self.tls_for.push((i, tls));
        self
    }
    /// Simulator speed factor.
    pub fn speed(mut self, s: f64) -> Self {
        self.speed = s;
        self
    }
    /// Simulator seed.
    pub fn seed(mut self, s: u64) -> Self {
        self.seed = s;
        self
    }
    /// One listener for the whole fleet, each iDRAC a `idrac-NNN.localhost`
    /// name routed by the `Host` header (a fleet of thousands without a
    /// port each). The connector reaches the names through
    /// `ConnectorConfig::resolve` (this machine's resolver need not know
    /// `*.localhost`) and pins the fleet certificate, because webpki refuses
    /// its `*.localhost` wildcard (one label under a TLD) for a CA-file check.
    pub fn virtual_hosts(mut self, yes: bool) -> Self {
        self.virtual_hosts = yes;
        self
    }

    /// Plain HTTP instead of HTTPS, on the simulator and the connector (a
    /// lab setting; real iDRACs speak HTTPS only). For measuring what the
    /// engine costs apart from TLS record encryption and handshakes.
    pub fn plain_http(mut self, yes: bool) -> Self {
        self.plain_http = yes;
        self
    }

    /// Starts the fleet and registers every host in the store.
    pub async fn start(self) -> SimWorld {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".to_string()))
            .with_test_writer()
            .try_init();
        let fleet = self
            .fleet_builder()
            .start()
            .await
            .expect("start the simulated fleet");
        let parts = self
            .attach(fleet.hosts(), fleet.ca_cert_pem().as_deref())
            .await;
        SimWorld {
            fleet,
            store: parts.store,
            connector: parts.connector,
            resolver: parts.resolver,
            hosts: parts.hosts,
            dir: parts.dir,
        }
    }

    /// The simulated fleet these settings describe, not started: for a
    /// fleet run elsewhere (another process, as `fleet_10k`'s `SIM=process`)
    /// and reached through [`SimWorldBuilder::attach`].
    pub fn fleet_builder(&self) -> firmflow_sim::FleetBuilder {
        let mut b = Fleet::builder()
            .hosts(self.hosts)
            .flavor(self.flavor)
            .speed(self.speed)
            .seed(self.seed)
            .virtual_hosts(self.virtual_hosts)
            .http(self.plain_http);
        for (i, f) in &self.flavor_for {
            b = b.flavor_for(*i, *f);
        }
        b
    }

    /// The firmflow side of a world for a running fleet of `infos` whose
    /// certificate is `ca_pem` (`None` over plain HTTP): a memory store with
    /// every host registered, the connector and the resolvers.
    pub async fn attach(&self, infos: &[SimHostInfo], ca_pem: Option<&str>) -> AttachedWorld {
        let dir = tempfile::tempdir().expect("temp dir");
        let ca = dir.path().join("sim-ca.pem");
        if let Some(pem) = ca_pem {
            std::fs::write(&ca, pem).expect("write CA file");
        }
        let store = Arc::new(MemoryStore::new(Arc::new(SystemClock)));
        let first = infos.first().expect("at least one host");
        let mut tls_per_host = HashMap::new();
        if self.racadm.is_some() {
            // racadm cannot check a CA file (only the system trust store).
            for info in infos {
                tls_per_host.insert(info.url.clone(), TlsMode::AcceptInvalid);
            }
        }
        for (i, t) in &self.tls_for {
            if *t == SimTls::AcceptInvalid {
                let info = &infos[*i];
                tls_per_host.insert(info.url.clone(), TlsMode::AcceptInvalid);
            }
        }
        let mut resolve = HashMap::new();
        if self.virtual_hosts {
            for info in infos {
                // `host_header` is the URL's authority: `NAME:PORT`.
                let name = info
                    .host_header
                    .rsplit_once(':')
                    .map_or(info.host_header.as_str(), |(n, _)| n);
                resolve.insert(name.to_string(), info.addr);
            }
        }
        let default_tls = if self.plain_http {
            // No TLS to configure: the connector's default is never used.
            TlsMode::Verify
        } else if self.virtual_hosts {
            TlsMode::PinnedSha256(cert_sha256(
                ca_pem.expect("an HTTPS fleet has a certificate"),
            ))
        } else {
            TlsMode::CaFile(ca)
        };
        let cfg = ConnectorConfig {
            scheme: if self.plain_http { "http" } else { "https" }.into(),
            default_tls,
            resolve,
            tls_per_host,
            default_credential: Some(SIM_CREDENTIAL.into()),
            // The simulator's LC settles in simulated time; no real-time wait.
            lc_settle: Duration::ZERO,
            upload_timeout: Duration::from_secs(30),
            racadm: firmflow_redfish::RacadmConfig {
                binary: self
                    .racadm
                    .clone()
                    .unwrap_or_else(|| std::path::PathBuf::from("racadm")),
                timeout: Duration::from_secs(30),
                // The fake racadm: no other user on this machine to hide from.
                password_on_command_line: true,
            },
            ..ConnectorConfig::default()
        };
        let connector = Arc::new(
            Connector::new(
                cfg,
                Arc::new(SimCredentials {
                    username: first.username.clone(),
                    password: first.password.clone(),
                }),
            )
            .with_session_cache(store.clone()),
        );
        let cache = Arc::new(
            PackageCache::with_default_client(dir.path().join("packages")).expect("package cache"),
        );
        let resolver = Arc::new(ModeResolver::new(
            Arc::new(CatalogSource::new().expect("catalog source")),
            cache,
        ));
        let mut hosts = Vec::new();
        for info in infos {
            let mut nh = NewHost::idrac(format!("{}.sim.test", info.name), info.url.clone());
            if info.flavor == Flavor::Generic {
                nh.mgmt_kind = MgmtKind::Redfish;
            } else if self.racadm.is_some() {
                nh.mgmt_kind = MgmtKind::Racadm;
            }
            nh.model = Some(info.model.clone());
            nh.service_tag = Some(info.service_tag.clone());
            let host = store.add_host(nh).await.expect("register host");
            hosts.push(SimHost {
                sim: info.clone(),
                host,
            });
        }
        AttachedWorld {
            store,
            connector,
            resolver,
            hosts,
            dir,
        }
    }
}

/// The firmflow side of a world whose fleet runs elsewhere
/// ([`SimWorldBuilder::attach`]).
pub struct AttachedWorld {
    /// The store (system clock), every host registered.
    pub store: Arc<MemoryStore>,
    /// The real Redfish connector.
    pub connector: Arc<Connector>,
    /// The real resolvers.
    pub resolver: Arc<ModeResolver>,
    /// Hosts in fleet order.
    pub hosts: Vec<SimHost>,
    /// Scratch directory (CA file, package cache), removed on drop.
    pub dir: tempfile::TempDir,
}

/// One simulated iDRAC and the host registered for it.
#[derive(Clone, Debug)]
pub struct SimHost {
    /// How to reach it (name, URL, model, flavour).
    pub sim: SimHostInfo,
    /// The registered host.
    pub host: Host,
}

/// A running end-to-end world.
pub struct SimWorld {
    /// The simulated fleet.
    pub fleet: Fleet,
    /// The store (system clock).
    pub store: Arc<MemoryStore>,
    /// The real Redfish connector.
    pub connector: Arc<Connector>,
    /// The real resolvers, dispatching on the plan's update mode.
    pub resolver: Arc<ModeResolver>,
    /// Hosts in fleet order.
    pub hosts: Vec<SimHost>,
    dir: tempfile::TempDir,
}

impl SimWorld {
    /// A builder: 1 iDRAC9 host at [`SIM_SPEED`], seed 7.
    pub fn builder() -> SimWorldBuilder {
        SimWorldBuilder {
            hosts: 1,
            flavor: Flavor::Idrac9,
            flavor_for: Vec::new(),
            tls_for: Vec::new(),
            speed: SIM_SPEED,
            seed: 7,
            racadm: None,
            virtual_hosts: false,
            plain_http: false,
        }
    }

    /// An executor over this world with [`realtime_config`].
    pub fn executor(&self, name: &str) -> Executor {
        self.executor_with(realtime_config(name))
    }

    /// An executor over this world with an explicit configuration.
    pub fn executor_with(&self, cfg: ExecutorConfig) -> Executor {
        Executor::new(
            Services {
                store: self.store.clone(),
                bmc: self.connector.clone(),
                cluster: None,
                resolver: self.resolver.clone(),
                checks: CheckRegistry::builtin(),
                clock: Arc::new(SystemClock),
            },
            cfg,
        )
    }

    /// Serves a simulator package and returns a verified artifact for it
    /// (sha256 checksum and size, reboot flag in the metadata).
    pub fn artifact(&self, pkg: &firmflow_sim::Package) -> Artifact {
        serve_artifact(&self.fleet, pkg)
    }

    /// Writes a Dell-format catalog of `packages` with the simulator's
    /// catalog writer, serves it with its packages next to it (empty
    /// `baseLocation`), and returns the catalog URL.
    pub fn serve_catalog(&self, packages: &[firmflow_sim::Package]) -> String {
        let entries: Vec<firmflow_sim::catalog::CatalogEntry> = packages
            .iter()
            .map(|p| firmflow_sim::catalog::CatalogEntry::new(p.clone(), p.to_bytes()))
            .collect();
        for e in &entries {
            self.fleet
                .serve_file(&format!("repo/{}", e.path), e.bytes.clone());
        }
        let xml = firmflow_sim::catalog::write(
            &entries,
            &firmflow_sim::catalog::CatalogOptions::default(),
        )
        .expect("write catalog");
        self.fleet.serve_file("repo/Catalog.xml", xml)
    }

    /// The installed version of a component on a simulated host.
    pub fn version(&self, sim_name: &str, component_id: &str) -> Option<String> {
        self.fleet
            .firmware(sim_name)
            .into_iter()
            .find(|(c, _, _)| c == component_id)
            .map(|(_, _, v)| v)
    }

    /// The host registered for simulated host `sim_name`.
    pub fn host(&self, sim_name: &str) -> &Host {
        &self
            .hosts
            .iter()
            .find(|h| h.sim.name == sim_name)
            .expect("known simulated host")
            .host
    }

    /// The simulated host's name for a registered host id.
    pub fn sim_name(&self, id: HostId) -> &str {
        &self
            .hosts
            .iter()
            .find(|h| h.host.id == id)
            .expect("known host id")
            .sim
            .name
    }

    /// Scratch directory of this world (CA file, package cache).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Stops the fleet.
    pub async fn shutdown(self) {
        self.fleet.shutdown().await;
    }
}

/// Serves a simulator package from `fleet` and returns a verified artifact
/// for it (sha256 checksum and size, reboot flag in the metadata).
pub fn serve_artifact(fleet: &Fleet, pkg: &firmflow_sim::Package) -> Artifact {
    let bytes = pkg.to_bytes();
    let d = digest_bytes(&bytes);
    let uri = fleet.serve_file(&format!("pkgs/{}", pkg.file_name()), bytes);
    Artifact {
        id: ArtifactId::new(),
        component: pkg.component_id.clone(),
        image_uri: uri,
        version: Some(pkg.version.clone()),
        checksum: Some(format!("sha256:{}", d.sha256)),
        size_bytes: Some(d.size as i64),
        metadata: serde_json::json!({ "rebootRequired": pkg.reboot_required }),
    }
}

/// SHA-256 (hex) of the fleet's certificate, for `TlsMode::PinnedSha256`.
fn cert_sha256(pem: &str) -> String {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let der = CertificateDer::from_pem_slice(pem.as_bytes()).expect("fleet certificate PEM");
    digest_bytes(der.as_ref()).sha256
}

/// Executor tuning for real time against the simulator: short polls,
/// a 3 s lease renewed every 0.5 s, takeover 0.2 s after expiry.
pub fn realtime_config(name: &str) -> ExecutorConfig {
    let mut c = ExecutorConfig::new(name);
    c.slots = 16;
    c.lease_ttl = Duration::from_secs(3);
    c.heartbeat_interval = Duration::from_millis(500);
    c.safety_margin = Duration::from_millis(800);
    c.reclaim_delay = Duration::from_millis(200);
    c.poll_interval = Duration::from_millis(50);
    c.job_poll_initial = Duration::from_millis(20);
    c.job_poll_max = Duration::from_millis(120);
    c.ready_poll_interval = Duration::from_millis(25);
    c.ready_stable_reads = 2;
    c
}

/// A simulator package (any system when `system_ids` is empty).
pub fn sim_package(
    component_id: &str,
    name: &str,
    version: &str,
    kind: PackageKind,
    system_ids: &[u32],
) -> firmflow_sim::Package {
    firmflow_sim::Package {
        system_ids: system_ids.to_vec(),
        component_id: component_id.into(),
        name: name.into(),
        version: version.into(),
        reboot_required: !matches!(kind, PackageKind::Idrac | PackageKind::Diagnostics),
        kind,
    }
}

/// A plan over `hosts` in `mode` with every built-in check, downtime
/// allowed (the hosts are standalone) and immediate retries (3 attempts).
pub fn realtime_plan(hosts: &[&Host], mode: UpdateMode, artifacts: Vec<Artifact>) -> NewPlan {
    let mut policy = Policy::new(mode);
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
        initial_backoff_secs: 0,
        multiplier: 1.0,
        max_backoff_secs: 0,
        jitter: 0.0,
    });
    NewPlan {
        name: format!("e2e {}", Utc::now().format("%H:%M:%S")),
        policy,
        maintenance_window: None,
        approval_required: false,
        targets: hosts
            .iter()
            .map(|h| PlanTarget {
                host_id: h.id,
                priority: 0,
                conditions: serde_json::json!({}),
            })
            .collect(),
        artifacts,
        created_by: None,
        idempotency_key: None,
    }
}
