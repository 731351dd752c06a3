//! Host runs: the durable per-host state machine (`host_runs` in the seed),
//! its context document (`ctx`) and the checkpoint inside it, and leases.

use super::ids::{HostId, PlanId, RunId, WorkerId};
use super::package::{JobHandle, Package};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// The seed's six run states, plus `needs_attention`: a run that stopped
/// because it could not prove what the BMC did, and will not guess.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    /// Queued for execution.
    Pending,
    /// Held by a worker under a lease.
    Running,
    /// Finished successfully.
    Completed,
    /// Finished with an error.
    Failed,
    /// Cancelled by an operator.
    Cancelled,
    /// Waiting for its next attempt (`run_at`), or released at a safe point.
    Retrying,
    /// Stopped on ambiguous evidence (the BMC cannot say whether an update of
    /// ours reached it); `ctx.checkpoint.attention` holds the evidence. Final:
    /// an operator decides, firmflow never resubmits blindly.
    #[serde(rename = "needs_attention")]
    NeedsAttention,
}

impl RunState {
    /// Stored text form.
    pub fn as_str(&self) -> &'static str {
        match self {
            RunState::Pending => "pending",
            RunState::Running => "running",
            RunState::Completed => "completed",
            RunState::Failed => "failed",
            RunState::Cancelled => "cancelled",
            RunState::Retrying => "retrying",
            RunState::NeedsAttention => "needs_attention",
        }
    }
    /// Parses the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => RunState::Pending,
            "running" => RunState::Running,
            "completed" => RunState::Completed,
            "failed" => RunState::Failed,
            "cancelled" => RunState::Cancelled,
            "retrying" => RunState::Retrying,
            "needs_attention" => RunState::NeedsAttention,
            _ => return None,
        })
    }
    /// Whether the run is over.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            RunState::Completed | RunState::Failed | RunState::Cancelled | RunState::NeedsAttention
        )
    }
    /// Whether the run waits to be claimed.
    pub fn is_runnable(&self) -> bool {
        matches!(self, RunState::Pending | RunState::Retrying)
    }
}

impl fmt::Display for RunState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a run is, for people (`ctx.progress.phase`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Not started.
    #[default]
    Queued,
    /// Preflight checks.
    Preflight,
    /// Reading the inventory and choosing packages.
    Resolve,
    /// Entering maintenance mode.
    EnterMaintenance,
    /// The BMC downloads a package.
    Download,
    /// The BMC installs a package.
    Install,
    /// Rebooting the host.
    Reboot,
    /// Waiting for the host and BMC to be ready.
    WaitReady,
    /// Verifying installed versions.
    Verify,
    /// Post-update validation.
    PostValidation,
    /// Leaving maintenance mode.
    ExitMaintenance,
    /// Rolling installed components back.
    Rollback,
    /// Finished.
    Done,
}

impl Phase {
    /// Stable name (as serialised).
    pub fn as_str(&self) -> &'static str {
        match self {
            Phase::Queued => "queued",
            Phase::Preflight => "preflight",
            Phase::Resolve => "resolve",
            Phase::EnterMaintenance => "enter_maintenance",
            Phase::Download => "download",
            Phase::Install => "install",
            Phase::Reboot => "reboot",
            Phase::WaitReady => "wait_ready",
            Phase::Verify => "verify",
            Phase::PostValidation => "post_validation",
            Phase::ExitMaintenance => "exit_maintenance",
            Phase::Rollback => "rollback",
            Phase::Done => "done",
        }
    }
}

/// `ctx.progress`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// Current phase.
    #[serde(default)]
    pub phase: Phase,
    /// 0–100 for the whole run.
    #[serde(default)]
    pub percentage: u8,
    /// What is going on, for people.
    #[serde(default)]
    pub message: String,
}

/// One error met by a run (`ctx.results.errors[]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunErrorRecord {
    /// Phase it happened in.
    pub phase: Phase,
    /// `transient`, `terminal`, …
    pub class: String,
    /// The message, with the BMC's own words where there were some.
    pub message: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// What was installed on one component (`ctx.results.components[]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentResult {
    /// Component id.
    pub component_id: String,
    /// Name.
    pub name: String,
    /// Version before.
    pub from_version: Option<String>,
    /// Version after (read back from the BMC).
    pub to_version: Option<String>,
    /// `installed`, `skipped`, `staged`, `failed`, `rolled_back`.
    pub outcome: String,
}

/// `ctx.results`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct RunResults {
    /// Main version installed (the seed's single-package view).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware_version: Option<String>,
    /// Seconds the updates took.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_duration: Option<u64>,
    /// Whether a reboot was needed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reboot_required: Option<bool>,
    /// Errors met, in order.
    #[serde(default)]
    pub errors: Vec<RunErrorRecord>,
    /// Per component outcome.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<ComponentResult>,
}

