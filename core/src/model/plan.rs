//! Update plans (campaigns), their policy, targets, artifacts and windows: the
//! seed's `update_plans`, `plan_targets` and `artifacts`.
//!
//! [`Policy`] serialises to exactly the seed's policy JSON; firmflow's own
//! additions are optional keys that are omitted when unset, so a seed policy
//! round-trips byte for byte (modulo key order).

use super::ids::{ArtifactId, HostId, PlanId, UserId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// What a plan installs and how (`updateMode`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum UpdateMode {
    /// Bring every component to what a Dell catalog offers.
    LatestFromCatalog,
    /// Install the plan's artifacts, fetched by the BMC from their URIs.
    SpecificPackage,
    /// Upload a local package to the BMC (multipart push).
    MultipartFile,
    /// An unknown mode, kept so that validation can name it.
    Unknown(String),
}

impl UpdateMode {
    /// The policy JSON spelling.
    pub fn as_str(&self) -> &str {
        match self {
            UpdateMode::LatestFromCatalog => "LATEST_FROM_CATALOG",
            UpdateMode::SpecificPackage => "SPECIFIC_PACKAGE",
            UpdateMode::MultipartFile => "MULTIPART_FILE",
            UpdateMode::Unknown(s) => s,
        }
    }
}

impl Serialize for UpdateMode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for UpdateMode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(match s.as_str() {
            "LATEST_FROM_CATALOG" => UpdateMode::LatestFromCatalog,
            "SPECIFIC_PACKAGE" => UpdateMode::SpecificPackage,
            "MULTIPART_FILE" => UpdateMode::MultipartFile,
            _ => UpdateMode::Unknown(s),
        })
    }
}

impl fmt::Display for UpdateMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a host is rebooted when a package needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RebootType {
    /// Ask the OS to restart; force it off and on when it has not after the timeout.
    #[default]
    GracefulWithForcedFallback,
    /// Ask the OS to restart and wait, never forcing.
    Graceful,
    /// Power-cycle at once.
    Forced,
}

/// How many host failures a plan tolerates before it stops admitting hosts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FailureBudget {
    /// Stop after this many failed hosts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_failures: Option<u32>,
    /// Stop once this percentage (0–100) of the plan's hosts has failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_failure_percent: Option<f64>,
}

impl FailureBudget {
    /// Whether `failed` failures out of `total` hosts exhaust the budget.
    pub fn exhausted(&self, failed: u32, total: u32) -> bool {
        if let Some(max) = self.max_failures
            && failed >= max
        {
            return true;
        }
        if let Some(pct) = self.max_failure_percent
            && total > 0
            && f64::from(failed) * 100.0 / f64::from(total) >= pct
            && failed > 0
        {
            return true;
        }
        false
    }
}

/// Retry with exponential backoff for transient failures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetrySettings {
    /// Attempts in all, the first included (seed default 3).
    #[serde(default = "RetrySettings::default_max_attempts")]
    pub max_attempts: u32,
    /// First backoff, seconds.
    #[serde(default = "RetrySettings::default_initial")]
    pub initial_backoff_secs: u64,
    /// Growth factor per attempt.
    #[serde(default = "RetrySettings::default_multiplier")]
    pub multiplier: f64,
    /// Backoff cap, seconds.
    #[serde(default = "RetrySettings::default_max_backoff")]
    pub max_backoff_secs: u64,
    /// Relative jitter (0.1 = ±10 %).
    #[serde(default = "RetrySettings::default_jitter")]
    pub jitter: f64,
}

impl RetrySettings {
    fn default_max_attempts() -> u32 {
        3
    }
    fn default_initial() -> u64 {
        120
    }
    fn default_multiplier() -> f64 {
        2.0
    }
    fn default_max_backoff() -> u64 {
        1800
    }
    fn default_jitter() -> f64 {
        0.1
    }
}

impl Default for RetrySettings {
    fn default() -> Self {
        Self {
            max_attempts: Self::default_max_attempts(),
            initial_backoff_secs: Self::default_initial(),
            multiplier: Self::default_multiplier(),
            max_backoff_secs: Self::default_max_backoff(),
            jitter: Self::default_jitter(),
        }
    }
}

