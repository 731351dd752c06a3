//! Exhaustive crash-point test: for each delivery mode, each BMC kind (one
//! that lists its jobs, like iDRAC and racadm, and one that cannot, like a
//! generic Redfish service without a TaskService) and each outcome (success;
//! a failed package with rollback; the same with rollback requests refused
//! transiently, so the rollback is retried later), the run's effects are counted once, then
//! the run is crashed at every effect, before and after it, and taken over by
//! a fresh executor. After each takeover:
//! - each component was installed at most once, and rolled back at most once;
//! - no component the run did not change was rolled back;
//! - the host is not in maintenance mode;
//! - the run is final, or `needs_attention` with its evidence (and only where
//!   the BMC cannot list its jobs);
//! - the audit trail is whole: one start, the final transition last, a claim
//!   event for every claim.
//!
//! Paused tokio time, memory store, fake BMC and vCenter: thousands of
//! crashes in seconds.

use firmflow_core::checks::CheckRegistry;
use firmflow_core::executor::{Executor, ExecutorConfig, Jitter, Services};
use firmflow_core::model::*;
use firmflow_core::store::{EventFilter, EventStore as _, RunStore as _};
use firmflow_core::testkit::fakes::HostScript;
use firmflow_tests::crash::*;
use firmflow_tests::*;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Copy, Debug)]
struct Scenario {
    delivery: Delivery,
    /// Whether the BMC lists its jobs.
    listing: bool,
    /// The BIOS job fails (after the iDRAC update succeeded): rollback.
    fail_bios: bool,
    /// The first N rollback requests fail transiently (BMC busy): the
    /// rollback is retried after a backoff, across a release of the lease.
    flaky_rollback: u32,
}

const IDRAC_FROM: &str = "6.10.00.00";
const IDRAC_TO: &str = "7.10.50.00";
const BIOS_TO: &str = "2.19.1";

fn executor(w: &World, sc: &Scenario, switch: &CrashSwitch, name: &str) -> Executor {
    let mut cfg = ExecutorConfig::new(name);
    cfg.slots = 4;
    cfg.jitter = Jitter::Fixed(0.5);
    Executor::new(
        Services {
            store: Arc::new(CrashStore {
                inner: w.store.clone(),
                switch: switch.clone(),
            }),
            bmc: Arc::new(CrashConnector {
                inner: Arc::new(w.fleet.clone()),
                switch: switch.clone(),
            }),
            cluster: Some(Arc::new(CrashCluster {
                inner: Arc::new(w.cluster.clone()),
                switch: switch.clone(),
            })),
            resolver: Arc::new(DeliveryResolver(sc.delivery)),
            checks: CheckRegistry::builtin(),
            clock: w.clock.clone(),
        },
        cfg,
    )
}

/// What one crashed-and-resumed run left behind.
struct Outcome {
    effects: usize,
    labels: Vec<&'static str>,
    crashed: bool,
    state: RunState,
}

async fn run(sc: Scenario, switch: CrashSwitch, point: &str) -> Outcome {
    let mut w = World::new();
    let script = HostScript {
        job_listing: sc.listing,
        transient_rollback_failures: sc.flaky_rollback,
        failing_components: if sc.fail_bios {
            vec!["159".into()]
        } else {
            vec![]
        },
        ..HostScript::default()
    };
    let h = w.clustered("esx0", "c1", script).await;
    // Two more members so minHostsOnline=1 lets the host go down.
    w.cluster.add_host(&cluster_key("c1"), "host-spare1");
    w.cluster.add_host(&cluster_key("c1"), "host-spare2");
    let mut np = plan(&[(&h, 0)], vec![idrac(IDRAC_TO), bios(BIOS_TO)]);
    np.policy.rollback_on_failure = true;
    if sc.fail_bios {
        np.policy.retry = Some(RetrySettings {
            max_attempts: 1,
            initial_backoff_secs: 60,
            multiplier: 2.0,
            max_backoff_secs: 600,
            jitter: 0.0,
        });
    }
    let exec_a = executor(&w, &sc, &switch, "a");
    let handle_a = exec_a.spawn();
    let pid = start(&exec_a, np).await;
    let crashed = tokio::select! {
        st = handle_a.wait_plan(pid, Duration::from_secs(24 * 3600)) => {
            assert!(st.is_some(), "{sc:?}: plan did not end");
            false
        }
        _ = switch.wait_tripped() => true,
    };
    let effects = switch.count();
    let labels = switch.labels();
    let state = if crashed {
        // The process dies here: nothing is released, leases expire.
        handle_a.abort();
        tokio::time::sleep(Duration::from_secs(180)).await;
        let exec_b = executor(&w, &sc, &CrashSwitch::counting(), "b");
        let handle_b = exec_b.spawn();
        finish(&handle_b, pid).await;
        handle_b.shutdown().await;
        check(&w, &sc, &h, pid, point).await
    } else {
        handle_a.shutdown().await;
        check(&w, &sc, &h, pid, point).await
    };
    Outcome {
        effects,
        labels,
        crashed,
        state,
    }
}

