//! The fleet: building, starting, inspecting and stopping simulated iDRACs.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::{Arc, OnceLock, RwLock};

use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::SimError;
use crate::clock::Clock;
use crate::faults::{Fault, FaultRule, FaultSpec};
use crate::host::{self, Host};

/// Which kind of BMC a simulated host is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Flavor {
    /// iDRAC9 (14G–16G): Dell OEM, HttpPushUri, Tasks/JID Location.
    #[default]
    Idrac9,
    /// iDRAC10 (17G): TaskMonitor Location with no body, no HttpPushUri.
    Idrac10,
    /// A generic Redfish BMC: no Dell OEM, DMTF tasks only.
    Generic,
}

impl Flavor {
    /// The CLI name (`idrac9`, `idrac10`, `generic`).
    pub fn as_str(self) -> &'static str {
        match self {
            Flavor::Idrac9 => "idrac9",
            Flavor::Idrac10 => "idrac10",
            Flavor::Generic => "generic",
        }
    }
}

impl FromStr for Flavor {
    type Err = SimError;
    fn from_str(s: &str) -> Result<Self, SimError> {
        match s.to_ascii_lowercase().as_str() {
            "idrac9" | "idrac" => Ok(Flavor::Idrac9),
            "idrac10" => Ok(Flavor::Idrac10),
            "generic" | "redfish" => Ok(Flavor::Generic),
            other => Err(SimError::Config(format!("unknown flavor {other:?}"))),
        }
    }
}

impl std::fmt::Display for Flavor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How to reach one simulated iDRAC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimHostInfo {
    /// Host name, e.g. `idrac-001`.
    pub name: String,
    /// Base URL, e.g. `https://127.0.0.1:40123` (virtual-host mode:
    /// `https://idrac-001.localhost:PORT`; connect to [`SimHostInfo::addr`]).
    pub url: String,
    /// Redfish user name.
    pub username: String,
    /// Redfish password.
    pub password: String,
    /// Dell service tag (also the system `SKU`).
    pub service_tag: String,
    /// Dell SystemID (decimal).
    pub system_id: u32,
    /// Server model, e.g. `PowerEdge R640`.
    pub model: String,
    /// BMC flavour.
    pub flavor: Flavor,
    /// The socket address serving this host (shared in virtual-host mode).
    pub addr: SocketAddr,
    /// The `Host` header value that selects this host (its URL authority).
    pub host_header: String,
}

/// One completed firmware install (for exactly-once checks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallRecord {
    /// Dell ComponentID (`SoftwareId`).
    pub component_id: String,
    /// Component name.
    pub name: String,
    /// Version before the install.
    pub from_version: String,
    /// Version the package installed.
    pub to_version: String,
    /// Simulated time of the install (ISO 8601).
    pub at: String,
}

/// Request counters of one host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestStats {
    /// All requests.
    pub total: u64,
    /// Per (HTTP method, path template) like `("GET", "/redfish/v1/TaskService/Tasks/{id}")`.
    pub by_endpoint: BTreeMap<(String, String), u64>,
}

impl RequestStats {
    /// Requests with this method and path template.
    pub fn count(&self, method: &str, template: &str) -> u64 {
        self.by_endpoint
            .get(&(method.to_string(), template.to_string()))
            .copied()
            .unwrap_or(0)
    }

    /// Requests to this path template, any method.
    pub fn path_count(&self, template: &str) -> u64 {
        self.by_endpoint
            .iter()
            .filter(|((_, t), _)| t == template)
            .map(|(_, n)| n)
            .sum()
    }
}

/// Shared state of a running fleet.
#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) clock: Clock,
    pub(crate) hosts: Vec<Arc<Host>>,
    pub(crate) by_name: HashMap<String, usize>,
    pub(crate) files: RwLock<HashMap<String, Bytes>>,
    pub(crate) client: reqwest::Client,
    pub(crate) control_url: OnceLock<String>,
    pub(crate) shutdown: watch::Sender<bool>,
    pub(crate) max_sessions: usize,
    pub(crate) tls: Option<Arc<rustls::ServerConfig>>,
    /// TCP connections accepted, every listener together (BMC load: each
    /// is a TLS handshake on an HTTPS fleet).
    pub(crate) accepted: std::sync::atomic::AtomicU64,
}

/// Why an image could not be fetched.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    #[error("unsupported URI scheme")]
    Scheme,
    #[error("HTTP error: {0}")]
    Http(String),
}

impl Inner {
    /// Spawns a task that ends with the fleet.
    pub(crate) fn spawn<F>(&self, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let mut rx = self.shutdown.subscribe();
        tokio::spawn(async move {
            tokio::select! {
                _ = fut => {}
                _ = rx.wait_for(|s| *s) => {}
            }
        });
    }

