//! Package integrity: checksums (`sha256:<hex>`, `md5:<hex>`, a bare
//! 64-hex value is SHA-256, a bare 32-hex value MD5) and sizes, verified on
//! this machine before anything reaches a BMC, and a download cache keyed
//! by checksum so each package is fetched and hashed once per process.

use crate::error::{CatalogError, redact_url};
use crate::locator::PackageLocation;
use md5::Md5;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An expected checksum.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Checksum {
    /// SHA-256, lower-case hex.
    Sha256(String),
    /// MD5, lower-case hex (what Dell's catalogs carry).
    Md5(String),
}

impl Checksum {
    /// Parses core's `algo:hex` form (or a bare hex value).
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (algo, hex) = match s.split_once(':') {
            Some((a, h)) => (a.trim().to_ascii_lowercase(), h.trim()),
            None if s.len() == 32 => ("md5".to_string(), s),
            None => ("sha256".to_string(), s),
        };
        let want = match algo.as_str() {
            "sha256" | "sha-256" => 64,
            "md5" => 32,
            other => {
                return Err(format!(
                    "unsupported checksum algorithm {other:?} (sha256 or md5)"
                ));
            }
        };
        if hex.len() != want || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!("{s:?} is not {algo}:<{want} hex digits>"));
        }
        let hex = hex.to_ascii_lowercase();
        Ok(if want == 64 {
            Checksum::Sha256(hex)
        } else {
            Checksum::Md5(hex)
        })
    }

    /// `sha256:<hex>` / `md5:<hex>`.
    pub fn to_core_string(&self) -> String {
        match self {
            Checksum::Sha256(h) => format!("sha256:{h}"),
            Checksum::Md5(h) => format!("md5:{h}"),
        }
    }

    fn cache_name(&self) -> String {
        match self {
            Checksum::Sha256(h) => format!("sha256-{h}"),
            Checksum::Md5(h) => format!("md5-{h}"),
        }
    }
}

/// Both digests of some bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Digests {
    /// SHA-256 hex.
    pub sha256: String,
    /// MD5 hex.
    pub md5: String,
    /// Length in bytes.
    pub size: u64,
}

impl Digests {
    /// Checks an expected checksum and size; the message says what differs.
    pub fn check(&self, checksum: Option<&Checksum>, size: Option<u64>) -> Result<(), String> {
        if let Some(want) = size
            && want != self.size
        {
            return Err(format!("size is {} bytes, expected {want}", self.size));
        }
        match checksum {
            Some(Checksum::Sha256(h)) if *h != self.sha256 => {
                Err(format!("sha256 is {}, expected {h}", self.sha256))
            }
            Some(Checksum::Md5(h)) if *h != self.md5 => {
                Err(format!("md5 is {}, expected {h}", self.md5))
            }
            _ => Ok(()),
        }
    }
}

struct Hasher {
    sha: Sha256,
    md5: Md5,
    size: u64,
}

impl Hasher {
    fn new() -> Self {
        Self {
            sha: Sha256::new(),
            md5: Md5::new(),
            size: 0,
        }
    }
    fn update(&mut self, b: &[u8]) {
        self.sha.update(b);
        self.md5.update(b);
        self.size += b.len() as u64;
    }
    fn finish(self) -> Digests {
        Digests {
            sha256: hex::encode(self.sha.finalize()),
            md5: hex::encode(self.md5.finalize()),
            size: self.size,
        }
    }
}

/// Digests of bytes in memory.
pub fn digest_bytes(b: &[u8]) -> Digests {
    let mut h = Hasher::new();
    h.update(b);
    h.finish()
}

/// The first `n` bytes of `buf`, which a read reported it filled.
fn filled<'b>(buf: &'b [u8], n: usize, file: &str) -> Result<&'b [u8], CatalogError> {
    buf.get(..n).ok_or_else(|| CatalogError::Io {
        file: file.to_string(),
        message: format!("a read reported {n} bytes into a {}-byte buffer", buf.len()),
    })
}

