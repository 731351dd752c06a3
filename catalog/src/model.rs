//! The catalog as read: `Manifest`, `SoftwareBundle`, `SoftwareComponent`
//! and their children, every attribute of the fact sheet (§2) kept, optional
//! ones as `Option`. Values are kept as Dell wrote them except where the
//! comparison rules need a normal form (hex ids upper-cased, hashes
//! lower-cased), so a report can quote the catalog.

use chrono::{DateTime, FixedOffset, NaiveDate};
use firmflow_core::model::ComponentKind;
use serde::{Deserialize, Serialize};

/// A whole catalog.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Catalog {
    /// The file or URL it was read from (for messages).
    pub source: String,
    /// The encoding it was decoded from (`UTF-16LE`, `UTF-8`, …).
    pub encoding: String,
    /// Whether it came gzip-compressed.
    pub gzip: bool,
    /// Root attributes.
    pub manifest: Manifest,
    /// Inventory collectors (`InventoryComponent`).
    pub inventory_components: Vec<InventoryComponent>,
    /// System bundles.
    pub bundles: Vec<SoftwareBundle>,
    /// Packages.
    pub components: Vec<SoftwareComponent>,
    /// Oddities tolerated while reading (unparsable dates, …), with their line.
    pub warnings: Vec<String>,
}

/// `<Manifest>` attributes and its release notes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// `baseLocation`: host (or host + path) package paths are relative to;
    /// `Some("")` means "relative to the catalog's own location".
    pub base_location: Option<String>,
    /// `baseLocationAccessProtocols`, split on `,` (e.g. `["HTTPS"]`).
    pub base_location_access_protocols: Vec<String>,
    /// `dateTime`.
    pub date_time: Option<DateTime<FixedOffset>>,
    /// `version` (`25.04.28`).
    pub version: Option<String>,
    /// `identifier` (GUID).
    pub identifier: Option<String>,
    /// `releaseID` (`RHDC6`).
    pub release_id: Option<String>,
    /// `predecessorID` (GUID).
    pub predecessor_id: Option<String>,
    /// `schemaVersion` (client catalogs).
    pub schema_version: Option<String>,
    /// `creationDateTime` (client catalogs).
    pub creation_date_time: Option<DateTime<FixedOffset>>,
    /// `ReleaseNotes/Display`.
    pub release_notes: Option<String>,
}

/// `<InventoryComponent>`: Dell's inventory collector.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InventoryComponent {
    /// `osCode` (`LIN64`, `WIN64`).
    pub os_code: Option<String>,
    /// `path`.
    pub path: String,
    /// `hashMD5`, lower-case.
    pub hash_md5: Option<String>,
    /// `vendorVersion`.
    pub vendor_version: Option<String>,
    /// `dellVersion`.
    pub dell_version: Option<String>,
    /// `releaseID`.
    pub release_id: Option<String>,
    /// `releaseDate`.
    pub release_date: Option<NaiveDate>,
    /// `dateTime`.
    pub date_time: Option<DateTime<FixedOffset>>,
    /// `schemaVersion`.
    pub schema_version: Option<String>,
}

/// A coded value with its display text (`<Category value="NI"><Display>…`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coded {
    /// The `value` attribute.
    pub value: String,
    /// The English (or first) `Display` text.
    pub display: Option<String>,
}

/// Dell criticality. The catalog's Display text is trusted over the code
/// (gofish documents other meanings for the codes; fact sheet §4.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Criticality {
    /// `2`, "Urgent".
    Urgent,
    /// `1`, "Recommended".
    Recommended,
    /// `3`, "Optional".
    Optional,
}

impl Criticality {
    /// From the catalog's code and display text; the text wins.
    pub fn from_catalog(value: &str, display: Option<&str>) -> Option<Self> {
        let by_text = display.and_then(|d| {
            let d = d.trim_start().to_ascii_lowercase();
            if d.starts_with("urgent") {
                Some(Criticality::Urgent)
            } else if d.starts_with("recommended") {
                Some(Criticality::Recommended)
            } else if d.starts_with("optional") {
                Some(Criticality::Optional)
            } else {
                None
            }
        });
        by_text.or(match value.trim() {
            "1" => Some(Criticality::Recommended),
            "2" => Some(Criticality::Urgent),
            "3" => Some(Criticality::Optional),
            _ => None,
        })
    }

