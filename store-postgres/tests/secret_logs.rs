//! No log line, error, `Debug` output or event shows a known password.
//!
//! Its own test binary, so the one test in the process installs the global
//! subscriber: a subscriber scoped to one thread races tracing's per-callsite
//! interest cache with the other tests of a shared binary and can miss sqlx's
//! statement logs (seen in CI).

mod common;

use firmflow_core::credentials::{Credential, CredentialProvider};
use firmflow_core::model::*;
use firmflow_core::store::{EventStore, HostStore};
use firmflow_store_postgres::{KeyRing, PgConfig, PgCredentialProvider, SecretKey};
use std::sync::Arc;

const SECRET: &str = "calvin-s3cr3t-PASSWORD";

/// Log output gathered in memory.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut v) = self.0.lock() {
            v.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_known_password_is_in_no_log_error_debug_or_event() {
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(logs.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");

    let (store, _clock, guard) = common::store("pwlog").await;
    let h = store
        .add_host(NewHost::idrac("a.example.net", "10.0.0.1"))
        .await
        .expect("host");
    let rec = store
        .store_credential(
            Some(h.id),
            CredentialKind::Idrac,
            &Credential::new("root", SECRET),
        )
        .await
        .expect("store");
    let provider = PgCredentialProvider::new(store.clone());
    let cred = provider.resolve(&rec.vault_path).await.expect("resolve");
    let report = store.reencrypt_credentials(10).await.expect("re-encrypt");
    // Errors around it: a tampered row, a key that is not loaded.
    sqlx::query("UPDATE credentials SET secret_enc = set_byte(secret_enc, 20, get_byte(secret_enc, 20) # 1) WHERE id = $1")
        .bind(rec.id.0)
        .execute(store.pool())
        .await
        .expect("tamper");
    let tampered = provider
        .resolve(&rec.vault_path)
        .await
        .expect_err("tampered");
    let other = KeyRing::from(SecretKey::generate("other"));
    let events = store
        .list_events(&firmflow_core::store::EventFilter::default())
        .await
        .expect("events");

    let mut shown = String::new();
    for s in [
        format!("{cred:?}"),
        format!("{rec:?}"),
        format!("{report:?}"),
        format!("{tampered:?} {tampered}"),
        format!("{provider:?}"),
        format!("{store:?}"),
        format!("{other:?}"),
        format!("{:?}", common::key()),
        format!(
            "{:?}",
            PgConfig::new(format!("postgres://u:{SECRET}@127.0.0.1/db")).secret_key(common::key())
        ),
        format!("{events:?}"),
    ] {
        shown.push_str(&s);
        shown.push('\n');
    }
    assert!(!shown.contains(SECRET), "{shown}");
    let text = String::from_utf8_lossy(&logs.0.lock().expect("logs")).into_owned();
    assert!(
        text.contains("credentials"),
        "the capture saw the store's statements: {text}"
    );
    assert!(!text.contains(SECRET), "a log line shows the password");
    store.close().await;
    drop(guard);
}