    /// Fetches an image over HTTP(S) (any certificate accepted).
    pub(crate) async fn fetch(&self, url: &str) -> Result<Bytes, FetchError> {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(FetchError::Scheme);
        }
        let resp = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| FetchError::Http(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(FetchError::Http(resp.status().to_string()));
        }
        resp.bytes()
            .await
            .map_err(|e| FetchError::Http(e.to_string()))
    }

    pub(crate) fn host(&self, name: &str) -> Option<&Arc<Host>> {
        self.by_name.get(name).and_then(|i| self.hosts.get(*i))
    }

    /// Adds a rule to the matching hosts (all when the rule names none).
    pub(crate) fn add_rule(&self, rule: FaultRule) -> Result<(), SimError> {
        let targets: Vec<&Arc<Host>> = match &rule.host {
            Some(h) => vec![
                self.host(h)
                    .ok_or_else(|| SimError::Config(format!("fault for unknown host {h:?}")))?,
            ],
            None => self.hosts.iter().collect(),
        };
        for h in targets {
            let until = match &rule.fault {
                Fault::LcNotReady { secs } => Some(self.clock.deadline(*secs as f64)),
                _ => None,
            };
            let mut st = h.lock();
            let once = rule.fault == Fault::SessionExpiry
                && rule.probability >= 1.0
                && rule.count == Some(1);
            if once {
                // Expire every session now.
                st.sessions.clear();
            } else {
                st.faults.rules.push((rule.clone(), until));
            }
        }
        Ok(())
    }

    pub(crate) fn serve_file(&self, name: &str, bytes: Vec<u8>) -> String {
        let name = name.trim_start_matches('/').to_string();
        if let Ok(mut files) = self.files.write() {
            files.insert(name.clone(), Bytes::from(bytes));
        }
        format!(
            "{}/files/{}",
            self.control_url.get().map(String::as_str).unwrap_or(""),
            name
        )
    }
}

/// Configures and starts a [`Fleet`].
#[derive(Debug, Clone)]
pub struct FleetBuilder {
    hosts: usize,
    flavor: Flavor,
    flavor_for: HashMap<usize, Flavor>,
    http: bool,
    virtual_hosts: bool,
    speed: f64,
    seed: u64,
    faults: FaultSpec,
    username: String,
    password: String,
    max_sessions: usize,
    strict: bool,
}

impl Default for FleetBuilder {
    fn default() -> Self {
        Self {
            hosts: 1,
            flavor: Flavor::Idrac9,
            flavor_for: HashMap::new(),
            http: false,
            virtual_hosts: false,
            speed: 1.0,
            seed: 0,
            faults: FaultSpec::none(),
            username: "root".into(),
            password: "calvin".into(),
            max_sessions: 8,
            strict: false,
        }
    }
}

impl FleetBuilder {
    /// Number of simulated iDRACs (default 1).
    pub fn hosts(mut self, n: usize) -> Self {
        self.hosts = n;
        self
    }
    /// Flavour of every host (default iDRAC9).
    pub fn flavor(mut self, f: Flavor) -> Self {
        self.flavor = f;
        self
    }
    /// Flavour of the host at `index` (0-based).
    pub fn flavor_for(mut self, index: usize, f: Flavor) -> Self {
        self.flavor_for.insert(index, f);
        self
    }
    /// Plain HTTP instead of HTTPS.
    pub fn http(mut self, yes: bool) -> Self {
        self.http = yes;
        self
    }
    /// One listener for all hosts, routed by the `Host` header.
    pub fn virtual_hosts(mut self, yes: bool) -> Self {
        self.virtual_hosts = yes;
        self
    }
    /// Time speed factor: `1000.0` runs a 10-minute Dell update in 0.6 s.
    pub fn speed(mut self, factor: f64) -> Self {
        self.speed = factor;
        self
    }
    /// Seed for everything random (service tags, JIDs, durations, faults).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    /// Faults active from the start.
    pub fn faults(mut self, spec: FaultSpec) -> Self {
        self.faults = spec;
        self
    }
    /// Redfish user name (default `root`).
    pub fn username(mut self, u: &str) -> Self {
        self.username = u.to_string();
        self
    }
    /// Redfish password (default `calvin`).
    pub fn password(mut self, p: &str) -> Self {
        self.password = p.to_string();
        self
    }
    /// Maximum concurrent sessions per iDRAC (default 8; past it: 503 RAC0218).
    pub fn max_sessions(mut self, n: usize) -> Self {
        self.max_sessions = n;
        self
    }

    /// Strict Redfish mode: drop the iDRAC quirks that violate the DMTF
    /// schemas (`ReleaseDate` `"00:00:00Z"`, Dell's versioned OEM action key).
    pub fn strict_redfish(mut self, yes: bool) -> Self {
        self.strict = yes;
        self
    }

