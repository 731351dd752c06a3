//! `HostStore`: hosts and credential references.

use crate::error::db_err;
use crate::rows::{self, CREDENTIAL_COLS, HOST_COLS};
use crate::{PgStore, with_conn};
use async_trait::async_trait;
use firmflow_core::model::*;
use firmflow_core::store::{Error, HostStore, Result};
use sqlx::AssertSqlSafe;
use uuid::Uuid;

#[async_trait]
impl HostStore for PgStore {
    async fn add_host(&self, host: NewHost) -> Result<Host> {
        let sql = format!(
            "INSERT INTO hosts (id, fqdn, mgmt_ip, model, service_tag, mgmt_kind, vcenter_url, \
             cluster_moid, host_moid, tags, datacenter_id, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, coalesce($12, now()), coalesce($12, now())) \
             RETURNING {HOST_COLS}"
        );
        let now = self.now_param();
        with_conn!(self, c => {
            let row = sqlx::query(AssertSqlSafe(sql))
                .bind(HostId::new().0)
                .bind(&host.fqdn)
                .bind(&host.mgmt_ip)
                .bind(&host.model)
                .bind(&host.service_tag)
                .bind(host.mgmt_kind.as_str())
                .bind(&host.vcenter_url)
                .bind(&host.cluster_moid)
                .bind(&host.host_moid)
                .bind(&host.tags)
                .bind(host.datacenter_id.map(|d| d.0))
                .bind(now)
                .fetch_one(&mut *c)
                .await
                .map_err(db_err)?;
            rows::host(&row)
        })
    }

    async fn get_host(&self, id: HostId) -> Result<Host> {
        let sql = format!("SELECT {HOST_COLS} FROM hosts WHERE id = $1");
        with_conn!(self, c => {
            let row = sqlx::query(AssertSqlSafe(sql))
                .bind(id.0)
                .fetch_optional(&mut *c)
                .await
                .map_err(db_err)?
                .ok_or_else(|| Error::not_found(format!("host {id}")))?;
            rows::host(&row)
        })
    }

    async fn list_hosts(&self) -> Result<Vec<Host>> {
        let sql = format!("SELECT {HOST_COLS} FROM hosts ORDER BY fqdn, id");
        with_conn!(self, c => {
            let rs = sqlx::query(AssertSqlSafe(sql))
                .fetch_all(&mut *c)
                .await
                .map_err(db_err)?;
            rs.iter().map(rows::host).collect::<Result<Vec<_>>>()
        })
    }

    async fn update_host(&self, host: &Host) -> Result<()> {
        let now = self.now_param();
        with_conn!(self, c => {
            let done = sqlx::query(
                "UPDATE hosts SET fqdn = $2, mgmt_ip = $3, model = $4, service_tag = $5, \
                 mgmt_kind = $6, vcenter_url = $7, cluster_moid = $8, host_moid = $9, tags = $10, \
                 datacenter_id = $11, updated_at = coalesce($12, now()) WHERE id = $1",
            )
            .bind(host.id.0)
            .bind(&host.fqdn)
            .bind(&host.mgmt_ip)
            .bind(&host.model)
            .bind(&host.service_tag)
            .bind(host.mgmt_kind.as_str())
            .bind(&host.vcenter_url)
            .bind(&host.cluster_moid)
            .bind(&host.host_moid)
            .bind(&host.tags)
            .bind(host.datacenter_id.map(|d| d.0))
            .bind(now)
            .execute(&mut *c)
            .await
            .map_err(db_err)?;
            if done.rows_affected() == 0 {
                // Missing or hidden: NotFound; visible but not writable by
                // this identity (row-level security): PermissionDenied.
                let visible: Option<i32> = sqlx::query_scalar("SELECT 1 FROM hosts WHERE id = $1")
                    .bind(host.id.0)
                    .fetch_optional(&mut *c)
                    .await
                    .map_err(db_err)?;
                Err(match visible {
                    Some(_) => Error::PermissionDenied(format!("host {} is read-only for this user", host.id)),
                    None => Error::not_found(format!("host {}", host.id)),
                })
            } else {
                Ok(())
            }
        })
    }

