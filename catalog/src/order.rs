//! Install order of one host's packages.
//!
//! The documented order (core's `ArtifactResolver` contract: BMC first):
//!
//! 1. **BMC** — iDRAC / Lifecycle Controller (11G: ESM). First, because the
//!    Lifecycle Controller applies every other DUP and an old one may refuse
//!    newer packages (the CMC guide updates LC first; stepping stones exist,
//!    fact sheet §4.3–4.4). It restarts only the BMC, not the host.
//! 2. **BIOS** — other firmware often depends on it (BIOS↔ESM dependencies
//!    in DUP prerequisites).
//! 3. **Storage controllers** (RAID/HBA/BOSS), then 4. **NICs**, then
//!    5. **drives** (drive firmware goes through the controller), then
//!    6. **power supplies**, then 7. **everything else** (diagnostics,
//!    iSM, backplanes).
//! 8. **CPLD** last and alone: Dell's scripts never stack it with other
//!    devices, and it needs a full power cycle.
//!
//! Within one rank: packages needing no reboot first (they finish without
//! waiting for one), then by criticality (Urgent, Recommended, Optional,
//! unknown), then by name and component id so the order is stable.

use firmflow_core::model::{ComponentKind, Package};

/// The rank of a component kind in the install order (lower first).
pub fn kind_rank(kind: ComponentKind) -> u8 {
    match kind {
        ComponentKind::Bmc => 0,
        ComponentKind::Bios => 1,
        ComponentKind::Storage => 2,
        ComponentKind::Nic => 3,
        ComponentKind::Drive => 4,
        ComponentKind::PowerSupply => 5,
        ComponentKind::Other => 6,
        ComponentKind::Cpld => 7,
    }
}

fn criticality_rank(c: Option<&str>) -> u8 {
    match c.map(|s| s.to_ascii_lowercase()) {
        Some(s) if s.starts_with("urgent") => 0,
        Some(s) if s.starts_with("recommended") => 1,
        Some(s) if s.starts_with("optional") => 2,
        _ => 3,
    }
}

/// Sorts packages into install order (stable, deterministic).
pub fn sort_install_order(packages: &mut [Package]) {
    packages.sort_by(|a, b| {
        kind_rank(a.kind)
            .cmp(&kind_rank(b.kind))
            .then(a.reboot_required.cmp(&b.reboot_required))
            .then(
                criticality_rank(a.criticality.as_deref())
                    .cmp(&criticality_rank(b.criticality.as_deref())),
            )
            .then_with(|| a.name.cmp(&b.name))
            .then_with(|| a.component_id.cmp(&b.component_id))
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use firmflow_core::model::PackageSource;

    fn pkg(name: &str, kind: ComponentKind, reboot: bool, crit: Option<&str>) -> Package {
        Package {
            component_id: name.into(),
            name: name.into(),
            kind,
            target_version: "1".into(),
            installed_version: None,
            source: PackageSource::ImageUri {
                uri: format!("https://x/{name}"),
            },
            checksum: None,
            size_bytes: None,
            reboot_required: reboot,
            criticality: crit.map(str::to_string),
        }
    }

    #[test]
    fn bmc_then_bios_then_documented_ranks_cpld_last() {
        let mut v = vec![
            pkg("cpld", ComponentKind::Cpld, true, None),
            pkg("disk", ComponentKind::Drive, false, None),
            pkg("nic", ComponentKind::Nic, true, Some("Urgent")),
            pkg("diag", ComponentKind::Other, false, None),
            pkg("bios", ComponentKind::Bios, true, None),
            pkg("perc", ComponentKind::Storage, true, None),
            pkg("idrac", ComponentKind::Bmc, false, None),
            pkg("psu", ComponentKind::PowerSupply, true, None),
        ];
        sort_install_order(&mut v);
        let names: Vec<_> = v.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "idrac", "bios", "perc", "nic", "disk", "psu", "diag", "cpld"
            ]
        );
    }

    #[test]
    fn within_a_rank_no_reboot_first_then_criticality() {
        let mut v = vec![
            pkg("b-opt", ComponentKind::Nic, true, Some("Optional")),
            pkg("a-rec", ComponentKind::Nic, true, Some("Recommended")),
            pkg("c-urg", ComponentKind::Nic, true, Some("Urgent")),
            pkg("d-none", ComponentKind::Nic, false, Some("Optional")),
        ];
        sort_install_order(&mut v);
        let names: Vec<_> = v.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["d-none", "c-urg", "a-rec", "b-opt"]);
    }
}