/// Per-phase time limits, seconds. Dell updates take 10–15 minutes and a
/// reboot with POST and Lifecycle Controller several more, hence the defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PhaseTimeouts {
    /// All preflight checks together.
    #[serde(default = "PhaseTimeouts::d_preflight")]
    pub preflight_secs: u64,
    /// Entering maintenance mode (VM evacuation).
    #[serde(default = "PhaseTimeouts::d_maintenance")]
    pub maintenance_secs: u64,
    /// One package: download and install, until the job is final.
    #[serde(default = "PhaseTimeouts::d_install")]
    pub install_secs: u64,
    /// A graceful shutdown before a forced one.
    #[serde(default = "PhaseTimeouts::d_graceful")]
    pub graceful_shutdown_secs: u64,
    /// Reboot until the host and its Lifecycle Controller are ready again.
    #[serde(default = "PhaseTimeouts::d_reboot")]
    pub reboot_secs: u64,
    /// All post-update validations together.
    #[serde(default = "PhaseTimeouts::d_validate")]
    pub validation_secs: u64,
}

impl PhaseTimeouts {
    fn d_preflight() -> u64 {
        300
    }
    fn d_maintenance() -> u64 {
        3600
    }
    fn d_install() -> u64 {
        3600
    }
    fn d_graceful() -> u64 {
        600
    }
    fn d_reboot() -> u64 {
        2400
    }
    fn d_validate() -> u64 {
        600
    }
}

impl Default for PhaseTimeouts {
    fn default() -> Self {
        Self {
            preflight_secs: Self::d_preflight(),
            maintenance_secs: Self::d_maintenance(),
            install_secs: Self::d_install(),
            graceful_shutdown_secs: Self::d_graceful(),
            reboot_secs: Self::d_reboot(),
            validation_secs: Self::d_validate(),
        }
    }
}

/// The names of the seed's preflight checks and post-update validations.
/// Custom checks registered with the executor may use other names.
pub mod check_names {
    /// BMC reachable and logged in.
    pub const CONNECTIVITY: &str = "connectivity";
    /// Packages fit the host (system id, component present).
    pub const COMPATIBILITY: &str = "compatibility";
    /// The host's cluster is healthy enough to lose a host.
    pub const CLUSTER_HEALTH: &str = "cluster_health";
    /// The installed versions are the targets.
    pub const FIRMWARE_VERSION: &str = "firmware_version";
    /// The system reports OK health.
    pub const SYSTEM_HEALTH: &str = "system_health";
    /// The host answers on the network again.
    pub const NETWORK_CONNECTIVITY: &str = "network_connectivity";
    /// The seed's preflight names.
    pub const PREFLIGHT: [&str; 3] = [CONNECTIVITY, COMPATIBILITY, CLUSTER_HEALTH];
    /// The seed's validation names.
    pub const VALIDATION: [&str; 3] = [FIRMWARE_VERSION, SYSTEM_HEALTH, NETWORK_CONNECTIVITY];
}

