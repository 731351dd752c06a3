//! The simulator's firmware package format (a stand-in for Dell Update Packages).
//!
//! Real DUPs cannot be shipped, so a simulated iDRAC accepts only this small,
//! documented format and rejects anything else the way an iDRAC rejects a bad
//! DUP. A package is a text header, an optional opaque payload and a trailer:
//!
//! ```text
//! FIRMFLOW-SIM-PACKAGE 1\n
//! System-Ids: 1814,2300\n          (decimal Dell SystemIDs; `*` = any system)
//! Component-Id: 159\n              (Dell ComponentID, or a PCI identity VVVV:DDDD:SSSS:SSSS)
//! Name: BIOS\n
//! Version: 2.19.1\n
//! Kind: BIOS\n                     (see PackageKind::as_str)
//! Reboot-Required: true\n
//! Payload-Length: 0\n
//! \n
//! <Payload-Length bytes>
//! SHA256: <64 lowercase hex digits>\n
//! ```
//!
//! The SHA-256 covers every byte before the `SHA256: ` line. Header values
//! must not contain newlines. See `sim/README.md`.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// First line of every package.
pub const MAGIC: &str = "FIRMFLOW-SIM-PACKAGE 1";

/// The kind of component a package updates; decides reboot behaviour and
/// the Dell `ComponentType` code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PackageKind {
    /// System BIOS (needs a host reboot).
    Bios,
    /// iDRAC with Lifecycle Controller (restarts the iDRAC, no host reboot).
    Idrac,
    /// Network adapter firmware (needs a host reboot).
    Nic,
    /// RAID controller firmware (needs a host reboot).
    Raid,
    /// System CPLD (needs a host reboot).
    Cpld,
    /// Power supply firmware (needs a host reboot).
    Psu,
    /// Disk firmware (needs a host reboot).
    Disk,
    /// Diagnostics / other applications that apply without a reboot.
    Diagnostics,
    /// Any other firmware.
    Firmware,
}

impl PackageKind {
    /// The name used in package headers (`BIOS`, `IDRAC`, `NIC`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            PackageKind::Bios => "BIOS",
            PackageKind::Idrac => "IDRAC",
            PackageKind::Nic => "NIC",
            PackageKind::Raid => "RAID",
            PackageKind::Cpld => "CPLD",
            PackageKind::Psu => "PSU",
            PackageKind::Disk => "DISK",
            PackageKind::Diagnostics => "DIAGNOSTICS",
            PackageKind::Firmware => "FIRMWARE",
        }
    }

    /// Dell catalog / inventory `ComponentType` code (`BIOS`, `FRMW`, `APAC`).
    pub fn component_type(self) -> &'static str {
        match self {
            PackageKind::Bios => "BIOS",
            PackageKind::Diagnostics => "APAC",
            _ => "FRMW",
        }
    }

    /// Dell catalog `Category` code.
    pub fn category(self) -> &'static str {
        match self {
            PackageKind::Bios => "BI",
            PackageKind::Idrac => "iDRAC with Lifecycle Controller",
            PackageKind::Nic => "NI",
            PackageKind::Raid => "SF",
            PackageKind::Cpld => "FW",
            PackageKind::Psu => "FW",
            PackageKind::Disk => "AS",
            PackageKind::Diagnostics => "DI",
            PackageKind::Firmware => "FW",
        }
    }

    /// Whether installing this kind restarts the iDRAC itself.
    pub fn restarts_idrac(self) -> bool {
        self == PackageKind::Idrac
    }
}

impl fmt::Display for PackageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PackageKind {
    type Err = PackageError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.trim().to_ascii_uppercase().as_str() {
            "BIOS" => PackageKind::Bios,
            "IDRAC" | "BMC" => PackageKind::Idrac,
            "NIC" | "NETWORK" => PackageKind::Nic,
            "RAID" | "PERC" | "STORAGE" => PackageKind::Raid,
            "CPLD" => PackageKind::Cpld,
            "PSU" => PackageKind::Psu,
            "DISK" | "DRIVE" => PackageKind::Disk,
            "DIAGNOSTICS" | "APAC" => PackageKind::Diagnostics,
            "FIRMWARE" | "FRMW" => PackageKind::Firmware,
            other => return Err(PackageError::BadField("Kind", other.to_string())),
        })
    }
}

