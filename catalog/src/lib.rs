//! firmflow-catalog: Dell firmware catalogs (`Catalog.xml`, `.xml.gz`),
//! version comparison, per-host matching and compliance, whole-campaign dry
//! runs, catalog and package sources, and the three
//! [`firmflow_core::artifacts::ArtifactResolver`] implementations
//! (`LATEST_FROM_CATALOG`, `SPECIFIC_PACKAGE`, `MULTIPART_FILE`).
//!
//! Re-exported by the Dell driver crate as `firmflow_redfish::catalog`.
//! Facts behind every rule: `shared/research/catalog.md` (the "fact sheet").

pub mod error;
pub mod model;
pub mod reader;
pub mod version;

pub use error::{CatalogError, Position};
pub use model::*;
pub use reader::{read_catalog, read_catalog_bytes, read_catalog_file};
pub use version::{VersionOrdering, compare_bios_versions, compare_for_kind, compare_versions};
pub mod compliance;
pub mod index;
pub mod locator;
pub mod order;
#[cfg(test)]
mod testutil;

pub use compliance::{
    Action, ComponentCompliance, HostCompliance, Summary, assess_host, render_table,
};
pub use index::{CatalogIndex, IndexOptions, Lookup, PackageFilter};
pub use locator::{PackageLocation, PackageLocator};
pub mod resolver;
pub mod source;
pub mod verify;

pub use resolver::{
    ArtifactOptions, CatalogResolver, CatalogResolverOptions, Delivery, ModeResolver,
    MultipartFileResolver, SpecificPackageResolver,
};
pub use source::{CatalogSource, LoadedCatalog};
pub use verify::{Checksum, PackageCache};
pub mod dryrun;
pub use dryrun::{DryRun, DryRunInput, DurationModel, HostFacts, dry_run};
pub mod mirror;
pub use mirror::rewrite_base_location;
