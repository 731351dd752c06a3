//! Matching a catalog to one server's inventory (fact sheet §3).
//!
//! [`CatalogIndex`] is built once per catalog and filter, then answers, for a
//! system id and an inventory member, which package (if any) applies:
//!
//! * **system**: the catalog's `Model@systemID` is 4-hex (`0627`), Redfish
//!   gives a decimal (`1575`); both become the same `u32`. When the BMC gave
//!   no system id, the model name (`PowerEdge R730xd` → `R730xd`) is tried;
//! * **componentID first**: a member whose `component_id` is set and not
//!   `"0"` matches `Device@componentID`;
//! * **PCI ids** otherwise (or when the component id finds nothing): vendor
//!   and device must be present and equal; subsystem ids must be equal when
//!   both sides give them (omsdk allows partial matches the same way);
//! * **packageType filter before choosing** ([`PackageFilter`]): iDRAC only
//!   applies Windows DUPs (`.EXE`, `LW64`/`LWXP`) and iDRAC images, never
//!   Linux `.BIN`; filtering after choosing would pick a `.BIN` twin;
//! * **duplicates collapsed**: the same component in several packages or
//!   versions yields one choice: the highest `vendorVersion`; when versions
//!   are equal or incomparable, the latest `dateTime`, then `releaseDate`,
//!   then the path (so the choice never depends on file order).

use crate::model::{Catalog, PackageFormat, PciInfo, SoftwareComponent, basename};
use crate::version::{VersionOrdering, compare_versions};
use firmflow_core::bmc::{FirmwareComponent, PciIds, SystemInfo};
use firmflow_core::model::MgmtKind;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Which package files a host can take.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PackageFilter {
    /// Out-of-band through the BMC: Windows DUPs and iDRAC images only.
    #[default]
    Bmc,
    /// In-band on a Linux host (DSU-style): Linux `.BIN` DUPs only.
    LinuxInBand,
    /// Everything (reports, analysis).
    Any,
}

impl PackageFilter {
    /// Whether a package passes.
    pub fn accepts(&self, c: &SoftwareComponent) -> bool {
        match self {
            PackageFilter::Bmc => matches!(
                c.format(),
                PackageFormat::WindowsDup | PackageFormat::IdracImage
            ),
            PackageFilter::LinuxInBand => c.format() == PackageFormat::LinuxDup,
            PackageFilter::Any => true,
        }
    }

    /// The filter for a host's management kind: every firmflow driver
    /// (iDRAC, generic Redfish, racadm) updates out-of-band.
    pub fn for_mgmt_kind(_kind: &MgmtKind) -> Self {
        PackageFilter::Bmc
    }

    /// Why a package was filtered out, for reports.
    pub fn refusal(&self) -> &'static str {
        match self {
            PackageFilter::Bmc => {
                "the catalog only has packages the BMC cannot apply (Linux .BIN or other); iDRAC needs Windows .EXE DUPs"
            }
            PackageFilter::LinuxInBand => "the catalog only has non-Linux packages for it",
            PackageFilter::Any => "filtered",
        }
    }
}

/// How the index is built.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexOptions {
    /// Package filter.
    pub filter: PackageFilter,
    /// Only offer packages listed in a `SoftwareBundle` targeting the
    /// system (when the catalog has one for it).
    pub restrict_to_bundles: bool,
}

/// What the catalog has for one inventory member.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Lookup<'a> {
    /// The chosen package, and whether it was found through PCI ids.
    Found {
        /// The package.
        package: &'a SoftwareComponent,
        /// Its position in [`Catalog::components`].
        index: usize,
        /// The matching device's position in the component's devices.
        device: usize,
        /// Matched by PCI ids rather than component id.
        by_pci: bool,
        /// The catalog's component id for it (the device entry that matched).
        catalog_component_id: Option<&'a str>,
    },
    /// Packages exist but none passes the filter.
    FilteredOut {
        /// How many were refused.
        refused: u32,
    },
    /// Nothing for this component and system.
    NotListed,
    /// The member has neither a component id nor PCI ids.
    NoIdentity,
}

#[derive(Debug, Default)]
struct Selection {
    best: Option<(usize, usize)>,
    refused: u32,
}

#[derive(Debug, Default)]
struct SystemEntry {
    model: Option<String>,
    by_component: HashMap<Box<str>, Selection>,
    /// (PCI ids, component index, device index) of accepted packages.
    pci: Vec<(PciInfo, usize, usize)>,
    pci_refused: Vec<PciInfo>,
}

/// Strings of one catalog component, shared by every report row that
/// names it (10,000 hosts must not copy the same name 10,000 times).
#[derive(Debug, Clone)]
pub(crate) struct Shared {
    pub(crate) name: Option<Arc<str>>,
    pub(crate) version: Arc<str>,
    pub(crate) path: Arc<str>,
    /// Component id of each device, by device index.
    pub(crate) device_ids: Vec<Option<Arc<str>>>,
}