/// A plan's policy, in the seed's JSON shape (`update_plans.policy`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    /// What to install and how.
    pub update_mode: UpdateMode,
    /// Catalog location for `LATEST_FROM_CATALOG`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog_url: Option<String>,
    /// Host runs of this plan in flight at once.
    #[serde(default = "one")]
    pub max_concurrent: u32,
    /// Hosts of each cluster that must stay connected and out of maintenance.
    #[serde(default = "one")]
    pub min_hosts_online: u32,
    /// Put ESXi hosts in maintenance mode before a disruptive step.
    #[serde(default = "yes")]
    pub require_maintenance_mode: bool,
    /// Whether the host may be rebooted outside maintenance mode.
    #[serde(default)]
    pub allow_downtime: bool,
    /// Roll installed components back when a run fails.
    #[serde(default)]
    pub rollback_on_failure: bool,
    /// Checks before anything changes.
    #[serde(default)]
    pub preflight_checks: Vec<String>,
    /// Checks after the updates.
    #[serde(default)]
    pub post_update_validation: Vec<String>,

    // ---- firmflow additions: all optional, omitted when unset ----
    /// Stop admitting hosts after too many failures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_budget: Option<FailureBudget>,
    /// Retry/backoff for transient failures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetrySettings>,
    /// Per-phase timeouts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeouts: Option<PhaseTimeouts>,
    /// How to reboot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reboot_type: Option<RebootType>,
    /// Reinstall a component already at the target version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force: Option<bool>,
    /// Allow installing an older version than the one installed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_downgrade: Option<bool>,
    /// Expected duration of one host run, seconds; a run is not started when
    /// it would not finish before the maintenance window closes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_host_duration_secs: Option<u64>,
    /// Reclaims after a lost lease before the run is failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_resumes: Option<u32>,

    /// Keys this version does not know; validation refuses them (usually a
    /// typo), and they are kept so nothing read from a store is lost.
    #[serde(flatten)]
    pub unknown: BTreeMap<String, Value>,
}

fn one() -> u32 {
    1
}
fn yes() -> bool {
    true
}

impl Policy {
    /// A policy with the seed's defaults for `mode`.
    pub fn new(mode: UpdateMode) -> Self {
        Self {
            update_mode: mode,
            catalog_url: None,
            max_concurrent: 1,
            min_hosts_online: 1,
            require_maintenance_mode: true,
            allow_downtime: false,
            rollback_on_failure: false,
            preflight_checks: Vec::new(),
            post_update_validation: Vec::new(),
            failure_budget: None,
            retry: None,
            timeouts: None,
            reboot_type: None,
            force: None,
            allow_downgrade: None,
            expected_host_duration_secs: None,
            max_resumes: None,
            unknown: BTreeMap::new(),
        }
    }

    /// Effective retry settings.
    pub fn retry(&self) -> RetrySettings {
        self.retry.clone().unwrap_or_default()
    }
    /// Effective timeouts.
    pub fn timeouts(&self) -> PhaseTimeouts {
        self.timeouts.clone().unwrap_or_default()
    }
    /// Effective reboot type.
    pub fn reboot_type(&self) -> RebootType {
        self.reboot_type.unwrap_or_default()
    }
    /// Whether reinstalling the same version is wanted.
    pub fn force(&self) -> bool {
        self.force.unwrap_or(false)
    }
    /// Whether downgrades are allowed.
    pub fn allow_downgrade(&self) -> bool {
        self.allow_downgrade.unwrap_or(false)
    }
    /// Expected duration of one host run (default 45 minutes).
    pub fn expected_host_duration(&self) -> Duration {
        Duration::from_secs(self.expected_host_duration_secs.unwrap_or(45 * 60))
    }
    /// Resume cap (default 5).
    pub fn max_resumes(&self) -> u32 {
        self.max_resumes.unwrap_or(5)
    }
}

/// A plan's lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlanStatus {
    /// Being written; nothing runs.
    Draft,
    /// Approved by someone allowed to; may be started.
    Approved,
    /// Admitting and running hosts.
    Running,
    /// No new host starts; hosts in flight finish.
    Paused,
    /// Every run finished and none failed.
    Completed,
    /// Finished with failures, or stopped by the failure budget.
    Failed,
    /// Cancelled by an operator.
    Cancelled,
}

