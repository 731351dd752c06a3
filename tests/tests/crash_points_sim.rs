//! Crash points with the real drivers: the exhaustive crash-point test
//! (`crash_points.rs`) runs on the fake BMC in paused time; this one runs
//! the same crash-and-takeover at every effect of a run against the
//! simulated iDRAC over HTTPS with each real driver kind — iDRAC9 (image
//! URI and repository delivery), iDRAC10, generic Redfish, and racadm
//! (through the fake racadm) — in real time with short leases.
//!
//! Real time makes the number of polls vary from run to run, so crash point
//! `k` is "the k-th effect of this replay, whatever it is" (its label is
//! recorded), for every `k` up to the clean run's count. After each
//! takeover: the BIOS was installed exactly once (the sim's counter), the
//! run completed with the new version, the audit trail is whole.

use firmflow_catalog::{CatalogResolver, CatalogResolverOptions, CatalogSource, PackageCache};
use firmflow_core::SystemClock;
use firmflow_core::artifacts::ArtifactResolver;
use firmflow_core::checks::CheckRegistry;
use firmflow_core::executor::{Executor, ExecutorConfig, Services};
use firmflow_core::model::*;
use firmflow_core::store::{EventFilter, EventStore as _, RunStore as _};
use firmflow_sim::{Flavor, PackageKind};
use firmflow_tests::crash::*;
use firmflow_tests::sim_world::*;
use firmflow_tests::start;
use std::sync::Arc;
use std::time::Duration;

const BIOS: &str = "159";
const BIOS_TO: &str = "3.0.0";
const PLAN_TIMEOUT: Duration = Duration::from_secs(60);
/// Crash points run this many at a time (each has its own fleet and store).
const PARALLEL: usize = 6;

#[derive(Clone, Copy, Debug)]
enum Kind {
    Idrac9,
    Idrac9Repository,
    Idrac10,
    Generic,
    Racadm,
}

fn config(name: &str) -> ExecutorConfig {
    let mut c = realtime_config(name);
    // Short leases: a takeover follows a crash within about a second.
    c.lease_ttl = Duration::from_millis(1200);
    c.heartbeat_interval = Duration::from_millis(200);
    c.safety_margin = Duration::from_millis(400);
    c.reclaim_delay = Duration::from_millis(100);
    c
}

async fn world(kind: Kind) -> SimWorld {
    let b = SimWorld::builder().hosts(1).speed(8000.0);
    match kind {
        Kind::Idrac9 | Kind::Idrac9Repository => b.flavor(Flavor::Idrac9),
        Kind::Idrac10 => b.flavor(Flavor::Idrac10),
        Kind::Generic => b.flavor(Flavor::Generic),
        Kind::Racadm => b
            .flavor(Flavor::Idrac9)
            .racadm(env!("CARGO_BIN_EXE_fake_racadm")),
    }
    .start()
    .await
}

fn bios_pkg(systems: &[u32]) -> firmflow_sim::Package {
    sim_package(BIOS, "BIOS", BIOS_TO, PackageKind::Bios, systems)
}

/// The plan and the resolver for `kind`'s delivery.
fn plan_for(w: &SimWorld, kind: Kind) -> (NewPlan, Arc<dyn ArtifactResolver>) {
    let host = &w.hosts[0];
    match kind {
        Kind::Idrac9Repository => {
            let url = w.serve_catalog(&[bios_pkg(&[host.sim.system_id])]);
            let repo = url.trim_end_matches("/Catalog.xml").to_string();
            let resolver = CatalogResolver::with_options(
                Arc::new(CatalogSource::new().expect("catalog source")),
                Arc::new(
                    PackageCache::with_default_client(w.dir().join("repo-cache")).expect("cache"),
                ),
                CatalogResolverOptions {
                    delivery: firmflow_catalog::Delivery::Repository {
                        repository_uri: repo,
                        catalog_file: "Catalog.xml".into(),
                    },
                    verify: false,
                    ..Default::default()
                },
            );
            let mut np = realtime_plan(&[&host.host], UpdateMode::LatestFromCatalog, vec![]);
            np.policy.catalog_url = Some(url);
            (np, Arc::new(resolver))
        }
        _ => {
            let artifacts = vec![w.artifact(&bios_pkg(&[]))];
            (
                realtime_plan(&[&host.host], UpdateMode::SpecificPackage, artifacts),
                w.resolver.clone(),
            )
        }
    }
}

fn executor(
    w: &SimWorld,
    resolver: &Arc<dyn ArtifactResolver>,
    switch: &CrashSwitch,
    name: &str,
) -> Executor {
    Executor::new(
        Services {
            store: Arc::new(CrashStore {
                inner: w.store.clone(),
                switch: switch.clone(),
            }),
            bmc: Arc::new(CrashConnector {
                inner: w.connector.clone(),
                switch: switch.clone(),
            }),
            cluster: None,
            resolver: resolver.clone(),
            checks: CheckRegistry::builtin(),
            clock: Arc::new(SystemClock),
        },
        config(name),
    )
}

