//! Compliance: per host and component, what is installed, what the catalog
//! offers, and what firmflow would do under the plan's policy. Serialises
//! to JSON for the API and renders as a text table for the CLI.
//!
//! Policy rules: upgrades are installed; downgrades only with
//! `allowDowngrade`; the same version only with `force`; incomparable
//! versions never (an explicit result, not a guess: install such a package
//! as `SPECIFIC_PACKAGE` with `force` if it is really wanted).

use crate::error::CatalogError;
use crate::index::{CatalogIndex, Lookup};
use crate::locator::{PackageLocation, PackageLocator};
use crate::model::{Criticality, SoftwareComponent, system_id_hex};
use crate::order::sort_install_order;
use crate::version::{VersionOrdering, compare_for_kind};
use firmflow_core::bmc::{FirmwareComponent, Inventory, SystemInfo};
use firmflow_core::model::{ComponentKind, Package, PackageSource, Policy};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::Arc;

/// What the catalog means for one component.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// The catalog has a newer version.
    Upgrade,
    /// The catalog's version is older than the installed one.
    Downgrade,
    /// Already at the catalog's version.
    Same,
    /// The versions cannot be compared.
    Incomparable,
    /// The catalog has nothing (usable) for this component.
    NotInCatalog,
}

impl Action {
    /// Lower-case words for tables.
    pub fn as_str(&self) -> &'static str {
        match self {
            Action::Upgrade => "upgrade",
            Action::Downgrade => "downgrade",
            Action::Same => "same",
            Action::Incomparable => "incomparable",
            Action::NotInCatalog => "not-in-catalog",
        }
    }
}

/// One component of one host.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ComponentCompliance {
    /// Inventory member id.
    pub inventory_id: String,
    /// Component id (Dell ComponentId), when the BMC gave one.
    pub component_id: Option<String>,
    /// Component name (catalog name when matched, else the BMC's).
    pub name: Arc<str>,
    /// Kind (catalog-derived when matched).
    pub kind: ComponentKind,
    /// Installed version.
    pub installed: String,
    /// The catalog's `vendorVersion`, when it has a package.
    pub target: Option<Arc<str>>,
    /// What the versions mean.
    pub action: Action,
    /// Whether the policy lets firmflow install it.
    pub will_install: bool,
    /// Dell criticality of the package.
    pub criticality: Option<Criticality>,
    /// Whether installing it reboots the host (unknown in the catalog is
    /// treated as yes, except for BMC packages).
    pub reboot_required: bool,
    /// Package path in the catalog.
    pub package: Option<Arc<str>>,
    /// Matched by PCI ids (component id `0` or absent).
    pub matched_by_pci: bool,
    /// Why it is not installed, or other remarks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<Cow<'static, str>>,
    /// Index of the package in the catalog (not serialised).
    #[serde(skip)]
    pub(crate) catalog_component: Option<usize>,
    /// The catalog's component id of the matched device.
    #[serde(skip)]
    pub(crate) catalog_component_id: Option<Arc<str>>,
}

/// Counts over a host's components.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Components looked at.
    pub components: usize,
    /// Upgrades offered.
    pub upgrade: usize,
    /// Downgrades offered.
    pub downgrade: usize,
    /// At the catalog's version.
    pub same: usize,
    /// Incomparable.
    pub incomparable: usize,
    /// Not in the catalog.
    pub not_in_catalog: usize,
    /// Packages that would be installed (after collapsing duplicates).
    pub to_install: usize,
    /// Whether any package to install needs a host reboot.
    pub reboot_required: bool,
}

/// Compliance of one host.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HostCompliance {
    /// Host name (fqdn or BMC address).
    pub host: String,
    /// System id (decimal, as Redfish gives it).
    pub system_id: Option<u32>,
    /// The catalog's 4-hex form.
    pub system_id_hex: Option<String>,
    /// Model (BMC's, else the catalog's name).
    pub model: Option<String>,
    /// Catalog file or URL.
    pub catalog: Arc<str>,
    /// Catalog version / date, for the record.
    pub catalog_version: Option<Arc<str>>,
    /// Per component.
    pub components: Vec<ComponentCompliance>,
    /// Counts.
    pub summary: Summary,
}

/// Whether a system of this `Manufacturer` is one a Dell catalog can
/// apply to. An unknown manufacturer gets the benefit of the doubt (the
/// system-id match decides); any other than Dell is refused with
/// [`CatalogError::NotDell`] before system ids are compared.
pub fn check_manufacturer(
    index: &CatalogIndex,
    manufacturer: Option<&str>,
) -> Result<(), CatalogError> {
    match manufacturer.map(str::trim).filter(|m| !m.is_empty()) {
        Some(m) if !m.to_ascii_lowercase().contains("dell") => Err(CatalogError::NotDell {
            file: index.catalog().source.clone(),
            manufacturer: m.to_string(),
        }),
        _ => Ok(()),
    }
}

