//! The `BmcDriver` port: what the executor needs from a server's management
//! controller, vendor-neutral. Implementations live in `firmflow-redfish`
//! (iDRAC, generic Redfish, racadm).
//!
//! Every error names the host and is classified: transient errors are
//! retried with backoff, terminal ones fail the run.

mod snapshot;

pub use snapshot::{Reads, Snapshot};

use crate::model::{ComponentKind, Host, JobHandle, Package};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// Whether retrying can help.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// Busy, restarting, unreachable for a while: retry later.
    Transient,
    /// Wrong package, bad credentials, unsupported: retrying will not help.
    Terminal,
}

/// What went wrong, coarse enough for policy, precise enough for operators.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Connection refused/reset, DNS, TLS handshake to a restarting BMC.
    Unreachable,
    /// The request timed out.
    Timeout,
    /// The BMC is busy (job already running, queue full, LC not ready).
    Busy,
    /// 5xx from the BMC (SYS518, 503, …).
    ServiceUnavailable,
    /// Session limit reached (RAC0218).
    SessionLimit,
    /// Credentials refused: the login itself answered 401 (SYS415). A 401 on a
    /// session just granted is not this: the BMC dropped it (restarting).
    Authentication,
    /// TLS verification failed (certificate not trusted or not pinned).
    Tls,
    /// The package was refused: signature, platform, component (RED0xx, SUP0xx).
    PackageRejected,
    /// The BMC cannot do it (no such action, generation too old).
    NotSupported,
    /// The update job itself failed.
    JobFailed,
    /// A resource the driver needed is missing.
    NotFound,
    /// The BMC answered something the driver cannot read.
    InvalidResponse,
    /// Anything else the driver could not classify; treated as terminal.
    Other,
}

impl ErrorKind {
    /// The retry class of this kind.
    pub fn class(&self) -> ErrorClass {
        match self {
            ErrorKind::Unreachable
            | ErrorKind::Timeout
            | ErrorKind::Busy
            | ErrorKind::ServiceUnavailable
            | ErrorKind::SessionLimit => ErrorClass::Transient,
            _ => ErrorClass::Terminal,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            ErrorKind::Unreachable => "unreachable",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Busy => "busy",
            ErrorKind::ServiceUnavailable => "service unavailable",
            ErrorKind::SessionLimit => "session limit reached",
            ErrorKind::Authentication => "authentication failed",
            ErrorKind::Tls => "TLS verification failed",
            ErrorKind::PackageRejected => "package rejected",
            ErrorKind::NotSupported => "not supported",
            ErrorKind::JobFailed => "update job failed",
            ErrorKind::NotFound => "not found",
            ErrorKind::InvalidResponse => "invalid response",
            ErrorKind::Other => "error",
        };
        f.write_str(s)
    }
}

/// A BMC error: the host, the kind, the BMC's own message and message id.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("{host}: {kind}: {message}{}", .message_id.as_ref().map(|m| format!(" ({m})")).unwrap_or_default())]
pub struct Error {
    /// The host (BMC address or name).
    pub host: String,
    /// Classification.
    pub kind: ErrorKind,
    /// What happened, in the BMC's words where it gave some.
    pub message: String,
    /// Redfish `MessageId` (e.g. `IDRAC.2.8.SUP0108`) when the BMC sent one.
    pub message_id: Option<String>,
}

impl Error {
    /// An error without message id.
    pub fn new(host: impl Into<String>, kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            kind,
            message: message.into(),
            message_id: None,
        }
    }
    /// Adds the BMC's message id.
    pub fn with_message_id(mut self, id: impl Into<String>) -> Self {
        self.message_id = Some(id.into());
        self
    }
    /// Retry class.
    pub fn class(&self) -> ErrorClass {
        self.kind.class()
    }
    /// Whether retrying may help.
    pub fn is_transient(&self) -> bool {
        self.class() == ErrorClass::Transient
    }
}

/// PCI identity of a device, used when the inventory's component id is `"0"`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct PciIds {
    /// Vendor id, hex without `0x` (e.g. `14e4`).
    pub vendor_id: Option<String>,
    /// Device id.
    pub device_id: Option<String>,
    /// Subsystem vendor id.
    pub subsystem_vendor_id: Option<String>,
    /// Subsystem id.
    pub subsystem_id: Option<String>,
}

/// One firmware inventory member.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FirmwareComponent {
    /// Inventory member id (`Installed-25227-7.10.50.00`, …).
    pub id: String,
    /// Component name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Dell ComponentId / Redfish SoftwareId (`"0"` for some NICs).
    pub component_id: Option<String>,
    /// Kind, as far as the driver can tell.
    pub kind: ComponentKind,
    /// Whether it can be updated.
    pub updateable: bool,
    /// `true` for the installed image, `false` for a previous one (rollback target).
    pub installed: bool,
    /// PCI ids, when the BMC gives them.
    pub pci: Option<PciIds>,
    /// Release date text as the BMC gave it, if any.
    pub release_date: Option<String>,
}