/// Awaits `step`, failing the test naming `what` if it takes over 30 s: a
/// hang anywhere (a lost shutdown signal was one) fails instead of stalling
/// the suite.
async fn bounded<T>(what: &str, step: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), step)
        .await
        .unwrap_or_else(|_| panic!("{what} hung"))
}

/// One run, crashed where `switch` is armed and taken over by a fresh
/// executor; returns the effects the first process performed and whether it
/// crashed. Panics with the crash point when an invariant breaks.
async fn run(kind: Kind, switch: CrashSwitch, point: String) -> (Vec<&'static str>, bool) {
    let w = world(kind).await;
    let name = w.hosts[0].sim.name.clone();
    let (np, resolver) = plan_for(&w, kind);
    let exec_a = executor(&w, &resolver, &switch, "a");
    let handle_a = exec_a.spawn();
    let pid = bounded(&format!("{kind:?} {point}: start"), start(&exec_a, np)).await;
    let crashed = tokio::select! {
        st = handle_a.wait_plan(pid, PLAN_TIMEOUT) => {
            assert!(st.is_some(), "{kind:?} {point}: plan did not end");
            false
        }
        _ = switch.wait_tripped() => true,
    };
    let labels = switch.labels();
    if crashed {
        // The process dies: nothing released, no more heartbeats.
        handle_a.abort();
        let exec_b = executor(&w, &resolver, &CrashSwitch::counting(), "b");
        let handle_b = exec_b.spawn();
        let st = handle_b.wait_plan(pid, PLAN_TIMEOUT).await;
        assert!(st.is_some(), "{kind:?} {point}: successor did not finish");
        bounded(
            &format!("{kind:?} {point}: b shutdown"),
            handle_b.shutdown(),
        )
        .await;
    } else {
        bounded(
            &format!("{kind:?} {point}: a shutdown"),
            handle_a.shutdown(),
        )
        .await;
    }
    let r = w.store.list_runs(pid).await.expect("runs").remove(0);
    let ctx = format!(
        "{kind:?} crash {point}: {} {:?}, installs {:?}",
        r.state,
        r.last_error,
        w.fleet.installs(&name)
    );
    assert_eq!(w.fleet.install_count(&name, BIOS), 1, "{ctx}");
    assert_eq!(r.state, RunState::Completed, "{ctx}");
    assert_eq!(w.version(&name, BIOS).as_deref(), Some(BIOS_TO), "{ctx}");
    let ev = w
        .store
        .list_events(&EventFilter {
            run_id: Some(r.id),
            ..Default::default()
        })
        .await
        .expect("events");
    let starts = ev
        .iter()
        .filter(|e| e.event.event_type == EventType::UpdateStarted)
        .count();
    assert_eq!(starts, 1, "{ctx}");
    assert_eq!(
        ev.last()
            .and_then(|e| e.event.details.get("to"))
            .and_then(|v| v.as_str()),
        Some(r.state.as_str()),
        "{ctx}: the final transition is not the last event"
    );
    bounded(&format!("{kind:?} {point}: sim shutdown"), w.shutdown()).await;
    (labels, crashed)
}

async fn every_crash_point(kind: Kind) {
    let (clean, crashed) = run(kind, CrashSwitch::counting(), "none".into()).await;
    assert!(!crashed);
    let n = clean.len();
    assert!(n >= 10, "{kind:?}: only {n} effects: {clean:?}");
    let points: Vec<(usize, Side)> = (0..n)
        .flat_map(|k| [(k, Side::Before), (k, Side::After)])
        .collect();
    let mut crashed_at = 0;
    for batch in points.chunks(PARALLEL) {
        let runs = batch.iter().map(|&(k, side)| {
            let point = format!("{side:?} #{k} (clean run: {})", clean[k]);
            tokio::spawn(run(kind, CrashSwitch::armed(k, side), point))
        });
        for r in futures::future::join_all(runs).await {
            let (_, crashed) = r.expect("crash point panicked");
            crashed_at += usize::from(crashed);
        }
    }
    println!(
        "{kind:?}: {n} effects in the clean run, {} crash points, {crashed_at} crashed and taken over",
        points.len()
    );
    // Real time varies the number of polls; most points must still be hit.
    assert!(
        crashed_at * 10 >= points.len() * 8,
        "{kind:?}: {crashed_at}/{}",
        points.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idrac9_image_uri_every_crash_point() {
    every_crash_point(Kind::Idrac9).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idrac9_repository_every_crash_point() {
    every_crash_point(Kind::Idrac9Repository).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idrac10_every_crash_point() {
    every_crash_point(Kind::Idrac10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generic_redfish_every_crash_point() {
    every_crash_point(Kind::Generic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racadm_every_crash_point() {
    every_crash_point(Kind::Racadm).await;
}
