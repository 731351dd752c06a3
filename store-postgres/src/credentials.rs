//! Credentials at rest. [`PgStore::store_credential`] seals a username and
//! secret (AES-256-GCM, bound to the credential id and field) and records
//! the reference `pg:<credential id>`; [`PgCredentialProvider`] resolves
//! such references for the executor. Plain text never reaches the
//! database, a log or an error.

use crate::crypto::SecretKey;
use crate::error::{PgStoreError, db_err};
use crate::hosts::{Sealed, insert_credential};
use crate::rows::get;
use crate::{PgStore, with_conn};
use async_trait::async_trait;
use firmflow_core::credentials::{Credential, CredentialProvider, Error as CredError};
use firmflow_core::model::*;
use firmflow_core::store::Error as StoreError;
use uuid::Uuid;

/// The reference scheme of credentials stored in this database.
pub const REFERENCE_PREFIX: &str = "pg:";

fn aad(id: Uuid, field: &str) -> Vec<u8> {
    format!("firmflow:credential:{id}:{field}").into_bytes()
}

impl PgStore {
    /// Stores a credential sealed with the configured key; its reference
    /// (`vault_path`) is `pg:<id>`.
    pub async fn store_credential(
        &self,
        host_id: Option<HostId>,
        kind: CredentialKind,
        credential: &Credential,
    ) -> Result<CredentialRecord, PgStoreError> {
        let key = self.sealing_key()?;
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

    /// Opens a stored credential.
    pub async fn open_credential(&self, id: CredentialId) -> Result<Credential, PgStoreError> {
        let key: &SecretKey = self.sealing_key()?;
        let row = with_conn!(self, c => {
            sqlx::query("SELECT username_enc, secret_enc FROM credentials WHERE id = $1")
                .bind(id.0)
                .fetch_optional(&mut *c)
                .await
                .map_err(db_err)
        })?
        .ok_or_else(|| StoreError::not_found(format!("credential {id}")))?;
        let user: Option<Vec<u8>> = get(&row, "username_enc")?;
        let secret: Option<Vec<u8>> = get(&row, "secret_enc")?;
        let (Some(user), Some(secret)) = (user, secret) else {
            return Err(StoreError::not_found(format!(
                "sealed secret of credential {id} (it is a reference to another provider)"
            ))
            .into());
        };
        let what = format!("credential {id}");
        let user = key.open(&user, &aad(id.0, "username"), &what)?;
        let secret = key.open(&secret, &aad(id.0, "secret"), &what)?;
        let user = String::from_utf8(user)
            .map_err(|_| StoreError::Corrupt(format!("{what}: username is not UTF-8")))?;
        let secret = String::from_utf8(secret)
            .map_err(|_| StoreError::Corrupt(format!("{what}: secret is not UTF-8")))?;
        Ok(Credential::new(user, secret))
    }
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