/// The firmware inventory of one host.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct Inventory {
    /// Members: installed and previous images.
    pub components: Vec<FirmwareComponent>,
}

impl Inventory {
    /// Installed members only.
    pub fn installed(&self) -> impl Iterator<Item = &FirmwareComponent> {
        self.components.iter().filter(|c| c.installed)
    }
    /// The installed member for a component id (or member id or name).
    pub fn installed_for(&self, component_id: &str) -> Option<&FirmwareComponent> {
        self.installed()
            .find(|c| c.component_id.as_deref() == Some(component_id))
            .or_else(|| self.installed().find(|c| c.id == component_id))
            .or_else(|| self.installed().find(|c| c.name == component_id))
    }
    /// The installed member a package updates: by component id, else (for
    /// devices matched by PCI ids, whose inventory id is `"0"`) by the
    /// inventory name the resolver copied into the package.
    pub fn installed_for_package(&self, package: &Package) -> Option<&FirmwareComponent> {
        let id = package.component_id.trim();
        let by_id = if id.is_empty() || id == "0" {
            None
        } else {
            self.installed()
                .find(|c| c.component_id.as_deref() == Some(id))
        };
        by_id
            .or_else(|| self.installed().find(|c| c.name == package.name))
            .or_else(|| self.installed_for(id))
    }

    /// A previous (rollback) image for the component a package updated.
    pub fn previous_for_package(&self, package: &Package) -> Option<&FirmwareComponent> {
        let id = package.component_id.trim();
        let mut previous = self.components.iter().filter(|c| !c.installed);
        if !id.is_empty()
            && id != "0"
            && let Some(c) = previous
                .clone()
                .find(|c| c.component_id.as_deref() == Some(id))
        {
            return Some(c);
        }
        previous.find(|c| c.name == package.name)
    }

    /// A previous (rollback) image for a component id, if the BMC keeps one.
    pub fn previous_for(&self, component_id: &str) -> Option<&FirmwareComponent> {
        self.components
            .iter()
            .filter(|c| !c.installed)
            .find(|c| c.component_id.as_deref() == Some(component_id) || c.name == component_id)
    }
}

/// Power state of the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PowerState {
    /// On.
    On,
    /// Off.
    Off,
    /// Turning on.
    PoweringOn,
    /// Turning off.
    PoweringOff,
    /// Not known.
    Unknown,
}

/// Rolled-up health.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// OK.
    Ok,
    /// Warning.
    Warning,
    /// Critical.
    Critical,
    /// Not reported.
    Unknown,
}

/// What the BMC says about the system.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SystemInfo {
    /// Model, e.g. `PowerEdge R640`.
    pub model: Option<String>,
    /// Service tag (Redfish SKU on Dell).
    pub service_tag: Option<String>,
    /// Dell system id (decimal, as Redfish gives it) for catalog matching.
    pub system_id: Option<u32>,
    /// Power.
    pub power: PowerState,
    /// Health.
    pub health: Health,
    /// BIOS version.
    pub bios_version: Option<String>,
    /// BMC firmware version.
    pub bmc_version: Option<String>,
    /// BMC generation/model text (e.g. `14G Monolithic`).
    pub bmc_model: Option<String>,
    /// The system's manufacturer (`Dell Inc.`), when the BMC says: a Dell
    /// catalog applies only to Dell systems.
    #[serde(default)]
    pub manufacturer: Option<String>,
}

/// Whether the BMC can take an update now.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Readiness {
    /// Lifecycle Controller / update service ready.
    pub ready: bool,
    /// Power state, when the driver read it. A driver may leave it
    /// `Unknown` when the BMC is not ready (an iDRAC whose Lifecycle
    /// Controller is not ready is not asked for the power too);
    /// [`BmcDriver::power`] reads the power alone.
    pub power: PowerState,
    /// Details (LC status text, …).
    pub detail: Option<String>,
}

/// When an update is applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApplyTime {
    /// Now (BMC-only packages apply at once; host packages stage for reboot).
    Immediate,
    /// At the next host reset.
    OnReset,
}

/// Options for one update.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UpdateOptions {
    /// When to apply.
    pub apply: ApplyTime,
    /// Reinstall even when the version is the same.
    pub force: bool,
    /// Every job id the BMC listed before this run's first submission. A
    /// driver that would follow a job already on the BMC instead of creating
    /// one (a repository job covering several packages) never follows one
    /// of these: they belong to someone else, or to an earlier run.
    #[serde(default)]
    pub known_jobs: Vec<String>,
}

