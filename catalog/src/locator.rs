//! Where a catalog package is downloaded from: `baseLocation` +
//! `baseLocationAccessProtocols` + `path`, Dell's host move
//! (`downloads.dell.com` → `dl.dell.com`, fact sheet §1), an empty
//! `baseLocation` meaning "next to the catalog", and local mirrors.

use crate::model::{Catalog, SoftwareComponent};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Dell's current download host.
pub const DELL_DOWNLOAD_HOST: &str = "dl.dell.com";

/// Hosts Dell retired; catalogs still name them in `baseLocation`.
pub const RETIRED_DELL_HOSTS: [&str; 2] = ["downloads.dell.com", "ftp.dell.com"];

/// A package location.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "location", rename_all = "snake_case")]
pub enum PackageLocation {
    /// Fetched over HTTP(S)/FTP; the BMC can fetch it too.
    Url(String),
    /// A file on this machine (catalog read from disk with an empty
    /// `baseLocation`): must be uploaded.
    File(PathBuf),
}

impl PackageLocation {
    /// As text, for messages.
    pub fn display(&self) -> String {
        match self {
            PackageLocation::Url(u) => u.clone(),
            PackageLocation::File(p) => p.display().to_string(),
        }
    }
}

/// Turns catalog paths into download locations.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageLocator {
    /// Where the catalog itself was read from (URL or file path).
    pub catalog_location: String,
    /// A mirror holding the same `path` layout: overrides `baseLocation`.
    pub mirror: Option<String>,
    /// The host that replaces retired Dell hosts (default [`DELL_DOWNLOAD_HOST`]).
    pub dell_host: String,
}

impl PackageLocator {
    /// A locator for a catalog read from `catalog_location`.
    pub fn new(catalog_location: impl Into<String>) -> Self {
        Self {
            catalog_location: catalog_location.into(),
            mirror: None,
            dell_host: DELL_DOWNLOAD_HOST.into(),
        }
    }

    /// Uses a mirror base URL (or directory) for every package.
    pub fn with_mirror(mut self, mirror: impl Into<String>) -> Self {
        self.mirror = Some(mirror.into());
        self
    }

    /// Uses another host for Dell's retired ones.
    pub fn with_dell_host(mut self, host: impl Into<String>) -> Self {
        self.dell_host = host.into();
        self
    }

    /// Where a package of `catalog` is.
    pub fn locate(&self, catalog: &Catalog, component: &SoftwareComponent) -> PackageLocation {
        let path = component
            .path
            .trim_start_matches(['/', '\\'])
            .replace('\\', "/");
        if let Some(m) = &self.mirror {
            return join_base(m, &path);
        }
        let base = catalog
            .manifest
            .base_location
            .as_deref()
            .map(str::trim)
            .unwrap_or("");
        if base.is_empty() {
            return join_base(&self.catalog_dir(), &path);
        }
        if base.contains("://") {
            return PackageLocation::Url(format!(
                "{}/{}",
                self.replace_retired(base).trim_end_matches('/'),
                path
            ));
        }
        let scheme = catalog
            .manifest
            .base_location_access_protocols
            .first()
            .map(|p| p.to_ascii_lowercase())
            .filter(|p| matches!(p.as_str(), "http" | "https" | "ftp"))
            .unwrap_or_else(|| "https".into());
        let base = self.replace_retired(base);
        PackageLocation::Url(format!(
            "{scheme}://{}/{}",
            base.trim_end_matches('/'),
            path
        ))
    }

    /// `downloads.dell.com/...` → `dl.dell.com/...` (with or without scheme).
    fn replace_retired(&self, base: &str) -> String {
        let (scheme, rest) = match base.split_once("://") {
            Some((s, r)) => (Some(s), r),
            None => (None, base),
        };
        let (host, tail) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let host = if RETIRED_DELL_HOSTS
            .iter()
            .any(|h| h.eq_ignore_ascii_case(host))
        {
            self.dell_host.as_str()
        } else {
            host
        };
        match scheme {
            Some(s) => format!("{s}://{host}{tail}"),
            None => format!("{host}{tail}"),
        }
    }

