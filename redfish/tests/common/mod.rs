//! Shared test helpers: a static credential provider, an in-memory session
//! cache, fixture loading and connector construction.
#![allow(dead_code, unreachable_pub)]

use async_trait::async_trait;
use chrono::Utc;
use firmflow_core::credentials::{self, Credential, CredentialProvider};
use firmflow_core::model::{Host, HostId, MgmtKind, NewHost, RedfishSession};
use firmflow_core::store::{self, SessionCache};
use firmflow_redfish::{Connector, ConnectorConfig};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct StaticCreds(pub String, pub String);

#[async_trait]
impl CredentialProvider for StaticCreds {
    async fn resolve(&self, reference: &str) -> Result<Credential, credentials::Error> {
        if reference == "test" {
            Ok(Credential::new(&self.0, &self.1))
        } else {
            Err(credentials::Error::NotFound {
                reference: reference.into(),
                message: "unknown".into(),
            })
        }
    }
}

#[derive(Default)]
pub struct MemSessions(pub Mutex<HashMap<HostId, RedfishSession>>);

#[async_trait]
impl SessionCache for MemSessions {
    async fn get_session(&self, host: HostId) -> store::Result<Option<RedfishSession>> {
        Ok(self.0.lock().unwrap().get(&host).cloned())
    }
    async fn put_session(&self, session: RedfishSession) -> store::Result<()> {
        self.0.lock().unwrap().insert(session.host_id, session);
        Ok(())
    }
    async fn delete_session(&self, host: HostId) -> store::Result<()> {
        self.0.lock().unwrap().remove(&host);
        Ok(())
    }
}

pub fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

pub fn host(addr: &str, kind: MgmtKind) -> Host {
    let mut h = NewHost::idrac("server-1.example", addr);
    h.mgmt_kind = kind;
    h.into_host(Utc::now())
}

pub fn config(scheme: &str) -> ConnectorConfig {
    ConnectorConfig {
        scheme: scheme.into(),
        default_credential: Some("test".into()),
        lc_settle: Duration::ZERO,
        ..ConnectorConfig::default()
    }
}

pub fn connector(
    user: &str,
    pass: &str,
    cfg: ConnectorConfig,
    cache: Option<Arc<MemSessions>>,
) -> Connector {
    let c = Connector::new(cfg, Arc::new(StaticCreds(user.into(), pass.into())));
    match cache {
        Some(cache) => c.with_session_cache(cache),
        None => c,
    }
}
