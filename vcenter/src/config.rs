//! How to reach one vCenter: URL, credentials, TLS, timeouts, maintenance
//! options.

use firmflow_core::credentials::{Credential, CredentialProvider};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Where the vCenter login comes from.
#[derive(Clone)]
pub enum Auth {
    /// A credential held in memory (tests, embedding programs).
    Credential(Credential),
    /// A credential of kind `vcenter` resolved through a provider at every
    /// login, so a rotated password is picked up on the next re-login.
    Provider {
        /// The provider.
        provider: Arc<dyn CredentialProvider>,
        /// The reference the provider resolves (`credentials.vault_path`).
        reference: String,
    },
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Credential's own Debug redacts the secret.
            Auth::Credential(c) => f.debug_tuple("Credential").field(c).finish(),
            Auth::Provider { reference, .. } => f
                .debug_struct("Provider")
                .field("reference", reference)
                .finish_non_exhaustive(),
        }
    }
}

/// TLS settings, the same choices as the BMC drivers: verified by default
/// against the system's web PKI roots; or pinned to a CA file; or, explicitly,
/// no verification at all (logged as a warning when the client is built).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// PEM file of the CA(s) to trust instead of the built-in roots.
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate (self-signed, expired, wrong name).
    pub accept_invalid_certs: bool,
}

/// One vCenter.
#[derive(Clone, Debug)]
pub struct VcenterConfig {
    /// `https://vcenter.example.com` (the `/sdk` path is added when absent).
    pub url: String,
    /// Login.
    pub auth: Auth,
    /// TLS.
    pub tls: TlsOptions,
    /// Per-request HTTP timeout.
    pub request_timeout: Duration,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// First wait between two task polls; doubles up to `task_poll_max`.
    pub task_poll_initial: Duration,
    /// Longest wait between two task polls.
    pub task_poll_max: Duration,
    /// Pass `evacuatePoweredOffVms` to `EnterMaintenanceMode_Task` (moves
    /// powered-off VMs too; only honoured with DRS).
    pub evacuate_powered_off_vms: bool,
    /// vim25 API version for `SOAPAction`; `None` uses the server's own
    /// `about.apiVersion` after the first call.
    pub api_version: Option<String>,
}

impl VcenterConfig {
    /// A configuration with defaults: verified TLS, 60 s requests, task
    /// polls from 500 ms up to 5 s.
    pub fn new(url: impl Into<String>, auth: Auth) -> Self {
        Self {
            url: url.into(),
            auth,
            tls: TlsOptions::default(),
            request_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            task_poll_initial: Duration::from_millis(500),
            task_poll_max: Duration::from_secs(5),
            evacuate_powered_off_vms: false,
            api_version: None,
        }
    }

    /// Sets the TLS options.
    pub fn with_tls(mut self, tls: TlsOptions) -> Self {
        self.tls = tls;
        self
    }

    /// Sets the task poll intervals.
    pub fn with_task_poll(mut self, initial: Duration, max: Duration) -> Self {
        self.task_poll_initial = initial;
        self.task_poll_max = max.max(initial);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let c = VcenterConfig::new(
            "https://vc",
            Auth::Credential(Credential::new("administrator@vsphere.local", "s3cret!")),
        );
        let s = format!("{c:?}");
        assert!(!s.contains("s3cret!"), "{s}");
        assert!(s.contains("administrator@vsphere.local"));
    }
}
