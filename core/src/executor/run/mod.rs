//! One host run: the durable per-host state machine (DESIGN §4;
//! ARCHITECTURE.md has the table of stages, intents and effects).
//!
//! ```text
//! preflight -> resolve -> [enter_maintenance] -> for each package:
//!    intent (token, time, the BMC's job ids) -> submit -> record the job id
//!    -> download -> install -> [reboot] -> wait_ready -> verify
//! -> post_validation -> [exit_maintenance] -> completed
//! on failure: retrying (maintenance mode left) | rolling_back -> finishing
//! cleanup (finishing): exit maintenance mode, delete staged jobs, then final
//! ambiguous evidence: exit maintenance mode -> needs_attention
//! ```
//!
//! Every effect with an outside consequence is preceded by a fenced
//! checkpoint (the intent) and followed by one (the result), so a run resumed
//! by any executor knows what may already have happened. The decisions a
//! resume makes from what it then observes are pure functions in
//! [`super::decide`]. Every BMC and vCenter call races the lease's trust
//! deadline ([`RunDriver::bounded`]): a call still running when the lease
//! may have expired is dropped, and the run stops writing.
//!
//! Split by concern: this file holds the driver's machinery and the forward
//! walk; [`install`] the package steps (submit, adoption, follow, reboot);
//! [`cleanup`] failure, rollback, cancel, parking and the final transition.

mod cleanup;
mod install;

use super::{LeaseWatch, ProgressEvent, Shared};
use crate::bmc::{self, BmcDriver, Reads, Snapshot};
use crate::checks::{CheckContext, CheckOutcome};
use crate::model::*;
use crate::store::{ClaimedRun, Transition, WriteOutcome};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tracing::{Instrument, info, info_span, warn};

/// Why a run stopped walking forward.
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
    /// The outcome is already decided (journaled `finishing`): clean up and end.
    Finish {
        outcome: RunState,
        reason: Option<String>,
    },
    /// The evidence is ambiguous: stop for an operator.
    Attention {
        reason: String,
        evidence: serde_json::Value,
    },
}

