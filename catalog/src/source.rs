//! Catalog sources: HTTP(S) (reqwest + rustls) or a file. Dell's retired
//! hosts are replaced by the configured one (`downloads.dell.com` →
//! `dl.dell.com`). Catalogs are cached by the SHA-256 of their bytes: a
//! catalog fetched again (new URL, same content; or an unchanged file) is not
//! parsed again, and an HTTP `ETag` / `Last-Modified` avoids even the
//! download. Parsing runs on a blocking thread.

use crate::error::{CatalogError, redact_url};
use crate::locator::DELL_DOWNLOAD_HOST;
use crate::model::Catalog;
use crate::reader::{is_cab_name, read_catalog_bytes};
use crate::verify::{default_client, digest_bytes, http_error, status_error};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A catalog as loaded, with its content digest.
#[derive(Debug)]
pub struct LoadedCatalog {
    /// The parsed catalog.
    pub catalog: Arc<Catalog>,
    /// SHA-256 of the bytes as fetched (compressed or not).
    pub sha256: String,
    /// Where it was loaded from (after host rewriting; URLs redacted).
    pub location: String,
}

#[derive(Debug, Clone)]
struct Validators {
    etag: Option<String>,
    last_modified: Option<String>,
    loaded: Arc<LoadedCatalog>,
    /// When the server last confirmed it (tokio's clock: pausable in tests).
    checked_at: tokio::time::Instant,
}

/// Loads and caches catalogs.
#[derive(Debug)]
pub struct CatalogSource {
    client: reqwest::Client,
    dell_host: String,
    /// A catalog confirmed this recently is used without asking the server:
    /// a campaign resolves thousands of hosts against the same catalog.
    revalidate_after: Duration,
    by_location: Mutex<HashMap<String, Validators>>,
    by_digest: Mutex<HashMap<String, Arc<Catalog>>>,
    /// One load per location at a time: concurrent resolves of a cold
    /// cache wait for the first download instead of starting their own.
    in_flight: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// How long a fetched catalog is used before it is revalidated (default).
pub const DEFAULT_REVALIDATE_AFTER: Duration = Duration::from_secs(300);

impl CatalogSource {
    /// A source with a default rustls client and Dell's current host.
    pub fn new() -> Result<Self, CatalogError> {
        Ok(Self::with_client(default_client()?))
    }

    /// A source using `client`.
    pub fn with_client(client: reqwest::Client) -> Self {
        Self {
            client,
            dell_host: DELL_DOWNLOAD_HOST.into(),
            revalidate_after: DEFAULT_REVALIDATE_AFTER,
            by_location: Mutex::new(HashMap::new()),
            by_digest: Mutex::new(HashMap::new()),
            in_flight: Mutex::new(HashMap::new()),
        }
    }

    /// Uses a fetched catalog for `after` before asking the server again
    /// (conditional GET); `Duration::ZERO` revalidates every time.
    pub fn with_revalidate_after(mut self, after: Duration) -> Self {
        self.revalidate_after = after;
        self
    }

    /// Replaces Dell's retired hosts with `host` (a proxy or mirror host).
    pub fn with_dell_host(mut self, host: impl Into<String>) -> Self {
        self.dell_host = host.into();
        self
    }

    /// The host used for Dell downloads.
    pub fn dell_host(&self) -> &str {
        &self.dell_host
    }

    /// The location actually used for `location` (retired Dell host replaced).
    pub fn effective_location(&self, location: &str) -> String {
        crate::locator::PackageLocator::new(location)
            .with_dell_host(self.dell_host.clone())
            .rewrite_catalog_url(location)
    }

    /// Loads a catalog from an `http(s)://` URL, a `file://` URL or a path.
    pub async fn load(&self, location: &str) -> Result<Arc<LoadedCatalog>, CatalogError> {
        let location = self.effective_location(location.trim());
        if is_cab_name(&location) {
            return Err(CatalogError::CabNotSupported {
                file: redact_url(&location),
            });
        }
        let lower = location.to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            self.load_http(&location).await
        } else if let Some(path) = location.strip_prefix("file://") {
            self.load_file(path).await
        } else if lower.contains("://") {
            Err(CatalogError::Http {
                url: redact_url(&location),
                message:
                    "only http://, https://, file:// and plain paths are supported for catalogs"
                        .into(),
                transient: false,
            })
        } else {
            self.load_file(&location).await
        }
    }

