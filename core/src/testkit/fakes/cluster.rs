//! A fake vCenter: clusters of hosts with maintenance mode, recording the
//! lowest online count each cluster had so tests can assert minHostsOnline.
//! It passes the cluster conformance suite like the vCenter client does:
//! hosts and clusters it was not told about are `NotFound`, as in vCenter.

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
    /// host moid -> the class its refused enters surface as
    refused_enters: BTreeMap<String, cluster::ErrorKind>,
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

    /// Entering maintenance mode on `host_moid` fails with `kind` from now on
    /// (vCenter: the method disabled on that host), until [`Self::allow_enter`].
    pub fn refuse_enter(&self, host_moid: &str, kind: cluster::ErrorKind) {
        lock(&self.state)
            .refused_enters
            .insert(host_moid.to_string(), kind);
    }

    /// Undoes [`Self::refuse_enter`].
    pub fn allow_enter(&self, host_moid: &str) {
        lock(&self.state).refused_enters.remove(host_moid);
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

    /// The host's cluster and moid, when it is mapped to a host this fake knows.
    fn key_of(&self, host: &Host) -> Result<(ClusterKey, String), cluster::Error> {
        let (k, m) = match (host.cluster_key(), host.host_moid.clone()) {
            (Some(k), Some(m)) => (k, m),
            _ => {
                return Err(cluster::Error::new(
                    &host.fqdn,
                    cluster::ErrorKind::NotMapped,
                    "host has no cluster mapping",
                ));
            }
        };
        let known = lock(&self.state)
            .hosts
            .get(&k)
            .is_some_and(|h| h.contains_key(&m));
        if !known {
            return Err(cluster::Error::new(
                format!("{} ({m})", host.fqdn),
                cluster::ErrorKind::NotFound,
                format!("no host {m} in cluster {k}"),
            ));
        }
        Ok((k, m))
    }
}

fn unknown_cluster(c: &ClusterKey) -> cluster::Error {
    cluster::Error::new(
        format!("cluster {c}"),
        cluster::ErrorKind::NotFound,
        format!("no cluster {}", c.cluster_moid),
    )
}

#[async_trait]
impl ClusterManager for FakeCluster {
    async fn cluster_hosts(&self, c: &ClusterKey) -> Result<Vec<ClusterHostState>, cluster::Error> {
        let s = lock(&self.state);
        Ok(s.hosts
            .get(c)
            .ok_or_else(|| unknown_cluster(c))?
            .iter()
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
        let (k, m) = self.key_of(host)?;
        if let Some(kind) = lock(&self.state).refused_enters.get(&m).copied() {
            return Err(cluster::Error::new(
                format!("{} ({m})", host.fqdn),
                kind,
                "EnterMaintenanceMode_Task: the fake refuses it for this host",
            ));
        }
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
        let (k, m) = self.key_of(host)?;
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
        let (k, m) = self.key_of(host)?;
        Ok(lock(&self.state)
            .hosts
            .get(&k)
            .and_then(|h| h.get(&m))
            .copied()
            .unwrap_or(false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::cluster_conformance::{
        ClusterFactory, ClusterFixture, mapped_host, run_all,
    };

    const MEMBERS: usize = 5;
    const MANAGED: usize = 4;

    struct Fixture {
        fake: FakeCluster,
        key: ClusterKey,
        members: Vec<String>,
    }

    #[async_trait]
    impl ClusterFixture for Fixture {
        type Manager = FakeCluster;
        fn manager(&self) -> &FakeCluster {
            &self.fake
        }
        fn cluster(&self) -> ClusterKey {
            self.key.clone()
        }
        fn members(&self) -> Vec<String> {
            self.members.clone()
        }
        fn managed(&self) -> Vec<Host> {
            self.members
                .iter()
                .take(MANAGED)
                .map(|m| mapped_host(&self.key, m, &format!("esx-{m}.lab.test")))
                .collect()
        }
        async fn refuse_enter(&self, host: &Host) -> cluster::ErrorKind {
            let kind = cluster::ErrorKind::MethodDisabled;
            self.fake
                .refuse_enter(host.host_moid.as_deref().unwrap_or_default(), kind);
            kind
        }
    }

    struct Factory;

    #[async_trait]
    impl ClusterFactory for Factory {
        type Fixture = Fixture;
        async fn fresh(&self) -> Fixture {
            // Evacuation takes two minutes of (paused) tokio time.
            let fake = FakeCluster::new(Duration::from_secs(120));
            let key = ClusterKey {
                vcenter_url: "https://vc.lab.test".into(),
                cluster_moid: "domain-c7".into(),
            };
            let members: Vec<String> = (1..=MEMBERS).map(|i| format!("host-{i}")).collect();
            for m in &members {
                fake.add_host(&key, m);
            }
            // A second cluster, so "exactly that host" is tested across clusters too.
            fake.add_host(
                &ClusterKey {
                    vcenter_url: key.vcenter_url.clone(),
                    cluster_moid: "domain-c8".into(),
                },
                "host-1",
            );
            Fixture { fake, key, members }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn fake_cluster_passes_the_conformance_suite() {
        run_all(&Factory).await;
    }

    #[tokio::test(start_paused = true)]
    async fn allowing_an_enter_again_lifts_the_refusal() {
        let fixture = Factory.fresh().await;
        let h = fixture.managed().remove(0);
        fixture.refuse_enter(&h).await;
        let e = fixture
            .fake
            .enter_maintenance(&h, Duration::from_secs(1))
            .await
            .expect_err("refused");
        assert_eq!(e.kind, cluster::ErrorKind::MethodDisabled);
        assert_eq!(fixture.fake.counts(), (0, 0), "a refused enter is no enter");
        fixture.fake.allow_enter("host-1");
        fixture
            .fake
            .enter_maintenance(&h, Duration::from_secs(1))
            .await
            .expect("allowed again");
        assert_eq!(fixture.fake.in_maintenance_now(&fixture.key), 1);
    }
}
