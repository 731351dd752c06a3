//! The [`ArtifactResolver`] implementations for the three update modes:
//!
//! * [`CatalogResolver`] — `LATEST_FROM_CATALOG`: loads `policy.catalogUrl`,
//!   matches the host, keeps what the policy allows (upgrades; downgrades
//!   with `allowDowngrade`; same versions with `force`), verifies each
//!   package against the catalog's hash and size (download to the cache)
//!   unless verification is switched off, and returns them in install order;
//! * [`SpecificPackageResolver`] — `SPECIFIC_PACKAGE`: the plan's artifacts,
//!   matched to the host's components; each one is fetched and its checksum
//!   (sha256 or md5) and size verified **before** it is handed out, and the
//!   BMC then fetches the same URI;
//! * [`MultipartFileResolver`] — `MULTIPART_FILE`: local files, verified the
//!   same way, uploaded by the driver ([`PackageSource::LocalFile`]);
//! * [`ModeResolver`] dispatches on the plan's `updateMode`.

use crate::compliance::assess_host;
use crate::error::CatalogError;
use crate::index::{CatalogIndex, IndexOptions};
use crate::locator::{PackageLocation, PackageLocator};
use crate::order::sort_install_order;
use crate::source::CatalogSource;
use crate::verify::{Checksum, PackageCache};
use crate::version::{VersionOrdering, compare_for_kind};
use async_trait::async_trait;
use firmflow_core::artifacts::{ArtifactResolver, Error, ResolveRequest};
use firmflow_core::model::{Artifact, ComponentKind, Package, PackageSource, UpdateMode};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// How catalog packages reach the BMC.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Delivery {
    /// The BMC fetches each package from its URL (`SimpleUpdate ImageURI`).
    #[default]
    ImageUri,
    /// firmflow downloads and verifies each package, the driver uploads it.
    Upload,
    /// The BMC installs from the catalog repository (`InstallFromRepository`).
    Repository {
        /// Base of the repository (share or URL) holding the catalog.
        repository_uri: String,
        /// Catalog file name inside it.
        catalog_file: String,
    },
}

/// Settings of [`CatalogResolver`].
#[derive(Clone, Debug, Default)]
pub struct CatalogResolverOptions {
    /// Matching options (package filter, bundle restriction).
    pub index: IndexOptions,
    /// A mirror base URL replacing `baseLocation`.
    pub mirror: Option<String>,
    /// How packages reach the BMC.
    pub delivery: Delivery,
    /// Download and verify every package before handing it out (on by
    /// default through [`CatalogResolver::new`]).
    pub verify: bool,
}

/// `LATEST_FROM_CATALOG`.
#[derive(Debug)]
pub struct CatalogResolver {
    source: Arc<CatalogSource>,
    cache: Arc<PackageCache>,
    options: CatalogResolverOptions,
    indexes: Mutex<HashMap<String, Arc<CatalogIndex>>>,
}

impl CatalogResolver {
    /// A resolver that verifies every package through `cache`.
    pub fn new(source: Arc<CatalogSource>, cache: Arc<PackageCache>) -> Self {
        Self::with_options(
            source,
            cache,
            CatalogResolverOptions {
                verify: true,
                ..Default::default()
            },
        )
    }

    /// A resolver with explicit options.
    pub fn with_options(
        source: Arc<CatalogSource>,
        cache: Arc<PackageCache>,
        options: CatalogResolverOptions,
    ) -> Self {
        Self {
            source,
            cache,
            options,
            indexes: Mutex::new(HashMap::new()),
        }
    }

    /// The index of the catalog at `url` (loaded and indexed once per content).
    pub async fn index_for(&self, url: &str) -> Result<(Arc<CatalogIndex>, String), CatalogError> {
        let loaded = self.source.load(url).await?;
        let hit = self
            .indexes
            .lock()
            .ok()
            .and_then(|m| m.get(&loaded.sha256).cloned());
        let index = match hit {
            Some(i) => i,
            None => {
                let i = Arc::new(CatalogIndex::with_options(
                    loaded.catalog.clone(),
                    self.options.index,
                ));
                if let Ok(mut m) = self.indexes.lock() {
                    m.insert(loaded.sha256.clone(), i.clone());
                }
                i
            }
        };
        Ok((index, self.source.effective_location(url)))
    }

