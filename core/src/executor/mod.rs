//! The durable plan executor: a scheduler that claims runnable host runs
//! through the store's admission, a heartbeat that renews every lease of
//! this worker in one call, and one task per claimed run that walks the
//! per-host state machine ([`run`]) from its checkpoint.
//!
//! Several executors (threads, processes, machines) may share one store:
//! leases with fencing epochs keep each run with exactly one writer, and an
//! executor that dies leaves runs that another one takes over after the
//! lease expires.

mod decide;
mod plans;
mod poll;
pub mod progress;
mod run;

pub use plans::PlanError;
pub use progress::ProgressEvent;

use crate::artifacts::ArtifactResolver;
use crate::bmc::BmcConnector;
use crate::checks::CheckRegistry;
use crate::clock::Clock;
use crate::cluster::ClusterManager;
use crate::model::{ClusterKey, Lease, PlanId, PlanStatus, RunId, WorkerId};
use crate::policy::StandardAdmission;
use crate::store::{ClaimRequest, Store};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, broadcast, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, info, warn};

/// Executor tuning. Defaults follow the engine design: heartbeat 10 s,
/// lease 60 s, safety margin 10 s, reclaim 30 s after expiry, poll 5 s.
#[derive(Clone, Debug)]
pub struct ExecutorConfig {
    /// This worker's id; fresh per process.
    pub worker_id: WorkerId,
    /// Runs this executor drives at once.
    pub slots: usize,
    /// Lease time to live.
    pub lease_ttl: Duration,
    /// Heartbeat period.
    pub heartbeat_interval: Duration,
    /// A run stops acting this long before its lease could expire.
    pub safety_margin: Duration,
    /// Wait past an expired lease before taking it over.
    pub reclaim_delay: Duration,
    /// Scheduler poll period when nothing wakes it.
    pub poll_interval: Duration,
    /// First BMC job poll delay.
    pub job_poll_initial: Duration,
    /// Longest BMC job poll delay (the delay grows ×1.5 per poll, or lands
    /// at the end the job's progress predicts: `executor/poll.rs`).
    pub job_poll_max: Duration,
    /// Readiness poll period while waiting for a host to come back. While
    /// the host stays down the period grows ×1.5 per read, up to four times
    /// this and never past [`ready_poll_max`](Self::ready_poll_max); the
    /// stable reads after the first ready one are this far apart.
    pub ready_poll_interval: Duration,
    /// Longest readiness poll period (a reboot through staged BIOS and
    /// controller updates keeps a host down for minutes).
    pub ready_poll_max: Duration,
    /// Consecutive ready reads required after a reboot.
    pub ready_stable_reads: u32,
    /// Progress channel capacity.
    pub progress_capacity: usize,
    /// Where retry jitter comes from (fixed in tests, so runs replay alike).
    pub jitter: Jitter,
}

/// The source of retry-backoff jitter, injected so the run's decisions
/// hold no hidden randomness: `Random` in production, `Fixed` in tests.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Jitter {
    /// Uniform in [0, 1).
    #[default]
    Random,
    /// Always this value (clamped to [0, 1]).
    Fixed(f64),
}

impl Jitter {
    /// One sample in [0, 1].
    pub fn sample(&self) -> f64 {
        match self {
            Jitter::Random => fastrand::f64(),
            Jitter::Fixed(x) => x.clamp(0.0, 1.0),
        }
    }
}

impl ExecutorConfig {
    /// Defaults with a fresh worker id under `prefix`.
    pub fn new(prefix: &str) -> Self {
        Self {
            worker_id: WorkerId::generate(prefix),
            slots: 64,
            lease_ttl: Duration::from_secs(60),
            heartbeat_interval: Duration::from_secs(10),
            safety_margin: Duration::from_secs(10),
            reclaim_delay: Duration::from_secs(30),
            poll_interval: Duration::from_secs(5),
            job_poll_initial: Duration::from_secs(5),
            job_poll_max: Duration::from_secs(30),
            ready_poll_interval: Duration::from_secs(15),
            ready_poll_max: Duration::from_secs(45),
            ready_stable_reads: 3,
            progress_capacity: 4096,
            jitter: Jitter::Random,
        }
    }
}