impl PlanStatus {
    /// Stored text form.
    pub fn as_str(&self) -> &'static str {
        match self {
            PlanStatus::Draft => "draft",
            PlanStatus::Approved => "approved",
            PlanStatus::Running => "running",
            PlanStatus::Paused => "paused",
            PlanStatus::Completed => "completed",
            PlanStatus::Failed => "failed",
            PlanStatus::Cancelled => "cancelled",
        }
    }
    /// Parses the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "draft" => PlanStatus::Draft,
            "approved" => PlanStatus::Approved,
            "running" => PlanStatus::Running,
            "paused" => PlanStatus::Paused,
            "completed" => PlanStatus::Completed,
            "failed" => PlanStatus::Failed,
            "cancelled" => PlanStatus::Cancelled,
            _ => return None,
        })
    }
    /// Whether no further change is possible.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            PlanStatus::Completed | PlanStatus::Failed | PlanStatus::Cancelled
        )
    }
    /// Whether an operator or the executor may move a plan from `self` to `to`.
    pub fn can_move_to(&self, to: PlanStatus) -> bool {
        use PlanStatus::*;
        matches!(
            (self, to),
            (Draft, Approved)
                | (Draft, Running)
                | (Draft, Cancelled)
                | (Approved, Running)
                | (Approved, Cancelled)
                | (Running, Paused)
                | (Running, Completed)
                | (Running, Failed)
                | (Running, Cancelled)
                | (Paused, Running)
                | (Paused, Cancelled)
                | (Paused, Failed)
        )
    }
}

impl fmt::Display for PlanStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// When a plan may start host runs (`maintenance_window`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MaintenanceWindow {
    /// Opens at.
    pub start: DateTime<Utc>,
    /// Closes at.
    pub end: DateTime<Utc>,
}

impl MaintenanceWindow {
    /// Whether a run of `expected` duration may start at `now`.
    pub fn admits(&self, now: DateTime<Utc>, expected: Duration) -> bool {
        let expected = chrono::Duration::from_std(expected).unwrap_or(chrono::Duration::MAX);
        now >= self.start
            && now
                .checked_add_signed(expected)
                .is_some_and(|t| t <= self.end)
    }
}

/// One host of a plan (`plan_targets`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanTarget {
    /// The host.
    pub host_id: HostId,
    /// Higher runs first.
    #[serde(default)]
    pub priority: i32,
    /// Conditions, kept as given (JSON); e.g. `{"tags": ["rack-a"]}`.
    #[serde(default)]
    pub conditions: Value,
}

/// A firmware package given to a plan (`artifacts`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Artifact {
    /// Identity.
    pub id: ArtifactId,
    /// Which component it updates: a Dell component id, a name, or a
    /// Redfish SoftwareId.
    pub component: String,
    /// Where the BMC fetches it (`https://…`) or, for `MULTIPART_FILE`, a local path.
    pub image_uri: String,
    /// Version it installs.
    pub version: Option<String>,
    /// `sha256:<hex>` or `md5:<hex>` (a bare 64-hex value is sha256).
    pub checksum: Option<String>,
    /// Size in bytes.
    pub size_bytes: Option<i64>,
    /// Anything else (reboot requirement, package type, …).
    #[serde(default)]
    pub metadata: Value,
}

/// What a caller supplies to create a plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewPlan {
    /// Human name.
    pub name: String,
    /// Policy.
    pub policy: Policy,
    /// Window, if any.
    #[serde(default)]
    pub maintenance_window: Option<MaintenanceWindow>,
    /// Whether an approval is needed before start.
    #[serde(default)]
    pub approval_required: bool,
    /// Hosts.
    pub targets: Vec<PlanTarget>,
    /// Packages for `SPECIFIC_PACKAGE` / `MULTIPART_FILE`.
    #[serde(default)]
    pub artifacts: Vec<Artifact>,
    /// Who creates it.
    #[serde(default)]
    pub created_by: Option<UserId>,
    /// Creating twice with the same key returns the first plan.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

/// A stored plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Identity.
    pub id: PlanId,
    /// Human name.
    pub name: String,
    /// Policy.
    pub policy: Policy,
    /// Lifecycle status.
    pub status: PlanStatus,
    /// Window.
    pub maintenance_window: Option<MaintenanceWindow>,
    /// Approval gate.
    pub approval_required: bool,
    /// Who approved, once approved.
    pub approved_by: Option<UserId>,
    /// Creator.
    pub created_by: Option<UserId>,
    /// Idempotency key.
    pub idempotency_key: Option<String>,
    /// Why it stopped, for failed/cancelled plans.
    pub status_reason: Option<String>,
    /// Created.
    pub created_at: DateTime<Utc>,
}
