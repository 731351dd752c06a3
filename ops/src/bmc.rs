//! BMC settings an operator writes once per fleet (and overrides per host),
//! and the Redfish connector built from them with a credential provider.
//!
//! ```toml
//! [bmc]
//! credential = "env:IDRAC"        # fleet-wide reference when a host has none
//! # driver = "idrac"              # force a driver: idrac | generic | racadm
//! max_requests_per_bmc = 4        # requests in flight to one BMC
//! # lc_settle_secs = 120          # wait after an iDRAC reset before trusting "Ready"
//! # request_timeout_secs = 60
//! # connect_timeout_secs = 10
//!
//! [bmc.tls]                       # verify (default), or one of:
//! ca_file = "/etc/firmflow/idrac-ca.pem"
//! # pin_sha256 = "ab:cd:…"        # exactly this certificate
//! # insecure = true               # accept anything (logged on every connect)
//!
//! [bmc.racadm]                     # only for hosts on the racadm driver
//! # binary = "/opt/dell/srvadmin/bin/idracadm7"
//! # timeout_secs = 900
//! # racadm takes the password only on its command line, visible to local
//! # users in `ps`: the driver refuses to run without this explicit opt-in.
//! # password_on_command_line = true
//!
//! [bmc.hosts."10.0.0.12"]         # by mgmt_ip, fqdn or host id
//! tls = { pin_sha256 = "…" }
//! driver = "racadm"
//!
//! [vault]                         # optional: enables vault: references
//! address = "https://vault.lab:8200"   # or VAULT_ADDR
//! # token_env = "VAULT_TOKEN"     # the variable holding the token
//! # namespace = "ops"
//! # ca_file = "/etc/ssl/vault-ca.pem"
//! ```
//!
//! Secrets never appear here: credentials are references resolved by
//! `firmflow-credentials` (environment, permission-checked file, Vault).

use async_trait::async_trait;
use firmflow_core::bmc::{self, BmcConnector, BmcDriver};
use firmflow_core::credentials::CredentialProvider;
use firmflow_core::model::{Host, MgmtKind};
use firmflow_core::store::{HostStore, SessionCache};
use firmflow_credentials::{CompositeProvider, VaultConfig, VaultProvider};
use firmflow_redfish::{Connector, ConnectorConfig, InsecureTls, TlsMode};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Which driver talks to a BMC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DriverKind {
    /// Dell iDRAC: Redfish with Dell OEM.
    Idrac,
    /// Any DMTF Redfish BMC.
    Generic,
    /// Dell remote racadm.
    Racadm,
}

impl DriverKind {
    /// The management kind the connector dispatches on.
    pub fn mgmt_kind(self) -> MgmtKind {
        match self {
            DriverKind::Idrac => MgmtKind::Idrac,
            DriverKind::Generic => MgmtKind::Redfish,
            DriverKind::Racadm => MgmtKind::Racadm,
        }
    }
}

/// TLS to a BMC: verified against the system roots unless one of these is set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// Trust only the CA certificates in this PEM file.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Accept exactly the certificate with this SHA-256 fingerprint.
    #[serde(default)]
    pub pin_sha256: Option<String>,
    /// Accept any certificate (logged as insecure on every connect).
    #[serde(default)]
    pub insecure: bool,
}

impl TlsSettings {
    /// The TLS mode, refusing two choices at once.
    pub fn mode(&self) -> Result<TlsMode, SettingsError> {
        match (&self.ca_file, &self.pin_sha256, self.insecure) {
            (None, None, false) => Ok(TlsMode::Verify),
            (Some(f), None, false) => Ok(TlsMode::CaFile(f.clone())),
            (None, Some(p), false) => {
                let hex: String = p.chars().filter(|c| *c != ':').collect();
                if hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
                    Ok(TlsMode::PinnedSha256(p.clone()))
                } else {
                    Err(SettingsError::Invalid(
                        "tls.pin_sha256 must be 64 hex digits (colons allowed)".into(),
                    ))
                }
            }
            (None, None, true) => Ok(TlsMode::AcceptInvalid),
            _ => Err(SettingsError::Invalid(
                "tls: choose one of ca_file, pin_sha256 and insecure".into(),
            )),
        }
    }
}

/// Overrides for one host.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostBmcSettings {
    /// TLS for this BMC.
    #[serde(default)]
    pub tls: Option<TlsSettings>,
    /// Driver for this BMC.
    #[serde(default)]
    pub driver: Option<DriverKind>,
}