    /// The word Dell uses (`Urgent`, `Recommended`, `Optional`), as stored
    /// in [`firmflow_core::model::Package::criticality`].
    pub fn as_str(&self) -> &'static str {
        match self {
            Criticality::Urgent => "Urgent",
            Criticality::Recommended => "Recommended",
            Criticality::Optional => "Optional",
        }
    }
}

/// `PCIInfo`: four 4-hex ids, upper-cased; any may be missing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PciInfo {
    /// `vendorID`.
    pub vendor_id: Option<String>,
    /// `deviceID`.
    pub device_id: Option<String>,
    /// `subVendorID`.
    pub sub_vendor_id: Option<String>,
    /// `subDeviceID`.
    pub sub_device_id: Option<String>,
}

/// `RollbackInformation` of a device (catalogs since about 2024).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackInformation {
    /// `rollbackIdentifier`.
    pub rollback_identifier: Option<String>,
    /// `alternateRollbackIdentifier`.
    pub alternate_rollback_identifier: Option<String>,
    /// `fmpWrapperIdentifier`.
    pub fmp_wrapper_identifier: Option<String>,
    /// `fmpWrapperVersion`.
    pub fmp_wrapper_version: Option<String>,
    /// `rollbackTimeout`, seconds.
    pub rollback_timeout: Option<u64>,
    /// `rollbackVolume`.
    pub rollback_volume: Option<String>,
    /// `impactsTPMmeasurements`.
    pub impacts_tpm_measurements: Option<bool>,
}

/// `PayloadConfiguration/Image`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayloadImage {
    /// `filename`.
    pub filename: Option<String>,
    /// `id`.
    pub id: Option<String>,
    /// `type`.
    pub image_type: Option<String>,
    /// `version`.
    pub version: Option<String>,
    /// `skip`.
    pub skip: Option<bool>,
}

/// `SupportedDevices/Device`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// `componentID` (decimal string); `None` when absent or empty.
    pub component_id: Option<String>,
    /// `embedded` (`0`/`1` on servers, `false` on client catalogs).
    pub embedded: Option<bool>,
    /// Display text.
    pub display: Option<String>,
    /// `PCIInfo` entries (several per device are possible).
    pub pci: Vec<PciInfo>,
    /// `RollbackInformation`.
    pub rollback: Option<RollbackInformation>,
    /// `PayloadConfiguration/Image` entries.
    pub payload_images: Vec<PayloadImage>,
}

/// `Model` inside a `Brand`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Model {
    /// `systemID` as written (4 hex digits, e.g. `0627`).
    pub system_id: String,
    /// `systemID` as a number (hex-decoded); `None` when not hex.
    pub system_id_value: Option<u32>,
    /// `systemIDType` (`BIOS`), absent in older catalogs.
    pub system_id_type: Option<String>,
    /// Model name (`R730xd`).
    pub display: Option<String>,
}

/// `Brand` in `SupportedSystems` / `TargetSystems`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Brand {
    /// `key` (`3` PowerEdge, …).
    pub key: Option<String>,
    /// `prefix` (`PE`).
    pub prefix: Option<String>,
    /// Display text (not stable: `Enterprise Servers` for iSM).
    pub display: Option<String>,
    /// Models.
    pub models: Vec<Model>,
}

/// `OperatingSystem` in `SupportedOperatingSystems` / `TargetOSes`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatingSystem {
    /// `osCode`.
    pub os_code: Option<String>,
    /// `osVendor`.
    pub os_vendor: Option<String>,
    /// `osArch`.
    pub os_arch: Option<String>,
    /// `majorVersion`.
    pub major_version: Option<String>,
    /// `minorVersion`.
    pub minor_version: Option<String>,
    /// Display text.
    pub display: Option<String>,
}

