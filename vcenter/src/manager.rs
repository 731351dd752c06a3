//! core's `ClusterManager` over one or more vCenters.

use crate::client::{VimClient, vcenter_origin};
use crate::config::VcenterConfig;
use crate::error::VimError;
use async_trait::async_trait;
use firmflow_core::cluster::{
    ClusterHealth, ClusterHostState, ClusterManager, Error as ClusterError, ErrorKind,
};
use firmflow_core::model::{ClusterKey, Host};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Maintenance mode and cluster state through vCenter. Hosts and clusters
/// are routed to the vCenter whose URL they carry (`vcenter_url`, compared by
/// scheme, host and port); with a single vCenter configured, hosts without a
/// URL go to it.
#[derive(Debug, Clone)]
pub struct VcenterClusterManager {
    clients: Vec<Arc<VimClient>>,
}

/// How long the cleanup calls after a timeout may take (cancel, re-check).
const CLEANUP_ALLOWANCE: Duration = Duration::from_secs(10);

async fn within<T>(
    deadline: Instant,
    allowance: Duration,
    what: &str,
    fut: impl Future<Output = Result<T, VimError>>,
) -> Result<T, VimError> {
    tokio::time::timeout_at(deadline, fut)
        .await
        .map_err(|_| VimError::Timeout {
            what: what.to_string(),
            secs: allowance.as_secs_f64(),
        })?
}

fn host_target(host: &Host) -> String {
    match &host.host_moid {
        Some(m) => format!("{} ({m})", host.fqdn),
        None => host.fqdn.clone(),
    }
}

fn cluster_target(key: &ClusterKey) -> String {
    if key.vcenter_url.is_empty() {
        format!("cluster {}", key.cluster_moid)
    } else {
        format!("cluster {} on {}", key.cluster_moid, key.vcenter_url)
    }
}

impl VcenterClusterManager {
    /// A manager over these clients.
    pub fn new(clients: impl IntoIterator<Item = VimClient>) -> Self {
        Self {
            clients: clients.into_iter().map(Arc::new).collect(),
        }
    }

    /// A manager over these vCenters.
    pub fn from_configs(
        configs: impl IntoIterator<Item = VcenterConfig>,
    ) -> Result<Self, VimError> {
        let clients = configs
            .into_iter()
            .map(VimClient::new)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::new(clients))
    }

    /// The client for a vCenter URL.
    pub fn client(&self, vcenter_url: Option<&str>) -> Option<&Arc<VimClient>> {
        match vcenter_url.map(str::trim).filter(|u| !u.is_empty()) {
            Some(url) => {
                let origin = vcenter_origin(url)?;
                self.clients.iter().find(|c| c.origin() == origin)
            }
            None if self.clients.len() == 1 => self.clients.first(),
            None => None,
        }
    }

    /// Logs out of every vCenter (errors are logged, not returned: this runs
    /// on shutdown paths).
    pub async fn logout_all(&self) {
        for c in &self.clients {
            if let Err(e) = c.logout().await {
                tracing::warn!(vcenter = %c.origin(), error = %e, "vCenter logout failed");
            }
        }
    }

    fn for_host<'a>(&self, host: &'a Host) -> Result<(&Arc<VimClient>, &'a str), ClusterError> {
        let moid = host
            .host_moid
            .as_deref()
            .filter(|m| !m.is_empty())
            .ok_or_else(|| {
                ClusterError::new(
                    host_target(host),
                    ErrorKind::NotMapped,
                    "host has no vCenter host_moid (run discovery)",
                )
            })?;
        let client = self.client(host.vcenter_url.as_deref()).ok_or_else(|| {
            ClusterError::new(
                host_target(host),
                ErrorKind::NotMapped,
                format!(
                    "no vCenter configured for vcenter_url {:?}",
                    host.vcenter_url.as_deref().unwrap_or("")
                ),
            )
        })?;
        Ok((client, moid))
    }

    fn for_cluster(&self, key: &ClusterKey) -> Result<&Arc<VimClient>, ClusterError> {
        self.client(Some(&key.vcenter_url)).ok_or_else(|| {
            ClusterError::new(
                cluster_target(key),
                ErrorKind::NotMapped,
                format!("no vCenter configured for {:?}", key.vcenter_url),
            )
        })
    }

    async fn set_maintenance(
        &self,
        host: &Host,
        enter: bool,
        timeout: Duration,
    ) -> Result<(), ClusterError> {
        let (client, moid) = self.for_host(host)?;
        let span = tracing::info_span!("maintenance", host = %host.fqdn, moid, enter);
        let _g = span.enter();
        set_maintenance(client, moid, enter, timeout)
            .await
            .map_err(|e| e.into_cluster_error(host_target(host)))
    }
}

