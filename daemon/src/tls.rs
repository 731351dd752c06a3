//! HTTPS for the API (`[api.tls]`): the certificate chain and key are read
//! from PEM files once at start, and [`TlsListener`] hands axum only
//! connections whose TLS handshake finished.
//!
//! Handshakes run in their own tasks, bounded in number and in time, so a
//! client that opens a socket and never speaks delays nobody else's accept
//! (doing the handshake inside `accept` would serialise every client behind
//! the slowest one). A failed handshake is logged at debug and dropped: it
//! is the client's problem, never the server's.

use crate::config::ApiTls;
use axum::serve::Listener;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tracing::debug;

/// How long a client may take to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in flight at once; more wait for a turn in the kernel backlog.
const MAX_HANDSHAKES: usize = 256;

/// Why `[api.tls]` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// The certificate file cannot be read or holds no certificate.
    #[error("api.tls.cert_file: {path}: {message}")]
    Cert {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
    /// The key file cannot be read or holds no private key.
    #[error("api.tls.key_file: {path}: {message}")]
    Key {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
    /// The key does not go with the certificate, or rustls refused them.
    #[error("api.tls: the key and certificate cannot be used together: {0}")]
    Mismatch(String),
}

impl TlsSetupError {
    /// The configuration key to blame.
    pub fn key(&self) -> &'static str {
        match self {
            Self::Cert { .. } => "api.tls.cert_file",
            Self::Key { .. } => "api.tls.key_file",
            Self::Mismatch(_) => "api.tls",
        }
    }

    /// What was wrong, without the key path.
    pub fn detail(&self) -> String {
        match self {
            Self::Cert { path, message } | Self::Key { path, message } => {
                format!("{}: {message}", path.display())
            }
            Self::Mismatch(m) => format!("the key and certificate cannot be used together: {m}"),
        }
    }
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let err = |message: String| TlsSetupError::Cert {
        path: path.to_path_buf(),
        message,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| err(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(format!("not a PEM certificate chain: {e}")))?;
    if certs.is_empty() {
        return Err(err("no CERTIFICATE block in the file".into()));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsSetupError> {
    // The message never includes the file's content: it is a secret.
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsSetupError::Key {
        path: path.to_path_buf(),
        message: match e {
            rustls::pki_types::pem::Error::NoItemsFound => {
                "no PRIVATE KEY block in the file (PKCS#8, PKCS#1 or SEC1 PEM)".into()
            }
            rustls::pki_types::pem::Error::Io(io) => io.to_string(),
            _ => "not a PEM private key".into(),
        },
    })
}

/// The rustls server configuration of `[api.tls]` (HTTP/1.1 only, as the
/// API serves).
pub fn server_config(tls: &ApiTls) -> Result<Arc<ServerConfig>, TlsSetupError> {
    let certs = read_certs(&tls.cert_file)?;
    let key = read_key(&tls.key_file)?;
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsSetupError::Mismatch(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| TlsSetupError::Mismatch(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A listener that yields TLS streams whose handshake finished.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    acceptor_task: JoinHandle<()>,
}

impl TlsListener {
    /// Serves TLS with `config` on connections accepted by `tcp`.
    pub fn new(tcp: TcpListener, config: Arc<ServerConfig>) -> std::io::Result<Self> {
        let local = tcp.local_addr()?;
        let acceptor = TlsAcceptor::from(config);
        let (tx, ready) = mpsc::channel(64);
        let permits = Arc::new(Semaphore::new(MAX_HANDSHAKES));
        let acceptor_task = tokio::spawn(async move {
            loop {
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    return;
                };
                let (socket, peer) = match tcp.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        debug!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(socket)).await {
                        Ok(Ok(stream)) => {
                            let _ = tx.send((stream, peer)).await;
                        }
                        Ok(Err(e)) => debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(Self {
            ready,
            local,
            acceptor_task,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.acceptor_task.abort();
    }
}

impl Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(c) => c,
            // The acceptor task ended (it only does when aborted): no more
            // connections will come; wait for the graceful shutdown.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn pair() -> (String, String) {
        let c = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        (c.cert.pem(), c.signing_key.serialize_pem())
    }

    #[test]
    fn a_matching_pair_loads() {
        let d = tempfile::tempdir().unwrap();
        let (cert, key) = pair();
        let tls = ApiTls {
            cert_file: write(d.path(), "c.pem", &cert),
            key_file: write(d.path(), "k.pem", &key),
        };
        server_config(&tls).expect("loads");
    }

    #[test]
    fn each_bad_file_is_named_and_the_key_never_quoted() {
        let d = tempfile::tempdir().unwrap();
        let (cert, key) = pair();
        let (_, other_key) = pair();
        let good_cert = write(d.path(), "c.pem", &cert);
        let good_key = write(d.path(), "k.pem", &key);
        let cases = [
            (
                d.path().join("absent.pem"),
                good_key.clone(),
                "api.tls.cert_file",
            ),
            (
                write(d.path(), "e.pem", "hello\n"),
                good_key.clone(),
                "api.tls.cert_file",
            ),
            (good_key.clone(), good_key.clone(), "api.tls.cert_file"),
            (good_cert.clone(), good_cert.clone(), "api.tls.key_file"),
            (
                good_cert.clone(),
                write(d.path(), "o.pem", &other_key),
                "api.tls",
            ),
        ];
        for (cert_file, key_file, want) in cases {
            let e = server_config(&ApiTls {
                cert_file: cert_file.clone(),
                key_file,
            })
            .expect_err("refused");
            assert_eq!(e.key(), want, "{e}");
            let text = e.to_string();
            assert!(!text.contains("PRIVATE KEY-----"), "{text}");
        }
    }
}
