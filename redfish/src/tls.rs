//! TLS to BMCs: verify by default; trust a CA file; pin one certificate by
//! its SHA-256 fingerprint; or, explicitly and per host, accept anything.
//!
//! The HTTP client is built here (not by nv-redfish's `ClientParams`, which
//! has no CA-file or pinning option) and handed to nv-redfish through
//! `Client::with_client`. It never uses a proxy (reqwest would honour
//! `HTTP(S)_PROXY`, and a BMC network is not the internet) and never follows
//! redirects (a redirect could carry `X-Auth-Token` to another origin).
//!
//! The rustls configuration is built here too, once per mode: a
//! [`TlsConfigs`] keeps one per [`TlsMode`] and every client of that mode
//! shares it (its verifier, its roots and one TLS session cache), where
//! reqwest would build roots and a 256-entry session cache per client
//! (~8 KB a host, 80 MB across 10,000 BMCs, and the CA file read and parsed
//! on every connect).

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// How the server certificate of a BMC is checked.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum TlsMode {
    /// Verify against the built-in web PKI roots (the default).
    #[default]
    Verify,
    /// Verify against the CA certificates in this PEM file only.
    CaFile(PathBuf),
    /// Accept exactly the certificate whose DER SHA-256 is this hex string
    /// (colons and case ignored), whoever issued it. Suits the self-signed
    /// certificates iDRACs ship with, including CA:TRUE ones.
    PinnedSha256(String),
    /// Accept any certificate. Logged at warn level on every connect and
    /// reported through [`crate::connector::InsecureTls`] for the audit trail.
    AcceptInvalid,
}

impl TlsMode {
    /// Whether this mode skips verification.
    pub fn is_insecure(&self) -> bool {
        matches!(self, TlsMode::AcceptInvalid)
    }
    /// Short name for logs and audit records.
    pub fn name(&self) -> &'static str {
        match self {
            TlsMode::Verify => "verify",
            TlsMode::CaFile(_) => "ca_file",
            TlsMode::PinnedSha256(_) => "pinned_sha256",
            TlsMode::AcceptInvalid => "accept_invalid",
        }
    }
}

/// What to tell the user about a TLS failure the raw rustls text leaves
/// unexplained, or `None`.
///
/// `CaUsedAsEndEntity`: the CA file holds the server's own certificate (a
/// self-signed BMC certificate marked CA:TRUE, exported and given as CA).
/// webpki refuses a CA certificate as the server's end-entity certificate,
/// so such a file can never verify that server.
pub fn explain_failure(text: &str) -> Option<&'static str> {
    text.contains("CaUsedAsEndEntity").then_some(
        "the CA file holds the server's own certificate, which is itself a CA (CA:TRUE): \
         a CA certificate cannot be accepted as the server's certificate. \
         Hint: pin it instead (--pin-sha256 / tls = pinned_sha256 with its SHA-256 fingerprint), \
         or give the CA that issued the server's certificate as the CA file",
    )
}

/// The client could not be built (unreadable CA file, bad pin).
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The CA file could not be read or parsed.
    #[error("CA file {path}: {message}")]
    CaFile {
        /// Path.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
    /// The pin is not a SHA-256 hex digest.
    #[error("pinned fingerprint is not 64 hex digits")]
    BadPin,
    /// reqwest refused the configuration.
    #[error("HTTP client: {0}")]
    Client(String),
}

/// Timeouts of the HTTP client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// Whole request (uploads use their own, longer timeout).
    pub request: Duration,
    /// TCP + TLS connect.
    pub connect: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            request: Duration::from_secs(60),
            connect: Duration::from_secs(10),
        }
    }
}

/// Parses a hex fingerprint (`AB:CD:…` or `abcd…`).
pub fn parse_pin(pin: &str) -> Result<[u8; 32], TlsError> {
    let cleaned: String = pin
        .chars()
        .filter(|c| *c != ':' && !c.is_whitespace())
        .collect();
    let bytes = hex::decode(cleaned).map_err(|_| TlsError::BadPin)?;
    bytes.try_into().map_err(|_| TlsError::BadPin)
}

/// Builds the reqwest client for one BMC.
pub fn build_client(mode: &TlsMode, timeouts: Timeouts) -> Result<reqwest::Client, TlsError> {
    client_builder(mode, timeouts)?
        .build()
        .map_err(|e| TlsError::Client(crate::error::chain(&e)))
}

