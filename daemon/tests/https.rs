//! `[api.tls]` over a real process: firmflowd serves the API over HTTPS
//! with the configured certificate (a client trusting that certificate's CA
//! gets answers, a plain-HTTP client gets none), and a bad key file stops
//! the daemon at start with the key path named, before it says it is ready.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

struct Pki {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

/// A CA and a server certificate for 127.0.0.1 signed by it.
fn pki() -> Pki {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    Pki {
        ca_pem: ca.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

fn config(dir: &Path, key_text: &str, pki: &Pki) -> std::path::PathBuf {
    std::fs::write(dir.join("api.pem"), &pki.cert_pem).unwrap();
    std::fs::write(dir.join("api.key"), key_text).unwrap();
    let p = dir.join("firmflowd.toml");
    std::fs::write(
        &p,
        "[api]\nlisten = \"127.0.0.1:0\"\n\
         [api.tls]\ncert_file = \"api.pem\"\nkey_file = \"api.key\"\n",
    )
    .unwrap();
    p
}

fn spawn(config: &Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_firmflowd"))
        .arg("--config")
        .arg(config)
        .env_remove("FIRMFLOWD_CONFIG")
        .env("FIRMFLOWD_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn firmflowd")
}

#[tokio::test]
async fn the_api_is_served_over_https_with_the_configured_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki();
    let mut child = spawn(&config(dir.path(), &pki.key_pem, &pki));
    let out = child.stdout.take().unwrap();
    let mut lines = BufReader::new(out).lines();
    let ready: Value = loop {
        let line = lines
            .next()
            .expect("firmflowd says it is ready")
            .expect("read");
        let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
        if v["message"] == "firmflowd ready" {
            break v;
        }
    };
    assert_eq!(ready["https"], true, "{ready}");
    let addr = ready["listen"].as_str().unwrap().to_string();

    let ca = reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).unwrap();
    let https = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let r = https
        .get(format!("https://{addr}/healthz"))
        .send()
        .await
        .expect("HTTPS answers");
    assert_eq!(r.status(), 200);
    let r = https
        .get(format!("https://{addr}/api/v1/plans"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the open loopback API answers over HTTPS");

    // A client that does not trust the CA is refused by its own check...
    let untrusting = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    assert!(
        untrusting
            .get(format!("https://{addr}/healthz"))
            .send()
            .await
            .is_err()
    );
    // ...and plain HTTP gets no API answer (the handshake fails, the
    // connection closes), while HTTPS clients keep being served.
    let plain = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    assert!(
        plain
            .get(format!("http://{addr}/healthz"))
            .send()
            .await
            .is_err()
    );
    let r = https
        .get(format!("https://{addr}/healthz"))
        .send()
        .await
        .expect("still served after a bad client");
    assert_eq!(r.status(), 200);

    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "SIGTERM exits 0 over HTTPS too");
}

#[test]
fn a_bad_key_file_stops_the_daemon_before_it_is_ready_and_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki();
    let p = config(dir.path(), "not a key\n", &pki);
    let o = spawn(&p).wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_ne!(o.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        !stdout.contains("firmflowd ready"),
        "ready before its certificate loaded:\n{stdout}"
    );
    assert!(
        format!("{stdout}{stderr}").contains("api.tls.key_file"),
        "{stdout}{stderr}"
    );

    // check-config lists the same problem without starting anything.
    let o = Command::new(env!("CARGO_BIN_EXE_firmflowd"))
        .args(["check-config", "--config", p.to_str().unwrap()])
        .env_remove("FIRMFLOWD_CONFIG")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("  api.tls.key_file: "), "{err}");
}
