//! Fault soak, short form: 100 simulated iDRACs over HTTPS, 8 % with each
//! fault `firmflow-sim` injects (11 kinds: 10 % each cannot fit) (harness in `tests/src/fault_soak.rs`),
//! the rest clean; then a 12-host plan whose failure budget stops it. Each
//! fault's hosts must end as that fault demands: transient faults
//! completed after retries, terminal ones failed with the right class and
//! the BMC's words; no panic, no run left unfinished.

use firmflow_core::model::{PlanStatus, RunState};
use firmflow_tests::fault_soak::{HostOutcome, Injected, SoakConfig, soak};
use std::time::Duration;

/// What a fault's hosts must end as: state, error class, words in the error.
fn expected(f: Injected) -> (RunState, Option<&'static str>, Option<&'static str>) {
    match f {
        Injected::Clean
        | Injected::ServerErrors
        | Injected::Latency
        | Injected::ConnReset
        | Injected::SessionExpiry
        | Injected::LcNotReady => (RunState::Completed, None, None),
        Injected::FailJob => (RunState::Failed, Some("terminal"), Some("SUP0538")),
        // A job that never ends is a timeout, retried (transient) until
        // the attempts are spent.
        Injected::StuckJob => (
            RunState::Failed,
            Some("transient"),
            Some("did not finish in time"),
        ),
        Injected::JobQueueFull => (RunState::Failed, Some("transient"), Some("JCP017")),
        Injected::HostNeverReturns => (
            RunState::Failed,
            Some("terminal"),
            Some("did not come back after the reboot"),
        ),
        Injected::WrongVersion => (
            RunState::Failed,
            Some("terminal"),
            Some("installed version is 2.99.9"),
        ),
        Injected::DegradedHealth => (
            RunState::Failed,
            Some("terminal"),
            Some("system health is critical"),
        ),
    }
}

/// Installs the simulator must count on a host: both components once when
/// completed; none when the job fails; install plus rollback of the first
/// component on a wrong version; both and both rolled back on a failed
/// validation; `None`: not fixed (where the run stopped varies).
fn installs(f: Injected) -> Option<usize> {
    match f {
        Injected::FailJob | Injected::StuckJob | Injected::JobQueueFull => Some(0),
        Injected::WrongVersion => Some(2),
        Injected::DegradedHealth => Some(4),
        Injected::HostNeverReturns => None,
        _ => Some(2),
    }
}

fn check(o: &HostOutcome) {
    let (state, class, words) = expected(o.injected);
    let ctx = format!("{} ({}): {o:?}", o.host, o.injected.label());
    assert_eq!(o.state, state, "{ctx}");
    if let Some(n) = installs(o.injected) {
        assert_eq!(o.installs, n, "{ctx}: installs");
    }
    if let Some(c) = class {
        assert_eq!(o.class.as_deref(), Some(c), "{ctx}");
    }
    if let Some(w) = words {
        assert!(o.message.as_deref().unwrap_or("").contains(w), "{ctx}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_ends_as_it_should_and_the_budget_stops_its_plan() {
    let r = soak(SoakConfig {
        hosts: 100,
        percent_per_fault: 8,
        max_concurrent: 25,
        seed: 13,
        timeout: Duration::from_secs(240),
    })
    .await;
    println!("{}", r.table());
    for f in Injected::FAULTS {
        if let Some(o) = r.of(f).first() {
            println!("{:<20} e.g. {o:?}", f.label());
        }
    }
    assert_eq!(r.panics, 0, "panics");
    assert_eq!(r.stuck, 0, "runs left unfinished");
    assert_eq!(r.status, Some(PlanStatus::Failed), "some hosts fail");
    for f in Injected::FAULTS.iter().chain([&Injected::Clean]) {
        let hosts = r.of(*f);
        assert!(!hosts.is_empty(), "{} given to no host", f.label());
        for o in hosts {
            check(o);
        }
    }
    // Transient faults were met, not dodged: they cost the run an error.
    for f in [
        Injected::ServerErrors,
        Injected::ConnReset,
        Injected::LcNotReady,
    ] {
        for o in r.of(f) {
            assert!(o.errors >= 1, "{} never met its fault: {o:?}", o.host);
        }
    }
    // The budget: failures stop admission; what had not started is cancelled.
    let b = &r.budget;
    assert_eq!(b.status, Some(PlanStatus::Failed), "{b:?}");
    let failed = b.states.get("failed").copied().unwrap_or(0) as u32;
    assert!(
        failed >= b.max_failures && failed < b.max_failures + b.max_concurrent,
        "{b:?}"
    );
    assert!(
        b.states.get("cancelled").copied().unwrap_or(0) >= 1,
        "{b:?}"
    );
    assert_eq!(
        b.states.get("completed").copied().unwrap_or(0),
        0,
        "the failing hosts go first: {b:?}"
    );
}
