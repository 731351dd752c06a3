//! Firmware packages as resolved for one host, and BMC job handles. Both are
//! written into a run's checkpoint, so their serde form is durable.

use serde::{Deserialize, Serialize};

/// What kind of component a package updates. It decides ordering (BMC first)
/// and disruption: a BMC-only update needs no host reboot or maintenance mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ComponentKind {
    /// The BMC itself (iDRAC) or its Lifecycle Controller.
    Bmc,
    /// System BIOS.
    Bios,
    /// CPLD / system board programmable logic.
    Cpld,
    /// Storage controller (RAID, HBA, BOSS).
    Storage,
    /// Network adapter.
    Nic,
    /// Drive firmware.
    Drive,
    /// Power supply.
    PowerSupply,
    /// Anything else.
    Other,
}

/// Where the BMC gets the package from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum PackageSource {
    /// The BMC fetches it (Redfish SimpleUpdate `ImageURI`).
    ImageUri {
        /// `http://`, `https://`, `nfs://`, … URI.
        uri: String,
    },
    /// The driver uploads a local file (multipart push).
    LocalFile {
        /// Path on the machine running firmflow.
        path: String,
    },
    /// The BMC installs from a catalog repository (Dell InstallFromRepository).
    Repository {
        /// Base of the repository (share or URL) holding the catalog.
        repository_uri: String,
        /// Catalog file name inside it.
        catalog_file: String,
    },
}

/// One package to install on one host, with the facts needed to verify it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Package {
    /// Component identity on the BMC: Dell ComponentId, Redfish SoftwareId
    /// or inventory member id; matched against [`crate::bmc::FirmwareComponent`].
    pub component_id: String,
    /// Human name of the component.
    pub name: String,
    /// Kind of component.
    pub kind: ComponentKind,
    /// Version the package installs.
    pub target_version: String,
    /// Version installed when the run resolved its packages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installed_version: Option<String>,
    /// Where it comes from.
    pub source: PackageSource,
    /// `sha256:<hex>` / `md5:<hex>`, verified before anything reaches a BMC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
    /// Size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
    /// Whether the host must reboot for the install to take effect.
    pub reboot_required: bool,
    /// Dell criticality (`Urgent`, `Recommended`, `Optional`) when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub criticality: Option<String>,
}

impl Package {
    /// Whether installing this package takes the host's workload down
    /// (needs a host reboot). BMC updates restart only the BMC.
    pub fn is_disruptive(&self) -> bool {
        self.reboot_required && self.kind != ComponentKind::Bmc
    }
}

/// A handle on an update job running on a BMC. Its meaning is the driver's;
/// the executor stores it in the checkpoint and hands it back to poll.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobHandle {
    /// The BMC's own job id (`JID_123456789012`, a task id, …).
    pub id: String,
    /// Where to poll it (task monitor, task or job URI), if the BMC said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

impl JobHandle {
    /// A handle with only an id.
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            location: None,
        }
    }
}