/// What [`BmcDriver::find_job`] looks for after a crash between an intent
/// ("submitting") and the job id it would have recorded.
#[derive(Clone, Copy, Debug)]
pub struct JobQuery<'a> {
    /// The package the intent was for.
    pub package: &'a Package,
    /// When the intent was journaled (firmflow's clock; BMC clocks drift,
    /// so drivers prefer `known_jobs` to comparing times).
    pub since: DateTime<Utc>,
    /// Every job id the BMC listed just before the intent. A job among them
    /// existed before the intent and is never ours. `None`: the BMC could
    /// not list its jobs when the intent was written.
    pub known_jobs: Option<&'a [String]>,
}

impl JobSearch {
    /// The job found, if one was.
    pub fn into_job(self) -> Option<JobHandle> {
        match self {
            JobSearch::Found(j) => Some(j),
            _ => None,
        }
    }
}

impl<'a> JobQuery<'a> {
    /// A query for jobs of `package` created after an intent at `since`
    /// that saw the BMC's jobs `known_jobs`.
    pub fn new(package: &'a Package, since: DateTime<Utc>, known_jobs: &'a [String]) -> Self {
        Self {
            package,
            since,
            known_jobs: Some(known_jobs),
        }
    }
}

/// What a search for the job of an interrupted submission found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum JobSearch {
    /// A job created after the intent for this package: provably ours.
    Found(JobHandle),
    /// The BMC lists its jobs and none created after the intent is for this
    /// package: the submission never reached it.
    NotFound,
    /// The BMC cannot tell (it has no job listing, or the intent recorded no
    /// baseline to tell new jobs from old ones). The caller must decide from
    /// other evidence and never resubmit on this answer alone.
    Unknowable {
        /// Why, for the operator.
        reason: String,
    },
}

/// The result of submitting an update.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum UpdateStart {
    /// The BMC created a job.
    Submitted(JobHandle),
    /// The BMC says the package is already installed (SUP029): nothing to do.
    AlreadyInstalled,
}

/// A BMC job's state, every vendor state mapped explicitly.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BmcJobState {
    /// Created, not started (`New`).
    New,
    /// Waiting for a host reboot to run (`Scheduled`, `Downloaded` with apply on reset).
    AwaitingReboot,
    /// Scheduled to start by itself.
    Scheduled,
    /// Downloading the image.
    Downloading,
    /// Downloaded, about to install.
    Downloaded,
    /// Installing.
    Running,
    /// Completed successfully.
    Completed,
    /// Completed, but the BMC reports errors: treated as failed unless the
    /// inventory proves the target version is installed.
    CompletedWithErrors,
    /// Failed.
    Failed,
    /// Needs someone (`UserIntervention`): treated as failed.
    UserIntervention,
    /// Cancelled on the BMC.
    Cancelled,
    /// The BMC no longer knows the job (purged task, iDRAC restarted).
    Missing,
}

impl BmcJobState {
    /// Whether the job will not change any more.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            BmcJobState::Completed
                | BmcJobState::CompletedWithErrors
                | BmcJobState::Failed
                | BmcJobState::UserIntervention
                | BmcJobState::Cancelled
                | BmcJobState::Missing
        )
    }
}

/// A poll of a BMC job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobStatus {
    /// State.
    pub state: BmcJobState,
    /// 0–100 when the BMC reports it.
    pub percent: Option<u8>,
    /// The BMC's message.
    pub message: Option<String>,
    /// The BMC's message id.
    pub message_id: Option<String>,
}

impl JobStatus {
    /// A status with only a state.
    pub fn of(state: BmcJobState) -> Self {
        Self {
            state,
            percent: None,
            message: None,
            message_id: None,
        }
    }
}

/// Reset and power actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResetKind {
    /// OS-friendly restart.
    GracefulRestart,
    /// Immediate restart.
    ForceRestart,
    /// Power off then on.
    PowerCycle,
    /// Power on.
    On,
    /// OS-friendly shutdown.
    GracefulShutdown,
    /// Immediate power off.
    ForceOff,
}