/// `FMPWrappers/FMPWrapperInformation`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FmpWrapper {
    /// `identifier`.
    pub identifier: Option<String>,
    /// `name`.
    pub name: Option<String>,
    /// `filePathName`.
    pub file_path_name: Option<String>,
    /// `driverFileName`.
    pub driver_file_name: Option<String>,
    /// `digitalSignature`.
    pub digital_signature: Option<bool>,
    /// `vendorCodeType`.
    pub vendor_code_type: Option<String>,
    /// `Inventory@source`.
    pub inventory_source: Option<String>,
    /// `Inventory@supported`.
    pub inventory_supported: Option<bool>,
    /// `Update@supported`.
    pub update_supported: Option<bool>,
    /// `Update@rollback`.
    pub update_rollback: Option<bool>,
}

/// Hashes of a package: `hashMD5` (server catalogs) and
/// `Cryptography/Hash` (client catalogs, schema 3.0). Lower-case hex.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hashes {
    /// MD5.
    pub md5: Option<String>,
    /// SHA-1.
    pub sha1: Option<String>,
    /// SHA-256.
    pub sha256: Option<String>,
}

impl Hashes {
    /// The strongest checksum in core's `algo:hex` form: SHA-256 over MD5
    /// (SHA-1 is not verifiable by core's format and is skipped).
    pub fn best(&self) -> Option<String> {
        self.sha256
            .as_ref()
            .map(|h| format!("sha256:{h}"))
            .or_else(|| self.md5.as_ref().map(|h| format!("md5:{h}")))
    }
}

/// `packageType`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PackageType {
    /// `LW64`: Windows 64-bit DUP (`.EXE`).
    Lw64,
    /// `LWXP`: Windows 32-bit / client DUP.
    Lwxp,
    /// `LLXP`: Linux DUP (`.BIN`).
    Llxp,
    /// `GZ`: a tarball (OMSA).
    Gz,
    /// Anything else, verbatim.
    Other(String),
}

impl PackageType {
    /// From the attribute value.
    pub fn parse(s: &str) -> Self {
        match s.trim().to_ascii_uppercase().as_str() {
            "LW64" => PackageType::Lw64,
            "LWXP" => PackageType::Lwxp,
            "LLXP" => PackageType::Llxp,
            "GZ" => PackageType::Gz,
            _ => PackageType::Other(s.to_string()),
        }
    }
}

/// What a package file is, from its `packageType` and file extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PackageFormat {
    /// Windows Dell Update Package (`.EXE`): what iDRAC applies.
    WindowsDup,
    /// Linux DUP (`.BIN`): in-band only, iDRAC refuses it.
    LinuxDup,
    /// iDRAC firmware image (`.d7`, `.d9`, `.d10`, `.pm`).
    IdracImage,
    /// Anything else (tarballs, unknown).
    Other,
}

/// `<SoftwareComponent>`: one package.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SoftwareComponent {
    /// `path`, relative to the manifest's `baseLocation`.
    pub path: String,
    /// `vendorVersion`: **the** version compared with the installed one.
    pub vendor_version: String,
    /// `dellVersion`: Dell's package revision, never compared.
    pub dell_version: Option<String>,
    /// `releaseID`.
    pub release_id: Option<String>,
    /// `packageID`.
    pub package_id: Option<String>,
    /// `packageType`.
    pub package_type: Option<PackageType>,
    /// Hashes.
    pub hashes: Hashes,
    /// `size`, bytes.
    pub size: Option<u64>,
    /// `dateTime`.
    pub date_time: Option<DateTime<FixedOffset>>,
    /// `releaseDate` (`May 27, 2024` or `July 25,2023`).
    pub release_date: Option<NaiveDate>,
    /// `rebootRequired`; missing on some entries.
    pub reboot_required: Option<bool>,
    /// `schemaVersion`.
    pub schema_version: Option<String>,
    /// `identifier` (client catalogs).
    pub identifier: Option<String>,
    /// `Name/Display`.
    pub name: Option<String>,
    /// `ComponentType` (`BIOS`, `FRMW`, `APAC`, `DRVR`, `APP`).
    pub component_type: Option<Coded>,
    /// `Description/Display`.
    pub description: Option<String>,
    /// `RevisionHistory/Display`.
    pub revision_history: Option<String>,
    /// `LUCategory`.
    pub lu_category: Option<Coded>,
    /// `Category` (`BI`, `NI`, … or long forms).
    pub category: Option<Coded>,
    /// `Criticality`.
    pub criticality: Option<Criticality>,
    /// `ImportantInfo@URL`.
    pub important_info_url: Option<String>,
    /// `SupportedDevices/Device`.
    pub devices: Vec<Device>,
    /// `SupportedSystems/Brand`.
    pub systems: Vec<Brand>,
    /// `SupportedOperatingSystems/OperatingSystem`.
    pub operating_systems: Vec<OperatingSystem>,
    /// `FMPWrappers/FMPWrapperInformation`.
    pub fmp_wrappers: Vec<FmpWrapper>,
}

