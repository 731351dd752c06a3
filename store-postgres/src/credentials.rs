//! Credentials at rest. [`PgStore::store_credential`] seals a username and
//! secret (AES-256-GCM, bound to the credential id and field) and records
//! the reference `pg:<credential id>` and the id of the key that sealed it;
//! [`PgCredentialProvider`] resolves such references for the executor,
//! opening each with the key its row names. [`PgStore::reencrypt_credentials`]
//! moves every row to the newest key (rotation). Plain text never reaches the
//! database, a log or an error.

use crate::crypto::{KeyRing, SecretKey};
use crate::error::{PgStoreError, db_err};
use crate::hosts::{Sealed, insert_credential};
use crate::rows::get;
use crate::{PgStore, with_conn};
use async_trait::async_trait;
use firmflow_core::credentials::{Credential, CredentialProvider, Error as CredError};
use firmflow_core::model::*;
use firmflow_core::store::Error as StoreError;
use uuid::Uuid;
use zeroize::Zeroizing;

/// The reference scheme of credentials stored in this database.
pub const REFERENCE_PREFIX: &str = "pg:";

fn aad(id: Uuid, field: &str) -> Vec<u8> {
    format!("firmflow:credential:{id}:{field}").into_bytes()
}

/// What a re-encryption pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReencryptReport {
    /// Credentials now sealed with the sealing key that were not before.
    pub reencrypted: u64,
    /// Credentials already under the sealing key.
    pub current: u64,
    /// Credentials sealed under a key id the ring does not hold (left as
    /// they are; load that key and run again).
    pub missing_key: u64,
}

impl PgStore {
    /// Stores a credential sealed with the ring's sealing key (its id is
    /// stored in `key_id`); its reference (`vault_path`) is `pg:<id>`.
    pub async fn store_credential(
        &self,
        host_id: Option<HostId>,
        kind: CredentialKind,
        credential: &Credential,
    ) -> Result<CredentialRecord, PgStoreError> {
        let key = self.key_ring()?.sealing();
        let id = CredentialId::new().0;
        let sealed = Sealed {
            username: key.seal(credential.username.as_bytes(), &aad(id, "username"))?,
            secret: key.seal(credential.expose().as_bytes(), &aad(id, "secret"))?,
            key_id: key.id().to_string(),
        };
        Ok(insert_credential(
            self,
            id,
            host_id,
            kind,
            format!("{REFERENCE_PREFIX}{id}"),
            Some(sealed),
        )
        .await?)
    }

    /// Opens a stored credential with the key its row names.
    pub async fn open_credential(&self, id: CredentialId) -> Result<Credential, PgStoreError> {
        let ring = self.key_ring()?;
        let row = with_conn!(self, c => {
            sqlx::query("SELECT username_enc, secret_enc, key_id FROM credentials WHERE id = $1")
                .bind(id.0)
                .fetch_optional(&mut *c)
                .await
                .map_err(db_err)
        })?
        .ok_or_else(|| StoreError::not_found(format!("credential {id}")))?;
        let user: Option<Vec<u8>> = get(&row, "username_enc")?;
        let secret: Option<Vec<u8>> = get(&row, "secret_enc")?;
        let key_id: Option<String> = get(&row, "key_id")?;
        let (Some(user), Some(secret)) = (user, secret) else {
            return Err(StoreError::not_found(format!(
                "sealed secret of credential {id} (it is a reference to another provider)"
            ))
            .into());
        };
        let key = key_for(ring, id.0, key_id.as_deref())?;
        open_pair(key, id.0, &user, &secret)
    }

