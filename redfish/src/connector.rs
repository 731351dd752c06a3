//! The `BmcConnector`: a connected driver for a registered host, by its
//! management kind (`idrac` → iDRAC driver, `redfish` → generic DMTF driver,
//! `racadm` → remote racadm driver), with its credentials resolved through
//! the core's `CredentialProvider`, its sessions cached through the core's
//! `SessionCache`, and its TLS setting chosen per host.
//!
//! An explicit accept-invalid TLS setting is logged at warn level on every
//! connect and recorded as an [`InsecureTls`] (kept, and handed to an
//! optional callback) so the caller can write it to its audit trail.

use crate::client::{RedfishClient, SessionStore};
use crate::driver::{DriverConfig, Flavor, RedfishDriver};
use crate::racadm::{RacadmConfig, RacadmDriver};
use crate::tls::{Timeouts, TlsConfigs, TlsMode, client_builder_with};
use crate::transport::{RequestCounter, build_stack};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use firmflow_core::bmc::{self, BmcConnector, BmcDriver, ErrorKind};
use firmflow_core::credentials::{self, Credential, CredentialProvider};
use firmflow_core::model::{CredentialKind, Host, HostId, MgmtKind};
use firmflow_core::store::{HostStore, SessionCache};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One connection made without certificate verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InsecureTls {
    /// Host id.
    pub host_id: HostId,
    /// BMC address.
    pub address: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// Connector settings.
#[derive(Clone, Debug)]
pub struct ConnectorConfig {
    /// `https` (default) or `http` (simulator, lab).
    pub scheme: String,
    /// TLS for hosts without their own setting.
    pub default_tls: TlsMode,
    /// TLS per host, keyed by management address, fqdn or host id.
    pub tls_per_host: HashMap<String, TlsMode>,
    /// HTTP timeouts.
    pub timeouts: Timeouts,
    /// At most this many requests in flight to one BMC.
    pub max_in_flight: NonZeroUsize,
    /// Credential reference when the store has none for a host.
    pub default_credential: Option<String>,
    /// Upload timeout.
    pub upload_timeout: Duration,
    /// Readiness settle time after a reset.
    pub lc_settle: Duration,
    /// Remote racadm settings.
    pub racadm: RacadmConfig,
    /// Fixed addresses for BMC host names, used instead of DNS (like curl's
    /// `--resolve`): a management address `https://NAME[:PORT]` whose NAME
    /// is a key here is connected to that socket address, while TLS (SNI and
    /// the certificate check) and the `Host` header still use NAME. For BMC
    /// names the firmflow machine cannot resolve, and for virtual-host
    /// simulators (`firmflow-sim --virtual-hosts`: one listener, every iDRAC
    /// a `*.localhost` name). Only the IP of the address is used: the port
    /// is the management address's own (its scheme's default when it names
    /// none), as reqwest's `ClientBuilder::resolve` has it. Not applied to
    /// racadm, which resolves names itself.
    pub resolve: HashMap<String, SocketAddr>,
}

impl Default for ConnectorConfig {
    fn default() -> Self {
        Self {
            scheme: "https".into(),
            default_tls: TlsMode::Verify,
            tls_per_host: HashMap::new(),
            timeouts: Timeouts::default(),
            // iDRAC handles few parallel requests well; 4 keeps polls and
            // inventory reads from queueing behind each other.
            max_in_flight: NonZeroUsize::new(4).unwrap_or(NonZeroUsize::MIN),
            default_credential: None,
            upload_timeout: Duration::from_secs(30 * 60),
            lc_settle: Duration::from_secs(120),
            racadm: RacadmConfig::default(),
            resolve: HashMap::new(),
        }
    }
}

type InsecureHook = Arc<dyn Fn(&InsecureTls) + Send + Sync>;

/// Builds drivers for hosts.
pub struct Connector {
    cfg: ConnectorConfig,
    credentials: Arc<dyn CredentialProvider>,
    sessions: Option<Arc<dyn SessionCache>>,
    hosts: Option<Arc<dyn HostStore>>,
    insecure: Mutex<Vec<InsecureTls>>,
    on_insecure: Option<InsecureHook>,
    /// One rustls configuration per TLS mode, shared by every host's client.
    tls_configs: TlsConfigs,
}

impl Connector {
    /// A connector resolving credentials through `credentials`.
    pub fn new(cfg: ConnectorConfig, credentials: Arc<dyn CredentialProvider>) -> Self {
        Self {
            cfg,
            credentials,
            sessions: None,
            hosts: None,
            insecure: Mutex::new(Vec::new()),
            on_insecure: None,
            tls_configs: TlsConfigs::default(),
        }
    }

    /// Caches sessions in `cache` (the store's `redfish_sessions`).
    pub fn with_session_cache(mut self, cache: Arc<dyn SessionCache>) -> Self {
        self.sessions = Some(cache);
        self
    }

    /// Looks credential references up in `hosts` (host's own, then fleet-wide).
    pub fn with_host_store(mut self, hosts: Arc<dyn HostStore>) -> Self {
        self.hosts = Some(hosts);
        self
    }

    /// Calls `hook` for every connection made without TLS verification
    /// (write it to the audit trail).
    pub fn on_insecure_tls(mut self, hook: impl Fn(&InsecureTls) + Send + Sync + 'static) -> Self {
        self.on_insecure = Some(Arc::new(hook));
        self
    }

    /// Every connection made so far without TLS verification.
    pub fn insecure_connections(&self) -> Vec<InsecureTls> {
        self.insecure.lock().map(|v| v.clone()).unwrap_or_default()
    }

    fn tls_for(&self, host: &Host) -> TlsMode {
        [
            host.mgmt_ip.as_str(),
            host.fqdn.as_str(),
            &host.id.to_string(),
        ]
        .iter()
        .find_map(|k| self.cfg.tls_per_host.get(*k).cloned())
        .unwrap_or_else(|| self.cfg.default_tls.clone())
    }

    async fn credential(&self, host: &Host) -> Result<Credential, bmc::Error> {
        let addr = host.mgmt_ip.as_str();
        let mut reference = None;
        if let Some(hs) = &self.hosts {
            let recs = hs
                .credentials_for(host.id, CredentialKind::Idrac)
                .await
                .map_err(|e| {
                    let kind = if e.is_transient() {
                        ErrorKind::ServiceUnavailable
                    } else {
                        ErrorKind::Other
                    };
                    bmc::Error::new(addr, kind, format!("credential lookup: {e}"))
                })?;
            reference = recs.into_iter().next().map(|r| r.vault_path);
        }
        let reference = reference
            .or_else(|| self.cfg.default_credential.clone())
            .ok_or_else(|| {
                bmc::Error::new(
                    addr,
                    ErrorKind::Authentication,
                    "no credential registered for this host",
                )
            })?;
        self.credentials.resolve(&reference).await.map_err(|e| {
            let kind = match e {
                credentials::Error::Unavailable { .. } => ErrorKind::ServiceUnavailable,
                _ => ErrorKind::Authentication,
            };
            bmc::Error::new(addr, kind, e.to_string())
        })
    }

    /// Logs and records a connection that skips certificate verification.
    fn note_insecure(&self, host: &Host, tls: &TlsMode) {
        if !tls.is_insecure() {
            return;
        }
        let addr = &host.mgmt_ip;
        tracing::warn!(host = %addr, host_id = %host.id, "TLS certificate verification DISABLED for this BMC (accept_invalid)");
        let rec = InsecureTls {
            host_id: host.id,
            address: addr.clone(),
            at: Utc::now(),
        };
        if let Some(h) = &self.on_insecure {
            h(&rec);
        }
        if let Ok(mut v) = self.insecure.lock() {
            v.push(rec);
        }
    }

    /// The Redfish driver for `host` in `flavor` (also used by tests and benches).
    pub async fn redfish_driver(
        &self,
        host: &Host,
        flavor: Flavor,
    ) -> Result<RedfishDriver, bmc::Error> {
        let credential = self.credential(host).await?;
        let addr = host.mgmt_ip.clone();
        let tls = self.tls_for(host);
        self.note_insecure(host, &tls);
        let base = if addr.contains("://") {
            addr.clone()
        } else {
            format!("{}://{addr}", self.cfg.scheme)
        };
        let base = url::Url::parse(&base).map_err(|e| {
            bmc::Error::new(
                &addr,
                ErrorKind::Other,
                format!("bad management address: {e}"),
            )
        })?;
        let config = self
            .tls_configs
            .get(&tls)
            .map_err(|e| bmc::Error::new(&addr, ErrorKind::Tls, e.to_string()))?;
        let mut builder = client_builder_with(config, self.cfg.timeouts);
        if let Some(name) = base.host_str()
            && let Some(to) = self.cfg.resolve.get(name)
        {
            builder = builder.resolve(name, *to);
        }
        let http = builder
            .build()
            .map_err(|e| bmc::Error::new(&addr, ErrorKind::Tls, crate::error::chain(&e)))?;
        let counter = Arc::new(RequestCounter::default());
        let stack = build_stack(
            http.clone(),
            base.clone(),
            self.cfg.max_in_flight,
            counter.clone(),
        );
        let store = self.sessions.as_ref().map(|c| SessionStore {
            cache: c.clone(),
            host_id: host.id,
        });
        let client = RedfishClient::new(addr, base, http, stack, credential, store, counter);
        let mut dc = DriverConfig::new(flavor);
        dc.upload_timeout = self.cfg.upload_timeout;
        dc.lc_settle = self.cfg.lc_settle;
        Ok(RedfishDriver::new(client, dc))
    }
}

#[async_trait]
impl BmcConnector for Connector {
    async fn connect(&self, host: &Host) -> Result<Arc<dyn BmcDriver>, bmc::Error> {
        match &host.mgmt_kind {
            MgmtKind::Idrac => Ok(Arc::new(self.redfish_driver(host, Flavor::Idrac).await?)),
            MgmtKind::Redfish => Ok(Arc::new(self.redfish_driver(host, Flavor::Generic).await?)),
            MgmtKind::Racadm => {
                let credential = self.credential(host).await?;
                // racadm honours the host's TLS mode too (or refuses it).
                let tls = self.tls_for(host);
                self.note_insecure(host, &tls);
                Ok(Arc::new(
                    RacadmDriver::new(self.cfg.racadm.clone(), host.mgmt_ip.clone(), credential)
                        .with_tls(tls),
                ))
            }
            other => Err(bmc::Error::new(
                &host.mgmt_ip,
                ErrorKind::NotSupported,
                format!("management kind {other} cannot update firmware"),
            )),
        }
    }
}