    async fn add_credential(
        &self,
        host_id: Option<HostId>,
        kind: CredentialKind,
        vault_path: &str,
    ) -> Result<CredentialRecord> {
        insert_credential(
            self,
            CredentialId::new().0,
            host_id,
            kind,
            vault_path.to_string(),
            None,
        )
        .await
    }

    async fn credentials_for(
        &self,
        host_id: HostId,
        kind: CredentialKind,
    ) -> Result<Vec<CredentialRecord>> {
        let sql = format!(
            "SELECT {CREDENTIAL_COLS} FROM credentials \
             WHERE kind = $2 AND (host_id = $1 OR host_id IS NULL) \
             ORDER BY (host_id IS NULL), created_at, id"
        );
        with_conn!(self, c => {
            let rs = sqlx::query(AssertSqlSafe(sql))
                .bind(host_id.0)
                .bind(rows::credential_kind_str(&kind))
                .fetch_all(&mut *c)
                .await
                .map_err(db_err)?;
            rs.iter().map(rows::credential).collect::<Result<Vec<_>>>()
        })
    }

    async fn remove_host(&self, id: HostId) -> Result<()> {
        // One statement, so no campaign can pick the host up in between.
        // Credentials, sessions and the runs of finished plans go with the
        // host (ON DELETE CASCADE); the audit trail keeps its events.
        const BUSY: &str = "SELECT r.plan_id FROM host_runs r JOIN update_plans p ON p.id = r.plan_id \
             WHERE r.host_id = $1 AND (r.state = 'running' \
             OR p.status NOT IN ('completed', 'failed', 'cancelled'))";
        let delete = format!("DELETE FROM hosts WHERE id = $1 AND NOT EXISTS ({BUSY})");
        with_conn!(self, c => {
            let done = sqlx::query(AssertSqlSafe(delete))
                .bind(id.0)
                .execute(&mut *c)
                .await
                .map_err(db_err)?;
            if done.rows_affected() == 1 {
                return Ok(());
            }
            let busy: Option<Uuid> = sqlx::query_scalar(AssertSqlSafe(format!("{BUSY} LIMIT 1")))
                .bind(id.0)
                .fetch_optional(&mut *c)
                .await
                .map_err(db_err)?;
            Err(match busy {
                Some(plan) => Error::Conflict(format!(
                    "host {id} is a target of plan {plan}, which has not finished"
                )),
                None => Error::not_found(format!("host {id}")),
            })
        })
    }
}

/// Sealed username and secret with the id of the key that sealed them.
pub(crate) struct Sealed {
    pub(crate) username: Vec<u8>,
    pub(crate) secret: Vec<u8>,
    pub(crate) key_id: String,
}

pub(crate) async fn insert_credential(
    store: &PgStore,
    id: Uuid,
    host_id: Option<HostId>,
    kind: CredentialKind,
    vault_path: String,
    sealed: Option<Sealed>,
) -> Result<CredentialRecord> {
    let sql = format!(
        "INSERT INTO credentials (id, host_id, kind, vault_path, username_enc, secret_enc, key_id, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, coalesce($8, now())) RETURNING {CREDENTIAL_COLS}"
    );
    let now = store.now_param();
    let (u, s, k) = match sealed {
        Some(x) => (Some(x.username), Some(x.secret), Some(x.key_id)),
        None => (None, None, None),
    };
    with_conn!(store, c => {
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .bind(host_id.map(|h| h.0))
            .bind(rows::credential_kind_str(&kind))
            .bind(&vault_path)
            .bind(&u)
            .bind(&s)
            .bind(&k)
            .bind(now)
            .fetch_one(&mut *c)
            .await
            .map_err(db_err)?;
        rows::credential(&row)
    })
}