    /// The catalog's directory (URL or path), with a trailing separator for URLs.
    fn catalog_dir(&self) -> String {
        let loc = &self.catalog_location;
        if loc.contains("://") {
            match url::Url::parse(loc).and_then(|u| u.join(".")) {
                Ok(u) => u.to_string(),
                Err(_) => loc.clone(),
            }
        } else {
            Path::new(loc)
                .parent()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        }
    }

    /// Replaces a retired Dell host in a catalog URL (`policy.catalogUrl`).
    pub fn rewrite_catalog_url(&self, url: &str) -> String {
        if url.contains("://") {
            self.replace_retired(url)
        } else {
            url.to_string()
        }
    }
}

fn join_base(base: &str, path: &str) -> PackageLocation {
    if base.contains("://") {
        PackageLocation::Url(format!("{}/{}", base.trim_end_matches('/'), path))
    } else if base.is_empty() {
        PackageLocation::File(PathBuf::from(path))
    } else {
        PackageLocation::File(Path::new(base).join(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Manifest;

    fn catalog(base: Option<&str>, protos: &[&str]) -> Catalog {
        Catalog {
            manifest: Manifest {
                base_location: base.map(str::to_string),
                base_location_access_protocols: protos.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn comp(path: &str) -> SoftwareComponent {
        SoftwareComponent {
            path: path.into(),
            vendor_version: "1".into(),
            ..Default::default()
        }
    }

    #[test]
    fn retired_dell_host_is_replaced() {
        let l = PackageLocator::new("https://dl.dell.com/catalog/Catalog.xml.gz");
        let c = catalog(Some("downloads.dell.com"), &["HTTPS"]);
        assert_eq!(
            l.locate(&c, &comp("FOLDER1/1/A.EXE")),
            PackageLocation::Url("https://dl.dell.com/FOLDER1/1/A.EXE".into())
        );
        let l = l.with_dell_host("dell-proxy.corp");
        assert_eq!(
            l.locate(&c, &comp("/FOLDER1/1/A.EXE")),
            PackageLocation::Url("https://dell-proxy.corp/FOLDER1/1/A.EXE".into())
        );
        assert_eq!(
            l.rewrite_catalog_url("https://downloads.dell.com/catalog/Catalog.xml.gz"),
            "https://dell-proxy.corp/catalog/Catalog.xml.gz"
        );
    }

    #[test]
    fn protocol_list_and_other_hosts() {
        let l = PackageLocator::new("c.xml");
        let c = catalog(Some("repo.example/dell"), &["HTTP", "HTTPS"]);
        assert_eq!(
            l.locate(&c, &comp("a/B.EXE")),
            PackageLocation::Url("http://repo.example/dell/a/B.EXE".into())
        );
        let c = catalog(Some("https://repo.example/x/"), &[]);
        assert_eq!(
            l.locate(&c, &comp("B.EXE")),
            PackageLocation::Url("https://repo.example/x/B.EXE".into())
        );
    }

    #[test]
    fn empty_base_is_relative_to_the_catalog() {
        let c = catalog(Some(""), &[]);
        let l = PackageLocator::new("https://mirror.example/repo/Catalog.xml");
        assert_eq!(
            l.locate(&c, &comp("BIOS_0W1XP_LN_2.6.0.BIN")),
            PackageLocation::Url("https://mirror.example/repo/BIOS_0W1XP_LN_2.6.0.BIN".into())
        );
        let l = PackageLocator::new("/srv/repo/Catalog.xml");
        assert_eq!(
            l.locate(&c, &comp("BIOS.BIN")),
            PackageLocation::File("/srv/repo/BIOS.BIN".into())
        );
        let c = catalog(None, &[]);
        assert_eq!(
            l.locate(&c, &comp("BIOS.BIN")),
            PackageLocation::File("/srv/repo/BIOS.BIN".into())
        );
    }

    #[test]
    fn mirror_overrides_base_location() {
        let c = catalog(Some("downloads.dell.com"), &["HTTPS"]);
        let l = PackageLocator::new("x").with_mirror("http://10.0.0.5/dell/");
        assert_eq!(
            l.locate(&c, &comp("FOLDER1/1/A.EXE")),
            PackageLocation::Url("http://10.0.0.5/dell/FOLDER1/1/A.EXE".into())
        );
    }
}