impl RunResults {
    fn is_empty(&self) -> bool {
        self == &RunResults::default()
    }
}

/// `ctx.timing`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Timing {
    /// Run start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<DateTime<Utc>>,
    /// Run end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<DateTime<Utc>>,
    /// Seconds spent per phase.
    #[serde(default)]
    pub phases: BTreeMap<String, u64>,
}

impl Timing {
    fn is_empty(&self) -> bool {
        self == &Timing::default()
    }
}

/// A journaled intent: written before an effect with an outside consequence
/// (a submission, a rollback), so that whoever resumes the run can tell the
/// BMC's jobs created after it from older ones.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Intent {
    /// Unique per intent.
    pub token: uuid::Uuid,
    /// When it was written (firmflow's clock).
    pub at: DateTime<Utc>,
    /// The BMC's job ids just before the intent (`None`: the BMC has no job
    /// listing).
    #[serde(default)]
    pub known_jobs: Option<Vec<String>>,
}

/// Why a run stopped for an operator, with what it saw.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attention {
    /// What could not be decided.
    pub reason: String,
    /// What the run saw (job search answer, versions, intent).
    pub evidence: serde_json::Value,
    /// When.
    pub at: DateTime<Utc>,
}

/// Progress of one package inside a run. Each status is written *before* the
/// side effect it announces (journal before act), so a resumed run knows
/// whether a submission may already have happened.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum PackageStatus {
    /// Nothing done yet.
    Pending,
    /// About to submit: the BMC may or may not have a job for it. A resume
    /// must look at the BMC's jobs and versions before submitting again.
    Submitting {
        /// The intent (absent in checkpoints written before intents had an
        /// identity: such a resume cannot tell old jobs from new ones).
        #[serde(default)]
        intent: Option<Intent>,
    },
    /// The BMC accepted it as this job.
    Submitted {
        /// The BMC job.
        job: JobHandle,
        /// The intent it was submitted under, kept so that a job the BMC
        /// loses (purged task, BMC restart) is searched for again with the
        /// same baseline rather than resubmitted blindly.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        intent: Option<Intent>,
    },
    /// The job is staged and waits for a host reboot.
    AwaitingReboot {
        /// The BMC job.
        job: JobHandle,
    },
    /// Installed and verified.
    Installed {
        /// Version read back from the BMC.
        version: String,
    },
    /// Not installed, on purpose (already at target, no-op success).
    Skipped {
        /// Why.
        reason: String,
    },
    /// Staged for the next reboot that someone else will do
    /// (`allowDowntime=false` without maintenance mode).
    Staged {
        /// The BMC job.
        job: JobHandle,
    },
    /// The install failed.
    Failed {
        /// Why.
        reason: String,
    },
    /// About to ask the BMC to roll this component back to the version it
    /// had when the run started.
    RollbackSubmitting {
        /// The intent.
        intent: Intent,
    },
    /// The BMC took the rollback as this job.
    RollbackSubmitted {
        /// The BMC job.
        job: JobHandle,
    },
    /// Rolled back to the previous image after a failure.
    RolledBack,
    /// A rollback was needed and could not be done (no previous image, the
    /// previous image is not the start version, the rollback job failed).
    RollbackFailed {
        /// Why.
        reason: String,
    },
}

impl PackageStatus {
    /// A submission without an intent identity (older checkpoints).
    pub fn submitting() -> Self {
        PackageStatus::Submitting { intent: None }
    }
    /// Whether the BMC may be working on (or holding staged) a job of ours
    /// for this package: such a run must be resolved by a leased worker,
    /// never finalised by the store.
    pub fn in_flight(&self) -> bool {
        matches!(
            self,
            PackageStatus::Submitting { .. }
                | PackageStatus::Submitted { .. }
                | PackageStatus::AwaitingReboot { .. }
                | PackageStatus::RollbackSubmitting { .. }
                | PackageStatus::RollbackSubmitted { .. }
        )
    }
}

/// One package and how far it got.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PackageProgress {
    /// The package.
    pub package: Package,
    /// Its status.
    #[serde(flatten)]
    pub status: PackageStatus,
}

/// Where the run stands on the cluster side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum MaintenanceState {
    /// Never asked for.
    #[default]
    NotEntered,
    /// Asked vCenter to enter; it may or may not have happened.
    Entering,
    /// In maintenance mode because this run put it there.
    EnteredByUs,
    /// Asked vCenter to exit.
    Exiting,
    /// Left again.
    Exited,
}

