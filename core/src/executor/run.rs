//! One host run: the durable per-host state machine (DESIGN §4).
//!
//! ```text
//! preflight -> resolve -> [enter_maintenance] -> for each package:
//!    record intent -> submit -> record the BMC job id -> download -> install
//!    -> [reboot] -> wait_ready -> verify
//! -> post_validation -> [exit_maintenance] -> completed
//! ```
//!
//! Every step is checkpointed (a fenced write) before it acts on the world,
//! so a run resumed by any executor knows what may already have happened: a
//! recorded job id is polled, never submitted again; an intent without a job
//! id makes the run look at the BMC's queue and installed versions first.

use super::{LeaseWatch, ProgressEvent, Shared};
use crate::bmc::{
    self, ApplyTime, BmcDriver, BmcJobState, Inventory, PowerState, ResetKind, UpdateOptions,
    UpdateStart,
};
use crate::checks::{CheckContext, CheckOutcome};
use crate::model::*;
use crate::policy::RetryPolicy;
use crate::store::{ClaimedRun, Transition, WriteOutcome};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tracing::{Instrument, info, info_span, warn};

/// Why a run stopped acting.
#[derive(Debug)]
enum Flow {
    /// The run failed (transient: may be retried).
    Failed { message: String, transient: bool },
    /// An operator cancelled it; stopped at a safe point.
    Cancelled,
    /// The lease is gone or untrusted: stop, write nothing.
    LeaseLost,
    /// The executor shuts down: release at this safe point.
    Shutdown,
}

type Step<T> = Result<T, Flow>;

/// Attempts to leave maintenance mode before a run gives up and says so
/// with a critical event (an operator must bring the host back).
const MAX_EXIT_MAINTENANCE_TRIES: usize = 10;

fn failed(message: impl Into<String>, transient: bool) -> Flow {
    Flow::Failed {
        message: message.into(),
        transient,
    }
}

impl From<bmc::Error> for Flow {
    fn from(e: bmc::Error) -> Self {
        failed(e.to_string(), e.is_transient())
    }
}

impl From<crate::cluster::Error> for Flow {
    fn from(e: crate::cluster::Error) -> Self {
        failed(e.to_string(), e.is_transient())
    }
}

struct RunDriver {
    shared: Arc<Shared>,
    plan: Plan,
    host: Host,
    run: HostRun,
    lease: Lease,
    watch: Arc<Mutex<LeaseWatch>>,
    ctx: RunCtx,
    bmc: Arc<dyn BmcDriver>,
    phase_started: Instant,
    shutdown: tokio::sync::watch::Receiver<bool>,
}

/// Drives one claimed run until it ends, is released, or loses its lease.
pub(super) async fn drive(
    shared: Arc<Shared>,
    plan: Plan,
    claimed: ClaimedRun,
    watch: Arc<Mutex<LeaseWatch>>,
) {
    let span =
        info_span!("run", plan = %plan.id, host = %claimed.run.host_id, run = %claimed.run.id);
    async move {
        let store = shared.services.store.clone();
        let host = match store.get_host(claimed.run.host_id).await {
            Ok(h) => h,
            Err(e) => {
                warn!(error = %e, "host unreadable; leaving the run to be reclaimed");
                return;
            }
        };
        let lease = claimed.lease.clone();
        let bmc = match shared.services.bmc.connect(&host).await {
            Ok(b) => b,
            Err(e) => {
                // No driver, nothing touched: record the failure like any other.
                let mut d = Minimal {
                    shared: &shared,
                    plan: &plan,
                    run: &claimed.run,
                    lease: &lease,
                };
                d.fail_without_driver(e).await;
                return;
            }
        };
        let shutdown = shared.shutdown.subscribe();
        let mut d = RunDriver {
            shared: shared.clone(),
            plan,
            host,
            ctx: claimed.run.ctx.clone(),
            run: claimed.run,
            lease,
            watch,
            bmc: bmc.clone(),
            phase_started: Instant::now(),
            shutdown,
        };
        d.run_to_end(claimed.resumed).await;
        if let Err(e) = bmc.close().await {
            warn!(error = %e, "BMC logout failed");
        }
    }
    .instrument(span)
    .await
}

/// Failure recording when no driver could be built.
struct Minimal<'a> {
    shared: &'a Shared,
    plan: &'a Plan,
    run: &'a HostRun,
    lease: &'a Lease,
}

impl Minimal<'_> {
    async fn fail_without_driver(&mut self, e: bmc::Error) {
        let mut ctx = self.run.ctx.clone();
        ctx.results.errors.push(RunErrorRecord {
            phase: Phase::Preflight,
            class: if e.is_transient() {
                "transient"
            } else {
                "terminal"
            }
            .into(),
            message: e.to_string(),
            at: self.shared.services.clock.now(),
        });
        let attempts = self.run.attempts + 1;
        let retry = self.plan.policy.retry();
        let backoff = retry.next(attempts, e.is_transient(), fastrand::f64());
        let mut t = Transition::to(
            if backoff.is_some() {
                RunState::Retrying
            } else {
                RunState::Failed
            },
            ctx,
        );
        t.count_failure = true;
        t.error = Some(e.to_string());
        t.retry_at = backoff.map(|b| self.shared.services.clock.now() + chrono_dur(b));
        if let Err(err) = self.shared.services.store.transition(self.lease, t).await {
            warn!(error = %err, "cannot record the failure");
        }
    }
}

