//! The cluster-manager conformance suite: one call runs every case against a
//! [`ClusterManager`] implementation, each case on a fresh cluster. The fake
//! (`fakes::FakeCluster`, in core's own tests) and the vCenter client (against
//! govmomi's simulator, in `firmflow-vcenter`'s tests) both run it, which is
//! how the fake that the scenario tests trust is kept to what vCenter does.
//!
//! What it asserts is the port's documented contract (`crate::cluster`):
//! maintenance-mode calls are idempotent, a read right after a call returns
//! shows its effect on exactly that host, the host list includes hosts
//! firmflow does not manage, unknown objects are typed errors, and a refused
//! call surfaces the manager's error class. The port enforces no
//! `minHostsOnline` itself (admission does, from these reads), so the suite
//! asserts exact reads rather than any refusal to go below a minimum.
//!
//! ```ignore
//! firmflow_core::testkit::cluster_conformance::run_all(&MyFactory).await;
//! ```

use crate::cluster::{ClusterHostState, ClusterManager, Connection, ErrorKind, Status};
use crate::model::{ClusterKey, Host, HostId, MgmtKind};
use async_trait::async_trait;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// One fresh cluster under test, with the knobs the suite needs.
#[async_trait]
pub trait ClusterFixture: Send + Sync {
    /// The implementation under test.
    type Manager: ClusterManager;
    /// The manager, already configured for [`Self::cluster`].
    fn manager(&self) -> &Self::Manager;
    /// The cluster.
    fn cluster(&self) -> ClusterKey;
    /// Host moids of every member of the cluster, managed or not.
    fn members(&self) -> Vec<String>;
    /// firmflow host records mapped to members: at least three, and fewer
    /// than all members (so one member is a host firmflow does not manage).
    fn managed(&self) -> Vec<Host>;
    /// Arranges for the manager to refuse entering maintenance mode on
    /// `host` from now on (vCenter: the method disabled on that host);
    /// returns the class the refusal must surface as.
    async fn refuse_enter(&self, host: &Host) -> ErrorKind;
}

/// Builds fresh clusters for the suite.
#[async_trait]
pub trait ClusterFactory: Send + Sync {
    /// The fixture type.
    type Fixture: ClusterFixture + 'static;
    /// A fresh cluster whose members are all connected, powered on, out of
    /// maintenance mode and not red.
    async fn fresh(&self) -> Self::Fixture;
}

/// The timeout the suite passes to maintenance-mode calls.
pub const TIMEOUT: Duration = Duration::from_secs(30);

type Case<F> = for<'a> fn(&'a F) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

macro_rules! cases {
    ($($name:ident),* $(,)?) => {
        fn all_cases<F: ClusterFixture + 'static>() -> Vec<(&'static str, Case<F>)> {
            vec![$((stringify!($name), |f| Box::pin($name(f)))),*]
        }
    };
}

cases!(
    a_fresh_cluster_lists_every_member_online,
    entering_twice_is_fine,
    exiting_twice_is_fine,
    exiting_a_host_not_in_maintenance_changes_nothing,
    each_enter_takes_exactly_that_host_offline,
    health_shows_a_host_in_maintenance,
    unknown_hosts_and_clusters_are_typed_errors,
    a_refused_enter_surfaces_its_class,
);