/// Digests of a file, streamed.
pub async fn digest_file(path: &Path) -> Result<Digests, CatalogError> {
    let name = path.display().to_string();
    let io = |e: std::io::Error| CatalogError::Io {
        file: name.clone(),
        message: e.to_string(),
    };
    let mut f = tokio::fs::File::open(path).await.map_err(io)?;
    let mut h = Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).await.map_err(io)?;
        if n == 0 {
            break;
        }
        h.update(filled(&buf, n, &name)?);
    }
    Ok(h.finish())
}

/// Downloads (or reads) packages and verifies them; verified files are
/// kept in a directory under their checksum, so a package shared by many
/// hosts is fetched once.
#[derive(Debug)]
pub struct PackageCache {
    dir: PathBuf,
    client: reqwest::Client,
    /// Files verified in this process, with their size: re-checked by size
    /// only, because hashing a 100 MB DUP for each of 10,000 hosts is waste.
    verified: Mutex<HashMap<(PathBuf, Option<Checksum>), u64>>,
    /// One download per checksum at a time: hosts resolving the same
    /// package together wait for the first download instead of repeating it.
    in_flight: Mutex<HashMap<Checksum, Arc<tokio::sync::Mutex<()>>>>,
}

impl PackageCache {
    /// A cache in `dir` (created when needed) using `client` for HTTP(S).
    pub fn new(dir: impl Into<PathBuf>, client: reqwest::Client) -> Self {
        Self {
            dir: dir.into(),
            client,
            verified: Mutex::new(HashMap::new()),
            in_flight: Mutex::new(HashMap::new()),
        }
    }

    /// A cache with a default rustls client (connect timeout 30 s).
    pub fn with_default_client(dir: impl Into<PathBuf>) -> Result<Self, CatalogError> {
        Ok(Self::new(dir, default_client()?))
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Fetches `location` and verifies it; returns the verified local file
    /// (the original file for local locations, a cache file for URLs).
    pub async fn fetch_verified(
        &self,
        location: &PackageLocation,
        checksum: Option<&Checksum>,
        size: Option<u64>,
    ) -> Result<PathBuf, CatalogError> {
        match location {
            PackageLocation::File(p) => self.copy_file(p, checksum, size).await,
            PackageLocation::Url(url) => self.fetch_url(url, checksum, size).await,
        }
    }

    async fn known(&self, p: &Path, c: Option<&Checksum>) -> Option<u64> {
        let size = self
            .verified
            .lock()
            .ok()?
            .get(&(p.to_path_buf(), c.cloned()))
            .copied()?;
        let meta = tokio::fs::metadata(p).await.ok()?;
        (meta.len() == size).then_some(size)
    }

    fn remember(&self, p: &Path, c: Option<&Checksum>, size: u64) {
        if let Ok(mut m) = self.verified.lock() {
            m.insert((p.to_path_buf(), c.cloned()), size);
        }
    }

    /// A local file is copied into the cache while it is hashed, and the
    /// copy is what gets uploaded: the original may change after it was
    /// verified, the copy cannot (the cache directory is firmflow's).
    async fn copy_file(
        &self,
        p: &Path,
        checksum: Option<&Checksum>,
        size: Option<u64>,
    ) -> Result<PathBuf, CatalogError> {
        self.store_verified(Origin::File(p), checksum, size).await
    }

    async fn fetch_url(
        &self,
        url: &str,
        checksum: Option<&Checksum>,
        size: Option<u64>,
    ) -> Result<PathBuf, CatalogError> {
        self.store_verified(Origin::Url(url), checksum, size).await
    }

    async fn store_verified(
        &self,
        origin: Origin<'_>,
        checksum: Option<&Checksum>,
        size: Option<u64>,
    ) -> Result<PathBuf, CatalogError> {
        let shown = origin.shown();
        let io = |e: std::io::Error| CatalogError::Io {
            file: shown.clone(),
            message: e.to_string(),
        };
        let gate = checksum.and_then(|c| {
            self.in_flight
                .lock()
                .ok()
                .map(|mut m| m.entry(c.clone()).or_default().clone())
        });
        let _guard = match &gate {
            Some(g) => Some(g.lock().await),
            None => None,
        };
        if let Some(c) = checksum {
            let cached = self.dir.join(c.cache_name());
            if self
                .known(&cached, Some(c))
                .await
                .is_some_and(|s| size.is_none_or(|w| w == s))
            {
                return Ok(cached);
            }
            if tokio::fs::metadata(&cached).await.is_ok() {
                // From an earlier process: verify once, then trust by size.
                let d = digest_file(&cached).await?;
                if d.check(Some(c), size).is_ok() {
                    self.remember(&cached, Some(c), d.size);
                    return Ok(cached);
                }
                let _ = tokio::fs::remove_file(&cached).await;
            }
        }
        tokio::fs::create_dir_all(&self.dir).await.map_err(io)?;
        let tmp = self.dir.join(format!(
            ".part-{}-{}",
            std::process::id(),
            fastrand_suffix()
        ));
        let result = match origin {
            Origin::Url(url) => self.download(url, &tmp, size).await,
            Origin::File(p) => copy_hashing(p, &tmp).await,
        };
        let digests = match result {
            Ok(d) => d,
            Err(e) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                return Err(e);
            }
        };
        if let Err(m) = digests.check(checksum, size) {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(CatalogError::Verification {
                file: shown,
                message: m,
            });
        }
        let key = checksum
            .cloned()
            .unwrap_or_else(|| Checksum::Sha256(digests.sha256.clone()));
        let dest = self.dir.join(key.cache_name());
        tokio::fs::rename(&tmp, &dest).await.map_err(io)?;
        self.remember(&dest, Some(&key), digests.size);
        if checksum.is_none() {
            self.remember(&dest, None, digests.size);
        }
        Ok(dest)
    }

