//! How a run ends: failure and retry, rollback (journaled per component
//! like an install), cancel, parking for an operator, release at shutdown,
//! and the final transition after cleanup.
//!
//! The cleanup rule: a run whose checkpoint may hold maintenance mode or
//! jobs of ours on the BMC is ended only by a leased worker, which first
//! leaves maintenance mode (no BMC needed), then deletes staged jobs, then
//! writes the final state. A cleanup that keeps failing is retried, then
//! parked `needs_attention` with the evidence; it is never skipped.

use super::install::installed_version;
use super::{Flow, RunDriver, Step, chrono_dur, failed};
use crate::bmc::{self, BmcDriver, BmcJobState, JobSearch};
use crate::executor::decide::{self, Adoption, RollbackStep};
use crate::model::*;
use crate::policy::RetryPolicy;
use crate::store::{Transition, WriteOutcome};
use async_trait::async_trait;
use std::time::Duration;
use tokio::time::Instant;
use tracing::{info, warn};

/// Cleanup attempts (leaving maintenance mode, deleting staged jobs) before
/// a run is parked `needs_attention` with a critical event.
const MAX_CLEANUP_TRIES: usize = 10;

/// Delay between cleanup attempts.
const CLEANUP_RETRY: Duration = Duration::from_secs(60);

/// Attempts a rollback gets when a step fails transiently, at least: a
/// policy of one attempt (no retries of the update) still retries the
/// rollback, which is what puts the host back as it was.
const MIN_ROLLBACK_ATTEMPTS: u32 = 3;

/// The driver of a BMC that could not be connected: every call answers the
/// connect error, so the run fails, retries and cleans up (maintenance mode
/// needs no BMC) on the same path as any other run.
pub(super) struct UnreachableBmc(pub(super) bmc::Error);

#[async_trait]
impl BmcDriver for UnreachableBmc {
    async fn system(&self) -> Result<bmc::SystemInfo, bmc::Error> {
        Err(self.0.clone())
    }
    async fn inventory(&self) -> Result<bmc::Inventory, bmc::Error> {
        Err(self.0.clone())
    }
    async fn readiness(&self) -> Result<bmc::Readiness, bmc::Error> {
        Err(self.0.clone())
    }
    async fn start_update(
        &self,
        _: &Package,
        _: &bmc::UpdateOptions,
    ) -> Result<bmc::UpdateStart, bmc::Error> {
        Err(self.0.clone())
    }
    async fn job_ids(&self) -> Result<Option<Vec<String>>, bmc::Error> {
        Err(self.0.clone())
    }
    async fn find_job(&self, _: &bmc::JobQuery<'_>) -> Result<JobSearch, bmc::Error> {
        Err(self.0.clone())
    }
    async fn poll_job(&self, _: &JobHandle) -> Result<bmc::JobStatus, bmc::Error> {
        Err(self.0.clone())
    }
    async fn reset(&self, _: bmc::ResetKind) -> Result<(), bmc::Error> {
        Err(self.0.clone())
    }
    async fn rollback(&self, _: &bmc::FirmwareComponent) -> Result<Option<JobHandle>, bmc::Error> {
        Err(self.0.clone())
    }
    async fn clear_job_queue(&self) -> Result<(), bmc::Error> {
        Err(self.0.clone())
    }
    async fn close(&self) -> Result<(), bmc::Error> {
        Ok(())
    }
}

