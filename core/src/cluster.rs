//! The `ClusterManager` port: hypervisor cluster state and maintenance mode
//! (VMware vCenter in `firmflow-vcenter`).

use crate::model::{ClusterKey, Host};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A cluster-side error, naming the host or cluster.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("{target}: {kind:?}: {message}")]
pub struct Error {
    /// Host or cluster the call was about.
    pub target: String,
    /// Classification.
    pub kind: ErrorKind,
    /// The manager's own words (vCenter fault text).
    pub message: String,
}

/// What went wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Network, session or timeout trouble: retry may help.
    Transient,
    /// Login refused.
    Authentication,
    /// The object is in a state that forbids the call (InvalidState).
    InvalidState,
    /// The method is disabled on that object (MethodDisabled).
    MethodDisabled,
    /// The task did not finish in time (Timedout).
    Timeout,
    /// No such host/cluster.
    NotFound,
    /// The host carries no cluster mapping (vcenter_url/host_moid).
    NotMapped,
    /// Anything else.
    Other,
}

impl Error {
    /// Builds an error.
    pub fn new(target: impl Into<String>, kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            target: target.into(),
            kind,
            message: message.into(),
        }
    }
    /// Whether retrying may help.
    pub fn is_transient(&self) -> bool {
        matches!(self.kind, ErrorKind::Transient | ErrorKind::Timeout)
    }
}

/// vSphere-style status colours.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Green.
    Green,
    /// Yellow.
    Yellow,
    /// Red.
    Red,
    /// Gray (unknown).
    Gray,
}

/// Connection state of a hypervisor host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Connection {
    /// Connected.
    Connected,
    /// Disconnected.
    Disconnected,
    /// Not responding.
    NotResponding,
}

/// Live state of one host of a cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterHostState {
    /// Host managed object id.
    pub host_moid: String,
    /// Host name in the cluster manager.
    pub name: String,
    /// Connection.
    pub connection: Connection,
    /// In maintenance mode.
    pub in_maintenance: bool,
    /// Powered on.
    pub powered_on: bool,
    /// Overall status.
    pub overall_status: Status,
}

impl ClusterHostState {
    /// Whether the host is serving workloads: connected, on, not in maintenance.
    pub fn is_online(&self) -> bool {
        self.connection == Connection::Connected && self.powered_on && !self.in_maintenance
    }
}

/// Cluster health for the `cluster_health` preflight.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterHealth {
    /// Cluster overall status.
    pub overall_status: Status,
    /// DRS on.
    pub drs_enabled: bool,
    /// DRS fully automated (evacuation without prompts).
    pub drs_fully_automated: bool,
    /// HA on.
    pub ha_enabled: bool,
    /// Hosts.
    pub hosts: Vec<ClusterHostState>,
}

impl ClusterHealth {
    /// Reasons the cluster must not lose a host now; empty when it may.
    pub fn problems(&self, needs_evacuation: bool) -> Vec<String> {
        let mut p = Vec::new();
        if self.overall_status == Status::Red {
            p.push("cluster overall status is red".to_string());
        }
        for h in &self.hosts {
            if h.connection != Connection::Connected {
                p.push(format!("host {} is {:?}", h.name, h.connection).to_lowercase());
            }
        }
        if needs_evacuation && !self.drs_enabled {
            p.push("DRS is off, so maintenance mode cannot evacuate VMs".to_string());
        }
        p
    }
}

/// A hypervisor cluster manager.
///
/// The contract, checked for every implementation by the testkit's
/// `cluster_conformance` suite:
/// - Entering or leaving maintenance mode is idempotent: asking for the
///   state a host is already in succeeds and changes nothing (a resumed run
///   asks again).
/// - Reads are live: right after a call returns, `cluster_hosts`,
///   `cluster_health` and `in_maintenance` show its effect on exactly that
///   host. The port enforces no `minHostsOnline`; admission does, from these
///   reads.
/// - A host or cluster the manager does not know is [`ErrorKind::NotFound`];
///   a host without a cluster mapping is [`ErrorKind::NotMapped`]; a refused
///   call keeps the manager's class (e.g. [`ErrorKind::MethodDisabled`]) and
///   names the host.
#[async_trait]
pub trait ClusterManager: Send + Sync {
    /// Live state of every host of the cluster (including hosts firmflow does not manage).
    async fn cluster_hosts(&self, cluster: &ClusterKey) -> Result<Vec<ClusterHostState>, Error>;
    /// Cluster health and configuration.
    async fn cluster_health(&self, cluster: &ClusterKey) -> Result<ClusterHealth, Error>;
    /// Enter maintenance mode (evacuating VMs); returns when the host is in
    /// it. Already in it: succeeds at once.
    async fn enter_maintenance(&self, host: &Host, timeout: Duration) -> Result<(), Error>;
    /// Leave maintenance mode; returns when the host is out of it. Already
    /// out of it: succeeds at once.
    async fn exit_maintenance(&self, host: &Host, timeout: Duration) -> Result<(), Error>;
    /// Whether the host is in maintenance mode now.
    async fn in_maintenance(&self, host: &Host) -> Result<bool, Error>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn _object_safe(_: &dyn ClusterManager) {}

    #[test]
    fn health_problems_name_the_reason() {
        let h = ClusterHealth {
            overall_status: Status::Red,
            drs_enabled: false,
            drs_fully_automated: false,
            ha_enabled: true,
            hosts: vec![ClusterHostState {
                host_moid: "host-1".into(),
                name: "esx1".into(),
                connection: Connection::NotResponding,
                in_maintenance: false,
                powered_on: true,
                overall_status: Status::Red,
            }],
        };
        let p = h.problems(true);
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(h.problems(false).len() == 2);
    }
}
