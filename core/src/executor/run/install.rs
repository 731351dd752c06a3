//! The package steps: intent, submission, adoption of an interrupted
//! submission, job following, verification by inventory, and the batched
//! reboot that applies staged jobs.

use super::{Flow, RunDriver, Step, failed};
use crate::bmc::{
    self, ApplyTime, BmcJobState, Inventory, JobQuery, JobSearch, PowerState, Reads, ResetKind,
    UpdateOptions, UpdateStart,
};
use crate::executor::decide::{self, Adoption};
use crate::executor::poll::{JobPolls, ReadyPolls};
use crate::model::*;
use std::time::Duration;
use tokio::time::Instant;
use tracing::{info, warn};

impl RunDriver {
    pub(super) async fn install_all(&mut self) -> Step<()> {
        let n = self.ctx.checkpoint.packages.len();
        for i in 0..n {
            while let Some(status) = self
                .ctx
                .checkpoint
                .packages
                .get(i)
                .map(|p| p.status.clone())
            {
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
                    PackageStatus::Submitting { intent } => {
                        self.resolve_ambiguous(i, intent).await?
                    }
                    PackageStatus::Submitted { job, intent } => self.follow(i, job, intent).await?,
                    _ => break,
                }
            }
        }
        // A package journaled failed fails the run, also when the failure
        // was journaled by a holder that died before acting on it.
        if let Some(reason) = self
            .ctx
            .checkpoint
            .packages
            .iter()
            .find_map(|p| match &p.status {
                PackageStatus::Failed { reason } => Some(format!("{}: {reason}", p.package.name)),
                _ => None,
            })
        {
            return Err(failed(reason, false));
        }
        let awaiting: Vec<usize> = self
            .ctx
            .checkpoint
            .packages
            .iter()
            .enumerate()
            .filter(|(_, p)| matches!(p.status, PackageStatus::AwaitingReboot { .. }))
            .map(|(i, _)| i)
            .collect();
        if !awaiting.is_empty() {
            if self.may_reboot() {
                // Rebooting is disruptive: a cancel now deletes the staged jobs instead.
                self.safe_point()?;
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
                if let Some(p) = self.ctx.checkpoint.packages.get_mut(i)
                    && let PackageStatus::AwaitingReboot { job } = p.status.clone()
                {
                    p.status = PackageStatus::Staged { job };
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
                PackageStatus::Submitted { .. } | PackageStatus::Submitting { .. }
            )
        })
    }

    fn package(&self, i: usize) -> Step<Package> {
        self.ctx
            .checkpoint
            .packages
            .get(i)
            .map(|p| p.package.clone())
            .ok_or_else(|| failed(format!("checkpoint has no package #{i}"), false))
    }

    pub(super) fn set_status(&mut self, i: usize, status: PackageStatus) {
        if let Some(p) = self.ctx.checkpoint.packages.get_mut(i) {
            p.status = status;
        }
    }

    /// A new intent: a token, the time, and the BMC's job ids now (what a
    /// resume must never adopt). Taken before the effect; no side effect.
    pub(super) async fn new_intent(&mut self) -> Step<Intent> {
        let known = self.bounded(self.bmc.job_ids()).await??;
        if self.ctx.checkpoint.baseline_jobs.is_none() {
            self.ctx.checkpoint.baseline_jobs = Some(known.clone().unwrap_or_default());
        }
        Ok(Intent {
            token: uuid::Uuid::new_v4(),
            at: self.clock_now(),
            known_jobs: known,
        })
    }

    /// The jobs a search for `pkg` must not adopt: for a repository package,
    /// those before the run's first intent (one repository job of this run
    /// covers every package); else those before this package's intent.
    fn known_for<'a>(&'a self, pkg: &Package, intent: &'a Intent) -> Option<&'a [String]> {
        match pkg.source {
            PackageSource::Repository { .. } => self.ctx.checkpoint.baseline_jobs.as_deref(),
            _ => intent.known_jobs.as_deref(),
        }
    }

    /// Journal the intent, submit, record the job id.
    async fn submit(&mut self, i: usize) -> Step<()> {
        // A submission changes the BMC: nothing read before it carries on.
        self.reads = Reads::default();
        let pkg = self.package(i)?;
        if pkg.is_disruptive() {
            self.ensure_maintenance().await?;
        }
        self.wait_bmc_ready().await?;
        let intent = self.new_intent().await?;
        self.set_status(
            i,
            PackageStatus::Submitting {
                intent: Some(intent.clone()),
            },
        );
        self.set_phase(
            Phase::Download,
            format!("submitting {} {}", pkg.name, pkg.target_version),
        );
        self.save(None).await?;
        let opts = UpdateOptions {
            apply: if pkg.reboot_required && pkg.kind != ComponentKind::Bmc {
                ApplyTime::OnReset
            } else {
                ApplyTime::Immediate
            },
            force: self.policy().force(),
            known_jobs: self
                .ctx
                .checkpoint
                .baseline_jobs
                .clone()
                .unwrap_or_default(),
        };
        match self.bounded(self.bmc.start_update(&pkg, &opts)).await?? {
            UpdateStart::Submitted(job) => {
                self.set_status(
                    i,
                    PackageStatus::Submitted {
                        job: job.clone(),
                        intent: Some(intent),
                    },
                );
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
                self.set_status(
                    i,
                    PackageStatus::Skipped {
                        reason: "the BMC reports it already installed".into(),
                    },
                );
                self.save(None).await
            }
        }
    }

    /// Asks the BMC for the job of an interrupted intent, waiting through a
    /// restarting BMC rather than spending an attempt on it.
    /// `rollback`: the intent is a rollback's, whose baseline is its own
    /// (the forward job of the same component is older and never ours).
    pub(super) async fn search_job(
        &mut self,
        pkg: &Package,
        intent: &Intent,
        rollback: bool,
    ) -> Step<JobSearch> {
        let deadline = Instant::now() + Duration::from_secs(self.policy().timeouts().reboot_secs);
        loop {
            let query = JobQuery {
                package: pkg,
                since: intent.at,
                known_jobs: if rollback {
                    intent.known_jobs.as_deref()
                } else {
                    self.known_for(pkg, intent)
                },
            };
            match self.bounded(self.bmc.find_job(&query)).await? {
                Ok(j) => return Ok(j),
                Err(e) if e.is_transient() && Instant::now() < deadline => {
                    warn!(error = %e, "cannot ask the BMC for its jobs yet; waiting");
                    tokio::time::sleep(self.shared.config.ready_poll_interval).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// A crash between intent and job id: ask the BMC and the inventory,
    /// then follow, accept, resubmit or park (see [`decide::adopt`]).
    async fn resolve_ambiguous(&mut self, i: usize, intent: Option<Intent>) -> Step<()> {
        let pkg = self.package(i)?;
        // Older checkpoints carry no intent: nothing can tell old jobs from new.
        let search = match &intent {
            Some(intent) => self.search_job(&pkg, intent, false).await?,
            None => JobSearch::Unknowable {
                reason: "the intent has no identity (written by an older firmflow)".into(),
            },
        };
        let inv = self.inventory_when_back().await?;
        let now = installed_version(&inv, &pkg);
        let decision = decide::adopt(&search, now.as_deref(), &pkg.target_version);
        let evidence = serde_json::json!({
            "component": pkg.component_id,
            "target": pkg.target_version,
            "installed": now,
            "search": search,
            "intent": intent,
        });
        match decision {
            Adoption::Follow(job) => {
                info!(job = %job.id, "found the job of an interrupted submission");
                self.set_status(
                    i,
                    PackageStatus::Submitted {
                        job: job.clone(),
                        intent,
                    },
                );
                let ev = self.step_event(
                    format!("adopted job {} of an interrupted submission", job.id),
                    evidence,
                );
                self.save(Some(ev)).await
            }
            Adoption::AlreadyThere => {
                self.set_status(
                    i,
                    PackageStatus::Installed {
                        version: pkg.target_version.clone(),
                    },
                );
                let ev = self.step_event(
                    format!(
                        "{} found at {} after an interrupted submission",
                        pkg.name, pkg.target_version
                    ),
                    evidence,
                );
                self.save(Some(ev)).await
            }
            Adoption::Resubmit => {
                // The BMC lists its jobs and has none of ours: it never took it.
                self.set_status(i, PackageStatus::Pending);
                let ev = self.step_event(
                    format!(
                        "{}: the interrupted submission never reached the BMC",
                        pkg.name
                    ),
                    evidence,
                );
                self.save(Some(ev)).await
            }
            Adoption::Park(reason) => Err(Flow::Attention { reason, evidence }),
        }
    }

    /// Polls a job to a resting state (installed, awaiting reboot) or failure.
    async fn follow(&mut self, i: usize, job: JobHandle, intent: Option<Intent>) -> Step<()> {
        let pkg = self.package(i)?;
        let deadline = Instant::now() + Duration::from_secs(self.policy().timeouts().install_secs);
        let mut polls = JobPolls::new(
            self.shared.config.job_poll_initial,
            self.shared.config.job_poll_max,
        );
        let mut last_percent = None;
        loop {
            // The job's progress this poll, which spaces the next.
            let mut seen = None;
            self.guard()?;
            if self.shutting_down() {
                // The job id is recorded: whoever resumes polls it.
                return Err(Flow::Shutdown);
            }
            match self.bounded(self.bmc.poll_job(&job)).await? {
                Ok(st) => match st.state {
                    BmcJobState::Completed => return self.verify_installed(i, &pkg).await,
                    BmcJobState::CompletedWithErrors => {
                        let inv = self.inventory_when_back().await?;
                        if installed_version(&inv, &pkg).as_deref()
                            == Some(pkg.target_version.trim())
                        {
                            warn!(job = %job.id, "job completed with errors, but the target version is installed");
                            return self.verify_installed(i, &pkg).await;
                        }
                        return self.job_ended_badly(i, &pkg, &job, &st).await;
                    }
                    BmcJobState::Failed
                    | BmcJobState::UserIntervention
                    | BmcJobState::Cancelled => {
                        return self.job_ended_badly(i, &pkg, &job, &st).await;
                    }
                    BmcJobState::Missing => {
                        let inv = self.inventory_when_back().await?;
                        if installed_version(&inv, &pkg).as_deref()
                            == Some(pkg.target_version.trim())
                        {
                            return self.verify_installed(i, &pkg).await;
                        }
                        // Purged or lost in a BMC restart before it finished:
                        // the next attempt searches again under the same intent.
                        self.set_status(i, PackageStatus::Submitting { intent });
                        self.save(None).await?;
                        return Err(failed(
                            format!("{}: BMC no longer knows job {}", pkg.name, job.id),
                            true,
                        ));
                    }
                    BmcJobState::AwaitingReboot => {
                        self.set_status(i, PackageStatus::AwaitingReboot { job: job.clone() });
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
                            BmcJobState::Downloading | BmcJobState::New | BmcJobState::Scheduled
                        ) {
                            Phase::Download
                        } else {
                            Phase::Install
                        };
                        seen = st.percent;
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
                },
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
            // A graceful shutdown does not wait out the pause (up to 45 s):
            // the loop's top records nothing new and hands the job over.
            let pause = polls.next(Instant::now(), seen);
            let mut shutdown = self.shutdown.clone();
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.wait_for(|stop| *stop) => {}
            }
        }
    }

    /// A job that ended without installing: journaled as failed (it is no
    /// longer in flight), then the run fails.
    async fn job_ended_badly(
        &mut self,
        i: usize,
        pkg: &Package,
        job: &JobHandle,
        st: &bmc::JobStatus,
    ) -> Step<()> {
        let flow = job_failed(pkg, job, st);
        if let Flow::Failed { message, .. } = &flow {
            self.set_status(
                i,
                PackageStatus::Failed {
                    reason: message.clone(),
                },
            );
        }
        self.save(None).await?;
        Err(flow)
    }

    /// Success only after reading the inventory back.
    async fn verify_installed(&mut self, i: usize, pkg: &Package) -> Step<()> {
        self.set_phase(Phase::Verify, format!("verifying {}", pkg.name));
        let inv = self.inventory_when_back().await?;
        let have = installed_version(&inv, pkg);
        if have.as_deref() != Some(pkg.target_version.trim()) {
            let have = have.unwrap_or_else(|| "unknown".into());
            self.set_status(
                i,
                PackageStatus::Failed {
                    reason: format!(
                        "installed version is {have}, expected {}",
                        pkg.target_version
                    ),
                },
            );
            self.save(None).await?;
            return Err(failed(
                format!(
                    "{}: the BMC reported success but the installed version is {have}, expected {}",
                    pkg.name, pkg.target_version
                ),
                false,
            ));
        }
        self.set_status(
            i,
            PackageStatus::Installed {
                version: pkg.target_version.clone(),
            },
        );
        self.ctx.results.firmware_version = Some(pkg.target_version.clone());
        // The validation that follows the last package reads this same
        // inventory, not the BMC again.
        self.reads = Reads {
            inventory: Some(inv),
            ..Reads::default()
        };
        let ev = self.step_event(
            format!("{} now at {}", pkg.name, pkg.target_version),
            serde_json::json!({ "component": pkg.component_id, "version": pkg.target_version }),
        );
        self.save(Some(ev)).await
    }

    /// Reads the inventory, waiting through a BMC restart (iDRAC updates
    /// restart the iDRAC).
    pub(super) async fn inventory_when_back(&mut self) -> Step<Inventory> {
        let deadline = Instant::now() + Duration::from_secs(self.policy().timeouts().reboot_secs);
        loop {
            match self.bounded(self.bmc.inventory()).await? {
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
    pub(super) async fn wait_bmc_ready(&mut self) -> Step<()> {
        let deadline = Instant::now() + Duration::from_secs(self.policy().timeouts().reboot_secs);
        // What the last read said, so the failure names why it was not ready.
        let mut last;
        loop {
            match self.bounded(self.bmc.readiness()).await? {
                Ok(r) if r.ready => return Ok(()),
                Ok(r) => last = r.detail.unwrap_or_default(),
                Err(e) if e.is_transient() => {
                    warn!(error = %e, "readiness unknown");
                    last = e.to_string();
                }
                Err(e) => return Err(e.into()),
            }
            if Instant::now() >= deadline {
                let why = if last.is_empty() {
                    String::new()
                } else {
                    format!(" (last read: {last})")
                };
                return Err(failed(
                    format!("the BMC did not become ready for updates{why}"),
                    true,
                ));
            }
            tokio::time::sleep(self.shared.config.ready_poll_interval).await;
        }
    }

    /// Reboots (graceful, forced after the timeout when the policy allows),
    /// waits for the host to be back and stable, then follows staged jobs.
    pub(super) async fn reboot_and_settle(&mut self) -> Step<()> {
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
            let st = self.bounded(self.bmc.poll_job(&probe)).await?;
            let still_staged = matches!(
                st.as_ref().map(|s| &s.state),
                Ok(BmcJobState::AwaitingReboot) | Ok(BmcJobState::Scheduled)
            );
            if still_staged {
                // Not rebooted yet: a cancel now deletes the staged jobs instead.
                self.safe_point()?;
                if self.ctx.checkpoint.reboots > 3 {
                    return Err(failed(
                        "staged updates did not start after 3 reboots",
                        false,
                    ));
                }
                self.ensure_maintenance().await?;
                self.do_reboot(&probe).await?;
            }
        }
        self.wait_host_back().await?;
        for (i, job) in awaiting {
            self.set_status(i, PackageStatus::Submitted { job, intent: None });
        }
        // Not checkpointed: a resume in `Rebooting` finds the jobs no longer
        // staged, skips the reboot and waits for the host as done here.
        self.ctx.checkpoint.stage = Stage::Installing;
        self.set_phase(Phase::Install, "host back; following staged jobs");
        self.emit(RunState::Running);
        Ok(())
    }

    /// Restarts the host the way the policy says: graceful, forced after the
    /// graceful timeout when allowed, or forced at once. `probe` is a staged
    /// job whose leaving its waiting state shows the restart took.
    pub(super) async fn do_reboot(&mut self, probe: &JobHandle) -> Step<()> {
        let kind = self.policy().reboot_type();
        let first = match kind {
            RebootType::Forced => ResetKind::ForceRestart,
            _ => ResetKind::GracefulRestart,
        };
        self.bounded(self.bmc.reset(first)).await??;
        if first == ResetKind::ForceRestart {
            return Ok(());
        }
        // Did the graceful restart take? The staged job leaves its waiting
        // state or the power drops once the host goes down.
        let deadline =
            Instant::now() + Duration::from_secs(self.policy().timeouts().graceful_shutdown_secs);
        loop {
            tokio::time::sleep(self.shared.config.ready_poll_interval).await;
            let job_moved = matches!(
                self.bounded(self.bmc.poll_job(probe)).await?.map(|s| s.state),
                Ok(s) if s != BmcJobState::AwaitingReboot && s != BmcJobState::Scheduled
            );
            let power_dropped = matches!(
                self.bounded(self.bmc.power()).await?,
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
        self.bounded(self.bmc.reset(ResetKind::ForceRestart))
            .await??;
        Ok(())
    }

    /// Host on and BMC ready on N consecutive reads.
    pub(super) async fn wait_host_back(&mut self) -> Step<()> {
        self.set_phase(Phase::WaitReady, "waiting for the host to come back");
        self.emit(RunState::Running);
        let need = self.shared.config.ready_stable_reads.max(1);
        let deadline = Instant::now() + Duration::from_secs(self.policy().timeouts().reboot_secs);
        let mut polls = ReadyPolls::new(
            self.shared.config.ready_poll_interval,
            self.shared.config.ready_poll_max,
        );
        let mut good = 0;
        loop {
            if self.shutting_down() {
                return Err(Flow::Shutdown);
            }
            match self.bounded(self.bmc.readiness()).await? {
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
            // A graceful shutdown does not wait out the pause: the loop's
            // top hands the run over.
            let pause = polls.next(good > 0);
            let mut shutdown = self.shutdown.clone();
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.wait_for(|stop| *stop) => {}
            }
        }
    }
}

pub(super) fn installed_version(inv: &Inventory, pkg: &Package) -> Option<String> {
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