/// The invariants; returns the run's final state.
async fn check(w: &World, sc: &Scenario, h: &Host, pid: PlanId, point: &str) -> RunState {
    let fq = &h.fqdn;
    let run = w.store.list_runs(pid).await.expect("runs").remove(0);
    let ctx = format!("{sc:?} crash {point}: {:?} {:?}", run.state, run.last_error);
    // At most one forward install and one rollback per component.
    let mut installs: BTreeMap<(String, String), usize> = BTreeMap::new();
    for i in w.fleet.installs(fq) {
        *installs.entry(i).or_default() += 1;
    }
    for (k, n) in &installs {
        assert!(*n <= 1, "{ctx}: {k:?} installed {n} times");
    }
    let rollbacks = w.fleet.rollbacks(fq);
    let mut seen = std::collections::BTreeSet::new();
    for (c, v) in &rollbacks {
        assert!(seen.insert(c.clone()), "{ctx}: {c} rolled back twice");
        // Only to the start version, only of a component this run changed.
        assert_eq!(
            c, "25227",
            "{ctx}: rolled back {c}, which the run never changed"
        );
        assert_eq!(v, IDRAC_FROM, "{ctx}");
    }
    assert!(
        !installs.contains_key(&("159".to_string(), "2.10.0".to_string())),
        "{ctx}: BIOS downgraded"
    );
    // Maintenance mode left.
    assert_eq!(
        w.cluster.in_maintenance_now(&cluster_key("c1")),
        0,
        "{ctx}: host left in MM"
    );
    // Final, or parked with evidence where the BMC cannot tell.
    match run.state {
        RunState::Completed => {
            assert!(!sc.fail_bios, "{ctx}");
            assert_eq!(
                w.fleet.version(fq, "159").as_deref(),
                Some(BIOS_TO),
                "{ctx}"
            );
            assert_eq!(
                w.fleet.version(fq, "25227").as_deref(),
                Some(IDRAC_TO),
                "{ctx}"
            );
        }
        RunState::Failed => {
            assert!(sc.fail_bios, "{ctx}");
            assert_eq!(
                w.fleet.version(fq, "159").as_deref(),
                Some("2.10.0"),
                "{ctx}"
            );
            assert_eq!(
                w.fleet.version(fq, "25227").as_deref(),
                Some(IDRAC_FROM),
                "{ctx}: not rolled back"
            );
            let retried = run
                .ctx
                .results
                .errors
                .iter()
                .filter(|e| e.phase == Phase::Rollback && e.class == "transient")
                .count();
            // A crash can lose the record of a refusal that was not yet
            // journaled; without one, each refusal is one retried attempt.
            assert!(retried <= sc.flaky_rollback as usize, "{ctx}: {retried}");
            if point == "none" {
                assert_eq!(retried, sc.flaky_rollback as usize, "{ctx}");
            }
        }
        RunState::NeedsAttention => {
            assert!(
                !sc.listing,
                "{ctx}: a BMC that lists its jobs never leaves doubt"
            );
            let a = run.ctx.checkpoint.attention.as_ref().expect("evidence");
            assert!(!a.reason.is_empty() && !a.evidence.is_null(), "{ctx}");
        }
        other => panic!("{ctx}: run ended {other}"),
    }
    // The audit trail: one start, claims recorded, the final transition last.
    let ev = w
        .store
        .list_events(&EventFilter {
            run_id: Some(run.id),
            ..Default::default()
        })
        .await
        .expect("events");
    assert!(
        ev.windows(2).all(|p| p[0].seq < p[1].seq),
        "{ctx}: events out of order"
    );
    let starts = ev
        .iter()
        .filter(|e| e.event.event_type == EventType::UpdateStarted)
        .count();
    assert_eq!(
        starts,
        1,
        "{ctx}: {:?}",
        ev.iter()
            .map(|e| (&e.event.event_type, &e.event.message))
            .collect::<Vec<_>>()
    );
    let claims = ev
        .iter()
        .filter(|e| {
            matches!(
                e.event.event_type,
                EventType::RunClaimed | EventType::RunReclaimed
            )
        })
        .count();
    assert!(
        claims > run.resumes as usize,
        "{ctx}: claims missing from the trail"
    );
    let last = ev.last().expect("events");
    assert_eq!(
        last.event.details.get("to").and_then(|v| v.as_str()),
        Some(run.state.as_str()),
        "{ctx}: the final transition is not the last event: {:?}",
        last.event
    );
    run.state
}