impl RunDriver {
    pub(super) async fn on_failure(&mut self, message: String, transient: bool) {
        if matches!(self.ctx.checkpoint.stage, Stage::RollingBack { .. }) {
            // A resumed rollback failed: the run's outcome was decided when
            // the rollback began, and its attempts are not spent again.
            return self.rollback_failed(message, transient).await;
        }
        let phase = self.ctx.progress.phase;
        self.record_error(phase, &message, transient);
        let attempts = self.run.attempts + 1;
        let jitter = self.shared.config.jitter.sample();
        let backoff = self.policy().retry().next(attempts, transient, jitter);
        if let Some(backoff) = backoff {
            // Give the cluster its host back while we wait.
            match self.leave_maintenance().await {
                Err(Flow::LeaseLost) => return,
                Err(Flow::Failed { message, .. }) => {
                    self.record_error(Phase::ExitMaintenance, &message, true)
                }
                _ => {}
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
        if self.policy().rollback_on_failure {
            match self.roll_back_then(message.clone(), false).await {
                Ok(()) => {}
                Err(Flow::LeaseLost) => return,
                Err(Flow::Attention { reason, evidence }) => {
                    return self.park(reason, evidence).await;
                }
                Err(Flow::Failed { message, transient }) => {
                    return self.rollback_failed(message, transient).await;
                }
                Err(_) => {}
            }
        }
        self.finish(RunState::Failed, Some(message)).await;
    }

    pub(super) async fn cancel_cleanup(&mut self) {
        info!("cancel requested; stopping at a safe point");
        let reason = "cancelled by operator".to_string();
        if self.policy().rollback_on_failure {
            match self.roll_back_then(reason.clone(), true).await {
                Ok(()) => {}
                Err(Flow::LeaseLost) => return,
                Err(Flow::Attention { reason, evidence }) => {
                    return self.park(reason, evidence).await;
                }
                Err(Flow::Failed { message, transient }) => {
                    return self.rollback_failed(message, transient).await;
                }
                Err(_) => {}
            }
        }
        self.finish(RunState::Cancelled, Some(reason)).await;
    }

    /// A rollback step failed.
    ///
    /// Terminal: the run ends with the outcome decided before the rollback
    /// began; each component's status says whether it was rolled back.
    /// Transient: the rollback is tried again later, spaced as the policy's
    /// retry settings say (at least [`MIN_ROLLBACK_ATTEMPTS`] attempts), with the lease released and the host given back
    /// to its cluster meanwhile. Every rollback step is journaled, so the
    /// next attempt resumes where this one stopped (a rollback POST that may
    /// have reached the BMC is looked for before it is sent again). When the
    /// policy's attempts are spent the run is parked, never plainly failed: a
    /// component may still run the new version of a failed run, and an
    /// operator must see that.
    async fn rollback_failed(&mut self, message: String, transient: bool) {
        let (reason, cancelled) = match &self.ctx.checkpoint.stage {
            Stage::RollingBack { reason, cancelled } => (reason.clone(), *cancelled),
            _ => (message.clone(), false),
        };
        let outcome = if cancelled {
            RunState::Cancelled
        } else {
            RunState::Failed
        };
        self.record_error(Phase::Rollback, &message, transient);
        if !transient {
            return self.finish(outcome, Some(reason)).await;
        }
        let tries = self
            .ctx
            .results
            .errors
            .iter()
            .filter(|e| e.phase == Phase::Rollback && e.class == "transient")
            .count() as u32;
        let jitter = self.shared.config.jitter.sample();
        let mut retry = self.policy().retry();
        retry.max_attempts = retry.max_attempts.max(MIN_ROLLBACK_ATTEMPTS);
        let Some(backoff) = retry.next(tries, true, jitter) else {
            let msg = format!("the rollback did not finish after {tries} attempts: {message}");
            let packages: Vec<serde_json::Value> = self
                .ctx
                .checkpoint
                .packages
                .iter()
                .map(|p| {
                    serde_json::json!({
                        "component": p.package.component_id,
                        "startVersion": p.package.installed_version,
                        "targetVersion": p.package.target_version,
                        "status": p.status,
                    })
                })
                .collect();
            let evidence = serde_json::json!({ "lastError": message, "packages": packages });
            return self.park(msg, evidence).await;
        };
        match self.leave_maintenance().await {
            Err(Flow::LeaseLost) => return,
            Err(Flow::Failed { message, .. }) => {
                self.record_error(Phase::ExitMaintenance, &message, true)
            }
            _ => {}
        }
        let at = self.clock_now() + chrono_dur(backoff);
        let mut t = Transition::to(RunState::Retrying, self.ctx.clone());
        t.retry_at = Some(at);
        t.error = Some(message.clone());
        t.event = Some(
            NewEvent::info(
                EventType::RunTransition,
                format!(
                    "rollback attempt {tries} failed, trying again in {}s: {message}",
                    backoff.as_secs()
                ),
            )
            .severity(Severity::Warning)
            .for_run(self.run.id, self.plan.id, self.host.id)
            .details(serde_json::json!({
                "from": "running", "to": "retrying", "rollbackAttempts": tries,
            })),
        );
        if let Ok(WriteOutcome::Applied) =
            self.shared.services.store.transition(&self.lease, t).await
        {
            self.emit(RunState::Retrying);
        }
    }

    /// Journals the rolling-back stage, deletes staged jobs (they would
    /// install at the rollback's reboot) and rolls back.
    async fn roll_back_then(&mut self, reason: String, cancelled: bool) -> Step<()> {
        if !matches!(self.ctx.checkpoint.stage, Stage::RollingBack { .. }) {
            self.ctx.checkpoint.stage = Stage::RollingBack { reason, cancelled };
            self.save(None).await?;
        }
        self.rollback().await
    }

    /// Deletes the staged jobs of this run (a failed or cancelled run must
    /// not install at someone's next reboot).
    async fn delete_staged(&mut self, why: &str) -> Step<()> {
        let staged: Vec<usize> = self
            .ctx
            .checkpoint
            .packages
            .iter()
            .enumerate()
            .filter(|(_, p)| matches!(p.status, PackageStatus::AwaitingReboot { .. }))
            .map(|(i, _)| i)
            .collect();
        if staged.is_empty() {
            return Ok(());
        }
        self.bounded(self.bmc.clear_job_queue()).await??;
        for i in &staged {
            self.set_status(
                *i,
                PackageStatus::Failed {
                    reason: format!("staged job deleted: {why}"),
                },
            );
        }
        let ev = self.step_event(
            format!("deleted {} staged job(s): {why}", staged.len()),
            serde_json::json!({ "packages": staged }),
        );
        self.save(Some(ev)).await
    }

    /// Rolls back every component whose installed version differs from the
    /// version recorded at the start of the run, to exactly that version.
    /// Each rollback is journaled like an install (intent, job, result), in
    /// maintenance mode, rebooting the way the policy says.
    pub(super) async fn rollback(&mut self) -> Step<()> {
        self.delete_staged("rolling back").await?;
        self.set_phase(Phase::Rollback, "rolling back");
        self.emit(RunState::Running);
        let n = self.ctx.checkpoint.packages.len();
        for i in 0..n {
            while let Some(p) = self.ctx.checkpoint.packages.get(i).cloned() {
                match p.status.clone() {
                    PackageStatus::RollbackSubmitting { intent } => {
                        self.resolve_rollback_intent(i, &p, intent).await?
                    }
                    PackageStatus::RollbackSubmitted { job } => {
                        self.follow_rollback(i, &p, job).await?
                    }
                    // Never touched: nothing to read from the BMC (which
                    // may be the very thing that is unreachable).
                    status if !decide::touched(&status) => break,
                    _ => {
                        let inv = self.inventory_when_back().await?;
                        match decide::rollback_step(&p, &inv) {
                            RollbackStep::Untouched => break,
                            RollbackStep::Impossible(reason) => {
                                self.record_error(Phase::Rollback, &reason, false);
                                self.set_status(i, PackageStatus::RollbackFailed { reason });
                                self.save(None).await?;
                                break;
                            }
                            RollbackStep::RollBack(prev) => {
                                self.submit_rollback(i, &p, &prev).await?
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }

    async fn submit_rollback(
        &mut self,
        i: usize,
        p: &PackageProgress,
        prev: &bmc::FirmwareComponent,
    ) -> Step<()> {
        if p.package.is_disruptive() {
            self.ensure_maintenance().await?;
        }
        self.wait_bmc_ready().await?;
        let intent = self.new_intent().await?;
        self.set_status(i, PackageStatus::RollbackSubmitting { intent });
        self.save(None).await?;
        match self.bounded(self.bmc.rollback(prev)).await? {
            Ok(Some(job)) => {
                self.set_status(i, PackageStatus::RollbackSubmitted { job: job.clone() });
                let ev = self.step_event(
                    format!("rollback of {} to {} submitted as {}", p.package.name, prev.version, job.id),
                    serde_json::json!({ "component": p.package.component_id, "job": job.id, "to": prev.version }),
                );
                self.save(Some(ev)).await
            }
            Ok(None) => self.verify_rolled_back(i, p).await,
            // It may have reached the BMC (a timeout): the journaled intent
            // makes the next attempt look for its job before sending again.
            Err(e) if e.is_transient() => Err(failed(
                format!("rollback of {} not taken yet: {e}", p.package.name),
                true,
            )),
            Err(e) => {
                let reason = format!("rollback of {} refused: {e}", p.package.name);
                self.record_error(Phase::Rollback, &reason, false);
                self.set_status(i, PackageStatus::RollbackFailed { reason });
                self.save(None).await
            }
        }
    }

    /// A crash between a rollback intent and its job id.
    async fn resolve_rollback_intent(
        &mut self,
        i: usize,
        p: &PackageProgress,
        intent: Intent,
    ) -> Step<()> {
        let start = p.package.installed_version.clone().unwrap_or_default();
        let mut probe = p.package.clone();
        probe.target_version = start.clone();
        let search = self.search_job(&probe, &intent, true).await?;
        let inv = self.inventory_when_back().await?;
        let now = installed_version(&inv, &probe);
        let evidence = serde_json::json!({
            "component": p.package.component_id, "rollbackTo": start,
            "installed": now, "search": search, "intent": intent,
        });
        match decide::adopt(&search, now.as_deref(), &start) {
            Adoption::Follow(job) => {
                self.set_status(i, PackageStatus::RollbackSubmitted { job });
                self.save(None).await
            }
            Adoption::AlreadyThere => self.verify_rolled_back(i, p).await,
            Adoption::Resubmit => {
                // Never reached the BMC: decide again from the inventory.
                self.set_status(
                    i,
                    PackageStatus::Failed {
                        reason: "rollback interrupted before the BMC took it".into(),
                    },
                );
                let ev = self.step_event(
                    format!(
                        "{}: the interrupted rollback never reached the BMC",
                        p.package.name
                    ),
                    evidence,
                );
                self.save(Some(ev)).await
            }
            Adoption::Park(reason) => Err(Flow::Attention { reason, evidence }),
        }
    }

    async fn follow_rollback(&mut self, i: usize, p: &PackageProgress, job: JobHandle) -> Step<()> {
        let deadline = Instant::now() + Duration::from_secs(self.policy().timeouts().install_secs);
        let mut rebooted = false;
        loop {
            match self.bounded(self.bmc.poll_job(&job)).await? {
                Ok(st) => match st.state {
                    BmcJobState::Completed => return self.verify_rolled_back(i, p).await,
                    BmcJobState::Missing => return self.verify_rolled_back(i, p).await,
                    BmcJobState::AwaitingReboot | BmcJobState::Scheduled if !rebooted => {
                        if !self.may_reboot() {
                            let reason = format!(
                                "rollback of {} is staged for the next reboot (the policy allows no reboot)",
                                p.package.name
                            );
                            self.record_error(Phase::Rollback, &reason, false);
                            self.set_status(i, PackageStatus::Staged { job });
                            return self.save(None).await;
                        }
                        rebooted = true;
                        self.ensure_maintenance().await?;
                        self.do_reboot(&job).await?;
                        self.wait_host_back().await?;
                    }
                    s if s.is_final() => {
                        let reason = format!("rollback job {} ended {s:?}", job.id);
                        self.record_error(Phase::Rollback, &reason, false);
                        self.set_status(i, PackageStatus::RollbackFailed { reason });
                        return self.save(None).await;
                    }
                    _ => {}
                },
                Err(e) if e.is_transient() => {
                    warn!(error = %e, "rollback poll failed; polling again")
                }
                Err(e) => return Err(e.into()),
            }
            if Instant::now() >= deadline {
                return Err(failed(
                    format!("rollback job {} did not finish in time", job.id),
                    true,
                ));
            }
            tokio::time::sleep(self.shared.config.job_poll_initial).await;
        }
    }

    /// A rollback succeeded only when the inventory shows the start version.
    async fn verify_rolled_back(&mut self, i: usize, p: &PackageProgress) -> Step<()> {
        let inv = self.inventory_when_back().await?;
        let now = installed_version(&inv, &p.package);
        let start = p.package.installed_version.as_deref().map(str::trim);
        if now.as_deref() == start {
            self.set_status(i, PackageStatus::RolledBack);
            let ev = self.step_event(
                format!("{} rolled back to {}", p.package.name, start.unwrap_or("?")),
                serde_json::json!({ "component": p.package.component_id }),
            );
            return self.save(Some(ev)).await;
        }
        let reason = format!(
            "after the rollback {} reads {}, not {}",
            p.package.name,
            now.unwrap_or_else(|| "unknown".into()),
            start.unwrap_or("?")
        );
        self.record_error(Phase::Rollback, &reason, false);
        self.set_status(i, PackageStatus::RollbackFailed { reason });
        self.save(None).await
    }

    /// The run cannot prove what the BMC did: leave maintenance mode (no
    /// reboot is ours to do now) and stop with the evidence.
    pub(super) async fn park(&mut self, reason: String, evidence: serde_json::Value) {
        warn!(%reason, "stopping for an operator");
        self.ctx.checkpoint.attention = Some(Attention {
            reason: reason.clone(),
            evidence: evidence.clone(),
            at: self.clock_now(),
        });
        match self.leave_maintenance().await {
            Err(Flow::LeaseLost) => return,
            Err(Flow::Failed { message, .. }) => {
                self.record_error(Phase::ExitMaintenance, &message, true)
            }
            _ => {}
        }
        self.end_with(RunState::NeedsAttention, Some(reason), Some(evidence))
            .await;
    }

    /// Journals the outcome, cleans up (maintenance mode, staged jobs), and
    /// ends the run. A resume in `finishing` comes straight here: the
    /// outcome is never decided twice.
    pub(super) async fn finish(&mut self, outcome: RunState, reason: Option<String>) {
        self.ctx.checkpoint.stage = Stage::Finishing {
            outcome,
            reason: reason.clone(),
        };
        // Journal the decided outcome before cleaning up, so a resume ends
        // the run the same way; a plain success needs no journal.
        if (self.ctx.checkpoint.needs_cleanup() || outcome != RunState::Completed)
            && self.save(None).await.is_err()
        {
            return;
        }
        let why = reason.clone().unwrap_or_else(|| outcome.to_string());
        let cleaned = match self.leave_maintenance().await {
            Ok(()) if outcome != RunState::Completed => self.delete_staged(&why).await,
            other => other,
        };
        match cleaned {
            Ok(()) => {}
            Err(Flow::Failed { message, .. }) => return self.cleanup_later(message).await,
            Err(_) => return,
        }
        self.end_with(outcome, reason, None).await;
    }

    /// Cleanup failed: try again later; after [`MAX_CLEANUP_TRIES`], park
    /// the run loudly (the host may still be in maintenance mode).
    async fn cleanup_later(&mut self, message: String) {
        self.record_error(Phase::ExitMaintenance, &message, true);
        let tries = self
            .ctx
            .results
            .errors
            .iter()
            .filter(|e| e.phase == Phase::ExitMaintenance)
            .count();
        if tries >= MAX_CLEANUP_TRIES {
            let what = if self.ctx.checkpoint.holds_maintenance() {
                "is still in maintenance mode"
            } else {
                "still holds staged jobs"
            };
            let msg = format!(
                "{} {what} after {tries} cleanup attempts: {message}",
                self.host.fqdn
            );
            let evidence = serde_json::json!({
                "maintenance": self.ctx.checkpoint.maintenance, "lastError": message,
            });
            self.ctx.checkpoint.attention = Some(Attention {
                reason: msg.clone(),
                evidence: evidence.clone(),
                at: self.clock_now(),
            });
            return self
                .end_with(RunState::NeedsAttention, Some(msg), Some(evidence))
                .await;
        }
        let at = self.clock_now() + chrono_dur(CLEANUP_RETRY);
        let mut t = Transition::to(RunState::Retrying, self.ctx.clone());
        t.retry_at = Some(at);
        t.error = Some(message);
        if let Ok(WriteOutcome::Applied) =
            self.shared.services.store.transition(&self.lease, t).await
        {
            self.emit(RunState::Retrying);
        }
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
                    PackageStatus::RollbackFailed { .. } => "rollback_failed",
                    _ => "not_installed",
                }
                .to_string(),
            })
            .collect();
    }

    /// The final transition, with its audit event.
    async fn end_with(
        &mut self,
        outcome: RunState,
        reason: Option<String>,
        evidence: Option<serde_json::Value>,
    ) {
        self.summarize_components();
        self.ctx.timing.end_time = Some(self.clock_now());
        self.ctx.results.update_duration = self
            .ctx
            .timing
            .start_time
            .map(|s| u64::try_from((self.clock_now() - s).num_seconds()).unwrap_or(0));
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
            RunState::NeedsAttention => (EventType::UpdateFailed, Severity::Critical),
            _ => (EventType::UpdateFailed, Severity::Error),
        };
        let mut details =
            serde_json::json!({ "from": "running", "to": outcome, "epoch": self.lease.epoch });
        if let (Some(ev), Some(obj)) = (evidence, details.as_object_mut()) {
            obj.insert("evidence".into(), ev);
        }
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
        .details(details);
        let mut t = Transition::to(outcome, self.ctx.clone());
        t.event = Some(ev);
        t.error = reason;
        t.count_failure = matches!(outcome, RunState::Failed | RunState::NeedsAttention);
        match self.shared.services.store.transition(&self.lease, t).await {
            Ok(WriteOutcome::Applied) => {
                info!(%outcome, "run finished");
                self.emit(outcome);
            }
            Ok(o) => warn!(?o, "final transition refused"),
            Err(e) => warn!(error = %e, "final transition failed; the run will be resumed"),
        }
    }

    pub(super) async fn release(&mut self) {
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
