//! Credentials and session tokens at rest: sealed with AES-256-GCM, never
//! stored, logged or reported in plain text.

mod common;

use firmflow_core::credentials::{Credential, CredentialProvider, Error as CredError};
use firmflow_core::model::*;
use firmflow_core::store::{HostStore, SessionCache};
use firmflow_core::{Clock, SystemClock};
use firmflow_store_postgres::{KeyRing, PgConfig, PgCredentialProvider, PgStore, SecretKey};
use secrecy::ExposeSecret as _;
use std::sync::Arc;

const SECRET: &str = "calvin-s3cr3t-PASSWORD";

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_sealed_and_resolve_through_the_provider() {
    let (store, _clock, guard) = common::store("sec").await;
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
    assert_eq!(rec.vault_path, format!("pg:{}", rec.id));
    assert_eq!(
        store
            .credentials_for(h.id, CredentialKind::Idrac)
            .await
            .expect("refs")[0]
            .vault_path,
        rec.vault_path
    );

    // At rest: neither the username nor the secret appear in the row.
    let (u, s, k): (Vec<u8>, Vec<u8>, String) =
        sqlx::query_as("SELECT username_enc, secret_enc, key_id FROM credentials WHERE id = $1")
            .bind(rec.id.0)
            .fetch_one(store.pool())
            .await
            .expect("row");
    assert!(!contains(&u, "root") && !contains(&s, SECRET));
    assert_eq!(k, "test");
    let dump: String = sqlx::query_scalar("SELECT row_to_json(c)::text FROM credentials c")
        .fetch_one(store.pool())
        .await
        .expect("dump");
    assert!(!dump.contains(SECRET));

    let provider = PgCredentialProvider::new(store.clone());
    let cred = provider.resolve(&rec.vault_path).await.expect("resolve");
    assert_eq!(cred.username, "root");
    assert_eq!(cred.expose(), SECRET);
    assert!(!format!("{cred:?}").contains(SECRET));

    // Bad references are told apart, and name no secret.
    assert!(matches!(
        provider.resolve("vault:kv/x").await,
        Err(CredError::InvalidReference { .. })
    ));
    assert!(matches!(
        provider
            .resolve(&format!("pg:{}", uuid::Uuid::new_v4()))
            .await,
        Err(CredError::NotFound { .. })
    ));
    // A tampered ciphertext does not open.
    sqlx::query("UPDATE credentials SET secret_enc = set_byte(secret_enc, 20, get_byte(secret_enc, 20) # 1) WHERE id = $1")
        .bind(rec.id.0)
        .execute(store.pool())
        .await
        .expect("tamper");
    let err = provider
        .resolve(&rec.vault_path)
        .await
        .expect_err("tampered");
    assert!(matches!(err, CredError::Refused { .. }), "{err:?}");
    assert!(!err.to_string().contains(SECRET));
    store.close().await;
    drop(guard);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_key_or_no_key_cannot_read_credentials() {
    let (store, _clock, guard) = common::store("sec2").await;
    let rec = store
        .store_credential(
            None,
            CredentialKind::Vcenter,
            &Credential::new("admin@vsphere", SECRET),
        )
        .await
        .expect("store");
    let db = store
        .pool()
        .connect_options()
        .get_database()
        .unwrap_or_default()
        .to_string();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let other = PgStore::connect(
        PgConfig::new(common::db_url(&db)).secret_key(SecretKey::generate("other")),
        clock.clone(),
    )
    .await
    .expect("other");
    let err = PgCredentialProvider::new(other.clone())
        .resolve(&rec.vault_path)
        .await
        .expect_err("wrong key");
    assert!(matches!(err, CredError::Refused { .. }), "{err:?}");
    let keyless = PgStore::connect(PgConfig::new(common::db_url(&db)), clock)
        .await
        .expect("keyless");
    assert!(
        keyless
            .store_credential(None, CredentialKind::Ssh, &Credential::new("u", "p"))
            .await
            .is_err()
    );
    assert!(keyless.open_credential(rec.id).await.is_err());
    other.close().await;
    keyless.close().await;
    store.close().await;
    drop(guard);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_tokens_are_sealed_at_rest() {
    let (store, clock, guard) = common::store("sess").await;
    let h = store
        .add_host(NewHost::idrac("a.example.net", "10.0.0.1"))
        .await
        .expect("host");
    store
        .put_session(RedfishSession {
            host_id: h.id,
            session_token: secrecy::SecretString::from("tok-ABCDEF-123456".to_string()),
            session_uri: "/redfish/v1/SessionService/Sessions/7".into(),
            expires_at: clock.now() + chrono::Duration::minutes(30),
            created_at: clock.now(),
        })
        .await
        .expect("put");
    let raw: Vec<u8> = sqlx::query_scalar("SELECT session_token FROM redfish_sessions")
        .fetch_one(store.pool())
        .await
        .expect("raw");
    assert!(!contains(&raw, "tok-ABCDEF-123456"));
    let got = store.get_session(h.id).await.expect("get").expect("some");
    assert_eq!(got.session_token.expose_secret(), "tok-ABCDEF-123456");
    // Sealed for another host's row, it does not open: a copied token is no session.
    let h2 = store
        .add_host(NewHost::idrac("b.example.net", "10.0.0.2"))
        .await
        .expect("host");
    sqlx::query(
        "INSERT INTO redfish_sessions (host_id, session_token, session_uri, expires_at) \
         SELECT $1, session_token, session_uri, expires_at FROM redfish_sessions WHERE host_id = $2",
    )
    .bind(h2.id.0)
    .bind(h.id.0)
    .execute(store.pool())
    .await
    .expect("copy");
    assert!(store.get_session(h2.id).await.expect("get").is_none());
    store.close().await;
    drop(guard);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotation_round_trip() {
    let (db, guard) = common::fresh_db("rotate").await;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let k1 = || SecretKey::parse(&"11".repeat(32), "k1").expect("k1");
    let k2 = || SecretKey::parse(&"22".repeat(32), "k2").expect("k2");
    let connect = |ring: KeyRing| {
        let clock = clock.clone();
        let url = common::db_url(&db);
        async move {
            PgStore::connect(PgConfig::new(url).key_ring(ring), clock)
                .await
                .expect("connect")
        }
    };
    let key_ids = |s: PgStore| async move {
        let ids: Vec<String> = sqlx::query_scalar("SELECT key_id FROM credentials ORDER BY 1")
            .fetch_all(s.pool())
            .await
            .expect("key ids");
        ids
    };

    // Sealed with key 1.
    let old = connect(KeyRing::from(k1())).await;
    let mut refs = Vec::new();
    for i in 0..3 {
        let rec = old
            .store_credential(
                None,
                CredentialKind::Idrac,
                &Credential::new(format!("root{i}"), format!("{SECRET}-{i}")),
            )
            .await
            .expect("store");
        refs.push(rec);
    }
    assert_eq!(key_ids(old.clone()).await, ["k1", "k1", "k1"]);

    // Key 2 added in front: old rows still open (by their key id), new ones
    // are sealed with key 2.
    let both = connect(KeyRing::new(vec![k2(), k1()]).expect("ring")).await;
    for (i, rec) in refs.iter().enumerate() {
        let c = both.open_credential(rec.id).await.expect("old row");
        assert_eq!(c.expose(), format!("{SECRET}-{i}"));
    }
    let newer = both
        .store_credential(None, CredentialKind::Idrac, &Credential::new("new", SECRET))
        .await
        .expect("store");
    refs.push(newer);
    assert_eq!(key_ids(both.clone()).await, ["k1", "k1", "k1", "k2"]);

    // Re-encrypt (two rows per transaction), then again: nothing left to do.
    let report = both.reencrypt_credentials(2).await.expect("re-encrypt");
    assert_eq!(
        (report.reencrypted, report.current, report.missing_key),
        (3, 4, 0)
    );
    assert_eq!(
        both.reencrypt_credentials(2)
            .await
            .expect("again")
            .reencrypted,
        0
    );
    assert_eq!(key_ids(both.clone()).await, ["k2", "k2", "k2", "k2"]);

    // Key 1 removed: everything still opens with key 2 alone, and a store
    // holding only key 1 opens nothing any more.
    let only2 = connect(KeyRing::from(k2())).await;
    let provider = PgCredentialProvider::new(only2.clone());
    for rec in &refs {
        let c = provider
            .resolve(&rec.vault_path)
            .await
            .expect("after rotation");
        assert!(c.expose().starts_with(SECRET));
    }
    let err = PgCredentialProvider::new(old.clone())
        .resolve(&refs[0].vault_path)
        .await
        .expect_err("key 1 is retired");
    assert!(matches!(err, CredError::Refused { .. }), "{err:?}");
    assert!(
        err.to_string().contains("k2"),
        "names the key it needs: {err}"
    );
    assert!(!err.to_string().contains(SECRET));

    // A row under a key nobody loaded is reported, not touched.
    sqlx::query("UPDATE credentials SET key_id = 'lost' WHERE id = $1")
        .bind(refs[0].id.0)
        .execute(only2.pool())
        .await
        .expect("lose a key");
    let report = only2.reencrypt_credentials(10).await.expect("re-encrypt");
    assert_eq!((report.reencrypted, report.missing_key), (0, 1));

    for s in [old, both, only2] {
        s.close().await;
    }
    drop(guard);
}