/// Counts the scenario's effects, then crashes at each, before and after.
async fn every_crash_point(sc: Scenario) -> usize {
    let clean = run(sc, CrashSwitch::counting(), "none").await;
    assert!(!clean.crashed);
    let n = clean.effects;
    assert!(
        n >= 20,
        "{sc:?}: only {n} effects counted: {:?}",
        clean.labels
    );
    let mut parked = 0;
    for k in 0..n {
        for side in [Side::Before, Side::After] {
            let point = format!("{side:?} #{k} {}", clean.labels[k]);
            let o = run(sc, CrashSwitch::armed(k, side), &point).await;
            assert!(
                o.crashed,
                "{sc:?}: effect {k} ({}) not reached on replay",
                clean.labels[k]
            );
            assert_eq!(
                o.labels.get(k),
                clean.labels.get(k),
                "{sc:?}: replay diverged at {k}"
            );
            if o.state == RunState::NeedsAttention {
                parked += 1;
            }
        }
    }
    println!(
        "{sc:?}: {n} effects, {} crash points, {parked} parked needs_attention",
        2 * n
    );
    if sc.listing {
        assert_eq!(parked, 0);
    }
    2 * n
}

macro_rules! crash_scenarios {
    ($($name:ident: $delivery:ident, $listing:expr, $fail:expr, $flaky:expr;)*) => {$(
        #[tokio::test(start_paused = true)]
        async fn $name() {
            every_crash_point(Scenario {
                delivery: Delivery::$delivery,
                listing: $listing,
                fail_bios: $fail,
                flaky_rollback: $flaky,
            })
            .await;
        }
    )*};
}

crash_scenarios! {
    image_uri_listing_success: ImageUri, true, false, 0;
    image_uri_listing_rollback: ImageUri, true, true, 0;
    image_uri_no_listing_success: ImageUri, false, false, 0;
    image_uri_no_listing_rollback: ImageUri, false, true, 0;
    upload_listing_success: Upload, true, false, 0;
    upload_listing_rollback: Upload, true, true, 0;
    upload_no_listing_success: Upload, false, false, 0;
    upload_no_listing_rollback: Upload, false, true, 0;
    repository_listing_success: Repository, true, false, 0;
    repository_listing_rollback: Repository, true, true, 0;
    repository_no_listing_success: Repository, false, false, 0;
    repository_no_listing_rollback: Repository, false, true, 0;
    image_uri_listing_flaky_rollback: ImageUri, true, true, 2;
    repository_no_listing_flaky_rollback: Repository, false, true, 1;
}