    /// Re-seals every stored credential that is not under the ring's sealing
    /// key, `batch` rows per transaction (rows locked while re-sealed, so a
    /// concurrent run or writer is safe). Afterwards the older keys may be
    /// removed from the ring. Run it on the unscoped handle.
    pub async fn reencrypt_credentials(&self, batch: u32) -> Result<ReencryptReport, PgStoreError> {
        let ring = self.key_ring()?;
        let sealing = ring.sealing();
        let loaded: Vec<String> = ring.ids().map(str::to_string).collect();
        let mut report = ReencryptReport::default();
        loop {
            let mut tx = self.begin().await?;
            let rows = sqlx::query(
                "SELECT id, username_enc, secret_enc, key_id FROM credentials \
                 WHERE username_enc IS NOT NULL AND key_id IS DISTINCT FROM $1 \
                   AND (key_id IS NULL OR key_id = ANY($2)) \
                 ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED",
            )
            .bind(sealing.id())
            .bind(&loaded)
            .bind(i64::from(batch.max(1)))
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err)?;
            if rows.is_empty() {
                tx.commit().await.map_err(db_err)?;
                break;
            }
            for row in &rows {
                let id: Uuid = get(row, "id")?;
                let user: Vec<u8> = get(row, "username_enc")?;
                let secret: Vec<u8> = get(row, "secret_enc")?;
                let key_id: Option<String> = get(row, "key_id")?;
                let old = key_for(ring, id, key_id.as_deref())?;
                let plain = open_pair(old, id, &user, &secret)?;
                sqlx::query(
                    "UPDATE credentials SET username_enc = $2, secret_enc = $3, key_id = $4 \
                     WHERE id = $1",
                )
                .bind(id)
                .bind(sealing.seal(plain.username.as_bytes(), &aad(id, "username"))?)
                .bind(sealing.seal(plain.expose().as_bytes(), &aad(id, "secret"))?)
                .bind(sealing.id())
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
                report.reencrypted += 1;
            }
            tx.commit().await.map_err(db_err)?;
        }
        let counts = with_conn!(self, c => {
            sqlx::query(
                "SELECT count(*) FILTER (WHERE key_id = $1) AS current, \
                        count(*) FILTER (WHERE key_id IS NOT NULL AND key_id <> ALL($2)) AS missing \
                 FROM credentials WHERE username_enc IS NOT NULL",
            )
            .bind(sealing.id())
            .bind(&loaded)
            .fetch_one(&mut *c)
            .await
            .map_err(db_err)
        })?;
        let current: i64 = get(&counts, "current")?;
        let missing: i64 = get(&counts, "missing")?;
        report.current = u64::try_from(current).unwrap_or(0);
        report.missing_key = u64::try_from(missing).unwrap_or(0);
        Ok(report)
    }
}

/// The key a row names; a row without a key id (sealed before ids were
/// stored) is tried with the sealing key.
fn key_for<'a>(
    ring: &'a KeyRing,
    id: Uuid,
    key_id: Option<&str>,
) -> Result<&'a SecretKey, PgStoreError> {
    match key_id {
        None => Ok(ring.sealing()),
        Some(k) => ring.get(k).ok_or_else(|| {
            PgStoreError::Key(format!(
                "credential {id} is sealed with key {k:?}, which is not loaded (loaded: {})",
                ring.ids().collect::<Vec<_>>().join(", ")
            ))
        }),
    }
}

fn open_pair(
    key: &SecretKey,
    id: Uuid,
    user: &[u8],
    secret: &[u8],
) -> Result<Credential, PgStoreError> {
    let what = format!("credential {id}");
    let user = key.open(user, &aad(id, "username"), &what)?;
    let secret = Zeroizing::new(key.open(secret, &aad(id, "secret"), &what)?);
    let user = String::from_utf8(user)
        .map_err(|_| StoreError::Corrupt(format!("{what}: username is not UTF-8")))?;
    let secret = std::str::from_utf8(&secret)
        .map_err(|_| StoreError::Corrupt(format!("{what}: secret is not UTF-8")))?;
    Ok(Credential::new(user, secret))
}

/// Resolves `pg:<credential id>` references from the database.
#[derive(Clone, Debug)]
pub struct PgCredentialProvider {
    store: PgStore,
}

impl PgCredentialProvider {
    /// A provider reading through `store` (its key opens the secrets).
    pub fn new(store: PgStore) -> Self {
        Self { store }
    }
}

#[async_trait]
impl CredentialProvider for PgCredentialProvider {
    async fn resolve(&self, reference: &str) -> Result<Credential, CredError> {
        let invalid = |message: &str| CredError::InvalidReference {
            reference: reference.to_string(),
            message: message.to_string(),
        };
        let rest = reference
            .strip_prefix(REFERENCE_PREFIX)
            .ok_or_else(|| invalid("not a pg: reference"))?;
        let id: Uuid = rest
            .parse()
            .map_err(|_| invalid("pg: must be followed by a credential id"))?;
        self.store
            .open_credential(CredentialId(id))
            .await
            .map_err(|e| match e {
                PgStoreError::Store(StoreError::NotFound { what }) => CredError::NotFound {
                    reference: reference.to_string(),
                    message: what,
                },
                PgStoreError::Store(s) if s.is_transient() => CredError::Unavailable {
                    reference: reference.to_string(),
                    message: s.to_string(),
                },
                other => CredError::Refused {
                    reference: reference.to_string(),
                    message: other.to_string(),
                },
            })
    }
}