/// Everything the executor is built from.
#[derive(Clone)]
pub struct Services {
    /// The store.
    pub store: Arc<dyn Store>,
    /// BMC drivers per host.
    pub bmc: Arc<dyn BmcConnector>,
    /// The cluster manager, when hosts are in vSphere clusters.
    pub cluster: Option<Arc<dyn ClusterManager>>,
    /// Package resolution.
    pub resolver: Arc<dyn ArtifactResolver>,
    /// Named checks.
    pub checks: CheckRegistry,
    /// Wall-clock time.
    pub clock: Arc<dyn Clock>,
}

/// Lease trust as the heartbeat sees it, shared with the run's task.
#[derive(Debug)]
struct LeaseWatch {
    lease: Lease,
    /// The run may act until then (monotonic).
    trusted_until: Instant,
    /// The store no longer has this lease.
    lost: bool,
    /// An operator asked to cancel.
    cancel_requested: bool,
}

pub(crate) struct Shared {
    services: Services,
    config: ExecutorConfig,
    progress: broadcast::Sender<ProgressEvent>,
    shutdown: watch::Sender<bool>,
    wake: Notify,
    active: Mutex<HashMap<RunId, Arc<Mutex<LeaseWatch>>>>,
    heartbeats_suspended: AtomicBool,
    /// Cluster keys of each plan's hosts, read once per plan.
    plan_clusters: Mutex<HashMap<PlanId, Vec<ClusterKey>>>,
    /// Run task handles, so a crash can be simulated by aborting them.
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Shared {
    fn lock_active(&self) -> std::sync::MutexGuard<'_, HashMap<RunId, Arc<Mutex<LeaseWatch>>>> {
        self.active.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn take_tasks(&self) -> Vec<JoinHandle<()>> {
        std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// The executor: build it, then [`Executor::spawn`] it.
#[derive(Clone)]
pub struct Executor {
    shared: Arc<Shared>,
}

/// A running executor.
pub struct ExecutorHandle {
    shared: Arc<Shared>,
    scheduler: JoinHandle<()>,
    heartbeat: JoinHandle<()>,
}

impl Executor {
    /// An executor over `services`.
    pub fn new(services: Services, config: ExecutorConfig) -> Self {
        let (progress, _) = broadcast::channel(config.progress_capacity.max(16));
        let (shutdown, _) = watch::channel(false);
        Self {
            shared: Arc::new(Shared {
                services,
                config,
                progress,
                shutdown,
                wake: Notify::new(),
                active: Mutex::new(HashMap::new()),
                heartbeats_suspended: AtomicBool::new(false),
                plan_clusters: Mutex::new(HashMap::new()),
                tasks: Mutex::new(Vec::new()),
            }),
        }
    }

    /// This executor's worker id.
    pub fn worker_id(&self) -> &WorkerId {
        &self.shared.config.worker_id
    }

    /// Subscribes to the live progress stream.
    pub fn subscribe(&self) -> broadcast::Receiver<ProgressEvent> {
        self.shared.progress.subscribe()
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.shared.services.store
    }

    /// Starts the scheduler and heartbeat tasks.
    pub fn spawn(&self) -> ExecutorHandle {
        let scheduler = tokio::spawn(scheduler_loop(self.shared.clone()));
        let heartbeat = tokio::spawn(heartbeat_loop(self.shared.clone()));
        ExecutorHandle {
            shared: self.shared.clone(),
            scheduler,
            heartbeat,
        }
    }

    /// Wakes the scheduler (a plan was started or resumed).
    pub fn wake(&self) {
        self.shared.wake.notify_one();
    }
}

impl ExecutorHandle {
    /// Graceful shutdown: stop claiming, let every run reach a safe point
    /// (never in the middle of an install submission), checkpoint and
    /// release its lease, then stop.
    pub async fn shutdown(self) {
        // `send_replace`, not `send`: `send` stores nothing while no
        // receiver exists, and the scheduler subscribes only once its task
        // first runs, so a shutdown right after `spawn` was lost and this
        // waited for ever (found by crash_points_sim under load).
        self.shared.shutdown.send_replace(true);
        self.shared.wake.notify_one();
        let _ = self.scheduler.await;
        self.heartbeat.abort();
        let _ = self.heartbeat.await;
        info!(worker = %self.shared.config.worker_id, "executor stopped");
    }

    /// Stops everything at once, releasing nothing: what a crash or a
    /// killed process does. Leases expire and another executor takes over.
    pub fn abort(self) {
        self.scheduler.abort();
        self.heartbeat.abort();
        for t in self.shared.take_tasks() {
            t.abort();
        }
    }

    /// Stops renewing leases while runs go on (a worker that lost its
    /// database link): runs stop acting when their leases may have expired.
    pub fn suspend_heartbeats(&self) {
        self.shared
            .heartbeats_suspended
            .store(true, Ordering::SeqCst);
    }

    /// Waits until no run of `plan` is unfinished and the plan has left
    /// `running`, or `timeout` passes. Returns the plan's status.
    pub async fn wait_plan(&self, plan: PlanId, timeout: Duration) -> Option<PlanStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(p) = self.shared.services.store.get_plan(plan).await
                && p.status.is_final()
            {
                return Some(p.status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Runs this executor drives now.
    pub fn active_runs(&self) -> usize {
        self.shared.lock_active().len()
    }
}

async fn scheduler_loop(shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.subscribe();
    let cfg = shared.config.clone();
    info!(worker = %cfg.worker_id, slots = cfg.slots, "executor started");
    loop {
        if *shutdown.borrow() {
            break;
        }
        if let Err(e) = schedule_once(&shared).await {
            warn!(error = %e, "scheduling round failed; retrying at the next tick");
        }
        tokio::select! {
            _ = shared.wake.notified() => {}
            _ = tokio::time::sleep(cfg.poll_interval) => {}
            _ = shutdown.changed() => {}
        }
    }
    // Graceful: wait for the run tasks to reach safe points and release.
    for h in shared.take_tasks() {
        let _ = h.await;
    }
}

/// Whether every lease of this worker is still trusted; while renewals fail
/// the worker claims nothing new.
fn leases_healthy(shared: &Shared) -> bool {
    if shared.heartbeats_suspended.load(Ordering::SeqCst) {
        return false;
    }
    let now = Instant::now();
    shared.lock_active().values().all(|w| {
        let w = w.lock().unwrap_or_else(|e| e.into_inner());
        w.trusted_until > now
    })
}

async fn schedule_once(shared: &Arc<Shared>) -> Result<(), crate::store::Error> {
    let store = &shared.services.store;
    let plans = store.active_plans().await?;
    for plan in plans {
        let counts = store.run_counts(plan.id).await?;
        if plan.status != PlanStatus::Running && counts.running == 0 && counts.cleanup == 0 {
            continue; // paused with nothing in flight and nothing to clean up
        }
        // Plan completion and the failure budget.
        if plan.status == PlanStatus::Running && counts.unfinished() == 0 {
            plans::finish_plan(shared, &plan, &counts).await?;
            continue;
        }
        if plan.status == PlanStatus::Running
            && let Some(b) = &plan.policy.failure_budget
            && b.exhausted(counts.failed, counts.total())
        {
            plans::halt_for_budget(shared, &plan, &counts).await?;
            continue;
        }
        let free = shared
            .config
            .slots
            .saturating_sub(shared.lock_active().len());
        if free == 0 || !leases_healthy(shared) {
            continue;
        }
        let live = live_cluster_state(shared, plan.id).await;
        // Trust is measured from before the claim was sent: the lease's TTL
        // may have started running at any moment of the round trip.
        let sent = Instant::now();
        let claimed = match store
            .claim(ClaimRequest {
                worker: &shared.config.worker_id,
                plan: plan.id,
                slots: free,
                lease_ttl: shared.config.lease_ttl,
                reclaim_delay: shared.config.reclaim_delay,
                live_online: &live,
                admission: &StandardAdmission,
            })
            .await
        {
            Ok(c) => c,
            // One plan's trouble must not starve the others this round.
            Err(e) => {
                warn!(plan = %plan.id, error = %e, "claim failed");
                continue;
            }
        };
        for c in claimed {
            debug!(run = %c.run.id, host = %c.run.host_id, resumed = c.resumed, "claimed");
            let watch = Arc::new(Mutex::new(LeaseWatch {
                lease: c.lease.clone(),
                trusted_until: sent + shared.config.lease_ttl
                    - shared.config.safety_margin.min(shared.config.lease_ttl),
                lost: false,
                cancel_requested: c.run.cancel_requested,
            }));
            shared.lock_active().insert(c.run.id, watch.clone());
            let s = shared.clone();
            let plan = plan.clone();
            let h = tokio::spawn(async move {
                let run_id = c.run.id;
                run::drive(s.clone(), plan, c, watch).await;
                s.lock_active().remove(&run_id);
                s.wake.notify_one();
            });
            let mut tasks = shared.tasks.lock().unwrap_or_else(|e| e.into_inner());
            tasks.retain(|t| !t.is_finished());
            tasks.push(h);
        }
    }
    Ok(())
}

/// Live online hosts per cluster of the plan, from the cluster manager.
/// A cluster the manager cannot read is left out: admission then counts
/// firmflow's own records only, and the cluster_health check still guards.
async fn live_cluster_state(
    shared: &Shared,
    plan: PlanId,
) -> BTreeMap<ClusterKey, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    let Some(cm) = &shared.services.cluster else {
        return out;
    };
    let keys = {
        let cached = shared
            .plan_clusters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&plan)
            .cloned();
        match cached {
            Some(k) => k,
            None => {
                let mut keys = BTreeSet::new();
                if let Ok(runs) = shared.services.store.list_runs(plan).await {
                    for r in runs {
                        if let Ok(h) = shared.services.store.get_host(r.host_id).await
                            && let Some(k) = h.cluster_key()
                        {
                            keys.insert(k);
                        }
                    }
                }
                let keys: Vec<ClusterKey> = keys.into_iter().collect();
                shared
                    .plan_clusters
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(plan, keys.clone());
                keys
            }
        }
    };
    for k in keys {
        match cm.cluster_hosts(&k).await {
            Ok(hosts) => {
                out.insert(
                    k,
                    hosts
                        .into_iter()
                        .filter(|h| h.is_online())
                        .map(|h| h.host_moid)
                        .collect(),
                );
            }
            Err(e) => warn!(cluster = %k, error = %e, "cannot read live cluster state"),
        }
    }
    out
}

async fn heartbeat_loop(shared: Arc<Shared>) {
    let cfg = shared.config.clone();
    loop {
        tokio::time::sleep(cfg.heartbeat_interval).await;
        if shared.heartbeats_suspended.load(Ordering::SeqCst) {
            continue;
        }
        let watches: Vec<Arc<Mutex<LeaseWatch>>> = shared.lock_active().values().cloned().collect();
        if watches.is_empty() {
            continue;
        }
        let leases: Vec<Lease> = watches
            .iter()
            .map(|w| w.lock().unwrap_or_else(|e| e.into_inner()).lease.clone())
            .collect();
        let sent = Instant::now();
        match shared
            .services
            .store
            .renew(&cfg.worker_id, &leases, cfg.lease_ttl)
            .await
        {
            Ok(renewed) => {
                let by_id: HashMap<RunId, bool> = renewed
                    .iter()
                    .map(|r| (r.run_id, r.cancel_requested))
                    .collect();
                let trusted = sent + cfg.lease_ttl - cfg.safety_margin.min(cfg.lease_ttl);
                for w in watches {
                    let mut w = w.lock().unwrap_or_else(|e| e.into_inner());
                    match by_id.get(&w.lease.run_id) {
                        Some(cancel) => {
                            w.trusted_until = trusted;
                            w.cancel_requested |= *cancel;
                        }
                        None => {
                            warn!(run = %w.lease.run_id, "lease lost");
                            w.lost = true;
                        }
                    }
                }
            }
            // A failed round alone kills nothing: trust runs out by itself.
            Err(e) => warn!(error = %e, "lease renewal failed"),
        }
    }
}
