//! Initial hardware identity and firmware inventory of a simulated host.

use crate::fleet::Flavor;
use crate::package::PackageKind;

/// A server model a simulated host can be.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Model {
    pub(crate) name: &'static str,
    pub(crate) system_id: u32,
    pub(crate) generation: &'static str,
    pub(crate) bios: &'static str,
    pub(crate) bios_previous: &'static str,
}

/// iDRAC9 models (SystemIDs as in Dell's catalog: R640 0x0716, R6515 0x08FC, R660XS 0x0B9D).
const IDRAC9_MODELS: [Model; 3] = [
    Model {
        name: "PowerEdge R640",
        system_id: 1814,
        generation: "14G Monolithic",
        bios: "2.10.2",
        bios_previous: "2.9.4",
    },
    Model {
        name: "PowerEdge R6515",
        system_id: 2300,
        generation: "15G Monolithic",
        bios: "2.3.6",
        bios_previous: "2.2.4",
    },
    Model {
        name: "PowerEdge R660xs",
        system_id: 2973,
        generation: "16G Monolithic",
        bios: "1.7.5",
        bios_previous: "1.6.6",
    },
];

/// iDRAC10 (17G) model. Its SystemID is a simulator value (no public catalog sample).
const IDRAC10_MODEL: Model = Model {
    name: "PowerEdge R670",
    system_id: 3290,
    generation: "17G Monolithic",
    bios: "1.2.3",
    bios_previous: "1.1.5",
};

pub(crate) fn model_for(flavor: Flavor, index: usize) -> Model {
    match flavor {
        Flavor::Idrac10 => IDRAC10_MODEL,
        _ => IDRAC9_MODELS
            .get(index % IDRAC9_MODELS.len())
            .copied()
            .unwrap_or(IDRAC10_MODEL),
    }
}

/// One firmware component of a host.
#[derive(Debug, Clone)]
pub(crate) struct Component {
    /// Redfish `SoftwareId` / Dell ComponentID (`"0"` for some NICs).
    pub(crate) component_id: String,
    /// PCI identity `VVVV:DDDD:SSSS:SSSS` for PCI devices.
    pub(crate) pci: Option<String>,
    pub(crate) fqdd: String,
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) previous: Option<String>,
    pub(crate) kind: PackageKind,
    pub(crate) release_date: String,
    pub(crate) previous_release_date: String,
    /// Generic-flavour member id (e.g. `BIOS`).
    pub(crate) generic_id: String,
}

impl Component {
    /// Whether a package's component id addresses this component.
    pub(crate) fn matches(&self, package_component: &str) -> bool {
        self.component_id == package_component
            || self
                .pci
                .as_deref()
                .is_some_and(|p| p.eq_ignore_ascii_case(package_component))
    }

    pub(crate) fn dell_id(&self, prefix: &str, version: &str) -> String {
        format!("{prefix}-{}-{version}__{}", self.component_id, self.fqdd)
    }
}

fn mac(rng: &mut fastrand::Rng) -> String {
    let b: Vec<String> = (0..6)
        .map(|i| {
            if i == 0 {
                "B8".to_string()
            } else {
                format!("{:02X}", rng.u8(..))
            }
        })
        .collect();
    b.join(":")
}

pub(crate) fn service_tag(rng: &mut fastrand::Rng) -> String {
    const CHARS: &[u8] = b"0123456789BCDFGHJKLMNPQRSTVWXYZ";
    (0..7)
        .filter_map(|_| CHARS.get(rng.usize(..CHARS.len())).map(|b| char::from(*b)))
        .collect()
}

