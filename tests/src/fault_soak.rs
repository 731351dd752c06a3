//! Fault soak (issue 13): one plan over a large simulated fleet over HTTPS
//! where a share of the hosts carries each fault `firmflow-sim` can inject
//! (`sim/src/faults.rs`) and the rest are clean, then a small plan whose
//! failure budget must stop it. The outcome of every host is read back from
//! the store and tabulated against the fault it was given: the confusion
//! table (injected fault × final outcome).
//!
//! Time is the simulator's speed factor ([`SIM_SPEED`]: Dell minutes are
//! real milliseconds) and the executor's short real-time polls; no step
//! waits on a fixed sleep. Faults are assigned to hosts by a seeded
//! shuffle, so a seed names one soak. Used by `tests/tests/fault_soak.rs`
//! (100 hosts, asserts each fault's expected outcome) and by the bench
//! `tests/benches/fault_soak.rs` (1,000 hosts, prints the table).

use crate::sim_world::{SIM_SPEED, SimWorld, realtime_config, realtime_plan, sim_package};
use firmflow_core::model::*;
use firmflow_core::store::RunStore as _;
use firmflow_sim::{Fault, FaultRule, PackageKind};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A fault of the soak: its row label and how it is injected on one host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Injected {
    /// No fault.
    Clean,
    /// `fail_job`: every update job fails (SUP0538).
    FailJob,
    /// `stuck_job`: update jobs stop progressing in `Running`.
    StuckJob,
    /// `5xx_burst:n=3`: three HTTP 500 SYS518.
    ServerErrors,
    /// `latency:ms=40`: every response 40 real ms late.
    Latency,
    /// `conn_reset:n=2`: two connections dropped without a response.
    ConnReset,
    /// `session_expiry:p=0.2:n=1`: the sessions vanish once, mid-run.
    SessionExpiry,
    /// `lc_not_ready:secs=8000`: the LC refuses jobs for 2 real seconds
    /// from the plan's start (these hosts go first, so the run meets it).
    LcNotReady,
    /// `job_queue_full`: job creation fails with JCP017.
    JobQueueFull,
    /// `host_never_returns`: after the next reset the host stays off.
    HostNeverReturns,
    /// `wrong_version:version=2.99.9:n=1`: an install reports the wrong version.
    WrongVersion,
    /// `degraded_health:health=Critical`: system health is Critical.
    DegradedHealth,
}

impl Injected {
    /// Every fault, in table order (`Clean` last).
    pub const FAULTS: [Injected; 11] = [
        Injected::FailJob,
        Injected::StuckJob,
        Injected::ServerErrors,
        Injected::Latency,
        Injected::ConnReset,
        Injected::SessionExpiry,
        Injected::LcNotReady,
        Injected::JobQueueFull,
        Injected::HostNeverReturns,
        Injected::WrongVersion,
        Injected::DegradedHealth,
    ];

    /// The sim's spec name (the table's row label).
    pub fn label(self) -> &'static str {
        match self {
            Injected::Clean => "(clean)",
            Injected::FailJob => "fail_job",
            Injected::StuckJob => "stuck_job",
            Injected::ServerErrors => "5xx_burst",
            Injected::Latency => "latency",
            Injected::ConnReset => "conn_reset",
            Injected::SessionExpiry => "session_expiry",
            Injected::LcNotReady => "lc_not_ready",
            Injected::JobQueueFull => "job_queue_full",
            Injected::HostNeverReturns => "host_never_returns",
            Injected::WrongVersion => "wrong_version",
            Injected::DegradedHealth => "degraded_health",
        }
    }

    /// The rule that injects it on `host` (`None` for a clean host).
    fn rule(self, host: &str) -> Option<FaultRule> {
        let f = match self {
            Injected::Clean => return None,
            Injected::FailJob => FaultRule::new(Fault::FailJob),
            Injected::StuckJob => FaultRule::new(Fault::StuckJob),
            Injected::ServerErrors => FaultRule::new(Fault::ServerErrorBurst { count: 3 }),
            Injected::Latency => FaultRule::new(Fault::Latency { ms: 40 }),
            Injected::ConnReset => FaultRule::new(Fault::ConnectionReset { count: 2 }),
            // `p=1:n=1` would expire the sessions at injection only; p<1
            // fires on later requests. Back-to-back firings reject the fresh
            // session too: the driver logs in again (twice per request), then
            // reports the BMC unavailable, transient, and the run retries.
            Injected::SessionExpiry => FaultRule::new(Fault::SessionExpiry)
                .with_probability(0.2)
                .times(3),
            Injected::LcNotReady => FaultRule::new(Fault::LcNotReady { secs: 8000 }),
            Injected::JobQueueFull => FaultRule::new(Fault::JobQueueFull),
            Injected::HostNeverReturns => FaultRule::new(Fault::HostNeverReturns),
            // Once: the rollback install then behaves.
            Injected::WrongVersion => FaultRule::new(Fault::WrongVersion {
                version: Some("2.99.9".into()),
            })
            .times(1),
            Injected::DegradedHealth => FaultRule::new(Fault::DegradedHealth {
                health: "Critical".into(),
            }),
        };
        Some(f.on_host(host))
    }
}