/// A driver for one host's BMC. Object-safe: the executor holds
/// `Arc<dyn BmcDriver>`.
#[async_trait]
pub trait BmcDriver: Send + Sync {
    /// System facts: model, service tag, system id, power, health.
    async fn system(&self) -> Result<SystemInfo, Error>;
    /// Firmware inventory (installed and previous images).
    async fn inventory(&self) -> Result<Inventory, Error>;
    /// Whether the BMC can take an update now (Lifecycle Controller ready).
    async fn readiness(&self) -> Result<Readiness, Error>;
    /// The host's power state alone. Provided: from [`system`](Self::system);
    /// a driver with a cheaper read overrides it.
    async fn power(&self) -> Result<PowerState, Error> {
        Ok(self.system().await?.power)
    }
    /// Submit one package. Never retried by the driver: a submission is a side effect.
    async fn start_update(
        &self,
        package: &Package,
        options: &UpdateOptions,
    ) -> Result<UpdateStart, Error>;
    /// Every job id in the BMC's queue now, journaled with an intent so that a
    /// later [`find_job`](Self::find_job) can tell the jobs created after it.
    /// `Ok(None)` when this BMC has no job listing.
    async fn job_ids(&self) -> Result<Option<Vec<String>>, Error>;
    /// Looks for the job of an interrupted submission: a job for
    /// `query.package` that is not among `query.known_jobs`. Never returns a
    /// job that existed before the intent; returns a finished job only when
    /// it is provably ours (created after the intent, naming the package).
    async fn find_job(&self, query: &JobQuery<'_>) -> Result<JobSearch, Error>;
    /// Poll a job.
    async fn poll_job(&self, job: &JobHandle) -> Result<JobStatus, Error>;
    /// Reset or power action on the host.
    async fn reset(&self, kind: ResetKind) -> Result<(), Error>;
    /// Install the previous image of a component. `Ok(None)` when the BMC
    /// applied it synchronously.
    async fn rollback(&self, component: &FirmwareComponent) -> Result<Option<JobHandle>, Error>;
    /// Delete the BMC's job queue (stale jobs block new ones).
    async fn clear_job_queue(&self) -> Result<(), Error>;
    /// End the session (logout). Called on every path, errors included.
    async fn close(&self) -> Result<(), Error>;
}

/// Gives a driver for a host (resolving its credentials, TLS settings, kind).
#[async_trait]
pub trait BmcConnector: Send + Sync {
    /// A connected driver for `host`.
    async fn connect(&self, host: &Host) -> Result<Arc<dyn BmcDriver>, Error>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn _object_safe(_: &dyn BmcDriver, _: &dyn BmcConnector) {}

    #[test]
    fn error_display_names_host_and_message_id() {
        let e = Error::new("idrac-1", ErrorKind::Busy, "job already running")
            .with_message_id("IDRAC.2.8.RAC0679");
        assert_eq!(
            e.to_string(),
            "idrac-1: busy: job already running (IDRAC.2.8.RAC0679)"
        );
        assert!(e.is_transient());
        assert!(!Error::new("h", ErrorKind::PackageRejected, "x").is_transient());
    }
}

#[cfg(test)]
mod inventory_tests {
    use super::*;
    use crate::model::PackageSource;

    fn comp(id: &str, name: &str, v: &str, installed: bool) -> FirmwareComponent {
        FirmwareComponent {
            id: format!(
                "{}-{id}-{v}",
                if installed { "Installed" } else { "Previous" }
            ),
            name: name.into(),
            version: v.into(),
            component_id: Some(id.into()),
            kind: ComponentKind::Nic,
            updateable: true,
            installed,
            pci: None,
            release_date: None,
        }
    }

    fn pkg(id: &str, name: &str) -> Package {
        Package {
            component_id: id.into(),
            name: name.into(),
            kind: ComponentKind::Nic,
            target_version: "22.0".into(),
            installed_version: None,
            source: PackageSource::ImageUri {
                uri: "http://x".into(),
            },
            checksum: None,
            size_bytes: None,
            reboot_required: true,
            criticality: None,
        }
    }

    #[test]
    fn packages_find_their_component_by_id_or_by_name_for_zero_ids() {
        let inv = Inventory {
            components: vec![
                comp(
                    "0",
                    "Broadcom Gigabit Ethernet BCM5720 - 00:11:22:33:44:55",
                    "21.6",
                    true,
                ),
                comp(
                    "0",
                    "Intel(R) Ethernet 10G 4P X710 SFP+ rNDC - 66:77",
                    "20.5",
                    true,
                ),
                comp(
                    "0",
                    "Intel(R) Ethernet 10G 4P X710 SFP+ rNDC - 66:77",
                    "19.0",
                    false,
                ),
                comp("159", "BIOS", "2.10.0", true),
            ],
        };
        let nic = pkg("12345", "Intel(R) Ethernet 10G 4P X710 SFP+ rNDC - 66:77");
        assert_eq!(
            inv.installed_for_package(&nic).map(|c| c.version.as_str()),
            Some("20.5")
        );
        assert_eq!(
            inv.previous_for_package(&nic).map(|c| c.version.as_str()),
            Some("19.0")
        );
        let zero = pkg("0", "Broadcom Gigabit Ethernet BCM5720 - 00:11:22:33:44:55");
        assert_eq!(
            inv.installed_for_package(&zero).map(|c| c.version.as_str()),
            Some("21.6")
        );
        assert_eq!(
            inv.installed_for_package(&pkg("159", "System BIOS"))
                .map(|c| c.version.as_str()),
            Some("2.10.0")
        );
        assert!(inv.installed_for_package(&pkg("999", "nothing")).is_none());
    }
}
