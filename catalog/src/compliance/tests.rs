//! Compliance tests on the 11G fixture catalog (R730, system id 0600).

use super::*;
use crate::index::{IndexOptions, PackageFilter};
use crate::testutil::*;
use firmflow_core::model::UpdateMode;

fn linux_index() -> CatalogIndex {
    CatalogIndex::with_options(
        f11g(),
        IndexOptions {
            filter: PackageFilter::LinuxInBand,
            restrict_to_bundles: false,
        },
    )
}

fn policy() -> Policy {
    Policy::new(UpdateMode::LatestFromCatalog)
}

fn row<'a>(h: &'a HostCompliance, id: &str) -> &'a ComponentCompliance {
    h.components
        .iter()
        .find(|c| c.inventory_id == id)
        .unwrap_or_else(|| panic!("no row {id}"))
}

#[test]
fn report_per_component() {
    let idx = linux_index();
    let h = assess_host(
        &idx,
        "r730-01",
        &system(Some(1536), Some("PowerEdge R730")),
        &r730_inventory(),
        &policy(),
    )
    .expect("assess");
    assert_eq!(h.system_id_hex.as_deref(), Some("0600"));
    let idrac = row(&h, "iDRAC");
    assert_eq!(idrac.action, Action::Upgrade);
    assert_eq!(idrac.target.as_deref(), Some("2.50.50.50"));
    assert_eq!(idrac.kind, ComponentKind::Bmc);
    assert!(!idrac.reboot_required);
    assert!(idrac.will_install);
    let bios = row(&h, "BIOS");
    assert_eq!(bios.action, Action::Same);
    assert!(!bios.will_install);
    let nic = row(&h, "NIC.Integrated.1-1-1");
    assert_eq!(nic.action, Action::Upgrade);
    assert_eq!(nic.target.as_deref(), Some("20.6.52"));
    assert!(nic.reboot_required);
    assert_eq!(nic.criticality, Some(Criticality::Optional));
    let raid = row(&h, "RAID.Integrated.1-1");
    assert_eq!(raid.action, Action::Downgrade);
    assert!(!raid.will_install);
    assert!(
        raid.note
            .as_deref()
            .unwrap_or("")
            .contains("allowDowngrade")
    );
    let diag = row(&h, "Diagnostics");
    assert_eq!(diag.action, Action::Incomparable, "4239.44 vs 4239A36");
    assert!(!diag.will_install);
    assert_eq!(row(&h, "Unknown gadget").action, Action::NotInCatalog);
    assert_eq!(row(&h, "Disk.Bay.0").action, Action::Upgrade);

    let s = h.summary;
    assert_eq!(s.components, 8);
    assert_eq!(s.upgrade, 4);
    assert_eq!(s.downgrade, 1);
    assert_eq!(s.same, 1);
    assert_eq!(s.incomparable, 1);
    assert_eq!(s.not_in_catalog, 1);
    // Two NIC ports share one package.
    assert_eq!(s.to_install, 3);
    assert!(s.reboot_required);

    let json = serde_json::to_value(&h).expect("json");
    assert_eq!(json["components"][0]["action"], "upgrade");
    assert_eq!(json["summary"]["to_install"], 3);
    let table = h.table();
    assert!(table.lines().next().unwrap_or("").starts_with("HOST"));
    assert!(table.contains("incomparable"));
    assert!(table.contains("r730-01: 8 component(s): 4 upgrade"));
}

#[test]
fn policy_allows_downgrade_and_force() {
    let idx = linux_index();
    let mut p = policy();
    p.allow_downgrade = Some(true);
    p.force = Some(true);
    let h = assess_host(&idx, "h", &system(Some(1536), None), &r730_inventory(), &p).expect("ok");
    assert!(row(&h, "RAID.Integrated.1-1").will_install);
    assert!(row(&h, "BIOS").will_install);
    assert!(
        !row(&h, "Diagnostics").will_install,
        "incomparable never installs"
    );
    assert_eq!(
        h.model.as_deref(),
        Some("R730"),
        "catalog model name when the BMC gave none"
    );
}