/// How firmflow reaches the BMCs of a fleet.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BmcSettings {
    /// Credential reference for hosts without their own.
    #[serde(default)]
    pub credential: Option<String>,
    /// Force this driver for every host (default: by the host's mgmt_kind).
    #[serde(default)]
    pub driver: Option<DriverKind>,
    /// TLS for every BMC without its own setting.
    #[serde(default)]
    pub tls: TlsSettings,
    /// Requests in flight to one BMC (iDRACs handle few well).
    #[serde(default = "default_cap")]
    pub max_requests_per_bmc: usize,
    /// `https` (default) or `http` for addresses without a scheme.
    #[serde(default = "default_scheme")]
    pub scheme: String,
    /// Seconds to wait after an iDRAC reset before trusting its readiness.
    #[serde(default)]
    pub lc_settle_secs: Option<u64>,
    /// Whole-request timeout, seconds.
    #[serde(default)]
    pub request_timeout_secs: Option<u64>,
    /// Connect timeout, seconds.
    #[serde(default)]
    pub connect_timeout_secs: Option<u64>,
    /// Remote racadm, for hosts on the racadm driver.
    #[serde(default)]
    pub racadm: RacadmSettings,
    /// Per-host overrides, keyed by mgmt_ip, fqdn or host id.
    #[serde(default)]
    pub hosts: BTreeMap<String, HostBmcSettings>,
}

/// How the racadm driver runs racadm.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RacadmSettings {
    /// The racadm executable (default: `racadm` on the PATH).
    #[serde(default)]
    pub binary: Option<std::path::PathBuf>,
    /// Timeout of one racadm command, seconds (an update uploads the image).
    #[serde(default)]
    pub timeout_secs: Option<u64>,
    /// Accept that racadm gets the password on its command line (visible
    /// to local users in the process list). Without it racadm hosts fail
    /// with an error saying so.
    #[serde(default)]
    pub password_on_command_line: bool,
}

fn default_cap() -> usize {
    4
}
fn default_scheme() -> String {
    "https".into()
}

impl Default for BmcSettings {
    fn default() -> Self {
        Self {
            credential: None,
            driver: None,
            tls: TlsSettings::default(),
            max_requests_per_bmc: default_cap(),
            scheme: default_scheme(),
            lc_settle_secs: None,
            request_timeout_secs: None,
            connect_timeout_secs: None,
            racadm: RacadmSettings::default(),
            hosts: BTreeMap::new(),
        }
    }
}

/// Vault, for `vault:` credential references.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultSettings {
    /// Address; `VAULT_ADDR` when unset.
    #[serde(default)]
    pub address: Option<String>,
    /// The environment variable holding the token (default `VAULT_TOKEN`).
    #[serde(default)]
    pub token_env: Option<String>,
    /// Enterprise namespace.
    #[serde(default)]
    pub namespace: Option<String>,
    /// CA bundle for Vault's certificate.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

/// Settings that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A value is wrong.
    #[error("BMC settings: {0}")]
    Invalid(String),
    /// Vault is configured but cannot be set up.
    #[error("vault: {0}")]
    Vault(String),
}

impl BmcSettings {
    /// Checks every value (references, TLS choices, overrides) at once.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let mut problems = Vec::new();
        if let Some(c) = &self.credential
            && let Err(e) = check_reference(c)
        {
            problems.push(format!("credential: {e}"));
        }
        if let Err(e) = self.tls.mode() {
            problems.push(e.to_string());
        }
        if self.max_requests_per_bmc == 0 {
            problems.push("max_requests_per_bmc must be at least 1".into());
        }
        if !matches!(self.scheme.as_str(), "https" | "http") {
            problems.push(format!("scheme {:?}: expected https or http", self.scheme));
        }
        for (k, h) in &self.hosts {
            if let Some(t) = &h.tls
                && let Err(e) = t.mode()
            {
                problems.push(format!("hosts.{k:?}: {e}"));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(SettingsError::Invalid(problems.join("; ")))
        }
    }

    /// The connector configuration these settings describe.
    pub fn connector_config(&self) -> Result<ConnectorConfig, SettingsError> {
        self.validate()?;
        let mut cfg = ConnectorConfig {
            scheme: self.scheme.clone(),
            default_tls: self.tls.mode()?,
            default_credential: self.credential.clone(),
            max_in_flight: NonZeroUsize::new(self.max_requests_per_bmc)
                .unwrap_or(NonZeroUsize::MIN),
            ..ConnectorConfig::default()
        };
        for (k, h) in &self.hosts {
            if let Some(t) = &h.tls {
                cfg.tls_per_host.insert(k.clone(), t.mode()?);
            }
        }
        if let Some(s) = self.lc_settle_secs {
            cfg.lc_settle = Duration::from_secs(s);
        }
        if let Some(s) = self.request_timeout_secs {
            cfg.timeouts.request = Duration::from_secs(s);
        }
        if let Some(s) = self.connect_timeout_secs {
            cfg.timeouts.connect = Duration::from_secs(s);
        }
        if let Some(b) = &self.racadm.binary {
            cfg.racadm.binary = b.clone();
        }
        if let Some(s) = self.racadm.timeout_secs {
            cfg.racadm.timeout = Duration::from_secs(s);
        }
        cfg.racadm.password_on_command_line = self.racadm.password_on_command_line;
        Ok(cfg)
    }
}