type Step<T> = Result<T, Flow>;

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
    /// Read-outs the step just ended took from the BMC with nothing done to
    /// it since, for the step that follows it (preflight → resolution, the
    /// last verification → validation). Emptied at every other stage.
    reads: Reads,
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
        // A BMC that cannot be reached still leaves a run to clean up
        // (maintenance mode needs no BMC): the run walks with a driver that
        // answers every call with the connect error, so failure, retry and
        // cleanup take the one path every run takes.
        let bmc = match shared.services.bmc.connect(&host).await {
            Ok(b) => b,
            Err(e) => {
                warn!(error = %e, "cannot connect to the BMC");
                Arc::new(cleanup::UnreachableBmc(e)) as Arc<dyn BmcDriver>
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
            reads: Reads::default(),
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
                    | PackageStatus::RollbackFailed { .. }
            )
        })
        .count();
    match stage {
        Stage::New => 2,
        Stage::Preflighted => 8,
        Stage::Installing => {
            let n = packages.len().max(1);
            u8::try_from(10 + 70 * done / n).unwrap_or(80)
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

    /// Until when the run may act; `LeaseLost` once the lease is gone or no
    /// longer trusted.
    fn trust_deadline(&self) -> Step<Instant> {
        let w = self.watch.lock().unwrap_or_else(|e| e.into_inner());
        if w.lost || Instant::now() >= w.trusted_until {
            return Err(Flow::LeaseLost);
        }
        Ok(w.trusted_until)
    }

    /// Stops acting when the lease is lost or no longer trusted.
    fn guard(&self) -> Step<()> {
        self.trust_deadline().map(|_| ())
    }

    /// Runs one outside call (BMC, vCenter, check) while the lease is
    /// trusted. Heartbeats extend the deadline while the call runs; if they
    /// stop, the call is dropped at the deadline and the run stops, so a
    /// successor that takes the lease over never races a call of ours.
    async fn bounded<T>(&self, call: impl Future<Output = T>) -> Step<T> {
        let call = std::pin::pin!(call);
        let mut call = call;
        loop {
            let until = self.trust_deadline()?;
            tokio::select! {
                biased;
                out = &mut call => return Ok(out),
                _ = tokio::time::sleep_until(until) => {}
            }
        }
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
        // The start is journaled with the first checkpoint; a run whose
        // first holder died before writing it has not started on record.
        let first = self.ctx.timing.start_time.is_none();
        if first {
            self.ctx.timing.start_time = Some(self.clock_now());
        }
        // A takeover past the resume cap was handed out only to clean up.
        let cap = self.policy().max_resumes();
        if resumed && self.run.resumes > cap {
            let reason = format!(
                "gave up after {} takeovers of a lost lease (resume cap {cap})",
                self.run.resumes
            );
            return self
                .end(Flow::Finish {
                    outcome: RunState::Failed,
                    reason: Some(reason),
                })
                .await;
        }
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
            Ok(()) => {
                self.end(Flow::Finish {
                    outcome: RunState::Completed,
                    reason: None,
                })
                .await
            }
            Err(flow) => self.end(flow).await,
        }
    }

    /// Acts on how the walk stopped.
    async fn end(&mut self, flow: Flow) {
        match flow {
            Flow::LeaseLost => info!("lease lost; stopping without further writes"),
            Flow::Shutdown => self.release().await,
            Flow::Cancelled => self.cancel_cleanup().await,
            Flow::Failed { message, transient } => self.on_failure(message, transient).await,
            Flow::Finish { outcome, reason } => self.finish(outcome, reason).await,
            Flow::Attention { reason, evidence } => self.park(reason, evidence).await,
        }
    }

    /// The forward path, from whatever stage the checkpoint holds.
    async fn walk(&mut self) -> Step<()> {
        loop {
            // Read-outs carry only into the step they were taken for.
            if !matches!(
                self.ctx.checkpoint.stage,
                Stage::Preflighted | Stage::Validating
            ) {
                self.reads = Reads::default();
            }
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
                Stage::RollingBack { reason, cancelled } => {
                    // A resumed rollback finishes; the outcome was decided
                    // before it began and is not decided again.
                    self.rollback().await?;
                    return Err(Flow::Finish {
                        outcome: if cancelled {
                            RunState::Cancelled
                        } else {
                            RunState::Failed
                        },
                        reason: Some(reason),
                    });
                }
                Stage::Finishing { outcome, reason } => {
                    return Err(Flow::Finish { outcome, reason });
                }
            }
        }
    }

    /// Runs the named checks in order over one [`Snapshot`] of the BMC
    /// (seeded with the carried read-outs), so they judge one picture and
    /// ask the BMC each question once; what it read is carried on.
    async fn run_checks(&mut self, names: &[String], phase: Phase, timeout_secs: u64) -> Step<()> {
        let snapshot = Snapshot::new(self.bmc.clone(), std::mem::take(&mut self.reads));
        let outcome = self
            .run_checks_on(&snapshot, names, phase, timeout_secs)
            .await;
        self.reads = snapshot.into_reads();
        outcome
    }

    async fn run_checks_on(
        &mut self,
        snapshot: &Snapshot,
        names: &[String],
        phase: Phase,
        timeout_secs: u64,
    ) -> Step<()> {
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
                bmc: snapshot,
                cluster: self.shared.services.cluster.as_deref(),
                packages: &self.ctx.checkpoint.packages,
                needs_maintenance: needs_mm,
            };
            let outcome = self
                .bounded(tokio::time::timeout(
                    Duration::from_secs(timeout_secs),
                    check.run(cx),
                ))
                .await?
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
        // The preflight's read-outs, when it has just run (not on a resume).
        let snapshot = Snapshot::new(self.bmc.clone(), std::mem::take(&mut self.reads));
        let system = self.bounded(snapshot.system()).await??;
        let inventory = self.bounded(snapshot.inventory()).await??;
        let artifacts = self
            .shared
            .services
            .store
            .plan_artifacts(self.plan.id)
            .await
            .map_err(|e| failed(e.to_string(), e.is_transient()))?;
        let resolver = self.shared.services.resolver.clone();
        let packages = self
            .bounded(resolver.resolve(crate::artifacts::ResolveRequest {
                host: &self.host,
                system: &system,
                inventory: &inventory,
                plan: &self.plan,
                artifacts: &artifacts,
            }))
            .await?
            .map_err(|e| failed(e.to_string(), e.is_transient()))?;
        let names: Vec<String> = packages
            .iter()
            .map(|p| format!("{} {}", p.name, p.target_version))
            .collect();
        // The version each component has now is the run's start version:
        // rollback returns to it and only to it.
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
        let timeout = Duration::from_secs(self.policy().timeouts().maintenance_secs);
        self.bounded(cm.enter_maintenance(&self.host, timeout))
            .await??;
        self.ctx.checkpoint.maintenance = MaintenanceState::EnteredByUs;
        let ev = NewEvent::info(EventType::MaintenanceMode, "entered maintenance mode")
            .for_run(self.run.id, self.plan.id, self.host.id)
            .details(serde_json::json!({ "maintenance": "entered" }));
        self.save(Some(ev)).await
    }

    /// Leaves maintenance mode if this run may have entered it. Journaled
    /// both ways; needs no BMC.
    async fn leave_maintenance(&mut self) -> Step<()> {
        if !self.ctx.checkpoint.holds_maintenance() {
            return Ok(());
        }
        let Some(cm) = self.shared.services.cluster.clone() else {
            return Ok(());
        };
        self.ctx.checkpoint.maintenance = MaintenanceState::Exiting;
        self.set_phase(Phase::ExitMaintenance, "leaving maintenance mode");
        self.save(None).await?;
        let timeout = Duration::from_secs(self.policy().timeouts().maintenance_secs);
        self.bounded(cm.exit_maintenance(&self.host, timeout))
            .await??;
        self.ctx.checkpoint.maintenance = MaintenanceState::Exited;
        let ev = NewEvent::info(EventType::MaintenanceMode, "left maintenance mode")
            .for_run(self.run.id, self.plan.id, self.host.id)
            .details(serde_json::json!({ "maintenance": "exited" }));
        self.save(Some(ev)).await
    }

    async fn validate(&mut self) -> Step<()> {
        self.set_phase(Phase::PostValidation, "post-update validation");
        self.emit(RunState::Running);
        let names = self.policy().post_update_validation.clone();
        let t = self.policy().timeouts().validation_secs;
        self.run_checks(&names, Phase::PostValidation, t).await
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
}