/// Enter or leave maintenance mode and wait for it, within `timeout`.
async fn set_maintenance(
    client: &VimClient,
    moid: &str,
    enter: bool,
    timeout: Duration,
) -> Result<(), VimError> {
    let what = if enter {
        "EnterMaintenanceMode_Task"
    } else {
        "ExitMaintenanceMode_Task"
    };
    let deadline = Instant::now() + timeout;
    // Idempotent: a resumed run may ask again for what is already true.
    let now = within(deadline, timeout, what, client.host_state(moid)).await?;
    if now.in_maintenance == enter {
        tracing::info!(host = %now.name, "already in the requested maintenance state");
        return Ok(());
    }
    let start = async {
        if enter {
            client.start_enter_maintenance(moid, timeout).await
        } else {
            client.start_exit_maintenance(moid, timeout).await
        }
    };
    let task = match within(deadline, timeout, what, start).await {
        Ok(t) => t,
        Err(e) if e.kind() == ErrorKind::InvalidState => {
            return settled(client, moid, enter, e).await;
        }
        Err(e) => return Err(e),
    };
    tracing::info!(task = %task.value, "{what} started");
    match client.wait_task(what, &task, deadline, timeout).await {
        Ok(_) => Ok(()),
        Err(e @ VimError::Timeout { .. }) => {
            // Leave nothing half-done behind us if vCenter can stop it.
            match tokio::time::timeout(CLEANUP_ALLOWANCE, client.cancel_task(&task)).await {
                Ok(Ok(())) => tracing::info!(task = %task.value, "cancelled after timeout"),
                Ok(Err(c)) => {
                    tracing::warn!(task = %task.value, error = %c, "could not cancel task")
                }
                Err(_) => tracing::warn!(task = %task.value, "cancel did not answer"),
            }
            Err(e)
        }
        Err(e) if e.kind() == ErrorKind::InvalidState => settled(client, moid, enter, e).await,
        Err(e) => Err(e),
    }
}

/// After InvalidState: fine if the host is where we wanted it anyway (someone
/// else moved it concurrently), otherwise the original error.
async fn settled(client: &VimClient, moid: &str, enter: bool, e: VimError) -> Result<(), VimError> {
    match tokio::time::timeout(CLEANUP_ALLOWANCE, client.host_state(moid)).await {
        Ok(Ok(s)) if s.in_maintenance == enter => Ok(()),
        _ => Err(e),
    }
}

#[async_trait]
impl ClusterManager for VcenterClusterManager {
    async fn cluster_hosts(
        &self,
        cluster: &ClusterKey,
    ) -> Result<Vec<ClusterHostState>, ClusterError> {
        let client = self.for_cluster(cluster)?;
        client
            .cluster_snapshot(&cluster.cluster_moid)
            .await
            .map(|s| s.hosts)
            .map_err(|e| e.into_cluster_error(cluster_target(cluster)))
    }

    async fn cluster_health(&self, cluster: &ClusterKey) -> Result<ClusterHealth, ClusterError> {
        let client = self.for_cluster(cluster)?;
        let s = client
            .cluster_snapshot(&cluster.cluster_moid)
            .await
            .map_err(|e| e.into_cluster_error(cluster_target(cluster)))?;
        Ok(ClusterHealth {
            overall_status: s.overall_status,
            drs_enabled: s.drs_enabled,
            drs_fully_automated: s.drs_fully_automated,
            ha_enabled: s.ha_enabled,
            hosts: s.hosts,
        })
    }

    async fn enter_maintenance(&self, host: &Host, timeout: Duration) -> Result<(), ClusterError> {
        self.set_maintenance(host, true, timeout).await
    }

    async fn exit_maintenance(&self, host: &Host, timeout: Duration) -> Result<(), ClusterError> {
        self.set_maintenance(host, false, timeout).await
    }

    async fn in_maintenance(&self, host: &Host) -> Result<bool, ClusterError> {
        let (client, moid) = self.for_host(host)?;
        client
            .host_state(moid)
            .await
            .map(|s| s.in_maintenance)
            .map_err(|e| e.into_cluster_error(host_target(host)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Auth;
    use firmflow_core::credentials::Credential;

    fn mgr(urls: &[&str]) -> VcenterClusterManager {
        VcenterClusterManager::from_configs(
            urls.iter()
                .map(|u| VcenterConfig::new(*u, Auth::Credential(Credential::new("u", "p")))),
        )
        .expect("configs")
    }

    #[test]
    fn routes_by_origin_and_defaults_to_the_only_vcenter() {
        let one = mgr(&["https://vc1.example.com"]);
        assert!(one.client(None).is_some());
        assert!(
            one.client(Some("https://VC1.example.com:443/sdk"))
                .is_some()
        );
        assert!(one.client(Some("https://vc2.example.com")).is_none());
        let two = mgr(&["https://vc1.example.com", "https://vc2.example.com/sdk"]);
        assert!(two.client(None).is_none());
        assert_eq!(
            two.client(Some("https://vc2.example.com"))
                .map(|c| c.origin()),
            Some("https://vc2.example.com:443")
        );
    }

    #[tokio::test]
    async fn unmapped_hosts_are_refused_by_name() {
        let m = mgr(&["https://vc1.example.com", "https://vc2.example.com"]);
        let mut h = crate::tests_support::host("esx9.example.com");
        let e = m
            .enter_maintenance(&h, Duration::from_secs(1))
            .await
            .expect_err("no moid");
        assert_eq!(e.kind, ErrorKind::NotMapped);
        assert_eq!(e.target, "esx9.example.com");
        h.host_moid = Some("host-9".into());
        h.vcenter_url = Some("https://vc3.example.com".into());
        let e = m.in_maintenance(&h).await.expect_err("unknown vCenter");
        assert_eq!(e.kind, ErrorKind::NotMapped);
        assert_eq!(e.target, "esx9.example.com (host-9)");
        let key = ClusterKey {
            vcenter_url: String::new(),
            cluster_moid: "domain-c1".into(),
        };
        let e = m.cluster_hosts(&key).await.expect_err("ambiguous vCenter");
        assert_eq!(e.kind, ErrorKind::NotMapped);
    }
}
