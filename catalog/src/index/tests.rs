//! Matching tests on the real fixture catalogs.

use super::*;
use crate::testutil::*;
use firmflow_core::model::ComponentKind;

const R730: u32 = 0x0600;
const R6515: u32 = 0x08FC;

fn any(c: Arc<Catalog>) -> CatalogIndex {
    CatalogIndex::with_options(
        c,
        IndexOptions {
            filter: PackageFilter::Any,
            restrict_to_bundles: false,
        },
    )
}

#[test]
fn decimal_system_id_matches_hex_model() {
    let idx = any(f11g());
    assert!(idx.has_system(1536), "R730 is 0600 hex = 1536 decimal");
    assert_eq!(idx.model_name(1536), Some("R730"));
    assert!(!idx.has_system(0xFFFE));
    // No system id from the BMC: the model name finds it.
    assert_eq!(
        idx.system_id_for(&system(None, Some("PowerEdge R730"))),
        Some(R730)
    );
    assert_eq!(
        idx.system_id_for(&system(None, Some("PowerEdge R999"))),
        None
    );
}

#[test]
fn component_id_first_and_duplicates_collapse_to_the_highest_version() {
    let idx = any(f11g());
    // 27474 is in two NIC packages: 20.6.52 (Oct 2017) and 20.6.18.
    let nic = member("NIC", Some("27474"), "20.2.17", ComponentKind::Nic);
    match idx.lookup(R730, &nic) {
        Lookup::Found {
            package, by_pci, ..
        } => {
            assert_eq!(package.vendor_version, "20.6.52");
            assert!(!by_pci);
        }
        other => panic!("{other:?}"),
    }
    // Drives: FJ23 and FJ34 for the same component: FJ34 wins.
    let disk = member("Disk", Some("103498"), "FJ23", ComponentKind::Drive);
    match idx.lookup(R730, &disk) {
        Lookup::Found { package, .. } => assert_eq!(package.vendor_version, "FJ34"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        idx.lookup(
            R730,
            &member("x", Some("999999"), "1", ComponentKind::Other)
        ),
        Lookup::NotListed
    );
    assert_eq!(
        idx.lookup(0xFFFF, &nic),
        Lookup::NotListed,
        "unknown system"
    );
    assert_eq!(
        idx.lookup(R730, &member("x", None, "1", ComponentKind::Other)),
        Lookup::NoIdentity
    );
}

#[test]
fn the_choice_does_not_depend_on_file_order() {
    let mut reversed = (*f11g()).clone();
    reversed.components.reverse();
    let a = any(f11g());
    let b = any(Arc::new(reversed));
    for inv in r730_inventory().components {
        let pa = match a.lookup(R730, &inv) {
            Lookup::Found { package, .. } => Some(package.path.clone()),
            _ => None,
        };
        let pb = match b.lookup(R730, &inv) {
            Lookup::Found { package, .. } => Some(package.path.clone()),
            _ => None,
        };
        assert_eq!(pa, pb, "{}", inv.id);
    }
}

#[test]
fn bmc_filter_refuses_linux_bin_packages() {
    // The 11G custom catalog holds only LLXP .BIN packages.
    let idx = CatalogIndex::new(f11g());
    let bios = member("BIOS", Some("159"), "2.4.3", ComponentKind::Bios);
    assert_eq!(idx.lookup(R730, &bios), Lookup::FilteredOut { refused: 1 });
    let linux = CatalogIndex::with_options(
        f11g(),
        IndexOptions {
            filter: PackageFilter::LinuxInBand,
            restrict_to_bundles: false,
        },
    );
    assert!(matches!(linux.lookup(R730, &bios), Lookup::Found { .. }));
}

#[test]
fn pci_ids_when_the_component_id_is_zero() {
    let idx = CatalogIndex::new(f25());
    // Lower-case ids as Redfish gives them; component id "0".
    let nvme = pci_member("Disk.Bay.3", "1.0.0", ["1e0f", "0025", "1028", "223e"]);
    match idx.lookup(R6515, &nvme) {
        Lookup::Found {
            package,
            by_pci,
            catalog_component_id,
            ..
        } => {
            assert!(by_pci);
            assert_eq!(package.vendor_version, "2.0.0");
            assert_eq!(catalog_component_id, Some("112167"));
        }
        other => panic!("{other:?}"),
    }
    // Partial ids: no subsystem ids still matches vendor+device.
    let partial = pci_member("Disk.Bay.4", "1.0.0", ["1E0F", "0025", "", ""]);
    assert!(matches!(
        idx.lookup(R6515, &partial),
        Lookup::Found { by_pci: true, .. }
    ));
    // A different subsystem does not.
    let other = pci_member("Disk.Bay.5", "1.0.0", ["1E0F", "0025", "1028", "FFFF"]);
    assert_eq!(idx.lookup(R6515, &other), Lookup::NotListed);
    // Vendor only is not enough.
    let mut vendor_only = pci_member("x", "1", ["1E0F", "0025", "", ""]);
    if let Some(p) = vendor_only.pci.as_mut() {
        p.device_id = None;
    }
    assert_eq!(idx.lookup(R6515, &vendor_only), Lookup::NoIdentity);
    // Not on another model.
    assert_eq!(idx.lookup(R730, &nvme), Lookup::NotListed);
}

#[test]
fn bundles_restrict_when_asked() {
    let opts = IndexOptions {
        filter: PackageFilter::Any,
        restrict_to_bundles: true,
    };
    let idx = CatalogIndex::with_options(f11g(), opts);
    let cat = f11g();
    let bundle = cat.bundles_for_system(R730).next().expect("R730 bundle");
    // Every package offered for the R730 is listed in its bundle.
    for inv in r730_inventory().components {
        if let Lookup::Found { package, .. } = idx.lookup(R730, &inv) {
            assert!(
                bundle.packages.iter().any(|p| p == package.basename()),
                "{} not in bundle",
                package.path
            );
        }
    }
    assert!(idx.by_basename("R710_BIOS_4HKX2_LN_6.4.0.BIN").is_some());
}