/// Runs every case, each on a fresh cluster; panics naming the failing case.
pub async fn run_all<F: ClusterFactory>(factory: &F) {
    for (name, case) in all_cases::<F::Fixture>() {
        let fixture = factory.fresh().await;
        tracing::info!(case = name, "cluster conformance case");
        // Name the case in any panic message.
        struct Guard(&'static str, bool);
        impl Drop for Guard {
            fn drop(&mut self) {
                if !self.1 {
                    eprintln!("cluster conformance case failed: {}", self.0);
                }
            }
        }
        let mut g = Guard(name, false);
        case(&fixture).await;
        g.1 = true;
    }
}

/// A firmflow host record mapped to `host_moid` in `cluster` (for fixtures).
pub fn mapped_host(cluster: &ClusterKey, host_moid: &str, fqdn: &str) -> Host {
    let now = chrono::Utc::now();
    Host {
        id: HostId::new(),
        fqdn: fqdn.into(),
        mgmt_ip: "192.0.2.1".into(),
        model: None,
        service_tag: None,
        mgmt_kind: MgmtKind::Idrac,
        vcenter_url: Some(cluster.vcenter_url.clone()).filter(|u| !u.is_empty()),
        cluster_moid: Some(cluster.cluster_moid.clone()),
        host_moid: Some(host_moid.into()),
        tags: vec![],
        datacenter_id: None,
        created_at: now,
        updated_at: now,
    }
}

// ---------- helpers ----------

fn moid(h: &Host) -> String {
    h.host_moid.clone().expect("fixture hosts are mapped")
}

/// The cluster's hosts by moid, as the manager reports them now.
async fn hosts_now<F: ClusterFixture>(f: &F) -> BTreeMap<String, ClusterHostState> {
    let hosts = f
        .manager()
        .cluster_hosts(&f.cluster())
        .await
        .expect("cluster_hosts");
    let n = hosts.len();
    let by_moid: BTreeMap<_, _> = hosts
        .into_iter()
        .map(|h| (h.host_moid.clone(), h))
        .collect();
    assert_eq!(by_moid.len(), n, "a host is listed twice");
    by_moid
}

fn online(hosts: &BTreeMap<String, ClusterHostState>) -> BTreeSet<String> {
    hosts
        .values()
        .filter(|h| h.is_online())
        .map(|h| h.host_moid.clone())
        .collect()
}

fn all_but<'a>(members: &[String], gone: impl IntoIterator<Item = &'a String>) -> BTreeSet<String> {
    let gone: BTreeSet<&String> = gone.into_iter().collect();
    members
        .iter()
        .filter(|m| !gone.contains(m))
        .cloned()
        .collect()
}

async fn enter<F: ClusterFixture>(f: &F, h: &Host) {
    f.manager()
        .enter_maintenance(h, TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("enter {}: {e}", h.fqdn));
}

async fn exit<F: ClusterFixture>(f: &F, h: &Host) {
    f.manager()
        .exit_maintenance(h, TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("exit {}: {e}", h.fqdn));
}

async fn in_mm<F: ClusterFixture>(f: &F, h: &Host) -> bool {
    f.manager()
        .in_maintenance(h)
        .await
        .unwrap_or_else(|e| panic!("in_maintenance {}: {e}", h.fqdn))
}

/// Both reads agree on which hosts are in maintenance mode, and it is `expected`.
async fn assert_in_maintenance<F: ClusterFixture>(f: &F, expected: &BTreeSet<String>) {
    let hosts = hosts_now(f).await;
    let listed: BTreeSet<String> = hosts
        .values()
        .filter(|h| h.in_maintenance)
        .map(|h| h.host_moid.clone())
        .collect();
    assert_eq!(&listed, expected, "cluster_hosts: hosts in maintenance");
    for h in f.managed() {
        assert_eq!(
            in_mm(f, &h).await,
            expected.contains(&moid(&h)),
            "in_maintenance({}) disagrees",
            h.fqdn
        );
    }
    let members: Vec<String> = f.members();
    assert_eq!(
        online(&hosts),
        all_but(&members, expected),
        "online hosts are the members not in maintenance"
    );
}

// ---------- cases ----------