    async fn load_file(&self, path: &str) -> Result<Arc<LoadedCatalog>, CatalogError> {
        let bytes = tokio::fs::read(path).await.map_err(|e| CatalogError::Io {
            file: path.to_string(),
            message: e.to_string(),
        })?;
        self.parse_cached(bytes, path.to_string()).await
    }

    async fn load_http(&self, url: &str) -> Result<Arc<LoadedCatalog>, CatalogError> {
        let shown = redact_url(url);
        let gate = self
            .in_flight
            .lock()
            .ok()
            .map(|mut m| m.entry(url.to_string()).or_default().clone());
        let _guard = match &gate {
            Some(g) => Some(g.lock().await),
            None => None,
        };
        let previous = self
            .by_location
            .lock()
            .ok()
            .and_then(|m| m.get(url).cloned());
        if let Some(p) = &previous
            && p.checked_at.elapsed() < self.revalidate_after
        {
            return Ok(p.loaded.clone());
        }
        let mut req = self.client.get(url);
        if let Some(p) = &previous {
            if let Some(e) = &p.etag {
                req = req.header(reqwest::header::IF_NONE_MATCH, e);
            }
            if let Some(l) = &p.last_modified {
                req = req.header(reqwest::header::IF_MODIFIED_SINCE, l);
            }
        }
        let resp = req.send().await.map_err(|e| http_error(&shown, e))?;
        let status = resp.status();
        if status == reqwest::StatusCode::NOT_MODIFIED
            && let Some(mut p) = previous
        {
            tracing::debug!(url = %shown, "catalog not modified");
            p.checked_at = tokio::time::Instant::now();
            let loaded = p.loaded.clone();
            if let Ok(mut m) = self.by_location.lock() {
                m.insert(url.to_string(), p);
            }
            return Ok(loaded);
        }
        if !status.is_success() {
            return Err(status_error(&shown, status));
        }
        let header = |name: reqwest::header::HeaderName| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let etag = header(reqwest::header::ETAG);
        let last_modified = header(reqwest::header::LAST_MODIFIED);
        let bytes = resp.bytes().await.map_err(|e| http_error(&shown, e))?;
        let loaded = self.parse_cached(bytes.to_vec(), shown).await?;
        if let Ok(mut m) = self.by_location.lock() {
            m.insert(
                url.to_string(),
                Validators {
                    etag,
                    last_modified,
                    loaded: loaded.clone(),
                    checked_at: tokio::time::Instant::now(),
                },
            );
        }
        Ok(loaded)
    }

