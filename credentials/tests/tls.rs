//! VaultProvider over HTTPS: a CA file pins the trust anchor, and a server
//! whose certificate it does not vouch for is refused before the token is sent.

use firmflow_credentials::{CredentialProvider, Error, VaultConfig, VaultProvider};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const BODY: &str = r#"{"data":{"data":{"username":"root","password":"over-tls"},"metadata":{}}}"#;

/// Serves BODY over TLS with a fresh self-signed certificate for
/// `localhost`; returns the port and the certificate's PEM.
async fn https_vault() -> (u16, String) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![CertificateDer::from(cert.cert.der().to_vec())],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.signing_key.serialize_der())),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A refused handshake is the expected outcome of one test.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{BODY}",
                    BODY.len()
                );
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (port, cert.cert.pem())
}

fn provider(port: u16, ca_pem: &str, dir: &tempfile::TempDir) -> VaultProvider {
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, ca_pem).unwrap();
    let mut config = VaultConfig::new(format!("https://localhost:{port}").parse().unwrap())
        .with_token("hvs.tls");
    config.ca_file = Some(ca);
    VaultProvider::new(config).unwrap()
}

#[tokio::test]
async fn pinned_ca_is_trusted() {
    let (port, pem) = https_vault().await;
    let dir = tempfile::tempdir().unwrap();
    let cred = provider(port, &pem, &dir)
        .resolve("vault:secret/fleet/idrac")
        .await
        .unwrap();
    assert_eq!(
        (cred.username.as_str(), cred.expose()),
        ("root", "over-tls")
    );
}

#[tokio::test]
async fn certificate_from_another_ca_is_refused() {
    let (port, _) = https_vault().await;
    let other = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let e = provider(port, &other.cert.pem(), &dir)
        .resolve("vault:secret/fleet/idrac")
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Unavailable { .. }), "{e:?}");
    assert!(e.to_string().to_lowercase().contains("certificate"), "{e}");
}