fn chrono_dur(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

fn phase_percent(stage: &Stage, packages: &[PackageProgress]) -> u8 {
    let done = packages
        .iter()
        .filter(|p| {
            matches!(
                p.status,
                PackageStatus::Installed { .. }
                    | PackageStatus::Skipped { .. }
                    | PackageStatus::Staged { .. }
                    | PackageStatus::Failed { .. }
                    | PackageStatus::RolledBack
            )
        })
        .count();
    match stage {
        Stage::New => 2,
        Stage::Preflighted => 8,
        Stage::Installing => {
            let n = packages.len().max(1);
            (10 + 70 * done / n) as u8
        }
        Stage::Rebooting { .. } => 82,
        Stage::Validating => 90,
        Stage::RollingBack { .. } => 90,
        Stage::Finishing { .. } => 97,
    }
}

impl RunDriver {
    fn clock_now(&self) -> chrono::DateTime<chrono::Utc> {
        self.shared.services.clock.now()
    }

    fn policy(&self) -> &Policy {
        &self.plan.policy
    }

    /// Whether disruptive steps need maintenance mode on this host.
    fn maintenance_applies(&self) -> bool {
        self.policy().require_maintenance_mode
            && self.host.cluster_key().is_some()
            && self.host.host_moid.is_some()
    }

    /// Whether the run may reboot the host.
    fn may_reboot(&self) -> bool {
        self.policy().allow_downtime
            || (self.maintenance_applies() && self.shared.services.cluster.is_some())
    }

    /// Stops acting when the lease is lost or no longer trusted.
    fn guard(&self) -> Step<()> {
        let w = self.watch.lock().unwrap_or_else(|e| e.into_inner());
        if w.lost || Instant::now() >= w.trusted_until {
            return Err(Flow::LeaseLost);
        }
        Ok(())
    }

    fn cancel_requested(&self) -> bool {
        self.watch
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .cancel_requested
    }

    fn shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// A safe point between steps: honour shutdown and cancel.
    fn safe_point(&self) -> Step<()> {
        self.guard()?;
        if self.shutting_down() {
            return Err(Flow::Shutdown);
        }
        if self.cancel_requested() {
            return Err(Flow::Cancelled);
        }
        Ok(())
    }

    fn set_phase(&mut self, phase: Phase, message: impl Into<String>) {
        let prev = self.ctx.progress.phase;
        if prev != phase {
            let secs = self.phase_started.elapsed().as_secs();
            if prev != Phase::Queued {
                *self
                    .ctx
                    .timing
                    .phases
                    .entry(prev.as_str().to_string())
                    .or_default() += secs;
            }
            self.phase_started = Instant::now();
        }
        self.ctx.progress.phase = phase;
        self.ctx.progress.message = message.into();
        self.ctx.progress.percentage =
            phase_percent(&self.ctx.checkpoint.stage, &self.ctx.checkpoint.packages);
    }

    fn emit(&self, state: RunState) {
        let _ = self.shared.progress.send(ProgressEvent {
            run_id: self.run.id,
            plan_id: self.plan.id,
            host_id: self.host.id,
            state,
            phase: self.ctx.progress.phase,
            percentage: self.ctx.progress.percentage,
            message: self.ctx.progress.message.clone(),
        });
    }

    /// Fenced checkpoint of the whole ctx, optionally with an audit event.
    /// Store outages are retried briefly; after that the run stops acting
    /// (its lease lapses and it is resumed from this point elsewhere).
    async fn save(&mut self, event: Option<NewEvent>) -> Step<()> {
        self.guard()?;
        self.ctx.progress.percentage =
            phase_percent(&self.ctx.checkpoint.stage, &self.ctx.checkpoint.packages);
        let mut delay = Duration::from_millis(200);
        for attempt in 0..5 {
            let mut t = Transition::checkpoint(self.ctx.clone());
            t.event = event.clone();
            match self.shared.services.store.transition(&self.lease, t).await {
                Ok(WriteOutcome::Applied) => {
                    self.emit(RunState::Running);
                    return Ok(());
                }
                Ok(WriteOutcome::LeaseLost) => return Err(Flow::LeaseLost),
                Ok(WriteOutcome::StateMismatch { actual }) => {
                    warn!(%actual, "run changed state under its lease holder");
                    return Err(Flow::LeaseLost);
                }
                Err(e) if e.is_transient() && attempt < 4 => {
                    warn!(error = %e, "checkpoint failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                Err(e) => {
                    warn!(error = %e, "checkpoint impossible; stopping this run");
                    return Err(Flow::LeaseLost);
                }
            }
        }
        Err(Flow::LeaseLost)
    }

    fn step_event(&self, msg: impl Into<String>, details: serde_json::Value) -> NewEvent {
        NewEvent::info(EventType::RunStep, msg)
            .for_run(self.run.id, self.plan.id, self.host.id)
            .details(details)
    }

    async fn run_to_end(&mut self, resumed: bool) {
        if self.ctx.timing.start_time.is_none() {
            self.ctx.timing.start_time = Some(self.clock_now());
        }
        let first = self.ctx.checkpoint.stage == Stage::New && !resumed && self.run.attempts == 0;
        let ev = first.then(|| {
            NewEvent::info(
                EventType::UpdateStarted,
                format!("update of {} started", self.host.fqdn),
            )
            .for_run(self.run.id, self.plan.id, self.host.id)
        });
        if resumed {
            info!(stage = ?self.ctx.checkpoint.stage, "resuming from checkpoint");
        }
        // Only a first start has something to record before work begins;
        // a resume continues from the checkpoint it was handed.
        let started = match ev {
            Some(ev) => self.save(Some(ev)).await,
            None => self.guard(),
        };
        let outcome = match started {
            Ok(()) => self.walk().await,
            Err(f) => Err(f),
        };
        match outcome {
            Ok(()) => self.finish(RunState::Completed, None).await,
            Err(Flow::LeaseLost) => info!("lease lost; stopping without further writes"),
            Err(Flow::Shutdown) => self.release().await,
            Err(Flow::Cancelled) => self.cancel_cleanup().await,
            Err(Flow::Failed { message, transient }) => self.on_failure(message, transient).await,
        }
    }

    /// The forward path, from whatever stage the checkpoint holds.
    async fn walk(&mut self) -> Step<()> {
        loop {
            match self.ctx.checkpoint.stage.clone() {
                Stage::New => {
                    self.safe_point()?;
                    self.preflight().await?;
                    self.ctx.checkpoint.stage = Stage::Preflighted;
                    self.set_phase(Phase::Resolve, "preflight passed");
                    self.save(None).await?;
                }
                Stage::Preflighted => {
                    self.safe_point()?;
                    self.resolve().await?;
                }
                Stage::Installing => {
                    self.install_all().await?;
                }
                Stage::Rebooting { .. } => {
                    self.reboot_and_settle().await?;
                }
                Stage::Validating => {
                    self.validate().await?;
                    return Ok(());
                }
                Stage::RollingBack { reason } => {
                    // A resumed rollback finishes, then the run fails.
                    self.rollback().await;
                    return Err(failed(reason, false));
                }
                Stage::Finishing { outcome, reason } => {
                    return match outcome {
                        RunState::Completed => Ok(()),
                        RunState::Cancelled => Err(Flow::Cancelled),
                        _ => Err(failed(reason.unwrap_or_else(|| "failed".into()), false)),
                    };
                }
            }
        }
    }

    async fn run_checks(&mut self, names: &[String], phase: Phase, timeout_secs: u64) -> Step<()> {
        let needs_mm = self.maintenance_applies();
        for name in names {
            self.guard()?;
            let check = self
                .shared
                .services
                .checks
                .get(name)
                .ok_or_else(|| failed(format!("unknown check {name:?}"), false))?;
            let cx = CheckContext {
                host: &self.host,
                plan: &self.plan,
                bmc: self.bmc.as_ref(),
                cluster: self.shared.services.cluster.as_deref(),
                packages: &self.ctx.checkpoint.packages,
                needs_maintenance: needs_mm,
            };
            let outcome = tokio::time::timeout(Duration::from_secs(timeout_secs), check.run(cx))
                .await
                .unwrap_or_else(|_| CheckOutcome::Fail {
                    reason: format!("timed out after {timeout_secs}s"),
                    transient: true,
                });
            if let CheckOutcome::Fail { reason, transient } = outcome {
                return Err(failed(
                    format!("{} check {name} failed: {reason}", phase.as_str()),
                    transient,
                ));
            }
        }
        Ok(())
    }

    async fn preflight(&mut self) -> Step<()> {
        self.set_phase(Phase::Preflight, "running preflight checks");
        self.emit(RunState::Running);
        let names = self.policy().preflight_checks.clone();
        let t = self.policy().timeouts().preflight_secs;
        self.run_checks(&names, Phase::Preflight, t).await
    }

    async fn resolve(&mut self) -> Step<()> {
        self.set_phase(Phase::Resolve, "reading inventory");
        let system = self.bmc.system().await?;
        let inventory = self.bmc.inventory().await?;
        let artifacts = self
            .shared
            .services
            .store
            .plan_artifacts(self.plan.id)
            .await
            .map_err(|e| failed(e.to_string(), e.is_transient()))?;
        let packages = self
            .shared
            .services
            .resolver
            .resolve(crate::artifacts::ResolveRequest {
                host: &self.host,
                system: &system,
                inventory: &inventory,
                plan: &self.plan,
                artifacts: &artifacts,
            })
            .await
            .map_err(|e| failed(e.to_string(), e.is_transient()))?;
        let names: Vec<String> = packages
            .iter()
            .map(|p| format!("{} {}", p.name, p.target_version))
            .collect();
        self.ctx.checkpoint.packages = packages
            .into_iter()
            .map(|mut p| {
                if p.installed_version.is_none() {
                    p.installed_version = inventory
                        .installed_for_package(&p)
                        .map(|c| c.version.clone());
                }
                PackageProgress {
                    package: p,
                    status: PackageStatus::Pending,
                }
            })
            .collect();
        self.ctx.results.reboot_required = Some(
            self.ctx
                .checkpoint
                .packages
                .iter()
                .any(|p| p.package.reboot_required),
        );
        if self.ctx.checkpoint.packages.is_empty() {
            self.ctx.checkpoint.stage = Stage::Validating;
            self.set_phase(
                Phase::PostValidation,
                "already compliant: nothing to install",
            );
        } else {
            self.ctx.checkpoint.stage = Stage::Installing;
            self.set_phase(
                Phase::Download,
                format!("{} package(s) to install", names.len()),
            );
        }
        let ev = self.step_event(
            format!("resolved {} package(s)", names.len()),
            serde_json::json!({ "packages": names }),
        );
        self.save(Some(ev)).await
    }

    /// Enters maintenance mode if disruptive work needs it and we are not in it.
    async fn ensure_maintenance(&mut self) -> Step<()> {
        if !self.maintenance_applies()
            || self.ctx.checkpoint.maintenance == MaintenanceState::EnteredByUs
        {
            return Ok(());
        }
        let Some(cm) = self.shared.services.cluster.clone() else {
            return Err(failed(
                "maintenance mode is required but no cluster manager is configured",
                false,
            ));
        };
        self.ctx.checkpoint.maintenance = MaintenanceState::Entering;
        self.set_phase(Phase::EnterMaintenance, "entering maintenance mode");
        self.save(None).await?;
        self.guard()?;
        let timeout = Duration::from_secs(self.policy().timeouts().maintenance_secs);
        cm.enter_maintenance(&self.host, timeout).await?;
        self.ctx.checkpoint.maintenance = MaintenanceState::EnteredByUs;
        let ev = NewEvent::info(EventType::MaintenanceMode, "entered maintenance mode")
            .for_run(self.run.id, self.plan.id, self.host.id)
            .details(serde_json::json!({ "maintenance": "entered" }));
        self.save(Some(ev)).await
    }

    /// Leaves maintenance mode if this run entered it. Journaled both ways.
    async fn leave_maintenance(&mut self) -> Step<()> {
        if !matches!(
            self.ctx.checkpoint.maintenance,
            MaintenanceState::EnteredByUs | MaintenanceState::Entering | MaintenanceState::Exiting
        ) {
            return Ok(());
        }
        let Some(cm) = self.shared.services.cluster.clone() else {
            return Ok(());
        };
        self.ctx.checkpoint.maintenance = MaintenanceState::Exiting;
        self.set_phase(Phase::ExitMaintenance, "leaving maintenance mode");
        self.save(None).await?;
        self.guard()?;
        let timeout = Duration::from_secs(self.policy().timeouts().maintenance_secs);
        cm.exit_maintenance(&self.host, timeout).await?;
        self.ctx.checkpoint.maintenance = MaintenanceState::Exited;
        let ev = NewEvent::info(EventType::MaintenanceMode, "left maintenance mode")
            .for_run(self.run.id, self.plan.id, self.host.id)
            .details(serde_json::json!({ "maintenance": "exited" }));
        self.save(Some(ev)).await
    }

    async fn install_all(&mut self) -> Step<()> {
        let n = self.ctx.checkpoint.packages.len();
        for i in 0..n {
            loop {
                let status = self.ctx.checkpoint.packages[i].status.clone();
                match status {
                    PackageStatus::Pending => {
                        // No install of ours is in flight: a safe point.
                        if !self.any_in_flight() {
                            self.safe_point()?;
                        } else {
                            self.guard()?;
                        }
                        self.submit(i).await?;
                    }
                    PackageStatus::Submitting => self.resolve_ambiguous(i).await?,
                    PackageStatus::Submitted { job } => self.follow(i, job).await?,
                    _ => break,
                }
            }
        }
        let awaiting: Vec<usize> = (0..n)
            .filter(|i| {
                matches!(
                    self.ctx.checkpoint.packages[*i].status,
                    PackageStatus::AwaitingReboot { .. }
                )
            })
            .collect();
        if !awaiting.is_empty() {
            if self.may_reboot() {
                self.ctx.checkpoint.stage = Stage::Rebooting {
                    requested_at: self.clock_now(),
                };
                self.ctx.checkpoint.reboots += 1;
                self.set_phase(Phase::Reboot, "rebooting to apply staged updates");
                let ev = self.step_event(
                    "host reboot requested",
                    serde_json::json!({ "reboots": self.ctx.checkpoint.reboots }),
                );
                self.save(Some(ev)).await?;
                return Ok(()); // walk() continues with Rebooting
            }
            // No downtime allowed and no maintenance mode: leave the jobs
            // staged for the next reboot someone else schedules.
            for i in awaiting {
                if let PackageStatus::AwaitingReboot { job } =
                    self.ctx.checkpoint.packages[i].status.clone()
                {
                    self.ctx.checkpoint.packages[i].status = PackageStatus::Staged { job };
                }
            }
            let ev = self.step_event(
                "updates staged for the next reboot (allowDowntime=false, no maintenance mode)",
                serde_json::json!({}),
            );
            self.ctx.checkpoint.stage = Stage::Validating;
            self.set_phase(Phase::PostValidation, "updates staged for next reboot");
            return self.save(Some(ev)).await;
        }
        // Not checkpointed: a resume finds every package final and gets here
        // again without touching the BMC.
        self.ctx.checkpoint.stage = Stage::Validating;
        self.set_phase(Phase::Verify, "all packages installed");
        self.emit(RunState::Running);
        Ok(())
    }

    fn any_in_flight(&self) -> bool {
        self.ctx.checkpoint.packages.iter().any(|p| {
            matches!(
                p.status,
                PackageStatus::Submitted { .. } | PackageStatus::Submitting
            )
        })
    }

    /// Journal, submit, record the job id.
    async fn submit(&mut self, i: usize) -> Step<()> {
        let pkg = self.ctx.checkpoint.packages[i].package.clone();
        if pkg.is_disruptive() {
            self.ensure_maintenance().await?;
        }
        self.wait_bmc_ready().await?;
        self.ctx.checkpoint.packages[i].status = PackageStatus::Submitting;
        self.set_phase(
            Phase::Download,
            format!("submitting {} {}", pkg.name, pkg.target_version),
        );
        self.save(None).await?;
        self.guard()?;
        let opts = UpdateOptions {
            apply: if pkg.reboot_required && pkg.kind != ComponentKind::Bmc {
                ApplyTime::OnReset
            } else {
                ApplyTime::Immediate
            },
            force: self.policy().force(),
        };
        match self.bmc.start_update(&pkg, &opts).await? {
            UpdateStart::Submitted(job) => {
                self.ctx.checkpoint.packages[i].status =
                    PackageStatus::Submitted { job: job.clone() };
                let ev = self.step_event(
                    format!(
                        "submitted {} {} as {}",
                        pkg.name, pkg.target_version, job.id
                    ),
                    serde_json::json!({ "component": pkg.component_id, "job": job.id }),
                );
                self.save(Some(ev)).await
            }
            UpdateStart::AlreadyInstalled => {
                self.ctx.checkpoint.packages[i].status = PackageStatus::Skipped {
                    reason: "the BMC reports it already installed".into(),
                };
                self.save(None).await
            }
        }
    }

    /// A crash between intent and job id: ask the BMC before submitting again.
    async fn resolve_ambiguous(&mut self, i: usize) -> Step<()> {
        let pkg = self.ctx.checkpoint.packages[i].package.clone();
        // The BMC may be restarting or the host rebooting: wait for an
        // answer rather than spend an attempt on it.
        let deadline = Instant::now() + Duration::from_secs(self.policy().timeouts().reboot_secs);
        let found = loop {
            self.guard()?;
            match self.bmc.find_job(&pkg).await {
                Ok(j) => break j,
                Err(e) if e.is_transient() && Instant::now() < deadline => {
                    warn!(error = %e, "cannot ask the BMC for its jobs yet; waiting");
                    tokio::time::sleep(self.shared.config.ready_poll_interval).await;
                }
                Err(e) => return Err(e.into()),
            }
        };
        if let Some(job) = found {
            info!(job = %job.id, "found the job of an interrupted submission");
            self.ctx.checkpoint.packages[i].status = PackageStatus::Submitted { job };
        } else {
            let inv = self.inventory_when_back().await?;
            if installed_version(&inv, &pkg).as_deref() == Some(pkg.target_version.trim()) {
                self.ctx.checkpoint.packages[i].status = PackageStatus::Installed {
                    version: pkg.target_version.clone(),
                };
            } else {
                // The BMC never took it: submitting again is safe.
                self.ctx.checkpoint.packages[i].status = PackageStatus::Pending;
            }
        }
        self.save(None).await
    }

    /// Polls a job to a resting state (installed, awaiting reboot) or failure.
    async fn follow(&mut self, i: usize, job: JobHandle) -> Step<()> {
        let pkg = self.ctx.checkpoint.packages[i].package.clone();
        let deadline = Instant::now() + Duration::from_secs(self.policy().timeouts().install_secs);
        let mut delay = self.shared.config.job_poll_initial;
        let mut last_percent = None;
        loop {
            self.guard()?;
            if self.shutting_down() {
                // The job id is recorded: whoever resumes polls it.
                return Err(Flow::Shutdown);
            }
            match self.bmc.poll_job(&job).await {
                Ok(st) => {
                    match st.state {
                        BmcJobState::Completed => return self.verify_installed(i, &pkg).await,
                        BmcJobState::CompletedWithErrors => {
                            let inv = self.inventory_when_back().await?;
                            if installed_version(&inv, &pkg).as_deref()
                                == Some(pkg.target_version.trim())
                            {
                                warn!(job = %job.id, "job completed with errors, but the target version is installed");
                                return self.verify_installed(i, &pkg).await;
                            }
                            return Err(job_failed(&pkg, &job, &st));
                        }
                        BmcJobState::Failed
                        | BmcJobState::UserIntervention
                        | BmcJobState::Cancelled => return Err(job_failed(&pkg, &job, &st)),
                        BmcJobState::Missing => {
                            let inv = self.inventory_when_back().await?;
                            if installed_version(&inv, &pkg).as_deref()
                                == Some(pkg.target_version.trim())
                            {
                                return self.verify_installed(i, &pkg).await;
                            }
                            // Purged or lost in a BMC restart before it finished:
                            // look again for it on the next attempt.
                            self.ctx.checkpoint.packages[i].status = PackageStatus::Submitting;
                            self.save(None).await?;
                            return Err(failed(
                                format!("{}: BMC no longer knows job {}", pkg.name, job.id),
                                true,
                            ));
                        }
                        BmcJobState::AwaitingReboot => {
                            self.ctx.checkpoint.packages[i].status =
                                PackageStatus::AwaitingReboot { job: job.clone() };
                            self.set_phase(
                                Phase::Install,
                                format!("{} staged, awaiting reboot", pkg.name),
                            );
                            // Written with the reboot intent that follows; a
                            // resume before it polls the job and sees the same.
                            self.emit(RunState::Running);
                            return Ok(());
                        }
                        BmcJobState::New
                        | BmcJobState::Scheduled
                        | BmcJobState::Downloading
                        | BmcJobState::Downloaded
                        | BmcJobState::Running => {
                            let phase = if matches!(
                                st.state,
                                BmcJobState::Downloading
                                    | BmcJobState::New
                                    | BmcJobState::Scheduled
                            ) {
                                Phase::Download
                            } else {
                                Phase::Install
                            };
                            if st.percent != last_percent || self.ctx.progress.phase != phase {
                                last_percent = st.percent;
                                let msg = format!(
                                    "{} {}: {:?}{}",
                                    pkg.name,
                                    pkg.target_version,
                                    st.state,
                                    st.percent.map(|p| format!(" {p}%")).unwrap_or_default()
                                );
                                self.set_phase(phase, msg);
                                self.emit(RunState::Running);
                            }
                        }
                    }
                }
                // BMC updates restart the BMC; network blips happen: keep polling.
                Err(e) if e.is_transient() => {
                    warn!(error = %e, "job poll failed; will poll again");
                }
                Err(e) => return Err(e.into()),
            }
            if Instant::now() >= deadline {
                return Err(failed(
                    format!("{}: job {} did not finish in time", pkg.name, job.id),
                    true,
                ));
            }
            tokio::time::sleep(delay).await;
            delay = (delay.mul_f64(1.5)).min(self.shared.config.job_poll_max);
        }
    }

    /// Success only after reading the inventory back.
    async fn verify_installed(&mut self, i: usize, pkg: &Package) -> Step<()> {
        self.set_phase(Phase::Verify, format!("verifying {}", pkg.name));
        let inv = self.inventory_when_back().await?;
        let have = installed_version(&inv, pkg);
        if have.as_deref() != Some(pkg.target_version.trim()) {
            self.ctx.checkpoint.packages[i].status = PackageStatus::Failed {
                reason: format!(
                    "installed version is {}, expected {}",
                    have.clone().unwrap_or_else(|| "unknown".into()),
                    pkg.target_version
                ),
            };
            self.save(None).await?;
            return Err(failed(
                format!(
                    "{}: the BMC reported success but the installed version is {}, expected {}",
                    pkg.name,
                    have.unwrap_or_else(|| "unknown".into()),
                    pkg.target_version
                ),
                false,
            ));
        }
        self.ctx.checkpoint.packages[i].status = PackageStatus::Installed {
            version: pkg.target_version.clone(),
        };
        self.ctx.results.firmware_version = Some(pkg.target_version.clone());
        let ev = self.step_event(
            format!("{} now at {}", pkg.name, pkg.target_version),
            serde_json::json!({ "component": pkg.component_id, "version": pkg.target_version }),
        );
        self.save(Some(ev)).await
    }

    /// Reads the inventory, waiting through a BMC restart (iDRAC updates
    /// restart the iDRAC).
    async fn inventory_when_back(&mut self) -> Step<Inventory> {
        let deadline = Instant::now() + Duration::from_secs(self.policy().timeouts().reboot_secs);
        loop {
            self.guard()?;
            match self.bmc.inventory().await {
                Ok(i) => return Ok(i),
                Err(e) if e.is_transient() && Instant::now() < deadline => {
                    warn!(error = %e, "inventory unavailable; waiting for the BMC");
                    tokio::time::sleep(self.shared.config.ready_poll_interval).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Waits until the BMC can take an update (Lifecycle Controller ready).
    async fn wait_bmc_ready(&mut self) -> Step<()> {
        let deadline = Instant::now() + Duration::from_secs(self.policy().timeouts().reboot_secs);
        loop {
            self.guard()?;
            match self.bmc.readiness().await {
                Ok(r) if r.ready => return Ok(()),
                Ok(_) => {}
                Err(e) if e.is_transient() => warn!(error = %e, "readiness unknown"),
                Err(e) => return Err(e.into()),
            }
            if Instant::now() >= deadline {
                return Err(failed("the BMC did not become ready for updates", true));
            }
            tokio::time::sleep(self.shared.config.ready_poll_interval).await;
        }
    }

    /// Reboots (graceful, forced after the timeout when the policy allows),
    /// waits for the host to be back and stable, then follows staged jobs.
    async fn reboot_and_settle(&mut self) -> Step<()> {
        let awaiting: Vec<(usize, JobHandle)> = self
            .ctx
            .checkpoint
            .packages
            .iter()
            .enumerate()
            .filter_map(|(i, p)| match &p.status {
                PackageStatus::AwaitingReboot { job } => Some((i, job.clone())),
                _ => None,
            })
            .collect();
        if let Some((_, probe)) = awaiting.first().cloned() {
            // Still staged: the reboot has not happened (or not taken). Reboot.
            let st = self.bmc.poll_job(&probe).await;
            let still_staged = matches!(
                st.as_ref().map(|s| &s.state),
                Ok(BmcJobState::AwaitingReboot) | Ok(BmcJobState::Scheduled)
            );
            if still_staged {
                if self.ctx.checkpoint.reboots > 3 {
                    return Err(failed(
                        "staged updates did not start after 3 reboots",
                        false,
                    ));
                }
                self.ensure_maintenance().await?;
                self.guard()?;
                self.do_reboot(&probe).await?;
            }
        }
        self.wait_host_back().await?;
        for (i, job) in awaiting {
            self.ctx.checkpoint.packages[i].status = PackageStatus::Submitted { job };
        }
        // Not checkpointed: a resume in `Rebooting` finds the jobs no longer
        // staged, skips the reboot and waits for the host as done here.
        self.ctx.checkpoint.stage = Stage::Installing;
        self.set_phase(Phase::Install, "host back; following staged jobs");
        self.emit(RunState::Running);
        Ok(())
    }

    async fn do_reboot(&mut self, probe: &JobHandle) -> Step<()> {
        let kind = self.policy().reboot_type();
        let first = match kind {
            RebootType::Forced => ResetKind::ForceRestart,
            _ => ResetKind::GracefulRestart,
        };
        self.bmc.reset(first).await?;
        if first == ResetKind::ForceRestart {
            return Ok(());
        }
        // Did the graceful restart take? The staged job leaves its waiting
        // state or the power drops once the host goes down.
        let deadline =
            Instant::now() + Duration::from_secs(self.policy().timeouts().graceful_shutdown_secs);
        loop {
            tokio::time::sleep(self.shared.config.ready_poll_interval).await;
            self.guard()?;
            let job_moved = matches!(
                self.bmc.poll_job(probe).await.map(|s| s.state),
                Ok(s) if s != BmcJobState::AwaitingReboot && s != BmcJobState::Scheduled
            );
            let power_dropped = matches!(
                self.bmc.readiness().await.map(|r| r.power),
                Ok(PowerState::Off | PowerState::PoweringOff | PowerState::PoweringOn)
            );
            if job_moved || power_dropped {
                return Ok(());
            }
            if Instant::now() >= deadline {
                break;
            }
        }
        if kind == RebootType::Graceful {
            return Err(failed(
                "the host did not restart gracefully and the policy forbids forcing it",
                true,
            ));
        }
        warn!("graceful restart did not happen in time; forcing it");
        self.bmc.reset(ResetKind::ForceRestart).await?;
        Ok(())
    }

    /// Host on and BMC ready on N consecutive reads.
    async fn wait_host_back(&mut self) -> Step<()> {
        self.set_phase(Phase::WaitReady, "waiting for the host to come back");
        self.emit(RunState::Running);
        let need = self.shared.config.ready_stable_reads.max(1);
        let deadline = Instant::now() + Duration::from_secs(self.policy().timeouts().reboot_secs);
        let mut good = 0;
        loop {
            self.guard()?;
            if self.shutting_down() {
                return Err(Flow::Shutdown);
            }
            match self.bmc.readiness().await {
                Ok(r) if r.ready && r.power == PowerState::On => good += 1,
                Ok(_) => good = 0,
                Err(e) if e.is_transient() => good = 0,
                Err(e) => return Err(e.into()),
            }
            if good >= need {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(failed("the host did not come back after the reboot", false));
            }
            tokio::time::sleep(self.shared.config.ready_poll_interval).await;
        }
    }

    async fn validate(&mut self) -> Step<()> {
        self.set_phase(Phase::PostValidation, "post-update validation");
        self.emit(RunState::Running);
        let names = self.policy().post_update_validation.clone();
        let t = self.policy().timeouts().validation_secs;
        self.run_checks(&names, Phase::PostValidation, t).await
    }

    /// Rolls back every component this run changed, when a previous image exists.
    async fn rollback(&mut self) {
        let targets: Vec<usize> = self
            .ctx
            .checkpoint
            .packages
            .iter()
            .enumerate()
            .filter(|(_, p)| {
                matches!(
                    p.status,
                    PackageStatus::Installed { .. } | PackageStatus::Failed { .. }
                )
            })
            .map(|(i, _)| i)
            .collect();
        if targets.is_empty() {
            return;
        }
        self.set_phase(Phase::Rollback, "rolling back");
        if self.save(None).await.is_err() {
            return;
        }
        let inv = match self.bmc.inventory().await {
            Ok(i) => i,
            Err(e) => {
                self.record_error(Phase::Rollback, &e.to_string(), e.is_transient());
                return;
            }
        };
        let mut need_reboot = Vec::new();
        for i in targets {
            let pkg = self.ctx.checkpoint.packages[i].package.clone();
            let Some(prev) = inv.previous_for_package(&pkg).cloned() else {
                self.record_error(
                    Phase::Rollback,
                    &format!("{}: no previous image to roll back to", pkg.name),
                    false,
                );
                continue;
            };
            if self.guard().is_err() {
                return;
            }
            match self.bmc.rollback(&prev).await {
                Ok(Some(job)) => need_reboot.push((i, job)),
                Ok(None) => {
                    self.ctx.checkpoint.packages[i].status = PackageStatus::RolledBack;
                }
                Err(e) => self.record_error(Phase::Rollback, &e.to_string(), e.is_transient()),
            }
        }
        let _ = self.save(None).await;
        for (i, job) in need_reboot {
            // Poll the rollback job; reboot when it waits for one.
            let mut rebooted = false;
            for _ in 0..200 {
                if self.guard().is_err() {
                    return;
                }
                match self.bmc.poll_job(&job).await.map(|s| s.state) {
                    Ok(BmcJobState::Completed) => {
                        self.ctx.checkpoint.packages[i].status = PackageStatus::RolledBack;
                        break;
                    }
                    Ok(BmcJobState::AwaitingReboot) if !rebooted && self.may_reboot() => {
                        rebooted = true;
                        if let Err(e) = self.bmc.reset(ResetKind::ForceRestart).await {
                            self.record_error(Phase::Rollback, &e.to_string(), true);
                            break;
                        }
                    }
                    Ok(s) if s.is_final() => {
                        self.record_error(
                            Phase::Rollback,
                            &format!("rollback job ended {s:?}"),
                            false,
                        );
                        break;
                    }
                    _ => {}
                }
                tokio::time::sleep(self.shared.config.job_poll_initial).await;
            }
        }
        if self
            .ctx
            .checkpoint
            .packages
            .iter()
            .any(|p| p.status == PackageStatus::RolledBack)
        {
            let _ = self.wait_host_back().await;
        }
        let _ = self.save(None).await;
    }

    fn record_error(&mut self, phase: Phase, message: &str, transient: bool) {
        warn!(%message, "run error");
        self.ctx.results.errors.push(RunErrorRecord {
            phase,
            class: if transient { "transient" } else { "terminal" }.into(),
            message: message.to_string(),
            at: self.clock_now(),
        });
    }

    fn summarize_components(&mut self) {
        self.ctx.results.components = self
            .ctx
            .checkpoint
            .packages
            .iter()
            .map(|p| ComponentResult {
                component_id: p.package.component_id.clone(),
                name: p.package.name.clone(),
                from_version: p.package.installed_version.clone(),
                to_version: match &p.status {
                    PackageStatus::Installed { version } => Some(version.clone()),
                    PackageStatus::RolledBack => p.package.installed_version.clone(),
                    _ => None,
                },
                outcome: match &p.status {
                    PackageStatus::Installed { .. } => "installed",
                    PackageStatus::Skipped { .. } => "skipped",
                    PackageStatus::Staged { .. } => "staged",
                    PackageStatus::Failed { .. } => "failed",
                    PackageStatus::RolledBack => "rolled_back",
                    _ => "not_installed",
                }
                .to_string(),
            })
            .collect();
    }

    /// Journals the outcome, leaves maintenance mode, and ends the run.
    async fn finish(&mut self, outcome: RunState, reason: Option<String>) {
        self.ctx.checkpoint.stage = Stage::Finishing {
            outcome,
            reason: reason.clone(),
        };
        // Journal the decided outcome before leaving maintenance mode, so a
        // resume ends the run the same way; a plain success needs no journal.
        let must_exit = matches!(
            self.ctx.checkpoint.maintenance,
            MaintenanceState::EnteredByUs | MaintenanceState::Entering | MaintenanceState::Exiting
        );
        if (must_exit || outcome != RunState::Completed) && self.save(None).await.is_err() {
            return;
        }
        if let Err(f) = self.leave_maintenance().await {
            match f {
                Flow::LeaseLost => return,
                Flow::Failed { message, .. } => {
                    // Still in maintenance mode: retry the exit later rather
                    // than end the run with a host taken out of its cluster;
                    // after a few tries, end it loudly instead.
                    self.record_error(Phase::ExitMaintenance, &message, true);
                    let tries = self
                        .ctx
                        .results
                        .errors
                        .iter()
                        .filter(|e| e.phase == Phase::ExitMaintenance)
                        .count();
                    if tries >= MAX_EXIT_MAINTENANCE_TRIES {
                        let msg = format!(
                            "{} is still in maintenance mode after {tries} attempts to leave it: {message}",
                            self.host.fqdn
                        );
                        let ev = NewEvent::info(EventType::MaintenanceMode, msg.clone())
                            .severity(Severity::Critical)
                            .for_run(self.run.id, self.plan.id, self.host.id)
                            .details(serde_json::json!({ "maintenance": "stuck", "to": "failed" }));
                        self.ctx.checkpoint.maintenance = MaintenanceState::EnteredByUs;
                        let mut t = Transition::to(RunState::Failed, self.ctx.clone());
                        t.event = Some(ev);
                        t.error = Some(msg);
                        t.count_failure = true;
                        let _ = self.shared.services.store.transition(&self.lease, t).await;
                        self.emit(RunState::Failed);
                        return;
                    }
                    let at = self.clock_now() + chrono::Duration::seconds(60);
                    let mut t = Transition::to(RunState::Retrying, self.ctx.clone());
                    t.retry_at = Some(at);
                    t.error = Some(message);
                    let _ = self.shared.services.store.transition(&self.lease, t).await;
                    self.emit(RunState::Retrying);
                    return;
                }
                _ => {}
            }
        }
        self.summarize_components();
        self.ctx.timing.end_time = Some(self.clock_now());
        self.ctx.results.update_duration = self
            .ctx
            .timing
            .start_time
            .map(|s| (self.clock_now() - s).num_seconds().max(0) as u64);
        self.set_phase(
            Phase::Done,
            match outcome {
                RunState::Completed => "completed".to_string(),
                _ => reason.clone().unwrap_or_else(|| outcome.to_string()),
            },
        );
        self.ctx.progress.percentage = 100;
        let (etype, sev) = match outcome {
            RunState::Completed => (EventType::UpdateCompleted, Severity::Info),
            RunState::Cancelled => (EventType::RunTransition, Severity::Warning),
            _ => (EventType::UpdateFailed, Severity::Error),
        };
        let ev = NewEvent::info(
            etype,
            format!(
                "{}: {}{}",
                self.host.fqdn,
                outcome,
                reason
                    .as_ref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            ),
        )
        .severity(sev)
        .for_run(self.run.id, self.plan.id, self.host.id)
        .details(
            serde_json::json!({ "from": "running", "to": outcome, "epoch": self.lease.epoch }),
        );
        let mut t = Transition::to(outcome, self.ctx.clone());
        t.event = Some(ev);
        t.error = reason;
        t.count_failure = outcome == RunState::Failed;
        match self.shared.services.store.transition(&self.lease, t).await {
            Ok(WriteOutcome::Applied) => {
                info!(%outcome, "run finished");
                self.emit(outcome);
            }
            Ok(o) => warn!(?o, "final transition refused"),
            Err(e) => warn!(error = %e, "final transition failed; the run will be resumed"),
        }
    }

    async fn on_failure(&mut self, message: String, transient: bool) {
        let phase = self.ctx.progress.phase;
        self.record_error(phase, &message, transient);
        let attempts = self.run.attempts + 1;
        let backoff = self
            .policy()
            .retry()
            .next(attempts, transient, fastrand::f64());
        if let Some(backoff) = backoff {
            // Give the cluster its host back while we wait.
            if let Err(Flow::LeaseLost) = self.leave_maintenance().await {
                return;
            }
            let at = self.clock_now() + chrono_dur(backoff);
            let mut t = Transition::to(RunState::Retrying, self.ctx.clone());
            t.count_failure = true;
            t.retry_at = Some(at);
            t.error = Some(message.clone());
            t.event = Some(
                NewEvent::info(
                    EventType::RunTransition,
                    format!(
                        "attempt {attempts} failed, retrying in {}s: {message}",
                        backoff.as_secs()
                    ),
                )
                .severity(Severity::Warning)
                .for_run(self.run.id, self.plan.id, self.host.id)
                .details(
                    serde_json::json!({"from": "running", "to": "retrying", "attempts": attempts}),
                ),
            );
            if let Ok(WriteOutcome::Applied) =
                self.shared.services.store.transition(&self.lease, t).await
            {
                self.emit(RunState::Retrying);
            }
            return;
        }
        if self.policy().rollback_on_failure
            && !matches!(self.ctx.checkpoint.stage, Stage::RollingBack { .. })
        {
            self.ctx.checkpoint.stage = Stage::RollingBack {
                reason: message.clone(),
            };
            if self.save(None).await.is_err() {
                return;
            }
            self.rollback().await;
        }
        self.finish(RunState::Failed, Some(message)).await;
    }

    async fn cancel_cleanup(&mut self) {
        info!("cancel requested; stopping at a safe point");
        // Staged jobs would install at the next reboot: remove them.
        if self
            .ctx
            .checkpoint
            .packages
            .iter()
            .any(|p| matches!(p.status, PackageStatus::AwaitingReboot { .. }))
            && let Err(e) = self.bmc.clear_job_queue().await
        {
            self.record_error(Phase::Rollback, &e.to_string(), e.is_transient());
        }
        if self.policy().rollback_on_failure {
            self.rollback().await;
        }
        self.finish(RunState::Cancelled, Some("cancelled by operator".into()))
            .await;
    }

    async fn release(&mut self) {
        info!("shutting down; releasing the run at a safe point");
        match self
            .shared
            .services
            .store
            .release(&self.lease, self.ctx.clone())
            .await
        {
            Ok(WriteOutcome::Applied) => self.emit(RunState::Retrying),
            Ok(o) => warn!(?o, "release refused"),
            Err(e) => warn!(error = %e, "release failed; the lease will expire instead"),
        }
    }
}

fn installed_version(inv: &Inventory, pkg: &Package) -> Option<String> {
    inv.installed_for_package(pkg)
        .map(|c| c.version.trim().to_string())
}

fn job_failed(pkg: &Package, job: &JobHandle, st: &bmc::JobStatus) -> Flow {
    failed(
        format!(
            "{} {}: job {} ended {:?}{}{}",
            pkg.name,
            pkg.target_version,
            job.id,
            st.state,
            st.message
                .as_ref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default(),
            st.message_id
                .as_ref()
                .map(|m| format!(" ({m})"))
                .unwrap_or_default()
        ),
        false,
    )
}