/// The configured builder behind [`build_client`], for callers that add
/// settings of their own (the connector's name overrides) before building.
pub fn client_builder(
    mode: &TlsMode,
    timeouts: Timeouts,
) -> Result<reqwest::ClientBuilder, TlsError> {
    Ok(client_builder_with(rustls_config(mode)?, timeouts))
}

/// A builder over an already built rustls configuration (one of a
/// [`TlsConfigs`]).
pub fn client_builder_with(
    config: rustls::ClientConfig,
    timeouts: Timeouts,
) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeouts.request)
        .connect_timeout(timeouts.connect)
        .user_agent(concat!("firmflow/", env!("CARGO_PKG_VERSION")))
        .use_preconfigured_tls(config)
}

/// The rustls configuration `mode` stands for: what reqwest's own rustls
/// setup would build (ring, TLS 1.2 and 1.3, HTTP/1.1 by ALPN, SNI), with the
/// mode's verifier.
pub fn rustls_config(mode: &TlsMode) -> Result<rustls::ClientConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Client(e.to_string()))?;
    let mut config = match mode {
        TlsMode::Verify => {
            let mut roots = rustls::RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        TlsMode::CaFile(path) => builder
            .with_root_certificates(ca_file_roots(path)?)
            .with_no_client_auth(),
        TlsMode::PinnedSha256(pin) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedVerifier {
                pin: parse_pin(pin)?,
                provider,
            }))
            .with_no_client_auth(),
        TlsMode::AcceptInvalid => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate { provider }))
            .with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // One cache for every BMC of this mode (the default keeps 256): large
    // enough that a fleet's reconnects still resume their TLS sessions,
    // which spares the iDRAC a full handshake.
    config.resumption = rustls::client::Resumption::in_memory_sessions(4096);
    Ok(config)
}

/// The trust anchors of a CA file: every certificate in it, at least one.
fn ca_file_roots(path: &Path) -> Result<rustls::RootCertStore, TlsError> {
    let bad = |message: String| TlsError::CaFile {
        path: path.to_path_buf(),
        message,
    };
    let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| bad(format!("not a PEM certificate bundle: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| bad(format!("certificate refused as a trust anchor: {e}")))?;
    }
    if roots.is_empty() {
        return Err(bad("no certificate in file".into()));
    }
    Ok(roots)
}

/// One rustls configuration per [`TlsMode`], built on first use and shared
/// by every client of that mode. A CA file is read again when its size or
/// modification time changes, so a replaced CA takes effect on the next
/// connect without a restart.
#[derive(Default)]
pub struct TlsConfigs {
    built: Mutex<HashMap<TlsMode, Built>>,
}

struct Built {
    /// The CA file as it was when read (`None` for modes without a file).
    stamp: Option<FileStamp>,
    config: rustls::ClientConfig,
}

#[derive(Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified: Option<SystemTime>,
}