/// A catalog prepared for fast per-host matching.
#[derive(Debug)]
pub struct CatalogIndex {
    catalog: Arc<Catalog>,
    options: IndexOptions,
    systems: HashMap<u32, SystemEntry>,
    by_model: HashMap<String, u32>,
    shared: Vec<Shared>,
    source: Arc<str>,
    version: Option<Arc<str>>,
}

impl CatalogIndex {
    /// Indexes `catalog` with the default options (BMC filter).
    pub fn new(catalog: Arc<Catalog>) -> Self {
        Self::with_options(catalog, IndexOptions::default())
    }

    /// Indexes `catalog`.
    pub fn with_options(catalog: Arc<Catalog>, options: IndexOptions) -> Self {
        let mut systems: HashMap<u32, SystemEntry> = HashMap::new();
        let mut by_model = HashMap::new();
        let bundle_sets: HashMap<u32, HashSet<String>> = if options.restrict_to_bundles {
            let mut m: HashMap<u32, HashSet<String>> = HashMap::new();
            for b in &catalog.bundles {
                for sid in b
                    .target_systems
                    .iter()
                    .flat_map(|br| &br.models)
                    .filter_map(|m| m.system_id_value)
                {
                    m.entry(sid)
                        .or_default()
                        .extend(b.packages.iter().map(|p| p.to_ascii_lowercase()));
                }
            }
            m
        } else {
            HashMap::new()
        };
        for (ci, comp) in catalog.components.iter().enumerate() {
            let accepted = options.filter.accepts(comp);
            let mut sids: Vec<u32> = comp
                .systems
                .iter()
                .flat_map(|b| &b.models)
                .filter_map(|m| m.system_id_value)
                .collect();
            sids.sort_unstable();
            sids.dedup();
            for m in comp.systems.iter().flat_map(|b| &b.models) {
                if let (Some(v), Some(name)) = (m.system_id_value, &m.display) {
                    by_model.entry(name.to_ascii_lowercase()).or_insert(v);
                }
            }
            for sid in sids {
                if let Some(set) = bundle_sets.get(&sid)
                    && !set.contains(&comp.basename().to_ascii_lowercase())
                {
                    continue;
                }
                let entry = systems.entry(sid).or_default();
                if entry.model.is_none() {
                    entry.model = comp
                        .systems
                        .iter()
                        .flat_map(|b| &b.models)
                        .find(|m| m.system_id_value == Some(sid))
                        .and_then(|m| m.display.clone());
                }
                let mut seen_ids: Vec<&str> = Vec::new();
                for (di, dev) in comp.devices.iter().enumerate() {
                    if let Some(cid) = dev.component_id.as_deref() {
                        if seen_ids.contains(&cid) {
                            continue;
                        }
                        seen_ids.push(cid);
                        let sel = entry.by_component.entry(cid.into()).or_default();
                        if accepted {
                            sel.best = Some(match sel.best {
                                Some(cur) if !better(&catalog, (ci, di), cur) => cur,
                                _ => (ci, di),
                            });
                        } else {
                            sel.refused += 1;
                        }
                    }
                    for p in &dev.pci {
                        if accepted {
                            entry.pci.push((p.clone(), ci, di));
                        } else {
                            entry.pci_refused.push(p.clone());
                        }
                    }
                }
            }
        }
        for b in &catalog.bundles {
            for m in b.target_systems.iter().flat_map(|br| &br.models) {
                if let (Some(v), Some(name)) = (m.system_id_value, &m.display) {
                    by_model.entry(name.to_ascii_lowercase()).or_insert(v);
                }
            }
        }
        let shared = catalog
            .components
            .iter()
            .map(|c| Shared {
                name: c.name.as_deref().map(Arc::from),
                version: Arc::from(c.vendor_version.as_str()),
                path: Arc::from(c.path.as_str()),
                device_ids: c
                    .devices
                    .iter()
                    .map(|d| d.component_id.as_deref().map(Arc::from))
                    .collect(),
            })
            .collect();
        let source = Arc::from(catalog.source.as_str());
        let version = catalog
            .manifest
            .version
            .clone()
            .or_else(|| catalog.manifest.date_time.map(|d| d.to_rfc3339()))
            .map(Arc::from);
        Self {
            catalog,
            options,
            systems,
            by_model,
            shared,
            source,
            version,
        }
    }

    pub(crate) fn shared(&self, component: usize) -> Option<&Shared> {
        self.shared.get(component)
    }

    /// The catalog's file or URL, shared.
    pub(crate) fn source_name(&self) -> &Arc<str> {
        &self.source
    }

    /// The catalog's version (or date), shared.
    pub(crate) fn version_label(&self) -> Option<&Arc<str>> {
        self.version.as_ref()
    }