async fn a_fresh_cluster_lists_every_member_online<F: ClusterFixture>(f: &F) {
    let members: BTreeSet<String> = f.members().into_iter().collect();
    let managed = f.managed();
    assert!(
        managed.len() >= 3,
        "the fixture manages at least three hosts"
    );
    assert!(
        managed.len() < members.len(),
        "the fixture leaves one member unmanaged"
    );
    for h in &managed {
        assert!(members.contains(&moid(h)), "{} is not a member", h.fqdn);
    }
    let hosts = hosts_now(f).await;
    // Every member, including the one firmflow does not manage.
    assert_eq!(hosts.keys().cloned().collect::<BTreeSet<_>>(), members);
    for h in hosts.values() {
        assert!(!h.name.is_empty(), "{} has no name", h.host_moid);
        assert_eq!(h.connection, Connection::Connected, "{h:?}");
        assert!(h.powered_on && !h.in_maintenance && h.is_online(), "{h:?}");
        assert_ne!(h.overall_status, Status::Red, "{h:?}");
    }
    assert_in_maintenance(f, &BTreeSet::new()).await;
}

async fn entering_twice_is_fine<F: ClusterFixture>(f: &F) {
    let h = &f.managed()[0];
    enter(f, h).await;
    let expected = BTreeSet::from([moid(h)]);
    assert_in_maintenance(f, &expected).await;
    // A resumed run asks again for what is already true.
    enter(f, h).await;
    assert_in_maintenance(f, &expected).await;
}

async fn exiting_twice_is_fine<F: ClusterFixture>(f: &F) {
    let h = &f.managed()[1];
    enter(f, h).await;
    exit(f, h).await;
    assert_in_maintenance(f, &BTreeSet::new()).await;
    exit(f, h).await;
    assert_in_maintenance(f, &BTreeSet::new()).await;
    // And the host can go round again.
    enter(f, h).await;
    assert_in_maintenance(f, &BTreeSet::from([moid(h)])).await;
}

async fn exiting_a_host_not_in_maintenance_changes_nothing<F: ClusterFixture>(f: &F) {
    let managed = f.managed();
    let (a, b) = (&managed[0], &managed[2]);
    // With another host in maintenance, so "nothing" is observable.
    enter(f, a).await;
    exit(f, b).await;
    assert_in_maintenance(f, &BTreeSet::from([moid(a)])).await;
}

/// What admission relies on to keep `minHostsOnline`: right after an enter
/// returns, the live read shows exactly that host gone and every other host
/// as it was; right after an exit returns, it is back.
async fn each_enter_takes_exactly_that_host_offline<F: ClusterFixture>(f: &F) {
    let members = f.members();
    let managed = f.managed();
    let mut entered = BTreeSet::new();
    for h in &managed {
        let before = online(&hosts_now(f).await);
        enter(f, h).await;
        entered.insert(moid(h));
        let after = online(&hosts_now(f).await);
        let mut expected = before.clone();
        expected.remove(&moid(h));
        assert_eq!(after, expected, "entering {} took other hosts", h.fqdn);
        assert_eq!(after.len(), members.len() - entered.len());
    }
    assert_in_maintenance(f, &entered).await;
    // The unmanaged member was never touched.
    let unmanaged = all_but(&members, &entered);
    assert_eq!(online(&hosts_now(f).await), unmanaged);
    for h in managed.iter().rev() {
        exit(f, h).await;
        entered.remove(&moid(h));
        assert_eq!(
            online(&hosts_now(f).await),
            all_but(&members, &entered),
            "exiting {} did not bring exactly it back",
            h.fqdn
        );
    }
    assert_in_maintenance(f, &BTreeSet::new()).await;
}