/// Why bytes are not a valid package.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PackageError {
    /// The bytes do not start with [`MAGIC`].
    #[error("not a firmflow-sim package (bad magic)")]
    BadMagic,
    /// The header is truncated or malformed.
    #[error("malformed package header: {0}")]
    Malformed(String),
    /// A required header field is missing.
    #[error("missing package header field {0}")]
    MissingField(&'static str),
    /// A header field has an invalid value.
    #[error("invalid value for {0}: {1:?}")]
    BadField(&'static str, String),
    /// The SHA-256 trailer does not match the content.
    #[error("package checksum mismatch")]
    Checksum,
}

/// A firmware package for one component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    /// Dell SystemIDs (decimal) the package supports; empty means any system.
    pub system_ids: Vec<u32>,
    /// Dell ComponentID (decimal string) or a PCI identity `VVVV:DDDD:SSSS:SSSS`.
    pub component_id: String,
    /// Display name, e.g. `BIOS`.
    pub name: String,
    /// The version the component has after installing this package.
    pub version: String,
    /// Whether the host must reboot to apply it.
    pub reboot_required: bool,
    /// Component kind.
    pub kind: PackageKind,
}

impl Package {
    /// Serialises the package with no payload.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_bytes_padded(0)
    }

    /// Serialises the package with `payload_len` bytes of deterministic filler
    /// (to give images a realistic size).
    pub fn to_bytes_padded(&self, payload_len: usize) -> Vec<u8> {
        let systems = if self.system_ids.is_empty() {
            "*".to_string()
        } else {
            self.system_ids
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        let clean = |s: &str| s.replace(['\r', '\n'], " ");
        let mut out = format!(
            "{MAGIC}\nSystem-Ids: {systems}\nComponent-Id: {}\nName: {}\nVersion: {}\nKind: {}\nReboot-Required: {}\nPayload-Length: {payload_len}\n\n",
            clean(&self.component_id),
            clean(&self.name),
            clean(&self.version),
            self.kind.as_str(),
            self.reboot_required
        )
        .into_bytes();
        out.extend((0..payload_len).map(|i| (i % 251) as u8));
        let digest = hex::encode(Sha256::digest(&out));
        out.extend_from_slice(format!("SHA256: {digest}\n").as_bytes());
        out
    }

    /// Parses and verifies a package.
    pub fn parse(bytes: &[u8]) -> Result<Package, PackageError> {
        let magic_line = format!("{MAGIC}\n");
        if !bytes.starts_with(magic_line.as_bytes()) {
            return Err(PackageError::BadMagic);
        }
        // Header ends at the first blank line.
        let header_end = find(bytes, b"\n\n")
            .ok_or_else(|| PackageError::Malformed("no end of header".into()))?;
        let header = bytes
            .get(magic_line.len()..header_end)
            .ok_or_else(|| PackageError::Malformed("empty header".into()))?;
        let header = std::str::from_utf8(header)
            .map_err(|_| PackageError::Malformed("header is not UTF-8".into()))?;
        let mut fields = std::collections::HashMap::new();
        for line in header.lines() {
            let (k, v) = line
                .split_once(':')
                .ok_or_else(|| PackageError::Malformed(format!("bad header line {line:?}")))?;
            fields.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
        let get = |k: &'static str| {
            fields
                .get(&k.to_ascii_lowercase())
                .cloned()
                .ok_or(PackageError::MissingField(k))
        };
        let payload_len: usize = get("Payload-Length")?.parse().map_err(|_| {
            PackageError::BadField("Payload-Length", get("Payload-Length").unwrap_or_default())
        })?;
        let payload_start = header_end + 2;
        let trailer_start = payload_start
            .checked_add(payload_len)
            .filter(|t| *t <= bytes.len())
            .ok_or_else(|| PackageError::Malformed("truncated payload".into()))?;
        let (signed, trailer) = bytes.split_at(trailer_start);
        let trailer = std::str::from_utf8(trailer)
            .map_err(|_| PackageError::Malformed("trailer is not UTF-8".into()))?;
        let digest = trailer
            .trim_end()
            .strip_prefix("SHA256: ")
            .ok_or_else(|| PackageError::Malformed("missing SHA256 trailer".into()))?;
        if !hex::encode(Sha256::digest(signed)).eq_ignore_ascii_case(digest) {
            return Err(PackageError::Checksum);
        }
        let systems = get("System-Ids")?;
        let system_ids = if systems.trim() == "*" {
            Vec::new()
        } else {
            systems
                .split(',')
                .map(|s| {
                    s.trim()
                        .parse::<u32>()
                        .map_err(|_| PackageError::BadField("System-Ids", s.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()?
        };
        let reboot = get("Reboot-Required")?;
        let reboot_required = match reboot.to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => true,
            "false" | "no" | "0" => false,
            _ => return Err(PackageError::BadField("Reboot-Required", reboot)),
        };
        let component_id = get("Component-Id")?;
        if component_id.is_empty() {
            return Err(PackageError::BadField("Component-Id", component_id));
        }
        let version = get("Version")?;
        if version.is_empty() {
            return Err(PackageError::BadField("Version", version));
        }
        Ok(Package {
            system_ids,
            component_id,
            name: get("Name")?,
            version,
            reboot_required,
            kind: get("Kind")?.parse()?,
        })
    }

    /// Whether the package supports the Dell SystemID `system_id`.
    pub fn supports_system(&self, system_id: u32) -> bool {
        self.system_ids.is_empty() || self.system_ids.contains(&system_id)
    }

    /// A Dell-like file name, e.g. `BIOS_SIM159_WN64_2.19.1.EXE`.
    pub fn file_name(&self) -> String {
        let prefix = match self.kind {
            PackageKind::Bios => "BIOS",
            PackageKind::Idrac => "iDRAC-with-Lifecycle-Controller_Firmware",
            PackageKind::Nic => "Network_Firmware",
            PackageKind::Raid => "SAS-RAID_Firmware",
            PackageKind::Cpld => "CPLD_Firmware",
            PackageKind::Psu => "Power_Firmware",
            PackageKind::Disk => "Serial-ATA_Firmware",
            PackageKind::Diagnostics => "Diagnostics_Application",
            PackageKind::Firmware => "Firmware",
        };
        let id: String = self
            .component_id
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        let version: String = self
            .version
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("{prefix}_SIM{id}_WN64_{version}.EXE")
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bios() -> Package {
        Package {
            system_ids: vec![1814, 2300],
            component_id: "159".into(),
            name: "BIOS".into(),
            version: "2.19.1".into(),
            reboot_required: true,
            kind: PackageKind::Bios,
        }
    }

    #[test]
    fn round_trip() {
        let p = bios();
        assert_eq!(Package::parse(&p.to_bytes()).unwrap(), p);
        assert_eq!(Package::parse(&p.to_bytes_padded(4096)).unwrap(), p);
    }

    #[test]
    fn rejects_garbage_and_tampering() {
        assert_eq!(Package::parse(b"MZ\x90\x00"), Err(PackageError::BadMagic));
        let mut bytes = bios().to_bytes_padded(64);
        let n = bytes.len();
        bytes[n - 80] ^= 1;
        assert_eq!(Package::parse(&bytes), Err(PackageError::Checksum));
        let bytes = bios().to_bytes();
        assert!(Package::parse(&bytes[..bytes.len() - 10]).is_err());
        assert!(Package::parse(&bytes[..30]).is_err());
    }

    #[test]
    fn any_system() {
        let mut p = bios();
        p.system_ids.clear();
        let q = Package::parse(&p.to_bytes()).unwrap();
        assert!(q.supports_system(42));
    }
}