impl SoftwareComponent {
    /// The file name part of `path`: what bundles refer to.
    pub fn basename(&self) -> &str {
        basename(&self.path)
    }

    /// What the package file is.
    pub fn format(&self) -> PackageFormat {
        let ext = self
            .basename()
            .rsplit_once('.')
            .map(|(_, e)| e.to_ascii_lowercase())
            .unwrap_or_default();
        match ext.as_str() {
            "exe" => return PackageFormat::WindowsDup,
            "bin" => return PackageFormat::LinuxDup,
            "d7" | "d9" | "d10" | "pm" => return PackageFormat::IdracImage,
            _ => {}
        }
        match self.package_type {
            Some(PackageType::Lw64) | Some(PackageType::Lwxp) => PackageFormat::WindowsDup,
            Some(PackageType::Llxp) => PackageFormat::LinuxDup,
            _ => PackageFormat::Other,
        }
    }

    /// Whether the component lists the system id (numeric value).
    pub fn supports_system(&self, system_id: u32) -> bool {
        self.systems
            .iter()
            .flat_map(|b| &b.models)
            .any(|m| m.system_id_value == Some(system_id))
    }

    /// What the package updates, from its type, category and name.
    ///
    /// `ES` (Embedded Server Management) is the iDRAC of 11G servers, and
    /// the long-form categories name the iDRAC/Lifecycle Controller.
    pub fn kind(&self) -> ComponentKind {
        let ctype = self.component_type.as_ref().map(|c| c.value.as_str());
        if ctype == Some("BIOS") {
            return ComponentKind::Bios;
        }
        let cat = self
            .category
            .as_ref()
            .map(|c| c.value.to_ascii_lowercase())
            .unwrap_or_default();
        let name = self.name.as_deref().unwrap_or("").to_ascii_lowercase();
        let base = self.basename().to_ascii_lowercase();
        if name.contains("cpld") || base.contains("cpld") {
            return ComponentKind::Cpld;
        }
        if cat == "es"
            || cat.contains("idrac")
            || cat.contains("lifecycle controller")
            || name.contains("idrac") && !name.contains("service module")
            || name.contains("lifecycle controller")
            || base.starts_with("idrac")
            || base.starts_with("esm_")
            || base.starts_with("lifecycle-controller")
        {
            return ComponentKind::Bmc;
        }
        if cat == "bi" {
            return ComponentKind::Bios;
        }
        if name.contains("power supply") || base.contains("power_firmware") || cat == "ps" {
            return ComponentKind::PowerSupply;
        }
        match cat.as_str() {
            "ni" => ComponentKind::Nic,
            "sf" | "se" | "fc" => ComponentKind::Storage,
            "as" | "sa" | "express flash pcie ssd" | "serial ata" => ComponentKind::Drive,
            _ => ComponentKind::Other,
        }
    }
}

/// `<SoftwareBundle>`: a per-model bundle of packages.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SoftwareBundle {
    /// `schemaVersion`.
    pub schema_version: Option<String>,
    /// `releaseID`.
    pub release_id: Option<String>,
    /// `bundleID`.
    pub bundle_id: Option<String>,
    /// `dateTime`.
    pub date_time: Option<DateTime<FixedOffset>>,
    /// `vendorVersion`.
    pub vendor_version: Option<String>,
    /// `path`.
    pub path: Option<String>,
    /// `bundleType` (`BTLX`, `BTW64`, …).
    pub bundle_type: Option<String>,
    /// `Name/Display`.
    pub name: Option<String>,
    /// `ComponentType` (`SBDL`).
    pub component_type: Option<Coded>,
    /// `Description/Display`.
    pub description: Option<String>,
    /// `Category`.
    pub category: Option<Coded>,
    /// `TargetSystems/Brand`.
    pub target_systems: Vec<Brand>,
    /// `TargetOSes/OperatingSystem`.
    pub target_oses: Vec<OperatingSystem>,
    /// `ImportantInfo@URL`.
    pub important_info_url: Option<String>,
    /// `Contents/Package@path`: basenames of component paths.
    pub packages: Vec<String>,
}