/// Checks a credential reference: `env:`, `file:` and `vault:` fully;
/// another `scheme:` is left to the provider an embedding program
/// registered for it.
pub fn check_reference(reference: &str) -> Result<(), firmflow_credentials::Error> {
    match reference.split_once(':') {
        Some((scheme, rest))
            if !matches!(scheme, "env" | "file" | "vault")
                && !scheme.is_empty()
                && !rest.is_empty()
                && scheme
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') =>
        {
            Ok(())
        }
        _ => firmflow_credentials::Reference::parse(reference).map(|_| ()),
    }
}

/// The standard credential provider: `env:` and `file:` always, `vault:`
/// when `vault` has an address (or `VAULT_ADDR` is set and `vault` is given).
pub fn credential_provider(
    vault: Option<&VaultSettings>,
) -> Result<CompositeProvider, SettingsError> {
    let mut p = CompositeProvider::standard();
    let Some(v) = vault else {
        return Ok(p);
    };
    let address = v
        .address
        .clone()
        .or_else(|| std::env::var("VAULT_ADDR").ok())
        .ok_or_else(|| {
            SettingsError::Vault("no address (set vault.address or VAULT_ADDR)".into())
        })?;
    let url = url::Url::parse(&address)
        .map_err(|e| SettingsError::Vault(format!("address {address:?}: {e}")))?;
    let mut cfg = VaultConfig::new(url);
    let token_env = v.token_env.as_deref().unwrap_or("VAULT_TOKEN");
    match std::env::var(token_env) {
        Ok(t) if !t.is_empty() => cfg = cfg.with_token(t),
        _ => {
            return Err(SettingsError::Vault(format!(
                "the token variable {token_env} is not set"
            )));
        }
    }
    cfg.namespace = v.namespace.clone();
    cfg.ca_file = v.ca_file.clone();
    let provider = VaultProvider::new(cfg).map_err(|e| SettingsError::Vault(e.to_string()))?;
    p = p.with("vault", provider);
    Ok(p)
}

/// A callback for connections made without TLS verification.
pub type InsecureHook = Arc<dyn Fn(&InsecureTls) + Send + Sync>;

/// What a connector is built with besides the settings.
#[derive(Clone)]
pub struct ConnectorDeps {
    /// Resolves credential references.
    pub credentials: Arc<dyn CredentialProvider>,
    /// Caches Redfish sessions (the store).
    pub sessions: Option<Arc<dyn SessionCache>>,
    /// Finds each host's own credential reference (the store).
    pub hosts: Option<Arc<dyn HostStore>>,
    /// Called for every connection made without TLS verification.
    pub on_insecure: Option<InsecureHook>,
}

impl ConnectorDeps {
    /// Deps with a credential provider only.
    pub fn new(credentials: Arc<dyn CredentialProvider>) -> Self {
        Self {
            credentials,
            sessions: None,
            hosts: None,
            on_insecure: None,
        }
    }

    /// Uses a whole store (`Arc<dyn Store>`) as session cache and credential directory.
    pub fn with_dyn_store(mut self, store: Arc<dyn firmflow_core::store::Store>) -> Self {
        self.sessions = Some(store.clone());
        self.hosts = Some(store);
        self
    }

    /// Uses `store` as session cache and credential directory.
    pub fn with_store<S>(mut self, store: Arc<S>) -> Self
    where
        S: HostStore + SessionCache + 'static,
    {
        self.sessions = Some(store.clone());
        self.hosts = Some(store);
        self
    }
}

/// The fleet's connector: the Redfish connector, with the settings'
/// driver overrides applied before it picks a driver.
pub struct FleetConnector {
    inner: Connector,
    force: Option<DriverKind>,
    per_host: HashMap<String, DriverKind>,
}

impl FleetConnector {
    /// Builds the connector.
    pub fn new(settings: &BmcSettings, deps: ConnectorDeps) -> Result<Self, SettingsError> {
        let cfg = settings.connector_config()?;
        let mut c = Connector::new(cfg, deps.credentials);
        if let Some(s) = deps.sessions {
            c = c.with_session_cache(s);
        }
        if let Some(h) = deps.hosts {
            c = c.with_host_store(h);
        }
        if let Some(hook) = deps.on_insecure {
            c = c.on_insecure_tls(move |r| hook(r));
        }
        Ok(Self {
            inner: c,
            force: settings.driver,
            per_host: settings
                .hosts
                .iter()
                .filter_map(|(k, h)| h.driver.map(|d| (k.clone(), d)))
                .collect(),
        })
    }

