//! `SessionCache`: Redfish session tokens in `redfish_sessions`, sealed
//! with AES-256-GCM (bound to the host id). Without a configured key a
//! per-process key is used: a token sealed by an earlier process then no
//! longer opens and reads as "no session", which only costs a new login.

use crate::crypto::{KeyRing, SecretKey};
use crate::error::db_err;
use crate::rows::get;
use crate::{PgStore, with_conn};
use async_trait::async_trait;
use firmflow_core::model::*;
use firmflow_core::store::{Error, Result, SessionCache};
use secrecy::{ExposeSecret as _, SecretString};

fn aad(host: HostId) -> Vec<u8> {
    format!("firmflow:redfish_session:{host}").into_bytes()
}

impl PgStore {
    fn session_key(&self) -> &SecretKey {
        self.inner
            .keys
            .as_ref()
            .map(KeyRing::sealing)
            .unwrap_or(&self.inner.session_key)
    }
}

#[async_trait]
impl SessionCache for PgStore {
    async fn get_session(&self, host: HostId) -> Result<Option<RedfishSession>> {
        let now = self.now_param();
        let row = with_conn!(self, c => {
            sqlx::query(
                "SELECT session_token, session_uri, expires_at, created_at FROM redfish_sessions \
                 WHERE host_id = $1 AND expires_at > coalesce($2, now())",
            )
            .bind(host.0)
            .bind(now)
            .fetch_optional(&mut *c)
            .await
            .map_err(db_err)
        })?;
        let Some(row) = row else { return Ok(None) };
        let sealed: Vec<u8> = get(&row, "session_token")?;
        let Ok(plain) =
            self.session_key()
                .open(&sealed, &aad(host), &format!("session of host {host}"))
        else {
            tracing::debug!(%host, "cached session sealed with another key; ignoring it");
            return Ok(None);
        };
        let token = String::from_utf8(plain)
            .map_err(|_| Error::Corrupt(format!("session token of host {host} is not UTF-8")))?;
        Ok(Some(RedfishSession {
            host_id: host,
            session_token: SecretString::from(token),
            session_uri: get(&row, "session_uri")?,
            expires_at: get(&row, "expires_at")?,
            created_at: get(&row, "created_at")?,
        }))
    }

    async fn put_session(&self, session: RedfishSession) -> Result<()> {
        let sealed = self
            .session_key()
            .seal(
                session.session_token.expose_secret().as_bytes(),
                &aad(session.host_id),
            )
            .map_err(|e| Error::Unavailable(e.to_string()))?;
        with_conn!(self, c => {
            sqlx::query(
                "INSERT INTO redfish_sessions (host_id, session_token, session_uri, expires_at, created_at) \
                 VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (host_id) DO UPDATE SET session_token = EXCLUDED.session_token, \
                   session_uri = EXCLUDED.session_uri, expires_at = EXCLUDED.expires_at, \
                   created_at = EXCLUDED.created_at",
            )
            .bind(session.host_id.0)
            .bind(&sealed)
            .bind(&session.session_uri)
            .bind(session.expires_at)
            .bind(session.created_at)
            .execute(&mut *c)
            .await
            .map_err(db_err)?;
            Ok(())
        })
    }

    async fn delete_session(&self, host: HostId) -> Result<()> {
        with_conn!(self, c => {
            sqlx::query("DELETE FROM redfish_sessions WHERE host_id = $1")
                .bind(host.0)
                .execute(&mut *c)
                .await
                .map_err(db_err)?;
            Ok(())
        })
    }
}