    /// Binds the listeners and starts serving.
    pub async fn start(self) -> Result<Fleet, SimError> {
        if !(self.speed.is_finite() && self.speed > 0.0) {
            return Err(SimError::Config(format!(
                "speed must be > 0, got {}",
                self.speed
            )));
        }
        if self.hosts == 0 {
            return Err(SimError::Config("a fleet needs at least one host".into()));
        }
        let width = self.hosts.to_string().len().max(3);
        let mut hosts = Vec::with_capacity(self.hosts);
        let mut by_name = HashMap::with_capacity(self.hosts);
        for i in 0..self.hosts {
            let name = format!("idrac-{:0width$}", i + 1);
            let flavor = self.flavor_for.get(&i).copied().unwrap_or(self.flavor);
            by_name.insert(name.clone(), i);
            hosts.push(Arc::new(Host::new(
                i,
                name,
                flavor,
                self.seed,
                &self.username,
                &self.password,
                self.strict,
            )));
        }
        let tls = if self.http {
            None
        } else {
            Some(crate::tls::server_config()?)
        };
        let client = reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .no_proxy()
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .map_err(|e| SimError::Client(e.to_string()))?;
        let inner = Arc::new(Inner {
            clock: Clock::new(self.speed),
            hosts,
            by_name,
            files: RwLock::new(HashMap::new()),
            client,
            control_url: OnceLock::new(),
            shutdown: watch::channel(false).0,
            max_sessions: self.max_sessions.max(1),
            tls,
            accepted: std::sync::atomic::AtomicU64::new(0),
        });
        for rule in &self.faults.rules {
            inner.add_rule(rule.clone())?;
        }
        let mut tasks = Vec::new();
        // Control API.
        let control = bind("control API").await?;
        let control_addr = control.local_addr().map_err(|e| SimError::Bind {
            what: "control API".into(),
            source: e,
        })?;
        let _ = inner.control_url.set(format!("http://{control_addr}"));
        tasks.push(tokio::spawn(crate::control::serve(inner.clone(), control)));
        // Redfish listeners.
        let scheme = if self.http { "http" } else { "https" };
        let mut infos = Vec::with_capacity(self.hosts);
        if self.virtual_hosts {
            let l = bind("virtual-host listener").await?;
            let addr = l.local_addr().map_err(|e| SimError::Bind {
                what: "virtual-host listener".into(),
                source: e,
            })?;
            tasks.push(tokio::spawn(crate::http::serve_shared(inner.clone(), l)));
            for h in &inner.hosts {
                let authority = format!("{}.localhost:{}", h.name, addr.port());
                infos.push(info(h, format!("{scheme}://{authority}"), addr, authority));
            }
        } else {
            for (i, h) in inner.hosts.iter().enumerate() {
                let l = bind(&h.name).await?;
                let addr = l.local_addr().map_err(|e| SimError::Bind {
                    what: h.name.clone(),
                    source: e,
                })?;
                tasks.push(tokio::spawn(crate::http::serve_host(
                    inner.clone(),
                    i,
                    l,
                    addr,
                )));
                let authority = addr.to_string();
                infos.push(info(h, format!("{scheme}://{authority}"), addr, authority));
            }
        }
        Ok(Fleet {
            inner,
            infos,
            tasks,
        })
    }
}

fn info(h: &Host, url: String, addr: SocketAddr, host_header: String) -> SimHostInfo {
    SimHostInfo {
        name: h.name.clone(),
        url,
        username: h.username.clone(),
        password: h.password.clone(),
        service_tag: h.service_tag.clone(),
        system_id: h.model.system_id,
        model: h.model.name.to_string(),
        flavor: h.flavor,
        addr,
        host_header,
    }
}

async fn bind(what: &str) -> Result<TcpListener, SimError> {
    TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(|e| SimError::Bind {
            what: what.to_string(),
            source: e,
        })
}

/// A running simulated fleet. Dropping it stops serving (prefer [`Fleet::shutdown`]).
#[derive(Debug)]
pub struct Fleet {
    inner: Arc<Inner>,
    infos: Vec<SimHostInfo>,
    tasks: Vec<JoinHandle<()>>,
}

impl Fleet {
    /// A builder with defaults: 1 iDRAC9 host, HTTPS, speed 1, seed 0, `root`/`calvin`.
    pub fn builder() -> FleetBuilder {
        FleetBuilder::default()
    }

    /// The simulated hosts, in order.
    pub fn hosts(&self) -> &[SimHostInfo] {
        &self.infos
    }

    /// One host by name.
    pub fn host(&self, name: &str) -> Option<&SimHostInfo> {
        self.infos.iter().find(|h| h.name == name)
    }

    /// Base URL of the control API (plain HTTP on 127.0.0.1).
    pub fn control_url(&self) -> String {
        self.inner.control_url.get().cloned().unwrap_or_default()
    }

