//! A fake vCenter: clusters of hosts with maintenance mode, recording the
//! lowest online count each cluster had so tests can assert minHostsOnline.

use super::lock;
use crate::cluster::{self, ClusterHealth, ClusterHostState, ClusterManager, Connection, Status};
use crate::model::{ClusterKey, Host};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Default)]
struct ClusterState {
    /// cluster -> host moid -> in maintenance
    hosts: BTreeMap<ClusterKey, BTreeMap<String, bool>>,
    /// Lowest online count seen in any cluster right after a host entered.
    min_online_seen: BTreeMap<ClusterKey, usize>,
    enters: u64,
    exits: u64,
}

/// A fake cluster manager recording the lowest online count each cluster
/// ever had, so tests can assert `minHostsOnline` held at every instant.
#[derive(Clone, Default)]
pub struct FakeCluster {
    state: Arc<Mutex<ClusterState>>,
    enter_delay: Duration,
    exit_failures: Arc<AtomicU64>,
}

impl FakeCluster {
    /// An empty manager; entering maintenance takes `enter_delay` (tokio time).
    pub fn new(enter_delay: Duration) -> Self {
        Self {
            state: Arc::default(),
            enter_delay,
            exit_failures: Arc::default(),
        }
    }

    /// The next `n` exits from maintenance mode fail (vCenter refuses).
    pub fn fail_next_exits(&self, n: u64) {
        self.exit_failures.store(n, Ordering::SeqCst);
    }

    /// Adds a host to a cluster (online).
    pub fn add_host(&self, cluster: &ClusterKey, host_moid: &str) {
        lock(&self.state)
            .hosts
            .entry(cluster.clone())
            .or_default()
            .insert(host_moid.to_string(), false);
    }

    /// The lowest number of online hosts a cluster had.
    pub fn min_online_seen(&self, cluster: &ClusterKey) -> Option<usize> {
        lock(&self.state).min_online_seen.get(cluster).copied()
    }

    /// Hosts of a cluster in maintenance now.
    pub fn in_maintenance_now(&self, cluster: &ClusterKey) -> usize {
        lock(&self.state)
            .hosts
            .get(cluster)
            .map(|h| h.values().filter(|m| **m).count())
            .unwrap_or(0)
    }

    /// (enters, exits) so far.
    pub fn counts(&self) -> (u64, u64) {
        let s = lock(&self.state);
        (s.enters, s.exits)
    }

    fn key_of(host: &Host) -> Result<(ClusterKey, String), cluster::Error> {
        match (host.cluster_key(), host.host_moid.clone()) {
            (Some(k), Some(m)) => Ok((k, m)),
            _ => Err(cluster::Error::new(
                &host.fqdn,
                cluster::ErrorKind::NotMapped,
                "host has no cluster mapping",
            )),
        }
    }
}

#[async_trait]
impl ClusterManager for FakeCluster {
    async fn cluster_hosts(&self, c: &ClusterKey) -> Result<Vec<ClusterHostState>, cluster::Error> {
        let s = lock(&self.state);
        Ok(s.hosts
            .get(c)
            .into_iter()
            .flatten()
            .map(|(moid, mm)| ClusterHostState {
                host_moid: moid.clone(),
                name: moid.clone(),
                connection: Connection::Connected,
                in_maintenance: *mm,
                powered_on: true,
                overall_status: Status::Green,
            })
            .collect())
    }

    async fn cluster_health(&self, c: &ClusterKey) -> Result<ClusterHealth, cluster::Error> {
        Ok(ClusterHealth {
            overall_status: Status::Green,
            drs_enabled: true,
            drs_fully_automated: true,
            ha_enabled: true,
            hosts: self.cluster_hosts(c).await?,
        })
    }

    async fn enter_maintenance(&self, host: &Host, _t: Duration) -> Result<(), cluster::Error> {
        let (k, m) = Self::key_of(host)?;
        tokio::time::sleep(self.enter_delay).await;
        let mut s = lock(&self.state);
        s.enters += 1;
        let hosts = s.hosts.entry(k.clone()).or_default();
        hosts.insert(m, true);
        let online = hosts.values().filter(|mm| !**mm).count();
        let e = s.min_online_seen.entry(k).or_insert(online);
        *e = (*e).min(online);
        Ok(())
    }

    async fn exit_maintenance(&self, host: &Host, _t: Duration) -> Result<(), cluster::Error> {
        let (k, m) = Self::key_of(host)?;
        if self
            .exit_failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(cluster::Error::new(
                &host.fqdn,
                cluster::ErrorKind::InvalidState,
                "The operation is not allowed in the current state.",
            ));
        }
        let mut s = lock(&self.state);
        s.exits += 1;
        s.hosts.entry(k).or_default().insert(m, false);
        Ok(())
    }

    async fn in_maintenance(&self, host: &Host) -> Result<bool, cluster::Error> {
        let (k, m) = Self::key_of(host)?;
        Ok(lock(&self.state)
            .hosts
            .get(&k)
            .and_then(|h| h.get(&m))
            .copied()
            .unwrap_or(false))
    }
}
