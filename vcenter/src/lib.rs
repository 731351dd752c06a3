//! firmflow-vcenter: VMware vCenter as firmflow's `ClusterManager`.
//!
//! Maintenance mode exists only in the vSphere Web Services API (vim25 SOAP),
//! so this crate speaks it directly with reqwest and quick-xml:
//! `SessionManager.Login`/`Logout`, `HostSystem.EnterMaintenanceMode_Task` /
//! `ExitMaintenanceMode_Task` followed through the property collector, the
//! host list of a cluster with its live state, and the cluster's DRS/HA
//! configuration for the `cluster_health` preflight. A discovery helper
//! matches vCenter hosts to firmflow hosts by service tag or name.
//!
//! - [`VcenterClusterManager`] implements `firmflow_core::cluster::ClusterManager`
//!   over one or more vCenters.
//! - [`VimClient`] is the client of one vCenter (session, typed calls).
//! - [`discovery`] fills `vcenter_url`, `cluster_moid`, `host_moid`.
//!
//! TLS is verified by default; a CA file pins the trust, and accepting any
//! certificate is an explicit option that is logged as a warning. Secrets
//! (password, session cookie) never appear in logs, errors or `Debug`.
//!
//! Tests: unit tests beside the code (task polling under paused tokio time),
//! `tests/soap_faults.rs` (a mock vCenter replaying captured and hand-built
//! vim25 faults), and `tests/vcsim_integration.rs` against govmomi's vCenter
//! simulator, run by the launcher in `tests/vcsim/` that `tests/vcsim/prepare.sh`
//! builds offline from Debian's `golang-github-vmware-govmomi-dev` into
//! `<repo>/target/vcsim/vcsim-launcher`. The tests run prepare.sh themselves.

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

mod client;
mod config;
pub mod discovery;
mod error;
mod manager;
mod soap;
mod task;
mod xml;

pub use client::{ClusterSnapshot, ServiceContent, VimClient, fuzz_read_response, vcenter_origin};
pub use config::{Auth, TlsOptions, VcenterConfig};
pub use discovery::{Discovery, HostMapping, MatchedBy, VcenterHost, discover, match_hosts};
pub use error::VimError;
pub use manager::VcenterClusterManager;
pub use soap::{Fault, MoRef};
pub use task::{TaskInfo, TaskState};

#[cfg(test)]
pub(crate) mod tests_support {
    //! Host records for unit tests.
    use firmflow_core::model::{Host, HostId, MgmtKind};

    pub(crate) fn host(fqdn: &str) -> Host {
        let now = chrono::Utc::now();
        Host {
            id: HostId::new(),
            fqdn: fqdn.into(),
            mgmt_ip: "192.0.2.1".into(),
            model: None,
            service_tag: None,
            mgmt_kind: MgmtKind::Idrac,
            vcenter_url: None,
            cluster_moid: None,
            host_moid: None,
            tags: vec![],
            datacenter_id: None,
            created_at: now,
            updated_at: now,
        }
    }
}