    async fn download(
        &self,
        url: &str,
        tmp: &Path,
        size: Option<u64>,
    ) -> Result<Digests, CatalogError> {
        let shown = redact_url(url);
        let mut resp = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| http_error(&shown, e))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(status_error(&shown, status));
        }
        let io = |e: std::io::Error| CatalogError::Io {
            file: tmp.display().to_string(),
            message: e.to_string(),
        };
        let mut f = tokio::fs::File::create(tmp).await.map_err(io)?;
        let mut h = Hasher::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| http_error(&shown, e))? {
            h.update(&chunk);
            // Stop early on an oversized body rather than fill the disk.
            if let Some(want) = size
                && h.size > want
            {
                return Err(CatalogError::Verification {
                    file: shown,
                    message: format!("more than the expected {want} bytes"),
                });
            }
            f.write_all(&chunk).await.map_err(io)?;
        }
        f.flush().await.map_err(io)?;
        Ok(h.finish())
    }
}

/// Where a package comes from.
#[derive(Clone, Copy)]
enum Origin<'a> {
    Url(&'a str),
    File(&'a Path),
}

impl Origin<'_> {
    fn shown(&self) -> String {
        match self {
            Origin::Url(u) => redact_url(u),
            Origin::File(p) => p.display().to_string(),
        }
    }
}

async fn copy_hashing(src: &Path, tmp: &Path) -> Result<Digests, CatalogError> {
    let name = src.display().to_string();
    let mut input = tokio::fs::File::open(src)
        .await
        .map_err(|e| CatalogError::Io {
            file: name.clone(),
            message: e.to_string(),
        })?;
    let io = |e: std::io::Error| CatalogError::Io {
        file: tmp.display().to_string(),
        message: e.to_string(),
    };
    let mut out = tokio::fs::File::create(tmp).await.map_err(io)?;
    let mut h = Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = input.read(&mut buf).await.map_err(|e| CatalogError::Io {
            file: name.clone(),
            message: e.to_string(),
        })?;
        if n == 0 {
            break;
        }
        let chunk = filled(&buf, n, &name)?;
        h.update(chunk);
        out.write_all(chunk).await.map_err(io)?;
    }
    out.flush().await.map_err(io)?;
    Ok(h.finish())
}

fn fastrand_suffix() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    t ^ (n << 48) ^ n
}