/// Settings of one soak.
#[derive(Clone, Debug)]
pub struct SoakConfig {
    /// Hosts of the big plan.
    pub hosts: usize,
    /// Percentage of those hosts given each fault (11 faults: at most 9).
    pub percent_per_fault: usize,
    /// The big plan's `maxConcurrent` (and the executor's slots).
    pub max_concurrent: u32,
    /// Seed of the fault assignment and of the simulator.
    pub seed: u64,
    /// Real-time bound on the big plan.
    pub timeout: Duration,
}

/// How one host ended.
#[derive(Clone, Debug)]
pub struct HostOutcome {
    /// Simulated host name.
    pub host: String,
    /// The fault it was given.
    pub injected: Injected,
    /// Final run state.
    pub state: RunState,
    /// Class of the error that ended the run (the one its `last_error`
    /// names; else the last recorded): `transient`, `terminal`, ….
    pub class: Option<String>,
    /// Phase of that error.
    pub phase: Option<String>,
    /// The run's `last_error`.
    pub message: Option<String>,
    /// Failed attempts counted.
    pub attempts: u32,
    /// Errors the run recorded on its way (a survived fault leaves some).
    pub errors: usize,
    /// Installs the simulator counted on the host.
    pub installs: usize,
    /// Every recorded error as `phase class: message`, oldest first.
    pub trail: Vec<String>,
}

impl HostOutcome {
    /// The table's column: `completed`, `failed:<class>`, `cancelled`, ….
    pub fn column(&self) -> String {
        match (self.state, &self.class) {
            (RunState::Failed, Some(c)) => format!("failed:{c}"),
            (s, _) => s.as_str().to_string(),
        }
    }
}

/// What the failure-budget plan did.
#[derive(Clone, Debug)]
pub struct BudgetOutcome {
    /// Hosts of the plan.
    pub hosts: usize,
    /// Hosts given `fail_job` (they go first).
    pub failing: usize,
    /// `maxFailures`.
    pub max_failures: u32,
    /// `maxConcurrent`.
    pub max_concurrent: u32,
    /// Final plan status.
    pub status: Option<PlanStatus>,
    /// Runs by final state.
    pub states: BTreeMap<String, usize>,
}

/// Everything a soak found.
#[derive(Clone, Debug)]
pub struct SoakReport {
    /// Seed used.
    pub seed: u64,
    /// Final status of the big plan (`None`: not final within the bound).
    pub status: Option<PlanStatus>,
    /// One row per host of the big plan.
    pub outcomes: Vec<HostOutcome>,
    /// The failure-budget plan.
    pub budget: BudgetOutcome,
    /// Panics seen by the panic hook while the soak ran.
    pub panics: usize,
    /// Runs of either plan not in a final state at the end.
    pub stuck: usize,
    /// Wall time of the big plan.
    pub elapsed: Duration,
}