/// Builds the compliance of one host.
///
/// Errors with [`CatalogError::NoModel`] when the catalog has nothing for
/// the host's system id (or the host has none and its model is unknown).
pub fn assess_host(
    index: &CatalogIndex,
    host: &str,
    system: &SystemInfo,
    inventory: &Inventory,
    policy: &Policy,
) -> Result<HostCompliance, CatalogError> {
    check_manufacturer(index, system.manufacturer.as_deref())?;
    let catalog = index.catalog();
    let sid = index.system_id_for(system);
    let Some(sid) = sid.filter(|s| index.has_system(*s)) else {
        return Err(CatalogError::NoModel {
            file: catalog.source.clone(),
            system_id: sid
                .map(system_id_hex)
                .unwrap_or_else(|| "(none reported)".into()),
            model: system
                .model
                .clone()
                .unwrap_or_else(|| "unknown model".into()),
        });
    };
    let mut components = Vec::with_capacity(inventory.components.len());
    for item in inventory.installed().filter(|c| c.updateable) {
        components.push(assess_component(index, sid, item, policy));
    }
    let mut h = HostCompliance {
        host: host.to_string(),
        system_id: Some(sid),
        system_id_hex: Some(system_id_hex(sid)),
        model: system
            .model
            .clone()
            .or_else(|| index.model_name(sid).map(str::to_string)),
        catalog: index.source_name().clone(),
        catalog_version: index.version_label().cloned(),
        components,
        summary: Summary::default(),
    };
    h.summary = summarize(&h.components);
    Ok(h)
}

fn summarize(rows: &[ComponentCompliance]) -> Summary {
    let mut s = Summary {
        components: rows.len(),
        ..Default::default()
    };
    // A linear scan: a host has a few dozen components, a set would cost more.
    let mut seen: Vec<(Option<&str>, Option<&str>)> = Vec::new();
    for r in rows {
        match r.action {
            Action::Upgrade => s.upgrade += 1,
            Action::Downgrade => s.downgrade += 1,
            Action::Same => s.same += 1,
            Action::Incomparable => s.incomparable += 1,
            Action::NotInCatalog => s.not_in_catalog += 1,
        }
        let key = (r.catalog_component_id.as_deref(), r.package.as_deref());
        if r.will_install && !seen.contains(&key) {
            seen.push(key);
            s.to_install += 1;
            s.reboot_required |= r.reboot_required && r.kind != ComponentKind::Bmc;
        }
    }
    s
}

fn assess_component(
    index: &CatalogIndex,
    sid: u32,
    item: &FirmwareComponent,
    policy: &Policy,
) -> ComponentCompliance {
    let found = index.lookup(sid, item);
    // The catalog's shared name when matched, else the BMC's.
    let name = match &found {
        Lookup::Found { index: ci, .. } => index.shared(*ci).and_then(|s| s.name.clone()),
        _ => None,
    }
    .unwrap_or_else(|| Arc::from(item.name.as_str()));
    let mut row = ComponentCompliance {
        inventory_id: item.id.clone(),
        component_id: item.component_id.clone(),
        name,
        kind: item.kind,
        installed: item.version.clone(),
        target: None,
        action: Action::NotInCatalog,
        will_install: false,
        criticality: None,
        reboot_required: false,
        package: None,
        matched_by_pci: false,
        note: None,
        catalog_component: None,
        catalog_component_id: None,
    };
    match found {
        Lookup::Found {
            package,
            index: ci,
            device,
            by_pci,
            catalog_component_id: _,
        } => {
            let kind = match package.kind() {
                ComponentKind::Other => item.kind,
                k => k,
            };
            row.kind = kind;
            let shared = index.shared(ci);

            row.target = shared.map(|s| s.version.clone());
            row.criticality = package.criticality;
            row.reboot_required = reboot_needed(package, kind);
            row.package = shared.map(|s| s.path.clone());
            row.matched_by_pci = by_pci;
            row.catalog_component = Some(ci);
            row.catalog_component_id = shared
                .and_then(|s| s.device_ids.get(device))
                .and_then(|d| d.clone());
            let (action, will, note) = match compare_for_kind(
                kind,
                &item.version,
                &package.vendor_version,
            ) {
                VersionOrdering::Newer => (Action::Upgrade, true, None),
                VersionOrdering::Older if policy.allow_downgrade() => (
                    Action::Downgrade,
                    true,
                    Some(Cow::Borrowed("downgrade allowed by policy")),
                ),
                VersionOrdering::Older => (
                    Action::Downgrade,
                    false,
                    Some(Cow::Borrowed(
                        "downgrade refused: policy.allowDowngrade is off",
                    )),
                ),
                VersionOrdering::Same if policy.force() => (
                    Action::Same,
                    true,
                    Some(Cow::Borrowed("reinstalled: policy.force is on")),
                ),
                VersionOrdering::Same => (Action::Same, false, None),
                VersionOrdering::Incomparable => (
                    Action::Incomparable,
                    false,
                    // Static text: the row already shows both versions, and
                    // a quarter of a fleet can hit this path.
                    Some(Cow::Borrowed(
                        "the versions cannot be compared; not installed (use SPECIFIC_PACKAGE with force to install it anyway)",
                    )),
                ),
            };
            row.action = action;
            row.will_install = will;
            row.note = note;
        }
        Lookup::FilteredOut { refused } => {
            row.note = Some(Cow::Owned(format!(
                "{} ({refused} package(s))",
                index.options().filter.refusal()
            )));
        }
        Lookup::NotListed => {}
        Lookup::NoIdentity => {
            row.note = Some(Cow::Borrowed(
                "no component id and no PCI ids: cannot be matched",
            ));
        }
    }
    row
}