    fn locator(&self, catalog_location: &str) -> PackageLocator {
        let mut l = PackageLocator::new(catalog_location).with_dell_host(self.source.dell_host());
        if let Some(m) = &self.options.mirror {
            l = l.with_mirror(m.clone());
        }
        l
    }
}

#[async_trait]
impl ArtifactResolver for CatalogResolver {
    async fn resolve(&self, req: ResolveRequest<'_>) -> Result<Vec<Package>, Error> {
        let host = req.host.fqdn.clone();
        let policy = &req.plan.policy;
        let Some(url) = policy
            .catalog_url
            .as_deref()
            .filter(|u| !u.trim().is_empty())
        else {
            return Err(Error::Source {
                source_name: format!("plan {}", req.plan.id),
                message: "LATEST_FROM_CATALOG needs policy.catalogUrl".into(),
                transient: false,
            });
        };
        let (index, location) = self.index_for(url).await?;
        let report =
            assess_host(&index, &host, req.system, req.inventory, policy).map_err(|e| match e {
                CatalogError::NoModel { .. } | CatalogError::NotDell { .. } => Error::NoMatch {
                    host: host.clone(),
                    message: e.to_string(),
                },
                other => other.into(),
            })?;
        let mut packages = report.packages(&index, &self.locator(&location));
        for p in &mut packages {
            match &self.options.delivery {
                Delivery::Repository {
                    repository_uri,
                    catalog_file,
                } => {
                    p.source = PackageSource::Repository {
                        repository_uri: repository_uri.clone(),
                        catalog_file: catalog_file.clone(),
                    };
                }
                Delivery::ImageUri | Delivery::Upload => {
                    let local = matches!(p.source, PackageSource::LocalFile { .. });
                    if self.options.verify || local || self.options.delivery == Delivery::Upload {
                        let path = verify_package(&self.cache, p).await?;
                        if local || self.options.delivery == Delivery::Upload {
                            p.source = PackageSource::LocalFile {
                                path: path.display().to_string(),
                            };
                        }
                    }
                }
            }
        }
        tracing::info!(
            host = %host,
            packages = packages.len(),
            upgrades = report.summary.upgrade,
            "catalog resolved"
        );
        Ok(packages)
    }
}

/// Fetches a package to the cache and verifies checksum and size.
async fn verify_package(cache: &PackageCache, p: &Package) -> Result<PathBuf, Error> {
    let location = match &p.source {
        PackageSource::ImageUri { uri } => location_of(uri),
        PackageSource::LocalFile { path } => PackageLocation::File(PathBuf::from(path)),
        PackageSource::Repository { .. } => return Ok(PathBuf::new()),
    };
    let checksum = match p.checksum.as_deref().map(Checksum::parse).transpose() {
        Ok(c) => c,
        Err(m) => {
            return Err(Error::Verification {
                package: location.display(),
                message: m,
            });
        }
    };
    cache
        .fetch_verified(&location, checksum.as_ref(), p.size_bytes)
        .await
        .map_err(Error::from)
}

fn location_of(uri: &str) -> PackageLocation {
    let lower = uri.to_ascii_lowercase();
    if let Some(p) = uri.strip_prefix("file://") {
        PackageLocation::File(PathBuf::from(p))
    } else if lower.contains("://") {
        PackageLocation::Url(uri.to_string())
    } else {
        PackageLocation::File(PathBuf::from(uri))
    }
}

/// Settings shared by the artifact resolvers.
#[derive(Clone, Copy, Debug)]
pub struct ArtifactOptions {
    /// Refuse artifacts without a checksum (default: yes).
    pub require_checksum: bool,
}

impl Default for ArtifactOptions {
    fn default() -> Self {
        Self {
            require_checksum: true,
        }
    }
}

/// `SPECIFIC_PACKAGE`: the plan's artifacts, verified, fetched by the BMC.
#[derive(Debug)]
pub struct SpecificPackageResolver {
    cache: Arc<PackageCache>,
    options: ArtifactOptions,
}