impl SoakReport {
    /// The confusion table: injected fault × final outcome, counts.
    pub fn table(&self) -> String {
        let mut cols: Vec<String> = self.outcomes.iter().map(HostOutcome::column).collect();
        cols.sort();
        cols.dedup();
        let mut rows: BTreeMap<Injected, BTreeMap<String, usize>> = BTreeMap::new();
        for o in &self.outcomes {
            *rows
                .entry(o.injected)
                .or_default()
                .entry(o.column())
                .or_default() += 1;
        }
        let mut out = format!("{:<20}", "injected \\ outcome");
        for c in &cols {
            out.push_str(&format!(" {c:>20}"));
        }
        out.push('\n');
        for (inj, counts) in &rows {
            out.push_str(&format!("{:<20}", inj.label()));
            for c in &cols {
                out.push_str(&format!(" {:>20}", counts.get(c).copied().unwrap_or(0)));
            }
            out.push('\n');
        }
        out
    }

    /// Outcomes of the hosts given `fault`.
    pub fn of(&self, fault: Injected) -> Vec<&HostOutcome> {
        self.outcomes
            .iter()
            .filter(|o| o.injected == fault)
            .collect()
    }
}

const BIOS: &str = "159";
const IDRAC: &str = "25227";

/// splitmix64: a reproducible shuffle without a dependency.
fn shuffle<T>(v: &mut [T], seed: u64) {
    let mut s = seed;
    let mut next = || {
        s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    for i in (1..v.len()).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
}

/// Counts panics of any thread from now on (the previous hook still runs).
fn count_panics() -> Arc<AtomicUsize> {
    let n = Arc::new(AtomicUsize::new(0));
    let seen = n.clone();
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        seen.fetch_add(1, Ordering::SeqCst);
        prev(info);
    }));
    n
}

/// The soak's policy: both packages, rollback on failure, retries one real
/// second apart (the LC outage must be outlived by retrying, not by luck),
/// phase timeouts in real seconds that a stuck job or a host that never
/// comes back runs into long before the plan's bound.
fn policy(np: &mut NewPlan, max_concurrent: u32) {
    np.policy.max_concurrent = max_concurrent;
    np.policy.rollback_on_failure = true;
    np.policy.retry = Some(RetrySettings {
        max_attempts: 4,
        initial_backoff_secs: 1,
        multiplier: 1.0,
        max_backoff_secs: 1,
        jitter: 0.0,
    });
    np.policy.timeouts = Some(PhaseTimeouts {
        preflight_secs: 60,
        maintenance_secs: 60,
        install_secs: 5,
        graceful_shutdown_secs: 5,
        reboot_secs: 5,
        validation_secs: 60,
    });
}

async fn outcomes(
    w: &SimWorld,
    plan: PlanId,
    given: &BTreeMap<String, Injected>,
) -> Vec<HostOutcome> {
    let mut out = Vec::new();
    for r in w.store.list_runs(plan).await.expect("runs") {
        let host = w.sim_name(r.host_id).to_string();
        // The error that ended the run (its `last_error`), not whatever came
        // after it: a transient error of the rollback that was retried and
        // then succeeded does not make a terminal failure transient.
        let errors = &r.ctx.results.errors;
        let last = errors
            .iter()
            .rev()
            .find(|e| r.last_error.as_deref() == Some(e.message.as_str()))
            .or(errors.last());
        out.push(HostOutcome {
            injected: given.get(&host).copied().unwrap_or(Injected::Clean),
            state: r.state,
            class: last.map(|e| e.class.clone()),
            phase: last.map(|e| format!("{:?}", e.phase)),
            message: r.last_error.clone(),
            attempts: r.attempts,
            errors: r.ctx.results.errors.len(),
            installs: w.fleet.installs(&host).len(),
            trail: r
                .ctx
                .results
                .errors
                .iter()
                .map(|e| format!("{:?} {}: {}", e.phase, e.class, e.message))
                .collect(),
            host,
        });
    }
    out.sort_by(|a, b| a.host.cmp(&b.host));
    out
}