    /// The Redfish connector underneath (insecure-connection records, …).
    pub fn redfish(&self) -> &Connector {
        &self.inner
    }

    fn driver_for(&self, host: &Host) -> Option<DriverKind> {
        [
            host.mgmt_ip.as_str(),
            host.fqdn.as_str(),
            &host.id.to_string(),
        ]
        .iter()
        .find_map(|k| self.per_host.get(*k).copied())
        .or(self.force)
    }
}

#[async_trait]
impl BmcConnector for FleetConnector {
    async fn connect(&self, host: &Host) -> Result<Arc<dyn BmcDriver>, bmc::Error> {
        match self.driver_for(host) {
            Some(d) if d.mgmt_kind() != host.mgmt_kind => {
                let mut h = host.clone();
                h.mgmt_kind = d.mgmt_kind();
                self.inner.connect(&h).await
            }
            _ => self.inner.connect(host).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(toml_text: &str) -> BmcSettings {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn defaults_verify_tls_and_cap_requests() {
        let s = BmcSettings::default();
        let cfg = s.connector_config().unwrap();
        assert_eq!(cfg.default_tls, TlsMode::Verify);
        assert_eq!(cfg.max_in_flight.get(), 4);
        assert_eq!(cfg.scheme, "https");
        assert_eq!(cfg.default_credential, None);
    }

    #[test]
    fn per_fleet_and_per_host_settings() {
        let s = settings(
            r#"
credential = "env:IDRAC"
driver = "generic"
max_requests_per_bmc = 2
lc_settle_secs = 0
[tls]
ca_file = "/etc/firmflow/ca.pem"
[racadm]
binary = "/opt/dell/srvadmin/bin/idracadm7"
password_on_command_line = true
[hosts."10.0.0.12"]
tls = { insecure = true }
driver = "racadm"
"#,
        );
        let cfg = s.connector_config().unwrap();
        assert!(cfg.racadm.password_on_command_line);
        assert_eq!(
            cfg.racadm.binary,
            std::path::PathBuf::from("/opt/dell/srvadmin/bin/idracadm7")
        );
        assert_eq!(
            cfg.default_tls,
            TlsMode::CaFile("/etc/firmflow/ca.pem".into())
        );
        assert_eq!(cfg.tls_per_host["10.0.0.12"], TlsMode::AcceptInvalid);
        assert_eq!(cfg.max_in_flight.get(), 2);
        assert_eq!(cfg.lc_settle, Duration::ZERO);
        assert_eq!(cfg.default_credential.as_deref(), Some("env:IDRAC"));
        let fc = FleetConnector::new(
            &s,
            ConnectorDeps::new(Arc::new(CompositeProvider::standard())),
        )
        .unwrap();
        let mut h = firmflow_core::model::NewHost::idrac("a.lab", "10.0.0.12")
            .into_host(chrono::Utc::now());
        assert_eq!(fc.driver_for(&h), Some(DriverKind::Racadm));
        h.mgmt_ip = "10.0.0.13".into();
        assert_eq!(fc.driver_for(&h), Some(DriverKind::Generic));
    }

    #[test]
    fn bad_settings_are_refused_with_every_reason() {
        let s = settings(
            r#"
credential = "IDRAC"
max_requests_per_bmc = 0
scheme = "ftp"
[tls]
insecure = true
pin_sha256 = "abcd"
[hosts.x]
tls = { pin_sha256 = "zz" }
"#,
        );
        let e = s.validate().unwrap_err().to_string();
        for want in [
            "credential",
            "choose one of",
            "max_requests_per_bmc",
            "scheme",
            "hosts.\"x\"",
        ] {
            assert!(e.contains(want), "{want} not in {e}");
        }
        assert!(toml::from_str::<BmcSettings>("colour = 1").is_err());
    }

    #[test]
    fn pins_accept_colons() {
        let pin = "AB:".repeat(31) + "AB";
        let t = TlsSettings {
            pin_sha256: Some(pin.clone()),
            ..Default::default()
        };
        assert_eq!(t.mode().unwrap(), TlsMode::PinnedSha256(pin));
    }

    #[test]
    fn vault_needs_an_address_and_a_token() {
        let v = VaultSettings {
            address: Some("https://vault.invalid:8200".into()),
            token_env: Some("FIRMFLOW_OPS_TEST_NO_SUCH_TOKEN".into()),
            ..Default::default()
        };
        let e = credential_provider(Some(&v)).unwrap_err().to_string();
        assert!(e.contains("FIRMFLOW_OPS_TEST_NO_SUCH_TOKEN"), "{e}");
        let p = credential_provider(None).unwrap();
        assert_eq!(p.schemes().collect::<Vec<_>>(), ["env", "file"]);
    }
}