impl SpecificPackageResolver {
    /// A resolver verifying through `cache`.
    pub fn new(cache: Arc<PackageCache>) -> Self {
        Self {
            cache,
            options: ArtifactOptions::default(),
        }
    }
    /// With options.
    pub fn with_options(cache: Arc<PackageCache>, options: ArtifactOptions) -> Self {
        Self { cache, options }
    }
}

#[async_trait]
impl ArtifactResolver for SpecificPackageResolver {
    async fn resolve(&self, req: ResolveRequest<'_>) -> Result<Vec<Package>, Error> {
        resolve_artifacts(&self.cache, self.options, req, false).await
    }
}

/// `MULTIPART_FILE`: local package files, verified, uploaded by the driver.
#[derive(Debug)]
pub struct MultipartFileResolver {
    cache: Arc<PackageCache>,
    options: ArtifactOptions,
}

impl MultipartFileResolver {
    /// A resolver verifying through `cache`.
    pub fn new(cache: Arc<PackageCache>) -> Self {
        Self {
            cache,
            options: ArtifactOptions::default(),
        }
    }
    /// With options.
    pub fn with_options(cache: Arc<PackageCache>, options: ArtifactOptions) -> Self {
        Self { cache, options }
    }
}

#[async_trait]
impl ArtifactResolver for MultipartFileResolver {
    async fn resolve(&self, req: ResolveRequest<'_>) -> Result<Vec<Package>, Error> {
        resolve_artifacts(&self.cache, self.options, req, true).await
    }
}

/// Metadata keys read from an artifact: `rebootRequired` (bool) and
/// `criticality` (text); anything else is ignored.
fn meta_bool(a: &Artifact, key: &str) -> Option<bool> {
    a.metadata.get(key).and_then(|v| {
        v.as_bool()
            .or_else(|| v.as_str().and_then(crate::reader::parse_bool))
    })
}