impl SoftwareBundle {
    /// Whether the bundle targets the system id.
    pub fn targets_system(&self, system_id: u32) -> bool {
        self.target_systems
            .iter()
            .flat_map(|b| &b.models)
            .any(|m| m.system_id_value == Some(system_id))
    }
}

impl Catalog {
    /// Bundles targeting a system id.
    pub fn bundles_for_system(&self, system_id: u32) -> impl Iterator<Item = &SoftwareBundle> {
        self.bundles
            .iter()
            .filter(move |b| b.targets_system(system_id))
    }

    /// The component a bundle's `Package@path` refers to (by basename).
    pub fn component_by_basename(&self, name: &str) -> Option<&SoftwareComponent> {
        let name = basename(name);
        self.components
            .iter()
            .find(|c| c.basename().eq_ignore_ascii_case(name))
    }

    /// Bundle package references with no component in this catalog
    /// (trimmed or custom catalogs have them): `(bundle id, path)`.
    pub fn dangling_bundle_refs(&self) -> Vec<(String, String)> {
        let names: std::collections::HashSet<String> = self
            .components
            .iter()
            .map(|c| c.basename().to_ascii_lowercase())
            .collect();
        self.bundles
            .iter()
            .flat_map(|b| {
                let id = b.bundle_id.clone().unwrap_or_default();
                b.packages
                    .iter()
                    .filter(|p| !names.contains(&basename(p).to_ascii_lowercase()))
                    .map(move |p| (id.clone(), p.clone()))
            })
            .collect()
    }

    /// Every system id the catalog names, with a model name.
    pub fn systems(&self) -> std::collections::BTreeMap<u32, String> {
        let mut out = std::collections::BTreeMap::new();
        for m in self
            .components
            .iter()
            .flat_map(|c| &c.systems)
            .chain(self.bundles.iter().flat_map(|b| &b.target_systems))
            .flat_map(|b| &b.models)
        {
            if let Some(v) = m.system_id_value {
                out.entry(v)
                    .or_insert_with(|| m.display.clone().unwrap_or_default());
            }
        }
        out
    }
}

/// The last `/`- or `\`-separated part of a path.
pub(crate) fn basename(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

/// A Redfish decimal system id as the catalog's 4-hex form (`1575` → `0627`).
pub fn system_id_hex(system_id: u32) -> String {
    format!("{system_id:04X}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn criticality_trusts_display_text() {
        assert_eq!(
            Criticality::from_catalog("1", Some("Recommended-Dell recommends…")),
            Some(Criticality::Recommended)
        );
        assert_eq!(
            Criticality::from_catalog("2", None),
            Some(Criticality::Urgent)
        );
        // Text wins over a conflicting code.
        assert_eq!(
            Criticality::from_catalog("1", Some("Optional")),
            Some(Criticality::Optional)
        );
        assert_eq!(Criticality::from_catalog("9", Some("??")), None);
    }

    #[test]
    fn format_from_extension_then_type() {
        let mut c = SoftwareComponent {
            path: "FOLDER1/1/BIOS_X_WN64_1.2.3.EXE".into(),
            ..Default::default()
        };
        assert_eq!(c.format(), PackageFormat::WindowsDup);
        c.path = "BIOS_0W1XP_LN_2.6.0.BIN".into();
        assert_eq!(c.format(), PackageFormat::LinuxDup);
        c.path = "firmimgFIT.d9".into();
        assert_eq!(c.format(), PackageFormat::IdracImage);
        c.path = "noext".into();
        c.package_type = Some(PackageType::Lw64);
        assert_eq!(c.format(), PackageFormat::WindowsDup);
    }

    #[test]
    fn system_id_hex_is_four_upper_hex_digits() {
        assert_eq!(system_id_hex(1575), "0627");
        assert_eq!(system_id_hex(0x0B4F), "0B4F");
    }
}