/// The default HTTP client: rustls, 30 s connect timeout, redirects followed.
pub fn default_client() -> Result<reqwest::Client, CatalogError> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(30))
        .user_agent(concat!("firmflow-catalog/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| CatalogError::Http {
            url: String::new(),
            message: format!("cannot build the HTTP client: {e}"),
            transient: false,
        })
}

pub(crate) fn http_error(url: &str, e: reqwest::Error) -> CatalogError {
    // reqwest's Display may include the URL; ours is already redacted.
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "the response body could not be read"
    } else {
        "request failed"
    };
    CatalogError::Http {
        url: url.to_string(),
        message: format!("{kind}: {}", e.without_url()),
        transient: true,
    }
}

pub(crate) fn status_error(url: &str, status: reqwest::StatusCode) -> CatalogError {
    CatalogError::Http {
        url: url.to_string(),
        message: format!("HTTP {status}"),
        transient: status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    #[test]
    fn checksum_forms() {
        let sha = "a".repeat(64);
        assert_eq!(
            Checksum::parse(&format!("sha256:{sha}")),
            Ok(Checksum::Sha256(sha.clone()))
        );
        assert_eq!(
            Checksum::parse(&sha.to_uppercase()),
            Ok(Checksum::Sha256(sha))
        );
        let md5 = "0123456789ABCDEF0123456789abcdef";
        assert_eq!(
            Checksum::parse(&format!("MD5:{md5}")),
            Ok(Checksum::Md5(md5.to_ascii_lowercase()))
        );
        assert_eq!(
            Checksum::parse(md5).map(|c| c.to_core_string()),
            Ok(format!("md5:{}", md5.to_ascii_lowercase()))
        );
        assert!(Checksum::parse("sha1:abcd").is_err());
        assert!(Checksum::parse("sha256:xyz").is_err());
    }

    #[test]
    fn digests_check_size_and_hash() {
        let d = digest_bytes(b"hello");
        assert_eq!(d.md5, "5d41402abc4b2a76b9719d911017c592");
        assert_eq!(
            d.sha256,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert!(
            d.check(Some(&Checksum::Md5(d.md5.clone())), Some(5))
                .is_ok()
        );
        assert!(d.check(None, Some(6)).unwrap_err().contains("size is 5"));
        assert!(
            d.check(Some(&Checksum::Sha256("0".repeat(64))), None)
                .unwrap_err()
                .contains("sha256 is 2cf2")
        );
    }

    #[tokio::test]
    async fn downloads_once_and_verifies() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/FOLDER1/1/A.EXE"))
            .respond_with(ResponseTemplate::new(200).set_body_bytes(b"firmware".to_vec()))
            .expect(1)
            .mount(&server)
            .await;
        let dir = tempfile::tempdir().expect("tmp");
        let cache = PackageCache::with_default_client(dir.path()).expect("client");
        let d = digest_bytes(b"firmware");
        let c = Checksum::Md5(d.md5.clone());
        let loc = PackageLocation::Url(format!("{}/FOLDER1/1/A.EXE", server.uri()));
        let p1 = cache
            .fetch_verified(&loc, Some(&c), Some(8))
            .await
            .expect("fetch");
        let p2 = cache
            .fetch_verified(&loc, Some(&c), Some(8))
            .await
            .expect("cached");
        assert_eq!(p1, p2);
        assert_eq!(std::fs::read(&p1).expect("read"), b"firmware");
        assert!(p1.ends_with(format!("md5-{}", d.md5)));
        // A fresh cache over the same directory verifies the file again
        // instead of downloading (the mock expects exactly one GET).
        let again = PackageCache::with_default_client(dir.path()).expect("client");
        assert_eq!(
            again
                .fetch_verified(&loc, Some(&c), None)
                .await
                .expect("disk"),
            p1
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_fetches_of_one_package_download_once() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/BIOS.EXE"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_bytes(b"bios".to_vec())
                    .set_delay(Duration::from_millis(50)),
            )
            .expect(1)
            .mount(&server)
            .await;
        let dir = tempfile::tempdir().expect("tmp");
        let cache = Arc::new(PackageCache::with_default_client(dir.path()).expect("client"));
        let c = Checksum::Md5(digest_bytes(b"bios").md5);
        let loc = PackageLocation::Url(format!("{}/BIOS.EXE", server.uri()));
        let tasks: Vec<_> = (0..6)
            .map(|_| {
                let (cache, c, loc) = (cache.clone(), c.clone(), loc.clone());
                tokio::spawn(async move { cache.fetch_verified(&loc, Some(&c), Some(4)).await })
            })
            .collect();
        for t in tasks {
            let p = t.await.expect("join").expect("fetch");
            assert_eq!(std::fs::read(p).expect("read"), b"bios");
        }
    }

    #[tokio::test]
    async fn mismatches_and_http_errors_are_reported() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/bad.exe"))
            .respond_with(ResponseTemplate::new(200).set_body_bytes(b"evil".to_vec()))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/busy.exe"))
            .respond_with(ResponseTemplate::new(503))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/gone.exe"))
            .respond_with(ResponseTemplate::new(404))
            .mount(&server)
            .await;
        let dir = tempfile::tempdir().expect("tmp");
        let cache = PackageCache::with_default_client(dir.path()).expect("client");
        let want = Checksum::Sha256(digest_bytes(b"good").sha256);
        let err = cache
            .fetch_verified(
                &PackageLocation::Url(format!("{}/bad.exe", server.uri())),
                Some(&want),
                None,
            )
            .await
            .expect_err("mismatch");
        assert!(matches!(err, CatalogError::Verification { .. }), "{err}");
        assert!(err.to_string().contains("bad.exe"));
        let err = cache
            .fetch_verified(
                &PackageLocation::Url(format!("{}/bad.exe", server.uri())),
                None,
                Some(3),
            )
            .await
            .expect_err("too big");
        assert!(matches!(err, CatalogError::Verification { .. }), "{err}");
        let err = cache
            .fetch_verified(
                &PackageLocation::Url(format!("{}/busy.exe", server.uri())),
                None,
                None,
            )
            .await
            .expect_err("503");
        assert!(err.is_transient(), "{err}");
        let err = cache
            .fetch_verified(
                &PackageLocation::Url(format!("{}/gone.exe", server.uri())),
                None,
                None,
            )
            .await
            .expect_err("404");
        assert!(!err.is_transient(), "{err}");
        // No partial file is left behind.
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .expect("dir")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(".part"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[tokio::test]
    async fn local_files_are_verified_in_place() {
        let dir = tempfile::tempdir().expect("tmp");
        let f = dir.path().join("pkg.exe");
        std::fs::write(&f, b"payload").expect("write");
        let cache = PackageCache::with_default_client(dir.path().join("cache")).expect("client");
        let d = digest_bytes(b"payload");
        let sha = Checksum::Sha256(d.sha256.clone());
        let ok = cache
            .fetch_verified(&PackageLocation::File(f.clone()), Some(&sha), Some(7))
            .await
            .expect("ok");
        assert!(
            ok.starts_with(dir.path().join("cache")),
            "the verified copy: {ok:?}"
        );
        assert_eq!(std::fs::read(&ok).expect("copy"), b"payload");
        // Changing the original afterwards does not change what is uploaded.
        std::fs::write(&f, b"PAYLOAD").expect("write");
        let again = cache
            .fetch_verified(&PackageLocation::File(f.clone()), Some(&sha), Some(7))
            .await
            .expect("cached copy");
        assert_eq!(std::fs::read(&again).expect("copy"), b"payload");
        let err = cache
            .fetch_verified(
                &PackageLocation::File(f.clone()),
                Some(&Checksum::Md5("0".repeat(32))),
                None,
            )
            .await
            .expect_err("bad md5");
        assert!(err.to_string().contains("pkg.exe"), "{err}");
        let err = cache
            .fetch_verified(
                &PackageLocation::File(dir.path().join("missing.exe")),
                None,
                None,
            )
            .await
            .expect_err("missing");
        assert!(matches!(err, CatalogError::Io { .. }));
    }
}