    async fn parse_cached(
        &self,
        bytes: Vec<u8>,
        name: String,
    ) -> Result<Arc<LoadedCatalog>, CatalogError> {
        let sha256 = digest_bytes(&bytes).sha256;
        let hit = self
            .by_digest
            .lock()
            .ok()
            .and_then(|m| m.get(&sha256).cloned());
        let catalog = match hit {
            Some(c) => c,
            None => {
                let n = name.clone();
                let parsed = tokio::task::spawn_blocking(move || read_catalog_bytes(&bytes, &n))
                    .await
                    .map_err(|e| CatalogError::Io {
                        file: name.clone(),
                        message: format!("catalog parser task failed: {e}"),
                    })??;
                let c = Arc::new(parsed);
                if let Ok(mut m) = self.by_digest.lock() {
                    m.insert(sha256.clone(), c.clone());
                }
                c
            }
        };
        Ok(Arc::new(LoadedCatalog {
            catalog,
            sha256,
            location: name,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::F25;
    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    fn gz(b: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let _ = e.write_all(b);
        e.finish().unwrap_or_default()
    }

    #[tokio::test]
    async fn http_gzip_with_etag_and_digest_cache() {
        let server = MockServer::start().await;
        let body = gz(&std::fs::read(F25).expect("fixture"));
        Mock::given(method("GET"))
            .and(path("/catalog/Catalog.xml.gz"))
            .and(header("if-none-match", "\"v1\""))
            .respond_with(ResponseTemplate::new(304))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/catalog/Catalog.xml.gz"))
            .respond_with(
                ResponseTemplate::new(200)
                    .insert_header("ETag", "\"v1\"")
                    .set_body_bytes(body.clone()),
            )
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/mirror/Catalog.xml.gz"))
            .respond_with(ResponseTemplate::new(200).set_body_bytes(body))
            .mount(&server)
            .await;
        let src = CatalogSource::new()
            .expect("client")
            .with_revalidate_after(Duration::ZERO);
        let url = format!("{}/catalog/Catalog.xml.gz", server.uri());
        let a = src.load(&url).await.expect("first");
        assert!(a.catalog.gzip);
        assert_eq!(a.catalog.components.len(), 3);
        let b = src.load(&url).await.expect("304");
        assert!(Arc::ptr_eq(&a.catalog, &b.catalog));
        // Same bytes elsewhere: not parsed again.
        let c = src
            .load(&format!("{}/mirror/Catalog.xml.gz", server.uri()))
            .await
            .expect("mirror");
        assert!(Arc::ptr_eq(&a.catalog, &c.catalog));
        assert_eq!(a.sha256, c.sha256);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_loads_share_one_download_and_fresh_catalogs_are_reused() {
        let server = MockServer::start().await;
        let body = std::fs::read(F25).expect("fixture");
        Mock::given(method("GET"))
            .and(path("/Catalog.xml"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_bytes(body)
                    .set_delay(std::time::Duration::from_millis(50)),
            )
            .expect(1)
            .mount(&server)
            .await;
        let src = Arc::new(CatalogSource::new().expect("client"));
        let url = format!("{}/Catalog.xml", server.uri());
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (src, url) = (src.clone(), url.clone());
                tokio::spawn(async move { src.load(&url).await.map(|l| l.sha256.clone()) })
            })
            .collect();
        for t in tasks {
            let digest = t.await.expect("join").expect("load");
            assert_eq!(digest.len(), 64);
        }
        // Within the revalidation interval: no request at all (expect(1) above).
        src.load(&url).await.expect("fresh");
    }

    #[tokio::test]
    async fn http_errors_truncation_and_cab() {
        let server = MockServer::start().await;
        let body = gz(&std::fs::read(F25).expect("fixture"));
        Mock::given(method("GET"))
            .and(path("/cut.xml.gz"))
            .respond_with(
                ResponseTemplate::new(200).set_body_bytes(body[..body.len() / 2].to_vec()),
            )
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/down.xml"))
            .respond_with(ResponseTemplate::new(502))
            .mount(&server)
            .await;
        let src = CatalogSource::new().expect("client");
        let err = src
            .load(&format!("{}/cut.xml.gz", server.uri()))
            .await
            .expect_err("cut");
        assert!(matches!(err, CatalogError::Gzip { .. }), "{err}");
        assert!(err.to_string().contains("cut.xml.gz"));
        let err = src
            .load(&format!("{}/down.xml", server.uri()))
            .await
            .expect_err("502");
        assert!(err.is_transient());
        let err = src
            .load("https://ftp.dell.com/catalog/Catalog.cab")
            .await
            .expect_err("cab");
        assert!(matches!(err, CatalogError::CabNotSupported { .. }));
        let err = src.load("nfs://server/Catalog.xml").await.expect_err("nfs");
        assert!(!err.is_transient());
    }

    #[tokio::test]
    async fn files_and_retired_hosts() {
        let src = CatalogSource::new()
            .expect("client")
            .with_dell_host("proxy.corp");
        assert_eq!(
            src.effective_location("https://downloads.dell.com/catalog/Catalog.xml.gz"),
            "https://proxy.corp/catalog/Catalog.xml.gz"
        );
        let a = src.load(F25).await.expect("file");
        let b = src.load(&format!("file://{F25}")).await.expect("file url");
        assert!(Arc::ptr_eq(&a.catalog, &b.catalog));
        let err = src
            .load("/nonexistent/Catalog.xml")
            .await
            .expect_err("missing");
        assert!(err.to_string().contains("/nonexistent/Catalog.xml"));
    }
}