/// Unknown `rebootRequired` counts as a reboot, except for the BMC (it
/// restarts itself, never the host).
pub(crate) fn reboot_needed(c: &SoftwareComponent, kind: ComponentKind) -> bool {
    if kind == ComponentKind::Bmc {
        return false;
    }
    c.reboot_required.unwrap_or(true)
}

impl HostCompliance {
    /// The packages to install, duplicates collapsed (one package may cover
    /// several members: NIC ports, identical drives), in install order.
    pub fn packages(&self, index: &CatalogIndex, locator: &PackageLocator) -> Vec<Package> {
        let catalog = index.catalog();
        let mut seen: HashSet<(Option<&str>, &str)> = HashSet::new();
        let mut out = Vec::new();
        for r in self.components.iter().filter(|r| r.will_install) {
            let (Some(ci), Some(path)) = (r.catalog_component, r.package.as_deref()) else {
                continue;
            };
            if !seen.insert((r.catalog_component_id.as_deref(), path)) {
                continue;
            }
            let Some(comp) = catalog.components.get(ci) else {
                continue;
            };
            out.push(package_for(r, comp, catalog, locator));
        }
        sort_install_order(&mut out);
        out
    }

    /// The text table of this host.
    pub fn table(&self) -> String {
        render_table(std::slice::from_ref(self))
    }
}

/// The component id to put in a [`Package`]: the BMC's id, else (members
/// matched by PCI ids) the catalog device's component id, else the name.
fn package_component_id(r: &ComponentCompliance) -> String {
    r.component_id
        .clone()
        .filter(|c| !c.trim().is_empty() && c.trim() != "0")
        .or_else(|| r.catalog_component_id.as_deref().map(str::to_string))
        .unwrap_or_else(|| r.name.to_string())
}

fn package_for(
    r: &ComponentCompliance,
    comp: &SoftwareComponent,
    catalog: &crate::model::Catalog,
    locator: &PackageLocator,
) -> Package {
    let source = match locator.locate(catalog, comp) {
        PackageLocation::Url(uri) => PackageSource::ImageUri { uri },
        PackageLocation::File(p) => PackageSource::LocalFile {
            path: p.display().to_string(),
        },
    };
    Package {
        component_id: package_component_id(r),
        name: r.name.to_string(),
        kind: r.kind,
        target_version: comp.vendor_version.clone(),
        installed_version: Some(r.installed.clone()),
        source,
        checksum: comp.hashes.best(),
        size_bytes: comp.size,
        reboot_required: r.reboot_required,
        criticality: comp.criticality.map(|c| c.as_str().to_string()),
    }
}

/// A text table of several hosts' compliance, one line per component,
/// then one summary line per host.
pub fn render_table(hosts: &[HostCompliance]) -> String {
    let header = [
        "HOST",
        "COMPONENT",
        "INSTALLED",
        "TARGET",
        "ACTION",
        "INSTALL",
        "CRITICALITY",
        "REBOOT",
    ];
    let mut rows: Vec<[String; 8]> = Vec::new();
    for h in hosts {
        for c in &h.components {
            rows.push([
                h.host.clone(),
                clip(&c.name, 48),
                c.installed.clone(),
                c.target.as_deref().unwrap_or("-").to_string(),
                c.action.as_str().into(),
                if c.will_install { "yes" } else { "no" }.into(),
                c.criticality.map(|x| x.as_str()).unwrap_or("-").into(),
                if c.target.is_none() {
                    "-".into()
                } else if c.reboot_required {
                    "host".into()
                } else {
                    "no".into()
                },
            ]);
        }
    }
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r.iter()) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: &[&str]| {
        let mut l = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths.iter()).enumerate() {
            if i > 0 {
                l.push_str("  ");
            }
            let _ = write!(l, "{cell:<w$}");
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&mut out, &header);
    for r in &rows {
        let cells: Vec<&str> = r.iter().map(String::as_str).collect();
        line(&mut out, &cells);
    }
    for h in hosts {
        let s = &h.summary;
        let _ = writeln!(
            out,
            "{}: {} component(s): {} upgrade, {} downgrade, {} same, {} incomparable, {} not in catalog; {} package(s) to install{}",
            h.host,
            s.components,
            s.upgrade,
            s.downgrade,
            s.same,
            s.incomparable,
            s.not_in_catalog,
            s.to_install,
            if s.reboot_required {
                ", host reboot needed"
            } else {
                ""
            }
        );
    }
    out
}

fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests;
