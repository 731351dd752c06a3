//! Pieces both commands build: a credential provider holding one login
//! given on the command line, and the Redfish connector around it.

use async_trait::async_trait;
use firmflow_core::credentials::{self, Credential, CredentialProvider};
use firmflow_core::store::SessionCache;
use firmflow_redfish::{Connector, ConnectorConfig, TlsMode};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// The reference under which [`SingleCredential`] hands out its login.
pub const CLI_CREDENTIAL: &str = "cli:login";

/// One login, resolved for [`CLI_CREDENTIAL`] only. The password stays in
/// a redacting secret type and never reaches a log.
pub struct SingleCredential(Credential);

impl SingleCredential {
    /// Holds `credential`.
    pub fn new(credential: Credential) -> Self {
        Self(credential)
    }
}

#[async_trait]
impl CredentialProvider for SingleCredential {
    async fn resolve(&self, reference: &str) -> Result<Credential, credentials::Error> {
        if reference == CLI_CREDENTIAL {
            Ok(self.0.clone())
        } else {
            Err(credentials::Error::NotFound {
                reference: reference.into(),
                message: "the command line gave one login only".into(),
            })
        }
    }
}

/// A connector using `credential` for every host, `tls` unless a host has
/// its own entry in `tls_per_host`, and `sessions` as session cache.
pub fn connector(
    credential: Credential,
    tls: TlsMode,
    tls_per_host: HashMap<String, TlsMode>,
    lc_settle: Duration,
    sessions: Option<Arc<dyn SessionCache>>,
) -> Connector {
    let cfg = ConnectorConfig {
        default_tls: tls,
        tls_per_host,
        default_credential: Some(CLI_CREDENTIAL.into()),
        lc_settle,
        ..ConnectorConfig::default()
    };
    let c = Connector::new(cfg, Arc::new(SingleCredential::new(credential)));
    match sessions {
        Some(s) => c.with_session_cache(s),
        None => c,
    }
}
