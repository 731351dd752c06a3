//! TLS to BMCs: verify by default; trust a CA file; pin one certificate by
//! its SHA-256 fingerprint; or, explicitly and per host, accept anything.
//!
//! The HTTP client is built here (not by nv-redfish's `ClientParams`, which
//! has no CA-file or pinning option) and handed to nv-redfish through
//! `Client::with_client`. It never uses a proxy (reqwest would honour
//! `HTTP(S)_PROXY`, and a BMC network is not the internet) and never follows
//! redirects (a redirect could carry `X-Auth-Token` to another origin).

use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How the server certificate of a BMC is checked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
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
    let mut b = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeouts.request)
        .connect_timeout(timeouts.connect)
        .user_agent(concat!("firmflow/", env!("CARGO_PKG_VERSION")));
    match mode {
        TlsMode::Verify => b = b.use_rustls_tls(),
        TlsMode::CaFile(path) => {
            let pem = std::fs::read(path).map_err(|e| TlsError::CaFile {
                path: path.clone(),
                message: e.to_string(),
            })?;
            let certs =
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| TlsError::CaFile {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
            if certs.is_empty() {
                return Err(TlsError::CaFile {
                    path: path.clone(),
                    message: "no certificate in file".into(),
                });
            }
            b = b.use_rustls_tls().tls_built_in_root_certs(false);
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        TlsMode::PinnedSha256(pin) => {
            let pin = parse_pin(pin)?;
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .map_err(|e| TlsError::Client(e.to_string()))?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(PinnedVerifier { pin, provider }))
                .with_no_client_auth();
            b = b.use_preconfigured_tls(config);
        }
        TlsMode::AcceptInvalid => b = b.use_rustls_tls().danger_accept_invalid_certs(true),
    }
    Ok(b)
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
}