pub(crate) fn initial_components(
    flavor: Flavor,
    model: &Model,
    rng: &mut fastrand::Rng,
) -> Vec<Component> {
    let (idrac, idrac_prev, idrac_date) = match flavor {
        Flavor::Idrac10 => ("1.20.50.52", "1.10.10.10", "2025-03-20T00:00:00Z"),
        _ => ("6.10.30.20", "6.00.02.00", "2023-03-09T00:00:00Z"),
    };
    let comp = |component_id: &str,
                pci: Option<&str>,
                fqdd: &str,
                name: String,
                version: &str,
                previous: Option<&str>,
                kind: PackageKind,
                release_date: &str,
                generic_id: &str| Component {
        component_id: component_id.to_string(),
        pci: pci.map(str::to_string),
        fqdd: fqdd.to_string(),
        name,
        version: version.to_string(),
        previous: previous.map(str::to_string),
        kind,
        release_date: release_date.to_string(),
        previous_release_date: "2022-09-16T00:00:00Z".to_string(),
        generic_id: generic_id.to_string(),
    };
    vec![
        comp(
            "159",
            None,
            "BIOS.Setup.1-1",
            "BIOS".into(),
            model.bios,
            Some(model.bios_previous),
            PackageKind::Bios,
            "2023-11-02T00:00:00Z",
            "BIOS",
        ),
        comp(
            "25227",
            None,
            "iDRAC.Embedded.1-1",
            "Integrated Dell Remote Access Controller".into(),
            idrac,
            Some(idrac_prev),
            PackageKind::Idrac,
            idrac_date,
            "BMC",
        ),
        comp(
            "108255",
            Some("14E4:165F:1028:08FF"),
            "NIC.Embedded.1-1-1",
            format!("Broadcom Gigabit Ethernet BCM5720 - {}", mac(rng)),
            "22.00.6",
            Some("21.81.3"),
            PackageKind::Nic,
            "2022-01-07T00:00:00Z",
            "NIC.Embedded.1",
        ),
        comp(
            "0",
            Some("15B3:101D:15B3:0016"),
            "NIC.Slot.3-1-1",
            format!("Mellanox Network Adapter - {}", mac(rng)),
            "24.35.20.00",
            None,
            PackageKind::Nic,
            "00:00:00Z",
            "NIC.Slot.3",
        ),
        comp(
            "104298",
            Some("1000:0016:1028:1FEA"),
            "RAID.Integrated.1-1",
            "PERC H740P Mini".into(),
            "51.16.0-4076",
            None,
            PackageKind::Raid,
            "2022-05-26T00:00:00Z",
            "RAID.Integrated.1",
        ),
        comp(
            "27763",
            None,
            "CPLD.Embedded.1",
            "System CPLD".into(),
            "1.0.6",
            None,
            PackageKind::Cpld,
            "2021-02-18T00:00:00Z",
            "CPLD",
        ),
        comp(
            "25806",
            None,
            "Diagnostics.Embedded.1:LC.Embedded.1",
            "Dell 64 Bit uEFI Diagnostics, version 4301, 4301A79, 4301.80".into(),
            "4301A79",
            None,
            PackageKind::Diagnostics,
            "2023-02-14T00:00:00Z",
            "Diagnostics",
        ),
    ]
}

/// Compares dotted versions numerically where possible (`2.10.2` > `2.9.4`).
pub(crate) fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    let split = |s: &str| -> Vec<String> { s.split(['.', '-', '_']).map(str::to_string).collect() };
    let (pa, pb) = (split(a), split(b));
    for (x, y) in pa.iter().zip(pb.iter()) {
        let ord = match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(i), Ok(j)) => i.cmp(&j),
            _ => x.cmp(y),
        };
        if ord != std::cmp::Ordering::Equal {
            return ord;
        }
    }
    pa.len().cmp(&pb.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering;

    #[test]
    fn versions() {
        assert_eq!(compare_versions("2.10.2", "2.9.4"), Ordering::Greater);
        assert_eq!(compare_versions("1.0", "1.0"), Ordering::Equal);
        assert_eq!(compare_versions("4301A79", "4301A89"), Ordering::Less);
        assert_eq!(compare_versions("1.0.1", "1.0"), Ordering::Greater);
    }
}