    /// The catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The shared catalog.
    pub fn catalog_arc(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// The options it was built with.
    pub fn options(&self) -> IndexOptions {
        self.options
    }

    /// Whether the catalog lists anything for a system id.
    pub fn has_system(&self, system_id: u32) -> bool {
        self.systems.contains_key(&system_id)
    }

    /// The catalog's model name for a system id.
    pub fn model_name(&self, system_id: u32) -> Option<&str> {
        self.systems
            .get(&system_id)
            .and_then(|s| s.model.as_deref())
    }

    /// The system id to use for a host: the BMC's, else the one whose
    /// catalog model name matches the BMC's model (`PowerEdge R640` → `R640`).
    pub fn system_id_for(&self, system: &SystemInfo) -> Option<u32> {
        if let Some(id) = system.system_id {
            return Some(id);
        }
        let model = system.model.as_deref()?.trim();
        let short = model
            .strip_prefix("PowerEdge")
            .or_else(|| model.strip_prefix("POWEREDGE"))
            .unwrap_or(model)
            .trim()
            .to_ascii_lowercase();
        self.by_model.get(&short).copied()
    }

    /// Package `ci` and its device `di`: positions the index took from this
    /// same catalog when it was built, so they are always present.
    fn found(&self, ci: usize, di: usize, by_pci: bool) -> Option<Lookup<'_>> {
        let package = self.catalog.components.get(ci)?;
        let device = package.devices.get(di)?;
        Some(Lookup::Found {
            package,
            index: ci,
            device: di,
            by_pci,
            catalog_component_id: device.component_id.as_deref(),
        })
    }

    /// What the catalog has for one inventory member of a system.
    pub fn lookup(&self, system_id: u32, item: &FirmwareComponent) -> Lookup<'_> {
        let Some(entry) = self.systems.get(&system_id) else {
            return Lookup::NotListed;
        };
        let cid = item
            .component_id
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty() && *c != "0");
        let mut refused = 0;
        if let Some(cid) = cid
            && let Some(sel) = entry.by_component.get(cid)
        {
            if let Some((ci, di)) = sel.best
                && let Some(found) = self.found(ci, di, false)
            {
                return found;
            }
            refused = sel.refused;
        }
        if let Some(pci) = item
            .pci
            .as_ref()
            .filter(|p| p.vendor_id.is_some() && p.device_id.is_some())
        {
            let mut best: Option<(usize, usize)> = None;
            for (p, ci, di) in &entry.pci {
                if pci_matches(p, pci) {
                    best = Some(match best {
                        Some(cur) if !better(&self.catalog, (*ci, *di), cur) => cur,
                        _ => (*ci, *di),
                    });
                }
            }
            if let Some((ci, di)) = best
                && let Some(found) = self.found(ci, di, true)
            {
                return found;
            }
            refused += entry
                .pci_refused
                .iter()
                .filter(|p| pci_matches(p, pci))
                .count() as u32;
        } else if cid.is_none() {
            return Lookup::NoIdentity;
        }
        if refused > 0 {
            Lookup::FilteredOut { refused }
        } else {
            Lookup::NotListed
        }
    }

    /// The catalog component behind a bundle reference or file name.
    pub fn by_basename(&self, name: &str) -> Option<&SoftwareComponent> {
        let name = basename(name);
        self.catalog
            .components
            .iter()
            .find(|c| c.basename().eq_ignore_ascii_case(name))
    }
}

fn eq_id(a: &Option<String>, b: &Option<String>) -> Option<bool> {
    match (a.as_deref(), b.as_deref()) {
        (Some(x), Some(y)) if !x.is_empty() && !y.is_empty() => {
            let x = x.trim_start_matches("0x");
            let y = y.trim_start_matches("0x");
            Some(x.eq_ignore_ascii_case(y))
        }
        _ => None,
    }
}

/// Vendor and device must match; subsystem ids when both sides have them.
fn pci_matches(catalog: &PciInfo, inv: &PciIds) -> bool {
    eq_id(&catalog.vendor_id, &inv.vendor_id) == Some(true)
        && eq_id(&catalog.device_id, &inv.device_id) == Some(true)
        && eq_id(&catalog.sub_vendor_id, &inv.subsystem_vendor_id) != Some(false)
        && eq_id(&catalog.sub_device_id, &inv.subsystem_id) != Some(false)
}

/// Whether package `a` should replace the current choice `b`.
fn better(catalog: &Catalog, a: (usize, usize), b: (usize, usize)) -> bool {
    let (Some(pa), Some(pb)) = (catalog.components.get(a.0), catalog.components.get(b.0)) else {
        return false;
    };
    match compare_versions(&pb.vendor_version, &pa.vendor_version) {
        VersionOrdering::Newer => true,
        VersionOrdering::Older => false,
        VersionOrdering::Same | VersionOrdering::Incomparable => {
            let by_date = pa
                .date_time
                .cmp(&pb.date_time)
                .then(pa.release_date.cmp(&pb.release_date))
                .then_with(|| pb.path.cmp(&pa.path));
            by_date == Ordering::Greater
        }
    }
}

#[cfg(test)]
mod tests;
