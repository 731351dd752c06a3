//! firmflow-catalog: Dell firmware catalogs (`Catalog.xml`, `.xml.gz`),
//! version comparison, per-host matching and compliance, whole-campaign dry
//! runs, catalog and package sources, and the three
//! [`firmflow_core::artifacts::ArtifactResolver`] implementations
//! (`LATEST_FROM_CATALOG`, `SPECIFIC_PACKAGE`, `MULTIPART_FILE`).
//!
//! Re-exported by the Dell driver crate as `firmflow_redfish::catalog`.
//! Facts behind every rule: `shared/research/catalog.md` (the "fact sheet").
//!
//! Layers, bottom up: [`reader`] (bytes → [`Catalog`]), [`version`],
//! [`index`] (matching), [`compliance`] and [`order`], [`dryrun`];
//! [`locator`], [`source`], [`verify`] and [`mirror`] for where things come
//! from; [`resolver`] ties them to core's port.

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod compliance;
pub mod dryrun;
pub mod error;
pub mod index;
pub mod locator;
pub mod mirror;
pub mod model;
pub mod order;
pub mod reader;
pub mod resolver;
pub mod source;
pub mod verify;
pub mod version;

#[cfg(test)]
mod testutil;

pub use compliance::{
    Action, ComponentCompliance, HostCompliance, Summary, assess_host, check_manufacturer,
    render_table,
};
pub use dryrun::{DryRun, DryRunInput, DurationModel, HostFacts, dry_run};
pub use error::{CatalogError, Position};
pub use index::{CatalogIndex, IndexOptions, Lookup, PackageFilter};
pub use locator::{PackageLocation, PackageLocator};
pub use mirror::rewrite_base_location;
pub use model::*;
pub use reader::{read_catalog, read_catalog_bytes, read_catalog_file};
pub use resolver::{
    ArtifactOptions, CatalogResolver, CatalogResolverOptions, Delivery, ModeResolver,
    MultipartFileResolver, SpecificPackageResolver,
};
pub use source::{CatalogSource, LoadedCatalog};
pub use verify::{Checksum, PackageCache};
pub use version::{VersionOrdering, compare_bios_versions, compare_for_kind, compare_versions};