async fn resolve_artifacts(
    cache: &PackageCache,
    options: ArtifactOptions,
    req: ResolveRequest<'_>,
    upload: bool,
) -> Result<Vec<Package>, Error> {
    let host = &req.host.fqdn;
    let policy = &req.plan.policy;
    let mut out: Vec<Package> = Vec::new();
    let mut unmatched = Vec::new();
    for a in req.artifacts {
        let Some(member) = req.inventory.installed_for(a.component.trim()) else {
            unmatched.push(a.component.clone());
            continue;
        };
        let name = format!("{} ({})", member.name, a.image_uri);
        let target = a.version.clone().unwrap_or_default();
        let verdict = if target.trim().is_empty() {
            VersionOrdering::Incomparable
        } else {
            compare_for_kind(member.kind, &member.version, &target)
        };
        match verdict {
            VersionOrdering::Newer => {}
            VersionOrdering::Older if policy.allow_downgrade() => {}
            VersionOrdering::Older => {
                return Err(Error::Refused {
                    component: member.name.clone(),
                    message: format!(
                        "{target} is older than the installed {}: downgrade refused (policy.allowDowngrade is off)",
                        member.version
                    ),
                });
            }
            VersionOrdering::Same if policy.force() => {}
            VersionOrdering::Same => {
                tracing::info!(host = %host, component = %member.name, version = %target, "already installed; skipped");
                continue;
            }
            VersionOrdering::Incomparable if policy.force() => {}
            VersionOrdering::Incomparable => {
                return Err(Error::Refused {
                    component: member.name.clone(),
                    message: if target.trim().is_empty() {
                        format!(
                            "artifact {} has no version: cannot tell an upgrade from a downgrade; set policy.force to install it",
                            a.image_uri
                        )
                    } else {
                        format!(
                            "versions {:?} (installed) and {target:?} cannot be compared; set policy.force to install it",
                            member.version
                        )
                    },
                });
            }
        }
        let checksum = match a.checksum.as_deref().map(Checksum::parse).transpose() {
            Ok(c) => c,
            Err(m) => {
                return Err(Error::Verification {
                    package: a.image_uri.clone(),
                    message: m,
                });
            }
        };
        if checksum.is_none() && options.require_checksum {
            return Err(Error::Verification {
                package: a.image_uri.clone(),
                message: "no checksum given: sha256:<hex> or md5:<hex> is required to verify it before it reaches a BMC".into(),
            });
        }
        let size = match a.size_bytes {
            Some(s) if s <= 0 => {
                return Err(Error::Verification {
                    package: a.image_uri.clone(),
                    message: format!("size {s} is not positive"),
                });
            }
            s => s.map(|s| s as u64),
        };
        let location = location_of(&a.image_uri);
        if let PackageLocation::Url(u) = &location {
            let l = u.to_ascii_lowercase();
            if !(l.starts_with("http://") || l.starts_with("https://")) {
                return Err(Error::Verification {
                    package: a.image_uri.clone(),
                    message: "firmflow verifies packages over http(s) or from local files only; serve it over HTTP(S) or use MULTIPART_FILE".into(),
                });
            }
        }
        if upload && matches!(location, PackageLocation::Url(_)) {
            return Err(Error::Verification {
                package: a.image_uri.clone(),
                message: "MULTIPART_FILE needs a local file path".into(),
            });
        }
        if !upload && matches!(location, PackageLocation::File(_)) {
            return Err(Error::Verification {
                package: a.image_uri.clone(),
                message: "SPECIFIC_PACKAGE needs a URI the BMC can fetch (http(s)://); use MULTIPART_FILE for local files".into(),
            });
        }
        let path = cache
            .fetch_verified(&location, checksum.as_ref(), size)
            .await?;
        let kind = member.kind;
        let source = if upload {
            PackageSource::LocalFile {
                path: path.display().to_string(),
            }
        } else {
            PackageSource::ImageUri {
                uri: a.image_uri.clone(),
            }
        };
        let component_id = member
            .component_id
            .clone()
            .filter(|c| !c.trim().is_empty() && c.trim() != "0")
            .unwrap_or_else(|| a.component.clone());
        if out
            .iter()
            .any(|p| p.component_id == component_id && p.source == source)
        {
            continue;
        }
        out.push(Package {
            component_id,
            name,
            kind,
            target_version: target,
            installed_version: Some(member.version.clone()),
            source,
            checksum: checksum.map(|c| c.to_core_string()),
            size_bytes: size,
            reboot_required: meta_bool(a, "rebootRequired").unwrap_or(kind != ComponentKind::Bmc),
            criticality: a
                .metadata
                .get("criticality")
                .and_then(|v| v.as_str())
                .map(str::to_string),
        });
    }
    if out.is_empty() && !unmatched.is_empty() && unmatched.len() == req.artifacts.len() {
        return Err(Error::NoMatch {
            host: host.clone(),
            message: format!(
                "no artifact matches a component of this host (looked for {})",
                unmatched.join(", ")
            ),
        });
    }
    if !unmatched.is_empty() {
        tracing::info!(host = %host, components = ?unmatched, "artifacts for components this host does not have were skipped");
    }
    sort_install_order(&mut out);
    Ok(out)
}

/// Dispatches on `policy.updateMode`.
#[derive(Debug)]
pub struct ModeResolver {
    /// `LATEST_FROM_CATALOG`.
    pub catalog: CatalogResolver,
    /// `SPECIFIC_PACKAGE`.
    pub specific: SpecificPackageResolver,
    /// `MULTIPART_FILE`.
    pub multipart: MultipartFileResolver,
}

impl ModeResolver {
    /// All three resolvers over one catalog source and package cache.
    pub fn new(source: Arc<CatalogSource>, cache: Arc<PackageCache>) -> Self {
        Self {
            catalog: CatalogResolver::new(source, cache.clone()),
            specific: SpecificPackageResolver::new(cache.clone()),
            multipart: MultipartFileResolver::new(cache),
        }
    }
}

#[async_trait]
impl ArtifactResolver for ModeResolver {
    async fn resolve(&self, req: ResolveRequest<'_>) -> Result<Vec<Package>, Error> {
        match &req.plan.policy.update_mode {
            UpdateMode::LatestFromCatalog => self.catalog.resolve(req).await,
            UpdateMode::SpecificPackage => self.specific.resolve(req).await,
            UpdateMode::MultipartFile => self.multipart.resolve(req).await,
            UpdateMode::Unknown(m) => Err(Error::Source {
                source_name: format!("plan {}", req.plan.id),
                message: format!("unknown update mode {m:?}"),
                transient: false,
            }),
        }
    }
}

#[cfg(test)]
mod tests;
