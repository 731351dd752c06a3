//! The fleet's self-signed certificate and rustls server configuration.

use std::sync::{Arc, OnceLock};

use crate::SimError;

struct Material {
    cert_pem: String,
    cert_der: Vec<u8>,
    key_der: Vec<u8>,
}

fn material() -> Result<&'static Material, SimError> {
    static M: OnceLock<Result<Material, String>> = OnceLock::new();
    M.get_or_init(|| {
        let names = vec![
            "localhost".to_string(),
            "*.localhost".to_string(),
            "127.0.0.1".to_string(),
            "idrac.localhost".to_string(),
        ];
        let c = rcgen::generate_simple_self_signed(names).map_err(|e| e.to_string())?;
        Ok(Material {
            cert_pem: c.cert.pem(),
            cert_der: c.cert.der().to_vec(),
            key_der: c.signing_key.serialize_der(),
        })
    })
    .as_ref()
    .map_err(|e| SimError::Tls(e.clone()))
}

/// PEM of the self-signed certificate (empty if generation failed).
pub(crate) fn cert_pem() -> String {
    material().map(|m| m.cert_pem.clone()).unwrap_or_default()
}

/// A rustls server configuration with the self-signed certificate (HTTP/1.1).
pub(crate) fn server_config() -> Result<Arc<rustls::ServerConfig>, SimError> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let m = material()?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SimError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(m.cert_der.clone())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(m.key_der.clone())),
        )
        .map_err(|e| SimError::Tls(e.to_string()))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}
