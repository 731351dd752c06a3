//! Shared test helpers: fixture catalogs and inventory builders.

use crate::model::Catalog;
use crate::reader::read_catalog_file;
use firmflow_core::bmc::{FirmwareComponent, Health, Inventory, PciIds, PowerState, SystemInfo};
use firmflow_core::model::ComponentKind;
use std::sync::{Arc, OnceLock};

pub(crate) const F11G: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/dell-custom-catalog-11g-2017.xml"
);
pub(crate) const F25: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/dell-catalog-2025-04-excerpt.utf16le.xml"
);

/// The 11G custom catalog, parsed once per test binary.
pub(crate) fn f11g() -> Arc<Catalog> {
    static C: OnceLock<Arc<Catalog>> = OnceLock::new();
    C.get_or_init(|| Arc::new(read_catalog_file(F11G).expect("11g fixture")))
        .clone()
}

/// The 2025 UTF-16LE excerpt.
pub(crate) fn f25() -> Arc<Catalog> {
    static C: OnceLock<Arc<Catalog>> = OnceLock::new();
    C.get_or_init(|| Arc::new(read_catalog_file(F25).expect("25 fixture")))
        .clone()
}

/// An installed, updateable inventory member.
pub(crate) fn member(
    id: &str,
    cid: Option<&str>,
    version: &str,
    kind: ComponentKind,
) -> FirmwareComponent {
    FirmwareComponent {
        id: id.into(),
        name: id.into(),
        version: version.into(),
        component_id: cid.map(str::to_string),
        kind,
        updateable: true,
        installed: true,
        pci: None,
        release_date: None,
    }
}

/// A member known only by PCI ids (component id `0`).
pub(crate) fn pci_member(id: &str, version: &str, ids: [&str; 4]) -> FirmwareComponent {
    let mut m = member(id, Some("0"), version, ComponentKind::Other);
    m.pci = Some(PciIds {
        vendor_id: Some(ids[0].into()),
        device_id: Some(ids[1].into()),
        subsystem_vendor_id: Some(ids[2].into()).filter(|s: &String| !s.is_empty()),
        subsystem_id: Some(ids[3].into()).filter(|s: &String| !s.is_empty()),
    });
    m
}

/// System facts with a decimal system id.
pub(crate) fn system(system_id: Option<u32>, model: Option<&str>) -> SystemInfo {
    SystemInfo {
        model: model.map(str::to_string),
        service_tag: None,
        system_id,
        power: PowerState::On,
        health: Health::Ok,
        bios_version: None,
        bmc_version: None,
        bmc_model: None,
        manufacturer: None,
    }
}

/// An R730 (system id 0x0600 = 1536) as the 11G catalog knows it.
pub(crate) fn r730_inventory() -> Inventory {
    Inventory {
        components: vec![
            member("iDRAC", Some("25227"), "2.40.40.40", ComponentKind::Bmc),
            member("BIOS", Some("159"), "2.5.5", ComponentKind::Bios),
            member(
                "NIC.Integrated.1-1-1",
                Some("27474"),
                "20.2.17",
                ComponentKind::Nic,
            ),
            member(
                "NIC.Integrated.1-2-1",
                Some("27474"),
                "20.2.17",
                ComponentKind::Nic,
            ),
            member("Disk.Bay.0", Some("103498"), "FJ23", ComponentKind::Drive),
            member(
                "RAID.Integrated.1-1",
                Some("101548"),
                "25.5.4.0006",
                ComponentKind::Storage,
            ),
            member(
                "Diagnostics",
                Some("25806"),
                "4239.44",
                ComponentKind::Other,
            ),
            member(
                "Unknown gadget",
                Some("999999"),
                "1.0",
                ComponentKind::Other,
            ),
        ],
    }
}