impl TlsConfigs {
    /// The configuration for `mode` (a cheap clone: its parts are shared).
    pub fn get(&self, mode: &TlsMode) -> Result<rustls::ClientConfig, TlsError> {
        let stamp = match mode {
            TlsMode::CaFile(path) => {
                let meta = std::fs::metadata(path).map_err(|e| TlsError::CaFile {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
                Some(FileStamp {
                    len: meta.len(),
                    modified: meta.modified().ok(),
                })
            }
            _ => None,
        };
        if let Some(b) = self.lock().get(mode)
            && b.stamp == stamp
        {
            return Ok(b.config.clone());
        }
        // Built outside the lock: reading a CA file must not hold up the
        // connects of other modes. Two first connects may both build; the
        // second insert wins and both configurations are equivalent.
        let config = rustls_config(mode)?;
        self.lock().insert(
            mode.clone(),
            Built {
                stamp,
                config: config.clone(),
            },
        );
        Ok(config)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TlsMode, Built>> {
        // A panic elsewhere while holding the lock leaves a map that is
        // still whole (inserts are single calls): keep using it.
        self.built.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl std::fmt::Debug for TlsConfigs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let modes: Vec<&'static str> = self.lock().keys().map(TlsMode::name).collect();
        f.debug_struct("TlsConfigs").field("built", &modes).finish()
    }
}

/// Accepts any certificate (the explicit `accept_invalid` mode), as reqwest's
/// `danger_accept_invalid_certs` does: no check of the certificate, its name
/// or the handshake signature, so that a BMC with a malformed certificate
/// still connects when the operator asked for exactly that.
#[derive(Debug)]
struct AcceptAnyCertificate {
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Accepts the one certificate whose SHA-256 matches; still checks that the
/// server holds its key (handshake signatures are verified).
#[derive(Debug)]
struct PinnedVerifier {
    pin: [u8; 32],
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        let got: [u8; 32] = Sha256::digest(end_entity.as_ref()).into();
        if got == self.pin {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "certificate not pinned: sha256 {}",
                hex::encode(got)
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_used_as_end_entity_is_explained() {
        let hint = explain_failure("invalid peer certificate: Other(CaUsedAsEndEntity)");
        assert!(hint.is_some_and(|h| h.contains("pin")));
        assert_eq!(
            explain_failure("invalid peer certificate: UnknownIssuer"),
            None
        );
    }

    #[test]
    fn pins_parse_with_or_without_colons() {
        let hexs = "AB".repeat(32);
        let colons = vec!["ab"; 32].join(":");
        assert_eq!(parse_pin(&hexs).unwrap(), [0xab; 32]);
        assert_eq!(parse_pin(&colons).unwrap(), [0xab; 32]);
        assert!(matches!(parse_pin("abcd"), Err(TlsError::BadPin)));
        assert!(matches!(parse_pin(&"zz".repeat(32)), Err(TlsError::BadPin)));
    }

    #[test]
    fn every_mode_builds() {
        build_client(&TlsMode::Verify, Timeouts::default()).unwrap();
        build_client(&TlsMode::AcceptInvalid, Timeouts::default()).unwrap();
        build_client(&TlsMode::PinnedSha256("00".repeat(32)), Timeouts::default()).unwrap();
        let err = build_client(
            &TlsMode::CaFile("/nonexistent/ca.pem".into()),
            Timeouts::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    }

    fn ca_pem(name: &str) -> String {
        rcgen::generate_simple_self_signed(vec![name.to_string()])
            .unwrap()
            .cert
            .pem()
    }

    #[test]
    fn each_mode_is_built_once_and_shared() {
        let configs = TlsConfigs::default();
        let a = configs.get(&TlsMode::Verify).unwrap();
        let b = configs.get(&TlsMode::Verify).unwrap();
        // The same provider: one build behind both (and so one verifier and
        // one session cache).
        assert!(Arc::ptr_eq(a.crypto_provider(), b.crypto_provider()));
        let pinned = configs
            .get(&TlsMode::PinnedSha256("00".repeat(32)))
            .unwrap();
        assert!(!Arc::ptr_eq(a.crypto_provider(), pinned.crypto_provider()));
        assert_eq!(a.alpn_protocols, vec![b"http/1.1".to_vec()]);
        assert!(matches!(
            configs.get(&TlsMode::PinnedSha256("zz".into())),
            Err(TlsError::BadPin)
        ));
    }

    #[test]
    fn a_replaced_ca_file_is_read_again_and_a_broken_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, ca_pem("one.example")).unwrap();
        let mode = TlsMode::CaFile(path.clone());
        let configs = TlsConfigs::default();
        let first = configs.get(&mode).unwrap();
        let again = configs.get(&mode).unwrap();
        assert!(Arc::ptr_eq(
            first.crypto_provider(),
            again.crypto_provider()
        ));

        // Two certificates: a different size, so a different stamp even
        // where the file system's clock is coarse.
        std::fs::write(&path, ca_pem("one.example") + &ca_pem("two.example")).unwrap();
        let replaced = configs.get(&mode).unwrap();
        assert!(!Arc::ptr_eq(
            first.crypto_provider(),
            replaced.crypto_provider()
        ));

        std::fs::write(&path, "not a certificate").unwrap();
        let err = configs.get(&mode).unwrap_err();
        assert!(err.to_string().contains("no certificate in file"), "{err}");
        std::fs::write(
            &path,
            "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let err = configs.get(&mode).unwrap_err();
        assert!(err.to_string().contains("ca.pem"), "{err}");
    }
}
