//! The vCenter client runs core's cluster-manager conformance suite against
//! govmomi's vCenter simulator (one fresh simulator per case), the same suite
//! the fake that the scenario tests use passes.

mod common;

use async_trait::async_trait;
use common::Vcsim;
use firmflow_core::cluster::ErrorKind;
use firmflow_core::model::{ClusterKey, Host};
use firmflow_core::testkit::cluster_conformance::{ClusterFactory, ClusterFixture, run_all};
use firmflow_vcenter::VcenterClusterManager;

/// Hosts in the simulated cluster; the last one is not managed by firmflow.
const MEMBERS: u32 = 4;

struct Fixture {
    sim: Vcsim,
    manager: VcenterClusterManager,
}

#[async_trait]
impl ClusterFixture for Fixture {
    type Manager = VcenterClusterManager;
    fn manager(&self) -> &VcenterClusterManager {
        &self.manager
    }
    fn cluster(&self) -> ClusterKey {
        self.sim.key(0)
    }
    fn members(&self) -> Vec<String> {
        self.sim
            .cluster(0)
            .hosts
            .iter()
            .map(|h| h.moid.clone())
            .collect()
    }
    fn managed(&self) -> Vec<Host> {
        let hosts = &self.sim.cluster(0).hosts;
        hosts
            .iter()
            .take(hosts.len().saturating_sub(1))
            .map(|h| self.sim.mapped_host(h))
            .collect()
    }
    async fn refuse_enter(&self, host: &Host) -> ErrorKind {
        let moid = host.host_moid.as_deref().unwrap_or_default();
        self.sim
            .ctl(&format!(
                "/disable?host={moid}&method=EnterMaintenanceMode_Task"
            ))
            .await;
        ErrorKind::MethodDisabled
    }
}

struct Factory;

#[async_trait]
impl ClusterFactory for Factory {
    type Fixture = Fixture;
    async fn fresh(&self) -> Fixture {
        // Two clusters, so "exactly that host" is checked against the
        // neighbour cluster too; the suite works on the first.
        let sim = Vcsim::start(2, MEMBERS);
        let manager = sim.manager();
        Fixture { sim, manager }
    }
}

#[tokio::test]
async fn vcenter_passes_the_cluster_conformance_suite() {
    run_all(&Factory).await;
}