/// The run's big steps; each is checkpointed before its side effects.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "stage", rename_all = "snake_case")]
pub enum Stage {
    /// Nothing done.
    #[default]
    New,
    /// Preflight checks passed.
    Preflighted,
    /// Packages chosen (see `packages`); installing them.
    Installing,
    /// A host reboot was (about to be) requested for the staged jobs.
    Rebooting {
        /// When the reboot was requested.
        requested_at: DateTime<Utc>,
    },
    /// Every package is final; verifying and validating.
    Validating,
    /// Rolling back after a failure (or a cancel).
    RollingBack {
        /// Why the run failed.
        reason: String,
        /// The rollback follows a cancel: the run ends `cancelled`.
        #[serde(default)]
        cancelled: bool,
    },
    /// Leaving maintenance mode before the final state.
    Finishing {
        /// The state the run ends in.
        outcome: RunState,
        /// Why (for failed / cancelled).
        reason: Option<String>,
    },
}

/// The checkpoint firmflow adds to the seed's `ctx`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Checkpoint {
    /// Big step.
    #[serde(default)]
    pub stage: Stage,
    /// Packages chosen at resolve time, with their progress.
    #[serde(default)]
    pub packages: Vec<PackageProgress>,
    /// Maintenance mode as done by this run.
    #[serde(default)]
    pub maintenance: MaintenanceState,
    /// Whether the host's power was reset by this run and not yet seen back.
    #[serde(default)]
    pub reboots: u32,
    /// The BMC's job ids before this run's first submission (what a driver
    /// may never follow as this run's, e.g. an old repository job).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_jobs: Option<Vec<String>>,
    /// Why the run stopped for an operator, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention: Option<Attention>,
}

impl Checkpoint {
    fn is_empty(&self) -> bool {
        self == &Checkpoint::default()
    }
    /// Whether this run may hold the host in maintenance mode.
    pub fn holds_maintenance(&self) -> bool {
        matches!(
            self.maintenance,
            MaintenanceState::Entering | MaintenanceState::EnteredByUs | MaintenanceState::Exiting
        )
    }
    /// The cleanup rule: a run that may hold maintenance mode or have a job
    /// of ours on the BMC (in flight or staged) is never finalised by the
    /// store; a leased worker exits maintenance mode, settles or deletes the
    /// jobs, then ends it.
    pub fn needs_cleanup(&self) -> bool {
        self.holds_maintenance() || self.packages.iter().any(|p| p.status.in_flight())
    }
}

/// The run context document (`host_runs.ctx`): the seed's shape plus the
/// checkpoint. Unknown top-level keys are preserved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct RunCtx {
    /// `progress`.
    #[serde(default)]
    pub progress: Progress,
    /// `results`.
    #[serde(default, skip_serializing_if = "RunResults::is_empty")]
    pub results: RunResults,
    /// `timing`.
    #[serde(default, skip_serializing_if = "Timing::is_empty")]
    pub timing: Timing,
    /// firmflow's checkpoint.
    #[serde(default, skip_serializing_if = "Checkpoint::is_empty")]
    pub checkpoint: Checkpoint,
    /// Other keys, kept.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// Proof that the holder may write one running host run: the run's lease
/// owner and fencing epoch at claim time. Every write carries it; a write
/// with an older epoch changes nothing.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Lease {
    /// The run.
    pub run_id: RunId,
    /// Who holds it.
    pub owner: WorkerId,
    /// Fencing token, +1 per claim.
    pub epoch: u64,
}

/// A stored host run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HostRun {
    /// Identity.
    pub id: RunId,
    /// Plan.
    pub plan_id: PlanId,
    /// Host.
    pub host_id: HostId,
    /// State.
    pub state: RunState,
    /// Context document.
    pub ctx: RunCtx,
    /// Failures consumed.
    pub attempts: u32,
    /// Failures allowed.
    pub max_attempts: u32,
    /// Reclaims after lost leases.
    pub resumes: u32,
    /// Higher first.
    pub priority: i32,
    /// Not before.
    pub run_at: DateTime<Utc>,
    /// Lease holder, while running.
    pub lease_owner: Option<WorkerId>,
    /// Fencing epoch (+1 per claim).
    pub lease_epoch: u64,
    /// Lease expiry, while running.
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// An operator asked to cancel.
    pub cancel_requested: bool,
    /// Last error, if any.
    pub last_error: Option<String>,
    /// First claim.
    pub started_at: Option<DateTime<Utc>>,
    /// Final state reached.
    pub completed_at: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last change of state or ctx.
    pub updated_at: DateTime<Utc>,
}