async fn health_shows_a_host_in_maintenance<F: ClusterFixture>(f: &F) {
    let h = &f.managed()[0];
    let fresh = f
        .manager()
        .cluster_health(&f.cluster())
        .await
        .expect("cluster_health");
    assert!(
        fresh.problems(false).is_empty(),
        "a fresh cluster: {:?}",
        fresh.problems(false)
    );
    enter(f, h).await;
    let health = f
        .manager()
        .cluster_health(&f.cluster())
        .await
        .expect("cluster_health");
    let by_moid: BTreeMap<String, &ClusterHostState> = health
        .hosts
        .iter()
        .map(|s| (s.host_moid.clone(), s))
        .collect();
    assert_eq!(
        by_moid.keys().cloned().collect::<BTreeSet<_>>(),
        f.members().into_iter().collect::<BTreeSet<_>>(),
        "cluster_health lists every member"
    );
    let mine = by_moid.get(&moid(h)).expect("the host in maintenance");
    assert!(mine.in_maintenance && !mine.is_online(), "{mine:?}");
    // Maintenance mode is not a connection problem: the host stays
    // connected, so a cluster with a host in maintenance is not unhealthy.
    assert_eq!(mine.connection, Connection::Connected);
    assert!(
        health.problems(false).is_empty(),
        "{:?}",
        health.problems(false)
    );
    let others_online = by_moid
        .values()
        .filter(|s| s.host_moid != moid(h))
        .all(|s| s.is_online());
    assert!(others_online, "{:?}", health.hosts);
    // The health's host list is the same live state cluster_hosts reports.
    let listed = hosts_now(f).await;
    for (m, s) in &by_moid {
        let l = listed.get(m).expect("listed");
        assert_eq!(
            (l.in_maintenance, l.connection, l.powered_on),
            (s.in_maintenance, s.connection, s.powered_on),
            "{m}"
        );
    }
}

async fn unknown_hosts_and_clusters_are_typed_errors<F: ClusterFixture>(f: &F) {
    let m = f.manager();
    let cluster = f.cluster();
    let ghost = mapped_host(&cluster, "host-404404", "ghost.example.invalid");
    for (call, r) in [
        ("enter", m.enter_maintenance(&ghost, TIMEOUT).await),
        ("exit", m.exit_maintenance(&ghost, TIMEOUT).await),
        ("in_maintenance", m.in_maintenance(&ghost).await.map(|_| ())),
    ] {
        let e = r.expect_err(call);
        assert_eq!(e.kind, ErrorKind::NotFound, "{call}: {e}");
        assert!(!e.is_transient(), "{call}: {e}");
        assert!(e.target.contains(&ghost.fqdn), "{call}: {e}");
    }

    let mut unmapped = f.managed()[0].clone();
    unmapped.host_moid = None;
    for (call, r) in [
        ("enter", m.enter_maintenance(&unmapped, TIMEOUT).await),
        ("exit", m.exit_maintenance(&unmapped, TIMEOUT).await),
        (
            "in_maintenance",
            m.in_maintenance(&unmapped).await.map(|_| ()),
        ),
    ] {
        let e = r.expect_err(call);
        assert_eq!(e.kind, ErrorKind::NotMapped, "{call}: {e}");
        assert!(e.target.contains(&unmapped.fqdn), "{call}: {e}");
    }

    let missing = ClusterKey {
        vcenter_url: cluster.vcenter_url.clone(),
        cluster_moid: "domain-c404404".into(),
    };
    let e = m.cluster_hosts(&missing).await.expect_err("cluster_hosts");
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    assert!(e.target.contains("domain-c404404"), "{e}");
    let e = m
        .cluster_health(&missing)
        .await
        .expect_err("cluster_health");
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");

    // Nothing changed on the real cluster.
    assert_in_maintenance(f, &BTreeSet::new()).await;
}

async fn a_refused_enter_surfaces_its_class<F: ClusterFixture>(f: &F) {
    let managed = f.managed();
    let (h, other) = (&managed[0], &managed[1]);
    let kind = f.refuse_enter(h).await;
    let e = f
        .manager()
        .enter_maintenance(h, TIMEOUT)
        .await
        .expect_err("refused");
    assert_eq!(e.kind, kind, "{e}");
    assert!(e.target.contains(&h.fqdn), "{e}");
    assert!(!e.message.is_empty(), "{e}");
    // A refused enter leaves the host serving, and no other host is affected.
    assert_in_maintenance(f, &BTreeSet::new()).await;
    enter(f, other).await;
    assert_in_maintenance(f, &BTreeSet::from([moid(other)])).await;
}