#[test]
fn packages_are_collapsed_and_ordered() {
    let idx = linux_index();
    let mut p = policy();
    p.force = Some(true);
    let h = assess_host(&idx, "h", &system(Some(1536), None), &r730_inventory(), &p).expect("ok");
    let loc = PackageLocator::new("https://mirror.example/repo/Catalog.xml");
    let pkgs = h.packages(&idx, &loc);
    let names: Vec<(&str, ComponentKind)> = pkgs
        .iter()
        .map(|p| (p.component_id.as_str(), p.kind))
        .collect();
    assert_eq!(
        names,
        vec![
            ("25227", ComponentKind::Bmc),
            ("159", ComponentKind::Bios),
            ("27474", ComponentKind::Nic),
            ("103498", ComponentKind::Drive),
        ]
    );
    let idrac = &pkgs[0];
    assert_eq!(idrac.target_version, "2.50.50.50");
    assert_eq!(idrac.installed_version.as_deref(), Some("2.40.40.40"));
    assert!(idrac.checksum.as_deref().unwrap_or("").starts_with("md5:"));
    assert_eq!(
        idrac.source,
        PackageSource::ImageUri {
            uri: "https://mirror.example/repo/iDRAC-with-Lifecycle-Controller_Firmware_278FC_LN_2.50.50.50_A00.BIN".into()
        }
    );
    assert!(!idrac.is_disruptive());
    assert!(pkgs[1].is_disruptive());
    assert_eq!(
        idrac.criticality.as_deref().map(|c| !c.is_empty()),
        Some(true)
    );
}

#[test]
fn bmc_filter_explains_linux_only_catalogs() {
    let idx = CatalogIndex::new(f11g());
    let h = assess_host(
        &idx,
        "h",
        &system(Some(1536), None),
        &r730_inventory(),
        &policy(),
    )
    .expect("ok");
    let bios = row(&h, "BIOS");
    assert_eq!(bios.action, Action::NotInCatalog);
    assert!(
        bios.note.as_deref().unwrap_or("").contains(".EXE"),
        "{:?}",
        bios.note
    );
    assert_eq!(h.summary.to_install, 0);
}

#[test]
fn no_entry_for_the_model_is_a_clear_error() {
    let idx = linux_index();
    let err = assess_host(
        &idx,
        "h",
        &system(Some(0x0B4F), Some("PowerEdge HS5610")),
        &r730_inventory(),
        &policy(),
    )
    .expect_err("no model");
    let msg = err.to_string();
    assert!(
        msg.contains("0B4F")
            && msg.contains("HS5610")
            && msg.contains("dell-custom-catalog-11g-2017.xml"),
        "{msg}"
    );
    let err = assess_host(&idx, "h", &system(None, None), &r730_inventory(), &policy())
        .expect_err("no id");
    assert!(err.to_string().contains("none reported"), "{err}");
}

#[test]
fn non_updateable_and_previous_images_are_skipped() {
    let idx = linux_index();
    let mut inv = r730_inventory();
    for c in &mut inv.components {
        if c.id == "BIOS" {
            c.updateable = false;
        }
        if c.id == "iDRAC" {
            c.installed = false;
        }
    }
    let h = assess_host(&idx, "h", &system(Some(1536), None), &inv, &policy()).expect("ok");
    assert_eq!(h.summary.components, 6);
    assert!(
        h.components
            .iter()
            .all(|c| c.inventory_id != "BIOS" && c.inventory_id != "iDRAC")
    );
}

#[test]
fn only_non_dell_manufacturers_are_refused() {
    let idx = linux_index();
    let e = check_manufacturer(&idx, Some("Supermicro")).expect_err("not Dell");
    assert!(
        matches!(&e, CatalogError::NotDell { manufacturer, .. } if manufacturer == "Supermicro")
    );
    assert!(
        e.to_string()
            .contains("not a Dell system (Manufacturer: Supermicro), catalog does not apply"),
        "{e}"
    );
    assert!(check_manufacturer(&idx, Some("Dell Inc.")).is_ok());
    assert!(check_manufacturer(&idx, Some("  ")).is_ok());
    assert!(check_manufacturer(&idx, None).is_ok());
}

#[test]
fn assessing_a_non_dell_system_says_so_not_a_system_id_error() {
    let idx = linux_index();
    let mut sys = system(None, Some("X11DPi"));
    sys.manufacturer = Some("Supermicro".into());
    let e = assess_host(&idx, "h", &sys, &r730_inventory(), &policy()).expect_err("not Dell");
    assert!(matches!(e, CatalogError::NotDell { .. }), "{e}");
}