    /// The fleet's self-signed certificate (PEM), for clients that pin it.
    pub fn ca_cert_pem(&self) -> Option<String> {
        self.inner.tls.as_ref().map(|_| crate::tls::cert_pem())
    }

    /// Serves `bytes` at a plain-HTTP URL on 127.0.0.1 (for `ImageURI` or catalogs).
    pub fn serve_file(&self, name: &str, bytes: Vec<u8>) -> String {
        self.inner.serve_file(name, bytes)
    }

    /// Injects a fault on one host now.
    pub fn inject(&self, host: &str, fault: Fault) {
        self.inject_rule(FaultRule::new(fault).on_host(host));
    }

    /// Injects a rule (probability, count, host) now; unknown hosts are ignored.
    pub fn inject_rule(&self, rule: FaultRule) {
        let _ = self.inner.add_rule(rule);
    }

    /// Removes every active fault of a host (a hung host can then be powered on).
    pub fn clear_faults(&self, host: &str) {
        if let Some(h) = self.inner.host(host) {
            h.lock().faults.rules.clear();
        }
    }

    /// Installs done on a host, in order.
    pub fn installs(&self, host: &str) -> Vec<InstallRecord> {
        self.inner
            .host(host)
            .map(|h| h.lock().installs.clone())
            .unwrap_or_default()
    }

    /// How many times a component was flashed on a host.
    pub fn install_count(&self, host: &str, component_id: &str) -> usize {
        self.inner
            .host(host)
            .map(|h| {
                h.lock()
                    .installs
                    .iter()
                    .filter(|r| r.component_id == component_id)
                    .count()
            })
            .unwrap_or(0)
    }

    /// Request counters of a host.
    pub fn requests(&self, host: &str) -> RequestStats {
        self.inner
            .host(host)
            .map(|h| h.lock().stats.snapshot())
            .unwrap_or_default()
    }

    /// Sessions alive on a host (idle ones expire).
    pub fn live_sessions(&self, host: &str) -> usize {
        self.inner
            .host(host)
            .map(|h| {
                let mut st = h.lock();
                st.purge_sessions(&self.inner);
                st.sessions.len()
            })
            .unwrap_or(0)
    }

    /// TCP connections the fleet has accepted so far, all hosts together
    /// (on HTTPS, each one a TLS handshake).
    pub fn connections_accepted(&self) -> u64 {
        self.inner
            .accepted
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The most sessions a host had alive at once (the sim counts at every
    /// login, after purging idle ones): 1 for a client that never holds two.
    pub fn peak_sessions(&self, host: &str) -> usize {
        self.inner
            .host(host)
            .map(|h| h.lock().peak_sessions)
            .unwrap_or(0)
    }

    /// Installed firmware: `(component_id, name, version)`.
    pub fn firmware(&self, host: &str) -> Vec<(String, String, String)> {
        self.inner
            .host(host)
            .map(|h| {
                h.lock()
                    .components
                    .iter()
                    .map(|c| (c.component_id.clone(), c.name.clone(), c.version.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Host power state: `"On"` or `"Off"` (`None` for an unknown host).
    pub fn power_state(&self, host: &str) -> Option<String> {
        self.inner
            .host(host)
            .map(|h| if h.lock().power_on { "On" } else { "Off" }.to_string())
    }

    /// Sets a component's installed version (test setup). Returns false if
    /// the host or component does not exist. `component_id` may also be a
    /// PCI identity or an FQDD.
    pub fn set_component_version(&self, host: &str, component_id: &str, version: &str) -> bool {
        let Some(h) = self.inner.host(host) else {
            return false;
        };
        let mut st = h.lock();
        let Some(c) = st
            .components
            .iter_mut()
            .find(|c| c.matches(component_id) || c.fqdd == component_id)
        else {
            return false;
        };
        c.version = version.to_string();
        st.inventory_gen += 1;
        true
    }

    /// Jobs of a host: `(id, name, JobState, PercentComplete)`.
    pub fn jobs(&self, host: &str) -> Vec<(String, String, String, u32)> {
        self.inner
            .host(host)
            .map(|h| {
                h.lock()
                    .jobs
                    .iter()
                    .map(|j| {
                        (
                            j.id.clone(),
                            j.name.clone(),
                            j.state.dell().to_string(),
                            j.percent,
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether the iDRAC of a host answers (false while it restarts).
    pub fn bmc_up(&self, host: &str) -> bool {
        self.inner
            .host(host)
            .is_some_and(|h| h.lock().bmc != host::Bmc::Down)
    }

    /// Stops every listener and background process.
    pub async fn shutdown(mut self) {
        self.inner.shutdown.send_replace(true);
        for t in self.tasks.drain(..) {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), t).await;
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.inner.shutdown.send_replace(true);
    }
}