/// Runs the soak: the big plan, then the failure-budget plan.
pub async fn soak(cfg: SoakConfig) -> SoakReport {
    const BUDGET_HOSTS: usize = 12;
    const BUDGET_FAILING: usize = 6;
    const BUDGET_MAX_FAILURES: u32 = 2;
    const BUDGET_CONCURRENT: u32 = 2;
    let panics = count_panics();
    let w = SimWorld::builder()
        .hosts(cfg.hosts + BUDGET_HOSTS)
        .speed(SIM_SPEED)
        .seed(cfg.seed)
        .start()
        .await;
    let artifacts = vec![
        w.artifact(&sim_package(BIOS, "BIOS", "3.0.0", PackageKind::Bios, &[])),
        w.artifact(&sim_package(
            IDRAC,
            "Integrated Dell Remote Access Controller",
            "7.00.00.00",
            PackageKind::Idrac,
            &[],
        )),
    ];
    let (main, budget) = w.hosts.split_at(cfg.hosts);
    // Fault assignment: a seeded shuffle, then blocks of `per` hosts.
    let mut order: Vec<usize> = (0..main.len()).collect();
    shuffle(&mut order, cfg.seed);
    let per = cfg.hosts * cfg.percent_per_fault / 100;
    let mut given: BTreeMap<String, Injected> = BTreeMap::new();
    for (k, fault) in Injected::FAULTS.iter().enumerate() {
        for &i in order.iter().skip(k * per).take(per) {
            given.insert(main[i].sim.name.clone(), *fault);
        }
    }
    let hosts: Vec<&Host> = main.iter().map(|h| &h.host).collect();
    let mut np = realtime_plan(&hosts, UpdateMode::SpecificPackage, artifacts.clone());
    policy(&mut np, cfg.max_concurrent);
    for t in &mut np.targets {
        let name = w.sim_name(t.host_id);
        if given.get(name) == Some(&Injected::LcNotReady) {
            t.priority = 10;
        }
    }
    let mut xc = realtime_config("soak");
    xc.slots = cfg.max_concurrent as usize + BUDGET_CONCURRENT as usize;
    let exec = w.executor_with(xc);
    let handle = exec.spawn();
    // Injected right before the start: the LC outage's clock starts now.
    for (host, fault) in &given {
        if let Some(rule) = fault.rule(host) {
            w.fleet.inject_rule(rule);
        }
    }
    let began = Instant::now();
    let pid = crate::start(&exec, np).await;
    let status = handle.wait_plan(pid, cfg.timeout).await;
    let elapsed = began.elapsed();
    let outcomes = outcomes(&w, pid, &given).await;
    // The failure budget: the failing hosts first, two at a time.
    for h in budget.iter().take(BUDGET_FAILING) {
        w.fleet.inject(&h.sim.name, Fault::FailJob);
    }
    let bhosts: Vec<&Host> = budget.iter().map(|h| &h.host).collect();
    let mut bp = realtime_plan(&bhosts, UpdateMode::SpecificPackage, artifacts);
    policy(&mut bp, BUDGET_CONCURRENT);
    bp.policy.failure_budget = Some(FailureBudget {
        max_failures: Some(BUDGET_MAX_FAILURES),
        max_failure_percent: None,
    });
    let n = bp.targets.len() as i32;
    for (i, t) in bp.targets.iter_mut().enumerate() {
        t.priority = n - i as i32;
    }
    let bid = crate::start(&exec, bp).await;
    let bstatus = handle.wait_plan(bid, Duration::from_secs(120)).await;
    let mut states: BTreeMap<String, usize> = BTreeMap::new();
    let mut stuck = 0;
    for r in w.store.list_runs(bid).await.expect("runs") {
        *states.entry(r.state.as_str().to_string()).or_default() += 1;
        stuck += usize::from(!r.state.is_final());
    }
    stuck += outcomes.iter().filter(|o| !o.state.is_final()).count();
    handle.shutdown().await;
    w.shutdown().await;
    SoakReport {
        seed: cfg.seed,
        status,
        outcomes,
        budget: BudgetOutcome {
            hosts: BUDGET_HOSTS,
            failing: BUDGET_FAILING,
            max_failures: BUDGET_MAX_FAILURES,
            max_concurrent: BUDGET_CONCURRENT,
            status: bstatus,
            states,
        },
        panics: panics.load(Ordering::SeqCst),
        stuck,
        elapsed,
    }
}
